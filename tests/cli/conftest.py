"""Fixtures of the command-line tests: tiny saved models, image files, a private manifest.

Every subprocess gets ``KERASZOO_MANIFEST`` pointing at a manifest the test
wrote, so the tests do not depend on what the packaged manifest holds.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from tests.support.hub_fixtures import fake_hub  # noqa: F401 - the loopback Hub, for `keraszoo push`

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
#: The console script that ``pip install -e .`` put next to the interpreter.
KERASZOO_BIN = pathlib.Path(sys.executable).with_name("keraszoo")
LATENT_DIM = 3
RECIPE = {
    "command": "python training/train.py --model vae --latent-dim 3 --hidden-dims 32 --epochs 1",
    "epochs": 1,
    "batch_size": 64,
    "seed": 0,
    "hardware": "CPU (test)",
    "wall_time_s": 1.0,
}


def cli_env(manifest=None, **extra):
    """Environment of a CLI subprocess: no TF log level preset (the CLI sets its own), a private manifest."""
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    if manifest is not None:
        env["KERASZOO_MANIFEST"] = str(manifest)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(*args, entry="module", manifest=None, env=None, cwd=None, timeout=180):
    """Run ``python -m keraszoo ARGS`` (``entry="module"``) or the ``keraszoo`` script (``entry="script"``)."""
    if entry == "module":
        command = [sys.executable, "-m", "keraszoo", *map(str, args)]
    else:
        assert KERASZOO_BIN.is_file(), f"console script missing: {KERASZOO_BIN} (pip install -e .)"
        command = [str(KERASZOO_BIN), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else cli_env(manifest), cwd=cwd or REPO_ROOT)


def assert_one_line_error(stderr, *fragments):
    """``stderr`` is exactly one ``keraszoo: error: ...`` line containing ``fragments``, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{stderr}"
    assert lines[0].startswith("keraszoo: error: "), lines[0]
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def assert_usage_error(stderr, command, *fragments):
    """argparse's usage line and ``keraszoo COMMAND: error: ...``."""
    assert stderr.startswith("usage: keraszoo"), stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    prefix = f"keraszoo {command}: error: " if command else "keraszoo: error: "
    assert last.startswith(prefix), last
    for fragment in fragments:
        assert fragment in last, f"{fragment!r} not in {last!r}"


def grid_size(n_rows, n_cols, tile=56, border=2):
    """(width, height) of a keraszoo grid: tiles of ``tile`` px (28 px x2) with 2 px borders."""
    return n_cols * tile + (n_cols + 1) * border, n_rows * tile + (n_rows + 1) * border


def read_png(path):
    from PIL import Image

    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.mode, img.size, np.asarray(img)


@pytest.fixture(scope="session")
def digits():
    """The first 64 bundled sample digits, float32 (64, 28, 28, 1), and labels."""
    from keraszoo.samples import load_mnist_sample

    return load_mnist_sample(64)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, digits):
    """A tiny dense VAE and AE, fitted one epoch on 64 digits and written with save_pretrained."""
    import keraszoo
    from keraszoo.models import VAE
    from keraszoo.models import AutoEncoder

    x, _ = digits
    root = tmp_path_factory.mktemp("models")
    paths = {}
    for key, cls in (("vae", VAE), ("ae", AutoEncoder)):
        model = cls(input_shape=(28, 28, 1), latent_dim=LATENT_DIM, hidden_dims=(32,), seed=0)
        model.compile()
        model.fit(x, epochs=1, batch_size=32, verbose=0)
        paths[key] = keraszoo.save_pretrained(model, root / key)
    return types.SimpleNamespace(**paths)


@pytest.fixture(scope="session")
def image_files(tmp_path_factory, digits):
    """PNG inputs: 5 digits in a folder, a 32x32 digit, a colored RGB image, a gray image stored as RGB."""
    from PIL import Image

    x, labels = digits
    root = tmp_path_factory.mktemp("images")
    folder = root / "digits"
    folder.mkdir()
    u8 = np.round(x[..., 0] * 255).astype(np.uint8)
    for i in range(5):
        Image.fromarray(u8[i]).save(folder / f"digit_{i}.png")
    Image.fromarray(u8[0]).resize((32, 32)).save(root / "big.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(root / "color.png")
    Image.fromarray(np.repeat(u8[1][..., None], 3, axis=-1)).save(root / "gray_as_rgb.png")
    np.save(root / "digits.npy", u8[:10])
    (root / "notes.txt").write_text("not an image")
    return types.SimpleNamespace(
        root=root, folder=folder, files=sorted(folder.glob("*.png")), big=root / "big.png",
        color=root / "color.png", gray_rgb=root / "gray_as_rgb.png", npy=root / "digits.npy",
        text=root / "notes.txt", x=x[:10], labels=labels[:10],
    )


@pytest.fixture(scope="session")
def empty_manifest(tmp_path_factory):
    path = tmp_path_factory.mktemp("empty_manifest") / "weights_manifest.json"
    path.write_text(json.dumps({"format_version": 1, "models": {}}))
    return path


@pytest.fixture(scope="session")
def zoo_manifest(tmp_path_factory, tiny_models):
    """A manifest with the tiny VAE as ``tiny_vae`` (bundled next to it), like a published zoo model."""
    from keraszoo.weights import manifest

    path = tmp_path_factory.mktemp("zoo") / "weights_manifest.json"
    path.write_text(json.dumps({"format_version": 1, "models": {}}))
    manifest.add_entry(
        "tiny_vae", tiny_models.vae, repo_id="keraszoo-test/tiny-vae", revision="a" * 40, dataset="mnist",
        license={"weights": "MIT", "data": "CC BY-SA 3.0"},
        paper={"title": "Auto-Encoding Variational Bayes", "url": "https://arxiv.org/abs/1312.6114"},
        recipe=RECIPE, metrics={"test_mse": 0.05}, bundle=True, description="tiny test VAE", path=path,
    )
    return path


@pytest.fixture(scope="session")
def tiny_mnist_dir(tmp_path_factory, digits):
    """A folder with a small ``mnist.npz`` (48 train / 16 test real digits) for evaluate/train."""
    x, y = digits
    u8 = np.round(x[..., 0] * 255).astype(np.uint8)
    d = tmp_path_factory.mktemp("tiny_mnist")
    np.savez(d / "mnist.npz", x_train=u8[:48], y_train=y[:48], x_test=u8[48:64], y_test=y[48:64])
    return d


@pytest.fixture
def cli(capsys):
    """In-process ``keraszoo.cli.main(argv)``: returns ``(exit_code, stdout, stderr)``."""
    from keraszoo.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
