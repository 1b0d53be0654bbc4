"""The resumable backup of a training run: :class:`ResumableBackup`.

``keras.callbacks.BackupAndRestore`` that resumes *mid-epoch* exactly (global
step, random-generator states, metric running means), writes every backup
atomically and refuses a backup written by another configuration.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time

import keras
import numpy as np

from keraszoo.errors import BackupDamagedError
from keraszoo.errors import BackupMismatchError
from keraszoo.training.diskio import check_room
from keraszoo.training.diskio import weights_file_bytes
from keraszoo.training.diskio import write_failure
from keraszoo.training.diskio import write_file
from keraszoo.utils import atomic_write_text

#: The points of a backup write, in order: ``weights`` (the weights file is
#: written in the temporary folder), ``state`` (``state.json`` too: the
#: temporary folder is complete), ``renamed`` (the folder has its final name,
#: the pointer still names the previous backup), ``pointer`` (``latest.json``
#: names the new backup, the previous one is not deleted yet), ``saved`` (all
#: done). :attr:`ResumableBackup.save_hook` is called after each.
SAVE_PHASES = ("weights", "state", "renamed", "pointer", "saved")


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
        restore_dir: restore from this folder's backup instead of ``backup_dir``'s (a
            multi-worker run's other workers restore the chief's: every worker resumes
            at the same step, whichever of them was killed in the middle of a backup).
    """

    def __init__(self, backup_dir, *, steps_per_epoch, save_freq="epoch", fingerprint=None,
                 delete_checkpoint=True, restore_dir=None):
        super().__init__(str(backup_dir), save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.restore_dir = str(restore_dir) if restore_dir is not None else None
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
        """The latest backup's state (a dict with ``global_step``, ...) or ``None`` (``restore_dir``'s, if given).

        The backup named by ``latest.json``; without a readable pointer (a run
        killed right after its first backup folder got its name, a damaged
        pointer) the complete ``step-*`` folder of the highest step -- a
        folder gets its ``step-*`` name only once complete.

        Raises:
            BackupDamagedError: there are backups, and none of them can be read.
        """
        root = pathlib.Path(self.restore_dir or self.backup_dir)
        pointer_path = root / self._pointer.name
        pointer_ok = False
        try:
            pointer = json.loads(pointer_path.read_text())
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
        if pointer_ok or candidates or pointer_path.exists():
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
                f"The backup in {self.restore_dir or self.backup_dir} was written by a different training "
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
                f"Delete {self.restore_dir or self.backup_dir} to start the run over."
            ) from None
        rng = rng_variables(model)
        saved = state.get("rng", [])
        if len(saved) != len(rng):
            raise BackupMismatchError(
                f"The backup in {self.restore_dir or self.backup_dir} holds {len(saved)} random-generator states, "
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

