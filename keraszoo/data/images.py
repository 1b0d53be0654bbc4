"""Images in: image files and arrays checked against a model's input, with one set of rules.

Everything here returns ``float32`` images in ``[0, 1]``, channels last, and
uses NumPy and Pillow only (no TensorFlow), so the command line stays light::

    from keraszoo.data import images

    x = images.load_image("digit.png", model.image_shape)            # (28, 28, 1) float32
    x = images.load_image("photo.png", (28, 28, 1), resize=True, color_mode="grayscale")
    x, files = images.load_images(["digits/"], model.image_shape)   # a folder, sorted
    x = images.prepare_images(x_uint8, model.image_shape)          # an array

The rules (:mod:`keraszoo.data.rules`), the same for files, folders
(:func:`keraszoo.data.from_directory`) and arrays:

* size: an image of another size is refused (the message gives the expected
  size) unless ``resize=True`` (bilinear, antialiased when shrinking);
* channels: lossless changes happen silently (grayscale to RGB, RGB whose
  three channels are equal to grayscale, a fully opaque alpha channel
  dropped); lossy ones (color to grayscale, dropping transparency) only with
  ``color_mode="grayscale"`` / ``"rgb"``, and are refused otherwise with a
  message that names ``color_mode``;
* with no expected channel count and no ``color_mode``, images read together
  must agree on their channel count.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from keraszoo.data.rules import COLOR_MODES
from keraszoo.data.rules import convert_channels
from keraszoo.data.rules import normalize_shape
from keraszoo.data.rules import shape_text
from keraszoo.data.rules import wanted_channels

__all__ = [
    "COLOR_MODES",
    "IMAGE_EXTENSIONS",
    "convert_channels",
    "list_images",
    "load_image",
    "load_images",
    "normalize_shape",
    "prepare_images",
    "read_image",
    "resize_image",
    "scan_image",
]

#: File name endings read as images (PNG is the documented format; Pillow reads the others).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


# --------------------------------------------------------------------------- files


def list_images(folder, *, follow_links=False) -> list:
    """Image files under ``folder`` (recursively, sorted, hidden files and folders skipped)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValueError(f"Image folder {str(root)!r} does not exist or is not a directory.")
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_links):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                files.append(Path(dirpath) / name)
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {str(root)!r}.")
    return files


def _pil_to_float(img, path):
    """A Pillow image as float32 ``(H, W, C)`` in [0, 1]; ``C`` in 1..4 (alpha kept)."""
    mode = img.mode
    if mode == "1":
        img, mode = img.convert("L"), "L"
    elif mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if transparent else "RGB")
        mode = img.mode
    elif mode not in ("L", "LA", "RGB", "RGBA", "F", "I") and not mode.startswith("I;16"):
        img, mode = img.convert("RGB"), "RGB"  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    array = np.asarray(img)
    if mode.startswith("I;16") or mode == "I":
        x = array.astype(np.float32) / np.float32(65535.0)  # 16-bit PNG
    elif mode == "F":
        x = array.astype(np.float32)
        if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(f"{path} holds floating-point pixels outside [0, 1].")
    else:
        x = array.astype(np.float32) / np.float32(255.0)
    if x.ndim == 2:
        x = x[..., None]
    return np.clip(x, 0.0, 1.0)


def _too_large(path, err):
    """The message for an image beyond Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``)."""
    from PIL import Image

    found = re.search(r"\((\d+) pixels\)", str(err))
    size = f"{int(found[1]):,} pixels" if found else str(err)
    return (f"Image {str(path)!r} is too large to read safely: {size}, more than Pillow's limit of "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels (PIL.Image.MAX_IMAGE_PIXELS, against decompression bombs). "
            "Shrink the image, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file.")


def _open(path, read):
    """``read(img, path)`` of the Pillow image at ``path``; any file Pillow cannot read is one ``ValueError``."""
    from PIL import Image
    from PIL import UnidentifiedImageError

    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"Image {str(path)!r} is a directory, not an image file.")
    if not path.is_file():
        raise ValueError(f"Image {str(path)!r} does not exist or is not a file.")
    try:
        with warnings.catch_warnings():
            # Beyond MAX_IMAGE_PIXELS Pillow only warns (an error from twice that): both are refused.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return read(img, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(_too_large(path, err)) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:  # truncated, corrupt, unsupported
        raise ValueError(f"Cannot read image {str(path)!r}: {err}") from None


def read_image(path) -> np.ndarray:
    """The pixels of one image file as float32 ``(H, W, C)`` in [0, 1], as stored (alpha kept)."""

    def read(img, path):
        img.load()
        return _pil_to_float(img, path)

    return _open(path, read)


def scan_image(path) -> tuple:
    """``(height, width, channels)`` of an image file (alpha counted), its pixels decoded in full.

    The up-front scan of a folder (:func:`keraszoo.data.from_directory`): a truncated or corrupt file, or one
    beyond Pillow's decompression-bomb limit, is refused here with its name, not in the middle of training.
    """

    def read(img, path):
        img.load()
        mode = img.mode
        if mode in ("1", "L", "F", "I") or mode.startswith("I;16"):
            channels = 1
        elif mode == "LA":
            channels = 2
        elif mode == "P":
            channels = 4 if "transparency" in img.info else 3
        elif mode in ("RGBA", "RGBa", "PA"):
            channels = 4
        else:
            channels = 3  # RGB, YCbCr, CMYK, LAB, HSV: read as 3 channels
        return img.height, img.width, channels

    return _open(path, read)


def resize_image(x, height, width) -> np.ndarray:
    """Bilinear resize of a float ``(H, W, C)`` image in [0, 1] (antialiased when shrinking)."""
    from PIL import Image

    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(x[..., i], dtype=np.float32)).resize(
            (width, height), Image.Resampling.BILINEAR))
        for i in range(x.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def load_image(path, image_shape=None, *, resize=False, color_mode=None) -> np.ndarray:
    """Read one image file as float32 ``(H, W, C)`` in [0, 1], checked against ``image_shape``.

    Args:
        path: a PNG (or another format Pillow reads: JPEG, BMP, GIF). 8- and
            16-bit, grayscale, RGB, palette and alpha images are understood.
        image_shape: the expected ``(height, width, channels)`` (``model.image_shape``)
            or ``(height, width)``; ``None`` returns the image as it is
            (grayscale or RGB).
        resize: resize an image of another size (bilinear) instead of refusing it.
        color_mode: ``"grayscale"`` or ``"rgb"``: convert to that channel count
            (color to gray by luma, alpha dropped). Without it only lossless
            changes are made (see the module's rules) and others are refused.

    Raises:
        ValueError: unreadable file, or a size/channel mismatch not allowed by
            ``resize``/``color_mode`` (the message gives the expected shape).
    """
    shape = normalize_shape(image_shape, color_mode)
    x = read_image(path)
    path = Path(path).expanduser()
    x = convert_channels(x, wanted_channels(shape, color_mode), color_mode, subject=path, shape=shape)
    if shape is not None and x.shape[:2] != shape[:2]:
        if not resize:
            raise ValueError(
                f"{path} is {x.shape[0]}x{x.shape[1]} pixels; the model expects {shape[0]}x{shape[1]} "
                f"(image shape {shape_text(shape)}). Pass resize=True (--resize) to resize it."
            )
        x = resize_image(x, shape[0], shape[1])
    return x.astype(np.float32, copy=False)


def load_images(paths, image_shape=None, *, resize=False, color_mode=None) -> tuple:
    """Read several image files (folders are expanded, see :func:`list_images`).

    Returns:
        ``(x, files)``: float32 ``(N, H, W, C)`` in [0, 1] and the list of file paths, in order.

    Raises:
        ValueError: as :func:`load_image`; images of different sizes without ``image_shape``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for p in paths:
        p = Path(p).expanduser()
        files.extend(list_images(p) if p.is_dir() else [p])
    if not files:
        raise ValueError("No images given.")
    images = [load_image(f, image_shape, resize=resize, color_mode=color_mode) for f in files]
    shapes = sorted({im.shape for im in images})
    if len(shapes) > 1:
        raise ValueError(
            f"The images have different shapes {shapes}; pass image_shape (and resize=True) to bring "
            "them to one size."
        )
    return np.stack(images), files


# --------------------------------------------------------------------------- arrays


#: Values per slice of :func:`value_range` (1 MiB of float32: both reductions read it from cache).
RANGE_SLICE_VALUES = 1 << 18


def value_range(x) -> tuple:
    """``(min, max)`` of a float array, NaN if it holds a NaN, slice by slice.

    NumPy's min/max propagate NaN, so one pass each finds NaN, Inf and the range
    without a boolean mask the size of ``x`` (150 MB for CIFAR-10's training set).
    """
    step = max(1, RANGE_SLICE_VALUES // max(1, int(np.prod(x.shape[1:], dtype=np.int64))))
    lo, hi = math.inf, -math.inf
    for start in range(0, len(x), step):
        part = x[start:start + step]
        part_lo, part_hi = float(part.min()), float(part.max())
        if math.isnan(part_lo) or math.isnan(part_hi):
            return math.nan, math.nan
        lo, hi = min(lo, part_lo), max(hi, part_hi)
    return lo, hi


def as_image_array(x, what="x"):
    """Validate ``x`` and return (array NHWC, is_uint8_scale)."""
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind not in "biuf":
        raise ValueError(
            f"{what} must be a numeric image array (uint8 0..255 or float in [0, 1]), "
            f"got dtype {x.dtype}."
        )
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(
            f"{what} must have shape (N, H, W) or (N, H, W, C) (channels last), got {x.shape}."
        )
    if x.shape[0] == 0:
        raise ValueError(f"{what} holds no images (shape {x.shape}).")
    if x.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            f"{what} has {x.shape[-1]} channels (shape {x.shape}); expected channels last with "
            "1 (grayscale), 3 (RGB) or 4 (RGBA). Channels-first data must be transposed "
            "with x.transpose(0, 2, 3, 1)."
        )
    if x.dtype.kind == "b":
        return x.astype(np.float32), False
    if x.dtype.kind in "iu":
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f"Integer {what} must hold 8-bit pixel values 0..255, found {lo}..{hi}."
            )
        return x.astype(np.uint8, copy=False), True
    lo, hi = value_range(x)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{what} contains NaN or infinite values.")
    if lo < 0.0 or hi > 1.0:
        hint = (
            " It looks like 0..255 values in a float array: divide by 255 or cast to uint8."
            if hi <= 255.0 and lo >= 0.0
            else ""
        )
        raise ValueError(f"Float {what} must be scaled to [0, 1], found {lo:g}..{hi:g}.{hint}")
    return x.astype(np.float32, copy=False), False


def _resize_batch(x, height, width):
    was_uint8 = x.dtype == np.uint8
    xf = x.astype(np.float32) / np.float32(255.0 if was_uint8 else 1.0)
    out = np.stack([resize_image(img, height, width) for img in xf])
    return np.round(out * 255.0).astype(np.uint8) if was_uint8 else out


def conform(x, image_shape=None, *, resize=False, color_mode=None, what="x"):
    """Validate and convert an image array; keeps its scale. Returns ``(x, is_uint8)``."""
    shape = normalize_shape(image_shape, color_mode)
    x, is_uint8 = as_image_array(x, what)
    subject = f"{what} (images of shape {x.shape[1:]})"
    x = convert_channels(x, wanted_channels(shape, color_mode), color_mode, subject=subject, shape=shape)
    if shape is not None and tuple(x.shape[1:3]) != shape[:2]:
        if not resize:
            raise ValueError(
                f"{what} holds {x.shape[1]}x{x.shape[2]} images, expected "
                f"{shape[0]}x{shape[1]} (image shape {shape_text(shape)}). "
                "Pass resize=True to resize them."
            )
        x = _resize_batch(x, shape[0], shape[1])
    return x, is_uint8


def prepare_images(x, image_shape=None, *, resize=False, color_mode=None) -> np.ndarray:
    """Convert images to model input: ``float32`` in ``[0, 1]``, NHWC.

    Args:
        x: ``(N, H, W)`` or ``(N, H, W, C)`` array; integers 0..255
            (``uint8`` images) or floats already in ``[0, 1]``; a tensor works.
        image_shape: expected ``(H, W, C)`` (or ``(H, W)``), e.g.
            ``model.image_shape``. ``None`` accepts any size.
        resize: resize images whose size differs from ``image_shape``
            (bilinear, antialiased) instead of refusing them.
        color_mode: ``"grayscale"`` or ``"rgb"`` to convert the channel count
            (alpha dropped); ``None`` allows only lossless changes (see the
            module's rules).

    Raises:
        ValueError: bad dtype/range/shape, NaN, or a size/channel mismatch
            not allowed by ``resize``/``color_mode`` (expected vs found).
    """
    x, is_uint8 = conform(x, image_shape, resize=resize, color_mode=color_mode)
    if is_uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32, copy=False)
