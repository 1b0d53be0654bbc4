"""The input rules: expected image shapes, ``color_mode``, and the one channel conversion.

Used by :mod:`keraszoo.data.images` for files and arrays and by
:func:`keraszoo.data.from_directory` for folders: lossless channel changes
happen silently (grayscale to RGB, RGB whose three channels are equal to
grayscale, a fully opaque alpha channel dropped); lossy ones (color to
grayscale, dropping transparency) only with ``color_mode``.
"""

from __future__ import annotations

import numpy as np

#: ``color_mode`` values and their channel counts.
COLOR_MODES = {"grayscale": 1, "rgb": 3}

# ITU-R BT.601 luma, as PIL's convert("L") and tf.image.rgb_to_grayscale.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _describe_channels(c):
    return {1: "grayscale", 3: "RGB"}.get(c, f"{c}-channel")


def _mode_for(channels):
    return "rgb" if channels == 3 else "grayscale"


def shape_text(shape) -> str:
    """``(28, 28, 1)``, or ``(28, 28)`` when the channel count is open."""
    return str(tuple(d for d in shape if d is not None))


def normalize_shape(image_shape, color_mode=None, *, name="image_shape"):
    """``image_shape`` as ``(height, width, channels or None)``, checked against ``color_mode``.

    Accepts ``None``, an int (square), ``(height, width)`` or
    ``(height, width, 1 or 3)`` such as ``model.image_shape``.
    """
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be 'grayscale', 'rgb' or None, got {color_mode!r}.")
    if image_shape is None:
        return None
    if isinstance(image_shape, (int, np.integer)):
        image_shape = (image_shape, image_shape)
    shape = tuple(int(d) for d in image_shape)
    if len(shape) == 2:
        shape = (*shape, None)
    if len(shape) != 3 or min(shape[:2]) < 1 or shape[2] not in (None, 1, 3):
        raise ValueError(f"{name} must be (height, width) or (height, width, 1 or 3), got {image_shape!r}.")
    if color_mode is not None and shape[2] is not None and COLOR_MODES[color_mode] != shape[2]:
        raise ValueError(
            f"color_mode={color_mode!r} contradicts the expected {_describe_channels(shape[2])} "
            f"images (image shape {shape_text(shape)})."
        )
    return shape


def wanted_channels(shape, color_mode):
    """The channel count images are converted to: ``color_mode``'s, the shape's, or ``None``."""
    if color_mode is not None:
        return COLOR_MODES[color_mode]
    return shape[2] if shape is not None else None


def _is_opaque(alpha) -> bool:
    return bool(np.all(alpha >= (255 if alpha.dtype == np.uint8 else 1.0)))


def _looks_gray(x) -> bool:
    if x.dtype == np.uint8:
        return bool(np.all(x == x[..., :1]))
    return bool(np.max(np.abs(x - x[..., :1])) <= 0.5 / 255.0)


def _to_gray(x):
    y = x.astype(np.float32) @ _LUMA
    if x.dtype == np.uint8:
        return np.clip(np.round(y), 0, 255).astype(np.uint8)[..., None]
    return np.clip(y, 0.0, 1.0)[..., None]


def convert_channels(x, want, color_mode=None, *, subject="the image", shape=None):
    """Apply the channel rules to ``x`` (``(..., C)``, uint8 or float in [0, 1]).

    Args:
        want: the channel count to reach (1 or 3), or ``None`` to keep it
            (only an alpha channel goes).
        color_mode: given, lossy conversions are allowed.
        subject: how messages name ``x`` (a path, ``"x"``).
        shape: the expected image shape, for the messages.

    Raises:
        ValueError: a lossy conversion without ``color_mode``.
    """
    c = x.shape[-1]
    if c in (2, 4):
        if color_mode is None and not _is_opaque(x[..., -1]):
            mode = _mode_for(want or c - 1)
            raise ValueError(
                f"{subject} has transparent pixels (an alpha channel); keraszoo models take opaque "
                f"{_describe_channels(want or c - 1)} images. Pass color_mode (--color-mode "
                f"{mode}) to drop the alpha channel."
            )
        x, c = x[..., :-1], c - 1
    if want is None or c == want:
        return x
    if c == 1 and want == 3:
        return np.repeat(x, 3, axis=-1)
    if c == 3 and want == 1:
        if color_mode is None and not _looks_gray(x):
            raise ValueError(
                f"{subject} has 3 channel(s), expected 1: a color (RGB) image where the model "
                f"expects grayscale (image shape {shape_text(shape)}). Pass color_mode='grayscale' "
                "(--color-mode grayscale) to convert it."
            )
        return _to_gray(x)
    raise ValueError(f"Cannot convert {c}-channel images to {want} channels.")
