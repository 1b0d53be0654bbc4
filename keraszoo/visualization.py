"""Images out: PNG grids, comparisons, strips and latent manifolds.

Everything here works on ``float32`` images in ``[0, 1]``, channels last
(``(N, H, W, C)`` with ``C`` = 1 or 3), the keraszoo models' input contract,
and uses Pillow only (no TensorFlow), so the command line stays light::

    from keraszoo import visualization as vis

    vis.save_grid(model.sample(64), "samples.png")                 # 8x8 tiles, 2px border, x2
    vis.save_comparison(x, model.reconstruct(x), "recon.png")      # originals above reconstructions
    vis.save_strip(model.interpolate(a, b, steps=10), "strip.png")

Grids tile the images with a 2-pixel gray border and scale small images up
with nearest-neighbour (28x28 digits are drawn at 2x) so that they are
readable. Reading images (files, folders, the checks against a model's input)
is :mod:`keraszoo.data.images`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from keraszoo.utils import atomic_path

__all__ = [
    "to_uint8",
    "auto_scale",
    "make_grid",
    "comparison_grid",
    "save_png",
    "save_grid",
    "save_comparison",
    "save_strip",
    "latent_manifold",
]

#: Gray level of the borders between tiles (visible on black and on white images).
BORDER_VALUE = 128


def _as_batch(images, what="images"):
    """Validate ``images`` and return a float32 ``(N, H, W, C)`` array, ``C`` in (1, 3)."""
    if hasattr(images, "numpy") and not isinstance(images, np.ndarray):
        images = images.numpy()
    x = np.asarray(images)
    if x.dtype == object or x.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be a numeric array of images, got dtype {x.dtype}.")
    if x.ndim == 3 and x.shape[-1] not in (1, 3):
        x = x[..., None]  # (N, H, W) grayscale
    if x.ndim != 4:
        raise ValueError(f"{what} must have shape (N, H, W, C) or (N, H, W), got {x.shape}.")
    if x.shape[0] == 0:
        raise ValueError(f"{what} holds no images (shape {x.shape}).")
    if x.shape[-1] not in (1, 3):
        raise ValueError(
            f"{what} must have 1 (grayscale) or 3 (RGB) channels, channels last; got shape {x.shape}."
        )
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contain NaN or infinite values.")
    return x


def to_uint8(images) -> np.ndarray:
    """``(N, H, W, C)`` floats in [0, 1] (or uint8) -> uint8 0..255, values clipped to [0, 1]."""
    x = _as_batch(images)
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def auto_scale(height, width, target=64, limit=8) -> int:
    """Integer up-scaling factor that draws a ``height x width`` tile at about ``target`` pixels.

    28x28 and 32x32 images get 2, 16x16 gets 4, 64x64 and larger 1.
    """
    return int(max(1, min(limit, target // max(int(height), int(width)))))


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _resolve_scale(scale, h, w):
    if scale == "auto" or scale is None:
        return auto_scale(h, w)
    return _check_int("scale", scale, 1)


def make_grid(images, ncols=None, *, border=2, scale="auto", border_value=BORDER_VALUE) -> np.ndarray:
    """Tile images into one uint8 picture.

    Args:
        images: ``(N, H, W, C)`` (or ``(N, H, W)``) floats in [0, 1] or uint8.
        ncols: tiles per row (default: ``ceil(sqrt(N))``, a square-ish grid).
        border: border width in pixels, between tiles and around the grid.
        scale: integer nearest-neighbour up-scaling of every tile, or ``"auto"``
            (see :func:`auto_scale`: 2x for 28x28 digits).
        border_value: gray level (0..255) of the borders and of empty tiles.

    Returns:
        ``(height, width)`` uint8 for grayscale images, ``(height, width, 3)`` for RGB.
    """
    x = to_uint8(images)
    n, h, w, c = x.shape
    ncols = math.ceil(math.sqrt(n)) if ncols is None else _check_int("ncols", ncols, 1)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    border = _check_int("border", border, 0)
    factor = _resolve_scale(scale, h, w)
    if factor > 1:
        x = np.repeat(np.repeat(x, factor, axis=1), factor, axis=2)
        h, w = h * factor, w * factor
    height = nrows * h + (nrows + 1) * border
    width = ncols * w + (ncols + 1) * border
    grid = np.full((height, width, c), int(border_value), dtype=np.uint8)
    for index in range(n):
        row, col = divmod(index, ncols)
        top = border + row * (h + border)
        left = border + col * (w + border)
        grid[top:top + h, left:left + w] = x[index]
    return grid[..., 0] if c == 1 else grid


def comparison_grid(top, bottom, ncols=None, **kwargs) -> np.ndarray:
    """Pairs of rows: a row of ``top`` images above the matching row of ``bottom`` images.

    ``top`` and ``bottom`` must have the same shape (e.g. originals and their
    reconstructions). With ``ncols`` smaller than N, the pairs continue below.
    """
    a, b = _as_batch(top, "top images"), _as_batch(bottom, "bottom images")
    if a.shape != b.shape:
        raise ValueError(f"top and bottom images must have the same shape, got {a.shape} and {b.shape}.")
    n = a.shape[0]
    ncols = n if ncols is None else min(_check_int("ncols", ncols, 1), n)
    nrows = math.ceil(n / ncols)
    blank = np.full((1,) + a.shape[1:], BORDER_VALUE / 255.0, dtype=np.float32)
    tiles = []
    for row in range(nrows):
        for source in (a, b):
            chunk = list(source[row * ncols:(row + 1) * ncols])
            chunk += [blank[0]] * (ncols - len(chunk))
            tiles.extend(chunk)
    return make_grid(np.stack(tiles), ncols, **kwargs)


def save_png(picture, path) -> Path:
    """Write a uint8 ``(H, W)`` / ``(H, W, 1)`` / ``(H, W, 3)`` array as a PNG; parent folders are created."""
    from PIL import Image

    array = np.asarray(picture)
    if array.dtype != np.uint8:
        raise ValueError(f"save_png expects a uint8 picture, got dtype {array.dtype}; see make_grid().")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        raise ValueError(f"save_png expects (H, W) or (H, W, 3), got shape {array.shape}.")
    path = Path(path)
    with atomic_path(path, mode=0o644) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", optimize=True)
    return path


def save_grid(images, path, ncols=None, **kwargs) -> Path:
    """:func:`make_grid` written to ``path`` as a PNG."""
    return save_png(make_grid(images, ncols, **kwargs), path)


def save_comparison(top, bottom, path, ncols=None, **kwargs) -> Path:
    """:func:`comparison_grid` written to ``path`` as a PNG."""
    return save_png(comparison_grid(top, bottom, ncols, **kwargs), path)


def save_strip(images, path, **kwargs) -> Path:
    """All images in one row (e.g. an interpolation), written to ``path`` as a PNG.

    ``(B, steps, H, W, C)`` (several interpolations) gives one row per interpolation.
    """
    x = np.asarray(images.numpy() if hasattr(images, "numpy") and not isinstance(images, np.ndarray) else images)
    if x.ndim == 5:
        return save_png(make_grid(x.reshape((-1,) + x.shape[2:]), x.shape[1], **kwargs), path)
    x = _as_batch(x)
    return save_png(make_grid(x, x.shape[0], **kwargs), path)


def latent_manifold(model, n=20, *, low=0.05, high=0.95):
    """Decoder outputs on an ``n x n`` grid of a 2-D latent space (Kingma & Welling, 2014, fig. 4).

    The grid points are the standard normal's quantiles ``low ... high`` on both
    axes, so the grid covers the prior's mass evenly. The first row is the top
    of the picture (the largest ``z_2``), the first column the smallest ``z_1``.

    Returns:
        ``(n * n, H, W, C)`` images in [0, 1], ready for :func:`save_grid` with ``ncols=n``.
    """
    from statistics import NormalDist

    if model.latent_dim != 2:
        raise ValueError(f"latent_manifold needs a model with latent_dim 2; this one has {model.latent_dim}.")
    _check_int("n", n, 2)
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"need 0 < low < high < 1 (quantiles); got low={low}, high={high}.")
    ticks = np.array([NormalDist().inv_cdf(q) for q in np.linspace(low, high, n)], dtype="float32")
    z1, z2 = np.meshgrid(ticks, ticks[::-1])
    z = np.stack([z1.ravel(), z2.ravel()], axis=1)
    out = model.decode(z)
    return np.asarray(out.numpy() if hasattr(out, "numpy") else out)
