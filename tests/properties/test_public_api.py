"""Property tests of the public model API (hypothesis): every call either returns a correct
result or raises one of the documented errors -- nothing else, and the right one of the two.

For each method an *oracle* written from the documented contract (README, the
docstrings of ``keraszoo.models.checks`` and ``keraszoo.models.image_checks``) says whether an input is valid:

* images: shape ``(batch,) + input_shape``, a floating dtype, finite values within
  ``[0, 1]`` (1e-6 tolerance; float64 is converted to float32 first); an empty batch is valid;
* codes: shape ``(batch, latent_dim)``, finite once converted to float32;
* ``sample(n)``: ``n`` a positive integer (NumPy integers too, not ``bool``), on a generative variant;
* ``interpolate(..., steps)``: an integer ``steps >= 2``;
* constructors: sizes positive integers, weights finite and ``>= 0``, standard deviations ``> 0``,
  ``sparsity_target`` in ``(0, 1)``, probabilities in ``[0, 1]``.

Valid inputs must give the documented shape, finite values and, for images, values in
``[0, 1]``; invalid ones must raise ``ValueError`` / ``TypeError`` (``NotImplementedError``
for ``sample`` on a model without a prior). Models are built once per module.

Examples are derandomized (the default suite sees the same inputs every run) and no
example database is written; ``KERASZOO_HYPOTHESIS_SCALE=10`` runs ten times as many.
"""

from __future__ import annotations

import functools
import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

# keraszoo converts float64 inputs to float32 before checking them; 1e300 overflows to inf there, as intended.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

SHAPE = (8, 8, 1)
LATENT = 2
DOCUMENTED = (ValueError, TypeError)
SCALE = float(os.environ.get("KERASZOO_HYPOTHESIS_SCALE", "1"))


def examples(n):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- the models (built once)

#: Every variant on 8x8x1 images, with tiny layers.
VARIANTS = {
    "ae": ("AutoEncoder", {}),
    "vae": ("VAE", {}),
    "hvae": ("HierarchicalVAE", {"upper_latent_dims": (1,), "ladder_hidden_dim": 4}),
    "sae": ("SparseAutoEncoder", {}),
    "dae": ("DenoisingAutoEncoder", {}),
    "cae": ("ContractiveAutoEncoder", {}),
    "aae": ("AdversarialAutoEncoder", {"discriminator_hidden_dims": (4,)}),
}
GENERATIVE = ("vae", "hvae", "aae")


def build(variant, **kwargs):
    import keraszoo.models

    cls_name, extra = VARIANTS[variant]
    settings_ = {"input_shape": SHAPE, "latent_dim": LATENT, "hidden_dims": (4,), "seed": 0, **extra, **kwargs}
    return getattr(keraszoo.models, cls_name)(**settings_)


@functools.cache
def model(variant):
    return build(variant)


@functools.cache
def conv_model():
    """A convolutional VAE on 8x8x3 (the image checks with 3 channels)."""
    from keraszoo.models import VAE

    return VAE(input_shape=(8, 8, 3), latent_dim=3, architecture="conv", conv_filters=(4, 4), hidden_dims=(), seed=0)


#: the variants plus "conv" (:func:`conv_model`); drawn by name, built in the test (not inside a strategy).
MODEL_NAMES = sorted(VARIANTS) + ["conv"]


def get_model(name):
    return conv_model() if name == "conv" else model(name)


# --------------------------------------------------------------------------- strategies

#: Values at and around the edges of the valid range, and far beyond it.
SPECIAL = [0.0, -0.0, 1.0, 0.5, 5e-324, 1e-45, 1e-38, 1 - 1e-7, 1 + 1e-7, 1 + 1e-6, 1 + 2e-6, -1e-7, -1e-6, -2e-6,
           1.5, -0.5, 255.0, 1e30, -1e30, 1e300, math.nan, math.inf, -math.inf]
FLOAT_DTYPES = ("float16", "float32", "float64")
OTHER_DTYPES = ("uint8", "int8", "int32", "int64", "bool", "complex64")


def _cast(array, dtype):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return array.astype(dtype)


@st.composite
def arrays(draw, shape):
    """Uniform [0, 1) values of ``shape`` with up to three special values (NaN, Inf, 1 + 1e-6, ...) put in."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 1.0, 1.0, 1e-30, 255.0]))
    x = rng.random(shape) * scale
    if x.size:
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
            value = draw(st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True)))
            x.flat[draw(st.integers(0, x.size - 1))] = value
    dtype = draw(st.sampled_from(FLOAT_DTYPES * 3 + OTHER_DTYPES))
    return _cast(x, dtype)


@st.composite
def image_batches(draw, image_shape):
    """Mostly the right shape; else another size, channel count or rank."""
    batch = draw(st.integers(0, 3))
    h, w, c = image_shape
    shape = draw(st.sampled_from([
        (batch, h, w, c), (batch, h, w, c), (batch, h, w, c), (batch, h, w, c), (batch, h, w, c), (batch, h, w, c),
        (batch, h + 1, w, c), (batch, h, w - 1, c), (batch, h, w, 1 if c != 1 else 3), (batch, h, w, 2),
        (h, w, c), (batch, h, w), (h * w * c,), (batch, 1, h, w, c), (),
    ]))
    return draw(arrays(shape))


def as_container(x, container):
    """``x`` as a NumPy array, a ``tf.Tensor`` or nested Python lists; and the array keraszoo sees."""
    if container == "tensor":
        import tensorflow as tf

        return tf.constant(x), x
    if container == "list":
        return x.tolist(), np.asarray(x.tolist())
    return x, x


def images_valid(x, image_shape, float64_converted=True):
    """The documented contract of the image checks (NumPy float64 is converted to float32 before them)."""
    if x.ndim != len(image_shape) + 1 or tuple(x.shape[1:]) != tuple(image_shape) or x.dtype.kind != "f":
        return False
    if x.dtype == np.float64 and float64_converted:
        x = _cast(x, "float32")
    if not x.size:
        return True
    if not np.all(np.isfinite(x)):
        return False
    return not (float(x.min()) < -1e-6 or float(x.max()) > 1 + 1e-6)


def _numpy(tensor):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(tensor))


def check_images_out(out, shape):
    out = _numpy(out)
    assert out.shape == shape, f"shape {out.shape}, expected {shape}"
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out)), "non-finite output"
    assert out.size == 0 or (out.min() >= 0.0 and out.max() <= 1.0), f"values in [{out.min()}, {out.max()}]"


def outcome(fn, *args, **kwargs):
    """``(result, None)`` or ``(None, error)`` for a documented error; anything else propagates."""
    try:
        return fn(*args, **kwargs), None
    except DOCUMENTED as err:
        return None, err


# --------------------------------------------------------------------------- images in


@examples(60)
@given(name=st.sampled_from(MODEL_NAMES), data=st.data(), method=st.sampled_from(["encode", "reconstruct"]),
       container=st.sampled_from(["numpy", "numpy", "tensor", "list"]))
def test_encode_and_reconstruct_accept_exactly_the_documented_images(name, data, method, container):
    m = get_model(name)
    given_x, x = as_container(data.draw(image_batches(m.image_shape)), container)
    result, error = outcome(getattr(m, method), given_x)
    valid = images_valid(x, m.image_shape, float64_converted=container != "tensor")
    event("valid" if valid else "invalid")
    if not valid:
        assert error is not None, f"{method} accepted invalid images: shape {x.shape}, dtype {x.dtype}"
        return
    assert error is None, f"{method} refused valid images (shape {x.shape}, dtype {x.dtype}): {error}"
    if method == "encode":
        out = _numpy(result)
        assert out.shape == (x.shape[0], m.latent_dim) and np.all(np.isfinite(out))
    else:
        check_images_out(result, x.shape)


# --------------------------------------------------------------------------- codes in


@st.composite
def code_batches(draw):
    batch = draw(st.integers(0, 3))
    width = draw(st.integers(0, 5))
    shape = draw(st.sampled_from([(batch, LATENT), (batch, LATENT), (batch, width), (LATENT,), (batch, LATENT, 1), ()]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 3.0, 1e-30, 1e6, 1e30, 3e38]))
    z = rng.standard_normal(shape) * scale
    if z.size:
        for _ in range(draw(st.integers(0, 2))):
            z.flat[draw(st.integers(0, z.size - 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf, 1e300, 0.0, 1e38]))
    return _cast(z, draw(st.sampled_from(FLOAT_DTYPES * 2 + ("int32", "int64", "uint8", "bool"))))


@examples(50)
@given(variant=st.sampled_from(sorted(VARIANTS)), z=code_batches(), logits=st.booleans())
def test_decode_accepts_exactly_codes_of_the_latent_width(variant, z, logits):
    m = model(variant)
    result, error = outcome(m.decode_logits if logits else m.decode, z)
    z32 = _cast(z, "float32")
    valid = z.ndim == 2 and z.shape[1] == LATENT and bool(np.all(np.isfinite(z32)))
    event("valid" if valid else "invalid")
    if not valid:
        assert error is not None, f"decode accepted codes of shape {z.shape}, dtype {z.dtype}"
        return
    assert error is None, f"decode refused valid codes {z.shape} {z.dtype}: {error}"
    if logits:
        out = _numpy(result)
        assert out.shape == (z.shape[0], *SHAPE) and not np.any(np.isnan(out))
    else:
        check_images_out(result, (z.shape[0], *SHAPE))


# --------------------------------------------------------------------------- sample, interpolate

COUNTS = st.one_of(
    st.integers(-3, 9), st.sampled_from([np.int64(3), np.int32(1), np.uint8(2), True, False, 2.0, 2.5, math.nan, "4", None, 10**3]),
)


@examples(40)
@given(variant=st.sampled_from(sorted(VARIANTS)), n=COUNTS, seed=st.one_of(st.none(), st.integers(0, 2**31 - 1)))
def test_sample_returns_n_images_or_refuses(variant, n, seed):
    m = model(variant)
    if variant not in GENERATIVE:
        with pytest.raises(NotImplementedError, match="not a generative model"):
            m.sample(n, seed=seed)
        return
    result, error = outcome(m.sample, n, seed=seed)
    valid = isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
    event("valid" if valid else "invalid")
    if not valid:
        assert error is not None, f"sample accepted n={n!r}"
        return
    assert error is None, f"sample refused n={n!r}: {error}"
    check_images_out(result, (int(n), *SHAPE))


@examples(4)
@given(variant=st.sampled_from(GENERATIVE), seed=st.integers(0, 2**31 - 1))
def test_sample_with_a_seed_is_reproducible(variant, seed):
    m = model(variant)
    np.testing.assert_array_equal(_numpy(m.sample(3, seed=seed)), _numpy(m.sample(3, seed=seed)))


def test_interpolate_accepts_nested_lists_as_encode_does():
    """Images as nested Python lists are images to encode(); interpolate() converts them the same way."""
    m = model("vae")
    a, b = np.full((1, *SHAPE), 0.25, np.float32), np.full((1, *SHAPE), 0.75, np.float32)
    np.testing.assert_allclose(_numpy(m.interpolate(a[0].tolist(), b[0].tolist(), steps=3)),
                               _numpy(m.interpolate(a[0], b[0], steps=3)), rtol=1e-6)
    np.testing.assert_allclose(_numpy(m.encode(a.tolist())), _numpy(m.encode(a)), rtol=1e-6)


def test_sample_accepts_a_numpy_integer_seed():
    m = model("vae")
    np.testing.assert_array_equal(_numpy(m.sample(2, seed=np.int64(3))), _numpy(m.sample(2, seed=3)))


STEPS = st.one_of(st.integers(-2, 7), st.sampled_from([np.int64(4), 2.0, 3.5, True, "5", None]))


@examples(30)
@given(variant=st.sampled_from(sorted(VARIANTS)), steps=STEPS, batch=st.sampled_from([None, 1, 2]), other=st.sampled_from([None, 1, 2]))
def test_interpolate_returns_the_strip_or_refuses(variant, steps, batch, other):
    m = model(variant)
    x1 = np.full(SHAPE if batch is None else (batch, *SHAPE), 0.25, np.float32)
    x2 = np.full(SHAPE if batch is None else ((other or batch), *SHAPE), 0.75, np.float32)
    result, error = outcome(m.interpolate, x1, x2, steps=steps)
    steps_ok = isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 2
    same = batch is None or (other or batch) == batch
    event("valid" if steps_ok and same else "invalid")
    if not (steps_ok and same):
        assert error is not None, f"interpolate accepted steps={steps!r}, batches {x1.shape} / {x2.shape}"
        return
    assert error is None, f"interpolate refused steps={steps!r}: {error}"
    expected = (int(steps), *SHAPE) if batch is None else (batch, int(steps), *SHAPE)
    check_images_out(result, expected)


# --------------------------------------------------------------------------- constructors

NUMBERS = st.one_of(
    st.sampled_from([0, 1, 0.0, -0.0, 0.05, 0.5, 1.0, 1.5, 4, -1, -0.1, 1e-6, 1e6, math.nan, math.inf, -math.inf,
                     True, None, "0.1", np.float32(0.2), np.int64(2)]),
    st.floats(min_value=-10, max_value=10),
)
SIZES = st.sampled_from([1, 2, 3, 0, -1, 2.0, 2.5, True, None, "2", np.int64(2), 10**1])


def _number(value):
    return not isinstance(value, bool) and isinstance(value, (int, float, np.number))


def non_negative(value):
    return _number(value) and math.isfinite(float(value)) and float(value) >= 0


def positive(value):
    return non_negative(value) and float(value) > 0


def fraction(value):
    return non_negative(value) and 0 < float(value) < 1


def probability(value):
    return non_negative(value) and float(value) <= 1


def positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


#: variant -> {hyperparameter: (strategy, validity rule)}; a rule gets the value and the other drawn values.
HYPERPARAMETERS = {
    "ae": {"latent_dim": (SIZES, positive_int)},
    "vae": {"beta": (NUMBERS, non_negative), "decoder_std": (NUMBERS, positive), "latent_dim": (SIZES, positive_int)},
    "hvae": {"beta": (NUMBERS, non_negative), "ladder_hidden_dim": (SIZES, positive_int)},
    "sae": {"sparsity_weight": (NUMBERS, non_negative), "sparsity_target": (NUMBERS, fraction),
            "sparsity": (st.sampled_from(["kl", "l1", "l2"]), lambda v, _: v in ("kl", "l1"))},
    "dae": {"noise_level": (NUMBERS, lambda v, kw: non_negative(v) and (kw.get("noise", "gaussian") == "gaussian" or probability(v))),
            "noise": (st.sampled_from(["gaussian", "masking", "salt_and_pepper", "blur"]),
                      lambda v, _: v in ("gaussian", "masking", "salt_and_pepper"))},
    "cae": {"contractive_weight": (NUMBERS, non_negative), "num_projections": (SIZES, positive_int)},
    "aae": {"prior_std": (NUMBERS, positive), "mixture_radius": (NUMBERS, non_negative),
            "adversarial_weight": (NUMBERS, non_negative), "num_components": (SIZES, positive_int)},
}


def _rule(rule, value, drawn):
    try:
        return rule(value, drawn)
    except TypeError:
        return rule(value)


@st.composite
def constructor_kwargs(draw):
    variant = draw(st.sampled_from(sorted(HYPERPARAMETERS)))
    table = HYPERPARAMETERS[variant]
    names = draw(st.lists(st.sampled_from(sorted(table)), min_size=1, max_size=2, unique=True))
    return variant, {name: draw(table[name][0]) for name in names}


@examples(50)
@given(drawn=constructor_kwargs())
def test_constructors_accept_exactly_the_documented_hyperparameters(drawn):
    variant, kwargs = drawn
    table = HYPERPARAMETERS[variant]
    valid = all(_rule(table[name][1], value, kwargs) for name, value in kwargs.items())
    event("valid" if valid else "invalid")
    result, error = outcome(build, variant, **kwargs)
    if not valid:
        assert error is not None, f"{variant} accepted {kwargs}"
        return
    assert error is None, f"{variant} refused valid {kwargs}: {error}"
    x = np.full((2, *SHAPE), 0.5, np.float32)
    check_images_out(result.reconstruct(x), x.shape)
    moderate = all(not _number(v) or float(v) == 0 or 1e-6 <= abs(float(v)) <= 1e6 for v in kwargs.values())
    if moderate:
        terms = {k: float(_numpy(v)) for k, v in result.loss_terms(x, training=True).items()}
        assert all(math.isfinite(v) for v in terms.values()), f"{variant}{kwargs}: loss terms {terms}"


@pytest.mark.parametrize("variant, kwargs", [("vae", {"beta": 1e300}), ("sae", {"sparsity_target": 1e-300}),
                                             ("cae", {"contractive_weight": 1e300})])
def test_hyperparameters_beyond_float32_are_refused_or_give_finite_losses(variant, kwargs):
    try:
        m = build(variant, **kwargs)
    except ValueError:
        return
    terms = {k: float(_numpy(v)) for k, v in m.loss_terms(np.full((2, *SHAPE), 0.5, np.float32), training=True).items()}
    assert all(math.isfinite(v) for v in terms.values()), terms


@examples(25)
@given(latent_dim=SIZES, hidden=st.lists(st.sampled_from([1, 3, 0, -2, 2.5]), max_size=2),
       architecture=st.sampled_from(["dense", "conv", "resnet"]), shape=st.sampled_from([SHAPE, (4, 4, 3), (6, 6, 1), (8, 8), (0, 8, 1)]))
def test_the_shared_constructor_arguments(latent_dim, hidden, architecture, shape):
    kwargs = {"latent_dim": latent_dim, "hidden_dims": tuple(hidden), "architecture": architecture, "input_shape": shape}
    if architecture == "conv":
        kwargs["conv_filters"] = (2,)
    result, error = outcome(build, "ae", **kwargs)
    valid = (positive_int(latent_dim) and all(positive_int(h) for h in hidden) and architecture in ("dense", "conv")
             and len(shape) == 3 and min(shape) > 0 and (architecture == "dense" or (shape[0] % 2 == 0 and shape[1] % 2 == 0)))
    event("valid" if valid else "invalid")
    if not valid:
        assert error is not None, f"AutoEncoder accepted {kwargs}"
        return
    assert error is None, f"AutoEncoder refused valid {kwargs}: {error}"
    x = np.full((1, *shape), 0.5, np.float32)
    check_images_out(result.reconstruct(x), x.shape)
    assert _numpy(result.encode(x)).shape == (1, int(latent_dim))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_an_empty_batch_gives_empty_outputs_of_the_right_shape(dtype):
    """Hypothesis found it: TensorFlow's CPU convolution fails on an empty float16 batch."""
    m = conv_model()
    x = np.zeros((0, 8, 8, 3), dtype)
    assert tuple(m.encode(x).shape) == (0, 3)
    assert tuple(m.reconstruct(x).shape) == (0, 8, 8, 3)
