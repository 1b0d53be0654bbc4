"""``model.fit`` with the scripts' callbacks, resumable mid-epoch.

:func:`fit_resumable` is shared by ``train.py`` and ``finetune.py``: it
restores the latest backup (if any), runs the rest of an interrupted epoch,
then the remaining epochs, with ``ResumableBackup``, ``CSVLogger``,
``ModelCheckpoint``, ``TerminateOnNaN``, ``Throughput`` and, on request,
``TensorBoard`` and ``EarlyStopping`` -- all plain Keras callbacks.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import pathlib
import sys
import time

import keras

from keraszoo.training import callbacks as cb
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
    #: the loss became NaN/inf (``TerminateOnNaN`` stopped the run).
    diverged: bool
    #: the backup callback (call ``finish()`` once outputs are written).
    backup: cb.ResumableBackup

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


def save_run(model, out, *, metrics, recipe, dataset):
    """The run's ``save_pretrained`` folder, with ``command.txt`` beside it."""
    import keraszoo

    keraszoo.save_pretrained(model, out, metrics=metrics, recipe=recipe, dataset=dataset)
    atomic_write_text(pathlib.Path(out) / "command.txt", recipe["command"] + "\n")


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
) -> FitResult:
    """Train ``model`` on a ``keraszoo.data.EpochStream`` for ``epochs`` epochs.

    The model must be compiled. The latest backup in ``work_dir/backup`` is
    restored first (a run killed mid-epoch continues at the very next step);
    ``out_dir/training_log.csv`` is appended to (and trimmed to the epochs
    that are not retrained).
    """
    out_dir, work_dir = pathlib.Path(out_dir), pathlib.Path(work_dir)
    multiworker = distribution.name == "multiworker"
    steps = stream.steps_per_epoch
    backup = cb.ResumableBackup(
        work_dir / "backup",
        steps_per_epoch=steps,
        save_freq=backup_every if backup_every and backup_every > 0 else "epoch",
        fingerprint=fingerprint,
    )
    with distribution.scope():
        g0 = backup.restore(model)
    total = epochs * steps
    first_epoch, first_step = divmod(min(g0, total), steps)
    log_path = out_dir / "training_log.csv"
    if g0 == 0:
        log_path.unlink(missing_ok=True)
    else:
        trim_csv_log(log_path, first_epoch)
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
    callbacks = [
        stream.callback(),
        throughput,  # before CSVLogger and the progress bar: adds logs["images_per_s"]
        keras.callbacks.TerminateOnNaN(),
        backup,
        keras.callbacks.CSVLogger(str(log_path), append=True),
        keras.callbacks.ModelCheckpoint(
            str(work_dir / "checkpoints" / "best.weights.h5"),
            monitor=monitor,
            save_best_only=True,
            save_weights_only=True,
        ),
    ]
    if tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise UsageError(
                "--tensorboard needs the tensorboard package: pip install tensorboard"
            ) from None
        callbacks.append(keras.callbacks.TensorBoard(str(work_dir / "tensorboard"), profile_batch=0))
    if early_stopping and early_stopping > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitor, patience=early_stopping, restore_best_weights=True)
        )
    kill = cb.kill_hook_from_env(backup)
    if kill is not None:
        callbacks.append(kill)

    if val_ds is not None:
        val_ds = distribute_options(val_ds, multiworker)
    fit_kwargs = dict(callbacks=callbacks, validation_data=val_ds, shuffle=False, verbose=verbose)
    histories = []
    t0 = time.time()
    epoch = first_epoch
    model.stop_training = False
    if first_step and epoch < epochs:
        backup.begin_segment(g0)
        ds = distribute_options(stream.partial_epoch(epoch, first_step), multiworker)
        histories.append(model.fit(ds, initial_epoch=epoch, epochs=epoch + 1, **fit_kwargs).history)
        epoch += 1
    if epoch < epochs and not model.stop_training:
        backup.begin_segment(epoch * steps)
        ds = distribute_options(stream.dataset(), multiworker)
        histories.append(model.fit(ds, initial_epoch=epoch, epochs=epochs, **fit_kwargs).history)
    fit_time = time.time() - t0

    last = {}
    for h in histories:
        for k, v in h.items():
            if v:
                last[k] = float(v[-1])
    diverged = "loss" in last and not math.isfinite(last["loss"])
    return FitResult(last, throughput, g0, fit_time, diverged, backup)


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
    kept = [r for r in body if r and int(float(r[col])) < first_epoch]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(kept)
