"""Small helpers shared by every layer of keraszoo: atomic file writes, positive-integer
checks and number formatting.

Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, *, mode=None):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary file lives in the same folder (so ``os.replace`` is atomic) and
    is removed if the block raises, so a reader never sees a half-written file
    and a failed write leaves nothing behind. A symlink at ``path`` is written
    through (its target is replaced), so packaged symlinks survive. ``mode``
    sets the permission bits of the result (``mkstemp`` creates ``0600``).
    """
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path, text: str, *, mode=0o644) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``.

    A failed write (a full disk, no permission) raises an ``OSError`` whose ``filename`` is ``path``, so the
    message names the file that was not written; ``path`` keeps its earlier content.
    """
    try:
        with atomic_path(path, mode=mode) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as err:
        if err.filename is not None and Path(err.filename) == Path(path):
            raise
        raise type(err)(err.errno, err.strerror or str(err), str(path)) from err
    return Path(path)


def check_positive_int(name, value) -> int:
    """``value`` as an ``int`` if it is an integer >= 1 (NumPy integers too), else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
    return int(value)


def format_number(value) -> str:
    """One way to print a metric everywhere (tables, model cards, the CLI).

    Integers and booleans as they are; floats with 4 decimals, 1 decimal from
    1000 on, and in scientific notation below 1e-3 (so small values keep their
    digits); ``nan``/``inf`` spelled out. Anything else through ``str``.
    """
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:.1f}"
        if 0 < magnitude < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)
