"""Export for serving: a TensorFlow SavedModel with the whole autoencoder API, or a LiteRT / ONNX file.

Keras' own ``keras.Model.export`` traces ``call`` with the input shapes that the
model recorded at its first call. A keraszoo model builds its sub-networks at
construction and is usually never called before it is exported (a model from
``keraszoo.load`` never is), so Keras refused with "The model provided has never
called". Here the signatures come from the model's own contract instead: images
``(None,) + model.image_shape`` and codes ``(None, model.latent_dim)``, float32,
any batch size (a model that declares ``code_shape`` and ``code_dtype`` -- the
VQ-VAE, whose codes are an int32 grid of codebook indices -- gets
``(None,) + code_shape`` of that dtype for ``encode``'s output and ``decode``'s input).

Endpoints of the ``tf_saved_model`` format (each is also a TF Serving
signature of the same name; ``serving_default`` is ``serve``)::

    serve(x)        x float32 (batch, H, W, C) in [0, 1] -> reconstructions (batch, H, W, C)
    reconstruct(x)  the same function under its keraszoo name
    encode(x)       -> codes float32 (batch, latent_dim): model.encode(x), the posterior mean for VAE/HVAE
    decode(z)       z float32 (batch, latent_dim) -> images (batch, H, W, C), the decoder's mean
    sample(n, seed) generative variants only: n int32 scalar, seed int64 scalar -> (n, H, W, C) images

``sample(n, seed)`` returns exactly ``model.sample(n, seed=seed)``: the random
draws follow the sequence of a ``keras.random.SeedGenerator(seed)``, so the same
seed gives the same images in Python and from the server, and an artifact has
no random state of its own (every call with the same seed answers the same).

The served functions skip the value checks of the Python API (finite values in
[0, 1]): inside a traced graph there are no values to check, only shapes and
dtypes, which the signatures fix. ``"litert"`` and ``"onnx"`` are Keras' own
exporters (``keras.Model.export``), given the image signature; they hold the
reconstruction function only, since Keras' LiteRT export and one ``.onnx``
graph have a single entry point: the LiteRT signature ``serving_default`` and
the ONNX graph both take an input named ``x``. Only the TensorFlow backend
exports (the served graphs are TensorFlow graphs). Every format is written next to its target first and renamed into
place, so a failed export never leaves a partial artifact behind.
"""

import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import keras
from keras import ops

from keraszoo.export_targets import CONVERTER_PACKAGES  # noqa: F401 - re-exported, tests patch it
from keraszoo.export_targets import FORMATS  # noqa: F401 - re-exported
from keraszoo.export_targets import SAVED_MODEL_FILE  # noqa: F401 - re-exported
from keraszoo.export_targets import SUFFIXES  # noqa: F401 - re-exported
from keraszoo.export_targets import check_converter
from keraszoo.export_targets import check_target
from keraszoo.models.base import BaseAutoEncoder


class _SeedSequence(keras.random.SeedGenerator):
    """The seeds ``[seed, 0], [seed, 1], ...`` of ``SeedGenerator(seed)``, without a state variable.

    ``SeedGenerator.__init__`` creates a variable, which a traced function may
    not do, and a variable would make the served ``sample`` depend on the calls
    before it. Keras' random ops take any ``SeedGenerator`` (they only call
    ``next``), so this subclass hands them the same seeds that
    ``model.sample(n, seed=seed)`` draws, from a seed tensor.
    """

    def __init__(self, seed):  # noqa: D107 - deliberately no super().__init__ (see the class docstring)
        import tensorflow as tf

        self.name = "export_seed_sequence"
        self._seed = tf.cast(seed, tf.int64)  # the seed dtype of Keras' TensorFlow backend
        self._count = 0

    def next(self, ordered=True):
        import tensorflow as tf

        del ordered  # every draw advances the counter, like SeedGenerator.next(ordered=True)
        seed = tf.stack([self._seed, tf.constant(self._count, dtype=self._seed.dtype)])
        self._count += 1
        return seed


def _check_model(model):
    if not isinstance(model, BaseAutoEncoder):
        raise TypeError(f"export_model expects a keraszoo autoencoder (a BaseAutoEncoder); received {type(model).__name__}.")
    if model.requires_labels:
        raise NotImplementedError(f"{type(model).__name__} is conditional (every call takes class labels), and the served "
                                  "endpoints take images or codes alone: it cannot be exported yet. Serve it from "
                                  "Python (keraszoo.load).")


def _as_float32(tensor):
    return ops.cast(tensor, "float32")


def _codes(model):
    """``(shape, dtype)`` of one example's codes: ``model.code_shape``/``code_dtype`` (``((latent_dim,), "float32")``;
    the VQ-VAE's: an int32 grid of indices)."""
    return tuple(model.code_shape), model.code_dtype


def endpoints(model):
    """``{name: (function, input_signature)}`` of the SavedModel, ``serve`` first (it becomes ``serving_default``).

    The functions call the model's public API (``encode``, ``decode``,
    ``reconstruct``), whose input checks only look at values when there are
    values (:func:`keraszoo.models.image_checks.concrete_value`), so they trace.
    """
    import tensorflow as tf

    images = tf.TensorSpec((None,) + tuple(model.image_shape), tf.float32, name="x")
    code_shape, code_dtype = _codes(model)
    codes = tf.TensorSpec((None,) + code_shape, code_dtype, name="z")

    def reconstruct(x):
        return _as_float32(model.reconstruct(x))

    def encode(x):
        return ops.cast(model.encode(x), code_dtype)

    def decode(z):
        return _as_float32(model.decode(z))

    table = {
        "serve": (reconstruct, [images]),
        "encode": (encode, [images]),
        "decode": (decode, [codes]),
        "reconstruct": (reconstruct, [images]),
    }
    if model.is_generative:

        def sample(n, seed):
            # model.sample checks `n` as a Python int; here it is a tensor, checked when the graph runs.
            check = tf.debugging.assert_positive(n, message="`n` (the number of samples) must be >= 1")
            with tf.control_dependencies([check]):
                z = model.sample_prior(tf.identity(n), seed=_SeedSequence(seed))
            return _as_float32(model.decode(z))

        table["sample"] = (sample, [tf.TensorSpec((), tf.int32, name="n"), tf.TensorSpec((), tf.int64, name="seed")])
    return table


def describe_endpoints(model, format="tf_saved_model"):
    """One line per endpoint of an export in ``format``: its name, inputs and output (for messages, the CLI)."""
    image = "float32[batch, " + ", ".join(str(d) for d in model.image_shape) + "]"
    code_shape, code_dtype = _codes(model)
    code = f"{code_dtype}[batch, {', '.join(map(str, code_shape))}]"
    if format == "litert":
        return [f"serving_default(x: {image}) -> output_0: {image}   reconstructions"]
    if format == "onnx":
        return [f"x: {image} -> {image}   reconstructions (the graph's one input and output)"]
    lines = [f"serve(x: {image}) -> {image}   reconstructions (also serving_default)"]
    lines += [f"encode(x: {image}) -> {code}",
              f"decode(z: {code}) -> {image}",
              f"reconstruct(x: {image}) -> {image}"]
    if model.is_generative:
        sampled = "float32[n, " + ", ".join(str(d) for d in model.image_shape) + "]"
        lines.append(f"sample(n: int32, seed: int64) -> {sampled}   = model.sample(n, seed=seed)")
    return lines


# --------------------------------------------------------------------------- the target path


def _write_atomically(target, format, write, overwrite):
    """``write(path)`` into a staging folder next to ``target``, then renames the result into place.

    The staging folder shares the target's parent, so the final rename stays on
    one file system; it is removed whatever happens, and an existing target is
    only moved aside once the new artifact is complete.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        artifact = staging / target.name
        write(artifact)
        if not artifact.exists():
            raise RuntimeError(f"The exporter wrote nothing at {artifact}.")
        check_target(target, format, overwrite)  # the target may have appeared meanwhile
        previous = None
        if target.exists() or target.is_symlink():
            previous = staging / "previous"
            os.rename(target, previous)
        try:
            os.rename(artifact, target)
        except OSError:
            if previous is not None:
                os.rename(previous, target)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- the formats


def _check_converter(format):
    import tensorflow as tf

    if format == "litert" and not hasattr(getattr(tf, "lite", None), "TFLiteConverter"):
        raise ImportError("LiteRT export converts with tf.lite.TFLiteConverter, which this TensorFlow build lacks; "
                          "install a TensorFlow that has it (pip install tensorflow).")
    check_converter(format)


def _write_saved_model(model, path, options=None):
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, signature) in endpoints(model).items():
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(str(path), options=options, verbose=False)


def _image_signature(model):
    import tensorflow as tf

    # Named, so that the LiteRT signature and the ONNX graph call their input "x" (else "args_0").
    return [tf.TensorSpec((None,) + tuple(model.image_shape), tf.float32, name="x")]


def _write_with_keras(model, path, format, input_signature=None, **kwargs):
    """Keras' own LiteRT / ONNX exporter (``keras.Model.export``, not the keraszoo override), with the image signature."""
    with warnings.catch_warnings():
        # Keras' tf2onnx shim probes numpy aliases that NumPy 2 deprecates.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"keras\.src\.export.*")
        keras.Model.export(model, str(path), format=format, verbose=False,
                           input_signature=input_signature or _image_signature(model), **kwargs)
    if format == "onnx":
        _check_onnx(model, path)


def _check_onnx(model, path):
    """tf2onnx writes a model even when it could not convert an op; ONNX Runtime would refuse to load it."""
    if importlib.util.find_spec("onnx") is None:
        return
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as err:
        reason = str(err).strip().splitlines()[0]
        raise ValueError(f"tf2onnx could not convert every TensorFlow op of {type(model).__name__} to ONNX "
                         f"({reason}); export it as tf_saved_model or litert instead.") from None


def export_model(model, filepath, format="tf_saved_model", verbose=True, overwrite=True, **kwargs):
    """Exports a keraszoo model for serving; ``model.export(...)`` calls this.

    Args:
        model: a keraszoo autoencoder (any variant, fresh or from ``keraszoo.load``).
        filepath: the SavedModel folder, or the ``.tflite`` / ``.onnx`` file.
        format: ``"tf_saved_model"`` (every endpoint, see the module docstring),
            ``"litert"`` or ``"onnx"`` (the ``serve`` reconstruction function).
        verbose: print where the artifact went and its endpoints.
        overwrite: replace an earlier export at ``filepath`` (never a folder
            that is not a SavedModel); an empty folder is always replaced.
        **kwargs: for ``tf_saved_model``: ``options`` (``tf.saved_model.SaveOptions``);
            for ``litert`` / ``onnx``: passed to ``keras.Model.export``
            (``input_signature``, e.g. a static batch size, ``opset_version``,
            LiteRT converter settings).

    Returns:
        the ``Path`` of the artifact.

    Raises:
        ValueError: unknown format, a path that does not fit it, another backend than TensorFlow.
        ImportError: the format's converter is not installed (the message names the pip package).
        FileNotFoundError / FileExistsError: see :func:`check_target`.
    """
    _check_model(model)
    target = check_target(filepath, format, overwrite)
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"keraszoo's export builds TensorFlow graphs; run it with KERAS_BACKEND=tensorflow "
                         f"(the current backend is {keras.backend.backend()!r}).")
    _check_converter(format)
    if format == "tf_saved_model":
        unknown = sorted(set(kwargs) - {"options"})
        if unknown:
            hint = (" (the endpoints' signatures follow from the model's image_shape and latent_dim)"
                    if "input_signature" in unknown else "")
            raise ValueError(f"tf_saved_model export takes no argument(s) {', '.join(unknown)}{hint}; "
                             f"accepted: options (a tf.saved_model.SaveOptions).")

        def write(path):
            _write_saved_model(model, path, **kwargs)
    else:

        def write(path):
            _write_with_keras(model, path, format, **kwargs)

    _write_atomically(target, format, write, overwrite)
    if verbose:
        kind = {"tf_saved_model": "TensorFlow SavedModel", "litert": "LiteRT model", "onnx": "ONNX model"}[format]
        lines = describe_endpoints(model, format)
        print(f"Saved {'an' if format == 'onnx' else 'a'} {kind} at '{target}' with the endpoint(s):\n  " + "\n  ".join(lines))
    return target
