"""Fine-tuning: model.fit on a loaded model, and training/finetune.py."""

import json

import numpy as np
import pytest
from PIL import Image

import keraszoo
from keraszoo import data
from keraszoo.training import finetune


def finetune_cli(argv) -> int:
    """``keraszoo finetune ARGV`` in this process: its exit status."""
    from keraszoo.cli import main

    return main(["finetune", *argv])


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    """A save_pretrained folder of a small (untrained) VAE."""
    from keraszoo.models import VAE

    model = VAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(32,), seed=0)
    return keraszoo.save_pretrained(model, tmp_path_factory.mktemp("pretrained") / "vae")


@pytest.fixture(scope="module")
def png_dir(tmp_path_factory, mnist_sample):
    x, _ = mnist_sample
    d = tmp_path_factory.mktemp("pngs")
    for i, img in enumerate(np.round(np.asarray(x[:40, ..., 0]) * 255).astype(np.uint8)):
        Image.fromarray(img).save(d / f"{i:02d}.png")
    return d


def _arrays(model, part):
    return [np.asarray(v) for v in getattr(model, part).weights]


def test_loaded_model_fine_tunes_with_fit_on_a_folder(pretrained_dir, png_dir):
    model = keraszoo.load(str(pretrained_dir))
    before = _arrays(model, "decoder")
    ds = data.from_directory(png_dir, image_size=model.image_shape[:2], batch_size=16, seed=0)
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert any(not np.array_equal(a, b) for a, b in zip(before, _arrays(model, "decoder")))


def test_finetune_script_freezes_the_encoder(pretrained_dir, png_dir, tmp_path):
    out = tmp_path / "ft"
    argv = [str(pretrained_dir), "--data", str(png_dir), "--epochs", "2", "--batch-size", "16",
            "--freeze-encoder", "--out", str(out), "--verbose", "0", "--steps-per-execution", "1"]
    assert finetune_cli(argv) == 0
    base, tuned = keraszoo.load(str(pretrained_dir)), keraszoo.load(str(out))
    for a, b in zip(_arrays(base, "encoder"), _arrays(tuned, "encoder")):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(_arrays(base, "decoder"), _arrays(tuned, "decoder")))
    assert all(w.trainable for w in tuned.encoder.weights)  # saved model is trainable again
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["recipe"]["base_model"] == str(pretrained_dir) and meta["recipe"]["freeze_encoder"] is True
    assert meta["recipe"]["num_train_examples"] == 40
    assert len((out / "training_log.csv").read_text().splitlines()) == 3


def test_finetune_refuses_other_sizes_unless_resize(pretrained_dir, tmp_path, capsys):
    x = np.random.default_rng(0).integers(0, 256, (20, 32, 32), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    base = [str(pretrained_dir), "--data", str(tmp_path / "x.npy"), "--epochs", "1", "--verbose", "0",
            "--steps-per-execution", "1"]
    assert finetune_cli(base + ["--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "32x32 images, expected 28x28" in err and "resize=True" in err
    assert finetune_cli(base + ["--resize", "--out", str(tmp_path / "b")]) == 0
    assert keraszoo.load(str(tmp_path / "b")).image_shape == (28, 28, 1)


def test_finetune_reports_bad_inputs(pretrained_dir, tmp_path, capsys):
    assert finetune_cli([str(pretrained_dir), "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
                          "--verbose", "0"]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert finetune_cli(["no_such_model", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no_such_model" in capsys.readouterr().err
    assert finetune_cli([str(pretrained_dir)]) == 2  # --data and --out missing


@pytest.fixture(scope="module")
def cvae_dir(tmp_path_factory):
    """A save_pretrained folder of a small (untrained) conditional VAE of MNIST's 10 classes."""
    from keraszoo.models import ConditionalVAE

    model = ConditionalVAE(input_shape=(28, 28, 1), latent_dim=2, hidden_dims=(16,), num_classes=10, seed=0)
    return keraszoo.save_pretrained(model, tmp_path_factory.mktemp("pretrained") / "cvae")


def test_a_conditional_model_fine_tunes_on_class_folders_and_labelled_archives(cvae_dir, mnist_sample, tmp_path):
    x, y = mnist_sample
    pixels = np.round(np.asarray(x[:30, ..., 0]) * 255).astype(np.uint8)
    folders = tmp_path / "digits"
    for i, (img, label) in enumerate(zip(pixels, y[:30])):
        (folders / str(int(label))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folders / str(int(label)) / f"{i:02d}.png")
    np.testing.assert_array_equal(  # the label is the folder's name, not its rank among the folders present
        np.sort(finetune.load_labels(folders, 10)), np.sort(np.asarray(y[:30])))
    archive = tmp_path / "digits.npz"
    np.savez(archive, x_train=pixels, y_train=np.asarray(y[:30]))
    for source in (folders, archive):
        out = tmp_path / f"ft_{source.name}"  # digits/ and digits.npz: two runs, two folders
        argv = [str(cvae_dir), "--data", str(source), "--epochs", "1", "--batch-size", "10", "--val-split", "0.2",
                "--out", str(out), "--verbose", "0", "--steps-per-execution", "1"]
        assert finetune_cli(argv) == 0, source
        meta = json.loads((out / "metadata.json").read_text())
        assert meta["recipe"]["num_train_examples"] == 24
        assert np.isfinite(meta["metrics"]["val_total_loss"])
        tuned = keraszoo.load(str(out))
        assert tuned.sample(2, labels=[3, 7], seed=0).shape == (2, 28, 28, 1)


def test_a_conditional_model_refuses_images_without_usable_labels(cvae_dir, png_dir, mnist_sample, tmp_path, capsys):
    flat = [str(cvae_dir), "--data", str(png_dir), "--out", str(tmp_path / "a"), "--verbose", "0"]
    assert finetune_cli(flat) == 1
    assert "outside a class sub-folder" in capsys.readouterr().err and not (tmp_path / "a").exists()
    named = tmp_path / "named"
    (named / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(named / "cat" / "a.png")
    assert finetune_cli([str(cvae_dir), "--data", str(named), "--out", str(tmp_path / "b"), "--verbose", "0"]) == 1
    assert "are not class indices 0..9" in capsys.readouterr().err
    images_only = tmp_path / "x.npy"
    np.save(images_only, np.zeros((4, 28, 28), np.uint8))
    assert finetune_cli([str(cvae_dir), "--data", str(images_only), "--out", str(tmp_path / "c"), "--verbose", "0"]) == 1
    assert "holds images without labels" in capsys.readouterr().err
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x_train=np.zeros((4, 28, 28), np.uint8), y_train=np.array([0, 1, 2, 12]))
    assert finetune_cli([str(cvae_dir), "--data", str(wrong), "--out", str(tmp_path / "d"), "--verbose", "0"]) == 1
    assert "labels must be integers in [0, 10)" in capsys.readouterr().err


def test_a_finetune_folder_of_other_images_preparation_is_not_resumed(pretrained_dir, png_dir, tmp_path, capsys):
    """--resize / --color-mode are part of the run's identity: the same --out with another preparation is refused."""
    out = tmp_path / "ft"
    argv = [str(pretrained_dir), "--data", str(png_dir), "--epochs", "1", "--batch-size", "16", "--out", str(out),
            "--verbose", "0"]
    assert finetune_cli(argv) == 0
    written = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert finetune_cli(argv + ["--resize"]) != 0
    assert "another recipe" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == written  # nothing of the first run lost
