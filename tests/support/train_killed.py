"""``python tests/support/train_killed.py SPEC ARGS...``: ``keraszoo ARGS...`` with a run ended at ``SPEC``.

``SPEC`` is ``STEP[@PHASE][:raise]`` (:func:`tests.support.faults.kill_hook`):
the training run is SIGKILLed after global step ``STEP``, or in the middle of
that step's backup. The fault is arranged here, on the test side; keraszoo
runs unchanged.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from keraszoo.cli import main  # noqa: E402
from tests.support.faults import injected  # noqa: E402

if __name__ == "__main__":
    spec, argv = sys.argv[1], sys.argv[2:]
    with injected(spec):
        sys.exit(main(argv))
