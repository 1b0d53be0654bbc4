"""``python -m keraszoo``: the ``keraszoo`` command line (see :mod:`keraszoo.cli`)."""

import sys

from keraszoo.cli import main

if __name__ == "__main__":
    sys.exit(main())
