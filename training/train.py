"""Train any keraszoo variant: ``python training/train.py ...``, the same as ``keraszoo train ...``.

The engine is :mod:`keraszoo.training` (installed with the package); this script
only runs the ``keraszoo train`` command, so a source checkout and an installed
wheel train the same way. ``python training/train.py --help`` lists the options.
"""

import sys

from keraszoo import cli


def main(argv=None) -> int:
    """``keraszoo train ARGV``: its exit status (``argv``: the arguments after ``train``; default ``sys.argv[1:]``)."""
    return cli.main(["train", *(sys.argv[1:] if argv is None else [str(a) for a in argv])])


if __name__ == "__main__":
    sys.exit(main())
