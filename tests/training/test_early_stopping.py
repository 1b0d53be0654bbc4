"""Early stopping and the best checkpoint across a resume: the run stops and ends as the uninterrupted one."""

import csv

import keras
import numpy as np
import pytest

from keraszoo.training.early_stopping import ResumableCheckpoint
from keraszoo.training.early_stopping import ResumableEarlyStopping
from tests.training.helpers import assert_same_weights
from tests.training.helpers import base_args
from tests.training.helpers import train_cli


def _log(path, values, monitor="val_loss"):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "loss", monitor])
        for epoch, value in enumerate(values):
            writer.writerow([epoch, 1.0, value])


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize("values, patience, stopped, best_epoch, wait", [
    ([5.0, 4.0, 4.5, 4.6], 2, True, 1, 2),    # two epochs without improvement: the run had stopped at epoch 4
    ([5.0, 4.0, 4.5], 2, False, 1, 1),        # one epoch waited: it goes on and stops after one more bad epoch
    ([5.0, 4.0, 3.0], 1, False, 2, 0),
    ([], 3, False, 0, 0),
])
def test_the_state_is_replayed_from_the_log_by_keras_rule(values, patience, stopped, best_epoch, wait, tmp_path):
    log, best = tmp_path / "training_log.csv", tmp_path / "best.weights.h5"
    _log(log, values)
    model = _model()
    saved = [np.full(w.shape, 0.5, "float32") for w in model.get_weights()]
    model.set_weights(saved)
    model.save_weights(str(best))
    current = [np.zeros(w.shape, "float32") for w in model.get_weights()]
    model.set_weights(current)
    stopper = ResumableEarlyStopping(log, best, monitor="val_loss", patience=patience)
    assert stopper.replay(model) is stopped
    assert stopper.best_epoch == best_epoch and stopper.wait == wait
    for w, c in zip(model.get_weights(), current):  # the model is left as it was
        np.testing.assert_array_equal(w, c)
    if values:
        assert stopper.best == min(values)
        for w, s in zip(stopper.best_weights, saved):  # the best epoch's weights, from the checkpoint
            np.testing.assert_array_equal(w, s)
    else:
        assert stopper.best is None and stopper.best_weights is None
    checkpoint = ResumableCheckpoint(best, log, monitor="val_loss")
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    assert checkpoint.best == (min(values) if values else checkpoint.best)  # a worse epoch does not overwrite it


def test_a_run_killed_at_an_epoch_boundary_stops_and_ends_as_the_uninterrupted_one(tiny_mnist_dir, tmp_path):
    from tests.support.faults import SimulatedCrash
    from tests.support.faults import injected
    from tests.training.helpers import train_in_process

    # lr 0.2 on 204 digits: the validation loss goes up and down, so patience 1 stops the run early.
    common = {"--epochs": "8", "--early-stopping": "1", "--val-split": "0.2", "--lr": "0.2", "--no-eval": "",
              "--backup-every": "0", "--steps-per-execution": "1"}
    reference = tmp_path / "reference"
    assert train_cli(base_args(tiny_mnist_dir, **common, **{"--out": reference})) == 0
    rows = list(csv.DictReader((reference / "training_log.csv").open()))
    val = [float(r["val_loss"]) for r in rows]
    assert len(rows) < 8, val  # it stopped early: the case this test is about
    best = int(np.argmin(val))
    steps = 7  # ceil(204 / 32)
    # Killed after the epoch following the best one: the resumed part alone would neither know the
    # best value nor hold the best weights.
    kill_epoch = min(best + 1, len(rows) - 1)
    out = tmp_path / "crashed"
    argv = base_args(tiny_mnist_dir, **common, **{"--out": out})
    with injected(f"{(kill_epoch + 1) * steps}:raise"), pytest.raises(SimulatedCrash):
        train_in_process(argv)
    assert train_cli(argv) == 0
    resumed = [float(r["val_loss"]) for r in csv.DictReader((out / "training_log.csv").open())]
    assert resumed == val  # the same epochs, stopped at the same one
    assert_same_weights(reference, out)  # the best epoch's weights, restored in both
