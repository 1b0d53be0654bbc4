"""Section 2 of docs/theory.md: the reconstruction losses of keraszoo/models/losses.py against their closed forms."""

import math

import numpy as np
import tensorflow as tf

from keraszoo.models import VAE
from keraszoo.models import losses
from tests.theory.helpers import assert_rel_close
from tests.theory.helpers import float64
from tests.theory.helpers import images
from tests.theory.helpers import np_value
from tests.theory.helpers import sigmoid

RNG_SEED = 20


def value_and_grad(fn, *args):
    """``(fn(*args), d sum(fn) / d args[1])`` in float64 through tf.GradientTape."""
    args = [tf.constant(a, tf.float64) for a in args]
    with tf.GradientTape() as tape:
        tape.watch(args[1])
        out = fn(*args)
        total = tf.reduce_sum(out)
    return np_value(out), np_value(tape.gradient(total, args[1]))


def test_bernoulli_nll_and_gradient():
    """Eqs. (2.2)-(2.3) in docs/theory.md: -log Bernoulli(x | sigmoid(l)) summed over pixels, and its gradient sigmoid(l) - x."""
    rng = np.random.default_rng(RNG_SEED)
    x, logits = images(rng, 6, (3, 3, 2)), 3.0 * rng.standard_normal((6, 3, 3, 2))
    value, grad = value_and_grad(losses.bernoulli_nll, x, logits)
    p = sigmoid(logits)
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(6, -1).sum(1)
    assert_rel_close(value, expected, what="BCE")
    assert_rel_close(grad, p - x, what="dBCE/dl")


def test_bernoulli_minimum_is_the_pixel_entropy():
    """Eq. (2.4) in docs/theory.md: for x in (0, 1) the BCE is minimal at sigmoid(l) = x, where it equals the binary entropy H(x)."""
    rng = np.random.default_rng(RNG_SEED + 1)
    x = rng.uniform(0.05, 0.95, (4, 10))
    best = np.log(x / (1 - x))
    value, grad = value_and_grad(losses.bernoulli_nll, x, best)
    entropy = -(x * np.log(x) + (1 - x) * np.log(1 - x)).sum(1)
    assert_rel_close(value, entropy, what="BCE at the optimum")
    assert np.max(np.abs(grad)) < 1e-12
    worse, _ = value_and_grad(losses.bernoulli_nll, x, best + 0.1 * rng.standard_normal(best.shape))
    assert np.all(worse > value)


def test_squared_error_through_the_sigmoid_gradient():
    """Eq. (2.1) in docs/theory.md: d/dl sum (x - sigmoid(l))^2 = 2 (sigmoid(l) - x) sigmoid(l) (1 - sigmoid(l))."""
    rng = np.random.default_rng(RNG_SEED + 2)
    x, logits = images(rng, 5, (4, 4, 1)), 2.0 * rng.standard_normal((5, 4, 4, 1))
    value, grad = value_and_grad(lambda a, b: losses.squared_error(a, tf.sigmoid(b)), x, logits)
    p = sigmoid(logits)
    assert_rel_close(value, ((x - p) ** 2).reshape(5, -1).sum(1), what="SE")
    assert_rel_close(grad, 2 * (p - x) * p * (1 - p), what="dSE/dl")


def test_gaussian_nll_is_rescaled_squared_error():
    """Eq. (2.5) in docs/theory.md: -log N(x | m, s^2 I) = ||x - m||^2 / (2 s^2) + D (log s + log(2 pi) / 2), and its gradient."""
    rng = np.random.default_rng(RNG_SEED + 3)
    x, mean = images(rng, 5, (4, 4, 3)), rng.uniform(0, 1, (5, 4, 4, 3))
    d = 4 * 4 * 3
    for s in (0.1, 0.5, 2.0):
        value, grad = value_and_grad(lambda a, m, s=s: losses.gaussian_nll(a, m, math.log(s)), x, mean)
        se = ((x - mean) ** 2).reshape(5, -1).sum(1)
        assert_rel_close(value, se / (2 * s**2) + d * (math.log(s) + 0.5 * math.log(2 * math.pi)), what=f"NLL s={s}")
        assert_rel_close(grad, (mean - x) / s**2, what=f"dNLL/dm s={s}")


def test_vae_gaussian_objective_is_squared_error_plus_rescaled_beta():
    """Eq. (2.6) in docs/theory.md: the VAE's "gaussian" term is SE/(2 s^2) + const, so SE + beta' KL is beta = beta'/(2 s^2);
    its "mse" term is SE itself, whatever s."""
    rng = np.random.default_rng(RNG_SEED + 4)
    with float64():
        for s in (0.1, 0.3):
            model = VAE(input_shape=(4, 4, 1), latent_dim=2, hidden_dims=(5,), reconstruction_loss="gaussian", decoder_std=s)
            x = tf.constant(images(rng, 6, (4, 4, 1)))
            logits = tf.constant(rng.standard_normal((6, 4, 4, 1)))
            nll = np_value(model.reconstruction_nll(x, logits))
            se = np_value(losses.squared_error(x, tf.sigmoid(logits)))
            const = 16 * (math.log(s) + 0.5 * math.log(2 * math.pi))
            assert_rel_close(nll, se / (2 * s**2) + const, what=f"VAE gaussian s={s}")
            literal = VAE(input_shape=(4, 4, 1), latent_dim=2, hidden_dims=(5,), reconstruction_loss="mse", decoder_std=s)
            assert_rel_close(np_value(literal.reconstruction_nll(x, logits)), se, what=f"VAE mse s={s}")
            # total = SE/(2s^2) + beta KL + const = (SE + beta' KL)/(2s^2) + const with beta' = 2 s^2 beta
            beta = 1.0
            beta_prime = 2 * s**2 * beta
            kl = rng.uniform(0, 5, 6)
            assert_rel_close(nll + beta * kl, (se + beta_prime * kl) / (2 * s**2) + const, what="rescaled beta")


def logistic_cdf(v):
    return sigmoid(v)


def test_discretized_logistic_is_a_probability_of_the_256_levels():
    """Eq. (2.7) in docs/theory.md: the 256 bin masses sum to 1 and match the logistic CDF differences; bits/dim = NLL / (D ln 2)."""
    levels = np.arange(256) / 255.0
    half = 0.5 / 255.0
    for mean, log_s in ((0.3, -2.0), (0.02, -4.0), (0.9, -1.0), (0.5, -6.0)):
        x = levels.reshape(256, 1, 1, 1)
        nll = np_value(losses.discretized_logistic_nll(tf.constant(x), tf.constant(np.full_like(x, mean)),
                                                       tf.constant([log_s], tf.float64)))
        s = math.exp(log_s)
        upper = np.where(levels > 1 - half, 1.0, logistic_cdf((levels + half - mean) / s))
        lower = np.where(levels < half, 0.0, logistic_cdf((levels - half - mean) / s))
        mass = upper - lower
        assert abs(np.exp(-nll).sum() - 1.0) < 1e-6, (mean, log_s)
        big = mass > 1e-5  # where the code falls back to the density at the centre (PixelCNN++), see the doc
        assert_rel_close(nll[big], -np.log(mass[big]), what=f"mass mean={mean} log_s={log_s}")
    # bits/dim of an image: the NLL summed over D pixels, divided by D ln 2
    rng = np.random.default_rng(RNG_SEED + 5)
    img = np.round(rng.uniform(0, 1, (2, 4, 4, 3)) * 255) / 255
    mean = rng.uniform(0.2, 0.8, img.shape)
    nll = np_value(losses.discretized_logistic_nll(tf.constant(img), tf.constant(mean), tf.constant([-2.0] * 3, tf.float64)))
    s = math.exp(-2.0)
    up = np.where(img > 1 - half, 1.0, logistic_cdf((img + half - mean) / s))
    lo = np.where(img < half, 0.0, logistic_cdf((img - half - mean) / s))
    bits = -np.log2(up - lo).reshape(2, -1).sum(1) / 48
    assert_rel_close(nll / (48 * math.log(2)), bits, what="bits/dim")


def test_discretized_logistic_approaches_the_density_times_the_bin_width():
    """Eq. (2.8) in docs/theory.md: away from the end bins, NLL = -log f(x) - log(1/255) + O(h^2/s^2) (midpoint rule, h = 1/510)."""
    x = (np.arange(60, 200) / 255.0).reshape(-1, 1, 1, 1)
    for mean, s in ((0.5, 0.2), (0.4, 0.05)):
        nll = np_value(losses.discretized_logistic_nll(tf.constant(x), tf.constant(np.full_like(x, mean)),
                                                       tf.constant([math.log(s)], tf.float64)))
        v = (x.ravel() - mean) / s
        log_f = -v - math.log(s) - 2 * np.log1p(np.exp(-v))
        approx = -log_f + math.log(255.0)
        # midpoint rule: |log(mass) - log(f * 2h)| <= (2h)^2 / 24 * max|f''/f| <= (2h)^2 / (24 s^2) (|f''/f| <= 1/s^2)
        bound = (1 / 255.0) ** 2 / (24 * s**2) * 1.01
        assert np.max(np.abs(nll - approx)) <= bound, (mean, s, np.max(np.abs(nll - approx)), bound)
