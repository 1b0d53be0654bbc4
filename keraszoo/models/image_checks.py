"""Checks of images against a model's input contract: float images in [0, 1], finite, of shape
``(batch,) + image_shape``, channels last.

:func:`check_images` is what ``encode`` and the rest of the API hold their input to (shape and dtype
always, values whenever they are concrete); :func:`check_image_array` what ``fit`` and ``evaluate``
hold training arrays to, in full, slice by slice (see :mod:`keraszoo.models.checked_data`).
:class:`InputChecksMixin` gives a model the checks of its images and codes (``_check_inputs``,
``_check_codes``).
"""

import math

import keras
import numpy as np
from keras import ops

from keraszoo.models import checks

#: Values per slice of the array check (1 MiB of float32: both reductions read it from cache; fastest on the dev CPU).
CHECK_SLICE_VALUES = 1 << 18

#: How far outside [0, 1] a pixel may lie (float rounding) before it is refused.
TOLERANCE = 1e-6


def concrete_value(x):
    """Returns ``x`` as a NumPy array when it holds concrete values, else ``None``.

    Symbolic tensors (Keras functional build, ``tf.function`` graphs, JAX
    tracers) have no values to check, so value checks are skipped for them.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, keras.KerasTensor):
        return None
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly() or not hasattr(x, "numpy"):
            return None
    elif backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
    try:
        return keras.ops.convert_to_numpy(x)
    except Exception:  # noqa: BLE001 - symbolic values of another framework
        return None


def _dims_match(shape, image_shape, strict=False):
    """``shape`` is ``image_shape``; unless ``strict``, unknown dimensions (``None``) match any size."""
    return len(shape) == len(image_shape) and all((d is None and not strict) or d == e
                                                  for d, e in zip(shape, image_shape))


def shape_problem(shape, image_shape, owner, *, where="", dataset=False, strict=False):
    """The message for images of shape ``shape`` that are not ``(batch,) + image_shape``, else ``None``.

    ``where`` follows the received shape (e.g. `` in batch 3 of the generator``);
    ``dataset``: the hints speak of a dataset; ``strict``: unknown sizes do not match.
    """
    shape = tuple(shape)
    if len(shape) == len(image_shape) + 1 and _dims_match(shape[1:], image_shape, strict):
        return None
    expected = "(batch, " + ", ".join(str(d) for d in image_shape) + ")"
    hint = ""
    if len(shape) == len(image_shape) and _dims_match(shape, image_shape):
        hint = (" (the dataset yields single images: batch it, e.g. ds.batch(64))" if dataset
                else " (a single image: add a batch axis, e.g. x[None])")
    elif len(shape) == len(image_shape) and _dims_match(shape[1:], image_shape[:-1]) and image_shape[-1] == 1:
        hint = " (add the channel axis: x[..., None])"
    elif len(shape) == len(image_shape) + 1 and shape[-1] != image_shape[-1]:
        hint = f" (the model takes {image_shape[-1]} channel(s), the input has {shape[-1]})"
    return (f"{owner} expects images of shape {expected}, float32 in [0, 1], channels last; "
            f"received shape {shape}{where}{hint}.")


def check_images(x, image_shape, owner):
    """Checks a batch of images against the model's input contract.

    Expected: floating point, shape ``(batch,) + image_shape``, finite values in
    [0, 1]. Shape and dtype are checked always; values whenever they are
    concrete (eager calls), never inside compiled graphs.
    """
    problem = shape_problem(tuple(x.shape), image_shape, owner, strict=True)
    if problem:
        raise ValueError(problem)
    try:
        dtype = keras.backend.standardize_dtype(x.dtype)
    except ValueError:  # object, string, ... arrays: dtypes Keras has no name for
        dtype = str(x.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"{owner} expects floating point images in [0, 1] (for uint8 pixels use "
            f"x.astype('float32') / 255); received dtype {dtype}."
        )
    values = concrete_value(x)
    if values is not None and values.size:
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{owner} received NaN or Inf values; expected finite values in [0, 1].")
        lo, hi = float(values.min()), float(values.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(
                f"{owner} expects pixel values in [0, 1]; received values in [{lo:g}, {hi:g}]"
                + (" (divide uint8-range pixels by 255)." if hi > 1.5 else ".")
            )


def range_hint(lo, hi):
    if hi > 1.5:
        return "divide uint8-range pixels by 255"
    if lo < 0 and lo >= -1 - TOLERANCE:
        return "images scaled to [-1, 1]? use (x + 1) / 2"
    return ""


def _host(values):
    """A slice of an array or tensor as a NumPy array (a view when it already is one)."""
    if isinstance(values, np.ndarray):
        return values
    try:
        return np.asarray(values)
    except Exception:  # noqa: BLE001 - a tensor NumPy cannot take directly (e.g. on an accelerator)
        return np.asarray(keras.ops.convert_to_numpy(values))


def _value_statistics(x, first):
    """Counts of NaN and Inf and the range of the finite values of ``x`` (the failure path only)."""
    count = len(x)
    step = max(1, CHECK_SLICE_VALUES // max(1, int(np.prod(x.shape[1:], dtype=np.int64))))
    nan = inf = 0
    lo, hi = math.inf, -math.inf
    for start in range(0, count, step):
        part = _host(x[start:start + step])
        finite = np.isfinite(part)
        nan += int(np.count_nonzero(np.isnan(part)))
        inf += int(part.size - np.count_nonzero(finite)) - int(np.count_nonzero(np.isnan(part)))
        if finite.any():
            lo, hi = min(lo, float(part[finite].min())), max(hi, float(part[finite].max()))
    return {"first": first, "nan": nan, "inf": inf, "lo": lo, "hi": hi}


def _bad_values(x):
    """``None`` when every value of ``x`` (at least one image) is finite and in [0, 1], else the statistics."""
    count = len(x)
    step = max(1, CHECK_SLICE_VALUES // max(1, int(np.prod(x.shape[1:], dtype=np.int64))))
    for start in range(0, count, step):
        part = _host(x[start:start + step])
        if part.size == 0:
            continue
        if part.min() >= -TOLERANCE and part.max() <= 1 + TOLERANCE:  # NaN fails both comparisons
            continue
        flat = part.reshape(len(part), -1)
        good = (flat.min(axis=1) >= -TOLERANCE) & (flat.max(axis=1) <= 1 + TOLERANCE)
        return _value_statistics(x, start + int(np.argmin(good)))
    return None


def _values_message(owner, stats, where):
    if stats["nan"] or stats["inf"]:
        kinds = " and ".join(k for k, n in (("NaN", stats["nan"]), ("Inf", stats["inf"])) if n)
        counts = ", ".join(f"{n} {k}" for k, n in (("NaN", stats["nan"]), ("Inf", stats["inf"])) if n)
        return (f"{owner} received {kinds} values ({counts}, the first in {where}); expected finite values "
                "in [0, 1]. Check the data for missing or corrupt values.")
    lo, hi = stats["lo"], stats["hi"]
    hint = range_hint(lo, hi)
    return (f"{owner} expects pixel values in [0, 1]; received values in [{lo:g}, {hi:g}] (the first image "
            f"outside: {where}{'; ' + hint if hint else ''}).")


def check_image_array(x, image_shape, owner, *, name="x", batch=None):
    """Checks training images ``x`` (an array or tensor, in full) against the model's input contract.

    Shape ``(N,) + image_shape`` with ``N >= 1``, a floating dtype, every value finite
    and in [0, 1]. ``batch`` (e.g. ``"batch 3 of the generator"``) says that ``x`` is
    one batch of a stream, for the messages.

    Raises:
        ValueError: naming what was expected and what was received (the first bad image).
    """
    where = f" in {batch}" if batch else ""
    shape = tuple(x.shape)
    problem = shape_problem(shape, image_shape, owner, where=where, strict=True)
    if problem:
        raise ValueError(problem)
    if shape[0] == 0:
        raise ValueError(f"{owner} received no images{where} (shape {shape}); expected at least one image "
                         f"of shape {tuple(image_shape)}.")
    dtype = keras.backend.standardize_dtype(x.dtype)
    if "float" not in dtype:
        raise ValueError(f"{owner} expects floating point images in [0, 1] (for uint8 pixels use "
                         f"x.astype('float32') / 255); received dtype {dtype}{where}.")
    stats = _bad_values(x)
    if stats is not None:
        index = f"image {stats['first']} of {batch}" if batch else f"{name}[{stats['first']}]"
        raise ValueError(_values_message(owner, stats, index))


class InputChecksMixin:
    """The input checks of the model API (``encode``, ``decode`` ...) for models with ``image_shape``,
    ``latent_dim`` and ``compute_dtype`` (``BaseAutoEncoder``); a variant with other codes overrides
    ``_check_codes`` (the VQ-VAE's grid of indices).
    """

    def _check_inputs(self, x):
        """``x`` as a tensor of the compute dtype, checked by :func:`check_images` (float64 and lists converted)."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            x = np.asarray(x)
        if isinstance(x, np.ndarray) and x.dtype == np.float64:
            x = x.astype("float32")
        check_images(x, self.image_shape, type(self).__name__)
        x = ops.convert_to_tensor(x)
        if x.dtype != self.compute_dtype:
            x = ops.cast(x, self.compute_dtype)
        return x

    def _check_codes(self, z):
        """Codes ``z`` for ``decode``: ``(batch, latent_dim)`` finite numbers, as a tensor of the compute dtype."""
        if not hasattr(z, "shape"):
            z = np.asarray(z)
        if isinstance(z, np.ndarray) and z.dtype.kind not in "biuf":
            raise ValueError(
                f"{type(self).__name__} expects latent codes of shape (batch, {self.latent_dim}) as numbers; "
                f"received an array of dtype {z.dtype}.")
        if isinstance(z, np.ndarray) and z.dtype != np.float32:
            z = z.astype("float32")
        shape = tuple(z.shape)
        if len(shape) != 2 or shape[1] != self.latent_dim:
            raise ValueError(
                f"{type(self).__name__} expects latent codes of shape (batch, {self.latent_dim}); "
                f"received shape {shape}.")
        checks.check_output_size(f"{type(self).__name__}.decode of {shape[0]} codes", shape[0], self.image_shape,
                                 lambda most: f"decode them in batches of at most {most:,} (z[i:i + {most}])")
        values = concrete_value(z)
        if values is not None and not np.all(np.isfinite(values)):
            raise ValueError(f"{type(self).__name__}.decode received NaN or Inf codes.")
        return ops.cast(ops.convert_to_tensor(z), self.compute_dtype)
