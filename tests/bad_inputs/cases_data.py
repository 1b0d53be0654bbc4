"""Bad inputs of the data layer, ``keraszoo.data``: image folders and files, arrays, archives, dataset names.

No network: the tfds cases point ``data_dir`` at an empty folder outside ``in/``
(so a half-finished download would count as a file left behind), and the
download, when tried, must fail quickly with the how-to-fix message.
"""

from __future__ import annotations

import numpy as np

from tests.bad_inputs import shared
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import inputs

AREA = "data"


def case(id, description, run, error, match, **kwargs):
    return Case(id=id, area=AREA, description=description, run=run, error=error, match=match, **kwargs)


def _data():
    from keraszoo import data

    return data


def _load_image(path):
    from keraszoo.data import images

    return images.load_image(path)


# --------------------------------------------------------------------------- preparing inputs




def _file(name, content):
    """tmp/in/<name>: ``content`` bytes, or a callable writing the file at the path it gets."""

    def make(tmp):
        path = inputs(tmp) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content(path)
        return path

    return make


def _npz(**arrays):
    def write(path):
        np.savez(path, **arrays)

    return write


def _mnist_dir(content):
    """tmp/in/data holding a mnist.npz (``content`` as for :func:`_file`), the data_dir of the case."""

    def make(tmp):
        _file("data/mnist.npz", content)(tmp)
        return inputs(tmp) / "data"

    return make


_MNIST_FLOAT = _npz(x_train=np.zeros((2, 28, 28), np.float32), y_train=np.zeros(2, np.int64),
                    x_test=np.zeros((2, 28, 28), np.float32), y_test=np.zeros(2, np.int64))


# --------------------------------------------------------------------------- the cases


def _folder_cases():
    def from_directory(make, **kwargs):
        return lambda tmp: _data().from_directory(make(tmp), **kwargs)

    return [
        case("folder-missing", "data.from_directory('no/such/folder')",
             lambda tmp: _data().from_directory(tmp / "no" / "such" / "folder"), ValueError,
             r"Image folder '.*/no/such/folder' does not exist or is not a directory"),
        case("folder-empty", "data.from_directory(folder) on an empty folder",
             from_directory(shared.folder_with()), ValueError, r"No images \(\.png, \.jpg, \.jpeg, \.bmp, \.gif\) found under"),
        case("folder-no-images", "data.from_directory(folder) on a folder of .txt and .csv files",
             from_directory(shared.folder_with(("a.txt", b"hello"), ("b.csv", b"1,2"))), ValueError, r"No images .* found under"),
        case("folder-unreadable-image", "data.from_directory(folder) with a .png that is not an image",
             from_directory(shared.folder_with(("ok.png", (8, 8)), ("broken.png", b"not a png"))), ValueError,
             r"Cannot read image '.*broken\.png'"),
        case("folder-mixed-sizes", "data.from_directory(folder) with 8x8 and 9x9 images, no image_size",
             from_directory(shared.folder_with(("a.png", (8, 8)), ("b.png", (9, 9)))), ValueError,
             r"have different sizes .*Pass image_size=\(h, w\) and resize=True"),
        case("folder-wrong-size", "data.from_directory(folder, image_size=(28, 28)) with 8x8 images",
             from_directory(shared.folder_with(("a.png", (8, 8))), image_size=(28, 28)), ValueError,
             r"1 of 1 images under .* are not 28x28 as expected.*Pass resize=True"),
        case("folder-color-into-grayscale", "data.from_directory(folder, image_size=(8, 8, 1)) with color images",
             from_directory(shared.folder_with(("a.png", ((8, 8, 3), (255, 0, 0)))), image_size=(8, 8, 1)), ValueError,
             r"has 3 channel\(s\), expected 1.*color_mode='grayscale'"),
        case("folder-batch-size-zero", "data.from_directory(folder, batch_size=0)",
             from_directory(shared.folder_with(("a.png", (8, 8))), batch_size=0), ValueError, r"`batch_size` must be a positive integer"),
        case("folder-unknown-color-mode", "data.from_directory(folder, color_mode='cmyk')",
             from_directory(shared.folder_with(("a.png", (8, 8))), color_mode="cmyk"), ValueError,
             r"color_mode must be 'grayscale', 'rgb' or None, got 'cmyk'"),
        case("folder-bad-image-size", "data.from_directory(folder, image_size=(0, 5))",
             from_directory(shared.folder_with(("a.png", (8, 8))), image_size=(0, 5)), ValueError,
             r"image_size must be \(height, width\)"),
        case("folder-unknown-binarize", "data.from_directory(folder, binarize='yes')",
             from_directory(shared.folder_with(("a.png", (8, 8))), binarize="yes"), ValueError,
             r"binarize must be None, 'dynamic', 'static' or 'threshold'"),
        case("folder-resize-without-size", "data.from_directory(folder, resize=True) without image_size",
             from_directory(shared.folder_with(("a.png", (8, 8))), resize=True), ValueError, r"resize=True needs image_size"),
        case("image-file-missing", "data.images.load_image('missing.png')",
             lambda tmp: _load_image(tmp / "missing.png"), ValueError,
             r"Image '.*missing\.png' does not exist or is not a file"),
    ]


def _array_cases():
    def read(make, key=None):
        return lambda tmp: _data().read_array(make(tmp), key)

    return [
        case("npy-corrupt", "data.read_array('x.npy') on a file that is not a NumPy array",
             read(_file("x.npy", b"\x93NUMPYxx garbage")), ValueError, r"Cannot read .*x\.npy"),
        case("npz-corrupt", "data.read_array('x.npz') on a file that is not a zip archive",
             read(_file("x.npz", b"PK\x03\x04 garbage")), ValueError, r"Cannot read .*x\.npz: File is not a zip file"),
        case("npz-no-image-key", "data.read_array('x.npz') on an archive holding arrays 'a' and 'b'",
             read(_file("x.npz", _npz(a=np.zeros(3), b=np.zeros(3)))), ValueError,
             r"holds \['a', 'b'\]; name the images x_train or x or images, or pass key"),
        case("npz-missing-key", "data.read_array('x.npz', key='x_test') on an archive without it",
             read(_file("x.npz", _npz(a=np.zeros(3))), key="x_test"), ValueError, r"has no array 'x_test'; it holds \['a'\]"),
        case("npy-pickled-objects", "data.read_array('x.npy') on a pickled object array",
             read(_file("x.npy", lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True))), ValueError,
             r"Object arrays cannot be loaded when allow_pickle=False"),
        case("npy-missing", "data.read_array('missing.npy')",
             lambda tmp: _data().read_array(tmp / "missing.npy"), FileNotFoundError, r"No such file or directory: '.*missing\.npy'"),
        case("npy-is-a-folder", "data.read_array('x.npy') where x.npy is a folder",
             read(lambda tmp: (inputs(tmp) / "x.npy").mkdir() or inputs(tmp) / "x.npy"), (ValueError, FileNotFoundError), r"x\.npy"),
        case("numpy-2d", "data.from_numpy(x) with a (2, 3) array",
             lambda tmp: _data().from_numpy(np.zeros((2, 3))), ValueError, r"must have shape \(N, H, W\) or \(N, H, W, C\)"),
        case("numpy-float-0-255", "data.from_numpy(x) with float pixels 0..255",
             lambda tmp: _data().from_numpy(np.full((2, 4, 4, 1), 200.0)), ValueError, r"divide by 255 or cast to uint8"),
        case("numpy-int-above-255", "data.from_numpy(x) with integer pixels up to 300",
             lambda tmp: _data().from_numpy(np.full((2, 4, 4, 1), 300)), ValueError, r"8-bit pixel values 0\.\.255, found 300\.\.300"),
        case("numpy-empty", "data.from_numpy(x) with no images",
             lambda tmp: _data().from_numpy(np.zeros((0, 4, 4, 1))), ValueError, r"holds no images"),
        case("numpy-strings", "data.from_numpy(x) with an array of strings",
             lambda tmp: _data().from_numpy(np.array([["a"]])), ValueError, r"must be a numeric image array"),
        case("numpy-channels-first", "data.from_numpy(x) with channels-first (N, 5, 4, 4) data",
             lambda tmp: _data().from_numpy(np.zeros((2, 4, 4, 5))), ValueError, r"x\.transpose\(0, 2, 3, 1\)"),
        case("numpy-nan", "data.prepare_images(x) with NaN pixels",
             lambda tmp: _data().prepare_images(np.full((2, 4, 4, 1), np.nan)), ValueError, r"contains NaN or infinite values"),
        case("numpy-wrong-size", "data.prepare_images(x, (8, 8, 1)) with 4x4 images",
             lambda tmp: _data().prepare_images(np.zeros((2, 4, 4, 1)), (8, 8, 1)), ValueError,
             r"holds 4x4 images, expected 8x8.*Pass resize=True"),
        case("stream-batch-size-zero", "data.EpochStream(x, batch_size=0)",
             lambda tmp: _data().EpochStream(np.zeros((2, 4, 4, 1), np.float32), batch_size=0), ValueError,
             r"`batch_size` must be a positive integer"),
    ]


def _dataset_cases():
    def load_arrays(*args, data_dir=None, **kwargs):
        def run(tmp):
            return _data().load_arrays(*args, data_dir=data_dir(tmp) if data_dir else None, **kwargs)

        return run

    def empty_dir(tmp):
        return inputs(tmp)

    return [
        case("dataset-unknown", "data.load_arrays('mnsit')", load_arrays("mnsit"), ValueError,
             r"Unknown dataset 'mnsit'\. Known datasets: cifar10, fashion_mnist, mnist\. Did you mean 'mnist'"),
        case("dataset-tfds-only-name", "data.load('emnist') (a tensorflow_datasets name keraszoo does not know)",
             lambda tmp: _data().load("emnist"), ValueError, r"Unknown dataset 'emnist'.*from_directory\(\) or from_numpy\(\)"),
        case("dataset-not-a-string", "data.load_arrays(3)", load_arrays(3), ValueError, r"Dataset name must be a string, got int"),
        case("dataset-unknown-split", "data.load_arrays('mnist', 'valid')", load_arrays("mnist", "valid", source="npz", data_dir=empty_dir),
             ValueError, r"Dataset 'mnist' has no split 'valid'; available: train, test"),
        case("dataset-bad-split-slice", "data.load_arrays('mnist', 'train[::2]')",
             load_arrays("mnist", "train[::2]", source="npz", data_dir=empty_dir), ValueError, r"Cannot parse split 'train\[::2\]'"),
        case("dataset-unknown-source", "data.load_arrays('mnist', source='web')", load_arrays("mnist", source="web"), ValueError,
             r"source must be one of \('tfds', 'npz', 'auto'\)"),
        case("dataset-dynamic-binarize-arrays", "data.load_arrays('mnist', binarize='dynamic')",
             load_arrays("mnist", binarize="dynamic"), ValueError,
             r"binarize='dynamic' resamples every epoch and needs a tf\.data pipeline"),
        case("dataset-bad-dtype", "data.load_arrays('mnist', dtype='int7')", load_arrays("mnist", dtype="int7"), (ValueError, TypeError),
             r"dtype must be 'float32' or 'uint8'"),
        case("data-dir-without-archives", "data.load_arrays('mnist', source='npz', data_dir=folder) on a folder without mnist.npz",
             load_arrays("mnist", source="npz", data_dir=empty_dir), FileNotFoundError,
             r"Dataset 'mnist' is not available offline\. No archive mnist\.npz in .*KERASZOO_DATA_DIR"),
        case("archive-without-keys", "data.load_arrays('mnist', source='npz') on a mnist.npz without x_train/y_train",
             load_arrays("mnist", source="npz", data_dir=_mnist_dir(_npz(foo=np.zeros(3)))), ValueError,
             r"has no array\(s\) \['x_train', 'y_train'\]; expected keys x_train, y_train, x_test, y_test, found \['foo'\]"),
        case("archive-float-images", "data.load_arrays('mnist', source='npz') on a mnist.npz of float images",
             load_arrays("mnist", source="npz", data_dir=_mnist_dir(_MNIST_FLOAT)), ValueError, r"x_train must be uint8 \(0\.\.255\)"),
        case("archive-corrupt", "data.load_arrays('mnist', source='npz') on a mnist.npz that is not an archive",
             load_arrays("mnist", source="npz", data_dir=_mnist_dir(b"garbage, not a zip")), ValueError, r"mnist\.npz"),
        case("tfds-not-downloaded", "data.load_arrays('mnist', source='tfds', download=False) with nothing prepared",
             lambda tmp: _data().load_arrays("mnist", "test", source="tfds", data_dir=tmp / "tfds", download=False), FileNotFoundError,
             r"Dataset 'mnist' is not available offline.*tensorflow_datasets downloads 'mnist' once"),
        case("tfds-download-offline", "data.load_arrays('fashion_mnist', source='tfds') with the download servers unreachable",
             lambda tmp: _data().load_arrays("fashion_mnist", "test", source="tfds", data_dir=tmp / "tfds"), FileNotFoundError,
             r"Dataset 'fashion_mnist' is not available offline.*tensorflow_datasets failed with", timeout=60),
    ]


CASES = _folder_cases() + _array_cases() + _dataset_cases()
