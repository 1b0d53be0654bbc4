"""Retraining from an installed wheel: ``keraszoo train`` and ``keraszoo finetune`` with no checkout on the path."""

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """The package built as a wheel and installed (without dependencies) into a folder of its own."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"),
         str(REPO_ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    (wheel,) = (root / "dist").glob("keraszoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "keraszoo/training/train.py" in names and "keraszoo/training/recipe.py" in names
    assert not any(name.startswith(("training/", "tests/")) for name in names)
    site = root / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    return site


def _run(site, cwd, *argv):
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="2")
    # -P: the working directory is not put on sys.path; cwd is outside the checkout anyway.
    return subprocess.run([sys.executable, "-P", "-m", "keraszoo", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_train_and_finetune_from_the_installed_wheel(installed_wheel, tiny_mnist_dir, tmp_path):
    where = subprocess.run(
        [sys.executable, "-P", "-c", "import keraszoo, keraszoo.training.train as t; print(keraszoo.__file__, t.__file__)"],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(installed_wheel)), capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    for path in where.stdout.split():
        assert pathlib.Path(path).is_relative_to(installed_wheel), where.stdout

    proc = _run(installed_wheel, tmp_path, "train", "--model", "ae", "--dataset", "mnist", "--data-source", "npz",
                "--data-dir", str(tiny_mnist_dir), "--limit", "2000", "--epochs", "1", "--latent-dim", "4",
                "--hidden-dims", "16", "--eval-split", "test[:32]", "--out", "run")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["recipe"]["command"].startswith("keraszoo train --model ae")
    assert meta["recipe"]["model"]["variant"] == "ae" and "test_reconstruction_loss" in meta["metrics"]

    proc = _run(installed_wheel, tmp_path, "train", "--recipe", "vae_mnist", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    resolved = json.loads(proc.stdout)  # the packaged manifest's recipe, read from the wheel
    assert resolved["variant"] == "vae" and resolved["args"]["epochs"] == 100

    proc = _run(installed_wheel, tmp_path, "finetune", "run", "--data", str(tiny_mnist_dir / "mnist.npz"),
                "--epochs", "1", "--out", "ft")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "ft" / "metadata.json").read_text())["recipe"]["base_model"] == "run"
