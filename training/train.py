"""Train any keraszoo variant: ``python training/train.py ...``, the same as ``keraszoo train ...``.

The engine is :mod:`keraszoo.training` (installed with the package); this script
only runs it, so a source checkout and an installed wheel train the same way.
``python training/train.py --help`` lists the options.
"""

import sys

from keraszoo.training.train import main

if __name__ == "__main__":
    sys.exit(main())
