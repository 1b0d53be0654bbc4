"""``python -m keraszoo.weights COMMAND ...``: the same as ``keraszoo manifest COMMAND ...``."""

import sys

from keraszoo.cli import main as _cli_main


def main(argv=None) -> int:
    """Run ``keraszoo manifest ARGV``; returns the exit status."""
    return _cli_main(["manifest", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
