"""A folder of image files as a ``tf.data`` pipeline: :func:`from_directory`.

Files are read by :mod:`keraszoo.data.images`, with its rules; every file is
decoded and checked before the pipeline is built, so a mismatch, a truncated file or an
oversized one fails at once, naming the file.
"""

from __future__ import annotations

import pathlib

import numpy as np

from keraszoo.data import images
from keraszoo.data.pipelines import binarize_batches
from keraszoo.data.pipelines import check_batch_size
from keraszoo.data.pipelines import scale
from keraszoo.data.pipelines import values_checked
from keraszoo.data.sources import STATIC_BINARIZATION_SEED
from keraszoo.data.sources import check_binarize

__all__ = ["from_directory"]

_CHANNEL_NAMES = {1: "grayscale", 3: "RGB"}


def _summarize(items, limit=3):
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _folder_size(root, rel, sizes, shape, resize):
    """The ``(height, width)`` of the pipeline's images; refuses other sizes unless ``resize``."""
    if shape is None:
        distinct = sorted(set(sizes))
        if len(distinct) > 1:
            examples = [f"{r} is {s[0]}x{s[1]}" for r, s in zip(rel, sizes, strict=True) if s != sizes[0]]
            raise ValueError(
                f"Images under {str(root)!r} have different sizes ({distinct}); first is "
                f"{sizes[0][0]}x{sizes[0][1]} but {_summarize(examples)}. Pass "
                "image_size=(h, w) and resize=True to resize them."
            )
        return sizes[0]
    bad = [f"{r} is {s[0]}x{s[1]}" for r, s in zip(rel, sizes, strict=True) if s != shape[:2]]
    if bad and not resize:
        raise ValueError(
            f"{len(bad)} of {len(sizes)} images under {str(root)!r} are not "
            f"{shape[0]}x{shape[1]} as expected: {_summarize(bad)}. "
            "Pass resize=True to resize them."
        )
    return shape[:2]


def _file_channels(path, found, want, color_mode, shape):
    """The channel count ``path`` (``found`` channels in its header) is read with."""
    if want is not None and (found == want or (found, want) == (1, 3) or color_mode is not None):
        return want
    if found in (1, 3) and want is None:
        return found
    # Alpha, or color to grayscale without color_mode: lossless only, so look at the pixels.
    x = images.convert_channels(images.read_image(path), want, color_mode, subject=path, shape=shape)
    return x.shape[-1]


def _folder_channels(root, files, found, shape, color_mode):
    """The channel count of the pipeline's images; refuses lossy conversions without ``color_mode``."""
    want = images.wanted_channels(shape, color_mode)
    channels = [_file_channels(f, c, want, color_mode, shape) for f, c in zip(files, found, strict=True)]
    distinct = sorted(set(channels))
    if len(distinct) > 1:
        counts = ", ".join(f"{channels.count(c)} {_CHANNEL_NAMES[c]}" for c in distinct)
        raise ValueError(
            f"Images under {str(root)!r} are {counts}; pass color_mode='grayscale' or "
            "'rgb' to convert them all to one channel count (alpha is dropped)."
        )
    return distinct[0]


def _inferred_labels(rel):
    """Class indices from the first sub-folder of every file, or ``None`` for a flat folder."""
    parts = [pathlib.Path(r).parts for r in rel]
    if not all(len(p) >= 2 for p in parts):
        return None
    index = {c: i for i, c in enumerate(sorted({p[0] for p in parts}))}
    return np.array([index[p[0]] for p in parts], dtype=np.int64)


def _decoded(files, shape, resize):
    """The files as uint8 ``shape`` images, read by :func:`keraszoo.data.images.load_image`.

    Kept as 8-bit values (a quarter of float32's memory in the cache) and scaled to
    [0, 1] per batch; 16-bit files and resized images are rounded to 8 bits.
    """
    import tensorflow as tf

    # Every file was checked: converting to the folder's channel count is allowed.
    mode = "rgb" if shape[2] == 3 else "grayscale"

    def read(path):
        x = images.load_image(path.decode(), shape, resize=resize, color_mode=mode)
        return np.round(x * np.float32(255.0)).astype(np.uint8)

    def decode(path):
        return tf.ensure_shape(tf.numpy_function(read, [path], tf.uint8, stateful=False), shape)

    paths = tf.data.Dataset.from_tensor_slices([str(f) for f in files])
    return paths.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _binarized(ds, binarize):
    """Static or threshold binarization, per file: the draws depend on the file's index alone."""
    import tensorflow as tf

    def binarize_fn(i, img):
        xf = tf.cast(img, tf.float32)
        if binarize == "threshold":
            on = xf >= 128.0
        else:
            seed = tf.stack([tf.constant(STATIC_BINARIZATION_SEED, tf.int64), i])
            on = tf.random.stateless_uniform(tf.shape(xf), seed=seed) * 255.0 < xf
        return tf.cast(on, tf.uint8) * 255

    return ds.enumerate().map(binarize_fn, num_parallel_calls=tf.data.AUTOTUNE)


def from_directory(
    path,
    *,
    image_size=None,
    color_mode=None,
    batch_size: int = 128,
    shuffle: bool = True,
    seed=None,
    resize: bool = False,
    labels="inferred",
    binarize=None,
    cache=True,
    drop_remainder: bool = False,
    follow_links: bool = False,
):
    """A folder of images (PNG, JPEG, BMP, GIF) as a pipeline like :func:`keraszoo.data.load`.

    Files are found recursively (hidden ones skipped) and read in sorted
    order. Every file is checked up front, so a wrong size or channel count
    fails immediately with a ``ValueError`` naming the files (not in the
    middle of training). Channels follow :mod:`keraszoo.data.images`' rules.

    Args:
        path: the folder.
        image_size: ``(height, width)`` (or an int for square images) that
            the model expects, e.g. ``model.image_shape[:2]``; or
            ``model.image_shape`` itself, ``(height, width, channels)``, which
            also sets that channel count (lossless changes are made silently,
            lossy ones need ``color_mode``).
            ``None``: all images must share one size, which is used.
        color_mode: ``"grayscale"`` (1 channel) or ``"rgb"`` (3 channels):
            images are converted to it (alpha dropped). ``None``: all images
            must be grayscale, or all RGB (a fully opaque alpha channel is
            dropped).
        resize: resize images whose size differs from ``image_size``
            (bilinear, antialiased) instead of refusing them.
        labels: ``"inferred"``: when every image lies in a sub-folder, the
            sorted sub-folder names are the classes 0, 1, ... and elements are
            ``(x, label)`` pairs; otherwise (or with ``None``) elements are
            ``x`` alone.
        batch_size, shuffle, seed, binarize, drop_remainder: as in :func:`keraszoo.data.load`.
        cache: ``True`` caches the decoded images in memory after the first
            epoch, a string caches them in that file, ``False`` decodes every
            epoch.
        follow_links: follow symbolic links to sub-folders.

    Raises:
        ValueError: missing/empty folder, unreadable image, or a size/channel
            mismatch not allowed by ``resize``/``color_mode``.
    """
    import tensorflow as tf

    batch_size = check_batch_size(batch_size)
    binarize = check_binarize(binarize)
    shape = images.normalize_shape(image_size, color_mode, name="image_size")
    if labels not in ("inferred", None):
        raise ValueError(f"labels must be 'inferred' or None, got {labels!r}.")
    if shape is None and resize:
        raise ValueError("resize=True needs image_size=(height, width) to resize to.")

    root = pathlib.Path(path).expanduser()
    files = images.list_images(root, follow_links=follow_links)
    headers = [images.scan_image(f) for f in files]  # decoded in full: a broken file fails here
    rel = [str(f.relative_to(root)) for f in files]
    size = _folder_size(root, rel, [h[:2] for h in headers], shape, resize)
    channels = _folder_channels(root, files, [h[2] for h in headers], shape, color_mode)

    ds = _decoded(files, (*size, channels), resize)
    if binarize in ("static", "threshold"):
        ds = _binarized(ds, binarize)
    label_arr = _inferred_labels(rel) if labels == "inferred" else None
    if label_arr is not None:
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(label_arr)))
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda *el: (scale(el[0], True), *el[1:]) if len(el) > 1 else scale(el[0], True),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if binarize == "dynamic":
        ds = binarize_batches(ds, seed)
    return values_checked(ds.prefetch(tf.data.AUTOTUNE))  # decoded 8-bit pixels / 255
