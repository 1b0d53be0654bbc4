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

Images of another size are resized only when asked (``resize=True``);
lossless channel changes (grayscale to RGB, gray images stored as RGB, a
fully opaque alpha channel) happen silently, lossy ones (color to grayscale,
transparency) only with ``color_mode=...``; otherwise images are refused with
a ``ValueError`` that says what was expected and what was found. The same
rules hold for folders, single files (:mod:`keraszoo.data.images`) and arrays.

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

Modules: :mod:`~keraszoo.data.catalog` (dataset names and splits),
:mod:`~keraszoo.data.sources` (archives, tfds, binarization),
:mod:`~keraszoo.data.images` (image files and arrays),
:mod:`~keraszoo.data.pipelines` (array pipelines),
:mod:`~keraszoo.data.folders` (image folders),
:mod:`~keraszoo.data.stream` (:class:`EpochStream`). Importing this package
imports NumPy only; TensorFlow and Pillow are imported when first needed.
"""

from keraszoo.data.catalog import DatasetInfo
from keraszoo.data.catalog import DatasetUnavailableError
from keraszoo.data.catalog import dataset_info
from keraszoo.data.catalog import list_datasets
from keraszoo.data.folders import from_directory
from keraszoo.data.images import COLOR_MODES
from keraszoo.data.images import IMAGE_EXTENSIONS
from keraszoo.data.images import prepare_images
from keraszoo.data.pipelines import from_numpy
from keraszoo.data.pipelines import load
from keraszoo.data.sources import BINARIZE_MODES
from keraszoo.data.sources import DATA_DIR_ENV
from keraszoo.data.sources import SOURCES
from keraszoo.data.sources import STATIC_BINARIZATION_SEED
from keraszoo.data.sources import evaluation_binarize
from keraszoo.data.sources import find_npz
from keraszoo.data.sources import load_arrays
from keraszoo.data.sources import read_array
from keraszoo.data.stream import EpochStream

__all__ = [
    "BINARIZE_MODES",
    "COLOR_MODES",
    "DATA_DIR_ENV",
    "DatasetInfo",
    "DatasetUnavailableError",
    "EpochStream",
    "IMAGE_EXTENSIONS",
    "SOURCES",
    "STATIC_BINARIZATION_SEED",
    "dataset_info",
    "evaluation_binarize",
    "find_npz",
    "from_directory",
    "from_numpy",
    "list_datasets",
    "load",
    "load_arrays",
    "prepare_images",
    "read_array",
]
