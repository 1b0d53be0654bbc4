"""The command line of ``keraszoo train`` (and ``training/train.py``), parsed into a :class:`Recipe`.

The model flags are not listed here: they come from the registered variant
classes' ``hyperparameters`` and ``training_options`` tables, so a new variant's
flags appear on the command line the moment it is imported.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from keraszoo.argtypes import flag_of
from keraszoo.argtypes import fraction
from keraszoo.argtypes import positive_int
from keraszoo.training.recipe import Recipe
from keraszoo.training.recipe import UsageError
from keraszoo.training.recipe import model_flags
from keraszoo.training.recipe import option_flags
from keraszoo.training.recipe import read_recipe_args

PROG = "keraszoo train"


@dataclasses.dataclass
class RunContext:
    """Where a run reads and writes, and how it talks: not part of the recipe."""

    out: str | None = None
    work_dir: str | None = None
    data_dir: str | None = None
    recipe: str | None = None
    manifest: str | None = None
    dry_run: bool = False
    verbose: int = 1
    cpu_replicas: int = 0


_CONTEXT_FIELDS = frozenset(f.name for f in dataclasses.fields(RunContext))


def steps_per_execution(text):
    """``auto`` or a positive integer."""
    return text if text == "auto" else positive_int(text)


def _add_flags(group, table):
    for name, spec in table.items():
        group.add_argument(flag_of(name), dest=name, type=spec.type, choices=spec.choices,
                           default=None, help=spec.help)


def add_device_flags(group):
    """``--jit-compile``, ``--steps-per-execution``, ``--deterministic``: shared by train and finetune."""
    group.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                       help="XLA; auto: on with a GPU, off on CPU (XLA is slower there)")
    group.add_argument("--steps-per-execution", type=steps_per_execution, default="auto",
                       help="train steps per tf.function call; auto: 32 on GPU, 16 on CPU")
    group.add_argument("--deterministic", choices=("auto", "on", "off"), default="auto",
                       help="TF op determinism; auto: on without a GPU")


def build_parser() -> argparse.ArgumentParser:
    """The training command line."""
    from keraszoo.models import list_presets

    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train a keraszoo autoencoder and write a save_pretrained folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, help="variant or preset: " + ", ".join(list_presets()))
    _add_flags(g, model_flags())
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
    _add_flags(g, option_flags())
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
    add_device_flags(g)

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


def _actions(parser):
    return {a.dest: a for a in parser._actions if a.dest != "help"}


def args_to_argv(args: dict, parser=None) -> list:
    """Turn a recipe's flat ``to_args()`` dict back into a command line."""
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


def recipe_to_argv(recipe: Recipe) -> list:
    """The shortest command line that reproduces ``recipe``: ``--model`` first, then what differs from the defaults."""
    args, defaults = recipe.to_args(), Recipe(model=recipe.model).to_args()
    changed = {k: v for k, v in args.items() if k != "model" and v != defaults[k]}
    return args_to_argv({"model": recipe.model, **changed})


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


def _split(namespace):
    values = vars(namespace)
    context = RunContext(**{k: v for k, v in values.items() if k in _CONTEXT_FIELDS})
    return Recipe.from_args({k: v for k, v in values.items() if k not in _CONTEXT_FIELDS}), context


def resolve_args(argv=None):
    """Parse ``argv``; with ``--recipe NAME`` the recipe's arguments come first.

    Returns ``(recipe, context, effective_argv)``: flags given on the command
    line override the recipe's; ``effective_argv`` reproduces the run.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    first = parser.parse_args(argv)
    effective = argv
    if first.recipe:
        recorded = read_recipe_args(first.recipe, first.manifest)
        if isinstance(recorded, dict):
            recipe_argv = args_to_argv({k: v for k, v in recorded.items() if k not in _CONTEXT_FIELDS}, parser)
        else:
            recipe_argv = _strip_recipe_flags([str(a) for a in recorded])
        effective = recipe_argv + _strip_recipe_flags(argv)
        args = parser.parse_args(effective + (["--manifest", first.manifest] if first.manifest else []))
        args.recipe = first.recipe
    else:
        args = first
    if args.model is None:
        parser.error("--model is required (or --recipe NAME)")
    if args.out is None and not args.dry_run:
        parser.error("--out is required")
    recipe, context = _split(args)
    return recipe, context, effective
