"""Every loss function of keraszoo.models.losses against an independent NumPy formula."""

import math

import numpy as np
import pytest
from keras import ops

from keraszoo.models import losses
from keraszoo.models.reference import np_discretized_logistic_nll


def np_softplus(v):
    return np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0)


def np_sigmoid(v):
    return 1 / (1 + np.exp(-v))


@pytest.fixture(autouse=True)
def _seeded_rng():
    global rng
    rng = np.random.default_rng(0)


def t(a):
    return ops.convert_to_tensor(np.asarray(a, dtype="float32"))


def n(a):
    return np.asarray(ops.convert_to_numpy(a), dtype="float64")


def test_bernoulli_nll_is_summed_binary_cross_entropy():
    x = rng.random((3, 4, 4, 1))
    logits = rng.normal(size=(3, 4, 4, 1)) * 3
    p = np_sigmoid(logits)
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(1)
    np.testing.assert_allclose(n(losses.bernoulli_nll(t(x), t(logits))), expected, rtol=1e-5)


def test_bernoulli_nll_is_stable_for_large_logits():
    value = n(losses.bernoulli_nll(t(np.ones((1, 2))), t([[200.0, -200.0]])))
    np.testing.assert_allclose(value, [200.0], rtol=1e-6)


def test_squared_error_and_gaussian_nll():
    x, mu = rng.random((2, 5)), rng.random((2, 5))
    np.testing.assert_allclose(n(losses.squared_error(t(x), t(mu))), ((x - mu) ** 2).sum(1), rtol=1e-5)
    sigma = 0.3
    expected = (0.5 * ((x - mu) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)).sum(1)
    np.testing.assert_allclose(n(losses.gaussian_nll(t(x), t(mu), math.log(sigma))), expected, rtol=1e-5)


def test_gaussian_log_probs():
    z, mu, lv = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    var = np.exp(lv)
    expected = (-0.5 * np.log(2 * np.pi * var) - (z - mu) ** 2 / (2 * var)).sum(1)
    np.testing.assert_allclose(n(losses.gaussian_log_prob(t(z), t(mu), t(lv))), expected, rtol=1e-5)
    expected0 = (-0.5 * np.log(2 * np.pi) - z ** 2 / 2).sum(1)
    np.testing.assert_allclose(n(losses.standard_normal_log_prob(t(z))), expected0, rtol=1e-5)


def test_gaussian_entropy_closed_form_and_monte_carlo():
    lv = rng.normal(size=(2, 3))
    expected = (0.5 * np.log(2 * np.pi * np.e * np.exp(lv))).sum(1)
    np.testing.assert_allclose(n(losses.gaussian_entropy(t(lv))), expected, rtol=1e-5)
    mu = rng.normal(size=(1, 3))
    draws = mu + np.exp(0.5 * lv[:1]) * rng.normal(size=(200_000, 3))
    log_q = n(losses.gaussian_log_prob(t(draws), t(np.repeat(mu, len(draws), 0)), t(np.repeat(lv[:1], len(draws), 0))))
    assert abs(-log_q.mean() - expected[0]) < 0.02  # E[-log q] = H[q]


def test_kl_terms_against_closed_forms_and_monte_carlo():
    mu, lv = rng.normal(size=(2, 3)), rng.normal(size=(2, 3)) * 0.5
    var = np.exp(lv)
    expected = 0.5 * (var + mu ** 2 - 1 - lv).sum(1)
    np.testing.assert_allclose(n(losses.kl_standard_normal(t(mu), t(lv))), expected, rtol=1e-5)
    mu_p, lv_p = rng.normal(size=(2, 3)), rng.normal(size=(2, 3)) * 0.5
    var_p = np.exp(lv_p)
    expected = (np.log(np.sqrt(var_p) / np.sqrt(var)) + (var + (mu - mu_p) ** 2) / (2 * var_p) - 0.5).sum(1)
    np.testing.assert_allclose(n(losses.kl_gaussians(t(mu), t(lv), t(mu_p), t(lv_p))), expected, rtol=1e-5)
    # Monte Carlo: KL = E_q[log q - log p]
    z = mu[0] + np.sqrt(var[0]) * rng.normal(size=(400_000, 3))
    log_q = (-0.5 * np.log(2 * np.pi * var[0]) - (z - mu[0]) ** 2 / (2 * var[0])).sum(1)
    log_p = (-0.5 * np.log(2 * np.pi * var_p[0]) - (z - mu_p[0]) ** 2 / (2 * var_p[0])).sum(1)
    assert abs((log_q - log_p).mean() - expected[0]) < 0.02


def test_sparsity_penalties():
    h = rng.random((6, 4)) * 0.5
    np.testing.assert_allclose(n(losses.l1_activity(t(h))), np.abs(h).sum(1), rtol=1e-5)
    rho = 0.05
    rho_hat = h.mean(0)
    expected = (rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))).sum()
    np.testing.assert_allclose(float(n(losses.kl_sparsity(t(h), rho))), expected, rtol=1e-4)
    # zero exactly when every unit's mean activation equals the target
    assert abs(float(n(losses.kl_sparsity(t(np.full((3, 2), rho)), rho)))) < 1e-5


def test_sigmoid_cross_entropy_and_log_mean_exp():
    logits = rng.normal(size=(5,)) * 4
    np.testing.assert_allclose(n(losses.sigmoid_cross_entropy(1.0, t(logits))), -np.log(np_sigmoid(logits)),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(n(losses.sigmoid_cross_entropy(0.0, t(logits))), -np.log(1 - np_sigmoid(logits)),
                               rtol=1e-4, atol=1e-6)
    v = rng.normal(size=(3, 7)) * 50 - 1000
    expected = np.log(np.mean(np.exp(v - v.max(1, keepdims=True)), 1)) + v.max(1)
    np.testing.assert_allclose(n(losses.log_mean_exp(t(v), axis=1)), expected, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_reparameterize_has_the_right_moments(seed):
    import keras

    mu = np.array([[1.0, -2.0]], dtype="float32").repeat(50_000, 0)
    lv = np.log(np.array([[0.25, 4.0]], dtype="float32")).repeat(50_000, 0)
    z = n(losses.reparameterize(t(mu), t(lv), keras.random.SeedGenerator(seed)))
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.03)
    np.testing.assert_allclose(z.std(0), [0.5, 2.0], rtol=0.02)


def test_discretized_logistic_nll_is_the_probability_of_the_8_bit_level():
    levels = rng.integers(0, 256, size=(3, 4, 4, 3))
    levels[0, 0, 0] = (0, 255, 128)  # both end bins
    x = levels / 255.0
    mean = rng.random((3, 4, 4, 3))
    log_s = np.log([0.05, 0.1, 0.3])  # one scale per channel, broadcast
    expected = np_discretized_logistic_nll(x, mean, log_s)
    got = n(losses.discretized_logistic_nll(t(x), t(mean), t(log_s)))
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_discretized_logistic_probabilities_of_the_256_levels_sum_to_one():
    x = (np.arange(256) / 255.0).reshape(256, 1)
    for mean, s in [(0.0, 0.01), (0.37, 0.02), (1.0, 0.3), (0.5, 0.001)]:
        nll = n(losses.discretized_logistic_nll(t(x), t(np.full((256, 1), mean)), t(np.log(s))))
        assert np.all(np.isfinite(nll))
        np.testing.assert_allclose(np.exp(-nll).sum(), 1.0, rtol=1e-3)


def test_discretized_logistic_nll_far_from_the_mean_stays_finite():
    # the bin's mass underflows in float32: the density at its centre times the bin width stands in
    nll = n(losses.discretized_logistic_nll(t([[0.6]]), t([[0.02]]), t(np.log(0.01))))
    mid = (0.6 - 0.02) / 0.01
    expected = -(mid - np.log(0.01) - 2 * np_softplus(mid) + np.log(1 / 255))
    np.testing.assert_allclose(nll, [expected], rtol=1e-4)
