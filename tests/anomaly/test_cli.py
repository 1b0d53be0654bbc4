"""``keraszoo anomaly fit`` and ``keraszoo anomaly score`` on a folder of the user's PNG files."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from keraszoo.cli import main


@pytest.fixture(scope="module")
def folders(mnist_sample, tmp_path_factory):
    """``normal/``: 50 PNG ones; ``mixed/``: 10 other ones and 10 noise images (the anomalies)."""
    x, y = np.asarray(mnist_sample[0]), np.asarray(mnist_sample[1])
    pixels = np.round(x[..., 0] * 255).astype(np.uint8)
    root = tmp_path_factory.mktemp("anomaly_cli")
    ones = np.where(y == 1)[0]
    (root / "normal").mkdir()
    (root / "mixed").mkdir()
    for i in ones[:50]:
        Image.fromarray(pixels[i]).save(root / "normal" / f"one_{i}.png")
    for i in ones[50:60]:
        Image.fromarray(pixels[i]).save(root / "mixed" / f"one_{i}.png")
    rng = np.random.default_rng(0)
    for k in range(10):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(root / "mixed" / f"noise_{k}.png")
    return root


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


SEED = 0


def test_calibrate_a_saved_model_then_score_a_folder(folders, tmp_path, capsys):
    """A trained model (here a tiny saved one) is calibrated only; the CSV, its order and flags, the pictures."""
    import keras

    import keraszoo
    from keraszoo.models import AutoEncoder

    keras.utils.set_random_seed(SEED)  # the initial weights: not what earlier tests left in Keras' global generator
    model = keraszoo.save_pretrained(AutoEncoder(input_shape=(28, 28, 1), latent_dim=2, hidden_dims=(8,), seed=0),
                                     tmp_path / "model", keras_archive=False)
    det, scores = tmp_path / "det", tmp_path / "out" / "scores.csv"
    assert main(["-q", "anomaly", "fit", "--data", str(folders / "normal"), "--model", str(model), "--fpr", "0.1",
                 "--out", str(det)]) == 0
    meta = json.loads((det / "metadata.json").read_text())
    assert meta["anomaly"]["model"] == {"calibration_images": 50, "epochs": 0, "kind": "pretrained",
                                        "source": str(model), "train_images": 50}
    assert main(["anomaly", "score", str(det), str(folders / "mixed"), "-o", str(scores)]) == 0
    line = next(t for t in capsys.readouterr().out.splitlines() if "flagged as anomalous" in t)
    flagged = int(line.split(" of ")[0])
    rows = _rows(scores)
    assert len(rows) == 20 and list(rows[0]) == ["file", "score", "flag"]
    values = [float(r["score"]) for r in rows]
    assert values == sorted(values, reverse=True)  # most anomalous first
    threshold = meta["anomaly"]["threshold"]
    assert [r["flag"] for r in rows] == ["1" if v > threshold else "0" for v in values]
    assert flagged == sum(r["flag"] == "1" for r in rows)
    assert all(r["flag"] == "0" for r in rows[10:])  # the held-out ones under the threshold


@pytest.mark.slow
def test_fit_then_score_a_folder(folders, capsys):
    """A fresh autoencoder trained on the normal folder by the engine flags the noise images, not the digits."""
    det, scores = folders / "det", folders / "out" / "scores.csv"
    argv = ["anomaly", "fit", "--data", str(folders / "normal"), "--model", "ae", "--epochs", "3", "--hparam",
            "latent_dim=4", "--hparam", "hidden_dims=[32]", "--lr", "3e-3", "--batch-size", "16", "--fpr", "0.1",
            "--out", str(det)]
    assert main(["-q", *argv]) == 0
    meta = json.loads((det / "metadata.json").read_text())
    assert meta["anomaly"]["method"] == "reconstruction" and meta["anomaly"]["model"]["train_images"] == 40
    assert (det / "command.txt").read_text().startswith("keraszoo anomaly fit --data")
    assert main(["anomaly", "score", str(det), str(folders / "mixed"), "-o", str(scores)]) == 0
    assert "flagged as anomalous" in capsys.readouterr().out
    rows = _rows(scores)
    assert {r["file"] for r in rows[:10]} == {f"noise_{k}.png" for k in range(10)}
    assert all(r["flag"] == "1" for r in rows[:10])
    for name in ("scores_extremes.png", "scores_histogram.png"):
        assert Image.open(scores.parent / name).size[0] > 100
