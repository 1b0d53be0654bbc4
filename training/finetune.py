"""Fine-tune a pretrained model: ``python training/finetune.py ...``, the same as ``keraszoo finetune ...``.

The engine is :mod:`keraszoo.training.finetune` (installed with the package).
``python training/finetune.py --help`` lists the options.
"""

import sys

from keraszoo.training.finetune import main

if __name__ == "__main__":
    sys.exit(main())
