"""Shared pieces of the theory checks: float64 Keras, relative comparison, NumPy values of weights."""

import contextlib

import keras
import numpy as np

#: The relative tolerance of every float64 comparison (docs/theory.md, "How the checks work").
RTOL = 1e-6


@contextlib.contextmanager
def float64():
    """Builds and runs Keras layers in float64 inside the block (keraszoo's models take their dtype from floatx)."""
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous)


def assert_rel_close(actual, expected, rtol=RTOL, what=""):
    """``max |actual - expected| <= rtol * max |expected|`` (a relative error on the array's scale)."""
    actual, expected = np.asarray(actual, "float64"), np.asarray(expected, "float64")
    assert actual.shape == expected.shape, f"{what}: shapes {actual.shape} and {expected.shape}"
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    err = float(np.max(np.abs(actual - expected)))
    assert err <= rtol * scale, f"{what}: max abs error {err:.3g} > {rtol:g} x scale {scale:.3g}"


def np_value(v):
    """A Keras variable or tensor as a float64 NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(v), "float64")


def sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


def softplus(u):
    return np.logaddexp(0.0, u)


def images(rng, n, shape=(4, 4, 1), low=0.0, high=1.0):
    """``n`` random images in ``[low, high]``, float64 (float32-representable, as keraszoo's input checks keep them)."""
    return rng.uniform(low, high, size=(n,) + tuple(shape)).astype("float32").astype("float64")


def layer_weights(network, name):
    """``(kernel, bias)`` of the layer ``name`` of a keraszoo network, float64."""
    layer = network.get_layer(name)
    return np_value(layer.kernel), np_value(layer.bias)


def randomize(model, rng, scale=0.5):
    """Sets every weight of ``model`` to ``scale`` x N(0, 1) draws (biases too, so that no term is trivially 0)."""
    for v in model.weights:
        v.assign(scale * rng.standard_normal(tuple(v.shape)))


def dense_chain(model):
    """The Dense layers of a dense keraszoo model, encoder then decoder: ``[(layer, activation name)]``."""
    chain = []
    for network in (model.encoder, model.decoder):
        for layer in network.layers:
            if isinstance(layer, keras.layers.Dense):
                chain.append((layer, layer.activation.__name__))
    return chain


def gradients(tape, target, variables):
    """``{variable.path: float64 gradient}`` of ``target``."""
    grads = tape.gradient(target, variables)
    return {v.path: np_value(g) for v, g in zip(variables, grads)}


def code_layer_gradient(make_model, rng, n, term):
    """A float64 model of ``make_model()`` with random weights, its ``loss_terms`` on ``n`` random images and the
    tape gradient of ``term`` on the encoder: ``(model, x, terms, {path: gradient}, its code layer "encoder_out")``."""
    import tensorflow as tf

    with float64():
        model = make_model()
        randomize(model, rng)
        x = images(rng, n, model.image_shape)
        with tf.GradientTape() as tape:
            terms = model.loss_terms(x)
        grads = gradients(tape, terms[term], model.encoder.trainable_variables)
    return model, x, terms, grads, model.encoder.get_layer("encoder_out")
