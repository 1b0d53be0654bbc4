"""NumPy helpers for measuring models batch by batch (used by evaluation hooks and ``keraszoo.evaluation``)."""

import numpy as np


def to_numpy(tensor) -> np.ndarray:
    """A backend tensor (or anything array-like) as a NumPy array."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(tensor))


def batches(x, batch_size):
    """Consecutive slices of ``x`` of at most ``batch_size`` items."""
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]


def map_batches(fn, x, batch_size):
    """``fn`` applied to ``x`` batch by batch, the results concatenated as NumPy."""
    return np.concatenate([to_numpy(fn(xb)) for xb in batches(x, batch_size)], axis=0)


def psnr(clean, other):
    """Mean over images of ``10 log10(1 / MSE)`` for images in [0, 1]."""
    mse = ((np.asarray(clean, "float64") - np.asarray(other, "float64")) ** 2).reshape(len(clean), -1).mean(1)
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))
