"""Section 8 of docs/theory.md: the contractive penalty ||J_f(x)||_F^2, its closed form, gradient and projection estimator."""

import math

import numpy as np
import pytest

from keraszoo.models import ContractiveAutoEncoder
from tests.theory.helpers import assert_rel_close
from tests.theory.helpers import code_layer_gradient
from tests.theory.helpers import float64
from tests.theory.helpers import images
from tests.theory.helpers import np_value
from tests.theory.helpers import randomize
from tests.theory.helpers import sigmoid

SHAPE = (4, 4, 1)


def make(method="autodiff", hidden_dims=(), **kwargs):
    return ContractiveAutoEncoder(input_shape=SHAPE, latent_dim=3, hidden_dims=hidden_dims, contractive_weight=0.4,
                                  contractive_method=method, **kwargs)


def closed_form(x, w, b):
    """Eq. (8.2) and (8.3): ``(||J||_F^2 per example, dP/dW, dP/db)`` for P = batch mean of the penalty."""
    xf = x.reshape(len(x), -1)
    h = sigmoid(xf @ w + b)
    s = h * (1 - h)  # sigma'(u)
    col = np.sum(w**2, axis=0)  # sum_i W_ij^2 (Keras kernels are (inputs, units))
    penalty = np.sum(s**2 * col, axis=1)
    g_u = 2 * s**2 * (1 - 2 * h) * col / len(xf)  # d/du_j of s_j^2 col_j, batch mean
    grad_w = xf.T @ g_u + 2 * w * np.mean(s**2, axis=0)  # through u, and through col directly
    return penalty, grad_w, g_u.sum(axis=0)


@pytest.mark.parametrize("method", ["closed_form", "autodiff"])
def test_sigmoid_layer_penalty_and_gradient(method):
    """Eqs. (8.2)-(8.3) in docs/theory.md: sum_j (h_j(1-h_j))^2 sum_i W_ij^2 and its gradient on W and b, both methods of the CAE."""
    rng = np.random.default_rng(80)
    model, x, terms, grads, layer = code_layer_gradient(lambda: make(method), rng, 6, "contractive_loss")
    with float64():
        per_example = np_value(model.jacobian_frobenius_sq(model._check_inputs(x)))
    penalty, grad_w, grad_b = closed_form(x, np_value(layer.kernel), np_value(layer.bias))
    assert_rel_close(per_example, penalty, what="||J||_F^2")
    assert_rel_close(float(terms["contractive_loss"]), penalty.mean(), what="contractive_loss")
    assert_rel_close(float(terms["total_loss"]), float(terms["reconstruction_loss"]) + 0.4 * penalty.mean(), what="total")
    assert_rel_close(grads[layer.kernel.path], grad_w, what="dP/dW")
    assert_rel_close(grads[layer.bias.path], grad_b, what="dP/db")


def test_deeper_encoder_jacobian_by_the_chain_rule():
    """Eq. (8.4) in docs/theory.md: J = diag(sigma'(u_2)) W_2^T diag(relu'(u_1)) W_1^T for a ReLU hidden layer and a sigmoid code."""
    rng = np.random.default_rng(81)
    with float64():
        model = make("autodiff", hidden_dims=(5,))
        randomize(model, rng)
        x = images(rng, 4, SHAPE)
        got = np_value(model.jacobian_frobenius_sq(model._check_inputs(x)))
        w1, b1 = (np_value(v) for v in (model.encoder.get_layer("encoder_dense0").kernel, model.encoder.get_layer("encoder_dense0").bias))
        w2, b2 = (np_value(v) for v in (model.encoder.get_layer("encoder_out").kernel, model.encoder.get_layer("encoder_out").bias))
    expected = []
    for xi in x.reshape(4, -1):
        u1 = xi @ w1 + b1
        h2 = sigmoid(np.maximum(u1, 0) @ w2 + b2)
        jac = np.diag(h2 * (1 - h2)) @ w2.T @ np.diag((u1 > 0).astype(float)) @ w1.T
        expected.append(np.sum(jac**2))
    assert_rel_close(got, np.array(expected), what="||J||_F^2, two layers")


def test_projection_estimator_is_unbiased():
    """Eq. (8.5) in docs/theory.md: E_v ||J^T v||^2 = ||J||_F^2 for v ~ N(0, I); variance 2 ||J J^T||_F^2 per draw (5 standard errors)."""
    rng = np.random.default_rng(82)
    n = 1000
    with float64():
        model = make("projection", num_projections=n, seed=5)
        randomize(model, rng)
        x = model._check_inputs(images(rng, 3, SHAPE))
        estimate = np_value(model.jacobian_frobenius_sq(x))
        layer = model.encoder.get_layer("encoder_out")
        w, b = np_value(layer.kernel), np_value(layer.bias)
    xf = np_value(x).reshape(3, -1)
    h = sigmoid(xf @ w + b)
    for i in range(3):
        jac = np.diag(h[i] * (1 - h[i])) @ w.T
        exact = np.sum(jac**2)
        se = math.sqrt(2 * np.sum((jac @ jac.T) ** 2) / n)
        assert abs(estimate[i] - exact) <= 5 * se, (i, estimate[i], exact, se)
        assert se < 0.2 * exact  # the check is not vacuous


def test_the_numpy_reference_states_the_projection_estimates_standard_error():
    """The consistency check recomputes a projection-estimated contractive_loss as the exact mean with the
    estimate's standard error sqrt(sum_i 2 ||J_i J_i^T||_F^2 / P) / n (Eq. 8.5), not as a deterministic term: the
    run's one draw per image is off the exact value by about that much."""
    from keraszoo.models.reference import np_jacobian_frobenius_sq

    rng = np.random.default_rng(7)
    n = 40
    with float64():
        model = make("projection", num_projections=2, seed=5)
        randomize(model, rng)
        xt = model._check_inputs(images(rng, n, SHAPE))
        x = np_value(xt)
        layer = model.encoder.get_layer("encoder_out")
        w, b = np_value(layer.kernel), np_value(layer.bias)
        _, sq, gram = np_jacobian_frobenius_sq(model.encoder, x, gram=True)
        terms = model.reference_terms(x, None, None)
        draws = [float(np.mean(np_value(model.jacobian_frobenius_sq(xt)))) for _ in range(30)]
    h = sigmoid(x.reshape(n, -1) @ w + b)
    jacs = [np.diag(h[i] * (1 - h[i])) @ w.T for i in range(n)]
    assert_rel_close(gram, np.array([np.sum((j @ j.T) ** 2) for j in jacs]), what="||J J^T||_F^2")
    est, total = terms["contractive_loss"], terms["total_loss"]
    assert est.value == pytest.approx(float(np.mean(sq))) and est.se == pytest.approx(math.sqrt(np.sum(gram)) / n)
    assert total.se == pytest.approx(0.4 * est.se)  # the reconstruction term is exact
    spread = float(np.std(draws, ddof=1))  # the estimate's own spread over draws agrees with the stated error
    assert 0.6 * est.se < spread < 1.6 * est.se, (spread, est.se)
    assert make("autodiff").reference_terms(x, None, None)["contractive_loss"].se is None  # exact: deterministic
