"""Every entry of the real weights_manifest.json, parametrized: a new zoo model is tested automatically."""

import os
import pathlib

import numpy as np
import pytest

from keraszoo.weights import manifest
from keraszoo.weights.bundle import bundled_files
from keraszoo.weights.integrity import sha256_file

NAMES = manifest.list_models()
SHARED_DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"
DETERMINISTIC = ("mse_per_pixel", "bce_nats_per_image", "psnr_db", "knn_accuracy", "linear_probe_accuracy")


@pytest.mark.parametrize("name", NAMES)
def test_bundled_files_match_the_manifest(name):
    entry = manifest.get_entry(name)
    assert entry["bundled"], f"{name} must ship with the package (bundled copy)"
    folder = manifest.bundled_dir(name)
    for filename in bundled_files(entry):
        record = entry["hub"]["files"][filename]
        path = folder / filename
        assert path.stat().st_size == record["size"] and sha256_file(path) == record["sha256"], filename


@pytest.mark.parametrize("name", NAMES)
def test_loads_offline_and_reconstructs_the_sample_digits(name, mnist_sample, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import keraszoo

    model = keraszoo.load(name)
    assert model.optimizer is not None, "load() returns a compiled model"
    entry = manifest.get_entry(name)
    assert list(model.image_shape) == list(entry["input"]["shape"])
    if entry["dataset"]["name"] != "mnist":
        pytest.skip("the bundled sample digits are MNIST")
    x = mnist_sample[0][:200]
    rec = np.asarray(model.reconstruct(x, **model.label_kwargs(mnist_sample[1][:200])))  # a conditional model: the labels
    mse = float(np.mean((rec - x) ** 2))
    assert mse < 0.05, f"{name} reconstructs the sample digits with MSE {mse:.4f} per pixel"
    if model.is_generative:
        drawn = model.sample(4, seed=0, **model.label_kwargs([0, 1, 2, 3]))
        assert np.asarray(drawn).shape == (4, 28, 28, 1)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "mnist.npz").exists(), reason="needs ../shared/data/mnist.npz")
@pytest.mark.parametrize("name", NAMES)
def test_reevaluation_reproduces_the_manifest_metrics(name):
    """The deterministic metrics of the full test split match the manifest (the stochastic ones need k=5000)."""
    import keraszoo

    entry = manifest.get_entry(name)
    evaluation = entry["evaluation"]
    binarize = None if evaluation["binarize"] == "none" else evaluation["binarize"]
    results = keraszoo.evaluate(keraszoo.load(name), entry["dataset"]["name"], source="npz",
                                data_dir=os.environ.get("KERASZOO_DATA_DIR", str(SHARED_DATA)),
                                binarize=binarize, iwae_samples=None)
    for key in DETERMINISTIC:
        assert results[key] == pytest.approx(entry["metrics"][key], rel=1e-4, abs=1e-6), key
