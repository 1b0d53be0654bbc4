"""Train any keraszoo autoencoder variant on MNIST, Fashion-MNIST or CIFAR-10.

Examples::

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

import json
import pathlib
import shlex
import sys
import time

from keraszoo.training import runtime
from keraszoo.training.arguments import PROG
from keraszoo.training.arguments import build_parser
from keraszoo.training.arguments import resolve_args
from keraszoo.training.recipe import Recipe
from keraszoo.training.recipe import UsageError

__all__ = ["build_parser", "main", "run"]


def _training_arrays(recipe: Recipe, data_dir):
    from keraszoo import data
    from keraszoo.training.fitting import hold_out

    static = recipe.binarize in ("static", "threshold")
    x, _ = data.load_arrays(recipe.dataset, "train", source=recipe.data_source, data_dir=data_dir,
                            binarize=recipe.binarize if static else None, dtype="uint8")
    if recipe.limit:
        x = x[: recipe.limit]
    x_train, x_val = hold_out(x, recipe.val_split)
    if len(x_train) == 0:
        raise ValueError(f"No training images left: --val-split {recipe.val_split:g} holds out {len(x_val)} of the "
                         f"{len(x)} images; use a smaller --val-split or more images (--limit).")
    return x_train, x_val


def _training_labels(recipe: Recipe, data_dir):
    """``(y, y_val)``: the labels of :func:`_training_arrays`' images (a conditional variant trains on them)."""
    from keraszoo import data
    from keraszoo.training.fitting import hold_out

    _, y = data.load_arrays(recipe.dataset, "train", source=recipe.data_source, data_dir=data_dir, dtype="uint8")
    return hold_out(y[: recipe.limit] if recipe.limit else y, recipe.val_split)  # hold_out's fixed permutation


def _labels_if_needed(model_class, labels):
    """``labels`` for a conditional variant (``requires_labels``: it trains and evaluates on them), else ``None``."""
    return labels if getattr(model_class, "requires_labels", False) else None


def _eval_binarize(binarize):
    return {"none": None, "dynamic": "static"}.get(binarize, binarize)


def _evaluate(model, recipe: Recipe, data_dir, last_logs):
    from keraszoo import data
    from keraszoo.training.fitting import final_metrics

    metrics = {}
    if recipe.eval:
        xt, yt = data.load_arrays(recipe.dataset, recipe.eval_split, source=recipe.data_source,
                                  data_dir=data_dir, binarize=_eval_binarize(recipe.binarize), dtype="uint8")
        test_ds = data.from_numpy(xt, _labels_if_needed(type(model), yt), batch_size=recipe.eval_batch_size,
                                  shuffle=False)
        results = model.evaluate(test_ds, return_dict=True, verbose=0)
        split_name = recipe.eval_split.split("[")[0]
        metrics = {f"{split_name}_{k}": float(v) for k, v in results.items() if k != "loss"}
    for k, v in final_metrics(last_logs).items():
        metrics.setdefault(k, v)
    return metrics


def _output_dirs(out, work_dir, dist):
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (it is created, with its parents, if missing).")
    if not dist.is_chief:
        out = out / "train_state" / f"worker_{dist.worker_index}"
    work = pathlib.Path(work_dir) if work_dir else out / "train_state"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    return out, work


def run(recipe: Recipe, out, *, work_dir=None, data_dir=None, verbose=1, cpu_replicas=0,
        argv=None, rerun_of=None) -> int:
    """Train ``recipe`` and write a ``save_pretrained`` folder to ``out``.

    ``argv`` is the command line recorded in the recipe (default: the one that
    reproduces ``recipe``). Returns 0, or 3 when the loss became NaN/inf.
    """
    runtime.setup_cpu_replicas(cpu_replicas)
    import keras

    from keraszoo import data
    from keraszoo.models import get_variant
    from keraszoo.training.arguments import recipe_to_argv
    from keraszoo.training.fitting import fit_resumable
    from keraszoo.training.fitting import save_run

    t_start = time.time()
    argv = list(recipe_to_argv(recipe) if argv is None else argv)
    key, kwargs = recipe.model_spec()
    info = data.dataset_info(recipe.dataset)
    dist = runtime.Distribution(recipe.strategy)
    try:
        x, x_val = _training_arrays(recipe, data_dir)
        variant = get_variant(key)
        y, y_val = _training_labels(recipe, data_dir) if getattr(variant, "requires_labels", False) else (None, None)
    except ValueError as e:
        raise UsageError(str(e)) from e
    deterministic, jit, spe = runtime.resolve_runtime(recipe.jit_compile, recipe.steps_per_execution,
                                                      recipe.deterministic, dist)

    with runtime.determinism(recipe.seed, deterministic), runtime.dtype_policy(recipe.mixed_precision) as policy:
        stream = data.EpochStream(x, batch_size=recipe.batch_size, seed=recipe.seed,
                                  binarize="dynamic" if recipe.binarize == "dynamic" else None,
                                  drop_remainder=recipe.drop_remainder, labels=y)
        val_ds = None
        if x_val is not None:
            val_ds = data.from_numpy(x_val, y_val, batch_size=recipe.eval_batch_size, shuffle=False,
                                     binarize=_eval_binarize(recipe.binarize))
        fingerprint = dict(recipe.semantic_args(), num_examples=stream.num_examples,
                           steps_per_epoch=stream.steps_per_epoch)
        with dist.scope():
            model = recipe.build_model(info.image_shape)
            model.compile(optimizer=keras.optimizers.Adam(learning_rate=recipe.lr), steps_per_execution=spe,
                          jit_compile=jit, **recipe.compile_kwargs(type(model)))

        out, work = _output_dirs(out, work_dir, dist)  # once the data and the model are ready: no folder on errors
        result = fit_resumable(
            model, stream, epochs=recipe.epochs, out_dir=out, work_dir=work, fingerprint=fingerprint,
            distribution=dist, backup_every=recipe.backup_every, val_ds=val_ds, verbose=verbose,
            tensorboard=recipe.tensorboard, early_stopping=recipe.early_stopping,
        )
        if result.diverged:
            print("error: the loss became NaN/inf; nothing was saved. Lower --lr or check the data. "
                  f"The last good backup is in {result.backup.backup_dir}.", file=sys.stderr)
            return 3
        # A variant's own stage after fit, on the same training images (the VQ-VAE's prior: --prior-epochs).
        second_stage = getattr(model, "fit_second_stage", None)
        stage_metrics = {}
        if second_stage is not None:
            with dist.scope():
                stage_metrics = second_stage(data.from_numpy(x, batch_size=recipe.eval_batch_size, shuffle=False,
                                                             binarize=_eval_binarize(recipe.binarize)),
                                             batch_size=recipe.batch_size, verbose=verbose)
        metrics = {**_evaluate(model, recipe, data_dir, result.last_logs), **stage_metrics}

        hw = runtime.hardware_info()
        record = {
            "command": " ".join([PROG, shlex.join(argv)]).strip(),
            "argv": argv,
            "args": recipe.to_args(),
            "script": "keraszoo train",
            "model": {"alias": recipe.model, "variant": key, "kwargs": kwargs},
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
            **result.record(t_start),
            "versions": runtime.versions(),
        }
        if rerun_of:
            record["rerun_of"] = rerun_of
        if dist.is_chief:
            final = model if policy == "float32" else runtime.float32_copy(model)
            save_run(final, out, metrics=metrics, recipe=record, dataset={"name": info.name, "split": "train"})
        result.backup.finish()

    throughput = result.throughput
    print(
        f"Trained {throughput.total_images} images in {result.fit_time_s:.1f} s: "
        f"{throughput.images_per_s:.0f} images/s ({throughput.steady_images_per_s:.0f} images/s "
        f"after warm-up) on {record['hardware']}. Model written to {out}."
    )
    return 0


def main(argv=None) -> int:
    """Entry point: ``keraszoo train ...`` / ``python training/train.py ...``.

    Returns the exit status: 0 success, 1 a reported error (missing data, bad
    configuration, the loss became NaN, a full disk), 2 bad command line.
    """
    try:
        recipe, context, effective = resolve_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    except (UsageError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if context.dry_run:
        try:
            key, kwargs = recipe.model_spec()
        except UsageError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(json.dumps({"args": recipe.to_args(), "variant": key, "model_kwargs": kwargs,
                          "argv": effective}, indent=2, sort_keys=True))
        return 0
    from keraszoo.data import DatasetUnavailableError

    try:
        return run(recipe, context.out, work_dir=context.work_dir, data_dir=context.data_dir,
                   verbose=context.verbose, cpu_replicas=context.cpu_replicas, argv=effective,
                   rerun_of=context.recipe)
    except (UsageError, DatasetUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
