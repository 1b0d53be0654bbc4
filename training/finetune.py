"""Fine-tune a pretrained model: ``python training/finetune.py ...``, the same as ``keraszoo finetune ...``.

The engine is :mod:`keraszoo.training` (installed with the package); this script
only runs the ``keraszoo finetune`` command. ``python training/finetune.py --help``
lists the options.
"""

import sys

from keraszoo import cli


def main(argv=None) -> int:
    """``keraszoo finetune ARGV``: its exit status (``argv``: the arguments after ``finetune``; default ``sys.argv[1:]``)."""
    return cli.main(["finetune", *(sys.argv[1:] if argv is None else [str(a) for a in argv])])


if __name__ == "__main__":
    sys.exit(main())
