"""``keraszoo.anomaly.Detector``: scikit-learn's and PyOD's conventions, calibration, training, save and load."""

import json

import numpy as np
import pytest

import keraszoo
from keraszoo.anomaly import Detector
from keraszoo.anomaly import NotFittedError
from keraszoo.models import AutoEncoder

SMALL = {"latent_dim": 4, "hidden_dims": [32]}


@pytest.fixture(scope="module")
def digits(mnist_sample):
    """Normal images (the bundled ones and sevens), and clearly anomalous ones (noise, flat grey)."""
    x, y = np.asarray(mnist_sample[0]), np.asarray(mnist_sample[1])
    rng = np.random.default_rng(0)
    odd = np.concatenate([rng.random((20, 28, 28, 1), dtype=np.float32), np.full((20, 28, 28, 1), 0.5, np.float32)])
    return x[np.isin(y, (1, 7))], odd


@pytest.fixture(scope="module")
def fitted(digits, tmp_path_factory):
    """A fresh tiny VAE trained 3 epochs by the training engine into a folder, calibrated at fpr 0.1."""
    normal, _ = digits
    out = tmp_path_factory.mktemp("det") / "run"
    detector = Detector("vae", epochs=3, model_kwargs=SMALL, fpr=0.1, batch_size=32, lr=3e-3).fit(normal, out=out)
    return detector, out


def test_pyod_and_sklearn_signs_and_labels(fitted, digits):
    detector, _ = fitted
    normal, odd = digits
    assert detector.method_ == "elbo" and detector.model_.variant == "vae"
    scores = detector.decision_function(odd)
    assert scores.shape == (len(odd),) and scores.dtype == np.float64
    assert np.median(scores) > np.quantile(detector.decision_scores_, 0.9)  # PyOD: higher = more anomalous
    np.testing.assert_array_equal(detector.score_samples(odd), -scores)  # scikit-learn: higher = more normal
    flags = detector.predict(odd)
    assert flags.dtype == np.int64 and set(np.unique(flags)) <= {0, 1}  # PyOD: 1 anomaly, 0 normal
    np.testing.assert_array_equal(flags, (scores > detector.threshold_).astype(int))
    assert flags.mean() > 0.9


def test_threshold_is_the_calibration_quantile(fitted, digits):
    detector, _ = fitted
    normal, _ = digits
    cal = detector.decision_scores_
    n_cal = int(round(0.2 * len(normal)))
    assert len(cal) == n_cal and detector.training_.train_images == len(normal) - n_cal
    assert detector.threshold_ == np.quantile(cal, 0.9, method="higher") and detector.threshold_ in cal
    assert np.mean(cal > detector.threshold_) <= 0.1 + 1e-9
    np.testing.assert_array_equal(detector.labels_, (cal > detector.threshold_).astype(int))
    stats = detector.calibration()
    assert stats["count"] == n_cal and stats["false_positive_rate"] == np.mean(cal > detector.threshold_)


def test_estimator_params_follow_scikit_learn():
    detector = Detector("ae", fpr=0.2, epochs=4)
    params = detector.get_params()
    assert params["fpr"] == 0.2 and params["epochs"] == 4 and params["model"] == "ae"
    assert detector.set_params(fpr=0.01) is detector and detector.fpr == 0.01
    with pytest.raises(ValueError, match="Invalid parameter 'threshold'"):
        detector.set_params(threshold=3)
    sklearn = pytest.importorskip("sklearn.base")
    clone = sklearn.clone(detector)
    assert clone.get_params() == detector.get_params() and clone is not detector
    with pytest.raises(NotFittedError, match="not fitted yet"):
        detector.decision_function(np.zeros((1, 28, 28, 1), np.float32))


def test_saved_detector_loads_verified_with_the_same_scores(fitted, digits, tmp_path):
    detector, run = fitted
    _, odd = digits
    path = detector.save(run)  # the training run's folder, completed in place
    assert (run / "training_log.csv").is_file() and (run / "anomaly.npz").is_file()
    meta = json.loads((run / "metadata.json").read_text())
    section = meta["anomaly"]
    assert section["method"] == "elbo" and section["threshold"] == detector.threshold_ and section["fpr"] == 0.1
    assert section["model"]["kind"] == "fresh" and section["calibration"]["count"] == len(detector.decision_scores_)
    assert "anomaly.npz" in meta["files"]
    loaded = Detector.load(path)
    np.testing.assert_array_equal(loaded.decision_function(odd), detector.decision_function(odd))
    np.testing.assert_array_equal(loaded.decision_scores_, detector.decision_scores_)
    assert loaded.threshold_ == detector.threshold_ and loaded.method_ == detector.method_
    assert type(keraszoo.load(path)).__name__ == "VAE"  # the folder is still a model's
    # another folder: a save_pretrained of the model, then the detector
    copy = detector.save(tmp_path / "copy")
    np.testing.assert_array_equal(Detector.load(copy).predict(odd), detector.predict(odd))
    with open(copy / "anomaly.npz", "ab") as f:  # changed after saving: refused by its digest
        f.write(b"\0")
    with pytest.raises(Exception, match="anomaly.npz"):
        Detector.load(copy)


def test_a_given_model_with_the_latent_score_saves_its_reference(digits, tmp_path):
    normal, odd = digits
    model = AutoEncoder(input_shape=(28, 28, 1), **SMALL, seed=0)
    detector = Detector(model, method="latent", fpr=0.05).fit(normal)
    assert detector.training_.kind == "pretrained" and detector.training_.epochs == 0
    assert detector.reference_ is not None and detector.reference_.count == detector.training_.train_images
    loaded = Detector.load(detector.save(tmp_path / "det"))
    np.testing.assert_allclose(loaded.decision_function(odd), detector.decision_function(odd))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(keraszoo.output_folder.FolderNotEmptyError, match="notes.txt"):
        detector.save(tmp_path / "mine")


def test_unavailable_method_is_refused_before_training(digits):
    normal, _ = digits
    with pytest.raises(ValueError, match="no 'elbo' anomaly score"):
        Detector("ae", method="elbo", epochs=1).fit(normal)
    with pytest.raises(ValueError, match="takes images of 28x28x1; the images given are 8x8x1"):
        Detector(AutoEncoder(input_shape=(28, 28, 1), latent_dim=2)).fit(np.zeros((4, 8, 8, 1), np.float32))
