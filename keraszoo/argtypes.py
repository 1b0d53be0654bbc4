"""``argparse`` value types shared by the ``keraszoo`` command and the training scripts."""

import argparse

from keraszoo.utils import check_positive_int

#: Integer seeds lie in ``[0, SEED_LIMIT)``, for models, sampling and training runs alike: Keras keeps seeds as
#: uint32 on its JAX and NumPy backends (int64 on TensorFlow) and ``keras.utils.set_random_seed`` (NumPy's legacy
#: seeding) refuses others, so a seed outside gives other draws, or an error, on another backend.
SEED_LIMIT = 1 << 32


def flag_of(name: str) -> str:
    """The command-line flag of an argument name: ``"noise_level"`` -> ``"--noise-level"``."""
    return "--" + name.replace("_", "-")


def positive_int(text):
    """An integer >= 1 (the rule of :func:`keraszoo.utils.check_positive_int`)."""
    try:
        return check_positive_int("value", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def int_list(text):
    """Comma-separated positive integers: ``32,64``."""
    try:
        values = tuple(int(v) for v in str(text).replace(" ", "").strip("[]()").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    try:
        if not values:
            raise ValueError
        return tuple(check_positive_int("value", v) for v in values)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}") from None


def hidden_dims(text):
    """``512,256``; ``none`` (or an empty string) for no hidden dense layer."""
    if str(text).strip().lower() in ("", "none", "()", "[]"):
        return ()
    return int_list(text)


def fraction(text):
    """A float in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {value}")
    return value
