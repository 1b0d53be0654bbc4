"""Section 7 of docs/theory.md: the sparse penalties KL(rho || rho_hat_j) and L1, and their gradients."""

import numpy as np
import pytest
import tensorflow as tf

from keraszoo.models import SparseAutoEncoder
from keraszoo.models import losses
from tests.theory.helpers import assert_rel_close
from tests.theory.helpers import code_layer_gradient
from tests.theory.helpers import np_value
from tests.theory.helpers import sigmoid


def np_kl_sparsity(h, rho):
    """Eq. (7.1): sum_j rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j)), rho_hat = batch mean of h."""
    r = h.mean(axis=0)
    return np.sum(rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r)))


def test_kl_sparsity_value_and_gradient_in_h():
    """Eqs. (7.1)-(7.2) in docs/theory.md: dP/dh_nj = (1/B) (-rho/rho_hat_j + (1 - rho)/(1 - rho_hat_j)), the same for every n."""
    rng = np.random.default_rng(70)
    h = tf.constant(rng.uniform(0.01, 0.6, (9, 5)))
    for rho in (0.02, 0.05, 0.2):
        with tf.GradientTape() as tape:
            tape.watch(h)
            p = losses.kl_sparsity(h, rho)
        hn = np_value(h)
        r = hn.mean(axis=0)
        assert_rel_close(float(p), np_kl_sparsity(hn, rho), what=f"KL rho={rho}")
        expected = np.tile((-rho / r + (1 - rho) / (1 - r)) / len(hn), (len(hn), 1))
        assert_rel_close(np_value(tape.gradient(p, h)), expected, what=f"dKL/dh rho={rho}")
    # zero exactly when every unit's mean activation is the target
    at_target = tf.constant(np.full((4, 3), 0.05))
    assert abs(float(losses.kl_sparsity(at_target, 0.05))) < 1e-15


@pytest.mark.parametrize("sparsity", ["kl", "l1"])
def test_sparse_autoencoder_penalty_gradient_on_the_encoder(sparsity):
    """Eqs. (7.2)-(7.4) in docs/theory.md: the model's sparsity_loss and its gradient on W_enc, b_enc (sigmoid code / ReLU code)."""
    rng = np.random.default_rng(71)
    _, x, terms, grads, layer = code_layer_gradient(
        lambda: SparseAutoEncoder(input_shape=(4, 4, 1), latent_dim=5, hidden_dims=(), sparsity=sparsity,
                                  sparsity_weight=0.7, sparsity_target=0.1), rng, 12, "sparsity_loss")
    xf = x.reshape(12, -1)
    u = xf @ np_value(layer.kernel) + np_value(layer.bias)
    b = len(xf)
    if sparsity == "kl":
        h = sigmoid(u)
        r = h.mean(axis=0)
        value = np_kl_sparsity(h, 0.1)
        delta = np.tile((-0.1 / r + 0.9 / (1 - r)) / b, (b, 1)) * h * (1 - h)  # Eq. (7.2) times sigma'
    else:
        h = np.maximum(u, 0.0)
        value = np.mean(np.abs(h).sum(axis=1))  # Eq. (7.3)
        delta = (u > 0) / b  # Eq. (7.4): sign(h) relu'(u) / B
    assert_rel_close(float(terms["sparsity_loss"]), value, what="sparsity_loss")
    assert_rel_close(float(terms["mean_activation"]), h.mean(), what="mean_activation")
    assert_rel_close(float(terms["total_loss"]), float(terms["reconstruction_loss"]) + 0.7 * value, what="total")
    assert_rel_close(grads[layer.kernel.path], xf.T @ delta, what="dP/dW")
    assert_rel_close(grads[layer.bias.path], delta.sum(axis=0), what="dP/db")
