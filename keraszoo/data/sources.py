"""Where arrays come from: ``.npz`` archives, ``.npy`` files, tensorflow_datasets; binarization."""

from __future__ import annotations

import os
import pathlib
import zipfile
import zlib

import numpy as np

from keraszoo.data.catalog import DatasetInfo
from keraszoo.data.catalog import DatasetUnavailableError
from keraszoo.data.catalog import dataset_info
from keraszoo.data.catalog import parse_split
from keraszoo.data.catalog import split_slice

__all__ = ["DATA_DIR_ENV", "find_npz", "load_arrays", "read_array"]

#: Environment variable naming the folder that holds the ``.npz`` archives.
DATA_DIR_ENV = "KERASZOO_DATA_DIR"

#: Seed of ``binarize="static"``: fixed so that every run, every split slice
#: and every source sees the same binary images.
STATIC_BINARIZATION_SEED = 0

BINARIZE_MODES = ("dynamic", "static", "threshold")
SOURCES = ("tfds", "npz", "auto")


def evaluation_binarize(binarize):
    """How the test images of a run trained with ``binarize`` are binarized: the one rule.

    A run trained on dynamically binarized images is evaluated on the statically binarized split (a
    fixed sample, the literature's protocol); ``"static"`` and ``"threshold"`` evaluate as they trained;
    ``None`` or ``"none"``: grey levels.
    """
    if binarize in (None, "none"):
        return None
    if binarize == "dynamic":
        return "static"
    if binarize in BINARIZE_MODES:
        return binarize
    raise ValueError(f"binarize must be one of None, 'none', {', '.join(map(repr, BINARIZE_MODES))}; "
                     f"received {binarize!r}.")


#: Array names read as images from a user's ``.npz``, in order of preference.
IMAGE_KEYS = ("x_train", "x", "images")


# --------------------------------------------------------------------------- files


def data_dir_path(data_dir):
    """``data_dir``, else ``$KERASZOO_DATA_DIR``, as a path; ``None`` when neither is set."""
    d = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    return pathlib.Path(d).expanduser() if d else None


def find_npz(name: str, data_dir=None):
    """Path of the archive for ``name`` in ``data_dir`` / ``$KERASZOO_DATA_DIR``.

    Returns ``None`` when no directory is configured or no archive is there.
    """
    info = dataset_info(name)
    d = data_dir_path(data_dir)
    if d is None:
        return None
    for fname in info.npz_files:
        if (d / fname).is_file():
            return d / fname
    return None


def _pick_array(names, key, candidates):
    if key is not None:
        return key if key in names else None
    for name in candidates:
        if name in names:
            return name
    return names[0] if len(names) == 1 else None


def read_array(path, key=None, *, candidates=IMAGE_KEYS, what="images") -> np.ndarray:
    """The array of a ``.npy`` file, or one array of a ``.npz`` archive.

    From an archive: the array ``key``; without it the first of ``candidates``
    present, else its only array.

    Raises:
        ValueError: unreadable file, pickled objects, or no such / no single
            array (the message lists what the archive holds).
    """
    path = pathlib.Path(path).expanduser()
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            chosen = _pick_array(names, key, candidates)
            if chosen is not None:
                return archive[chosen]
    except (ValueError, EOFError, zipfile.BadZipFile) as err:  # pickled object arrays, corrupt files
        raise ValueError(f"Cannot read {path}: {err}") from err
    except IsADirectoryError:
        raise ValueError(f"Cannot read {path}: it is a folder, not a .npy file or .npz archive "
                         "(to read a folder of images, use keraszoo.data.from_folder).") from None
    if key is not None:
        raise ValueError(f"{path} has no array {key!r}; it holds {names}.")
    raise ValueError(
        f"{path} holds {names}; name the {what} {' or '.join(candidates)}, or pass key (--key)."
    )


def _unavailable_message(info: DatasetInfo, data_dir, *, tried_tfds=False, cause=None) -> str:
    d = data_dir_path(data_dir)
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
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"Cannot read {path}: it is not a NumPy .npz archive of arrays x_train, y_train, x_test, y_test "
            f"(numpy says: {err}). Replace it, or move it away to use another source.") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"Cannot read {path}: it holds a single array, not an .npz archive with keys "
                         "x_train, y_train, x_test, y_test.")
    with archive:
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
    return unsort_by_class(x, y)


#: the seed of the fixed order in which an archive sorted by class is read (see :func:`unsort_by_class`).
SORTED_ARCHIVE_SEED = 0


def unsort_by_class(x, y):
    """``(x, y)`` in a fixed random order if the labels are sorted by class, else unchanged.

    Some archives store each split class after class (``cifar10_jpeg.npz``: 5,000
    airplanes, then 5,000 automobiles ...). Read in that order, every "first N images"
    (``train[:10%]``, ``--limit``, ``test[:1000]``, an experiment budget) would be one or
    two classes. Such a split (labels non-decreasing, several images per class) is read
    in one fixed permutation (``SORTED_ARCHIVE_SEED``), the same on every machine, so
    that its slices hold every class and a whole split holds the same images as before.
    """
    classes = len(np.unique(y))
    if 1 < classes and 2 * classes <= len(y) and bool(np.all(np.diff(y) >= 0)):  # runs of one class each
        order = np.random.default_rng(SORTED_ARCHIVE_SEED).permutation(len(y))
        return x[order], y[order]
    return x, y


def _read_tfds(info: DatasetInfo, base: str, data_dir, download: bool):
    import tensorflow_datasets as tfds

    d = data_dir_path(data_dir)
    builder_dir = str(d) if d is not None else None
    try:
        prepared = tfds.builder(info.tfds_name, data_dir=builder_dir).is_prepared()
    except Exception:  # noqa: BLE001 - a broken tfds install is reported below
        prepared = False
    if not prepared and not download:
        raise DatasetUnavailableError(_unavailable_message(info, data_dir))
    try:
        ds = tfds.load(info.tfds_name, split=base, as_supervised=True, data_dir=builder_dir, download=download)
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


# --------------------------------------------------------------------------- binarization


def check_source(source):
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")


def check_binarize(binarize):
    """``binarize`` checked; ``None`` for no binarization."""
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


def binarize_array(x, is_uint8, binarize, *keys: str):
    """Static / threshold binarization of an array (keeps its scale).

    ``keys`` name the data, so that a static draw depends on it alone.
    """
    if binarize == "static":
        if is_uint8:
            return _binarize_static_uint8(x, *keys)
        rng = _static_rng(*keys)
        return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
    if binarize == "threshold":
        if is_uint8:
            return np.where(x >= 128, 255, 0).astype(np.uint8)
        return (x >= 0.5).astype(np.float32)
    return x


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
            :func:`keraszoo.data.load`.
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
    check_source(source)
    binarize = check_binarize(binarize)
    if binarize == "dynamic":
        raise ValueError(
            "binarize='dynamic' resamples every epoch and needs a tf.data pipeline: "
            "use keraszoo.data.load(..., binarize='dynamic'); load_arrays accepts "
            "None, 'static' or 'threshold'."
        )
    try:
        known = np.dtype(dtype) in (np.dtype("float32"), np.dtype("uint8"))
    except TypeError:  # np.dtype("int7"): "data type 'int7' not understood"
        known = False
    if not known:
        raise ValueError(f"dtype must be 'float32' or 'uint8', got {dtype!r}.")
    base, bounds = parse_split(split, info)
    if source == "auto":
        source = "npz" if find_npz(info.name, data_dir) is not None else "tfds"
    if source == "npz":
        x, y = _read_npz(info, base, data_dir)
    else:
        x, y = _read_tfds(info, base, data_dir, download)
    # Binarize the whole split before slicing so that an image's binary
    # version does not depend on how the split is sliced.
    x = binarize_array(x, True, binarize, info.name, base)
    sl = split_slice(len(x), bounds)
    x, y = x[sl], y[sl]
    if np.dtype(dtype) == np.dtype("float32"):
        x = x.astype(np.float32) / np.float32(255.0)
    return x, y
