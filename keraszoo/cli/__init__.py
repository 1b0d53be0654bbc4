"""The ``keraszoo`` command line (also ``python -m keraszoo``).

Commands::

    keraszoo list [PATTERN] [--json]            published pretrained models (no TensorFlow import)
    keraszoo info NAME [--json]                 one model's card: architecture, data, recipe, metrics
    keraszoo demo [--model vae_mnist]           reconstructions, samples, interpolations of the sample digits
    keraszoo reconstruct NAME IMAGES... -o grid.png
    keraszoo encode NAME INPUT -o codes.npy     INPUT: image folder, image, .npy or .npz
    keraszoo decode NAME codes.npy -o grid.png
    keraszoo sample NAME -n 64 -o grid.png [--seed S]
    keraszoo interpolate NAME A.png B.png --steps 10 -o strip.png
    keraszoo export NAME -o PATH [--format F]   for serving: SavedModel (tf_saved_model), litert, onnx
    keraszoo evaluate NAME [--data mnist]       the zoo's metrics (keraszoo.evaluate)
    keraszoo train ...                          train a model (keraszoo.training)
    keraszoo finetune NAME --data DIR --out DIR a training run from NAME's weights, on your images
    keraszoo anomaly fit --data DIR --out DET   an anomaly detector trained or calibrated on normal images
    keraszoo anomaly score DET IMAGES -o F.csv  score images with it: a CSV, the extremes, a histogram
    keraszoo experiment STUDY --out DIR         a sweep of runs, one results.jsonl line each (keraszoo.experiments)
    keraszoo report DIR -o OUT                  the Markdown report of a sweep: figures, tables, L_total consistency check
    keraszoo push DIR ORG/REPO                  upload a save_pretrained folder to the Hub
    keraszoo manifest list|info|check|add|metrics   the weights manifest (maintainers)

``NAME`` is anything :func:`keraszoo.load` accepts: a manifest name
(``vae_mnist``), ``hf://org/repo[@revision]`` or a folder written by
:func:`keraszoo.save_pretrained`.

Each command group lives in its own module (``catalog``, ``inference``,
``demo``, ``evaluate``, ``training``, ``anomaly``, ``hub``, ``manifest``), whose
``register(subparsers, common_parent)`` adds its sub-parsers next to their
handlers. ``train`` and ``finetune`` get their (many) options only when the
command line runs one of them.

Exit status: 0 success, 2 bad command line (``keraszoo COMMAND: error: ...``),
1 any other error (reported on one line, ``keraszoo: error: ...``; ``--debug``
shows the traceback), 130 when interrupted. TensorFlow is imported only by the
commands that run a model.
"""

from __future__ import annotations

import argparse
import sys

from keraszoo.cli import anomaly
from keraszoo.cli import catalog
from keraszoo.cli import demo
from keraszoo.cli import evaluate
from keraszoo.cli import experiment
from keraszoo.cli import export
from keraszoo.cli import hub
from keraszoo.cli import inference
from keraszoo.cli import manifest
from keraszoo.cli import report
from keraszoo.cli import training
from keraszoo.cli._quiet import quiet_tensorflow
from keraszoo.cli._shared import GLOBAL_FLAGS
from keraszoo.cli._shared import PROG
from keraszoo.cli._shared import CommandError
from keraszoo.cli._shared import Formatter
from keraszoo.cli._shared import UsageError
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import exit_status

__all__ = ["main", "build_parser", "CommandError", "UsageError"]

#: The command groups, in the order ``keraszoo --help`` lists their commands.
GROUPS = (catalog, demo, inference, export, evaluate, training, anomaly, experiment, hub, manifest, report)


def _common_parent(top):
    """--debug / --quiet, accepted before and after the command."""
    parent = argparse.ArgumentParser(add_help=False)
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parent.add_argument("--debug", action="store_true", default=default(False),
                        help="show Python tracebacks and TensorFlow logs")
    parent.add_argument("-q", "--quiet", action="store_true", default=default(False),
                        help="print only results and errors (no progress)")
    return parent


def build_parser(command=None) -> argparse.ArgumentParser:
    """The ``keraszoo`` argument parser; ``command``: the one the command line runs (``""``: none), whose options
    are all added (``None``: every command's)."""
    from keraszoo.version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="keraszoo: pretrained Keras autoencoders from the command line.",
        epilog=examples(
            "keraszoo demo                        # try the pretrained vae_mnist on bundled digits",
            "keraszoo list",
            "keraszoo reconstruct vae_mnist digit.png -o recon.png",
            "keraszoo <command> --help            # the options of one command",
        ),
        formatter_class=Formatter,
        parents=[_common_parent(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"keraszoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_parent(top=False)
    for group in GROUPS:
        if group is training:
            training.register(subparsers, common, command)
        else:
            group.register(subparsers, common)
    return parser


def _command_of(argv) -> str:
    """The command ``argv`` runs (``""``: none, e.g. ``--help``)."""
    rest = [a for a in argv if a not in GLOBAL_FLAGS]
    return rest[0] if rest and not rest[0].startswith("-") else ""


def _one_line(err) -> str:
    """An exception as a single line of text."""
    text = " ".join(part.strip() for part in str(err).splitlines() if part.strip())
    if isinstance(err, (CommandError, ValueError, OSError, KeyError, NotImplementedError)):
        return text or type(err).__name__
    name = type(err).__name__
    return f"{name}: {text} (run with --debug for the traceback)" if text else name


def _run(name, command, debug):
    """``command()``'s exit status; an interruption or error of command ``name`` is reported on one line."""
    try:
        return int(command() or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the command line reports every error on one line
        if exit_status(err) == 2:  # a bad command line (keraszoo.cli.UsageError, ...)
            print(f"{PROG} {name}: error: {_one_line(err)}", file=sys.stderr)
            return 2
        if debug:
            import traceback

            traceback.print_exc()
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 success, 1 error, 2 usage error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--debug" not in argv:
        quiet_tensorflow()
    try:
        args = build_parser(_command_of(argv)).parse_args(argv)
    except SystemExit as exit_:  # --help / --version (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    args.argv = argv
    return _run(args.command, lambda: args.func(args), args.debug)
