"""``model.fit`` with the scripts' callbacks, resumable mid-epoch.

:func:`fit_resumable` is shared by ``train.py`` and ``finetune.py``: it
restores the latest backup (if any), runs the rest of an interrupted epoch,
then the remaining epochs, with ``ResumableBackup``, ``CSVLogger``,
``ModelCheckpoint``, ``Throughput``, a ``TerminateOnNaN`` that says where the
loss diverged and, on request, ``TensorBoard`` and ``EarlyStopping`` -- all
plain Keras callbacks.

Faults end a run with one clear error, and never cost a good state:

* a NaN/Inf loss stops the run with :class:`~keraszoo.errors.TrainingDivergedError`
  (where, and what to try); the last backup with finite weights is kept and
  no model is written;
* a failed write (full disk, file-size limit) raises
  :class:`~keraszoo.errors.CheckpointWriteError` naming the file and
  the disk; the previous backup stays the one a rerun resumes from;
* a kill at any point (a step, an epoch's end, the middle of a backup or of
  :func:`save_run`) is resumed by running the same command again, with the
  same final weights, optimizer state, log and metrics.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import pathlib
import sys
import time

import keras

from keraszoo.errors import CheckpointWriteError
from keraszoo.errors import TrainingDivergedError
from keraszoo.training import callbacks as cb
from keraszoo.training.backup import ResumableBackup
from keraszoo.training.diskio import check_room
from keraszoo.training.diskio import write_failure
from keraszoo.training.early_stopping import ResumableCheckpoint
from keraszoo.training.early_stopping import ResumableEarlyStopping
from keraszoo.training.recipe import UsageError
from keraszoo.utils import atomic_path
from keraszoo.utils import atomic_write_text


@dataclasses.dataclass
class FitResult:
    """What a :func:`fit_resumable` call did."""

    #: last value of every logged metric (``loss``, ``val_loss``, ...).
    last_logs: dict
    #: the :class:`keraszoo.training.callbacks.Throughput` callback (images/s).
    throughput: cb.Throughput
    #: global step restored from a backup (0: fresh start).
    resumed_from_step: int
    #: seconds spent in ``fit``.
    fit_time_s: float
    #: always ``False``: a NaN/inf loss raises :class:`TrainingDivergedError` (kept for callers).
    diverged: bool
    #: the backup callback (call ``finish()`` once outputs are written).
    backup: ResumableBackup

    def record(self, started: float) -> dict:
        """The timing facts of a recipe record (``started``: ``time.time()`` at the run's start)."""
        return {
            "wall_time_s": round(time.time() - started, 3),
            "fit_time_s": round(self.fit_time_s, 3),
            "images_per_s": round(self.throughput.images_per_s, 1),
            "steady_images_per_s": round(self.throughput.steady_images_per_s, 1),
            "resumed_from_step": int(self.resumed_from_step),
        }


def hold_out(x, fraction: float):
    """``(x_train, x_val)``: a fixed random ``fraction`` of ``x`` held out (``x_val`` None for 0).

    The permutation is fixed (seed 12345), since some archives are sorted by class.
    """
    if fraction <= 0:
        return x, None
    import numpy as np

    order = np.random.default_rng(12345).permutation(len(x))
    n_val = max(1, int(round(len(x) * fraction)))
    return x[np.sort(order[n_val:])], x[order[:n_val]]


#: The files :func:`save_run` writes (``metadata.json``, written last, marks a complete folder).
RUN_FILES = ("command.txt", "config.json", "model.weights.h5", "model.keras", "README.md", "metadata.json")


def save_run(model, out, *, metrics, recipe, dataset):
    """The run's ``save_pretrained`` folder, with ``command.txt`` in it.

    ``metadata.json`` -- which ``keraszoo.load`` needs, and which records
    every file's digest -- is removed first and written last: a folder whose
    save was interrupted (a kill, a full disk) never looks complete, and
    after a failed write the partial files are removed (the training log and
    ``train_state`` stay, so running the same command again writes the
    folder from the last backup without retraining).

    Raises:
        CheckpointWriteError: a file could not be written (full disk, ...).
    """
    import keraszoo

    out = pathlib.Path(out)
    (out / "metadata.json").unlink(missing_ok=True)
    try:
        # At least the raw bytes of the variables: model.weights.h5 holds the
        # model's, model.keras (an uncompressed zip) the optimizer's too.
        inference = _nbytes(model.variables)
        archive = inference + _nbytes(getattr(model.optimizer, "variables", []) if model.optimizer else [])
        check_room(out / "model.keras", archive, total=inference + archive)
        atomic_write_text(out / "command.txt", recipe["command"] + "\n")
        keraszoo.save_pretrained(model, out, metrics=metrics, recipe=recipe, dataset=dataset)
    except OSError as err:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for tmp in out.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        path = err.filename or out
        raise write_failure(
            err, path, what="the trained model to", advice=(
                f"Nothing usable was left in {out} (no metadata.json); the training backup is kept: "
                "free some space and run the same command again to write the model without retraining."),
        ) from None


def _nbytes(variables) -> int:
    import numpy as np

    return sum(int(np.prod(v.shape)) * np.dtype(str(v.dtype)).itemsize for v in variables)


def distribute_options(ds, multiworker: bool):
    """Auto-sharding: by data across workers, off on one machine.

    (Off keeps the datasets' cardinality, which the auto-shard rewrite drops.)
    """
    import tensorflow as tf

    if not isinstance(ds, tf.data.Dataset):
        return ds
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA if multiworker else tf.data.experimental.AutoShardPolicy.OFF
    )
    return ds.with_options(opts)


def fit_resumable(
    model,
    stream,
    *,
    epochs: int,
    out_dir,
    work_dir,
    fingerprint: dict,
    distribution,
    backup_every: int = 200,
    val_ds=None,
    verbose=1,
    tensorboard: bool = False,
    early_stopping: int = 0,
    callbacks=(),
    restore_dir=None,
) -> FitResult:
    """Train ``model`` on a ``keraszoo.data.EpochStream`` for ``epochs`` epochs.

    The model must be compiled. The latest backup in ``work_dir/backup`` is
    restored first (a run killed mid-epoch continues at the very next step);
    ``out_dir/training_log.csv`` is appended to (and trimmed to the epochs
    that are not retrained). ``callbacks`` run after the run's own: Keras
    callbacks, or functions ``f(backup) -> callback`` for a callback that reads
    the run's :class:`ResumableBackup` (its global step, its save phases).
    ``restore_dir``: the backup folder to resume from, if not ``work_dir/backup`` (a multi-worker
    run's other workers resume from the chief's; every worker is then checked to resume at one step).
    """
    out_dir, work_dir = pathlib.Path(out_dir), pathlib.Path(work_dir)
    multiworker = distribution.name == "multiworker"
    steps = stream.steps_per_epoch
    backup = ResumableBackup(
        work_dir / "backup",
        steps_per_epoch=steps,
        save_freq=backup_every if backup_every and backup_every > 0 else "epoch",
        fingerprint=fingerprint,
        restore_dir=restore_dir,
    )
    with distribution.scope():
        g0 = backup.restore(model)
    if multiworker and distribution.strategy is not None:
        check_same_step(distribution.strategy, g0, backup)
    total = epochs * steps
    first_epoch, first_step = divmod(min(g0, total), steps)
    log_path = out_dir / "training_log.csv"
    if g0 == 0:
        log_path.unlink(missing_ok=True)
    else:
        trim_csv_log(log_path, first_epoch)
        if g0 >= total:
            print(f"The backup holds the finished training (global step {g0}): writing the model.", file=sys.stderr)
        else:
            print(
                f"Resuming from the backup at epoch {first_epoch + 1}, step {first_step} (global step {g0}).",
                file=sys.stderr,
            )

    def examples_in_epoch(epoch):
        if epoch == first_epoch and first_step:
            return stream.examples_from_step(first_step)
        return stream.examples_per_epoch

    throughput = cb.Throughput(examples_in_epoch, stream.batch_size)
    monitor = "val_loss" if val_ds is not None else "loss"
    (work_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    best_path = work_dir / "checkpoints" / "best.weights.h5"
    guard = cb.StopOnNonFinite(backup)
    extra = [c if isinstance(c, keras.callbacks.Callback) else c(backup) for c in callbacks]
    callbacks = [
        stream.callback(),
        throughput,  # before CSVLogger and the progress bar: adds logs["images_per_s"]
        # Before the backup: an epoch's row is written before the backup that
        # marks the epoch done (a kill in between retrains and relogs it).
        keras.callbacks.CSVLogger(str(log_path), append=True),
        backup,
        guard,
        # After the backup (a write that fails here must not come before the backup's own checks).
        ResumableCheckpoint(best_path, log_path, monitor=monitor),
    ]
    if tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise UsageError(
                "--tensorboard needs the tensorboard package: pip install tensorboard"
            ) from None
        callbacks.append(keras.callbacks.TensorBoard(str(work_dir / "tensorboard"), profile_batch=0))
    stopper = None
    if early_stopping and early_stopping > 0:
        # Its state is replayed from the log on a resume (keraszoo.training.early_stopping).
        stopper = ResumableEarlyStopping(log_path, best_path, monitor=monitor, patience=early_stopping, epochs=epochs)
        callbacks.append(stopper)
    callbacks += extra

    if val_ds is not None:
        val_ds = distribute_options(val_ds, multiworker)
    fit_kwargs = dict(callbacks=callbacks, validation_data=val_ds, shuffle=False, verbose=verbose)
    histories = []
    t0 = time.time()
    epoch = first_epoch
    model.stop_training = False
    if stopper is not None and g0 and stopper.replay(model):  # the run had stopped early before it was killed
        print(f"The run had stopped early at epoch {stopper.stopped_epoch + 1}: writing the best epoch's weights "
              f"(epoch {stopper.best_epoch + 1}).", file=sys.stderr)
        if stopper.best_weights is not None:
            model.set_weights(stopper.best_weights)
        epoch = epochs
    try:
        if first_step and epoch < epochs:
            backup.begin_segment(g0)
            ds = distribute_options(stream.partial_epoch(epoch, first_step), multiworker)
            histories.append(model.fit(ds, initial_epoch=epoch, epochs=epoch + 1, **fit_kwargs).history)
            epoch += 1
        if epoch < epochs and not model.stop_training:
            backup.begin_segment(epoch * steps)
            ds = distribute_options(stream.dataset(), multiworker)
            histories.append(model.fit(ds, initial_epoch=epoch, epochs=epochs, **fit_kwargs).history)
    except CheckpointWriteError:
        raise
    except OSError as err:  # the training log or the best-weights checkpoint could not be written
        path = err.filename or work_dir
        raise write_failure(err, path, what="the training files in", advice=_resume_advice(backup)) from None
    fit_time = time.time() - t0
    if guard.diverged:
        raise _diverged(guard, backup, model, out_dir)

    # Without any epoch trained here (the backup held the finished run), the
    # last epoch's logs come from the backup.
    last = {} if histories or not g0 else dict(backup.restored_epoch_logs or {})
    for h in histories:
        for k, v in h.items():
            if v:
                last[k] = float(v[-1])
    return FitResult(last, throughput, g0, fit_time, False, backup)


def check_same_step(strategy, step: int, backup) -> None:
    """Refuse to train unless every worker of ``strategy`` restored global step ``step`` (a collective: all call it).

    Workers that resume at different steps would train on different batches and end out of step, hanging.
    """
    import tensorflow as tf

    # tf.distribute reduces by SUM or MEAN only: n * sum(s^2) == sum(s)^2 exactly when every s is the same.
    sums = strategy.reduce("SUM", strategy.run(lambda: tf.constant([1, step, step * step], tf.int64)), axis=None)
    n, total, squares = (int(v) for v in sums.numpy())
    if n * squares != total * total:
        raise UsageError(
            f"This worker resumes at global step {step} from {backup.restore_dir or backup.backup_dir}, while the "
            f"{n} replicas resume at step {total / n:g} on average: the workers do not read the same backup. With --strategy "
            "multiworker every worker resumes from the chief's backup (OUT/train_state/backup, or --work-dir's): put "
            "--out (and --work-dir) on a file system every worker sees, at the same path.")


def _resume_advice(backup) -> str:
    step = backup._last_saved
    if step:
        return (f"The last backup (global step {step}) in {backup.backup_dir} is intact: free some space and "
                "run the same command again to resume from it.")
    return "No backup was written yet: free some space and run the command again."


def _learning_rate(model):
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # noqa: BLE001 - a schedule, or no optimizer: the message does without it
        return None


def _diverged(guard, backup, model, out_dir) -> TrainingDivergedError:
    lr = _learning_rate(model)
    lr_text = f", now {lr:g}" if lr is not None else ""
    if backup._last_saved:
        kept = (f"The last good backup (global step {backup._last_saved}, finite weights) is kept in "
                f"{backup.backup_dir}")
    else:
        kept = "No backup was written before that step"
    return TrainingDivergedError(
        f"The training loss became {guard.kind} at {guard.where()}; training stopped and no model was "
        f"written to {out_dir}. Try a lower learning rate (--lr{lr_text}) and check the data for NaN/Inf "
        f"values. {kept}; to start over with other settings use another --out or delete "
        f"{os.path.dirname(os.fspath(backup.backup_dir))}.",
        epoch=(guard.first_step - 1) // backup.steps_per_epoch + 1,
        step=(guard.first_step - 1) % backup.steps_per_epoch + 1,
        global_step=guard.first_step, backup_step=backup._last_saved,
    )


def final_metrics(last_logs: dict) -> dict:
    """``final_train_<metric>`` / ``final_val_<metric>`` from the last epoch's logs."""
    out = {}
    for k, v in last_logs.items():
        if k in ("loss", "images_per_s", "val_loss") or not math.isfinite(v):
            continue
        out[f"final_{k}" if k.startswith("val_") else f"final_train_{k}"] = float(v)
    return out


def trim_csv_log(path, first_epoch: int) -> None:
    """Drop rows of epochs >= ``first_epoch`` (they are retrained after a resume)."""
    path = pathlib.Path(path)
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    if "epoch" not in header:
        return
    col = header.index("epoch")

    def epoch_of(row):
        try:
            return int(float(row[col]))
        except ValueError:
            return None

    # A row cut short (a full disk while the log was written) is dropped, its epoch retrained.
    kept = [r for r in body if len(r) == len(header) and epoch_of(r) is not None and epoch_of(r) < first_epoch]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(kept)
