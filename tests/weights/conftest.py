"""Fixtures for the weights tests: a small saved model, a private manifest, the fake Hub."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pytest

from tests.support.hub_fixtures import fake_hub  # noqa: F401 - re-exported fixtures
from tests.support.hub_fixtures import hub_env  # noqa: F401 - re-exported fixtures

RECIPE = {
    "command": "python training/train.py --variant ae --dataset mnist --latent-dim 4 --epochs 1",
    "epochs": 1,
    "batch_size": 32,
    "seed": 0,
    "hardware": "CPU (test)",
    "wall_time_s": 1.5,
}
PAPER = {"title": "Reducing the Dimensionality of Data with Neural Networks",
         "url": "https://doi.org/10.1126/science.1127647"}
LICENSE = {"weights": "MIT", "data": "CC BY-SA 3.0"}


@pytest.fixture(autouse=True)
def _clear_keras_session():
    """Overrides the suite-wide fixture for this folder: reset Keras' global state after each test,
    but without the forced ``gc.collect()`` (``free_memory=False``), which costs ~0.5 s per test here
    and most of these tests build no model at all."""
    yield
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=False)


def make_model(latent_dim=4, variant="ae", **kwargs):
    """A small dense keraszoo model (a few thousand parameters)."""
    from keraszoo.models import list_variants

    options = {"hidden_dims": (16,), "seed": 1}
    options.update(kwargs)
    return list_variants()[variant](input_shape=(28, 28, 1), latent_dim=latent_dim, architecture="dense",
                                    **options)


def reference_batch(n=4):
    return np.random.default_rng(0).random((n, 28, 28, 1), dtype=np.float32)


@dataclasses.dataclass
class SavedModel:
    directory: pathlib.Path
    x: np.ndarray
    reconstruction: np.ndarray
    codes: np.ndarray
    parameter_count: int

    def files(self):
        # (without keraszoo's hidden marker, .keraszoo.json: it is not part of the model)
        return {p.name: p.read_bytes() for p in sorted(self.directory.iterdir())
                if p.is_file() and not p.name.startswith(".")}


def save_small_model(directory, *, latent_dim=4, variant="ae", metrics=None, **save_kwargs):
    """Build a small model, perturb its weights (so they differ from a fresh init), save it."""
    import keras

    import keraszoo

    model = make_model(latent_dim=latent_dim, variant=variant)
    rng = np.random.default_rng(123)
    for weight in model.weights:
        value = keras.ops.convert_to_numpy(weight)
        weight.assign(value + rng.normal(0, 0.05, size=value.shape).astype(value.dtype))
    x = reference_batch()
    reconstruction = keras.ops.convert_to_numpy(model.reconstruct(x))
    codes = keras.ops.convert_to_numpy(model.encode(x))
    keraszoo.save_pretrained(
        model, directory, metrics=metrics if metrics is not None else {"test_reconstruction_bce": 101.5},
        recipe=RECIPE, dataset="mnist", data_license="CC BY-SA 3.0", paper=PAPER, **save_kwargs,
    )
    return SavedModel(pathlib.Path(directory), x, reconstruction, codes, int(model.count_params()))


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory):
    """A save_pretrained folder of a small AutoEncoder, with reference outputs."""
    return save_small_model(tmp_path_factory.mktemp("saved") / "ae_small")


@pytest.fixture
def private_manifest(tmp_path, monkeypatch):
    """An empty manifest in tmp_path, made the active one through $KERASZOO_MANIFEST."""
    root = tmp_path / "pkg"
    root.mkdir()
    path = root / "weights_manifest.json"
    path.write_text(json.dumps({"format_version": 1, "models": {}}))
    monkeypatch.setenv("KERASZOO_MANIFEST", str(path))
    return path


def commit_saved(hub, saved, repo_id="keraszoo-test/ae-small"):
    """Commit a saved folder to the fake Hub; return the commit id."""
    return hub.commit_folder(repo_id, saved.directory, message="add model")
