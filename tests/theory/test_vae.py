"""Section 5 of docs/theory.md: the VAE's KL term, its gradients, the reparameterization gradient and active units."""

import math

import keras
import numpy as np
import tensorflow as tf

from keraszoo.models import VAE
from keraszoo.models import losses
from tests.theory.helpers import assert_rel_close
from tests.theory.helpers import code_layer_gradient
from tests.theory.helpers import np_value


def np_kl(mu, lv):
    """Eq. (5.3): KL(N(mu, diag e^lv) || N(0, I)) = 1/2 sum_u (e^lv + mu^2 - 1 - lv)."""
    return 0.5 * np.sum(np.exp(lv) + mu**2 - 1.0 - lv, axis=-1)


def test_kl_closed_form_and_gradient():
    """Eqs. (5.3)-(5.4) in docs/theory.md: the analytic KL and dKL/dmu = mu, dKL/dlog sigma^2 = (sigma^2 - 1)/2."""
    rng = np.random.default_rng(50)
    mu, lv = tf.constant(rng.standard_normal((6, 5))), tf.constant(rng.standard_normal((6, 5)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([mu, lv])
        kl = losses.kl_standard_normal(mu, lv)
        total = tf.reduce_sum(kl)
    m, v = np_value(mu), np_value(lv)
    assert_rel_close(np_value(kl), np_kl(m, v), what="KL")
    assert_rel_close(np_value(tape.gradient(total, mu)), m, what="dKL/dmu")
    assert_rel_close(np_value(tape.gradient(total, lv)), 0.5 * (np.exp(v) - 1.0), what="dKL/dlogvar")
    # the general diagonal form with p = N(0, I) is the same number
    general = losses.kl_gaussians(mu, lv, tf.zeros_like(mu), tf.zeros_like(lv))
    assert_rel_close(np_value(general), np_kl(m, v), what="kl_gaussians")


def test_vae_kl_loss_gradient_through_the_encoder():
    """Eqs. (5.4)-(5.5) in docs/theory.md: the model's kl_loss and its gradient on the encoder's Gaussian head, by the chain rule."""
    rng = np.random.default_rng(51)
    _, x, terms, grads, layer = code_layer_gradient(
        lambda: VAE(input_shape=(4, 4, 1), latent_dim=3, hidden_dims=(), beta=2.5), rng, 8, "kl_loss")
    w, b = np_value(layer.kernel), np_value(layer.bias)
    xf = x.reshape(8, -1)
    params = xf @ w + b
    mu, lv = params[:, :3], params[:, 3:]
    assert_rel_close(float(terms["kl_loss"]), np.mean(np_kl(mu, lv)), what="kl_loss")
    assert_rel_close(float(terms["total_loss"]), float(terms["reconstruction_loss"]) + 2.5 * np.mean(np_kl(mu, lv)),
                     what="total = rec + beta KL")
    g = np.concatenate([mu, 0.5 * (np.exp(lv) - 1.0)], axis=1) / 8  # dkl_loss/dparams (batch mean)
    assert_rel_close(grads[layer.kernel.path], xf.T @ g, what="dKL/dW")
    assert_rel_close(grads[layer.bias.path], g.sum(0), what="dKL/db")


def test_reparameterization_gradient_is_pathwise():
    """Eq. (5.6) in docs/theory.md: through z = mu + e^(lv/2) eps, df/dmu = f'(z) and df/dlv = f'(z) (z - mu) / 2."""
    rng = np.random.default_rng(52)
    a, c = rng.uniform(0.5, 2.0, 4), rng.standard_normal(4)
    mu, lv = tf.constant(rng.standard_normal((5, 4))), tf.constant(rng.standard_normal((5, 4)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([mu, lv])
        z = losses.reparameterize(mu, lv, keras.random.SeedGenerator(3))
        f = tf.reduce_sum(0.5 * a * z**2 + c * z)
    zn, m = np_value(z), np_value(mu)
    fprime = a * zn + c
    assert_rel_close(np_value(tape.gradient(f, mu)), fprime, what="df/dmu")
    assert_rel_close(np_value(tape.gradient(f, lv)), 0.5 * fprime * (zn - m), what="df/dlogvar")


def test_reparameterization_gradient_is_unbiased():
    """Eq. (5.7) in docs/theory.md: the mean pathwise gradient equals the gradient of E_q[f] (Monte Carlo, 5 standard errors)."""
    rng = np.random.default_rng(53)
    n, a, c = 40000, np.array([1.0, 2.0, 0.5]), np.array([0.3, -1.0, 0.0])
    mu0, lv0 = np.array([0.5, -1.0, 2.0]), np.array([0.0, -1.0, 0.7])
    mu, lv = tf.constant(np.tile(mu0, (n, 1))), tf.constant(np.tile(lv0, (n, 1)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([mu, lv])
        z = losses.reparameterize(mu, lv, keras.random.SeedGenerator(4))
        f = tf.reduce_sum(0.5 * a * z**2 + c * z)
    del rng
    for got, expected in ((np_value(tape.gradient(f, mu)), a * mu0 + c),  # d/dmu E f = a mu + c
                          (np_value(tape.gradient(f, lv)), 0.5 * a * np.exp(lv0))):  # d/dlv E f = a sigma^2 / 2
        se = got.std(axis=0) / math.sqrt(n)
        assert np.all(np.abs(got.mean(axis=0) - expected) <= 5 * se + 1e-12), (got.mean(0), expected, se)


def test_active_units_bound_the_kl(mnist_sample):
    """Eq. (5.9) in docs/theory.md: E_x KL_u >= Var_x(mu_u) / 2, so an active unit (Var > 0.01) costs >= 0.005 nats; bundled vae_mnist."""
    import keraszoo
    from keraszoo.evaluation import active_units

    model = keraszoo.load("vae_mnist")
    x, _ = mnist_sample
    mean, log_var = (np_value(t) for t in model.posterior(model._check_inputs(x)))
    kl_per_unit = 0.5 * np.mean(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=0)
    variance = mean.var(axis=0)
    assert np.all(kl_per_unit >= 0.5 * variance - 1e-6)
    active = variance > 0.01
    assert active_units(np_value(model.encode(x))) == int(active.sum())
    assert np.all(kl_per_unit[active] >= 0.005 - 1e-6)
    # the units that carry (almost) no KL are the inactive ones: the posterior of such a unit is the prior
    assert np.all(~active[kl_per_unit < 0.005])
    assert math.isclose(kl_per_unit.sum(), np.mean(np_kl(mean, log_var)), rel_tol=1e-9)
