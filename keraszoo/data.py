"""Input pipelines: datasets, image folders and arrays as ``tf.data`` pipelines.

Everything here produces what the keraszoo models expect: ``float32`` images
in ``[0, 1]``, channels last (MNIST-like data ``(28, 28, 1)``, CIFAR-10
``(32, 32, 3)``), in batched, prefetched ``tf.data.Dataset`` objects that
``model.fit`` / ``model.evaluate`` consume directly.

Standard datasets (``mnist``, ``fashion_mnist``, ``cifar10``)::

    import keraszoo
    train = keraszoo.data.load("mnist", "train", batch_size=128)          # tfds
    test = keraszoo.data.load("mnist", "test", batch_size=512, shuffle=False,
                              source="npz", data_dir="/data")            # offline
    x, y = keraszoo.data.load_arrays("mnist", "test")                     # numpy

``source="tfds"`` reads through :func:`tensorflow_datasets.load` (downloads
once, needs internet); ``source="npz"`` reads NumPy archives such as
``mnist.npz`` or ``cifar10_jpeg.npz`` (keys ``x_train, y_train, x_test,
y_test``, ``uint8``) from ``data_dir`` or the ``KERASZOO_DATA_DIR``
environment variable; ``source="auto"`` uses an archive when one is found and
tfds otherwise.

Your own data::

    ds = keraszoo.data.from_directory("my_pngs/", image_size=(28, 28),
                                      color_mode="grayscale", batch_size=64)
    ds = keraszoo.data.from_numpy(x_uint8_or_float01, batch_size=64)
    model.fit(ds, epochs=5)

Images of another size or channel count are converted only when asked
(``resize=True`` / ``color_mode=...``); otherwise they are refused with a
``ValueError`` that says what was expected and what was found.

The standard datasets are small: a split is read into memory once (uint8,
at most 150 MB for CIFAR-10's training set) and batches are gathered from it
in parallel, so the input pipeline never starves the accelerator.

Splits are ``"train"`` or ``"test"``, optionally sliced like tfds:
``"train[:90%]"``, ``"train[90%:]"``, ``"test[:1000]"``.

Binarization (for likelihood work on MNIST): ``binarize="dynamic"`` draws a
fresh Bernoulli sample of every image each epoch, ``"static"`` draws one fixed
sample per image (a fixed seed, independent of the split slicing and of the
shuffling seed, so every run sees the same binary images), ``"threshold"``
rounds at 0.5.

:class:`EpochStream` is the deterministic, resumable pipeline that the
training scripts use: the order of epoch ``e`` is a pure function of
``(seed, e)``, so a run restarted in the middle of an epoch sees exactly the
batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import pathlib
import re
import zlib

import numpy as np

__all__ = [
    "DATA_DIR_ENV",
    "DatasetInfo",
    "DatasetUnavailableError",
    "EpochStream",
    "dataset_info",
    "find_npz",
    "from_directory",
    "from_numpy",
    "list_datasets",
    "load",
    "load_arrays",
    "prepare_images",
]

#: Environment variable naming the folder that holds the ``.npz`` archives.
DATA_DIR_ENV = "KERASZOO_DATA_DIR"

#: Seed of ``binarize="static"``: fixed so that every run, every split slice
#: and every source sees the same binary images.
STATIC_BINARIZATION_SEED = 0

BINARIZE_MODES = ("dynamic", "static", "threshold")
SOURCES = ("tfds", "npz", "auto")
COLOR_MODES = {"grayscale": 1, "rgb": 3}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset known to :func:`load`.

    Attributes:
        name: keraszoo name (``"mnist"``).
        image_shape: ``(height, width, channels)`` of one image.
        num_classes: number of label classes.
        splits: split name -> number of examples.
        tfds_name: name for :func:`tensorflow_datasets.load`.
        npz_files: archive file names looked for with ``source="npz"``,
            in order of preference.
        description: one line for humans.
    """

    name: str
    image_shape: tuple
    num_classes: int
    splits: dict
    tfds_name: str
    npz_files: tuple
    description: str = ""


_DATASETS = {
    "mnist": DatasetInfo(
        "mnist",
        (28, 28, 1),
        10,
        {"train": 60000, "test": 10000},
        "mnist",
        ("mnist.npz",),
        "MNIST handwritten digits, 28x28 grayscale",
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        (28, 28, 1),
        10,
        {"train": 60000, "test": 10000},
        "fashion_mnist",
        ("fashion_mnist.npz",),
        "Fashion-MNIST clothing images, 28x28 grayscale",
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        (32, 32, 3),
        10,
        {"train": 50000, "test": 10000},
        "cifar10",
        # A lossless copy wins over the JPEG re-encode when both are present.
        ("cifar10.npz", "cifar10_jpeg.npz"),
        "CIFAR-10 natural images, 32x32 RGB",
    ),
}
_ALIASES = {"fashion-mnist": "fashion_mnist", "fmnist": "fashion_mnist", "cifar-10": "cifar10"}


class DatasetUnavailableError(FileNotFoundError):
    """A dataset is neither prepared locally nor downloadable.

    The message says how to make it available (``KERASZOO_DATA_DIR``,
    ``source="npz"``, a tfds download).
    """

    def __str__(self):  # FileNotFoundError would print "[Errno ...]" otherwise
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------
# Dataset names, splits, archives
# --------------------------------------------------------------------------


def list_datasets() -> list:
    """Names accepted by :func:`load` and :func:`load_arrays`."""
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` (case and ``-``/``_`` insensitive).

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    if not isinstance(name, str):
        raise ValueError(f"Dataset name must be a string, got {type(name).__name__}.")
    key = name.strip().lower()
    key = _ALIASES.get(key, key).replace("-", "_")
    if key in _DATASETS:
        return _DATASETS[key]
    close = difflib.get_close_matches(key, list(_DATASETS) + list(_ALIASES), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown dataset {name!r}. Known datasets: {', '.join(list_datasets())}.{hint} "
        "For your own images use keraszoo.data.from_directory() or from_numpy()."
    )


_SPLIT_RE = re.compile(r"^\s*(\w+)\s*(?:\[\s*(-?\d+%?)?\s*:\s*(-?\d+%?)?\s*\])?\s*$")


def _parse_split(split: str, info: DatasetInfo):
    """``"train[10%:]"`` -> (``"train"``, ``slice``) with tfds semantics."""
    if not isinstance(split, str):
        raise ValueError(f"split must be a string such as 'train' or 'test[:50%]', got {split!r}.")
    m = _SPLIT_RE.match(split)
    if not m:
        raise ValueError(
            f"Cannot parse split {split!r}; expected 'train', 'test' or a slice such as "
            "'train[:90%]', 'train[90%:]', 'test[:1000]'."
        )
    base, start, stop = m.group(1), m.group(2), m.group(3)
    if base not in info.splits:
        raise ValueError(
            f"Dataset {info.name!r} has no split {base!r}; available: {', '.join(info.splits)}."
        )
    return base, (start, stop)


def _apply_slice(n: int, bounds) -> slice:
    def conv(b):
        if b is None:
            return None
        if b.endswith("%"):
            pct = int(b[:-1])
            if not -100 <= pct <= 100:
                raise ValueError(f"Split percentage must be within -100%..100%, got {b}.")
            # tfds rounds percent boundaries to the closest example.
            return int(round(n * pct / 100.0))
        return int(b)

    start, stop = bounds
    return slice(conv(start), conv(stop))


def _data_dir(data_dir):
    d = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    return pathlib.Path(d).expanduser() if d else None


def find_npz(name: str, data_dir=None):
    """Path of the archive for ``name`` in ``data_dir`` / ``$KERASZOO_DATA_DIR``.

    Returns ``None`` when no directory is configured or no archive is there.
    """
    info = dataset_info(name)
    d = _data_dir(data_dir)
    if d is None:
        return None
    for fname in info.npz_files:
        if (d / fname).is_file():
            return d / fname
    return None


def _unavailable_message(info: DatasetInfo, data_dir, *, tried_tfds=False, cause=None) -> str:
    d = _data_dir(data_dir)
    where = (
        f"No archive {' or '.join(info.npz_files)} in {d}."
        if d is not None
        else f"No data directory is configured (data_dir=None and ${DATA_DIR_ENV} is not set)."
    )
    lines = [f"Dataset {info.name!r} is not available offline. {where}", "To fix it, either:"]
    lines.append(
        f"  * put {info.npz_files[0]} (numpy.savez arrays x_train, y_train, x_test, y_test, "
        f"uint8, images {info.image_shape[:2]}"
        + (" or with the channel axis" if info.image_shape[-1] == 1 else "")
        + f") in a folder and set {DATA_DIR_ENV}=/that/folder (or pass data_dir=...) "
        "and use source='npz' (or 'auto');"
    )
    lines.append(
        f"  * or, with internet access, use source='tfds': tensorflow_datasets downloads "
        f"'{info.tfds_name}' once into ~/tensorflow_datasets (or data_dir); to prepare it "
        f"ahead of time run: python -c \"import tensorflow_datasets as t; "
        f"t.builder('{info.tfds_name}').download_and_prepare()\"."
    )
    if tried_tfds and cause is not None:
        lines.append(f"(tensorflow_datasets failed with {type(cause).__name__}: {str(cause)[:300]})")
    return "\n".join(lines)


def _read_npz(info: DatasetInfo, base: str, data_dir):
    path = find_npz(info.name, data_dir)
    if path is None:
        raise DatasetUnavailableError(_unavailable_message(info, data_dir))
    with np.load(path, allow_pickle=False) as archive:
        kx, ky = f"x_{base}", f"y_{base}"
        missing = [k for k in (kx, ky) if k not in archive.files]
        if missing:
            raise ValueError(
                f"{path} has no array(s) {missing}; expected keys x_train, y_train, x_test, "
                f"y_test, found {sorted(archive.files)}."
            )
        x, y = archive[kx], archive[ky]
    if x.dtype != np.uint8:
        raise ValueError(f"{path}:{kx} must be uint8 (0..255), found dtype {x.dtype}.")
    if x.ndim == 3 and info.image_shape[-1] == 1:
        x = x[..., None]
    if tuple(x.shape[1:]) != tuple(info.image_shape):
        raise ValueError(
            f"{path}:{kx} holds images of shape {tuple(x.shape[1:])}; "
            f"{info.name} expects {info.image_shape}."
        )
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if len(y) != len(x):
        raise ValueError(f"{path}: {len(x)} images but {len(y)} labels in {kx}/{ky}.")
    return x, y


def _read_tfds(info: DatasetInfo, base: str, data_dir, download: bool):
    import tensorflow_datasets as tfds

    builder_dir = str(_data_dir(data_dir)) if _data_dir(data_dir) is not None else None
    try:
        prepared = tfds.builder(info.tfds_name, data_dir=builder_dir).is_prepared()
    except Exception:  # noqa: BLE001 - a broken tfds install is reported below
        prepared = False
    if not prepared and not download:
        raise DatasetUnavailableError(_unavailable_message(info, data_dir))
    try:
        ds = tfds.load(
            info.tfds_name,
            split=base,
            as_supervised=True,
            data_dir=builder_dir,
            download=download,
        )
        xs, ys = [], []
        for xb, yb in tfds.as_numpy(ds.batch(10000)):
            xs.append(xb)
            ys.append(yb)
    except Exception as e:  # noqa: BLE001
        if prepared:
            raise
        raise DatasetUnavailableError(
            _unavailable_message(info, data_dir, tried_tfds=True, cause=e)
        ) from e
    if not xs:
        raise DatasetUnavailableError(_unavailable_message(info, data_dir))
    x = np.concatenate(xs).astype(np.uint8, copy=False)
    y = np.concatenate(ys).reshape(-1).astype(np.int64)
    if x.ndim == 3:
        x = x[..., None]
    if tuple(x.shape[1:]) != tuple(info.image_shape):
        raise ValueError(
            f"tensorflow_datasets returned images of shape {tuple(x.shape[1:])} for "
            f"{info.tfds_name!r}; expected {info.image_shape}."
        )
    return x, y


def _check_source(source):
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")


def _check_binarize(binarize):
    if binarize in (None, False):
        return None
    if binarize not in BINARIZE_MODES:
        raise ValueError(
            f"binarize must be None, 'dynamic', 'static' or 'threshold', got {binarize!r}."
        )
    return binarize


def _static_rng(*keys: str):
    salt = [zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng([STATIC_BINARIZATION_SEED, *salt])


def _binarize_static_uint8(x: np.ndarray, *keys: str) -> np.ndarray:
    """One fixed Bernoulli(x/255) draw per pixel, as uint8 {0, 255}."""
    rng = _static_rng(*keys)
    out = np.empty_like(x)
    step = 4096  # bounded memory for the float draws
    for i in range(0, len(x), step):
        chunk = x[i : i + step]
        u = rng.random(chunk.shape, dtype=np.float32)
        out[i : i + step] = np.where(u * 255.0 < chunk, 255, 0).astype(np.uint8)
    return out


def load_arrays(
    name: str,
    split: str = "train",
    *,
    source: str = "tfds",
    data_dir=None,
    binarize=None,
    dtype="float32",
    download: bool = True,
):
    """A dataset split as NumPy arrays ``(x, y)``.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
        split: ``"train"``, ``"test"`` or a tfds-style slice such as
            ``"train[:90%]"``.
        source: ``"tfds"``, ``"npz"`` or ``"auto"`` (npz when an archive is
            found in ``data_dir`` / ``$KERASZOO_DATA_DIR``, else tfds).
        data_dir: folder of the ``.npz`` archives (npz) or the tfds data
            directory (tfds). Defaults to ``$KERASZOO_DATA_DIR``.
        binarize: ``None``, ``"static"`` (one fixed Bernoulli draw per image)
            or ``"threshold"``. ``"dynamic"`` needs a pipeline; use
            :func:`load`.
        dtype: ``"float32"`` (scaled to ``[0, 1]``, default) or ``"uint8"``
            (raw 0..255; binary images as 0/255).
        download: let tfds download a missing dataset.

    Returns:
        ``(x, y)``: images ``(N, H, W, C)`` and ``int64`` labels ``(N,)``.

    Raises:
        DatasetUnavailableError: the data is not available; the message says
            how to fix it.
        ValueError: unknown dataset/split/option, or a malformed archive.
    """
    info = dataset_info(name)
    _check_source(source)
    binarize = _check_binarize(binarize)
    if binarize == "dynamic":
        raise ValueError(
            "binarize='dynamic' resamples every epoch and needs a tf.data pipeline: "
            "use keraszoo.data.load(..., binarize='dynamic'); load_arrays accepts "
            "None, 'static' or 'threshold'."
        )
    if np.dtype(dtype) not in (np.dtype("float32"), np.dtype("uint8")):
        raise ValueError(f"dtype must be 'float32' or 'uint8', got {dtype!r}.")
    base, bounds = _parse_split(split, info)
    if source == "auto":
        source = "npz" if find_npz(info.name, data_dir) is not None else "tfds"
    if source == "npz":
        x, y = _read_npz(info, base, data_dir)
    else:
        x, y = _read_tfds(info, base, data_dir, download)
    # Binarize the whole split before slicing so that an image's binary
    # version does not depend on how the split is sliced.
    if binarize == "static":
        x = _binarize_static_uint8(x, info.name, base)
    elif binarize == "threshold":
        x = np.where(x >= 128, 255, 0).astype(np.uint8)
    sl = _apply_slice(len(x), bounds)
    x, y = x[sl], y[sl]
    if np.dtype(dtype) == np.dtype("float32"):
        x = x.astype(np.float32) / np.float32(255.0)
    return x, y


# --------------------------------------------------------------------------
# Array checks and conversion
# --------------------------------------------------------------------------


def _as_image_array(x, what="x"):
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
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contains NaN or infinite values.")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        hint = (
            " It looks like 0..255 values in a float array: divide by 255 or cast to uint8."
            if hi <= 255.0 and lo >= 0.0
            else ""
        )
        raise ValueError(f"Float {what} must be scaled to [0, 1], found {lo:g}..{hi:g}.{hint}")
    return x.astype(np.float32, copy=False), False


def _convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Grayscale <-> RGB, alpha dropped; works on uint8 or float NHWC arrays."""
    c = x.shape[-1]
    if c == channels:
        return x
    if c in (2, 4):  # drop alpha
        x = x[..., : c - 1]
        c -= 1
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return np.repeat(x, 3, axis=-1)
    if c == 3 and channels == 1:
        # ITU-R BT.601 luma, as PIL's convert("L") and tf.image.rgb_to_grayscale.
        w = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        y = x.astype(np.float32) @ w
        if x.dtype == np.uint8:
            y = np.clip(np.round(y), 0, 255).astype(np.uint8)
        return y[..., None]
    raise ValueError(f"Cannot convert {c}-channel images to {channels} channels.")


def _resize(x: np.ndarray, size) -> np.ndarray:
    import tensorflow as tf

    was_uint8 = x.dtype == np.uint8
    xf = x.astype(np.float32) / (255.0 if was_uint8 else 1.0)
    out = []
    for i in range(0, len(xf), 4096):
        r = tf.image.resize(xf[i : i + 4096], size, method="bilinear", antialias=True)
        out.append(np.clip(r.numpy(), 0.0, 1.0))
    out = np.concatenate(out)
    if was_uint8:
        out = np.round(out * 255.0).astype(np.uint8)
    return out


def _normalize_shape_args(image_shape, color_mode):
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise ValueError(
            f"color_mode must be 'grayscale', 'rgb' or None, got {color_mode!r}."
        )
    if image_shape is not None:
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) == 2:
            image_shape = (*image_shape, None)
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W) or (H, W, C), got {image_shape}.")
        if (
            color_mode is not None
            and image_shape[2] is not None
            and image_shape[2] != COLOR_MODES[color_mode]
        ):
            raise ValueError(
                f"color_mode={color_mode!r} contradicts image_shape={image_shape}."
            )
    return image_shape


def _conform(x, image_shape=None, *, resize=False, color_mode=None, what="x"):
    """Validate and convert an image array; keeps its dtype scale (uint8 or float)."""
    image_shape = _normalize_shape_args(image_shape, color_mode)
    x, is_uint8 = _as_image_array(x, what)
    want_c = COLOR_MODES[color_mode] if color_mode else (image_shape[2] if image_shape else None)
    found_c = x.shape[-1]
    if want_c is not None and found_c != want_c:
        if color_mode is None:
            raise ValueError(
                f"{what} has {found_c} channel(s) (shape {x.shape[1:]}), expected {want_c} "
                f"(image shape {image_shape}). Pass color_mode="
                f"{'rgb' if want_c == 3 else 'grayscale'!r} to convert."
            )
        x = _convert_channels(x, want_c)
    elif want_c is None and found_c in (2, 4):
        raise ValueError(
            f"{what} has an alpha channel ({found_c} channels); pass color_mode='grayscale' "
            "or 'rgb' to drop it."
        )
    if image_shape is not None and tuple(x.shape[1:3]) != tuple(image_shape[:2]):
        if not resize:
            raise ValueError(
                f"{what} holds {x.shape[1]}x{x.shape[2]} images, expected "
                f"{image_shape[0]}x{image_shape[1]} (image shape {image_shape}). "
                "Pass resize=True to resize them."
            )
        x = _resize(x, image_shape[:2])
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
            (alpha dropped); ``None`` refuses a channel mismatch.

    Raises:
        ValueError: bad dtype/range/shape, NaN, or a size/channel mismatch
            not allowed by ``resize``/``color_mode`` (expected vs found).
    """
    x, is_uint8 = _conform(x, image_shape, resize=resize, color_mode=color_mode)
    if is_uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32, copy=False)


# --------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------


def _derive_key(seed, purpose: str) -> int:
    """A stateless-RNG key (31-bit int) derived from a user seed and a purpose."""
    seed = 0 if seed is None else int(seed)
    return zlib.crc32(f"keraszoo:{purpose}:{seed}".encode()) & 0x7FFFFFFF


def _scale(xb, is_uint8):
    import tensorflow as tf

    xb = tf.cast(xb, tf.float32)
    return xb / 255.0 if is_uint8 else xb


def _bernoulli(xb, seed):
    import tensorflow as tf

    u = tf.random.stateless_uniform(tf.shape(xb), seed=seed, dtype=tf.float32)
    return tf.cast(u < xb, tf.float32)


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def _array_pipeline(
    x,
    y,
    *,
    is_uint8,
    batch_size,
    shuffle,
    seed,
    binarize,
    drop_remainder,
    repeat=False,
):
    """Batched pipeline over in-memory arrays: shuffle indices, gather, scale."""
    import tensorflow as tf

    batch_size = _check_batch_size(batch_size)
    binarize = _check_binarize(binarize)
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
    def fetch(i, rnd=None):
        xb = _scale(tf.gather(x_t, i), is_uint8)
        if binarize == "dynamic":
            xb = _bernoulli(xb, tf.stack([rnd, tf.constant(0, tf.int64)]))
        return xb if y_t is None else (xb, tf.gather(y_t, i))

    if binarize == "dynamic":
        rnd = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        idx = tf.data.Dataset.zip((idx, rnd))
    ds = idx.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _binarize_array(x, is_uint8, binarize):
    """Static / threshold binarization of an array (keeps its scale)."""
    if binarize == "static":
        if is_uint8:
            return _binarize_static_uint8(x, "from_numpy")
        rng = _static_rng("from_numpy")
        return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
    if binarize == "threshold":
        if is_uint8:
            return np.where(x >= 128, 255, 0).astype(np.uint8)
        return (x >= 0.5).astype(np.float32)
    return x


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
        data_dir: see :func:`load_arrays`.
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
    binarize = _check_binarize(binarize)
    batch_size = _check_batch_size(batch_size)
    x, y = load_arrays(
        name,
        split,
        source=source,
        data_dir=data_dir,
        binarize=None if binarize == "dynamic" else binarize,
        dtype="uint8",
        download=download,
    )
    return _array_pipeline(
        x,
        y if with_labels else None,
        is_uint8=True,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        binarize="dynamic" if binarize == "dynamic" else None,
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
            converting them.
        resize, color_mode: see :func:`prepare_images`.
        batch_size, shuffle, seed, binarize, drop_remainder, repeat: as in
            :func:`load`.

    Raises:
        ValueError: bad values, ranges or shapes (expected vs found).
    """
    binarize = _check_binarize(binarize)
    x, is_uint8 = _conform(x, image_shape, resize=resize, color_mode=color_mode)
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} images but y has {len(y)} labels.")
    x = _binarize_array(x, is_uint8, binarize)
    return _array_pipeline(
        x,
        y,
        is_uint8=is_uint8,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        binarize="dynamic" if binarize == "dynamic" else None,
        drop_remainder=drop_remainder,
        repeat=repeat,
    )


# --------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------


def _pil_channels(img) -> int:
    mode = img.mode
    if mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F"):
        return 1
    if mode == "LA":
        return 2
    if mode == "P":
        return 4 if "transparency" in img.info else 3
    if mode in ("RGBA", "RGBa", "PA"):
        return 4
    return 3  # RGB, YCbCr, CMYK, LAB, HSV: decoded as 3 channels


def _list_images(root: pathlib.Path, follow_links: bool):
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_links):
        dirnames.sort()
        for f in sorted(filenames):
            if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."):
                files.append(pathlib.Path(dirpath) / f)
    return files


def _summarize(items, limit=3):
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


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
    """A folder of images (PNG, JPEG, BMP, GIF) as a pipeline like :func:`load`.

    Files are found recursively and read in sorted order. Every file's header
    is checked up front, so a wrong size or channel count fails immediately
    with a ``ValueError`` naming the files (not in the middle of training).

    Args:
        path: the folder.
        image_size: ``(height, width)`` (or an int for square images) that
            the model expects, e.g. ``model.image_shape[:2]``; or
            ``model.image_shape`` itself, ``(height, width, channels)``, which
            also requires that channel count (unless ``color_mode`` converts).
            ``None``: all images must share one size, which is used.
        color_mode: ``"grayscale"`` (1 channel) or ``"rgb"`` (3 channels):
            images are converted to it (alpha dropped). ``None``: all images
            must be grayscale, or all RGB, without alpha.
        resize: resize images whose size differs from ``image_size``
            (bilinear, antialiased) instead of refusing them.
        labels: ``"inferred"``: when every image lies in a sub-folder, the
            sorted sub-folder names are the classes 0, 1, ... and elements are
            ``(x, label)`` pairs; otherwise (or with ``None``) elements are
            ``x`` alone.
        batch_size, shuffle, seed, binarize, drop_remainder: as in :func:`load`.
        cache: ``True`` caches the decoded images in memory after the first
            epoch, a string caches them in that file, ``False`` decodes every
            epoch.
        follow_links: follow symbolic links to sub-folders.

    Raises:
        ValueError: missing/empty folder, unreadable image, or a size/channel
            mismatch not allowed by ``resize``/``color_mode``.
    """
    import tensorflow as tf
    from PIL import Image

    batch_size = _check_batch_size(batch_size)
    binarize = _check_binarize(binarize)
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be 'grayscale', 'rgb' or None, got {color_mode!r}.")
    if labels not in ("inferred", None):
        raise ValueError(f"labels must be 'inferred' or None, got {labels!r}.")
    if isinstance(image_size, (int, np.integer)):
        image_size = (int(image_size), int(image_size))
    if image_size is not None:
        image_size = tuple(int(s) for s in image_size)
        want = None
        if len(image_size) == 3:  # accept model.image_shape
            want = image_size[2]
            if want not in (1, 3):
                raise ValueError(f"image_size channels must be 1 or 3, got {image_size}.")
            if color_mode is not None and COLOR_MODES[color_mode] != want:
                raise ValueError(f"color_mode={color_mode!r} contradicts image_size={image_size}.")
            image_size = image_size[:2]
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size must be (height, width), got {image_size}.")
    else:
        want = None
        if resize:
            raise ValueError("resize=True needs image_size=(height, width) to resize to.")

    root = pathlib.Path(path).expanduser()
    if not root.is_dir():
        raise ValueError(f"Image folder {str(root)!r} does not exist or is not a directory.")
    files = _list_images(root, follow_links)
    if not files:
        raise ValueError(
            f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {str(root)!r}."
        )

    sizes, chans = [], []
    for f in files:
        try:
            with Image.open(f) as img:
                sizes.append((img.height, img.width))
                chans.append(_pil_channels(img))
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"Cannot read image {str(f)!r}: {e}") from e

    rel = [str(f.relative_to(root)) for f in files]
    if image_size is None:
        distinct = sorted(set(sizes))
        if len(distinct) > 1:
            examples = [f"{r} is {s[0]}x{s[1]}" for r, s in zip(rel, sizes) if s != sizes[0]]
            raise ValueError(
                f"Images under {str(root)!r} have different sizes ({distinct}); first is "
                f"{sizes[0][0]}x{sizes[0][1]} but {_summarize(examples)}. Pass "
                "image_size=(h, w) and resize=True to resize them."
            )
        image_size = sizes[0]
    else:
        bad = [f"{r} is {s[0]}x{s[1]}" for r, s in zip(rel, sizes) if s != tuple(image_size)]
        if bad and not resize:
            raise ValueError(
                f"{len(bad)} of {len(files)} images under {str(root)!r} are not "
                f"{image_size[0]}x{image_size[1]} as expected: {_summarize(bad)}. "
                "Pass resize=True to resize them."
            )

    if color_mode is not None:
        channels = COLOR_MODES[color_mode]
    else:
        found = sorted(set(chans))
        names = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA/transparent"}
        if any(c in (2, 4) for c in found) or len(found) > 1:
            counts = ", ".join(f"{chans.count(c)} {names[c]}" for c in found)
            raise ValueError(
                f"Images under {str(root)!r} are {counts}; pass color_mode='grayscale' or "
                "'rgb' to convert them all to one channel count (alpha is dropped)."
            )
        channels = found[0]
        if want is not None and channels != want:
            raise ValueError(
                f"Images under {str(root)!r} have {channels} channel(s), expected {want}. "
                f"Pass color_mode={'rgb' if want == 3 else 'grayscale'!r} to convert them."
            )

    label_arr = None
    if labels == "inferred":
        parts = [pathlib.Path(r).parts for r in rel]
        if all(len(p) >= 2 for p in parts):
            classes = sorted({p[0] for p in parts})
            index = {c: i for i, c in enumerate(classes)}
            label_arr = np.array([index[p[0]] for p in parts], dtype=np.int64)

    h, w = image_size
    needs_resize = resize and any(s != tuple(image_size) for s in sizes)

    luma = tf.constant([[0.299], [0.587], [0.114]], tf.float32)

    def decode(p):
        # Decode with the file's own channels, then convert here: the same
        # BT.601 grayscale for every format (libpng and libjpeg differ).
        img = tf.io.decode_image(tf.io.read_file(p), channels=0, expand_animations=False, dtype=tf.uint8)
        c = tf.shape(img)[-1]
        img = tf.cond(tf.logical_or(tf.equal(c, 2), tf.equal(c, 4)), lambda: img[..., :-1], lambda: img)
        c = tf.shape(img)[-1]
        if channels == 3:
            img = tf.cond(tf.equal(c, 1), lambda: tf.tile(img, [1, 1, 3]), lambda: img)
        else:
            img = tf.cond(
                tf.equal(c, 3),
                lambda: tf.cast(tf.round(tf.tensordot(tf.cast(img, tf.float32), luma, 1)), tf.uint8),
                lambda: img,
            )
        if needs_resize:
            img = tf.image.resize(tf.cast(img, tf.float32), (h, w), antialias=True)
            img = tf.cast(tf.round(tf.clip_by_value(img, 0.0, 255.0)), tf.uint8)
        return tf.ensure_shape(img, (h, w, channels))

    paths = tf.data.Dataset.from_tensor_slices([str(f) for f in files])
    images = paths.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if binarize in ("static", "threshold"):
        # Per-file, order-independent draws keyed by the file's index.
        def binarize_fn(i, img):
            xf = tf.cast(img, tf.float32)
            if binarize == "threshold":
                b = xf >= 128.0
            else:
                u = tf.random.stateless_uniform(
                    tf.shape(xf),
                    seed=tf.stack([tf.constant(STATIC_BINARIZATION_SEED, tf.int64), i]),
                )
                b = u * 255.0 < xf
            return tf.cast(b, tf.uint8) * 255

        images = images.enumerate().map(binarize_fn, num_parallel_calls=tf.data.AUTOTUNE)
    ds = images if label_arr is None else tf.data.Dataset.zip(
        (images, tf.data.Dataset.from_tensor_slices(label_arr))
    )
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if binarize == "dynamic":
        ds = tf.data.Dataset.zip(
            (ds, tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True))
        )

    def finish(*el):
        rnd = None
        if binarize == "dynamic":
            el, rnd = el[0], el[1]
            el = el if isinstance(el, tuple) else (el,)
        xb = _scale(el[0], True)
        if rnd is not None:
            xb = _bernoulli(xb, tf.stack([rnd, tf.constant(0, tf.int64)]))
        return xb if len(el) == 1 else (xb, el[1])

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------
# Deterministic, resumable training stream
# --------------------------------------------------------------------------


class EpochStream:
    """Deterministic per-epoch batches that a run can resume mid-epoch.

    The order of epoch ``e`` is a pure function of ``(seed, e)`` (a stateless
    permutation), and dynamic binarization of batch ``i`` of epoch ``e`` a
    pure function of ``(seed, e, i)``. Unlike ``Dataset.shuffle`` (whose
    order depends on how many times the dataset was iterated in *this*
    process), a process restarted at epoch ``e``, batch ``i`` therefore sees
    the very batches an uninterrupted run sees.

    Use :meth:`dataset` with ``model.fit(..., steps_per_epoch=None)`` and
    :meth:`callback` in the callbacks (it tells the pipeline which epoch
    starts); :meth:`partial_epoch` gives the rest of an interrupted epoch.

    Elements are image batches alone (``float32`` in ``[0, 1]``); labels are
    not needed by the models.

    Args:
        x: training images, ``uint8`` 0..255 or ``float32`` in ``[0, 1]``,
            ``(N, H, W[, C])``.
        batch_size: examples per (global) batch.
        seed: integer seed of the order and of dynamic binarization.
        binarize: ``None``, ``"dynamic"``, ``"static"`` or ``"threshold"``.
        drop_remainder: drop each epoch's last, smaller batch.
    """

    def __init__(self, x, *, batch_size: int, seed: int = 0, binarize=None, drop_remainder=False):
        import tensorflow as tf

        self.batch_size = _check_batch_size(batch_size)
        self.seed = 0 if seed is None else int(seed)
        self.binarize = _check_binarize(binarize)
        self.drop_remainder = bool(drop_remainder)
        x, is_uint8 = _as_image_array(x)
        x = _binarize_array(x, is_uint8, self.binarize if self.binarize != "dynamic" else None)
        self._is_uint8 = is_uint8
        self.num_examples = len(x)
        self.image_shape = tuple(x.shape[1:])
        if self.drop_remainder:
            self.steps_per_epoch = self.num_examples // self.batch_size
            if self.steps_per_epoch == 0:
                raise ValueError(
                    f"drop_remainder=True with batch_size={self.batch_size} leaves no batch "
                    f"of {self.num_examples} examples."
                )
        else:
            self.steps_per_epoch = -(-self.num_examples // self.batch_size)
        # Created outside any distribution strategy: a plain host variable
        # that the input pipeline reads when an epoch's iterator starts.
        with tf.init_scope(), tf.device("/cpu:0"):
            self._x = tf.constant(x)
            self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="stream_epoch")
        self._perm_key = _derive_key(self.seed, "permutation")
        self._bin_key = _derive_key(self.seed, "binarize")

    @property
    def examples_per_epoch(self) -> int:
        """Images seen per full epoch (fewer than ``num_examples`` with ``drop_remainder``)."""
        if self.drop_remainder:
            return self.steps_per_epoch * self.batch_size
        return self.num_examples

    def examples_from_step(self, step: int) -> int:
        """Images in the batches ``step .. steps_per_epoch - 1`` of an epoch."""
        return self.examples_per_epoch - min(step * self.batch_size, self.examples_per_epoch)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iterator of :meth:`dataset` produce epoch ``epoch``."""
        self._epoch.assign(int(epoch))

    def permutation(self, epoch):
        """The order of the examples in epoch ``epoch`` (a tensor of indices)."""
        import tensorflow as tf

        epoch = tf.cast(epoch, tf.int64)
        key = tf.stack([tf.constant(self._perm_key, tf.int64), epoch])
        return tf.random.experimental.stateless_shuffle(
            tf.range(self.num_examples, dtype=tf.int64), seed=key
        )

    def _epoch_batches(self, epoch, start_step):
        import tensorflow as tf

        perm = self.permutation(epoch)
        batches = tf.data.Dataset.from_tensor_slices(perm).batch(
            self.batch_size, drop_remainder=self.drop_remainder
        )
        batches = batches.enumerate().skip(start_step)
        epoch = tf.cast(epoch, tf.int64)
        steps = tf.constant(self.steps_per_epoch, tf.int64)
        x_t, is_uint8, binarize, bkey = self._x, self._is_uint8, self.binarize, self._bin_key

        def fetch(i, idx):
            xb = _scale(tf.gather(x_t, idx), is_uint8)
            if binarize == "dynamic":
                key = tf.stack([tf.constant(bkey, tf.int64), epoch * steps + i])
                xb = _bernoulli(xb, key)
            return xb

        return batches.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def dataset(self):
        """One epoch per iteration; which epoch is read from :meth:`set_epoch`.

        The cardinality is ``steps_per_epoch``. Use it with the
        :meth:`callback` in ``model.fit`` (which sets the epoch).
        """
        import tensorflow as tf

        var = self._epoch

        def one_epoch(_):
            return self._epoch_batches(var.read_value(), 0)

        ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).flat_map(one_epoch)
        ds = ds.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch))
        return ds.prefetch(tf.data.AUTOTUNE)

    def partial_epoch(self, epoch: int, start_step: int):
        """Batches ``start_step ..`` of epoch ``epoch`` (the rest of an interrupted epoch)."""
        import tensorflow as tf

        if not 0 <= start_step < self.steps_per_epoch:
            raise ValueError(
                f"start_step must be in [0, {self.steps_per_epoch}), got {start_step}."
            )
        ds = self._epoch_batches(tf.constant(int(epoch), tf.int64), int(start_step))
        ds = ds.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch - start_step))
        return ds.prefetch(tf.data.AUTOTUNE)

    def callback(self):
        """A Keras callback that calls :meth:`set_epoch` at each epoch's start."""
        import keras

        stream = self

        class _SetStreamEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                stream.set_epoch(epoch)

        return _SetStreamEpoch()
