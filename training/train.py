"""Train any keraszoo autoencoder variant on MNIST, Fashion-MNIST or CIFAR-10.

Examples::

    python training/train.py --model vae --dataset mnist --epochs 30 --out runs/vae_mnist
    python training/train.py --model beta_vae --beta 8 --latent-dim 10 --out runs/bvae
    python training/train.py --model conv_ae --dataset cifar10 --data-source npz \\
        --data-dir /data --mixed-precision --out runs/conv_ae_cifar10
    python training/train.py --recipe vae_mnist --out runs/vae_mnist_again   # rerun a manifest entry

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

import argparse
import json
import pathlib
import shlex
import sys
from keraszoo.argtypes import fraction, positive_int  # noqa: E402
import time

if __package__ in (None, ""):  # run as a script: make `training` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from training import _common  # noqa: E402
from training._common import UsageError  # noqa: E402

PROG = "python training/train.py"

#: Arguments that say where things are, not what is trained: they are left
#: out of the recipe's ``args`` (and of a ``--recipe`` rerun).
LOCATION_ARGS = ("out", "work_dir", "data_dir", "recipe", "manifest", "dry_run", "verbose", "cpu_replicas")

#: Arguments that do not change the trained weights' values; a backup may be
#: resumed with other values of these.
RUNTIME_ARGS = (
    "epochs",
    "data_source",
    "strategy",
    "jit_compile",
    "steps_per_execution",
    "deterministic",
    "backup_every",
    "tensorboard",
    "eval",
    "eval_split",
    "eval_batch_size",
)

#: Model hyperparameter flags: dest -> constructor keyword.
MODEL_FLAGS = {
    "latent_dim": "latent_dim",
    "architecture": "architecture",
    "hidden_dims": "hidden_dims",
    "conv_filters": "conv_filters",
    "reconstruction_loss": "reconstruction_loss",
    "beta": "beta",
    "noise": "noise",
    "noise_level": "noise_level",
    "sparsity": "sparsity",
    "sparsity_weight": "sparsity_weight",
    "sparsity_target": "sparsity_target",
    "contractive_weight": "contractive_weight",
    "prior": "prior",
    "adversarial_weight": "adversarial_weight",
}


def _int_list(text):
    try:
        values = tuple(int(v) for v in str(text).replace(" ", "").strip("[]()").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _hidden_dims(text):
    """``512,256``; ``none`` (or an empty string) for no hidden dense layer."""
    if str(text).strip().lower() in ("", "none", "()", "[]"):
        return ()
    return _int_list(text)



def _spe(text):
    if text == "auto":
        return text
    return positive_int(text)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``training/train.py`` (also ``keraszoo train``)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train a keraszoo autoencoder and write a save_pretrained folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, help="variant or alias: " + ", ".join(_common.MODEL_ALIASES))
    g.add_argument("--latent-dim", type=positive_int, default=None, help="code size (model default: 16)")
    g.add_argument("--architecture", choices=("dense", "conv"), default=None)
    g.add_argument("--hidden-dims", type=_hidden_dims, default=None,
                   help="e.g. 512,256; 'none': no hidden dense layer (conv: project straight to the code)")
    g.add_argument("--conv-filters", type=_int_list, default=None, help="e.g. 32,64")
    g.add_argument("--reconstruction-loss", choices=("bce", "mse"), default=None)
    g.add_argument("--beta", type=float, default=None, help="VAE KL weight (beta-VAE)")
    g.add_argument("--noise", choices=("gaussian", "masking", "salt_and_pepper"), default=None,
                   help="DAE corruption")
    g.add_argument("--noise-level", type=float, default=None, help="DAE corruption level")
    g.add_argument("--sparsity", choices=("kl", "l1"), default=None, help="SAE penalty")
    g.add_argument("--sparsity-weight", type=float, default=None)
    g.add_argument("--sparsity-target", type=float, default=None)
    g.add_argument("--contractive-weight", type=float, default=None)
    g.add_argument("--prior", choices=("gaussian", "mixture"), default=None, help="AAE prior")
    g.add_argument("--adversarial-weight", type=float, default=None, help="AAE generator weight")
    g.add_argument("--hparam", action="append", default=[], metavar="NAME=VALUE",
                   help="any other constructor argument (repeatable), e.g. --hparam decoder_std=0.2")

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="mnist", help="mnist, fashion_mnist or cifar10")
    g.add_argument("--data-source", choices=("auto", "tfds", "npz"), default="auto",
                   help="auto: the .npz archive in --data-dir/$KERASZOO_DATA_DIR if present, else tfds")
    g.add_argument("--data-dir", default=None, help="folder of the .npz archives (or tfds data_dir)")
    g.add_argument("--binarize", choices=("none", "dynamic", "static", "threshold"), default="none")
    g.add_argument("--limit", type=positive_int, default=None, help="train on the first N images only")
    g.add_argument("--val-split", type=fraction, default=0.0,
                   help="fraction of the training images held out for validation")

    g = p.add_argument_group("optimization")
    g.add_argument("--epochs", type=positive_int, default=10)
    g.add_argument("--batch-size", type=positive_int, default=128, help="global batch size")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    g.add_argument("--discriminator-lr", type=float, default=None,
                   help="AAE discriminator/generator learning rate (model default 2e-4)")
    g.add_argument("--drop-remainder", action=argparse.BooleanOptionalAction, default=False,
                   help="drop each epoch's last, smaller batch")
    g.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without improvement (0: off)")
    g.add_argument("--seed", type=int, default=0)

    g = p.add_argument_group("runtime")
    g.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                   help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    g.add_argument("--cpu-replicas", type=int, default=0,
                   help="split the CPU into N logical devices (to try --strategy mirrored without GPUs)")
    g.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=False,
                   help="mixed_float16 compute (GPU only)")
    g.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                   help="XLA; auto: on with a GPU, off on CPU (XLA is slower there)")
    g.add_argument("--steps-per-execution", type=_spe, default="auto",
                   help="train steps per tf.function call; auto: 32 on GPU, 16 on CPU")
    g.add_argument("--deterministic", choices=("auto", "on", "off"), default="auto",
                   help="TF op determinism; auto: on without a GPU")

    g = p.add_argument_group("output")
    g.add_argument("--out", default=None, help="output folder (save_pretrained layout)")
    g.add_argument("--work-dir", default=None, help="backups/checkpoints/TensorBoard (default OUT/train_state)")
    g.add_argument("--backup-every", type=int, default=200, metavar="STEPS",
                   help="back up every STEPS steps (and every epoch); 0: every epoch only")
    g.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=False)
    g.add_argument("--eval", action=argparse.BooleanOptionalAction, default=True,
                   help="evaluate on --eval-split at the end (metrics of the saved model)")
    g.add_argument("--eval-split", default="test")
    g.add_argument("--eval-batch-size", type=positive_int, default=500)
    g.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras fit verbosity")
    g.add_argument("--recipe", default=None, metavar="NAME",
                   help="rerun the recipe of manifest entry NAME (other flags override it)")
    g.add_argument("--manifest", default=None, help="manifest file for --recipe (default: keraszoo's)")
    g.add_argument("--dry-run", action="store_true", help="print the resolved arguments and exit")
    return p


# --------------------------------------------------------------------------
# Arguments and recipes
# --------------------------------------------------------------------------


def _actions(parser):
    return {a.dest: a for a in parser._actions if a.dest != "help"}


def args_to_argv(args: dict, parser=None) -> list:
    """Turn an argument dict (dest -> value) back into a command line."""
    parser = parser or build_parser()
    actions = _actions(parser)
    unknown = sorted(set(args) - set(actions))
    if unknown:
        raise UsageError(f"Unknown training argument(s) {unknown} in the recipe.")
    argv = []
    for dest, value in args.items():
        action = actions[dest]
        flag = action.option_strings[0]
        if value is None:
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(action, argparse._StoreTrueAction):
            if value:
                argv.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                argv += [flag, str(item)]
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def _strip_recipe_flags(argv):
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a in ("--recipe", "--manifest"):
            skip = True
            continue
        if a.startswith("--recipe=") or a.startswith("--manifest="):
            continue
        out.append(a)
    return out


def resolve_args(argv=None):
    """Parse ``argv``; with ``--recipe NAME`` the recipe's arguments come first.

    Returns ``(namespace, effective_argv)``: flags given on the command line
    override the recipe's; ``effective_argv`` reproduces the run.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    first = parser.parse_args(argv)
    effective = argv
    if first.recipe:
        recipe_args = _common.read_recipe_args(first.recipe, first.manifest)
        if isinstance(recipe_args, dict):
            recipe_argv = args_to_argv(
                {k: v for k, v in recipe_args.items() if k not in LOCATION_ARGS}, parser
            )
        else:
            recipe_argv = _strip_recipe_flags([str(a) for a in recipe_args])
        effective = recipe_argv + _strip_recipe_flags(argv)
        args = parser.parse_args(effective + (["--manifest", first.manifest] if first.manifest else []))
        args.recipe = first.recipe
    else:
        args = first
    if args.model is None:
        parser.error("--model is required (or --recipe NAME)")
    if args.out is None and not args.dry_run:
        parser.error("--out is required")
    return args, effective


def recipe_args(args) -> dict:
    """The arguments that define the run (the recipe's ``args``)."""
    return {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in sorted(vars(args).items()) if k not in LOCATION_ARGS}


def model_spec(args):
    """``(variant_key, constructor kwargs)`` from ``--model`` and the flags."""
    key, kwargs = _common.resolve_model(args.model)
    for dest, kw in MODEL_FLAGS.items():
        value = getattr(args, dest)
        if value is not None:
            kwargs[kw] = list(value) if isinstance(value, tuple) else value
    for item in args.hparam:
        name, value = _common.parse_hparam(item)
        kwargs[name] = value
    kwargs.setdefault("seed", args.seed)
    return key, kwargs


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def _load_training_arrays(args):
    from keraszoo import data

    static = args.binarize in ("static", "threshold")
    x, _ = data.load_arrays(
        args.dataset,
        "train",
        source=args.data_source,
        data_dir=args.data_dir,
        binarize=args.binarize if static else None,
        dtype="uint8",
    )
    if args.limit:
        x = x[: args.limit]
    x_val = None
    if args.val_split > 0:
        import numpy as np

        # A fixed permutation (some archives are sorted by class).
        order = np.random.default_rng(12345).permutation(len(x))
        n_val = max(1, int(round(len(x) * args.val_split)))
        x_val, x = x[order[:n_val]], x[np.sort(order[n_val:])]
    return x, x_val


def _eval_binarize(binarize):
    return {"none": None, "dynamic": "static"}.get(binarize, binarize)


def train(args, argv_effective) -> int:
    """Run one training as configured by ``args`` (see :func:`build_parser`)."""
    _common.setup_cpu_replicas(args.cpu_replicas)
    import keras

    from keraszoo import data
    from keraszoo.models import get_variant
    from training.fitting import final_metrics
    from training.fitting import fit_resumable

    t_start = time.time()
    key, kwargs = model_spec(args)
    cls = get_variant(key)
    _common.check_hyperparameters(cls, kwargs)
    info = data.dataset_info(args.dataset)
    dist = _common.Distribution(args.strategy)
    out = pathlib.Path(args.out)
    if not dist.is_chief:
        out = out / "train_state" / f"worker_{dist.worker_index}"
    work = pathlib.Path(args.work_dir) if args.work_dir else out / "train_state"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)

    try:
        x, x_val = _load_training_arrays(args)
    except ValueError as e:
        raise UsageError(str(e)) from e
    gpu = bool(_common.gpu_devices())
    deterministic = {"on": True, "off": False}.get(args.deterministic, not gpu)
    jit = _common.resolve_jit(args.jit_compile)
    spe = _common.resolve_steps_per_execution(args.steps_per_execution)
    spe = _common.check_spe_for_replicas(spe, dist, explicit=args.steps_per_execution != "auto")

    with _common.determinism(args.seed, deterministic), _common.dtype_policy(args.mixed_precision) as policy:
        stream = data.EpochStream(
            x,
            batch_size=args.batch_size,
            seed=args.seed,
            binarize="dynamic" if args.binarize == "dynamic" else None,
            drop_remainder=args.drop_remainder,
        )
        steps = stream.steps_per_epoch
        val_ds = None
        if x_val is not None:
            val_ds = data.from_numpy(x_val, batch_size=args.eval_batch_size, shuffle=False,
                                     binarize=_eval_binarize(args.binarize))
        semantic = {k: v for k, v in recipe_args(args).items() if k not in RUNTIME_ARGS}
        fingerprint = dict(semantic, num_examples=stream.num_examples, steps_per_epoch=steps)

        with dist.scope():
            try:
                model = cls(input_shape=info.image_shape, **kwargs)
            except (TypeError, ValueError) as e:
                raise UsageError(f"Cannot build {cls.__name__} with {kwargs}: {e}") from e
            compile_kwargs = {}
            if args.discriminator_lr is not None:
                if key != "aae":
                    raise UsageError("--discriminator-lr applies to the adversarial autoencoder only.")
                compile_kwargs["discriminator_optimizer"] = keras.optimizers.Adam(
                    args.discriminator_lr, beta_1=0.5)
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=args.lr),
                steps_per_execution=spe,
                jit_compile=jit,
                **compile_kwargs,
            )

        result = fit_resumable(
            model,
            stream,
            epochs=args.epochs,
            out_dir=out,
            work_dir=work,
            fingerprint=fingerprint,
            distribution=dist,
            backup_every=args.backup_every,
            val_ds=val_ds,
            verbose=args.verbose,
            tensorboard=args.tensorboard,
            early_stopping=args.early_stopping,
        )
        if result.diverged:
            print("error: the loss became NaN/inf; nothing was saved. Lower --lr or check the data. "
                  f"The last good backup is in {result.backup.backup_dir}.", file=sys.stderr)
            return 3
        throughput, fit_time = result.throughput, result.fit_time_s

        metrics = {}
        if args.eval:
            xt, _ = data.load_arrays(args.dataset, args.eval_split, source=args.data_source,
                                     data_dir=args.data_dir, binarize=_eval_binarize(args.binarize),
                                     dtype="uint8")
            test_ds = data.from_numpy(xt, batch_size=args.eval_batch_size, shuffle=False)
            results = model.evaluate(test_ds, return_dict=True, verbose=0)
            split_name = args.eval_split.split("[")[0]
            metrics = {f"{split_name}_{k}": float(v) for k, v in results.items() if k != "loss"}
        for k, v in final_metrics(result.last_logs).items():
            metrics.setdefault(k, v)

        hw = _common.hardware_info()
        recipe = {
            "command": " ".join([PROG, shlex.join(argv_effective)]).strip(),
            "argv": list(argv_effective),
            "args": recipe_args(args),
            "script": "training/train.py",
            "model": {"alias": args.model, "variant": key, "kwargs": kwargs},
            "dataset": args.dataset,
            "data_source": args.data_source,
            "num_train_examples": int(stream.num_examples),
            "steps_per_epoch": int(steps),
            "epochs": int(args.epochs),
            "batch_size": int(args.batch_size),
            "lr": float(args.lr),
            "seed": int(args.seed),
            "binarization": "none" if args.binarize == "none" else args.binarize,
            "hardware": hw["description"],
            "hardware_details": hw,
            "strategy": args.strategy,
            "num_replicas": dist.num_replicas,
            "dtype_policy": policy,
            "jit_compile": bool(jit),
            "steps_per_execution": int(spe),
            "deterministic": bool(deterministic),
            "wall_time_s": round(time.time() - t_start, 3),
            "fit_time_s": round(fit_time, 3),
            "images_per_s": round(throughput.images_per_s, 1),
            "steady_images_per_s": round(throughput.steady_images_per_s, 1),
            "resumed_from_step": int(result.resumed_from_step),
            "versions": _common.versions(),
        }
        if args.recipe:
            recipe["rerun_of"] = args.recipe

        if dist.is_chief:
            import keraszoo

            final = model if policy == "float32" else _common.float32_copy(model)
            keraszoo.save_pretrained(final, out, metrics=metrics, recipe=recipe,
                                     dataset={"name": info.name, "split": "train"})
            _common.write_text_atomic(out / "command.txt", recipe["command"] + "\n")
        result.backup.finish()

    print(
        f"Trained {throughput.total_images} images in {fit_time:.1f} s: "
        f"{throughput.images_per_s:.0f} images/s ({throughput.steady_images_per_s:.0f} images/s "
        f"after warm-up) on {recipe['hardware']}. Model written to {out}."
    )
    return 0


def main(argv=None) -> int:
    """Entry point: ``python training/train.py ...`` / ``keraszoo train ...``.

    Returns the exit status: 0 success, 1 a reported error (missing data, bad
    configuration), 2 bad command line, 3 training diverged (NaN).
    """
    try:
        args, effective = resolve_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    except (UsageError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        key, kwargs = model_spec(args)
        print(json.dumps({"args": recipe_args(args), "variant": key, "model_kwargs": kwargs,
                          "argv": effective}, indent=2, sort_keys=True))
        return 0
    from keraszoo.data import DatasetUnavailableError

    try:
        return train(args, effective)
    except (UsageError, DatasetUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
