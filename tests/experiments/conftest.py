"""Shared fixtures of the experiment tests: a tiny real MNIST archive and a tiny study spec.

The archive is built from the 500 MNIST test digits bundled with keraszoo (CI has
no full dataset): the first 400 as the train split, the last 100 as the test split.
"""

import json

import numpy as np
import pytest

#: A study small enough for a test: two models, two code sizes, tiny networks.
TINY_SPEC = {
    "name": "tiny",
    "description": "AE and VAE at two code sizes, tiny networks (tests)",
    "variants": ["ae", "vae"],
    "fixed": {"hidden_dims": [32], "batch_size": 64},
    "grid": {"latent_dim": [2, 4]},
    "budgets": {"smoke": {"limit": 128, "eval_examples": 50, "knn_train_examples": 128}},
    "probes": ["active_units", "code_shift"],
    "datasets": ["mnist"],
}


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    """A folder with ``mnist.npz`` (uint8 x_train, y_train, x_test, y_test) made of the bundled digits."""
    from keraszoo.samples import load_mnist_sample

    x, y = load_mnist_sample()
    x = np.round(x[..., 0] * 255).astype("uint8")
    folder = tmp_path_factory.mktemp("data")
    np.savez(folder / "mnist.npz", x_train=x[:400], y_train=y[:400].astype("uint8"),
             x_test=x[400:], y_test=y[400:].astype("uint8"))
    return folder


@pytest.fixture()
def tiny_spec(tmp_path):
    """The path of :data:`TINY_SPEC` as a user's JSON spec file."""
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_SPEC))
    return path


@pytest.fixture(scope="session")
def sweep(tmp_path_factory, mnist_dir):
    """The tiny study (a user spec file), run once for the whole session with workers=1: ``(folder, SweepResult,
    spec path)``. Tests read it, run it again into it (finished runs are skipped) or copy it before changing it."""
    from keraszoo.experiments import run_study

    root = tmp_path_factory.mktemp("sweep")
    spec = root / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC))
    out = root / "out"
    result = run_study(str(spec), dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True)
    return out, result, spec
