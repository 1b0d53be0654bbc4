"""The command lines of ``keraszoo train`` and ``keraszoo finetune``, and the way from argv to a :class:`Recipe`.

The flow is one way: argv -> ``argparse`` (the ``keraszoo`` parser, built
once) -> :func:`resolve` -> :class:`Recipe` -> the engine. The flags that set
a recipe field have no argparse default, so the namespace holds what was
asked and nothing else (a ``--recipe NAME`` run takes the rest from the
manifest entry); the command line recorded with a run is written from the
recipe by :func:`recipe_argv`, a plain formatter.

The model flags are not listed here: they come from the registered variant
classes' ``hyperparameters`` and ``training_options`` tables, grouped by the
class that declares them (whose help they carry; the registry refuses two
meanings of one flag), so a new variant's flags appear on the command line the
moment it is imported.
"""

from __future__ import annotations

import argparse
import dataclasses

from keraszoo.argtypes import flag_of
from keraszoo.argtypes import fraction
from keraszoo.argtypes import positive_int
from keraszoo.training.recipe import ArgumentValueError
from keraszoo.training.recipe import Recipe
from keraszoo.training.recipe import UsageError
from keraszoo.training.recipe import model_flags
from keraszoo.training.recipe import option_flags

SUPPRESS = argparse.SUPPRESS
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Recipe) if f.default is not dataclasses.MISSING}
_FIELDS = {f.name for f in dataclasses.fields(Recipe)} - {"model_kwargs", "options"}

#: What ``keraszoo finetune`` changes of the recipe defaults (a pretrained model learns slower, on fewer images).
FINETUNE_DEFAULTS = {"epochs": 5, "lr": 1e-4, "batch_size": 64}


@dataclasses.dataclass
class RunContext:
    """Where a run reads and writes, and how it talks: not part of the recipe."""

    out: str | None = None
    work_dir: str | None = None
    data_dir: str | None = None
    recipe: str | None = None
    manifest: str | None = None
    dry_run: bool = False
    overwrite: bool = False
    verbose: int = 1
    cpu_replicas: int = 0


def class_list(text):
    """Comma-separated class indices (integers >= 0): ``3`` or ``0,1``."""
    try:
        values = tuple(int(v) for v in str(text).replace(" ", "").strip("[]()").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated class indices, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected class indices >= 0, got {text!r}")
    return values


def steps_per_execution(text):
    """``auto`` or a positive integer."""
    return text if text == "auto" else positive_int(text)


def _field(group, flag, *, defaults=_DEFAULTS, help=None, **kwargs):
    """A flag that sets a recipe field: no argparse default (not given: not in the namespace)."""
    dest = flag[2:].replace("-", "_")
    shown = defaults.get(dest, _DEFAULTS.get(dest, SUPPRESS))
    text = help if shown is SUPPRESS else f"{help} (default: {shown})" if help else f"default: {shown}"
    group.add_argument(flag, dest=dest, default=SUPPRESS, help=text, **kwargs)


# --------------------------------------------------------------------------- parent parsers


def optimization_parent(defaults=None) -> argparse.ArgumentParser:
    """The optimization and data flags of train and finetune (``defaults``: the command's own, for the help)."""
    defaults = {**_DEFAULTS, **(defaults or {})}
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("optimization")
    _field(g, "--epochs", type=positive_int, defaults=defaults)
    _field(g, "--batch-size", type=positive_int, defaults=defaults, help="global batch size")
    _field(g, "--lr", type=float, defaults=defaults, help="Adam learning rate")
    _field(g, "--seed", type=int, defaults=defaults)
    _field(g, "--early-stopping", type=int, metavar="PATIENCE", defaults=defaults,
           help="stop after PATIENCE epochs without improvement (0: off)")
    _field(g, "--binarize", choices=("none", "dynamic", "static", "threshold"), defaults=defaults)
    _field(g, "--val-split", type=fraction, defaults=defaults,
           help="fraction of the training images held out for validation")
    return p


def runtime_parent() -> argparse.ArgumentParser:
    """The device, backup and output flags of train and finetune."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("runtime and output")
    _field(g, "--jit-compile", choices=("auto", "on", "off"), help="XLA; auto: on with a GPU, off on CPU")
    _field(g, "--steps-per-execution", type=steps_per_execution,
           help="train steps per tf.function call; auto: 32 on GPU, 16 on CPU")
    _field(g, "--deterministic", choices=("auto", "on", "off"), help="TF op determinism; auto: on without a GPU")
    _field(g, "--backup-every", type=int, metavar="STEPS",
           help="back up every STEPS steps (and every epoch); 0: every epoch only")
    _field(g, "--tensorboard", action=argparse.BooleanOptionalAction, help="TensorBoard logs in the work folder")
    g.add_argument("--out", default=None, help="output folder (save_pretrained layout): empty, new, or this "
                   "command's own (a resume)")
    g.add_argument("--overwrite", action="store_true",
                   help="write into an --out that holds other files (another run's, yours): they may be replaced")
    g.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                   help="Keras fit verbosity (default: 1, 0 with --quiet)")
    return p


# --------------------------------------------------------------------------- keraszoo train


def _variant_flag_groups(parser, attribute, title):
    """One argument group per class declaring ``attribute`` flags, each flag once, with its declarer's help."""
    from keraszoo.models import list_variants

    variants = list_variants()
    declared = {}  # name -> (declaring class, spec)
    for cls in variants.values():
        for klass in reversed(cls.__mro__):
            for name, spec in klass.__dict__.get(attribute, {}).items():
                declared.setdefault(name, (klass, spec))
    takes = {name: [key for key, cls in sorted(variants.items()) if name in getattr(cls, f"all_{attribute}")()]
             for name in declared}
    groups = {}
    for name, (klass, spec) in declared.items():
        if klass not in groups:
            users = sorted({key for n, (k, _) in declared.items() if k is klass for key in takes[n]})
            everyone = len(users) == len(variants)
            groups[klass] = parser.add_argument_group(
                f"{title}: {'every variant' if everyone else klass.__name__}",
                None if everyone else f"variants: {', '.join(users)}")
        groups[klass].add_argument(flag_of(name), dest=name, type=spec.type, choices=spec.choices,
                                   default=SUPPRESS, help=spec.help)


def add_train_arguments(p) -> None:
    """The options of ``keraszoo train`` besides those of :func:`optimization_parent` / :func:`runtime_parent`."""
    from keraszoo.models import list_presets

    g = p.add_argument_group("model")
    _field(g, "--model", help="variant or preset: " + ", ".join(list_presets()))
    g.add_argument("--hparam", action="append", default=SUPPRESS, metavar="NAME=VALUE",
                   help="any other constructor argument (repeatable), e.g. --hparam decoder_std=0.2")
    _variant_flag_groups(p, "hyperparameters", "model flags")
    _variant_flag_groups(p, "training_options", "training options")

    g = p.add_argument_group("data")
    _field(g, "--dataset", help="mnist, fashion_mnist or cifar10")
    _field(g, "--data-source", choices=("auto", "tfds", "npz"),
           help="auto: the .npz archive in --data-dir/$KERASZOO_DATA_DIR if present, else tfds")
    g.add_argument("--data-dir", default=None, help="folder of the .npz archives (or tfds data_dir)")
    _field(g, "--limit", type=positive_int, help="train on the first N images only")
    _field(g, "--classes", type=class_list, metavar="C[,C...]",
           help="train on the images of these classes only (a one-class model, anomaly detection)")
    _field(g, "--drop-remainder", action=argparse.BooleanOptionalAction, help="drop each epoch's last, smaller batch")

    g = p.add_argument_group("runtime")
    _field(g, "--strategy", choices=("default", "mirrored", "multiworker"),
           help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    g.add_argument("--cpu-replicas", type=int, default=0,
                   help="split the CPU into N logical devices (to try --strategy mirrored without GPUs)")
    _field(g, "--mixed-precision", action=argparse.BooleanOptionalAction, help="mixed_float16 compute (GPU only)")

    g = p.add_argument_group("output")
    g.add_argument("--work-dir", default=None, help="backups/checkpoints/TensorBoard (default OUT/train_state)")
    _field(g, "--eval", action=argparse.BooleanOptionalAction,
           help="evaluate on --eval-split at the end (metrics of the saved model)")
    _field(g, "--eval-split", help="a split of --dataset (test, test[:1000], ...) or val (the held-out images)")
    _field(g, "--eval-batch-size", type=positive_int)
    g.add_argument("--recipe", default=None, metavar="NAME",
                   help="rerun the recipe of manifest entry NAME (other flags override it)")
    g.add_argument("--manifest", default=None, help="manifest file for --recipe (default: keraszoo's)")
    g.add_argument("--dry-run", action="store_true", help="print the resolved recipe and exit")


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser of ``keraszoo train``'s options (Python callers; the command uses the ``keraszoo`` parser)."""
    p = argparse.ArgumentParser(prog="keraszoo train", parents=[optimization_parent(), runtime_parent()],
                                description="Train a keraszoo autoencoder and write a save_pretrained folder.")
    add_train_arguments(p)
    return p


# --------------------------------------------------------------------------- namespace -> Recipe


def given_args(namespace) -> dict:
    """The recipe arguments of a parsed command line: the flags given, and nothing else."""
    names = _FIELDS | set(model_flags()) | set(option_flags())
    return {k: v for k, v in vars(namespace).items() if k in names}


def context_of(namespace, *, quiet=False) -> RunContext:
    """The :class:`RunContext` of a parsed ``keraszoo train`` command line."""
    values = vars(namespace)
    context = RunContext(**{f.name: values[f.name] for f in dataclasses.fields(RunContext)
                            if values.get(f.name) is not None})
    context.verbose = values.get("verbose") if values.get("verbose") is not None else (0 if quiet else 1)
    return context


def resolve(namespace, argv, *, quiet=False):
    """``(recipe, context, effective argv)`` of ``argv``, the ``keraszoo train`` command line parsed as ``namespace``.

    With ``--recipe NAME`` the manifest entry's arguments come first and the
    flags given override them (``--hparam`` adds to the recorded ones); the
    effective argv, recorded with the run, is then the recorded recipe's
    command line followed by the flags given.
    """
    given, context, recorded_argv = given_args(namespace), context_of(namespace, quiet=quiet), []
    if context.recipe:
        recorded = read_recipe_args(context.recipe, context.manifest)
        if isinstance(recorded, list):
            recorded_argv = [str(a) for a in recorded]
            base = given_args(build_parser().parse_args(_strip_recipe_flags(recorded_argv)))
        else:
            base = {k: v for k, v in recorded.items() if k not in {f.name for f in dataclasses.fields(RunContext)}}
        hparam = list(base.get("hparam") or []) + list(given.get("hparam") or [])
        given = {**base, **given, "hparam": hparam}
    if given.get("model") is None:
        raise ArgumentValueError("--model is required (or --recipe NAME)")
    if context.out is None and not context.dry_run:
        raise ArgumentValueError("--out is required")
    recipe = Recipe.from_args(given)
    argv = run_argv(argv)
    if not context.recipe:
        return recipe, context, argv
    if not recorded_argv:
        recorded_argv = recipe_argv(Recipe.from_args(base))
    return recipe, context, _strip_recipe_flags(recorded_argv) + _strip_recipe_flags(argv)


def run_argv(argv) -> list:
    """``argv`` as recorded with a run: without ``--overwrite`` (it says where to write, not what to train)."""
    return [str(a) for a in argv if a != "--overwrite"]


def parse_train_argv(argv):
    """``(recipe, context)`` of a ``keraszoo train`` command line (without the command's name)."""
    argv = [str(a) for a in argv]
    recipe, context, _ = resolve(build_parser().parse_args(argv), argv)
    return recipe, context


def read_recipe_args(name: str, manifest_path=None):
    """The ``recipe["args"]`` of manifest entry ``name`` (a dict or an argv list)."""
    from keraszoo.weights import manifest

    entry = manifest.get_entry(name, path=manifest_path)
    recipe = entry.get("recipe") or {}
    args = recipe.get("args")
    if args is None:
        raise UsageError(
            f"The manifest entry {name!r} has no recipe['args'] to rerun (its command was: "
            f"{recipe.get('command', '?')!r})."
        )
    if not isinstance(args, (dict, list)):
        raise UsageError(f"recipe['args'] of {name!r} must be a dict or a list, got {args!r}.")
    return args


def _strip_recipe_flags(argv):
    out, skip = [], False
    for a in argv:
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


# --------------------------------------------------------------------------- Recipe -> argv


def recipe_argv(recipe: Recipe, *, full=False) -> list:
    """The command line of ``recipe``: ``--model`` first, then what differs from the defaults (``full``: every field).

    Plain formatting: a boolean field is ``--flag`` / ``--no-flag``, a list
    comma-separated (``none`` when empty), a model argument without a flag of
    its own ``--hparam NAME=VALUE``.
    """
    import json

    flags = set(model_flags()) | set(option_flags())
    argv = ["--model", recipe.model]
    for name, value in recipe.to_args().items():
        if name in ("model", "hparam") or value is None or (not full and _DEFAULTS.get(name, ...) == value):
            continue
        if name not in _FIELDS and name not in flags:
            argv += ["--hparam", f"{name}={json.dumps(value)}"]
        elif isinstance(value, bool):
            argv.append(flag_of(name) if value else "--no-" + flag_of(name)[2:])
        elif isinstance(value, (list, tuple)):
            argv += [flag_of(name), ",".join(str(v) for v in value) or "none"]
        else:
            argv += [flag_of(name), str(value)]
    for item in recipe.hparam:
        argv += ["--hparam", item]
    return argv
