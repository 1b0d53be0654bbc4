"""keraszoo.data: archives, tfds (mocked), arrays, image folders, the epoch stream."""

import numpy as np
import pytest
from PIL import Image

from keraszoo import data


def _batches(ds):
    """All elements of a dataset as numpy (tuples stay tuples)."""
    out = []
    for el in ds:
        if isinstance(el, tuple):
            out.append(tuple(np.asarray(e) for e in el))
        else:
            out.append(np.asarray(el))
    return out


@pytest.fixture
def mnist_dir(tmp_path):
    """A tiny mnist.npz laid out like ../shared/data (no channel axis, uint8)."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        "y_train": np.arange(40, dtype=np.uint8),  # labels = index: traceable
        "x_test": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "y_test": np.arange(12, dtype=np.uint8),
    }
    np.savez(tmp_path / "mnist.npz", **arrays)
    return tmp_path, arrays


@pytest.fixture
def cifar_dir(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        "y_train": np.zeros(10, np.uint8),
        "x_test": rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
        "y_test": np.zeros(4, np.uint8),
    }
    np.savez(tmp_path / "cifar10_jpeg.npz", **arrays)
    return tmp_path, arrays


# ---------------------------------------------------------------- names


def test_dataset_info_and_names():
    assert data.list_datasets() == ["cifar10", "fashion_mnist", "mnist"]
    assert data.dataset_info("MNIST").image_shape == (28, 28, 1)
    assert data.dataset_info("fashion-mnist").name == "fashion_mnist"
    assert data.dataset_info("cifar10").image_shape == (32, 32, 3)
    with pytest.raises(ValueError, match="Did you mean 'mnist'"):
        data.dataset_info("minst")


# ---------------------------------------------------------------- npz


def test_load_arrays_npz_scales_and_adds_channel(mnist_dir):
    d, arrays = mnist_dir
    x, y = data.load_arrays("mnist", "train", source="npz", data_dir=d)
    assert x.shape == (40, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[..., 0], arrays["x_train"].astype(np.float32) / 255.0)
    np.testing.assert_array_equal(y, np.arange(40))
    xu, _ = data.load_arrays("mnist", "test", source="npz", data_dir=d, dtype="uint8")
    assert xu.dtype == np.uint8
    np.testing.assert_array_equal(xu[..., 0], arrays["x_test"])


def test_npz_found_through_environment_variable(mnist_dir, monkeypatch):
    d, _ = mnist_dir
    monkeypatch.setenv(data.DATA_DIR_ENV, str(d))
    x, _ = data.load_arrays("mnist", "test", source="npz")
    assert x.shape == (12, 28, 28, 1)
    # "auto" picks the archive when one is configured
    x2, _ = data.load_arrays("mnist", "test", source="auto")
    np.testing.assert_array_equal(x, x2)


def test_cifar_prefers_lossless_archive(cifar_dir):
    d, arrays = cifar_dir
    x, _ = data.load_arrays("cifar10", "train", source="npz", data_dir=d, dtype="uint8")
    np.testing.assert_array_equal(x, arrays["x_train"])
    lossless = {k: (v // 2 if k.startswith("x") else v) for k, v in arrays.items()}
    np.savez(d / "cifar10.npz", **lossless)
    x, _ = data.load_arrays("cifar10", "train", source="npz", data_dir=d, dtype="uint8")
    np.testing.assert_array_equal(x, lossless["x_train"])


def test_split_slicing(mnist_dir):
    d, arrays = mnist_dir
    kw = dict(source="npz", data_dir=d, dtype="uint8")
    _, y_head = data.load_arrays("mnist", "train[:25%]", **kw)
    _, y_tail = data.load_arrays("mnist", "train[25%:]", **kw)
    np.testing.assert_array_equal(np.concatenate([y_head, y_tail]), np.arange(40))
    assert len(y_head) == 10
    _, y = data.load_arrays("mnist", "test[-3:]", **kw)
    np.testing.assert_array_equal(y, [9, 10, 11])
    with pytest.raises(ValueError, match="no split 'validation'"):
        data.load_arrays("mnist", "validation", **kw)
    with pytest.raises(ValueError, match="Cannot parse split"):
        data.load_arrays("mnist", "train[1:2:3]", **kw)


def test_missing_archive_explains_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load_arrays("mnist", source="npz")
    msg = str(err.value)
    assert "KERASZOO_DATA_DIR" in msg and "source='npz'" in msg and "source='tfds'" in msg
    assert "not set" in msg
    with pytest.raises(FileNotFoundError, match=r"No archive mnist\.npz in"):
        data.load_arrays("mnist", source="npz", data_dir=tmp_path)


def test_malformed_archives_are_refused(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.float32), y_train=np.zeros(2))
    with pytest.raises(ValueError, match="must be uint8"):
        data.load_arrays("mnist", source="npz", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"no array\(s\) \['x_test', 'y_test'\]"):
        data.load_arrays("mnist", "test", source="npz", data_dir=tmp_path)
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 32, 32), np.uint8), y_train=np.zeros(2))
    with pytest.raises(ValueError, match=r"\(32, 32, 1\).*expects \(28, 28, 1\)"):
        data.load_arrays("mnist", source="npz", data_dir=tmp_path)


# ---------------------------------------------------------------- tfds


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)),
                                        ("cifar10", (32, 32, 3))])
def test_tfds_source_with_mock_data(name, shape):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=10):
        ds = data.load(name, "train", batch_size=4, source="tfds", shuffle=False)
        batches = _batches(ds)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    x = np.concatenate([b[0] for b in batches])
    assert x.shape == (10,) + shape and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert np.allclose(x * 255, np.round(x * 255), atol=1e-3)  # 8-bit values scaled by 1/255


def test_tfds_failure_becomes_actionable_error(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("network is unreachable")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load_arrays("mnist", source="tfds", data_dir=tmp_path / "tfds")
    msg = str(err.value)
    assert "network is unreachable" in msg and "KERASZOO_DATA_DIR" in msg and "download_and_prepare" in msg
    # download=False does not even try when the dataset is not prepared
    monkeypatch.setattr(tfds, "load", lambda *a, **k: pytest.fail("tfds.load called"))
    with pytest.raises(data.DatasetUnavailableError):
        data.load_arrays("mnist", source="tfds", data_dir=tmp_path / "tfds", download=False)


# ---------------------------------------------------------------- load() pipeline


def test_load_pipeline_batches_shuffles_and_covers_every_example(mnist_dir):
    d, arrays = mnist_dir
    ds = data.load("mnist", "train", batch_size=16, source="npz", data_dir=d, seed=3)
    epoch1, epoch2 = _batches(ds), _batches(ds)
    assert [len(b[0]) for b in epoch1] == [16, 16, 8]
    y1 = np.concatenate([b[1] for b in epoch1])
    y2 = np.concatenate([b[1] for b in epoch2])
    assert sorted(y1) == list(range(40)) and sorted(y2) == list(range(40))
    assert not np.array_equal(y1, y2)  # reshuffled each epoch
    x1 = np.concatenate([b[0] for b in epoch1])
    np.testing.assert_array_equal(x1[..., 0], arrays["x_train"][y1].astype(np.float32) / 255.0)
    # same seed -> same order
    y_again = np.concatenate([b[1] for b in _batches(
        data.load("mnist", "train", batch_size=16, source="npz", data_dir=d, seed=3))])
    np.testing.assert_array_equal(y1, y_again)


def test_load_without_shuffle_labels_or_remainder(mnist_dir):
    d, _ = mnist_dir
    ds = data.load("mnist", "train", batch_size=16, source="npz", data_dir=d, shuffle=False,
                   with_labels=False, drop_remainder=True)
    batches = _batches(ds)
    assert len(batches) == 2 and all(b.shape == (16, 28, 28, 1) for b in batches)
    with pytest.raises(ValueError, match="batch_size"):
        data.load("mnist", batch_size=0, source="npz", data_dir=d)
    with pytest.raises(ValueError, match="source must be"):
        data.load("mnist", source="internet")


def test_dynamic_binarization_resamples_every_epoch(mnist_dir):
    d, arrays = mnist_dir
    ds = data.load("mnist", "train", batch_size=40, source="npz", data_dir=d, shuffle=False,
                   binarize="dynamic", seed=1)
    (x1, _), = _batches(ds)
    (x2, _), = _batches(ds)
    assert set(np.unique(x1)) <= {0.0, 1.0}
    assert not np.array_equal(x1, x2)
    p = arrays["x_train"][..., None] / 255.0
    # Bernoulli(p): the frequency of ones follows the intensities
    assert abs(x1.mean() - p.mean()) < 0.01
    assert x1[p == 0].max() == 0.0 and x1[p == 1].min() == 1.0


def test_static_binarization_is_fixed_and_independent_of_slicing(mnist_dir):
    d, arrays = mnist_dir
    kw = dict(source="npz", data_dir=d, binarize="static")
    full, _ = data.load_arrays("mnist", "train", **kw)
    again, _ = data.load_arrays("mnist", "train", **kw)
    part, _ = data.load_arrays("mnist", "train[10:20]", **kw)
    assert set(np.unique(full)) <= {0.0, 1.0}
    np.testing.assert_array_equal(full, again)
    np.testing.assert_array_equal(full[10:20], part)
    assert abs(full.mean() - arrays["x_train"].mean() / 255.0) < 0.01
    thr, _ = data.load_arrays("mnist", "train", source="npz", data_dir=d, binarize="threshold")
    np.testing.assert_array_equal(thr[..., 0], (arrays["x_train"] >= 128).astype(np.float32))
    with pytest.raises(ValueError, match="needs a tf.data pipeline"):
        data.load_arrays("mnist", source="npz", data_dir=d, binarize="dynamic")
    with pytest.raises(ValueError, match="binarize must be"):
        data.load_arrays("mnist", source="npz", data_dir=d, binarize="yes")


# ---------------------------------------------------------------- arrays


def test_from_numpy_uint8_and_float_scaling():
    rng = np.random.default_rng(0)
    xu = rng.integers(0, 256, (10, 8, 8), dtype=np.uint8)
    (b,) = _batches(data.from_numpy(xu, batch_size=10, shuffle=False))
    np.testing.assert_allclose(b, xu[..., None] / 255.0, rtol=1e-6)
    xf = rng.random((10, 8, 8, 3), dtype=np.float32)
    (b,) = _batches(data.from_numpy(xf, batch_size=10, shuffle=False))
    np.testing.assert_array_equal(b, xf)
    ys = np.arange(10)
    batches = _batches(data.from_numpy(xf, ys, batch_size=4, seed=0))
    assert isinstance(batches[0], tuple) and sorted(np.concatenate([b[1] for b in batches])) == list(ys)


@pytest.mark.parametrize("x,match", [
    (np.full((2, 8, 8), 255.0, np.float32), r"scaled to \[0, 1\].*divide by 255"),
    (np.full((2, 8, 8), 300, np.int32), "0..255"),
    (np.full((2, 8, 8), np.nan, np.float32), "NaN"),
    (np.zeros((8, 8), np.uint8), r"\(N, H, W\)"),
    (np.zeros((2, 3, 8, 8), np.uint8), "channels last"),
    (np.array([["a"]]), "numeric"),
])
def test_from_numpy_refuses_bad_arrays(x, match):
    with pytest.raises(ValueError, match=match):
        data.from_numpy(x)


def test_shape_mismatch_refused_unless_asked():
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"32x32 images, expected 28x28.*resize=True"):
        data.prepare_images(x, (28, 28, 3))
    with pytest.raises(ValueError, match=r"3 channel\(s\).*expected 1.*color_mode='grayscale'"):
        data.prepare_images(x, (32, 32, 1))
    out = data.prepare_images(x, (28, 28, 1), resize=True, color_mode="grayscale")
    assert out.shape == (3, 28, 28, 1) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    # grayscale conversion uses BT.601 luma weights
    gray = data.prepare_images(x, color_mode="grayscale")
    expected = (x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    np.testing.assert_allclose(gray[..., 0] * 255.0, np.round(expected), atol=0.51)
    rgb = data.prepare_images(x[..., :1], color_mode="rgb")
    assert rgb.shape == (3, 32, 32, 3) and np.array_equal(rgb[..., 0], rgb[..., 2])
    (b,) = _batches(data.from_numpy(x, image_shape=(16, 16, 3), resize=True, batch_size=3, shuffle=False))
    assert b.shape == (3, 16, 16, 3)


# ---------------------------------------------------------------- folders


def _write_pngs(root, arrays, mode="L"):
    root.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a, mode=None if mode == "L" else mode).save(root / f"img_{i:03d}.png")


def test_from_directory_reads_pngs_with_inferred_labels(tmp_path):
    rng = np.random.default_rng(0)
    cats = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    dogs = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    _write_pngs(tmp_path / "cats", cats)
    _write_pngs(tmp_path / "dogs", dogs)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = data.from_directory(tmp_path, image_size=(28, 28), batch_size=8, shuffle=False)
    ((x, y),) = _batches(ds)
    assert x.shape == (8, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [0] * 5 + [1] * 3)
    np.testing.assert_allclose(x[..., 0] * 255.0, np.concatenate([cats, dogs]), atol=1e-3)
    # a flat folder has no labels; size and channels are inferred
    flat = tmp_path / "cats"
    (x,) = _batches(data.from_directory(flat, batch_size=8, shuffle=False))
    assert x.shape == (5, 28, 28, 1)


def test_from_directory_refuses_other_sizes_and_channels(tmp_path):
    rng = np.random.default_rng(0)
    _write_pngs(tmp_path / "a", rng.integers(0, 256, (2, 28, 28), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / "a" / "big.png")
    with pytest.raises(ValueError, match=r"1 of 3 images .* not 28x28.*big\.png is 32x32.*resize=True"):
        data.from_directory(tmp_path / "a", image_size=(28, 28))
    (x,) = _batches(data.from_directory(tmp_path / "a", image_size=(28, 28), resize=True,
                                        batch_size=3, shuffle=False))
    assert x.shape == (3, 28, 28, 1)

    Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(tmp_path / "b.png")
    _write_pngs(tmp_path / "mixed", rng.integers(0, 256, (1, 28, 28), dtype=np.uint8))
    (tmp_path / "b.png").rename(tmp_path / "mixed" / "rgb.png")
    with pytest.raises(ValueError, match=r"1 grayscale, 1 RGB.*color_mode"):
        data.from_directory(tmp_path / "mixed")
    (x,) = _batches(data.from_directory(tmp_path / "mixed", color_mode="rgb", batch_size=2,
                                        shuffle=False, labels=None))
    assert x.shape == (2, 28, 28, 3)
    # a model expecting 1 channel: RGB files are refused unless converted
    rgb_only = tmp_path / "rgb_only"
    rgb_only.mkdir()
    Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(rgb_only / "c.jpg")
    with pytest.raises(ValueError, match=r"3 channel\(s\), expected 1.*color_mode='grayscale'"):
        data.from_directory(rgb_only, image_size=(28, 28, 1))
    (x,) = _batches(data.from_directory(rgb_only, image_size=(28, 28), color_mode="grayscale"))
    assert x.shape == (1, 28, 28, 1)


@pytest.mark.parametrize("suffix", [".png", ".bmp"])
def test_from_directory_conversions_match_prepare_images(tmp_path, suffix):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (3, 12, 12, 4), dtype=np.uint8)
    for i, a in enumerate(rgba):
        Image.fromarray(a if suffix == ".png" else a[..., :3]).save(tmp_path / f"{i}{suffix}")
    gray = np.concatenate(_batches(data.from_directory(tmp_path, color_mode="grayscale", shuffle=False)))
    np.testing.assert_allclose(gray, data.prepare_images(rgba, color_mode="grayscale"), atol=1.01 / 255)
    rgb = np.concatenate(_batches(data.from_directory(tmp_path, color_mode="rgb", shuffle=False)))
    np.testing.assert_array_equal(rgb, rgba[..., :3] / np.float32(255.0))


def test_from_directory_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        data.from_directory(tmp_path / "nope")
    with pytest.raises(ValueError, match="No images"):
        data.from_directory(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"Cannot read image .*broken\.png"):
        data.from_directory(tmp_path)
    with pytest.raises(ValueError, match="resize=True needs image_size"):
        data.from_directory(tmp_path, resize=True)


# ---------------------------------------------------------------- epoch stream


def _stream_epoch(stream, epoch):
    stream.set_epoch(epoch)
    return np.concatenate(_batches(stream.dataset()))


def test_epoch_stream_is_a_function_of_seed_and_epoch():
    x = np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1)
    stream = data.EpochStream(x, batch_size=8, seed=5)
    assert stream.steps_per_epoch == 7 and stream.examples_per_epoch == 50
    e0 = _stream_epoch(stream, 0).ravel() * 255.0
    e1 = _stream_epoch(stream, 1).ravel() * 255.0
    assert sorted(np.round(e0).astype(int)) == list(range(50))
    assert not np.array_equal(e0, e1)
    # a fresh stream (a restarted process) gives the same epochs, in any order
    other = data.EpochStream(x, batch_size=8, seed=5)
    np.testing.assert_array_equal(_stream_epoch(other, 1).ravel() * 255.0, e1)
    np.testing.assert_array_equal(_stream_epoch(other, 0).ravel() * 255.0, e0)
    assert not np.array_equal(_stream_epoch(data.EpochStream(x, batch_size=8, seed=6), 0).ravel() * 255, e0)


def test_epoch_stream_partial_epoch_matches_the_full_one():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 4, 4, 1), dtype=np.uint8)
    stream = data.EpochStream(x, batch_size=4, seed=2, binarize="dynamic")
    stream.set_epoch(3)
    full = _batches(stream.dataset())
    rest = _batches(stream.partial_epoch(3, 5))
    assert len(full) == 8 and len(rest) == 3
    for a, b in zip(full[5:], rest):
        np.testing.assert_array_equal(a, b)  # same images, same binarization draws
    assert stream.examples_from_step(5) == 10
    with pytest.raises(ValueError, match="start_step"):
        stream.partial_epoch(0, 8)


def test_epoch_stream_drop_remainder_and_callback():
    import keras

    x = np.zeros((10, 2, 2, 1), np.float32)
    stream = data.EpochStream(x, batch_size=4, seed=0, drop_remainder=True)
    assert stream.steps_per_epoch == 2 and stream.examples_per_epoch == 8
    cb = stream.callback()
    assert isinstance(cb, keras.callbacks.Callback)
    cb.on_epoch_begin(4)
    assert int(stream._epoch.numpy()) == 4
    with pytest.raises(ValueError, match="leaves no batch"):
        data.EpochStream(x, batch_size=11, drop_remainder=True)


def test_an_archive_sorted_by_class_is_read_in_a_fixed_mixed_order(tmp_path):
    """cifar10_jpeg.npz stores each split class after class: its slices must still hold every class."""
    rng = np.random.default_rng(2)
    y_train, y_test = np.repeat(np.arange(10, dtype=np.uint8), 20), np.repeat(np.arange(10, dtype=np.uint8), 5)
    arrays = {"x_train": rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8), "y_train": y_train,
              "x_test": rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), "y_test": y_test}
    np.savez(tmp_path / "cifar10_jpeg.npz", **arrays)
    x, y = data.load_arrays("cifar10", "train", source="npz", data_dir=tmp_path, dtype="uint8")
    order = np.random.default_rng(data.sources.SORTED_ARCHIVE_SEED).permutation(200)
    np.testing.assert_array_equal(x, arrays["x_train"][order])  # the same images, each with its own label
    np.testing.assert_array_equal(y, y_train[order])
    assert len(set(y[:40])) >= 8  # the first fifth of a split is no longer two classes
    x2, y2 = data.load_arrays("cifar10", "train[:40]", source="npz", data_dir=tmp_path, dtype="uint8")
    np.testing.assert_array_equal(x2, x[:40])  # the same order on every call: slices are stable
    _, yt = data.load_arrays("cifar10", "test[:10]", source="npz", data_dir=tmp_path)
    assert len(set(yt)) > 1


def test_an_archive_in_another_order_is_read_as_it_is(mnist_dir):
    d, arrays = mnist_dir  # labels 0..39: increasing, but one image per label (not class blocks)
    _, y = data.load_arrays("mnist", "train", source="npz", data_dir=d)
    np.testing.assert_array_equal(y, np.arange(40))
