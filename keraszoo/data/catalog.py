"""The datasets keraszoo knows: names, aliases, shapes, splits and split slicing."""

from __future__ import annotations

import dataclasses
import difflib
import re

__all__ = ["DatasetInfo", "DatasetUnavailableError", "dataset_info", "list_datasets"]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset known to :func:`keraszoo.data.load`.

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


_MNIST_SPLITS = {"train": 60000, "test": 10000}

_DATASETS = {
    info.name: info
    for info in (
        DatasetInfo("mnist", (28, 28, 1), 10, _MNIST_SPLITS, "mnist", ("mnist.npz",),
                    "MNIST handwritten digits, 28x28 grayscale"),
        DatasetInfo("fashion_mnist", (28, 28, 1), 10, _MNIST_SPLITS, "fashion_mnist", ("fashion_mnist.npz",),
                    "Fashion-MNIST clothing images, 28x28 grayscale"),
        # A lossless copy wins over the JPEG re-encode when both are present.
        DatasetInfo("cifar10", (32, 32, 3), 10, {"train": 50000, "test": 10000}, "cifar10",
                    ("cifar10.npz", "cifar10_jpeg.npz"), "CIFAR-10 natural images, 32x32 RGB"),
    )
}
_ALIASES = {"fashion-mnist": "fashion_mnist", "fmnist": "fashion_mnist", "cifar-10": "cifar10"}


class DatasetUnavailableError(FileNotFoundError):
    """A dataset is neither prepared locally nor downloadable.

    The message says how to make it available (``KERASZOO_DATA_DIR``,
    ``source="npz"``, a tfds download).
    """

    def __str__(self):  # FileNotFoundError would print "[Errno ...]" otherwise
        return str(self.args[0]) if self.args else ""


def list_datasets() -> list:
    """Names accepted by :func:`keraszoo.data.load` and :func:`keraszoo.data.load_arrays`."""
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


def parse_split(split: str, info: DatasetInfo):
    """``"train[10%:]"`` -> (``"train"``, ``("10%", None)``) with tfds semantics."""
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


def split_slice(n: int, bounds) -> slice:
    """The ``slice`` of ``n`` examples that :func:`parse_split`'s bounds select."""

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
