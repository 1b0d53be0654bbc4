"""Every model command, in process through ``keraszoo.cli.main`` (the function both entry points call).

Outputs are checked against the library: the pictures' tiles are the model's
own reconstructions/decodings, the arrays its codes. The real entry points are
exercised in ``test_entry_points.py`` and ``test_without_tensorflow.py``.
"""

import json
import re
import shutil

import numpy as np
import pytest

from tests.cli.conftest import LATENT_DIM
from tests.cli.conftest import assert_one_line_error
from tests.cli.conftest import grid_size
from tests.cli.conftest import read_png


def tile(picture, row, col, size=28, scale=2, border=2):
    """One tile of a keraszoo grid, back at its original resolution (uint8)."""
    top = border + row * (size * scale + border)
    left = border + col * (size * scale + border)
    return picture[top:top + size * scale:scale, left:left + size * scale:scale]


def as_uint8(images):
    return np.round(np.clip(np.asarray(images), 0, 1) * 255).astype(np.int16)


@pytest.fixture(scope="module")
def loaded(tiny_models):
    import keraszoo

    return {"ae": keraszoo.load(tiny_models.ae), "vae": keraszoo.load(tiny_models.vae)}


def to_numpy(t):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(t))


# --------------------------------------------------------------------------- reconstruct


def test_reconstruct_draws_originals_above_reconstructions(cli, tiny_models, image_files, loaded, tmp_path):
    out = tmp_path / "grid.png"
    code, stdout, err = cli("reconstruct", tiny_models.ae, image_files.files[0], image_files.folder,
                            "-o", out, "--cols", "3")
    assert code == 0, err
    assert "Wrote 6 reconstructions" in stdout
    mode, size, picture = read_png(out)
    # 6 images in rows of 3: two (originals, reconstructions) row pairs.
    assert mode == "L" and size == grid_size(4, 3)
    x = image_files.x[[0, 0, 1, 2, 3, 4]]
    recon = as_uint8(to_numpy(loaded["ae"].reconstruct(x)))
    for index in range(6):
        pair, col = divmod(index, 3)
        assert np.array_equal(tile(picture, 2 * pair, col), as_uint8(x[index])[..., 0])
        assert np.abs(tile(picture, 2 * pair + 1, col) - recon[index][..., 0]).max() <= 1
    assert (picture[0, :] == 128).all()  # the gray border

    code, _, err = cli("reconstruct", tiny_models.ae, image_files.folder, "-o", tmp_path / "r.npy")
    assert code == 0, err
    array = np.load(tmp_path / "r.npy")
    assert array.shape == (5, 28, 28, 1) and array.dtype == np.float32
    np.testing.assert_allclose(array, to_numpy(loaded["ae"].reconstruct(image_files.x[:5])), atol=1e-5)


def test_input_size_and_channels_are_checked(cli, tiny_models, image_files, tmp_path):
    out = tmp_path / "r.png"
    code, _, err = cli("reconstruct", tiny_models.ae, image_files.big, "-o", out)
    assert code == 1
    assert_one_line_error(err, "big.png is 32x32 pixels", "expects 28x28", "--resize")
    assert not out.exists()
    code, _, err = cli("reconstruct", tiny_models.ae, image_files.big, "--resize", "-o", out)
    assert code == 0, err
    assert read_png(out)[1] == grid_size(2, 1)

    code, _, err = cli("reconstruct", tiny_models.ae, image_files.color, "-o", out)
    assert code == 1
    assert_one_line_error(err, "color (RGB) image", "expects grayscale", "--color-mode grayscale")
    code, _, err = cli("reconstruct", tiny_models.ae, image_files.color, "--color-mode", "grayscale", "-o", out)
    assert code == 0, err
    code, _, err = cli("reconstruct", tiny_models.ae, image_files.gray_rgb, "-o", out)  # lossless: accepted
    assert code == 0, err
    code, _, err = cli("reconstruct", tiny_models.ae, image_files.gray_rgb, "--color-mode", "rgb", "-o", out)
    assert code == 1
    assert_one_line_error(err, "color_mode='rgb' contradicts")
    code, _, err = cli("reconstruct", tiny_models.ae, image_files.text, "-o", out)
    assert code == 1
    assert_one_line_error(err, "Cannot read image", "notes.txt")


def test_quiet_and_debug(cli, tiny_models, image_files, tmp_path):
    for argv in (("-q", "reconstruct", tiny_models.ae, image_files.folder, "-o", tmp_path / "a.png"),
                 ("reconstruct", tiny_models.ae, image_files.folder, "-o", tmp_path / "b.png", "--quiet")):
        code, out, err = cli(*argv)
        assert code == 0, err
        assert out == "" and err == ""
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()

    code, out, err = cli("--debug", "reconstruct", tiny_models.ae, image_files.big, "-o", tmp_path / "c.png")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("keraszoo: error: ")


# --------------------------------------------------------------------------- encode / decode


def test_encode_arrays_and_folders(cli, tiny_models, image_files, loaded, tmp_path):
    code, out, err = cli("encode", tiny_models.ae, image_files.npy, "-o", tmp_path / "codes.npy")
    assert code == 0, err
    assert f"Wrote codes of shape (10, {LATENT_DIM})" in out
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (10, LATENT_DIM) and codes.dtype == np.float32
    x = np.load(image_files.npy).astype(np.float32)[..., None] / 255.0
    np.testing.assert_allclose(codes, to_numpy(loaded["ae"].encode(x)), atol=1e-5)

    code, _, err = cli("encode", tiny_models.vae, image_files.folder, "-o", tmp_path / "codes.npz")
    assert code == 0, err
    with np.load(tmp_path / "codes.npz") as archive:
        assert sorted(archive.files) == ["codes", "files"]
        assert [p.rsplit("/", 1)[-1] for p in archive["files"]] == [f"digit_{i}.png" for i in range(5)]
        np.testing.assert_allclose(archive["codes"], to_numpy(loaded["vae"].encode(image_files.x[:5])), atol=1e-5)

    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((2, 28, 28), 300.0, dtype=np.float32))
    code, _, err = cli("encode", tiny_models.ae, bad, "-o", tmp_path / "c.npy")
    assert code == 1
    assert_one_line_error(err, "bad.npy", "[0, 1]")
    np.savez(tmp_path / "two.npz", a=np.zeros((1, 28, 28)), b=np.zeros((1, 28, 28)))
    code, _, err = cli("encode", tiny_models.ae, tmp_path / "two.npz", "-o", tmp_path / "c.npy")
    assert code == 1
    assert_one_line_error(err, "holds ['a', 'b']", "--key")
    code, _, err = cli("encode", tiny_models.ae, tmp_path / "two.npz", "--key", "b", "-o", tmp_path / "c.npy")
    assert code == 0, err
    assert np.load(tmp_path / "c.npy").shape == (1, LATENT_DIM)


def test_decode_codes_to_a_grid(cli, tiny_models, loaded, tmp_path):
    codes = np.random.default_rng(0).normal(size=(7, LATENT_DIM)).astype(np.float32)
    np.save(tmp_path / "codes.npy", codes)
    code, out, err = cli("decode", tiny_models.vae, tmp_path / "codes.npy", "-o", tmp_path / "d.png", "--cols", "4")
    assert code == 0, err
    assert "Wrote 7 decoded images" in out
    mode, size, picture = read_png(tmp_path / "d.png")
    assert mode == "L" and size == grid_size(2, 4)
    decoded = to_numpy(loaded["vae"].decode(codes))
    assert np.abs(tile(picture, 1, 2) - as_uint8(decoded[6])[..., 0]).max() <= 1
    assert (tile(picture, 1, 3) == 128).all()  # the empty 8th slot

    np.savez(tmp_path / "codes.npz", codes=codes)
    code, _, err = cli("decode", tiny_models.vae, tmp_path / "codes.npz", "-o", tmp_path / "d.npy")
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), decoded, atol=1e-5)

    np.save(tmp_path / "wrong.npy", np.zeros((2, LATENT_DIM + 2), np.float32))
    code, _, err = cli("decode", tiny_models.vae, tmp_path / "wrong.npy", "-o", tmp_path / "x.png")
    assert code == 1
    assert_one_line_error(err, f"shape (2, {LATENT_DIM + 2})", f"(N, {LATENT_DIM})")
    np.save(tmp_path / "nan.npy", np.full((1, LATENT_DIM), np.nan, np.float32))
    code, _, err = cli("decode", tiny_models.vae, tmp_path / "nan.npy", "-o", tmp_path / "x.png")
    assert code == 1
    assert_one_line_error(err, "NaN")
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------- sample / interpolate


def test_sample_is_seeded_and_needs_a_generative_model(cli, tiny_models, tmp_path):
    arrays = []
    for seed, name in ((1, "a"), (1, "b"), (2, "c")):
        code, _, err = cli("sample", tiny_models.vae, "-n", "6", "--seed", seed, "-o", tmp_path / f"{name}.npy")
        assert code == 0, err
        arrays.append(np.load(tmp_path / f"{name}.npy"))
    assert arrays[0].shape == (6, 28, 28, 1)
    assert arrays[0].min() >= 0.0 and arrays[0].max() <= 1.0
    np.testing.assert_array_equal(arrays[0], arrays[1])
    assert not np.allclose(arrays[0], arrays[2])

    code, _, err = cli("sample", tiny_models.vae, "-n", "6", "-o", tmp_path / "s.png")
    assert code == 0, err
    assert read_png(tmp_path / "s.png")[1] == grid_size(2, 3)

    code, out, err = cli("sample", tiny_models.ae, "-o", tmp_path / "ae.png")
    assert code == 1
    assert_one_line_error(err, "AutoEncoder", "not a generative model")
    assert not (tmp_path / "ae.png").exists()


def test_interpolate_runs_between_the_two_reconstructions(cli, tiny_models, image_files, loaded, tmp_path):
    a, b = image_files.files[0], image_files.files[3]
    code, out, err = cli("interpolate", tiny_models.ae, a, b, "--steps", "5", "-o", tmp_path / "i.npy")
    assert code == 0, err
    strip = np.load(tmp_path / "i.npy")
    assert strip.shape == (5, 28, 28, 1)
    recon = to_numpy(loaded["ae"].reconstruct(image_files.x[[0, 3]]))
    np.testing.assert_allclose(strip[0], recon[0], atol=1e-5)
    np.testing.assert_allclose(strip[-1], recon[1], atol=1e-5)

    code, out, err = cli("interpolate", tiny_models.vae, a, b, "-o", tmp_path / "strip.png")
    assert code == 0, err
    assert "10-step interpolation" in out
    assert read_png(tmp_path / "strip.png")[1] == grid_size(1, 10)

    code, _, err = cli("interpolate", tiny_models.ae, a, image_files.big, "-o", tmp_path / "x.png")
    assert code == 1
    assert_one_line_error(err, "expects 28x28")


# --------------------------------------------------------------------------- demo


def test_demo_of_a_non_generative_model_skips_samples(cli, tiny_models, loaded, tmp_path):
    from keraszoo.evaluation import reconstruction_metrics
    from keraszoo.samples import load_mnist_sample

    out = tmp_path / "demo"
    out.mkdir()
    (out / "samples.png").write_bytes(b"stale")
    code, stdout, err = cli("demo", "--model", tiny_models.ae, "--out", out, "--num", "8", "--steps", "6")
    assert code == 0, err
    assert "samples.png          skipped: AutoEncoder (variant ae) is not a generative model" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["interpolation.png", "metrics.json", "reconstructions.png"]
    assert read_png(out / "reconstructions.png")[1] == grid_size(2, 8)
    assert read_png(out / "interpolation.png")[1] == grid_size(4, 6)
    report = json.loads((out / "metrics.json").read_text())
    assert report["files"] == ["reconstructions.png", "interpolation.png"]
    expected = reconstruction_metrics(loaded["ae"], load_mnist_sample()[0])
    assert report["metrics"] == pytest.approx(expected, rel=1e-5)
    assert report["num_images"] == 500 and report["variant"] == "ae"


def test_demo_of_a_manifest_name(cli, zoo_manifest, monkeypatch, tmp_path):
    monkeypatch.setenv("KERASZOO_MANIFEST", str(zoo_manifest))
    code, stdout, err = cli("demo", "--model", "tiny_vae", "--source", "bundled", "--out", tmp_path, "--samples", "9")
    assert code == 0, err
    assert "Loading tiny_vae" in stdout
    assert read_png(tmp_path / "samples.png")[1] == grid_size(3, 3)
    assert json.loads((tmp_path / "metrics.json").read_text())["model"] == "tiny_vae"


# --------------------------------------------------------------------------- evaluate


def test_evaluate_a_dataset_and_a_folder(cli, tiny_models, tiny_mnist_dir, image_files, loaded, tmp_path):
    from keraszoo.evaluation import reconstruction_metrics

    code, out, err = cli("evaluate", tiny_models.ae, "--data", "mnist", "--data-source", "npz", "--data-dir",
                         tiny_mnist_dir, "--json", "-o", tmp_path / "results.json")
    assert code == 0
    results = json.loads(out)  # --json: stdout holds the JSON alone
    assert "Loading" in err
    assert results["num_examples"] == 16 and results["split"] == "test"
    assert 0.0 <= results["knn_accuracy"] <= 1.0 and 0.0 <= results["linear_probe_accuracy"] <= 1.0
    with np.load(tiny_mnist_dir / "mnist.npz") as archive:
        x_test = archive["x_test"][..., None].astype(np.float32) / 255.0
    expected = reconstruction_metrics(loaded["ae"], x_test)
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, rel=1e-5), key
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"] == results and saved["model"] == str(tiny_models.ae)

    code, out, err = cli("evaluate", tiny_models.vae, "--data", image_files.folder)
    assert code == 0, err
    assert re.search(r"num_examples\s+5\n", out) and "negative_elbo_nats" in out
    assert "knn_accuracy" not in out  # no labels

    code, _, err = cli("evaluate", tiny_models.ae, "--data", "mnist", "--data-source", "npz",
                       "--data-dir", tmp_path / "nowhere")
    assert code == 1
    assert_one_line_error(err, "'mnist' is not available offline")


def test_evaluate_record_writes_the_manifest(cli, zoo_manifest, tiny_models, tiny_mnist_dir, monkeypatch, tmp_path):
    manifest = tmp_path / "weights_manifest.json"
    shutil.copy(zoo_manifest, manifest)
    shutil.copytree(zoo_manifest.parent / "pretrained", tmp_path / "pretrained")
    monkeypatch.setenv("KERASZOO_MANIFEST", str(manifest))
    code, _, err = cli("evaluate", "tiny_vae", "--data-source", "npz", "--data-dir", tiny_mnist_dir, "--record")
    assert code == 0, err
    entry = json.loads(manifest.read_text())["models"]["tiny_vae"]
    assert set(entry["metrics"]) >= {"mse_per_pixel", "psnr_db", "negative_elbo_nats", "knn_accuracy"}
    assert "seconds" not in entry["metrics"] and "dataset" not in entry["metrics"]
    assert entry["evaluation"]["command"].startswith("keraszoo evaluate tiny_vae")
    assert entry["evaluation"]["num_examples"] == 16

    code, _, err = cli("evaluate", tiny_models.ae, "--record")
    assert code == 2
    assert err.strip() == "keraszoo evaluate: error: --record writes the metrics into the manifest; " \
                          "it needs a manifest name as NAME."


# --------------------------------------------------------------------------- push


def test_push_to_the_hub_and_load_back(cli, fake_hub, tiny_models, image_files, tmp_path):
    code, out, err = cli("push", tiny_models.ae, "keraszoo-test/cli-ae", "--token", fake_hub.token)
    assert code == 0, err
    commit = re.search(r"at commit ([0-9a-f]{40})", out).group(1)
    assert commit == fake_hub.head("keraszoo-test/cli-ae")
    assert "metadata.json" in fake_hub.files("keraszoo-test/cli-ae", commit)

    code, out, err = cli("-q", "push", tiny_models.ae, "keraszoo-test/cli-ae", "--token", fake_hub.token)
    assert code == 0, err
    assert out.strip() == fake_hub.head("keraszoo-test/cli-ae")  # quiet: the commit id alone

    code, _, err = cli("reconstruct", f"hf://keraszoo-test/cli-ae@{commit}", image_files.folder,
                       "-o", tmp_path / "hub.npy")
    assert code == 0, err
    code, _, err = cli("reconstruct", tiny_models.ae, image_files.folder, "-o", tmp_path / "local.npy")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "hub.npy"), np.load(tmp_path / "local.npy"))

    code, _, err = cli("push", tiny_models.ae, "keraszoo-test/cli-ae", "--token", "hf_wrong")
    assert code == 1
    assert_one_line_error(err)
    code, _, err = cli("push", tmp_path / "nothing", "keraszoo-test/cli-ae")
    assert code == 1
    assert_one_line_error(err, "is not a directory")


# --------------------------------------------------------------------------- train / finetune


@pytest.mark.slow
def test_train_then_finetune_through_the_cli(cli, tiny_mnist_dir, image_files, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli("-q", "train", "--model", "ae", "--dataset", "mnist", "--data-source", "npz",
                         "--data-dir", tiny_mnist_dir, "--limit", "32", "--epochs", "1", "--batch-size", "16",
                         "--hidden-dims", "8", "--latent-dim", "2", "--no-eval", "--out", run)
    assert code == 0, err
    assert (run / "metadata.json").is_file() and (run / "model.weights.h5").is_file()
    code, out, err = cli("-q", "finetune", run, "--data", image_files.folder, "--epochs", "1", "--batch-size", "4",
                         "--out", tmp_path / "ft")
    assert code == 0, err
    code, out, err = cli("info", tmp_path / "ft")
    assert code == 0, err
    assert "AutoEncoder (variant ae, dense), latent_dim 2" in out
