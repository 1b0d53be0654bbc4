"""Keras callbacks of the training scripts.

* :class:`ResumableBackup` -- ``keras.callbacks.BackupAndRestore`` that
  resumes *mid-epoch* exactly (global step, random-generator states, atomic
  backups, configuration check);
* :class:`Throughput` -- images/s of every epoch, into the epoch logs (so
  ``CSVLogger`` records it);
* :class:`StopOnNonFinite` -- ``TerminateOnNaN`` that remembers where the
  loss became NaN/Inf (epoch, step), for the error message;
* :class:`KillAfterSteps` -- a test hook that SIGKILLs the process (or
  raises) after a given global step, or at a given point of the backup
  written at that step (``$KERASZOO_DEBUG_KILL_AFTER_STEP``), to test resuming.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import pathlib
import shutil
import signal
import sys
import time

import keras
import numpy as np

from keraszoo.training.recipe import BackupDamagedError
from keraszoo.training.recipe import BackupMismatchError
from keraszoo.training.recipe import CheckpointWriteError
from keraszoo.utils import atomic_write_text

#: Environment hook for tests: SIGKILL the process right after this global
#: step has been trained (and backed up, if a backup was due at that step);
#: ``"STEP:raise"`` raises :class:`SimulatedCrash` instead; ``"STEP@PHASE"``
#: (``"STEP@PHASE:raise"``) kills in the middle of the backup of that step,
#: right after ``PHASE`` (one of :data:`SAVE_PHASES`).
KILL_ENV = "KERASZOO_DEBUG_KILL_AFTER_STEP"

#: The points of a backup write, in order: ``weights`` (the weights file is
#: written in the temporary folder), ``state`` (``state.json`` too: the
#: temporary folder is complete), ``renamed`` (the folder has its final name,
#: the pointer still names the previous backup), ``pointer`` (``latest.json``
#: names the new backup, the previous one is not deleted yet), ``saved`` (all
#: done).
SAVE_PHASES = ("weights", "state", "renamed", "pointer", "saved")


def free_space(path) -> str:
    """``"1.2 GB free of 50.0 GB"`` for the disk holding ``path`` (or its nearest existing parent)."""
    path = pathlib.Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return "free space unknown"

    def size(n):
        for unit in ("B", "KB", "MB", "GB", "TB"):
            if n < 1000 or unit == "TB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1000.0

    return f"{size(usage.free)} free of {size(usage.total)}"


def check_room(path, size: int, *, total: int | None = None) -> None:
    """Raise the ``OSError`` a write of ``size`` bytes to ``path`` would meet, before writing.

    ``EFBIG`` when ``size`` exceeds the process's file-size limit
    (``RLIMIT_FSIZE``: the write would fail half-way, or SIGXFSZ would kill
    the process), ``ENOSPC`` when the disk has less than ``total`` (default
    ``size``) bytes free. A failed HDF5 write leaves h5py in a state that can
    crash the process at exit, so checkpoints check first.
    """
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY and size > soft:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path))
    except ImportError:  # not POSIX
        pass
    folder = pathlib.Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if (size if total is None else total) > free:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def weights_file_bytes(model):
    """What ``model.save_weights(path)`` writes, as bytes in memory (``None`` where this Keras cannot).

    The backup then writes them with a plain file write: a full disk is a
    clean ``OSError`` there, not a half-written HDF5 file whose handles fail
    again (and may crash the process) when h5py releases them.
    """
    try:
        from keras.src.saving import saving_lib

        buffer = io.BytesIO()
        store = saving_lib.H5IOStore(buffer, mode="w")
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    try:
        saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    except TypeError:  # another Keras' private signature
        store.close()
        return None
    store.close()
    return buffer.getvalue()


def write_file(path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to the disk (the place a backup's bytes reach the disk)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_failure(err: OSError, path, *, what: str, advice: str) -> CheckpointWriteError:
    """A :class:`CheckpointWriteError` for ``err`` (raised writing ``path``), in one line.

    The message names the file, the reason (a full disk, a file-size limit,
    ...), the disk's free space and ``advice`` (what the user can do).
    """
    code = getattr(err, "errno", None)
    reason = os.strerror(code) if code else (str(err).strip().splitlines() or [type(err).__name__])[0]
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        where = f"the disk is full: {free_space(path)}"
    elif code == errno.EFBIG:
        where = f"a file-size limit (ulimit -f) or the file system's maximum file size; {free_space(path)}"
    else:
        where = free_space(path)
    return CheckpointWriteError(f"Could not write {what} {path}: {reason} ({where}). {advice}",
                                errno=code, filename=str(path))


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
        self._pending_metrics = None
        self._epoch_logs = None
        #: the logs of the last completed epoch, from the restored backup (``None``: none).
        self.restored_epoch_logs = None
        #: ``f(phase, global_step)`` called at each of :data:`SAVE_PHASES` of a backup write (tests).
        self.save_hook = None

    @property
    def _pointer(self):
        return pathlib.Path(self.backup_dir) / "latest.json"

    @staticmethod
    def _read_state(folder):
        try:
            state = json.loads((folder / "state.json").read_text())
            if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
                return None
        except (OSError, ValueError):
            return None
        if not (folder / "model.weights.h5").is_file():
            return None
        state["_dir"] = str(folder)
        return state

    def latest(self):
        """The latest backup's state (a dict with ``global_step``, ...) or ``None``.

        The backup named by ``latest.json``; without a readable pointer (a run
        killed right after its first backup folder got its name, a damaged
        pointer) the complete ``step-*`` folder of the highest step -- a
        folder gets its ``step-*`` name only once complete.

        Raises:
            BackupDamagedError: there are backups, and none of them can be read.
        """
        root = pathlib.Path(self.backup_dir)
        pointer_ok = False
        try:
            pointer = json.loads(self._pointer.read_text())
            pointer_ok = True
            state = self._read_state(root / str(pointer["dir"]))
            if state is not None:
                return state
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no pointer, or a damaged one: look at the folders
        candidates = sorted(root.glob("step-*"), reverse=True) if root.is_dir() else []
        for folder in candidates:
            state = self._read_state(folder)
            if state is not None:
                return state
        if pointer_ok or candidates or self._pointer.exists():
            raise BackupDamagedError(
                f"The training backup in {root} is damaged (no readable state.json and model.weights.h5). "
                "Delete that folder to start the run over."
            )
        return None

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
        # A key one side lacks counts as None ("not set"): a keraszoo version
        # with a new flag (None by default) still resumes an older backup.
        diff = sorted(
            k for k in set(theirs) | set(self.fingerprint) if theirs.get(k) != self.fingerprint.get(k)
        )
        if diff:
            raise BackupMismatchError(
                f"The backup in {self.backup_dir} was written by a different training "
                f"configuration (it differs in: {', '.join(diff)}). Resume with the same "
                "arguments, or delete that folder (or use another --out) to start over."
            )
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        weights = os.path.join(state["_dir"], "model.weights.h5")
        try:
            model.load_weights(weights)
        except (OSError, ValueError, KeyError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise BackupDamagedError(
                f"The training backup {weights} cannot be read ({reason}). "
                f"Delete {self.backup_dir} to start the run over."
            ) from None
        rng = rng_variables(model)
        saved = state.get("rng", [])
        if len(saved) != len(rng):
            raise BackupMismatchError(
                f"The backup in {self.backup_dir} holds {len(saved)} random-generator states, "
                f"the model has {len(rng)}."
            )
        for var, r in zip(rng, saved):
            var.assign(np.asarray(r["value"], dtype=var.dtype))
        # The running means of the interrupted epoch (restored when it resumes).
        self._pending_metrics = state.get("metrics")
        self._epoch_logs = self.restored_epoch_logs = state.get("epoch_logs")
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
        pending, self._pending_metrics = self._pending_metrics, None
        if pending is not None and self._epoch_base > epoch * self.steps_per_epoch:
            # Keras has just reset the metrics: continue the interrupted
            # epoch's running means, so its logged loss (CSV log, final
            # metrics) is that of the whole epoch, as without the interruption.
            variables = metric_variables(self.model)
            if len(pending) == len(variables):
                for var, value in zip(variables, pending):
                    var.assign(np.asarray(value, dtype=var.dtype))

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1, `batch` is the last step of the
        # execution -- as Keras counts it, which overshoots on the last,
        # shorter execution of an epoch: clamp to the epoch's end.
        self.global_step = min(self._epoch_base + int(batch) + 1, self._epoch_end)
        freq = self.save_freq
        if isinstance(freq, int) and not isinstance(freq, bool) and self.global_step < self._epoch_end:
            # (An epoch's last step is backed up in on_epoch_end, after the
            # epoch's row of the training log: a backup at the epoch's end
            # always comes with its row.)
            if self.global_step // freq > self._last_saved // freq:
                self._save(logs)

    def on_epoch_end(self, epoch, logs=None):
        self.global_step = (epoch + 1) * self.steps_per_epoch
        self._epoch_logs = _plain_logs(logs)
        self._save(logs)

    def on_train_end(self, logs=None):
        pass  # the script calls finish() once the whole run has completed

    def finish(self):
        """Delete the backups after a completed run (if ``delete_checkpoint``).

        The folder is first renamed away (atomically), so a kill while it is
        being deleted leaves no half-deleted backup for a rerun to stumble on.
        """
        if not self.delete_checkpoint:
            return
        root = pathlib.Path(self.backup_dir)
        trash = root.with_name(f".{root.name}.deleting")
        shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(root, trash)
        except OSError:
            trash = root
        shutil.rmtree(trash, ignore_errors=True)

    # ---- saving
    def _phase(self, name):
        if self.save_hook is not None:
            self.save_hook(name, self.global_step)

    def _save(self, logs=None):
        if self.global_step == self._last_saved:
            return
        loss = (logs or {}).get("loss")
        try:
            if loss is not None and not np.isfinite(float(loss)):
                return  # never replace a good backup with NaN weights
        except (TypeError, ValueError):
            pass
        if not weights_are_finite(self.model):
            return  # the loss was still finite, the update that followed was not
        root = pathlib.Path(self.backup_dir)
        name = f"step-{self.global_step:010d}"
        tmp = root / f".{name}.tmp"
        target = tmp
        try:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            target = tmp / "model.weights.h5"
            data = weights_file_bytes(self.model)
            if data is None:
                self.model.save_weights(str(target))
            else:
                check_room(target, len(data))
                write_file(target, data)
            self._phase("weights")
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
                "metrics": [np.asarray(keras.ops.convert_to_numpy(v)).tolist()
                            for v in metric_variables(self.model)],
                "epoch_logs": self._epoch_logs,
                "time": time.time(),
            }
            target = tmp / "state.json"
            write_file(target, json.dumps(state).encode())
            self._phase("state")
            final = target = root / name
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)  # a folder: the backup appears whole or not at all
            self._phase("renamed")
            target = self._pointer
            atomic_write_text(self._pointer, json.dumps({"dir": name, "global_step": self.global_step}))
        except OSError as err:
            # No partial backup left behind (and the space it took is freed);
            # the pointer still names the previous backup.
            shutil.rmtree(tmp, ignore_errors=True)
            if target == self._pointer:
                shutil.rmtree(root / name, ignore_errors=True)
            if self._last_saved:
                kept = (f"The previous backup (global step {self._last_saved}) in {root} is intact: "
                        "free some space and run the same command again to resume from it.")
            else:
                kept = "No earlier backup exists: free some space and run the command again."
            raise write_failure(err, target, what="the training backup", advice=kept) from None
        self._phase("pointer")
        for old in root.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        self._last_saved = self.global_step
        self._phase("saved")


def _plain_logs(logs):
    out = {}
    for k, v in (logs or {}).items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def metric_variables(model):
    """The variables of ``model``'s metrics (the running sums and counts of the logged means)."""
    variables = []
    for metric in model.metrics:
        variables.extend(metric.variables)
    return variables


def weights_are_finite(model) -> bool:
    """Whether every floating-point variable of ``model`` (weights and optimizer slots) is finite."""
    variables = list(model.variables)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    for v in variables:
        if "float" not in str(v.dtype):
            continue
        if not np.isfinite(keras.ops.convert_to_numpy(v)).all():
            return False
    return True


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


class SimulatedCrash(RuntimeError):
    """Raised by :class:`KillAfterSteps` in ``"raise"`` mode."""


class KillAfterSteps(keras.callbacks.Callback):
    """Test hook: end the run abruptly once global step ``step`` is trained.

    ``mode="kill"`` sends SIGKILL to the process (nothing is cleaned up, like
    a preempted machine); ``mode="raise"`` raises :class:`SimulatedCrash`
    (an in-process stand-in). Place it after the :class:`ResumableBackup`
    whose step counter it reads, so that a backup due at that step is
    written first.

    ``where="step"`` ends the run after the batch of ``step``; one of
    :data:`SAVE_PHASES` ends it in the middle of the backup of global step
    ``step``, right after that phase (a kill while a checkpoint is written).
    """

    def __init__(self, step: int, backup: ResumableBackup, mode: str = "kill", where: str = "step"):
        super().__init__()
        if mode not in ("kill", "raise"):
            raise ValueError(f"mode must be 'kill' or 'raise', got {mode!r}.")
        if where != "step" and where not in SAVE_PHASES:
            raise ValueError(f"where must be 'step' or one of {SAVE_PHASES}, got {where!r}.")
        self.step = int(step)
        self.backup = backup
        self.mode = mode
        self.where = where
        if where != "step":
            backup.save_hook = self._on_save_phase

    def _end(self, what):
        if self.mode == "raise":
            raise SimulatedCrash(f"simulated crash {what}")
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def _on_save_phase(self, phase, global_step):
        if phase == self.where and global_step == self.step:
            self._end(f"in the backup of global step {global_step}, after its {phase!r} phase")

    def on_train_batch_end(self, batch, logs=None):
        if self.where == "step" and self.backup.global_step >= self.step:
            self._end(f"after global step {self.backup.global_step}")


def kill_hook_from_env(backup):
    """:class:`KillAfterSteps` from ``$KERASZOO_DEBUG_KILL_AFTER_STEP``.

    The value is ``STEP[@PHASE][:raise]``: ``STEP`` (SIGKILL after that
    step), ``STEP:raise`` (raise instead), ``STEP@PHASE`` (in the backup of
    that step, after ``PHASE``, one of :data:`SAVE_PHASES`); unset: ``None``.
    """
    value = os.environ.get(KILL_ENV)
    if not value:
        return None
    spec, _, mode = value.partition(":")
    step, _, where = spec.partition("@")
    try:
        return KillAfterSteps(int(step), backup, mode or "kill", where or "step")
    except ValueError as err:
        raise ValueError(f"${KILL_ENV}={value!r}: expected STEP[@PHASE][:raise]; {err}") from None
