"""training/publish_zoo.py and training/results_table.py on a tiny run and a private manifest."""

import json

import pytest

from tests.training.helpers import base_args
from training import publish_zoo
from training import results_table
from training import train


@pytest.fixture
def private_manifest(tmp_path, monkeypatch):
    path = tmp_path / "zoo" / "weights_manifest.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"format_version": 1, "models": {}}))
    monkeypatch.setenv("KERASZOO_MANIFEST", str(path))
    return path


def test_publish_evaluates_bundles_and_registers(tiny_mnist_dir, tmp_path, private_manifest):
    run = tmp_path / "run"
    assert train.main(base_args(tiny_mnist_dir, **{"--model": "vae", "--epochs": "1", "--no-eval": "",
                                                   "--out": run})) == 0
    assert publish_zoo.main(["vae_mnist", str(run), "--data-dir", str(tiny_mnist_dir), "--iwae-samples", "5",
                             "--staging", str(tmp_path / "stage")]) == 0
    entry = json.loads(private_manifest.read_text())["models"]["vae_mnist"]
    assert entry["hub"]["revision"] is None and entry["bundled"] == "pretrained/vae_mnist"
    assert entry["evaluation"]["command"] == "keraszoo evaluate vae_mnist --data mnist --binarize static --iwae-samples 5"
    assert entry["evaluation"]["num_examples"] == 64  # the tiny archive's whole test split
    for key in ("mse_per_pixel", "knn_accuracy", "negative_elbo_nats", "iwae_nll_nats"):
        assert key in entry["metrics"]
    assert entry["recipe"]["epochs"] == 1 and entry["recipe"]["command"].startswith("keraszoo train ")
    bundle = private_manifest.parent / "pretrained" / "vae_mnist"
    for name in ("config.json", "model.weights.h5", "metadata.json", "README.md", "reconstructions.png",
                 "samples.png", "interpolations.png"):
        assert (bundle / name).is_file(), name
    card = (bundle / "README.md").read_text()
    assert 'keraszoo.load("vae_mnist")' in card and "reconstructions.png" in card
    notes = json.loads((bundle / "metadata.json").read_text())["notes"]
    assert any("statically binarized" in n for n in notes) and any("k=5 samples" in n for n in notes)
    assert any(n.startswith("Quality target iwae_nll_nats <= 90.0000") for n in notes)
    assert all(n in card for n in notes) and entry["description"] == " ".join(notes)

    import keraszoo

    model = keraszoo.load("vae_mnist")  # from the bundle, hash-checked
    assert model.latent_dim == 4

    # Re-publishing (new card and notes) reuses the measured numbers only for the very same weights.
    assert publish_zoo.main(["vae_mnist", str(run), "--metrics-from-manifest", "--overwrite", "--note", "Re-carded.",
                             "--data-dir", str(tiny_mnist_dir), "--staging", str(tmp_path / "stage2")]) == 0
    again = json.loads(private_manifest.read_text())["models"]["vae_mnist"]
    assert again["metrics"] == entry["metrics"] and again["evaluation"] == entry["evaluation"]
    assert again["description"].endswith("Re-carded.") and "Re-carded." in (bundle / "README.md").read_text()
    other = tmp_path / "other_run"
    assert train.main(base_args(tiny_mnist_dir, **{"--model": "vae", "--epochs": "1", "--no-eval": "",
                                                   "--seed": "1", "--out": other})) == 0
    with pytest.raises(SystemExit, match="differ from the published vae_mnist"):
        publish_zoo.main(["vae_mnist", str(other), "--metrics-from-manifest", "--overwrite",
                          "--data-dir", str(tiny_mnist_dir), "--staging", str(tmp_path / "stage3")])

    table = results_table.render(json.loads(private_manifest.read_text()))
    assert "`vae_mnist`" in table and "keraszoo evaluate vae_mnist" in table
    assert f"{entry['metrics']['iwae_nll_nats']:.2f}" in table


def test_quality_targets_report_met_and_not_met_without_rounding():
    entries = {"vae_mnist": {"metrics": {"iwae_nll_nats": 87.75}}}
    met = publish_zoo.target_notes("hvae_mnist", "mnist", {"iwae_nll_nats": 86.70, "knn_accuracy": 0.95}, entries)
    assert met == ["Quality target iwae_nll_nats <= 86.7500 (vae_mnist: 87.7500 -1): measured 86.7000, met.",
                   "Quality target knn_accuracy >= 0.9000: measured 0.9500, met."]
    missed = publish_zoo.target_notes("hvae_mnist", "mnist", {"iwae_nll_nats": 86.7501}, entries)
    assert missed == ["Quality target iwae_nll_nats <= 86.7500 (vae_mnist: 87.7500 -1): measured 86.7501, NOT met."]
    assert "could not be checked" in publish_zoo.target_notes("hvae_mnist", "mnist", {"iwae_nll_nats": 80.0}, {})[0]
    assert publish_zoo.target_notes("conv_ae_cifar10", "cifar10", {"knn_accuracy": 0.3}, entries) == []  # no CIFAR floor
    assert "JPEG" in publish_zoo.evaluation_notes("cifar10", None, 100)[0]
    assert "k=100" in publish_zoo.evaluation_notes("cifar10", None, 100)[1]
    assert publish_zoo.evaluation_notes("mnist", None, None) == []


def test_card_pictures_show_every_cifar10_class():
    """cifar10_jpeg.npz is sorted by class (its first 16 test images are all airplanes); the card shows every class."""
    import numpy as np

    for labels in (np.repeat(np.arange(10), 1000),  # the archive's order
                   np.random.default_rng(0).permutation(np.repeat(np.arange(10), 1000))):  # as read
        shown = publish_zoo.card_indices("cifar10", labels)
        assert len(shown) == 16 and len(set(shown)) == 16 and len(set(labels[shown])) == 10
    assert list(publish_zoo.card_indices("mnist", np.arange(10000) % 10)) == list(range(16))


def test_readme_results_table_is_generated_from_the_manifest():
    """README numbers are never typed: the table must equal what results_table.py renders now."""
    assert results_table.main(["--check"]) == 0, "run: python training/results_table.py"
