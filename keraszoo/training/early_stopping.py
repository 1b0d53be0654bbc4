"""Early stopping and the best-weights checkpoint that survive a resume.

Keras' ``EarlyStopping`` and ``ModelCheckpoint(save_best_only=True)`` keep their
state (the best value, the epochs waited, the best weights) in memory, reset at
every ``fit`` call. A run of :func:`keraszoo.training.fitting.fit_resumable`
killed and resumed starts them afresh: it would wait ``patience`` epochs more
than the uninterrupted run, stop at another epoch, overwrite ``best.weights.h5``
with a worse epoch, and restore the best weights of the resumed part only.

Here the state is replayed from the epochs already in ``training_log.csv`` (the
rows :func:`fit_resumable` keeps, exactly the epochs that are not retrained),
with Keras' own comparison, and the best weights of an earlier part come from
``best.weights.h5``, which the resumable checkpoint keeps at the best epoch. A
resumed run stops at the epoch and with the weights of the uninterrupted one.
"""

from __future__ import annotations

import csv
import math
import pathlib

import keras


def logged_values(log_path, monitor) -> list:
    """``monitor``'s value of every epoch row of the CSV log, in order (``None`` where missing)."""
    path = pathlib.Path(log_path)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    values = []
    for row in rows:
        try:
            values.append(float(row.get(monitor) or "nan"))
        except ValueError:
            values.append(float("nan"))
    return [None if math.isnan(v) else v for v in values]


def _improves(callback, value, best) -> bool:
    """The callback's own "better than best" rule (Keras versions differ in where it lives)."""
    if getattr(callback, "monitor_op", None) is None and hasattr(callback, "_set_monitor_op"):
        callback._set_monitor_op()
    if best is None:
        return True
    if hasattr(callback, "_is_improvement"):
        return bool(callback._is_improvement(value, best))
    return bool(callback.monitor_op(value, best))


class ResumableCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint(save_best_only=True, save_weights_only=True)`` whose best value is replayed from the log."""

    def __init__(self, filepath, log_path, monitor="loss"):
        super().__init__(str(filepath), monitor=monitor, save_best_only=True, save_weights_only=True)
        self.log_path = log_path

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for value in logged_values(self.log_path, self.monitor):
            if value is not None and _improves(self, value, self.best):
                self.best = value

    def on_epoch_end(self, epoch, logs=None):
        """Keeps ``filepath`` at the best epoch, written whole or not at all (a full disk names the file)."""
        from keraszoo.training import diskio

        current = (logs or {}).get(self.monitor)
        if current is None or not math.isfinite(float(current)) or not _improves(self, float(current), self.best):
            return
        self.best = float(current)
        diskio.save_weights_file(self.model, self.filepath, what="the best weights so far",
                                 advice="free some space on that disk (or give --out on another one) and run the "
                                        "same command again to resume")


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping(restore_best_weights=True)`` whose wait, best epoch and best weights survive a resume."""

    def __init__(self, log_path, best_weights_path, *, monitor="loss", patience=0, epochs=None):
        super().__init__(monitor=monitor, patience=patience, restore_best_weights=True)
        self.log_path = pathlib.Path(log_path)
        self.best_weights_path = pathlib.Path(best_weights_path)
        self.epochs = epochs  # the run's last epoch: a resumed run's first fit call may end mid-run
        self._last_epoch = -1

    def replay(self, model):
        """Replays the logged epochs (Keras' own rule); True when the run had already stopped."""
        self.set_model(model)
        super().on_train_begin()
        stopped = False
        values = logged_values(self.log_path, self.monitor)
        for epoch, value in enumerate(values):
            if value is None or epoch < self.start_from_epoch:
                continue
            self.wait += 1
            if _improves(self, value, self.best):
                self.best, self.best_epoch = value, epoch
                if self.baseline is None or _improves(self, value, self.baseline):
                    self.wait = 0
            elif self.wait >= self.patience and epoch > 0:
                stopped = True
                self.stopped_epoch = epoch
                break
        if self.best is not None:
            self.best_weights = self._weights_in(self.best_weights_path, model)
        return stopped

    def on_train_begin(self, logs=None):
        self.replay(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        # The best weights are restored when the run ends, not when a resumed run's partial epoch does.
        if self.model.stop_training or self.epochs is None or self._last_epoch + 1 >= self.epochs:
            super().on_train_end(logs)

    @staticmethod
    def _weights_in(path, model):
        """The weights ``path`` holds, as ``model.get_weights()`` lists them (the model is left as it was).

        ``load_weights`` also sets what the file holds beyond the weights -- the random generators' states (its
        ``vars``) and any optimizer's -- and ``set_weights`` puts back the weights alone: every variable of the
        model and of its optimizers is put back as it was, or a resumed VAE would draw its noise from the best
        epoch's generator state and part from the uninterrupted run."""
        if not path.is_file():
            return None
        state = _state_variables(model)
        before = [keras.ops.convert_to_numpy(v.value).copy() for v in state]
        model.load_weights(str(path))
        best = model.get_weights()
        for variable, value in zip(state, before):
            variable.assign(value)
        return best


def _state_variables(model) -> list:
    """Every variable ``load_weights`` may set: the model's (weights, random generators' states) and its optimizers'."""
    optimizers = model._phase_optimizers() if hasattr(model, "_phase_optimizers") else [getattr(model, "optimizer", None)]
    seen, out = set(), []
    for v in list(model.variables) + [v for o in optimizers if o is not None for v in o.variables]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out
