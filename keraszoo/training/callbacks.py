"""Keras callbacks of the training scripts.

* :class:`ResumableBackup` -- ``keras.callbacks.BackupAndRestore`` that
  resumes *mid-epoch* exactly (global step, random-generator states, atomic
  backups, configuration check);
* :class:`Throughput` -- images/s of every epoch, into the epoch logs (so
  ``CSVLogger`` records it);
* :class:`KillAfterSteps` -- a test hook that SIGKILLs the process (or
  raises) after a given global step (``$KERASZOO_DEBUG_KILL_AFTER_STEP``),
  to test resuming.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import sys
import time

import keras
import numpy as np

from keraszoo.training.recipe import BackupMismatchError
from keraszoo.utils import atomic_write_text

#: Environment hook for tests: SIGKILL the process right after this global
#: step has been trained (and backed up, if a backup was due at that step);
#: ``"STEP:raise"`` raises :class:`SimulatedCrash` instead.
KILL_ENV = "KERASZOO_DEBUG_KILL_AFTER_STEP"


def rng_variables(model):
    """The ``keras.random.SeedGenerator`` states of ``model``.

    ``model.save_weights`` does not save them, yet they decide the noise of
    the next steps (VAE sampling, DAE corruption); a backup needs them.
    """
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that resumes in the middle of an epoch, exactly.

    Keras' callback restores the weights and restarts the interrupted epoch
    from its first batch. This one records the global step and the states of
    the model's random generators, writes every backup atomically (a new
    folder, then an atomic pointer update, so a kill while saving leaves the
    previous backup intact) and refuses a backup written by a different
    configuration. The training script calls :meth:`restore` before ``fit``
    and feeds the rest of the interrupted epoch (``keraszoo.data.EpochStream``
    makes the batches a function of the epoch and step), so a resumed run ends
    with the same weights as an uninterrupted one.

    Args:
        backup_dir: folder of the backups (used by this run only).
        steps_per_epoch: batches per epoch.
        save_freq: ``"epoch"`` or a number of steps; a backup is also written
            at the end of every epoch.
        fingerprint: JSON-able description of the run; a backup whose
            fingerprint differs is refused.
        delete_checkpoint: :meth:`finish` removes the backups.
    """

    def __init__(self, backup_dir, *, steps_per_epoch, save_freq="epoch", fingerprint=None,
                 delete_checkpoint=True):
        super().__init__(str(backup_dir), save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.steps_per_epoch = int(steps_per_epoch)
        self.fingerprint = json.loads(json.dumps(fingerprint or {}))
        self.global_step = 0
        self._segment_start = 0
        self._epoch_base = 0
        self._epoch_end = 0
        self._last_saved = 0

    @property
    def _pointer(self):
        return pathlib.Path(self.backup_dir) / "latest.json"

    def latest(self):
        """The latest backup's state (a dict with ``global_step``, ...) or ``None``."""
        try:
            pointer = json.loads(self._pointer.read_text())
            folder = pathlib.Path(self.backup_dir) / pointer["dir"]
            state = json.loads((folder / "state.json").read_text())
        except (OSError, ValueError, KeyError):
            return None
        state["_dir"] = str(folder)
        return state

    def restore(self, model) -> int:
        """Load the latest backup into ``model``; returns its global step (0: none).

        Call after ``compile``, inside the distribution strategy's scope.

        Raises:
            BackupMismatchError: the backup was written by another configuration.
        """
        state = self.latest()
        if state is None:
            return 0
        theirs = state.get("fingerprint", {})
        if theirs != self.fingerprint:
            diff = sorted(
                k for k in set(theirs) | set(self.fingerprint) if theirs.get(k) != self.fingerprint.get(k)
            )
            raise BackupMismatchError(
                f"The backup in {self.backup_dir} was written by a different training "
                f"configuration (it differs in: {', '.join(diff)}). Resume with the same "
                "arguments, or delete that folder (or use another --out) to start over."
            )
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(state["_dir"], "model.weights.h5"))
        rng = rng_variables(model)
        saved = state.get("rng", [])
        if len(saved) != len(rng):
            raise BackupMismatchError(
                f"The backup in {self.backup_dir} holds {len(saved)} random-generator states, "
                f"the model has {len(rng)}."
            )
        for var, r in zip(rng, saved):
            var.assign(np.asarray(r["value"], dtype=var.dtype))
        self.global_step = self._last_saved = int(state["global_step"])
        return self.global_step

    def begin_segment(self, global_step: int):
        """The next ``fit`` call starts at ``global_step`` (mid-epoch after a resume)."""
        self._segment_start = self.global_step = int(global_step)

    # ---- Keras hooks
    def on_train_begin(self, logs=None):
        # Restoring happens in restore(), before fit: Keras' version would
        # reload the weights and restart the epoch from its first batch.
        pass

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_base = max(epoch * self.steps_per_epoch, self._segment_start)
        self._epoch_end = (epoch + 1) * self.steps_per_epoch

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1, `batch` is the last step of the
        # execution -- as Keras counts it, which overshoots on the last,
        # shorter execution of an epoch: clamp to the epoch's end.
        self.global_step = min(self._epoch_base + int(batch) + 1, self._epoch_end)
        freq = self.save_freq
        if isinstance(freq, int) and not isinstance(freq, bool):
            if self.global_step // freq > self._last_saved // freq:
                self._save(logs)

    def on_epoch_end(self, epoch, logs=None):
        self.global_step = (epoch + 1) * self.steps_per_epoch
        self._save(logs)

    def on_train_end(self, logs=None):
        pass  # the script calls finish() once the whole run has completed

    def finish(self):
        """Delete the backups after a completed run (if ``delete_checkpoint``)."""
        if self.delete_checkpoint:
            shutil.rmtree(self.backup_dir, ignore_errors=True)

    # ---- saving
    def _save(self, logs=None):
        if self.global_step == self._last_saved:
            return
        loss = (logs or {}).get("loss")
        try:
            if loss is not None and not np.isfinite(float(loss)):
                return  # never replace a good backup with NaN weights
        except (TypeError, ValueError):
            pass
        root = pathlib.Path(self.backup_dir)
        root.mkdir(parents=True, exist_ok=True)
        name = f"step-{self.global_step:010d}"
        tmp = root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.model.save_weights(str(tmp / "model.weights.h5"))
        state = {
            "global_step": self.global_step,
            "epoch": self.global_step // self.steps_per_epoch,
            "step_in_epoch": self.global_step % self.steps_per_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "fingerprint": self.fingerprint,
            "rng": [
                {"path": v.path, "value": np.asarray(keras.ops.convert_to_numpy(v)).tolist()}
                for v in rng_variables(self.model)
            ],
            "time": time.time(),
        }
        (tmp / "state.json").write_text(json.dumps(state))
        final = root / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)  # a folder: the backup appears whole or not at all
        atomic_write_text(self._pointer, json.dumps({"dir": name, "global_step": self.global_step}))
        for old in root.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        self._last_saved = self.global_step


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


class SimulatedCrash(RuntimeError):
    """Raised by :class:`KillAfterSteps` in ``"raise"`` mode."""


class KillAfterSteps(keras.callbacks.Callback):
    """Test hook: end the run abruptly once global step ``step`` is trained.

    ``mode="kill"`` sends SIGKILL to the process (nothing is cleaned up, like
    a preempted machine); ``mode="raise"`` raises :class:`SimulatedCrash`
    (an in-process stand-in). Place it after the :class:`ResumableBackup`
    whose step counter it reads, so that a backup due at that step is
    written first.
    """

    def __init__(self, step: int, backup: ResumableBackup, mode: str = "kill"):
        super().__init__()
        if mode not in ("kill", "raise"):
            raise ValueError(f"mode must be 'kill' or 'raise', got {mode!r}.")
        self.step = int(step)
        self.backup = backup
        self.mode = mode

    def on_train_batch_end(self, batch, logs=None):
        if self.backup.global_step >= self.step:
            if self.mode == "raise":
                raise SimulatedCrash(f"simulated crash after global step {self.backup.global_step}")
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def kill_hook_from_env(backup):
    """:class:`KillAfterSteps` from ``$KERASZOO_DEBUG_KILL_AFTER_STEP``.

    The value is ``STEP`` (SIGKILL) or ``STEP:raise``; unset: ``None``.
    """
    value = os.environ.get(KILL_ENV)
    if not value:
        return None
    step, _, mode = value.partition(":")
    return KillAfterSteps(int(step), backup, mode or "kill")
