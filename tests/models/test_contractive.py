"""ContractiveAutoEncoder: ||J_f(x)||_F^2 by autodiff vs closed form vs finite differences."""

import keras
import numpy as np
import pytest
from keras import ops

from keraszoo.models import ContractiveAutoEncoder
from tests.models.model_checks import np_forward
from tests.models.model_checks import terms_numpy


def finite_difference_frobenius_sq(encoder, x, eps=1e-4):
    """Central differences on a float64 NumPy copy of the encoder."""
    flat = x.reshape(len(x), -1).astype("float64")
    d_in = flat.shape[1]
    out = np.zeros(len(x))
    for i in range(d_in):
        step = np.zeros(d_in)
        step[i] = eps
        plus = np_forward(encoder, (flat + step).reshape(x.shape))
        minus = np_forward(encoder, (flat - step).reshape(x.shape))
        out += (((plus - minus) / (2 * eps)) ** 2).sum(1)
    return out


def as_np(v):
    return np.asarray(ops.convert_to_numpy(v), dtype="float64")


def test_autodiff_closed_form_and_finite_differences_agree(mnist_sample):
    x = mnist_sample[0][:4]
    model = ContractiveAutoEncoder(input_shape=(28, 28, 1), latent_dim=5, hidden_dims=(), seed=0)
    xt = ops.convert_to_tensor(x)
    autodiff = as_np(model.jacobian_frobenius_sq(xt, method="autodiff"))
    closed = as_np(model.jacobian_frobenius_sq(xt, method="closed_form"))
    fd = finite_difference_frobenius_sq(model.encoder, x)
    assert autodiff.shape == (4,) and np.all(autodiff > 0)
    np.testing.assert_allclose(autodiff, closed, rtol=1e-4)
    np.testing.assert_allclose(autodiff, fd, rtol=1e-3)


def test_autodiff_matches_finite_differences_for_a_deep_encoder(mnist_sample):
    x = mnist_sample[0][4:7]
    model = ContractiveAutoEncoder(input_shape=(28, 28, 1), latent_dim=3, hidden_dims=(12, 8), seed=1)
    autodiff = as_np(model.jacobian_frobenius_sq(ops.convert_to_tensor(x)))
    np.testing.assert_allclose(autodiff, finite_difference_frobenius_sq(model.encoder, x), rtol=1e-3)


def test_projection_estimator_is_unbiased(mnist_sample):
    x = mnist_sample[0][:2]
    model = ContractiveAutoEncoder(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(10,),
                                   contractive_method="projection", num_projections=400, seed=2)
    xt = ops.convert_to_tensor(x)
    exact = as_np(model.jacobian_frobenius_sq(xt, method="autodiff"))
    estimate = as_np(model.jacobian_frobenius_sq(xt))
    np.testing.assert_allclose(estimate, exact, rtol=0.2)


def test_loss_terms_combine_with_the_contractive_weight(mnist_sample):
    x = mnist_sample[0][:8]
    model = ContractiveAutoEncoder(input_shape=(28, 28, 1), latent_dim=5, hidden_dims=(), contractive_weight=0.7)
    terms = terms_numpy(model, x)
    fd = finite_difference_frobenius_sq(model.encoder, x).mean()
    np.testing.assert_allclose(terms["contractive_loss"], fd, rtol=1e-3)
    np.testing.assert_allclose(terms["total_loss"], terms["reconstruction_loss"] + 0.7 * terms["contractive_loss"],
                               rtol=1e-5)


@pytest.mark.parametrize("method", ["autodiff", "closed_form"])
def test_training_with_the_penalty_contracts_the_encoder(method, mnist_sample):
    """The same seed trained with a large lambda ends with a smaller Jacobian than lambda = 0."""
    x = mnist_sample[0][:128]
    norms = {}
    for weight in (0.0, 50.0):
        keras.utils.set_random_seed(0)  # identical initial weights for both runs
        model = ContractiveAutoEncoder(input_shape=(28, 28, 1), latent_dim=8, hidden_dims=(),
                                       contractive_weight=weight, contractive_method=method, seed=4)
        model.compile()
        model.fit(x, epochs=4, batch_size=32, verbose=0, shuffle=False)
        norms[weight] = float(as_np(model.jacobian_frobenius_sq(ops.convert_to_tensor(x))).mean())
    assert norms[50.0] < 0.6 * norms[0.0], norms


def test_at_weight_zero_the_penalty_is_measured_but_adds_nothing_to_the_gradient(mnist_sample):
    """lambda = 0, the CAE's own control: contractive_loss is still logged, and the step's gradient is exactly the
    reconstruction term's (the penalty's second-order backward pass is skipped, not multiplied by zero)."""
    import tensorflow as tf

    x = mnist_sample[0][:16]
    model = ContractiveAutoEncoder(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), contractive_weight=0.0,
                                   seed=3)
    with tf.GradientTape(persistent=True) as tape:
        terms = model.loss_terms(x, training=True)
    assert float(terms["contractive_loss"]) > 0 and float(terms["total_loss"]) == float(terms["reconstruction_loss"])
    variables = model.trainable_variables
    total = tape.gradient(terms["total_loss"], variables)
    rec = tape.gradient(terms["reconstruction_loss"], variables)
    assert all(np.array_equal(as_np(a), as_np(b)) for a, b in zip(total, rec))
    penalty = tape.gradient(terms["contractive_loss"], variables[:2])  # measured: it still has a gradient of its own
    assert any(np.abs(as_np(g)).max() > 0 for g in penalty)
