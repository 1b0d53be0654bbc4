"""The model commands through the real entry points, in subprocesses that import TensorFlow.

``python -m keraszoo demo`` and the installed ``keraszoo`` script run here by
default (about 5 s each on an idle machine); the other commands through the
script are ``slow`` (they are covered in process by ``test_commands.py``).
"""

import json

import numpy as np
import pytest

from tests.cli.conftest import assert_one_line_error
from tests.cli.conftest import grid_size
from tests.cli.conftest import read_png
from tests.cli.conftest import run_cli


def test_demo_through_python_m_keraszoo(tiny_models, empty_manifest, tmp_path):
    import keraszoo
    from keraszoo.evaluation import reconstruction_metrics
    from keraszoo.samples import load_mnist_sample

    out = tmp_path / "demo"
    proc = run_cli("demo", "--model", tiny_models.vae, "--out", out, manifest=empty_manifest)
    assert proc.returncode == 0, proc.stderr
    # Nothing on stderr: TensorFlow's C++ logs are silenced unless --debug.
    assert proc.stderr == "", proc.stderr
    for name in ("mse_per_pixel", "bce_nats_per_image", "psnr_db", "reconstructions.png", "samples.png",
                 "interpolation.png", "metrics.json"):
        assert name in proc.stdout, name
    assert sorted(p.name for p in out.iterdir()) == [
        "interpolation.png", "metrics.json", "reconstructions.png", "samples.png"]
    assert read_png(out / "reconstructions.png")[1] == grid_size(2, 16)
    assert read_png(out / "samples.png")[1] == grid_size(8, 8)
    assert read_png(out / "interpolation.png")[1] == grid_size(4, 10)
    report = json.loads((out / "metrics.json").read_text())
    assert report["model"] == str(tiny_models.vae) and report["class"] == "VAE"
    expected = reconstruction_metrics(keraszoo.load(tiny_models.vae), load_mnist_sample()[0])
    assert report["metrics"] == pytest.approx(expected, rel=1e-5)


def test_demo_of_the_published_vae_mnist(tmp_path):
    """Runs once the lead's trained ``vae_mnist`` is in the packaged manifest."""
    import keraszoo

    if "vae_mnist" not in keraszoo.list_models():
        pytest.skip("vae_mnist is not published in the manifest yet")
    proc = run_cli("demo", "--out", tmp_path, entry="script")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["model"] == "vae_mnist" and report["variant"] == "vae"
    # A trained MNIST VAE reconstructs the sample digits far better than a constant image (MSE ~0.1).
    assert report["metrics"]["mse_per_pixel"] < 0.05
    for name in ("reconstructions.png", "samples.png", "interpolation.png"):
        assert read_png(tmp_path / name)[0] == "L"


def test_reconstruct_through_the_keraszoo_script(tiny_models, image_files, empty_manifest, tmp_path):
    out = tmp_path / "grid.png"
    proc = run_cli("reconstruct", tiny_models.ae, image_files.folder, image_files.big, "--resize", "--quiet",
                   "-o", out, entry="script", manifest=empty_manifest)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    mode, size, _ = read_png(out)
    assert mode == "L" and size == grid_size(2, 6)


@pytest.mark.slow
def test_every_model_command_through_the_script(tiny_models, image_files, tiny_mnist_dir, empty_manifest, tmp_path):
    def ok(*args):
        proc = run_cli(*args, entry="script", manifest=empty_manifest)
        assert proc.returncode == 0, proc.stderr
        return proc

    ok("encode", tiny_models.vae, image_files.folder, "-o", tmp_path / "codes.npy")
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (5, 3)
    ok("decode", tiny_models.vae, tmp_path / "codes.npy", "-o", tmp_path / "decoded.png")
    assert read_png(tmp_path / "decoded.png")[1] == grid_size(1, 5)
    ok("sample", tiny_models.vae, "-n", "64", "--seed", "0", "-o", tmp_path / "samples.png")
    assert read_png(tmp_path / "samples.png")[1] == grid_size(8, 8)
    ok("interpolate", tiny_models.vae, *image_files.files[:2], "--steps", "10", "-o", tmp_path / "strip.png")
    assert read_png(tmp_path / "strip.png")[1] == grid_size(1, 10)
    proc = ok("evaluate", tiny_models.vae, "--data-source", "npz", "--data-dir", tiny_mnist_dir, "--json")
    assert json.loads(proc.stdout)["num_examples"] == 16

    proc = run_cli("reconstruct", tiny_models.ae, image_files.big, "-o", tmp_path / "x.png", entry="script",
                   manifest=empty_manifest)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "expects 28x28")
