"""Sections 9 and 10 of docs/theory.md: the denoising criterion, the WAE's MMD U-statistic and the AAE's discriminator."""

import itertools
import math

import keras
import numpy as np
import tensorflow as tf

from keraszoo.models import AdversarialAutoEncoder
from keraszoo.models import DenoisingAutoEncoder
from keraszoo.models import WassersteinAutoEncoder
from keraszoo.models import losses
from keraszoo.models.wae import DEFAULT_KERNEL_SCALES
from keraszoo.models.wae import imq_mmd
from tests.theory.helpers import assert_rel_close
from tests.theory.helpers import float64
from tests.theory.helpers import images
from tests.theory.helpers import np_value
from tests.theory.helpers import randomize
from tests.theory.helpers import sigmoid

#: imq_mmd computes in float32 (see keraszoo/models/wae.py): its terms are sums of n^2 kernel values of size
#: at most len(scales) = 7, so the comparison is relative to the terms' size, at 2e-6 (float32 eps 1.2e-7, x ~16).
MMD_RTOL = 2e-6


def test_linear_denoiser_pays_sigma_squared_jacobian():
    """Eq. (9.2) in docs/theory.md: E||x - r(x + eps)||^2 = ||x - r(x)||^2 + sigma^2 ||A||_F^2 for an affine r, DAE's own noise."""
    rng = np.random.default_rng(90)
    sigma, n = 0.02, 4000
    with float64():
        model = DenoisingAutoEncoder(input_shape=(4, 4, 1), latent_dim=3, hidden_dims=(), noise="gaussian", noise_level=sigma,
                                     seed=1)
        randomize(model, rng)
        x = model._check_inputs(images(rng, 1, (4, 4, 1), 0.3, 0.7))  # 15 sigma from the clip at 0 and 1
        xs = tf.repeat(x, n, axis=0)
        noisy = model.corrupt(xs)
        r = lambda v: model.decoder(model.encoder(v))  # noqa: E731 - affine: Dense(3) then Dense(16), no sigmoid
        values = np_value(losses.squared_error(xs, r(noisy)))
        clean = float(np_value(losses.squared_error(x, r(x)))[0])
        w_e, w_d = (np_value(model.encoder.get_layer("encoder_out").kernel), np_value(model.decoder.get_layer("decoder_logits").kernel))
        e = (np_value(x) - np_value(r(x))).reshape(-1)
    a = w_e @ w_d  # r(v) = v A + c for row vectors
    eps = (np_value(noisy) - np_value(xs)).reshape(n, -1)
    control = -2.0 * (eps @ a) @ e  # the first-order term: mean 0, removed to see the sigma^2 term
    corrected = values - control
    se = corrected.std() / math.sqrt(n)
    predicted = clean + sigma**2 * np.sum(a**2)
    assert abs(corrected.mean() - predicted) <= 5 * se, (corrected.mean(), predicted, se)
    assert sigma**2 * np.sum(a**2) > 20 * se  # the Jacobian term is resolved


def test_optimal_denoiser_is_the_score_step():
    """Eq. (9.3) in docs/theory.md: for Gaussian data the least-squares denoiser of DAE noise is x~ + sigma^2 d/dx~ log p_sigma(x~)."""
    rng = np.random.default_rng(91)
    sigma, m, v, n = 0.05, 0.5, 0.01, 200_000
    model = DenoisingAutoEncoder(input_shape=(4, 4, 1), latent_dim=2, hidden_dims=(), noise="gaussian", noise_level=sigma, seed=2)
    x = (m + math.sqrt(v) * rng.standard_normal((n // 16, 4, 4, 1))).astype("float32")
    noisy = np_value(model.corrupt(tf.constant(x))).ravel()
    clean = x.astype("float64").ravel()
    slope, intercept = np.polyfit(noisy, clean, 1)  # the affine r minimising E (x - r(x~))^2
    # the score of p_sigma = N(m, v + sigma^2) by autodiff of keraszoo's gaussian_log_prob
    grid = tf.constant(np.linspace(0.3, 0.7, 5).reshape(-1, 1))
    with tf.GradientTape() as tape:
        tape.watch(grid)
        log_p = tf.reduce_sum(losses.gaussian_log_prob(grid, tf.constant(m, tf.float64), tf.constant([math.log(v + sigma**2)], tf.float64)))
    tweedie = np_value(grid).ravel() + sigma**2 * np_value(tape.gradient(log_p, grid)).ravel()
    fitted = slope * np_value(grid).ravel() + intercept
    assert np.max(np.abs(fitted - tweedie)) < 2e-3, (fitted, tweedie)  # Monte Carlo: slope SE ~ 1e-3 at n = 2e5
    assert np.max(np.abs(tweedie - np_value(grid).ravel())) > 0.01  # the score term is resolved


def np_imq(a, b, c, scales):
    d = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    return sum(c * s / (c * s + d) for s in scales)


def np_mmd_u(q, p, c, scales=DEFAULT_KERNEL_SCALES):
    """Eq. (10.3): the U-statistic, diagonals left out; also returns the size of its terms."""
    n, m = len(q), len(p)
    kqq, kpp, kqp = np_imq(q, q, c, scales), np_imq(p, p, c, scales), np_imq(q, p, c, scales)
    wq = (kqq.sum() - np.trace(kqq)) / (n * (n - 1))
    wp = (kpp.sum() - np.trace(kpp)) / (m * (m - 1))
    cross = 2 * kqp.sum() / (n * m)
    return wq + wp - cross, wq + wp + cross


def test_wae_mmd_is_the_u_statistic():
    """Eqs. (10.2)-(10.3) in docs/theory.md: the WAE's mmd_loss, kernel sum_s Cs/(Cs + ||a-b||^2), C = 2 d, against NumPy."""
    rng = np.random.default_rng(100)
    model = WassersteinAutoEncoder(input_shape=(4, 4, 1), latent_dim=3, hidden_dims=(6,))
    randomize(model, rng)
    x = images(rng, 10, (4, 4, 1))
    prior = rng.standard_normal((10, 3)).astype("float32")
    terms = model.loss_terms(x, prior_samples=tf.constant(prior))
    codes = np_value(model.encoder(tf.constant(x, tf.float32)))
    expected, size = np_mmd_u(codes, prior.astype("float64"), 2.0 * 3)
    assert abs(float(terms["mmd_loss"]) - expected) <= MMD_RTOL * size
    assert_rel_close(float(terms["total_loss"]), float(terms["reconstruction_loss"]) + 10.0 * float(terms["mmd_loss"]), rtol=1e-6)


def test_mmd_u_statistic_is_exactly_unbiased():
    """Eq. (10.4) in docs/theory.md: over every sample of n = m = 2 from two 3-point distributions, E[U] = MMD^2; V is biased up."""
    rng = np.random.default_rng(101)
    qs, ps, c = rng.standard_normal((3, 2)), rng.standard_normal((3, 2)) + 0.7, 4.0
    population = np_imq(qs, qs, c, DEFAULT_KERNEL_SCALES).mean() + np_imq(ps, ps, c, DEFAULT_KERNEL_SCALES).mean() \
        - 2 * np_imq(qs, ps, c, DEFAULT_KERNEL_SCALES).mean()
    u_values, v_values = [], []
    for iq in itertools.product(range(3), repeat=2):
        for ip in itertools.product(range(3), repeat=2):
            q, p = qs[list(iq)], ps[list(ip)]
            u_values.append(float(imq_mmd(tf.constant(q, tf.float32), tf.constant(p, tf.float32), c)))
            v_values.append(np_imq(q, q, c, DEFAULT_KERNEL_SCALES).mean() + np_imq(p, p, c, DEFAULT_KERNEL_SCALES).mean()
                            - 2 * np_imq(q, p, c, DEFAULT_KERNEL_SCALES).mean())
    assert abs(np.mean(u_values) - population) <= MMD_RTOL * 4 * len(DEFAULT_KERNEL_SCALES)
    # Eq. (10.5): E[V] - MMD^2 = (E k(q,q) - E k(q,q'))/n + (E k(p,p) - E k(p,p'))/m
    bias = (len(DEFAULT_KERNEL_SCALES) - np_imq(qs, qs, c, DEFAULT_KERNEL_SCALES).mean()) / 2 \
        + (len(DEFAULT_KERNEL_SCALES) - np_imq(ps, ps, c, DEFAULT_KERNEL_SCALES).mean()) / 2
    assert_rel_close(np.mean(v_values) - population, bias)
    assert bias > 0.1


def test_aae_discriminator_at_its_optimum_measures_jensen_shannon():
    """Eq. (10.1) in docs/theory.md: with D*(z) = p/(p+q) the AAE's discriminator_loss is log 2 - JSD(p || q) and stationary."""
    rng = np.random.default_rng(110)
    mu, n = 1.5, 200_000
    disc = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model = AdversarialAutoEncoder(input_shape=(4, 4, 1), latent_dim=1, hidden_dims=(), discriminator=disc)
    # log p(z)/q(z) for p = N(0, 1), q = N(mu, 1) is -mu z + mu^2/2: a Dense(1) layer holds it exactly
    disc.layers[-1].set_weights([np.array([[-mu]], "float32"), np.array([mu * mu / 2], "float32")])
    codes = tf.constant(mu + rng.standard_normal((n, 1)), tf.float32)
    prior = tf.constant(rng.standard_normal((n, 1)), tf.float32)
    with tf.GradientTape() as tape:
        disc_loss, _ = model._adversarial_terms(None, codes, prior)
    grads = [np_value(g) for g in tape.gradient(disc_loss, disc.trainable_variables)]
    grid = np.linspace(-12, 12 + mu, 200_001)
    p, q = np.exp(-grid**2 / 2) / math.sqrt(2 * math.pi), np.exp(-(grid - mu) ** 2 / 2) / math.sqrt(2 * math.pi)
    mid = (p + q) / 2
    jsd = 0.5 * np.trapezoid(p * np.log(p / mid) + q * np.log(q / mid), grid)
    d_real, d_fake = -mu * np_value(prior) + mu * mu / 2, -mu * np_value(codes) + mu * mu / 2
    per_pair = 0.5 * (np.logaddexp(0, -d_real) + np.logaddexp(0, d_fake))
    se = float(per_pair.std()) / math.sqrt(n)  # Monte Carlo standard error of the batch mean
    assert abs(float(disc_loss) - (math.log(2) - jsd)) <= 5 * se, (float(disc_loss), math.log(2) - jsd)
    # the gradient is a batch mean of (D - label) (z, 1) / 2 terms: zero in expectation at D*
    sd_w = np.std(0.5 * (sigmoid(d_real) - 1) * np_value(prior)) + np.std(0.5 * sigmoid(d_fake) * np_value(codes))
    sd_b = np.std(0.5 * (sigmoid(d_real) - 1)) + np.std(0.5 * sigmoid(d_fake))
    assert abs(grads[0].item()) <= 5 * sd_w / math.sqrt(n) and abs(grads[1].item()) <= 5 * sd_b / math.sqrt(n), grads
