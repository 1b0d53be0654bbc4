"""Section 3 of docs/theory.md: backpropagation through keraszoo's dense autoencoders, in closed form.

Each test computes the gradients of the model's own ``loss_terms(x)["total_loss"]`` with
``tf.GradientTape`` in float64 and compares them with Eqs. (3.2)-(3.6) written in NumPy.
"""

import numpy as np
import pytest
import tensorflow as tf

from keraszoo.models import AutoEncoder
from keraszoo.models import SparseAutoEncoder
from tests.theory.helpers import assert_rel_close
from tests.theory.helpers import dense_chain
from tests.theory.helpers import float64
from tests.theory.helpers import gradients
from tests.theory.helpers import images
from tests.theory.helpers import np_value
from tests.theory.helpers import randomize
from tests.theory.helpers import sigmoid
from tests.theory.helpers import softplus

SHAPE = (4, 4, 1)


def activation_and_derivative(name, u):
    """``(a(u), a'(u))`` for the code activations keraszoo builds (Eq. 3.5)."""
    if name == "sigmoid":
        h = sigmoid(u)
        return h, h * (1.0 - h)
    if name == "relu":
        return np.maximum(u, 0.0), (u > 0).astype("float64")
    assert name == "linear", name
    return u, np.ones_like(u)


def output_delta(x, logits, loss):
    """Eq. (3.2): ``dL/dl`` for L = mean over the batch of the sum over pixels (BCE of the logits, or SE after the sigmoid)."""
    b = len(x)
    p = sigmoid(logits)
    if loss == "bce":
        return (p - x) / b
    return 2.0 * (p - x) * p * (1.0 - p) / b


def numpy_backprop(chain, x, loss):
    """Eqs. (3.1)-(3.6): forward through the Dense chain, then the chain rule back; ``(L, {path: grad})``."""
    a, cache = x.reshape(len(x), -1), []
    for layer, act in chain:
        w, b = np_value(layer.kernel), np_value(layer.bias)
        u = a @ w + b
        cache.append((a, w, u, act))
        a, _ = activation_and_derivative(act, u)
    logits = cache[-1][2]
    xf = x.reshape(len(x), -1)
    if loss == "bce":
        value = np.mean(np.sum(softplus(logits) - xf * logits, axis=1))
    else:
        value = np.mean(np.sum((xf - sigmoid(logits)) ** 2, axis=1))
    grads = {}
    delta = output_delta(xf, logits, loss)  # the top layer is linear (the logits)
    for i in range(len(chain) - 1, -1, -1):
        a_in, w, _, _ = cache[i]
        layer = chain[i][0]
        grads[layer.kernel.path] = a_in.T @ delta  # Eq. (3.3)/(3.6): dL/dW = a_in^T delta
        grads[layer.bias.path] = delta.sum(axis=0)  # dL/db = 1^T delta
        if i:
            _, da = activation_and_derivative(cache[i - 1][3], cache[i - 1][2])
            delta = (delta @ w.T) * da  # Eq. (3.4)-(3.5): delta_{l-1} = (delta_l W_l^T) * a'(u_{l-1})
    return value, grads


def model_gradients(model, x):
    with tf.GradientTape() as tape:
        total = model.loss_terms(x)["total_loss"]
    return float(total), gradients(tape, total, model.trainable_variables)


def make(kind, hidden_dims, loss):
    if kind == "linear":
        return AutoEncoder(input_shape=SHAPE, latent_dim=3, hidden_dims=hidden_dims, reconstruction_loss=loss)
    # the sparse AE with weight 0 trains the plain reconstruction through a sigmoid (kl) or ReLU (l1) code
    return SparseAutoEncoder(input_shape=SHAPE, latent_dim=3, hidden_dims=hidden_dims, reconstruction_loss=loss,
                             sparsity="kl" if kind == "sigmoid" else "l1", sparsity_weight=0.0)


@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("code", ["sigmoid", "relu", "linear"])
def test_one_hidden_layer_gradients(code, loss):
    """Eqs. (3.2)-(3.5) in docs/theory.md: dL/dW_dec, dL/db_dec, dL/dW_enc, dL/db_enc of a one-layer code."""
    rng = np.random.default_rng(1)
    with float64():
        model = make(code, (), loss)
        randomize(model, rng)
        chain = dense_chain(model)
        assert [act for _, act in chain] == [code, "linear"]
        x = images(rng, 7, SHAPE)
        value, grads = model_gradients(model, x)
    expected_value, expected = numpy_backprop(chain, x, loss)
    assert_rel_close(value, expected_value, what="loss")
    assert set(grads) == set(expected)
    for path, g in grads.items():
        assert_rel_close(g, expected[path], what=path)


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_deep_chain_rule(loss):
    """Eq. (3.6) in docs/theory.md: the chain rule through the default-style deep dense AE (ReLU hidden layers)."""
    rng = np.random.default_rng(2)
    with float64():
        model = make("linear", (6, 5), loss)
        randomize(model, rng)
        chain = dense_chain(model)
        assert len(chain) == 6
        x = images(rng, 5, SHAPE)
        value, grads = model_gradients(model, x)
    expected_value, expected = numpy_backprop(chain, x, loss)
    assert_rel_close(value, expected_value, what="loss")
    for path, g in grads.items():
        assert_rel_close(g, expected[path], what=path)


def test_relu_dead_units_get_no_gradient():
    """Eq. (3.5) in docs/theory.md: a ReLU code unit with u <= 0 on every input passes no gradient to its encoder weights."""
    rng = np.random.default_rng(3)
    with float64():
        model = make("relu", (), "bce")
        randomize(model, rng)
        layer = model.encoder.get_layer("encoder_out")
        bias = np_value(layer.bias)
        bias[0] = -100.0  # unit 0 is dead for every image in [0, 1]
        layer.bias.assign(bias)
        _, grads = model_gradients(model, images(rng, 6, SHAPE))
    assert np.all(grads[layer.kernel.path][:, 0] == 0.0) and grads[layer.bias.path][0] == 0.0
    assert np.any(grads[layer.kernel.path][:, 1:] != 0.0)
