"""``keraszoo train`` and ``keraszoo finetune``: forwarded to keraszoo.training.train / .finetune.

These commands are dispatched before the ``keraszoo`` parser runs (their
options are those of the training modules); the sub-parsers registered here
only list them in ``keraszoo --help``.
"""

from __future__ import annotations

import argparse
import importlib

from keraszoo.cli._shared import PROG
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import examples

FORWARDED = ("train", "finetune")

_HELP = {
    "train": "train a model (keraszoo.training.train; 'keraszoo train --help' for its options)",
    "finetune": "fine-tune a pretrained model on your images (keraszoo.training.finetune)",
}

_EXAMPLES = {
    "train": examples(
        "keraszoo train --model vae --dataset mnist --epochs 30 --out runs/vae_mnist",
        "keraszoo train --model conv_ae --dataset cifar10 --data-source npz --data-dir /data --out runs/ae",
        "keraszoo train --recipe vae_mnist --out runs/vae_mnist_again    # rerun a zoo model's recipe",
    ),
    "finetune": examples(
        "keraszoo finetune vae_mnist --data my_digits/ --epochs 5 --out runs/my_vae",
        "keraszoo finetune runs/vae_mnist --data images.npy --freeze-encoder --lr 1e-4 --out runs/ft",
    ),
}


def register(subparsers, common_parent):
    for name in FORWARDED:
        p = add_command(subparsers, common_parent, name, _HELP[name], _EXAMPLES[name], add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER)


def forward(command, rest, quiet):
    """Run ``keraszoo.training.<command>.main(rest)``; ``--help`` shows its options under ``keraszoo <command>``."""
    module = importlib.import_module(f"keraszoo.training.{command}")
    if any(arg in ("-h", "--help") for arg in rest):
        parser = module.build_parser()
        parser.prog = f"{PROG} {command}"
        parser.epilog = (_EXAMPLES[command] + f"\n\nThe options are those of keraszoo.training.{command}, "
                         "to which this command forwards its arguments.")
        if not issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter):
            parser.formatter_class = type("Formatter", (argparse.RawDescriptionHelpFormatter,
                                                        parser.formatter_class), {})
        parser.print_help()
        return 0
    rest = list(rest)
    if quiet and not any(arg == "--verbose" or arg.startswith("--verbose=") for arg in rest):
        rest += ["--verbose", "0"]
    return int(module.main(rest) or 0)
