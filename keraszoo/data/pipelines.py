"""``tf.data`` pipelines over in-memory arrays: :func:`load` and :func:`from_numpy`.

TensorFlow is imported when a pipeline is built, not with this module.
"""

from __future__ import annotations

import zlib

import numpy as np

from keraszoo.data.images import conform
from keraszoo.data.sources import binarize_array
from keraszoo.data.sources import check_binarize
from keraszoo.data.sources import load_arrays
from keraszoo.utils import check_positive_int

__all__ = ["from_numpy", "load"]

#: The attribute that marks a pipeline whose values keraszoo checked when it built it (its arrays in
#: full, image files by decoding them): ``model.fit`` then checks its ``element_spec`` only, and adds
#: no per-batch check (keraszoo.models.checked_data, which reads the same name).
VALUES_CHECKED = "_keraszoo_values_checked"


def values_checked(ds):
    """``ds``, marked as a pipeline of float images in [0, 1] (see :data:`VALUES_CHECKED`)."""
    try:
        setattr(ds, VALUES_CHECKED, True)
    except AttributeError:  # pragma: no cover - a dataset class that takes no attributes
        pass
    return ds


def derive_key(seed, purpose: str) -> int:
    """A stateless-RNG key (31-bit int) derived from a user seed and a purpose."""
    seed = 0 if seed is None else int(seed)
    return zlib.crc32(f"keraszoo:{purpose}:{seed}".encode()) & 0x7FFFFFFF


def scale(xb, is_uint8):
    """A batch as float32, divided by 255 when it holds 8-bit values."""
    import tensorflow as tf

    xb = tf.cast(xb, tf.float32)
    return xb / 255.0 if is_uint8 else xb


def bernoulli(xb, seed):
    """One Bernoulli(``xb``) draw per pixel, a pure function of ``seed``."""
    import tensorflow as tf

    u = tf.random.stateless_uniform(tf.shape(xb), seed=seed, dtype=tf.float32)
    return tf.cast(u < xb, tf.float32)


def check_batch_size(batch_size):
    return check_positive_int("batch_size", batch_size)


def binarize_batches(ds, seed):
    """Dynamic binarization of a batched dataset (``x`` or ``(x, y)``): new draws every epoch."""
    import tensorflow as tf

    rnd = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def draw(el, r):
        key = tf.stack([r, tf.constant(0, tf.int64)])
        return (bernoulli(el[0], key), el[1]) if isinstance(el, tuple) else bernoulli(el, key)

    return tf.data.Dataset.zip((ds, rnd)).map(draw, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _array_pipeline(x, y, *, is_uint8, batch_size, shuffle, seed, dynamic, drop_remainder, repeat=False):
    """Batched pipeline over in-memory arrays: shuffle indices, gather, scale."""
    import tensorflow as tf

    n = len(x)
    with tf.device("/cpu:0"):
        x_t = tf.constant(x)
        y_t = tf.constant(y) if y is not None else None
    idx = tf.data.Dataset.range(n)
    if shuffle:
        idx = idx.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        idx = idx.repeat()
    idx = idx.batch(batch_size, drop_remainder=drop_remainder)

    @tf.autograph.experimental.do_not_convert  # plain Python branches only; avoids autograph's warning
    def fetch(i):
        xb = scale(tf.gather(x_t, i), is_uint8)
        return xb if y_t is None else (xb, tf.gather(y_t, i))

    ds = idx.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if dynamic:
        ds = binarize_batches(ds, seed)
    return values_checked(ds.prefetch(tf.data.AUTOTUNE))  # x was checked in full by conform()


def load(
    name: str,
    split: str = "train",
    *,
    batch_size: int = 128,
    source: str = "tfds",
    data_dir=None,
    binarize=None,
    shuffle: bool = True,
    seed=None,
    drop_remainder: bool = False,
    repeat: bool = False,
    with_labels: bool = True,
    download: bool = True,
):
    """A standard dataset as a batched, prefetched ``tf.data.Dataset``.

    Elements are ``(x, label)`` pairs (``x`` only with ``with_labels=False``):
    ``x`` is ``float32`` in ``[0, 1]`` of shape ``(batch, H, W, C)``
    (MNIST/Fashion-MNIST ``(28, 28, 1)``, CIFAR-10 ``(32, 32, 3)``), labels
    ``int64``. keraszoo models ignore the labels, so the dataset goes straight
    into ``model.fit`` / ``model.evaluate``.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
        split: ``"train"``, ``"test"`` or a slice such as ``"train[:90%]"``.
        batch_size: examples per batch.
        source: ``"tfds"`` (``tensorflow_datasets.load``), ``"npz"``
            (archives in ``data_dir`` / ``$KERASZOO_DATA_DIR``) or ``"auto"``.
        data_dir: see :func:`keraszoo.data.load_arrays`.
        binarize: ``None``, ``"dynamic"`` (a new Bernoulli sample of each
            image every epoch), ``"static"`` (one fixed sample) or
            ``"threshold"``.
        shuffle: reshuffle the examples every epoch (iteration).
        seed: seed of the shuffling and of dynamic binarization; ``None``
            follows the global seed (``keras.utils.set_random_seed``).
        drop_remainder: drop the last, smaller batch.
        repeat: repeat forever (then pass ``steps_per_epoch`` to ``fit``).
        with_labels: yield ``(x, label)`` pairs (default) or ``x`` alone.
        download: let tfds download a missing dataset.

    Raises:
        DatasetUnavailableError: the data is not available offline; the
            message says how to fix it.
        ValueError: bad arguments.
    """
    binarize = check_binarize(binarize)
    batch_size = check_batch_size(batch_size)
    x, y = load_arrays(
        name,
        split,
        source=source,
        data_dir=data_dir,
        binarize=None if binarize == "dynamic" else binarize,
        dtype="uint8",
        download=download,
    )
    return from_numpy(
        x,
        y if with_labels else None,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        binarize="dynamic" if binarize == "dynamic" else None,  # static ones are drawn above
        drop_remainder=drop_remainder,
        repeat=repeat,
    )


def from_numpy(
    x,
    y=None,
    *,
    batch_size: int = 128,
    shuffle: bool = True,
    seed=None,
    image_shape=None,
    resize: bool = False,
    color_mode=None,
    binarize=None,
    drop_remainder: bool = False,
    repeat: bool = False,
):
    """Your arrays as a pipeline with the same scaling as :func:`load`.

    Args:
        x: images ``(N, H, W)`` or ``(N, H, W, C)``: integers 0..255 (e.g.
            ``uint8``) or floats in ``[0, 1]``.
        y: optional labels ``(N,)``; elements are then ``(x, y)`` pairs,
            otherwise ``x`` alone.
        image_shape: expected ``(H, W, C)``, e.g. ``model.image_shape``;
            mismatches are refused unless ``resize`` / ``color_mode`` allow
            converting them (lossless channel changes are made silently).
        resize, color_mode: see :func:`keraszoo.data.prepare_images`.
        batch_size, shuffle, seed, binarize, drop_remainder, repeat: as in
            :func:`load`.

    Raises:
        ValueError: bad values, ranges or shapes (expected vs found).
    """
    binarize = check_binarize(binarize)
    batch_size = check_batch_size(batch_size)
    x, is_uint8 = conform(x, image_shape, resize=resize, color_mode=color_mode)
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} images but y has {len(y)} labels.")
    x = binarize_array(x, is_uint8, binarize, "from_numpy")
    return _array_pipeline(x, y, is_uint8=is_uint8, batch_size=batch_size, shuffle=shuffle, seed=seed,
                           dynamic=binarize == "dynamic", drop_remainder=drop_remainder, repeat=repeat)
