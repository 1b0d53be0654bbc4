"""keraszoo.data.images: reading image files with the one set of size and channel rules."""

import numpy as np
import pytest
from PIL import Image

from keraszoo.data import images


def test_load_image_modes(tmp_path):
    rng = np.random.default_rng(0)
    gray16 = rng.integers(0, 65536, (28, 28), dtype=np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    x = images.load_image(tmp_path / "g16.png", (28, 28, 1))
    np.testing.assert_allclose(x[..., 0], gray16 / 65535.0, atol=1e-6)

    palette = Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).convert("P")
    palette.save(tmp_path / "p.png")
    assert images.load_image(tmp_path / "p.png", (28, 28, 3)).shape == (28, 28, 3)

    gray = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    as_rgb = images.load_image(tmp_path / "g.png", (28, 28, 3))  # grayscale -> RGB is lossless
    np.testing.assert_allclose(as_rgb, np.repeat(gray[..., None] / 255.0, 3, -1), atol=1e-6)

    opaque = np.dstack([gray, np.full_like(gray, 255)])
    Image.fromarray(opaque).save(tmp_path / "opaque.png")
    np.testing.assert_allclose(images.load_image(tmp_path / "opaque.png", (28, 28, 1))[..., 0], gray / 255.0, atol=1e-6)
    transparent = opaque.copy()
    transparent[0, 0, 1] = 0
    Image.fromarray(transparent).save(tmp_path / "alpha.png")
    with pytest.raises(ValueError, match="transparent"):
        images.load_image(tmp_path / "alpha.png", (28, 28, 1))
    assert images.load_image(tmp_path / "alpha.png", (28, 28, 1), color_mode="grayscale").shape == (28, 28, 1)


def test_load_image_size_checks_and_resize(tmp_path):
    Image.fromarray(np.full((40, 30), 200, np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(ValueError, match=r"wide.png is 40x30 pixels; the model expects 28x28 \(image shape \(28, 28, 1\)\)"):
        images.load_image(tmp_path / "wide.png", (28, 28, 1))
    x = images.load_image(tmp_path / "wide.png", (28, 28, 1), resize=True)
    assert x.shape == (28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x, 200 / 255.0, atol=1e-4)  # a flat image stays flat
    assert images.load_image(tmp_path / "wide.png").shape == (40, 30, 1)
    with pytest.raises(ValueError, match="does not exist"):
        images.load_image(tmp_path / "missing.png", (28, 28, 1))
    with pytest.raises(ValueError, match="image_shape"):
        images.load_image(tmp_path / "wide.png", (28, 28, 2))


def test_load_images_expands_folders_in_sorted_order(tmp_path):
    for i in (2, 0, 1):
        Image.fromarray(np.full((28, 28), i * 100, np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / ".hidden.png").write_bytes(b"not read")
    x, files = images.load_images([tmp_path], (28, 28, 1))
    assert [f.name for f in files] == ["im0.png", "im1.png", "im2.png"]
    np.testing.assert_allclose(x[:, 0, 0, 0], [0, 100 / 255, 200 / 255], atol=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        images.load_images([tmp_path / "empty"], (28, 28, 1))


def test_folders_files_and_arrays_follow_the_same_channel_rules(tmp_path):
    from keraszoo import data

    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    folder = tmp_path / "gray_as_rgb"
    folder.mkdir()
    Image.fromarray(np.repeat(gray[..., None], 3, -1)).save(folder / "a.png")
    Image.fromarray(np.dstack([gray, np.full_like(gray, 255)])).save(folder / "b.png")  # opaque alpha
    # lossless: a gray image stored as RGB and an opaque alpha channel are accepted silently everywhere
    (x,) = [np.asarray(b) for b in data.from_directory(folder, image_size=(28, 28, 1), shuffle=False)]
    x_files, _ = images.load_images([folder], (28, 28, 1))
    np.testing.assert_allclose(x, x_files, atol=1e-6)
    np.testing.assert_allclose(x[0, ..., 0], gray / 255.0, atol=1e-6)
    as_rgb = images.prepare_images(gray[None], (28, 28, 3))
    np.testing.assert_allclose(as_rgb[0], np.repeat(gray[..., None] / 255.0, 3, -1), atol=1e-6)

    # lossy: color to grayscale and transparency are refused by all three, naming color_mode
    color = rng.integers(0, 256, (2, 28, 28, 3), dtype=np.uint8)
    Image.fromarray(color[0]).save(tmp_path / "color.png")
    with pytest.raises(ValueError, match=r"3 channel\(s\), expected 1.*color_mode='grayscale'"):
        images.load_image(tmp_path / "color.png", (28, 28, 1))
    with pytest.raises(ValueError, match=r"3 channel\(s\), expected 1.*color_mode='grayscale'"):
        images.prepare_images(color, (28, 28, 1))
    transparent = np.dstack([gray, np.full_like(gray, 255)])
    transparent[0, 0, 1] = 0
    Image.fromarray(transparent).save(folder / "c.png")
    with pytest.raises(ValueError, match=r"c\.png has transparent pixels.*color_mode"):
        data.from_directory(folder, image_size=(28, 28, 1))
    with pytest.raises(ValueError, match="transparent pixels.*color_mode"):
        images.prepare_images(transparent[None])
    (x,) = [np.asarray(b) for b in data.from_directory(folder, color_mode="grayscale", shuffle=False)]
    assert x.shape == (3, 28, 28, 1)


def test_read_array_picks_the_images_of_an_archive(tmp_path):
    from keraszoo.data import read_array

    np.savez(tmp_path / "a.npz", y=np.zeros(2), x=np.ones((2, 4, 4)))
    assert read_array(tmp_path / "a.npz").shape == (2, 4, 4)  # 'x' is one of the image names
    assert read_array(tmp_path / "a.npz", "y").shape == (2,)
    with pytest.raises(ValueError, match=r"has no array 'z'; it holds \['y', 'x'\]"):
        read_array(tmp_path / "a.npz", "z")
    np.savez(tmp_path / "two.npz", a=np.zeros(1), b=np.zeros(1))
    with pytest.raises(ValueError, match=r"holds \['a', 'b'\]; name the images x_train or x or images"):
        read_array(tmp_path / "two.npz")
    np.savez(tmp_path / "one.npz", whatever=np.zeros(3))
    assert read_array(tmp_path / "one.npz").shape == (3,)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="Cannot read"):
        read_array(tmp_path / "bad.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="Cannot read"):
        read_array(tmp_path / "objects.npy")


# --------------------------------------------------------------------------- broken and oversized files (issue 24)


def _png(path, size=(16, 16)):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)).save(path)
    return path


def _truncated(path):
    data = _png(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header intact: Image.open alone accepts it
    return path


def test_the_folder_scan_decodes_every_file_so_a_truncated_one_fails_at_once(tmp_path):
    """Not in the middle of training with a flattened traceback: one line naming the file, before any pipeline."""
    from keraszoo.data import from_directory

    _png(tmp_path / "a.png")
    bad = _truncated(tmp_path / "b.png")
    with Image.open(bad) as img:  # the header alone passes
        assert img.size == (16, 16)
    with pytest.raises(ValueError, match=rf"^Cannot read image '{bad}': image file is truncated") as err:
        from_directory(tmp_path, image_size=(16, 16, 1))
    assert "\n" not in str(err.value) and len(str(err.value)) < 200
    with pytest.raises(ValueError, match=rf"Cannot read image '{bad}'"):
        images.scan_image(bad)
    with pytest.raises(ValueError, match=rf"Cannot read image '{bad}'"):
        images.load_image(bad)


@pytest.mark.parametrize("limit", [200, 100], ids=["past-the-limit-pillow-warns", "past-twice-pillow-refuses"])
def test_an_image_past_the_decompression_bomb_limit_is_one_clear_line(tmp_path, monkeypatch, limit):
    """Pillow warns past MAX_IMAGE_PIXELS and raises DecompressionBombError past twice that: both are refused."""
    from keraszoo.data import from_directory

    path = _png(tmp_path / "big.png")  # 256 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)  # rather than a 20000x20000 file
    expected = (rf"^Image '{path}' is too large to read safely: 256 pixels, more than Pillow's limit of {limit} "
                r"pixels \(PIL\.Image\.MAX_IMAGE_PIXELS, against decompression bombs\)\. Shrink the image, or raise "
                r"PIL\.Image\.MAX_IMAGE_PIXELS if you trust the file\.$")
    for read in (images.load_image, images.scan_image, images.read_image):
        with pytest.raises(ValueError, match=expected):
            read(path)
    with pytest.raises(ValueError, match=expected):
        from_directory(tmp_path, image_size=(16, 16, 1))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 256)
    assert images.load_image(path).shape == (16, 16, 1)


def test_a_directory_named_like_an_image_is_said_to_be_one(tmp_path):
    (tmp_path / "digit.png").mkdir()
    with pytest.raises(ValueError, match=r"digit\.png' is a directory, not an image file"):
        images.load_image(tmp_path / "digit.png")
