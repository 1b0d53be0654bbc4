"""Keras callbacks of a training run (the backup is :mod:`keraszoo.training.backup`).

* :class:`Throughput` -- images/s of every epoch, into the epoch logs (so
  ``CSVLogger`` records it);
* :class:`StopOnNonFinite` -- ``TerminateOnNaN`` that remembers where the
  loss became NaN/Inf (epoch, step), for the error message.
"""

from __future__ import annotations

import math
import time

import keras

from keraszoo.training.backup import ResumableBackup


class Throughput(keras.callbacks.Callback):
    """Training images per second, per epoch and overall.

    ``logs["images_per_s"]`` of each epoch counts the epoch's training time
    (from its start to its last batch: validation excluded; tracing and XLA
    compilation included in the first epoch); :attr:`steady_images_per_s`
    leaves out each epoch's first execution (warm-up).

    Args:
        examples_in_epoch: ``f(epoch) -> images trained in that epoch``.
        batch_size: the global batch size.
    """

    def __init__(self, examples_in_epoch, batch_size):
        super().__init__()
        self.examples_in_epoch = examples_in_epoch
        self.batch_size = int(batch_size)
        self.total_images = 0
        self.total_time = 0.0
        self.steady_images = 0
        self.steady_time = 0.0
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._t_first = None
        self._t_last = None
        self._first_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._t_last = time.perf_counter()
        if self._t_first is None:
            self._t_first = self._t_last
            self._first_steps = int(batch) + 1

    def on_epoch_end(self, epoch, logs=None):
        # Training time only: validation runs between the last batch and here.
        t1 = self._t_last if self._t_last is not None else time.perf_counter()
        n = int(self.examples_in_epoch(epoch))
        dt = max(t1 - self._t0, 1e-9)
        self.total_images += n
        self.total_time += dt
        rest = n - self._first_steps * self.batch_size
        if self._t_first is not None and rest > 0 and t1 > self._t_first:
            self.steady_images += rest
            self.steady_time += t1 - self._t_first
        self.epochs.append({"epoch": int(epoch), "images": n, "seconds": dt, "images_per_s": n / dt})
        if logs is not None:
            logs["images_per_s"] = n / dt

    @property
    def images_per_s(self) -> float:
        """All images / all epoch time (warm-up included)."""
        return self.total_images / self.total_time if self.total_time else 0.0

    @property
    def steady_images_per_s(self) -> float:
        """Images/s without each epoch's first execution."""
        return self.steady_images / self.steady_time if self.steady_time else self.images_per_s


class StopOnNonFinite(keras.callbacks.Callback):
    """``TerminateOnNaN`` that records where the loss became NaN/Inf.

    Stops training (``model.stop_training``) at the first batch whose logged
    loss is not finite. Place it after the :class:`ResumableBackup` whose step
    counter it reads. :attr:`diverged` is then ``True`` and
    :meth:`describe` says where (epoch, step; with ``steps_per_execution > 1``
    the range of steps of that execution) and what the loss was.
    """

    def __init__(self, backup: ResumableBackup):
        super().__init__()
        self.backup = backup
        self.diverged = False
        self.value = None
        self.first_step = self.last_step = None
        self._finite_step = 0

    def on_train_begin(self, logs=None):
        self._finite_step = self.backup.global_step

    def on_epoch_begin(self, epoch, logs=None):
        self._finite_step = max(self._finite_step, self.backup._epoch_base)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        try:
            value = float(loss)
        except (TypeError, ValueError):
            return
        if math.isfinite(value):
            self._finite_step = self.backup.global_step
            return
        if not self.diverged:
            self.diverged = True
            self.value = value
            self.first_step = self._finite_step + 1
            self.last_step = max(self.backup.global_step, self.first_step)
        self.model.stop_training = True

    @property
    def kind(self) -> str:
        """``"NaN"`` or ``"Inf"``."""
        return "NaN" if self.value is None or math.isnan(self.value) else "Inf"

    def where(self) -> str:
        """``"epoch 1, step 4 (global step 4)"`` (1-based epoch and step)."""
        spe = self.backup.steps_per_epoch
        epoch, step = divmod(self.first_step - 1, spe)
        if self.last_step == self.first_step:
            return f"epoch {epoch + 1}, step {step + 1} (global step {self.first_step})"
        last = (self.last_step - 1) % spe + 1
        return (f"epoch {epoch + 1}, one of steps {step + 1}-{last} "
                f"(global steps {self.first_step}-{self.last_step})")
