"""Argument and input checks that turn bad input into clear ``ValueError``s.

Every message says what was expected and what was received, so that users do
not have to decode a TensorFlow error from deep inside a layer.
"""

import math

import keras
import numpy as np

from keraszoo.utils import check_positive_int


def check_image_shape(input_shape):
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"`input_shape` must be a tuple (height, width, channels) of positive "
            f"integers, e.g. (28, 28, 1); received {input_shape!r}."
        ) from None
    if len(shape) != 3 or any(d <= 0 for d in shape):
        raise ValueError(
            f"`input_shape` must be (height, width, channels) with positive sizes, "
            f"channels last, e.g. (28, 28, 1) or (32, 32, 3); received {input_shape!r}."
        )
    return shape


def check_int_tuple(name, values, allow_empty=True):
    if values is None:
        return None
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"`{name}` must be a sequence of positive integers; received {values!r}.") from None
    for v in values:
        check_positive_int(f"{name}[...]", v)
    if not values and not allow_empty:
        raise ValueError(f"`{name}` must not be empty.")
    return tuple(int(v) for v in values)


def check_non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"`{name}` must be a non-negative number; received {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0; received {value!r}.")
    return value


def check_fraction(name, value, low_open=True, high_open=True):
    value = check_non_negative(name, value)
    bad_low = value <= 0 if low_open else value < 0
    bad_high = value >= 1 if high_open else value > 1
    if bad_low or bad_high:
        lo = "(0" if low_open else "[0"
        hi = "1)" if high_open else "1]"
        raise ValueError(f"`{name}` must lie in {lo}, {hi}; received {value!r}.")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"Unknown `{name}` {value!r}; expected one of {', '.join(repr(c) for c in choices)}."
        )
    return value


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


def check_images(x, image_shape, owner):
    """Checks a batch of images against the model's input contract.

    Expected: floating point, shape ``(batch,) + image_shape``, finite values in
    [0, 1]. Shape and dtype are checked always; values whenever they are
    concrete (eager calls), never inside compiled graphs.
    """
    shape = tuple(x.shape)
    expected = "(batch, " + ", ".join(str(d) for d in image_shape) + ")"
    if len(shape) != len(image_shape) + 1 or tuple(shape[1:]) != tuple(image_shape):
        hint = ""
        if len(shape) == len(image_shape) and tuple(shape) == tuple(image_shape):
            hint = " (a single image: add a batch axis, e.g. x[None])"
        elif len(shape) == len(image_shape) and tuple(shape[1:]) == tuple(image_shape[:-1]) and image_shape[-1] == 1:
            hint = " (add the channel axis: x[..., None])"
        elif len(shape) == len(image_shape) + 1 and shape[-1] != image_shape[-1]:
            hint = f" (the model takes {image_shape[-1]} channel(s), the input has {shape[-1]})"
        raise ValueError(
            f"{owner} expects images of shape {expected}, float32 in [0, 1], channels last; "
            f"received shape {shape}{hint}."
        )
    dtype = keras.backend.standardize_dtype(x.dtype)
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
