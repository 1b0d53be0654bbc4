"""Train any keraszoo autoencoder variant on MNIST, Fashion-MNIST or CIFAR-10.

:func:`run` is the one orchestration of a training run -- ``keraszoo train``,
``keraszoo finetune`` (a run that starts from given weights, on given
images) and the experiment runner all go through it. Examples::

    keraszoo train --model vae --dataset mnist --epochs 30 --out runs/vae_mnist
    keraszoo train --model beta_vae --beta 8 --latent-dim 10 --out runs/bvae
    keraszoo train --model conv_ae --dataset cifar10 --data-source npz \\
        --data-dir /data --mixed-precision --out runs/conv_ae_cifar10
    keraszoo train --recipe vae_mnist --out runs/vae_mnist_again   # rerun a manifest entry

Everything Keras provides is used rather than rewritten: ``model.fit`` with
``BackupAndRestore`` (resumable, mid-epoch included: kill the process and run
the same command again), ``ModelCheckpoint``, ``CSVLogger``,
``TerminateOnNaN``, optional ``TensorBoard`` and ``EarlyStopping``, Keras'
progress bar, ``steps_per_execution``, XLA (``--jit-compile``), mixed precision
and ``tf.distribute`` strategies (``keras.distribution.DataParallel`` on JAX).

The result in ``--out`` is a ``keraszoo.save_pretrained`` folder
(``keraszoo.load(OUT)`` loads it) with the training log ``training_log.csv``
and ``command.txt``; ``metadata.json`` holds the recipe: the exact command,
the arguments, hardware, versions, wall time and images/s. Temporary state
(backups, checkpoints, TensorBoard logs) lives in ``OUT/train_state``.

Same seed + same data on a CPU gives bit-identical weights, also across a
kill and resume (see ``keraszoo.data.EpochStream``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shlex
import shutil
import sys
import time

from keraszoo import output_folder
from keraszoo.training import runtime
from keraszoo.training.recipe import Recipe
from keraszoo.training.recipe import UsageError

__all__ = ["StartFrom", "TrainImages", "TrainResult", "run", "select_classes"]


@dataclasses.dataclass
class TrainResult:
    """What :func:`run` did."""

    #: 0: trained and saved; 3: the loss became NaN/inf (nothing saved).
    status: int
    #: the trained model in float32, as ``keraszoo.load`` of the saved folder gives it (``None`` when the run diverged).
    model: object = None
    #: the metrics saved with the model.
    metrics: dict = dataclasses.field(default_factory=dict)
    #: the ``recipe`` record of ``metadata.json``.
    record: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StartFrom:
    """Fine-tuning: the run starts from ``model``'s weights instead of building the recipe's model.

    ``name`` is what the model was loaded from (recorded as ``base_model``);
    ``freeze_encoder`` trains with ``model.encoder`` frozen (the saved model
    is trainable as a whole again).
    """

    model: object
    name: str | None = None
    freeze_encoder: bool = False


@dataclasses.dataclass
class TrainImages:
    """Training images given as arrays (``[0, 1]`` floats or uint8, NHWC) instead of ``recipe.dataset``'s.

    ``y``: their labels (a conditional model); ``source``: where they came
    from; ``preparation``: how they were read (``{"resize": ..., "color_mode": ...}``). Both are recorded
    and part of the run's fingerprint, so a resume with other images or another preparation is refused.
    """

    x: object
    y: object = None
    source: str | None = None
    preparation: dict | None = None


def _training_arrays(recipe: Recipe, data_dir, given: TrainImages | None, needs_labels: bool):
    """``(x, x_val, y, y_val)``: the training images, held-out validation images, and their labels (or None)."""
    from keraszoo import data
    from keraszoo.training.fitting import hold_out

    if given is not None:
        x, y = given.x, given.y
    else:
        static = recipe.binarize in ("static", "threshold")  # the catalog's fixed sample, binarized on loading
        x, y = data.load_arrays(recipe.dataset, "train", source=recipe.data_source, data_dir=data_dir,
                                binarize=recipe.binarize if static else None, dtype="uint8")
    x, y = select_classes(x, y, recipe.classes)
    if recipe.limit:
        x, y = x[: recipe.limit], y[: recipe.limit] if y is not None else None
    x_train, x_val = hold_out(x, recipe.val_split)
    y_train, y_val = hold_out(y, recipe.val_split) if needs_labels else (None, None)  # the same permutation
    if len(x_train) == 0:
        raise UsageError(f"No training images left: --val-split {recipe.val_split:g} holds out {len(x_val)} of the "
                         f"{len(x)} images; use a smaller --val-split or more images (--limit).")
    return x_train, x_val, y_train, y_val


def select_classes(x, y, classes):
    """``(x, y)`` restricted to the images of ``classes`` (``None``: all), in their order: a one-class training set."""
    if classes is None:
        return x, y
    import numpy as np

    if y is None:
        raise UsageError(f"--classes {','.join(map(str, classes))} keeps the images of some classes: it needs labelled "
                         "images (a dataset's training split, or given labels).")
    keep = np.isin(np.asarray(y), np.asarray(classes))
    if not keep.any():
        found = sorted(int(c) for c in np.unique(np.asarray(y)))
        raise UsageError(f"--classes {','.join(map(str, classes))}: no training image of these classes (the labels are "
                         f"{found[0]}..{found[-1]}).")
    return x[keep], np.asarray(y)[keep]


def _stream_binarize(recipe: Recipe, given):
    """The stream's binarization: the catalog's static modes are applied on loading, given images' by the stream."""
    if recipe.binarize == "dynamic" or (given is not None and recipe.binarize != "none"):
        return recipe.binarize
    return None


def _evaluate(model, recipe: Recipe, data_dir, last_logs, test_data, val):
    """The saved metrics: the evaluation on ``recipe.eval_split`` (or ``test_data``), then the last epoch's."""
    from keraszoo import data
    from keraszoo.training.fitting import final_metrics

    metrics = {}
    if recipe.eval:
        split_name = recipe.eval_split.split("[")[0]
        binarize = None  # test_data and the catalog's split come binarized as the evaluation wants
        if test_data is None and split_name == "val":
            if val[0] is None:
                raise UsageError("--eval-split val evaluates on the held-out images: give --val-split > 0.")
            test_data, binarize = val, data.evaluation_binarize(recipe.binarize)
        elif test_data is None:
            x, y = data.load_arrays(recipe.dataset, recipe.eval_split, source=recipe.data_source, data_dir=data_dir,
                                    binarize=data.evaluation_binarize(recipe.binarize), dtype="uint8")
            test_data = (x, y)
        x, y = test_data
        test_ds = data.from_numpy(x, y if model.requires_labels else None, batch_size=recipe.eval_batch_size, shuffle=False,
                                  binarize=binarize)
        results = model.evaluate(test_ds, return_dict=True, verbose=0)
        metrics = {f"{split_name}_{k}": float(v) for k, v in results.items() if k != "loss"}
    for k, v in final_metrics(last_logs).items():
        metrics.setdefault(k, v)
    return metrics


def _output_job(recipe: Recipe, start: StartFrom | None, facts: dict):
    """``(job, key)`` of the run's output folder: the same command resumes it, another recipe is refused."""
    return ("finetune" if start is not None else "train"), output_folder.recipe_key(dict(recipe.semantic_args(), **facts))


def _folders(out, work_dir, dist):
    """``(out, work, work_own)``: the run's output folder (a worker's own, but on the chief), its work folder,
    and whether the work folder needs a claim of its own (outside ``out``).

    The chief's work folder is ``--work-dir`` (default ``OUT/train_state``); another worker's is its
    ``worker_<index>`` inside it, beside the chief's ``backup``, which every worker resumes from.
    """
    out = pathlib.Path(out)
    if not dist.is_chief:
        out = out / "train_state" / f"worker_{dist.worker_index}"
        work = pathlib.Path(work_dir) / f"worker_{dist.worker_index}" if work_dir else out / "train_state"
    else:
        work = pathlib.Path(work_dir) if work_dir else out / "train_state"
    inside = os.path.realpath(work).startswith(os.path.realpath(out) + os.sep)
    return out, work, not inside


def _chief_backup(out, work_dir, dist):
    """The chief's backup folder, which every worker of a multi-worker run resumes from (``None``: one process)."""
    if dist.name != "multiworker":
        return None
    return (pathlib.Path(work_dir) if work_dir else pathlib.Path(out) / "train_state") / "backup"


def _workers_of(out: pathlib.Path, job, key) -> tuple:
    """``("train_state",)`` when ``out/train_state`` holds only this run's non-chief workers' folders (multi-worker)."""
    state = out / "train_state"
    if not state.is_dir():
        return ()
    ours = all(_is_worker_folder(item, job, key) for item in state.iterdir())
    return ("train_state",) if ours else ()


def _is_worker_folder(item: pathlib.Path, job, key) -> bool:
    """``worker_<i>``, claimed by this run's other worker -- or being claimed now (its lock, its marker's draft)."""
    if not item.name.startswith("worker_") or not item.is_dir():
        return False
    return output_folder.is_claimed_by(item, job, key) or not output_folder.entries_in_the_way(item)


def _workers_in(work: pathlib.Path, job, key) -> tuple:
    """The ``worker_<i>`` folders of this run's other workers in the chief's ``--work-dir`` (not in its way)."""
    if not work.is_dir():
        return ()
    return tuple(item.name for item in work.iterdir() if _is_worker_folder(item, job, key))


def _check_folders(out, work_dir, dist, job, key, overwrite):
    """The output rule checked before the data is read (nothing created); True when ``out`` is a resume."""
    out, work, work_own = _folders(out, work_dir, dist)
    ignore = _workers_of(out, job, key) if dist.is_chief else ()
    resume = output_folder.check(out, job, key=key, overwrite=overwrite, flag="--out", ignore=ignore)
    if work_own:
        output_folder.check(work, job, key=key, overwrite=overwrite, flag="--work-dir",
                            ignore=_workers_in(work, job, key) if dist.is_chief else ())
    return resume


@contextlib.contextmanager
def _claimed_dirs(out, work_dir, dist, job, key, overwrite):
    """The run's ``(out, work)`` folders, claimed (:func:`keraszoo.output_folder.claim`) while the block runs.

    With ``overwrite``, a folder that is not this run's loses its old training backup (another recipe's).
    """
    out, work, work_own = _folders(out, work_dir, dist)
    ignore = _workers_of(out, job, key) if dist.is_chief else ()
    with contextlib.ExitStack() as stack:
        resume = output_folder.is_claimed_by(out, job, key)
        stack.enter_context(output_folder.claim(out, job, key=key, overwrite=overwrite, flag="--out", ignore=ignore))
        if work_own:
            resume = resume and output_folder.is_claimed_by(work, job, key)
            stack.enter_context(output_folder.claim(work, job, key=key, overwrite=overwrite, flag="--work-dir",
                                                    ignore=_workers_in(work, job, key) if dist.is_chief else ()))
        if overwrite and not resume:
            shutil.rmtree(work / "backup", ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        yield out, work


def _prepare_model(recipe: Recipe, start: StartFrom | None, image_shape, dist, spe, jit):
    """The compiled model: the recipe's, built in the strategy's scope, or the given one (fine-tuning)."""
    import keras

    if start is None:
        with dist.scope():
            model = recipe.build_model(image_shape)
    else:
        if dist.name != "default":
            raise UsageError("A run from given weights uses the default strategy (one device).")
        model = start.model
        if start.freeze_encoder:
            model.encoder.trainable = False
    with dist.scope():
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=recipe.lr), steps_per_execution=spe,
                      jit_compile=jit, **recipe.compile_kwargs(type(model)))
    return model


def run(recipe: Recipe, out, *, work_dir=None, data_dir=None, verbose=1, cpu_replicas=0, argv=None, rerun_of=None,
        test_data=None, initial_weights=None, train_data=None, extra_callbacks=(), overwrite=False,
        prog=None) -> TrainResult:
    """Train ``recipe`` and write a ``save_pretrained`` folder to ``out``.

    Args:
        argv: the command line recorded with the run (default: :func:`~keraszoo.training.arguments.recipe_argv`).
        rerun_of: the manifest entry whose recipe this run repeats (recorded).
        test_data: ``(x, y)`` arrays, binarized as the evaluation wants, evaluated at the end instead of
            ``recipe.eval_split`` (``y`` ``None`` but for a conditional model).
        initial_weights: a :class:`StartFrom` (or a built model): fine-tuning, from its weights.
        train_data: :class:`TrainImages` trained on instead of ``recipe.dataset``'s training split.
        extra_callbacks: more Keras callbacks, or functions ``f(backup) -> callback`` of the run's
            :class:`~keraszoo.training.backup.ResumableBackup` (see :func:`~keraszoo.training.fitting.fit_resumable`).
        prog: the command recorded with ``argv`` (default ``keraszoo train``, or ``keraszoo finetune`` from given
            weights; ``keraszoo anomaly fit`` trains through here too).
        overwrite: write into an ``out`` (and ``work_dir``) that holds something else than this run
            (``--overwrite``); without it only an empty folder, or this run's own (the same recipe: a
            resume), is written to. The folders are locked while the run writes them
            (:mod:`keraszoo.output_folder`).

    Returns:
        a :class:`TrainResult`; its ``status`` is 3 when the loss became NaN/inf.

    Raises:
        ModelBuildError: the variant's constructor refuses the configuration (before any folder is made).
        UsageError: a bad configuration, missing data, a failed write (a ``UsageError`` subclass).
        OutputFolderError: ``out`` is a file, holds files of another run or of the user, or is in use
            (checked before the data is read).
    """
    runtime.setup_cpu_replicas(cpu_replicas)
    from keraszoo import data
    from keraszoo.training import fitting
    from keraszoo.training.arguments import recipe_argv

    start = initial_weights if initial_weights is None or isinstance(initial_weights, StartFrom) \
        else StartFrom(initial_weights)
    t_start = time.time()
    argv = list(recipe_argv(recipe) if argv is None else argv)
    dist = runtime.Distribution(recipe.strategy)
    deterministic, jit, spe = runtime.resolve_runtime(recipe.jit_compile, recipe.steps_per_execution,
                                                      recipe.deterministic, dist)
    needs_labels = (start.model if start else recipe.variant_class()).requires_labels
    facts = _start_facts(start, train_data)
    job, key = _output_job(recipe, start, facts)
    _check_folders(out, work_dir, dist, job, key, overwrite)  # refused at once, before the data is read
    try:
        x, x_val, y, y_val = _training_arrays(recipe, data_dir, train_data, needs_labels)
    except ValueError as e:
        raise UsageError(str(e)) from e
    with runtime.determinism(recipe.seed, deterministic), runtime.dtype_policy(recipe.mixed_precision) as policy:
        stream = data.EpochStream(x, batch_size=recipe.batch_size, seed=recipe.seed, labels=y,
                                  binarize=_stream_binarize(recipe, train_data), drop_remainder=recipe.drop_remainder)
        val_ds = None
        if x_val is not None:
            val_ds = data.from_numpy(x_val, y_val, batch_size=recipe.eval_batch_size, shuffle=False,
                                     binarize=data.evaluation_binarize(recipe.binarize))
        fingerprint = dict(recipe.semantic_args(), **facts, num_examples=stream.num_examples,
                           steps_per_epoch=stream.steps_per_epoch)
        image_shape = (start.model.image_shape if start else tuple(x.shape[1:]) if train_data is not None
                       else data.dataset_info(recipe.dataset).image_shape)  # given images: a model of their shape
        model = _prepare_model(recipe, start, image_shape, dist, spe, jit)

        # Claimed once the data and the model are ready (no folder on errors), held until the model is saved.
        chief_backup = _chief_backup(out, work_dir, dist)  # what every worker of a multi-worker run resumes from
        with _claimed_dirs(out, work_dir, dist, job, key, overwrite) as (out, work):
            result = fitting.fit_resumable(
                model, stream, epochs=recipe.epochs, out_dir=out, work_dir=work, fingerprint=fingerprint,
                distribution=dist, backup_every=recipe.backup_every, val_ds=val_ds, verbose=verbose,
                tensorboard=recipe.tensorboard, early_stopping=recipe.early_stopping, callbacks=extra_callbacks,
                restore_dir=chief_backup,
            )
            if result.diverged:
                print("error: the loss became NaN/inf; nothing was saved. Lower --lr or check the data. "
                      f"The last good backup is in {result.backup.backup_dir}.", file=sys.stderr)
                return TrainResult(status=3)
            if start is not None and start.freeze_encoder:
                model.encoder.trainable = True  # saved models are trainable as a whole again
            # A variant's own stage after fit, on the same training images (the VQ-VAE's prior: --prior-epochs).
            stage_metrics = {}
            if model.has_second_stage:
                with dist.scope():
                    stage_metrics = model.fit_second_stage(
                        data.from_numpy(x, batch_size=recipe.eval_batch_size, shuffle=False,
                                        binarize=data.evaluation_binarize(recipe.binarize)),
                        batch_size=recipe.batch_size, verbose=verbose)
            metrics = {**_evaluate(model, recipe, data_dir, result.last_logs, test_data, (x_val, y_val)),
                       **stage_metrics}
            prog = prog or ("keraszoo finetune" if start is not None else "keraszoo train")
            record = _record(recipe, prog, argv, facts, stream, dist, policy, jit, spe, deterministic)
            record.update(**result.record(t_start), versions=runtime.versions())
            if rerun_of:
                record["rerun_of"] = rerun_of
            final = model if policy == "float32" else runtime.float32_copy(model)
            if dist.is_chief:
                dataset = {"name": recipe.dataset, "split": "train"} if train_data is None else \
                    {"name": recipe.dataset, "path": train_data.source}
                fitting.save_run(final, out, metrics=metrics, recipe=record, dataset=dataset)
            result.backup.finish()

    throughput = result.throughput
    print(
        f"Trained {throughput.total_images} images in {result.fit_time_s:.1f} s: "
        f"{throughput.images_per_s:.0f} images/s ({throughput.steady_images_per_s:.0f} images/s "
        f"after warm-up) on {record['hardware']}. Model written to {out}."
    )
    return TrainResult(status=0, model=_random_state_as_saved(final), metrics=metrics, record=record)


def _random_state_as_saved(model):
    """``model`` with its random generators back at their first draw, as ``keraszoo.load(out)`` builds them.

    The weights files hold no generator state, so the saved folder's model draws from ``[seed, 0]`` (a
    ``SeedGenerator``'s state: its seed and the draws made so far), while the trained one has drawn during
    training. Reset, the returned model measures (ELBO, IWAE bound, noise) as the saved folder does.
    """
    import numpy as np

    from keraszoo.training.backup import rng_variables

    for state in rng_variables(model):
        state.assign(np.asarray(state.numpy()) * np.array([1, 0], dtype=state.dtype))
    return model


def _start_facts(start: StartFrom | None, given: TrainImages | None) -> dict:
    """What a fine-tuning run starts from, for its fingerprint and record."""
    facts = {}
    if start is not None:
        facts.update(base_model=start.name, freeze_encoder=bool(start.freeze_encoder))
    if given is not None:
        facts["data"] = given.source
        if given.preparation:
            facts["data_preparation"] = dict(given.preparation)
    return facts


def _record(recipe: Recipe, prog, argv, facts, stream, dist, policy, jit, spe, deterministic) -> dict:
    """The ``recipe`` record of ``metadata.json`` (the timings are added by the caller)."""
    hw = runtime.hardware_info()
    record = {
        "command": " ".join([prog, shlex.join(argv)]).strip(),
        "argv": argv,
        "args": recipe.to_args(),
        "script": prog,
        **facts,
    }
    if "base_model" not in facts:
        key, kwargs = recipe.model_spec()
        record["model"] = {"alias": recipe.model, "variant": key, "kwargs": kwargs}
    record.update({
        "dataset": recipe.dataset,
        "data_source": recipe.data_source,
        "num_train_examples": int(stream.num_examples),
        "steps_per_epoch": int(stream.steps_per_epoch),
        "epochs": int(recipe.epochs),
        "batch_size": int(recipe.batch_size),
        "lr": float(recipe.lr),
        "seed": int(recipe.seed),
        "binarization": recipe.binarize,
        "hardware": hw["description"],
        "hardware_details": hw,
        "strategy": recipe.strategy,
        "num_replicas": dist.num_replicas,
        "dtype_policy": policy,
        "jit_compile": bool(jit),
        "steps_per_execution": int(spe),
        "deterministic": bool(deterministic),
    })
    return record
