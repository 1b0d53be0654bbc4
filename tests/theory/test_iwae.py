"""Section 6 of docs/theory.md: the IWAE bound -- the ELBO at k = 1, non-decreasing in k, tending to log p(x)."""

import itertools
import math

import numpy as np
import tensorflow as tf

from keraszoo.models import IWAE
from keraszoo.models import losses
from tests.theory.helpers import assert_rel_close
from tests.theory.helpers import float64
from tests.theory.helpers import images
from tests.theory.helpers import np_value
from tests.theory.helpers import randomize


def test_k1_bound_is_the_elbo():
    """Eq. (6.2) in docs/theory.md: with k = 1 the IWAE's trained bound equals its ELBO terms (iwae_gap = 0)."""
    rng = np.random.default_rng(60)
    with float64():
        for layers in (1, 2):
            model = IWAE(input_shape=(4, 4, 1), latent_dim=4, hidden_dims=(6,), ladder_hidden_dim=5,
                         num_samples=1, stochastic_layers=layers)
            randomize(model, rng, 0.3)
            terms = {k: float(v) for k, v in model.loss_terms(images(rng, 6, (4, 4, 1))).items()}
            assert abs(terms["iwae_gap"]) <= 1e-9 * abs(terms["iwae_bound"])
            assert_rel_close(terms["iwae_bound"], terms["reconstruction_loss"] + terms["kl_loss"])


def subset_average(log_w, k):
    """U_k: the average over every k-subset of the m draws of log (1/k) sum_S w (an unbiased estimate of L_k), per image."""
    m = log_w.shape[1]
    values = [np_value(losses.log_mean_exp(tf.constant(log_w[:, list(s)]), axis=1))
              for s in itertools.combinations(range(m), k)]
    return np.mean(values, axis=0)


def test_bound_is_non_decreasing_in_k_on_every_draw():
    """Eq. (6.3) in docs/theory.md: U_1 <= U_2 <= ... <= U_m on every draw of m log-weights of a keraszoo IWAE (Jensen)."""
    rng = np.random.default_rng(61)
    m = 8
    with float64():
        model = IWAE(input_shape=(4, 4, 1), latent_dim=3, hidden_dims=(6,), ladder_hidden_dim=5, num_samples=m)
        randomize(model, rng, 0.4)
        x = model._check_inputs(images(rng, 16, (4, 4, 1)))
        for _ in range(20):  # 20 draws of 16 images
            log_w = np_value(model._log_weights(x, m))
            u = np.stack([subset_average(log_w, k) for k in range(1, m + 1)], axis=1)
            assert_rel_close(u[:, 0], log_w.mean(axis=1), what="U_1 = ELBO estimate")
            assert_rel_close(u[:, -1], np_value(losses.log_mean_exp(tf.constant(log_w), axis=1)), what="U_m = L_m")
            steps = np.diff(u, axis=1)
            assert np.all(steps >= -1e-9 * np.abs(u[:, 1:])), steps.min()
            assert np.all(steps[:, 0] > 0)  # strictly, unless the weights are equal


def test_log_mean_exp_gradient_is_the_normalized_weights():
    """Eq. (6.4) in docs/theory.md: d log (1/k) sum_i w_i / d log w_i = w_i / sum_j w_j (the IWAE gradient's weights)."""
    rng = np.random.default_rng(62)
    log_w = tf.constant(rng.standard_normal((4, 7)) * 3.0)
    with tf.GradientTape() as tape:
        tape.watch(log_w)
        total = tf.reduce_sum(losses.log_mean_exp(log_w, axis=1))
    lw = np_value(log_w)
    w = np.exp(lw - lw.max(axis=1, keepdims=True))
    assert_rel_close(np_value(tape.gradient(total, log_w)), w / w.sum(axis=1, keepdims=True))


def test_bound_tends_to_log_px_at_rate_one_over_k():
    """Eqs. (6.1), (6.5) in docs/theory.md: linear-Gaussian model, q = prior.

    log p - E L_1 = KL(q || p(z|x)) and log p - E L_k ~ Var(w) / (2 k p^2).
    """
    rng = np.random.default_rng(63)
    a, s, x = 1.0, 1.0, 1.0  # p(z) = N(0, 1), p(x|z) = N(a z, s^2)  =>  p(x) = N(0, a^2 + s^2)
    log_px = -0.5 * (math.log(2 * math.pi * (a * a + s * s)) + x * x / (a * a + s * s))
    v_post = 1.0 / (1.0 + a * a / (s * s))
    m_post = v_post * a * x / (s * s)
    kl_q_post = 0.5 * (1.0 / v_post + m_post**2 / v_post - 1.0 + math.log(v_post))
    # E_q[w^2] = N(x; 0, a^2 + s^2/2) / (2 sqrt(pi) s), so Var(w)/p^2 = E[w^2]/p^2 - 1
    e_w2 = math.exp(-0.5 * x * x / (a * a + s * s / 2)) / math.sqrt(2 * math.pi * (a * a + s * s / 2)) / (2 * math.sqrt(math.pi) * s)
    rel_var = e_w2 / math.exp(2 * log_px) - 1.0
    gaps = {}
    for k, reps in ((1, 200_000), (10, 100_000), (100, 10_000)):
        z = tf.constant(rng.standard_normal((reps * k, 1)))
        log_w = (losses.gaussian_log_prob(tf.constant([[x]], tf.float64), a * z, tf.constant([[2 * math.log(s)]], tf.float64))
                 + losses.standard_normal_log_prob(z) - losses.standard_normal_log_prob(z))
        bound = np_value(losses.log_mean_exp(tf.reshape(log_w, (reps, k)), axis=1))
        gaps[k] = (log_px - bound.mean(), bound.std() / math.sqrt(reps))
    gap1, se1 = gaps[1]
    assert abs(gap1 - kl_q_post) <= 5 * se1, (gap1, kl_q_post, se1)
    assert gaps[1][0] > gaps[10][0] > gaps[100][0] > -5 * gaps[100][1]
    for k in (10, 100):  # delta method, up to O(1/k^2) and the Monte Carlo error
        gap, se = gaps[k]
        assert abs(gap - rel_var / (2 * k)) <= 0.15 * rel_var / (2 * k) + 5 * se, (k, gap, rel_var / (2 * k), se)
