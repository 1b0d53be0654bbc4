"""Argument checks that turn a bad constructor or ``fit`` argument into a clear ``ValueError``.

Every message names the argument, says what was expected and what was received, so that users
do not have to decode a TensorFlow error from deep inside a layer. The checks of images and
training data are in :mod:`keraszoo.models.image_checks` and :mod:`keraszoo.models.checked_data`.
"""

import math
import numbers

import numpy as np

from keraszoo.argtypes import SEED_LIMIT
from keraszoo.utils import check_positive_int

__all__ = [
    "MAX_VALUES_PER_CALL", "SEED_LIMIT", "check_bool", "check_choice", "check_fit_arguments", "check_fraction",
    "check_image_shape", "check_int_tuple", "check_non_negative", "check_non_negative_int",
    "check_optional_positive_int", "check_output_size", "check_positive_int", "check_seed", "check_steps",
]

#: The most float32 values one call of ``sample``, ``interpolate`` or ``decode`` returns: 2**28 (1 GiB), e.g.
#: 342,392 images of 28x28x1 or 87,381 of 32x32x3. More are asked for in batches (``keraszoo sample -n`` too).
MAX_VALUES_PER_CALL = 1 << 28



def check_output_size(what, count, item_shape, batches):
    """Refuses a call that would return more than :data:`MAX_VALUES_PER_CALL` values.

    ``what``: the call (``"VAE.sample(n=2000000)"``); ``count`` images of ``item_shape``; ``batches``: how to ask
    for them in batches, given the most images one call returns (``lambda most: "..."``).
    """
    per_item = max(1, math.prod(int(d) for d in item_shape))
    most = max(1, MAX_VALUES_PER_CALL // per_item)
    if count is not None and int(count) > most:
        values = int(count) * per_item
        raise ValueError(
            f"{what} would return {int(count):,} images of {'x'.join(map(str, item_shape))}: {values:,} float32 "
            f"values ({values * 4 / 2**30:.3g} GiB). One call returns at most {MAX_VALUES_PER_CALL:,} values (1 GiB), "
            f"{most:,} images of this shape: {batches(most)}.")
    return count


def check_seed(name, seed):
    """``seed`` as an ``int`` if it is an integer in ``[0, SEED_LIMIT)`` (NumPy's too), else a ``ValueError``."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"`{name}` must be either an integer or an instance of `SeedGenerator` (keras.random; an "
                         f"integer in [0, 2**32)); received {seed!r}.")
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"`{name}` must be an integer in [0, 2**32) = [0, {SEED_LIMIT - 1}] (Keras keeps seeds as "
                         f"32-bit unsigned integers on some backends); received {seed}.")
    return int(seed)


def check_steps(steps):
    """The ``steps`` of ``interpolate``: an integer >= 2 (both end points)."""
    steps = check_positive_int("steps", steps)
    if steps < 2:
        raise ValueError(f"`steps` must be at least 2 (both end points); received {steps}.")
    return steps


def check_image_shape(input_shape):
    try:
        if isinstance(input_shape, (str, bytes)) or any(
                isinstance(d, bool) or not isinstance(d, numbers.Integral) for d in input_shape):
            raise TypeError
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


# The models compute in float32: a weight or target beyond its range would overflow to inf (beta=1e300)
# or underflow to 0 (sparsity_target=1e-300) inside the loss, so such values are refused here.
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


def check_bool(name, value):
    """``value`` as a ``bool`` if it is one (NumPy's too), else a ``ValueError`` naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False; received {value!r}.")
    return bool(value)


def check_non_negative_int(name, value):
    """``value`` as an ``int`` if it is an integer >= 0 (NumPy integers too), else a ``ValueError`` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0; received {value!r}.")
    return int(value)


def check_non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"`{name}` must be a non-negative number; received {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0; received {value!r}.")
    if value > FLOAT32_MAX or 0 < value < FLOAT32_TINY:
        raise ValueError(
            f"`{name}` must be 0 or lie in float32's range [{FLOAT32_TINY:.3g}, {FLOAT32_MAX:.3g}] "
            f"(the models compute in float32); received {value!r}.")
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


def check_optional_positive_int(owner, name, value):
    """``None`` or a positive integer, else a ValueError naming ``owner``'s argument ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: `{name}` must be a positive integer or None; received {value!r}.")
    return int(value)


def check_fit_arguments(owner, *, batch_size=None, epochs=1, initial_epoch=0, steps_per_epoch=None,
                        validation_steps=None, validation_batch_size=None, validation_freq=1):
    """The counting arguments of ``fit`` (Keras accepts ``batch_size=0`` and ``epochs=0`` silently)."""
    for name, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch),
                        ("validation_steps", validation_steps), ("validation_batch_size", validation_batch_size)):
        check_optional_positive_int(owner, name, value)
    for name, value in (("epochs", epochs), ("validation_freq", validation_freq)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{owner}: `{name}` must be a positive integer; received {value!r}"
                             + (" (nothing would be trained)." if name == "epochs" else "."))
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, numbers.Integral) or initial_epoch < 0:
        raise ValueError(f"{owner}: `initial_epoch` must be an integer >= 0; received {initial_epoch!r}.")

