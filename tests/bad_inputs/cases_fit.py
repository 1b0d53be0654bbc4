"""Bad training data: ``model.fit`` / ``model.evaluate`` with arrays, ``tf.data`` datasets, generators and
``keras.utils.PyDataset``, their counting arguments, and ``keraszoo train`` / ``keraszoo finetune``.

The checks themselves are in ``keraszoo/models/checked_data.py`` (``TrainingData``). Each ``run``
receives an empty tmp folder; inputs it prepares go under ``tmp / "in"``, outputs elsewhere.
"""

from __future__ import annotations

import functools

import numpy as np

from tests.bad_inputs import shared
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import ErrorExit
from tests.bad_inputs.registry import UsageExit
from tests.bad_inputs.registry import inputs
from tests.bad_inputs.registry import run_cli

AREA = "training"


def case(id, description, run, error, match, area=AREA, **kwargs):
    return Case(id=id, area=area, description=description, run=run, error=error, match=match, **kwargs)


@functools.cache
def _model():
    """A tiny compiled dense AutoEncoder (8x8x1 -> 2); the failing calls never get to train it."""
    from keraszoo.models import AutoEncoder

    model = AutoEncoder(input_shape=shared.SHAPE, latent_dim=2, hidden_dims=(4,), seed=0)
    model.compile()
    return model


def _fit(data, **kwargs):
    """``model.fit(data(), epochs=1, verbose=0, **kwargs)``; ``data`` builds the input when the case runs."""

    def run(tmp):
        return _model().fit(data(), **{"epochs": 1, "verbose": 0, **kwargs})

    return run


def x(value=0.5, n=4, shape=shared.SHAPE, dtype="float32"):
    return shared.images(n, shape, value, dtype)


def with_value(index, value):
    """Four good images, with ``value`` at one pixel of image ``index``."""
    images = x()
    images[index, 3, 4, 0] = value
    return images


def _tf():
    import tensorflow as tf

    return tf


def dataset(images, batch=2):
    return _tf().data.Dataset.from_tensor_slices(images).batch(batch)


def generator(*batches):
    def make():
        return (b for b in batches)

    return make


def _py_dataset(images, batch=2):
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()

        def __len__(self):
            return len(images) // batch

        def __getitem__(self, index):
            return images[index * batch:(index + 1) * batch]

    return Batches()


# --------------------------------------------------------------------------- arrays


def _array_cases():
    return [
        case("fit-uint8-range-floats", "model.fit(x) with float pixels in 0..255 (a forgotten / 255)",
             _fit(lambda: x(value=255.0)), ValueError,
             r"fit\(x\) expects pixel values in \[0, 1\]; received values in \[255, 255\].*divide uint8-range pixels by 255"),
        case("fit-uint8-dtype", "model.fit(x) with uint8 pixels",
             _fit(lambda: x(value=200, dtype="uint8")), ValueError,
             r"fit\(x\) expects floating point images in \[0, 1\] \(for uint8 pixels use x\.astype\('float32'\) / 255\); "
             r"received dtype uint8"),
        case("fit-int-dtype", "model.fit(x) with int64 pixels",
             _fit(lambda: x(value=1, dtype="int64")), ValueError, r"expects floating point images .*received dtype int64"),
        case("fit-nan", "model.fit(x) with a NaN pixel in image 2",
             _fit(lambda: with_value(2, np.nan)), ValueError,
             r"received NaN values \(1 NaN, the first in x\[2\]\); expected finite values in \[0, 1\]"),
        case("fit-inf", "model.fit(x) with an Inf pixel in image 1",
             _fit(lambda: with_value(1, np.inf)), ValueError, r"received Inf values \(1 Inf, the first in x\[1\]\); expected finite"),
        case("fit-minus-one-to-one", "model.fit(x) with images scaled to [-1, 1]",
             _fit(lambda: x(value=-0.5)), ValueError, r"expects pixel values in \[0, 1\].*use \(x \+ 1\) / 2"),
        case("fit-wrong-size", "model.fit(x) with 9x9 images for an 8x8 model",
             _fit(lambda: x(shape=(9, 9, 1))), ValueError,
             r"expects images of shape \(batch, 8, 8, 1\).*received shape \(4, 9, 9, 1\)"),
        case("fit-wrong-channels", "model.fit(x) with RGB images for a grayscale model",
             _fit(lambda: x(shape=(8, 8, 3))), ValueError, r"takes 1 channel\(s\), the input has 3"),
        case("fit-1d-input", "model.fit(x) with a flat vector of 64 pixels",
             _fit(lambda: np.full(64, 0.5, "float32")), ValueError, r"expects images of shape \(batch, 8, 8, 1\).*received shape \(64,\)"),
        case("fit-empty-array", "model.fit(x) with no images",
             _fit(lambda: x(n=0)), ValueError, r"received no images \(shape \(0, 8, 8, 1\)\); expected at least one image"),
        case("fit-tuple-as-x", "model.fit((x, labels)): images and labels passed together as x",
             _fit(lambda: (x(), np.arange(4))), ValueError, r"takes the images as one array.*Labels, if any, go in y"),
        case("fit-epoch-stream-itself", "model.fit(stream) with a keraszoo.data.EpochStream instead of stream.dataset()",
             lambda tmp: _model().fit(__import__("keraszoo.data", fromlist=["EpochStream"]).EpochStream(x(), batch_size=2),
                                      verbose=0),
             ValueError, r"pass stream\.dataset\(\)"),
        case("fit-validation-out-of-range", "model.fit(x, validation_data=(x_val,)) with x_val in 0..255",
             _fit(lambda: x(), validation_data=(x(value=255.0),)), ValueError,
             r"fit\(validation_data\) expects pixel values in \[0, 1\].*x_val\[0\]; divide uint8-range pixels by 255"),
        case("evaluate-uint8-range-floats", "model.evaluate(x) with float pixels in 0..255",
             lambda tmp: _model().evaluate(x(value=255.0), verbose=0), ValueError,
             r"evaluate\(x\) expects pixel values in \[0, 1\]"),
    ]


# --------------------------------------------------------------------------- streams


def _stream_cases():
    return [
        case("fit-dataset-bad-element-spec", "model.fit(ds) with a tf.data dataset of 9x9 images for an 8x8 model",
             _fit(lambda: dataset(x(shape=(9, 9, 1)))), ValueError,
             r"expects images of shape \(batch, 8, 8, 1\).*received shape \(None, 9, 9, 1\) \(the dataset's element_spec\)"),
        case("fit-keraszoo-pipeline-wrong-channels", "model.fit(data.from_numpy(x)) with RGB images for a grayscale model",
             _fit(lambda: __import__("keraszoo.data", fromlist=["from_numpy"]).from_numpy(x(shape=(8, 8, 3)), batch_size=2)),
             ValueError, r"received shape \(None, 8, 8, 3\) \(the dataset's element_spec\) \(the model takes 1 channel\(s\)"),
        case("fit-dataset-unbatched", "model.fit(ds) with a dataset of single images (no .batch)",
             _fit(lambda: _tf().data.Dataset.from_tensor_slices(x())), ValueError, r"yields single images: batch it"),
        case("fit-dataset-uint8", "model.fit(ds) with a dataset of uint8 pixels",
             _fit(lambda: dataset(x(value=200, dtype="uint8"))), ValueError,
             r"expects floating point images in \[0, 1\]; the dataset yields dtype uint8"),
        case("fit-dataset-out-of-range", "model.fit(ds) with a dataset whose first batch holds 0..255 floats",
             _fit(lambda: dataset(x(value=255.0))), ValueError,
             r"fit\(x\) expects pixel values in \[0, 1\]; a batch of the dataset holds values in \[255, 255\] "
             r"\(divide uint8-range pixels by 255\)"),
        case("fit-dataset-nan-later", "model.fit(ds) with a (x, label) dataset whose second batch has a NaN",
             _fit(lambda: _tf().data.Dataset.from_tensor_slices((with_value(3, np.nan), np.arange(4))).batch(2)), ValueError,
             r"received NaN values in a batch of the dataset; expected finite values in \[0, 1\]"),
        case("fit-dataset-empty", "model.fit(ds) with a dataset of no batches",
             _fit(lambda: dataset(x(n=0))), ValueError, r"a dataset of no batches \(cardinality 0\)"),
        case("fit-dataset-dict", "model.fit(ds) with a dataset of dicts",
             _fit(lambda: _tf().data.Dataset.from_tensor_slices({"image": x()}).batch(2)), ValueError,
             r"takes a dataset of image batches x or \(x, y\) tuples; received a dataset whose elements are \{'image'"),
        case("fit-validation-dataset-out-of-range", "model.fit(x, validation_data=ds) with a dataset in 0..255",
             _fit(lambda: x(), validation_data=dataset(x(value=255.0))), ValueError,
             r"fit\(validation_data\) expects pixel values in \[0, 1\]; a batch of the dataset holds values in \[255, 255\]"),
        case("fit-generator-nan-batch", "model.fit(gen) with a generator whose third batch has a NaN",
             _fit(generator(x()[:2], x()[2:], with_value(1, np.nan)[:2])), ValueError,
             r"received NaN values \(1 NaN, the first in image 1 of batch 3 of the generator\)"),
        case("fit-generator-wrong-size", "model.fit(gen) with a generator of 9x9 batches",
             _fit(generator((x(shape=(9, 9, 1)),))), ValueError,
             r"expects images of shape \(batch, 8, 8, 1\).*received shape \(4, 9, 9, 1\) in batch 1 of the generator"),
        case("fit-pydataset-out-of-range", "model.fit(PyDataset) whose batches hold 0..255 floats",
             _fit(lambda: _py_dataset(x(value=255.0))), ValueError,
             r"expects pixel values in \[0, 1\].*image 0 of PyDataset\[0\]; divide uint8-range pixels by 255"),
    ]


# --------------------------------------------------------------------------- arguments


def _argument_cases():
    return [
        case("fit-batch-size-zero", "model.fit(x, batch_size=0)",
             _fit(lambda: x(), batch_size=0), ValueError, r"`batch_size` must be a positive integer or None; received 0"),
        case("fit-epochs-zero", "model.fit(x, epochs=0)",
             _fit(lambda: x(), epochs=0), ValueError, r"`epochs` must be a positive integer; received 0 \(nothing would be trained\)"),
        case("fit-steps-per-epoch-zero", "model.fit(x, steps_per_epoch=0)",
             _fit(lambda: x(), steps_per_epoch=0), ValueError, r"`steps_per_epoch` must be a positive integer or None; received 0"),
        case("fit-check-data-not-a-bool", "model.fit(x, check_data='yes')",
             _fit(lambda: x(), check_data="yes"), ValueError, r"`check_data` must be True, False or None; received 'yes'"),
    ]


# --------------------------------------------------------------------------- the command line


def _npy(name, array):
    def make(tmp):
        path = inputs(tmp) / name
        np.save(path, array)
        return path

    return make


def _tiny_mnist(tmp):
    """``in/mnist/mnist.npz``: 8 constant 28x28 uint8 digits for train and test."""
    folder = inputs(tmp) / "mnist"
    folder.mkdir(exist_ok=True)
    digits = np.full((8, 28, 28), 30, np.uint8)
    np.savez(folder / "mnist.npz", x_train=digits, y_train=np.zeros(8, np.int64), x_test=digits,
             y_test=np.zeros(8, np.int64))
    return folder


def cli(id, description, argv, error, match):
    """A ``keraszoo`` command line; items of ``argv`` may be callables ``item(tmp)``."""

    def run(tmp):
        return run_cli([item(tmp) if callable(item) else item for item in argv])

    return case(id, description, run, error, match, area="CLI")


def _finetune(data):
    return ["finetune", lambda tmp: shared.ae_folder(), "--data", data, "--out", lambda tmp: tmp / "out" / "ft",
            "--epochs", "1", "--verbose", "0"]


def _train(*extra):
    return ["train", "--model", "ae", "--dataset", "mnist", "--data-source", "npz", "--data-dir", _tiny_mnist,
            "--hidden-dims", "4", "--latent-dim", "2", "--batch-size", "4", "--verbose", "0",
            "--out", lambda tmp: tmp / "out" / "run", *extra]


def _cli_cases():
    return [
        cli("cli-finetune-nan-npy", "keraszoo finetune MODEL --data x.npy --out ft (a NaN pixel)",
            _finetune(_npy("x.npy", with_value(1, np.nan))), ErrorExit,
            r"^keraszoo: error: --data .*x\.npy: x contains NaN or infinite values"),
        cli("cli-finetune-float-0-255-npy", "keraszoo finetune MODEL --data x.npy --out ft (float pixels 0..255)",
            _finetune(_npy("x.npy", x(value=255.0))), ErrorExit, r"Float x must be scaled to \[0, 1\], found 255\.\.255.*divide by 255"),
        cli("cli-finetune-empty-npy", "keraszoo finetune MODEL --data x.npy --out ft (no images)",
            _finetune(_npy("x.npy", x(n=0))), ErrorExit, r"x holds no images \(shape \(0, 8, 8, 1\)\)"),
        cli("cli-finetune-wrong-size-npy", "keraszoo finetune MODEL --data x.npy --out ft (9x9 images, 8x8 model)",
            _finetune(_npy("x.npy", x(shape=(9, 9, 1)))), ErrorExit, r"holds 9x9 images, expected 8x8"),
        cli("cli-finetune-val-split-leaves-nothing", "keraszoo finetune MODEL --data one.npy --val-split 0.5 (1 image)",
            _finetune(_npy("one.npy", x(n=1))) + ["--val-split", "0.5"], ErrorExit,
            r"No training images left: --val-split 0\.5 holds out 1 of the 1 images"),
        cli("cli-train-val-split-leaves-nothing", "keraszoo train ... --limit 1 --val-split 0.5",
            _train("--limit", "1", "--val-split", "0.5"), ErrorExit,
            r"No training images left: --val-split 0\.5 holds out 1 of the 1 images"),
        cli("cli-train-epochs-zero", "keraszoo train ... --epochs 0", _train("--epochs", "0"), UsageExit,
            r"argument --epochs: expected a positive integer, got '0'"),
    ]


CASES = _array_cases() + _stream_cases() + _argument_cases() + _cli_cases()
