"""Every loss term of the zoo, written once with ``keras.ops``.

Conventions (used by every variant and by ``keraszoo.evaluation``):

* per-example terms are **summed over the pixels / latent units of an example**
  and returned with shape ``(batch,)``; the models take the **mean over the
  batch**;
* likelihoods are natural-log (nats); images are float in [0, 1];
* decoders output **logits**; ``sigmoid(logits)`` is the Bernoulli mean.
"""

import math

import keras
from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(t):
    return ops.sum(ops.reshape(t, (ops.shape(t)[0], -1)), axis=-1)


def bernoulli_nll(x, logits):
    """-log Bernoulli(x | sigmoid(logits)) summed over pixels (the BCE in nats).

    Uses the stable form ``softplus(l) - x * l`` and is valid for any x in
    [0, 1] (for non-binary x it is the usual continuous BCE).
    """
    return _sum_per_example(ops.softplus(logits) - x * logits)


def squared_error(x, x_hat):
    """``sum_pixels (x - x_hat)^2`` per example."""
    return _sum_per_example(ops.square(x - x_hat))


def gaussian_nll(x, mean, log_std):
    """-log N(x | mean, exp(log_std)^2) summed over pixels (nats)."""
    log_std = ops.broadcast_to(ops.cast(log_std, x.dtype), ops.shape(x))
    z = (x - mean) * ops.exp(-log_std)
    return _sum_per_example(0.5 * ops.square(z) + log_std + 0.5 * LOG_2PI)


def discretized_logistic_nll(x, mean, log_scale, num_bins=256, min_log_scale=-7.0):
    """-log of a discretized logistic likelihood (Salimans et al., 2017) summed over pixels (nats).

    ``x`` and ``mean`` are in ``[0, 1]``; the pixel values are the ``num_bins`` levels ``k / (num_bins - 1)``
    and each level owns the bin of width ``1 / (num_bins - 1)`` around it, the two end bins reaching to
    ``-inf`` and ``+inf``, so the probabilities of the levels sum to one and the value is an exact
    negative log-probability of the 8-bit image: divided by ``pixels * ln 2`` it is bits/dim.
    ``log_scale`` (the logistic's ``log s``, broadcast to ``x``: per channel for keraszoo's VAE) is
    clipped below at ``min_log_scale``. Where the bin's mass underflows (``< 1e-5``), the density at
    the bin's centre times its width stands in for it, as in PixelCNN++.
    """
    log_scale = ops.maximum(ops.broadcast_to(ops.cast(log_scale, x.dtype), ops.shape(x)), min_log_scale)
    half = 0.5 / (num_bins - 1)
    inv_s = ops.exp(-log_scale)
    centred = x - mean
    plus, minus = (centred + half) * inv_s, (centred - half) * inv_s
    log_cdf_plus = plus - ops.softplus(plus)  # log sigmoid(plus): the lowest level's bin (-inf, x + half]
    log_one_minus_cdf_minus = -ops.softplus(minus)  # log (1 - sigmoid(minus)): the highest level's bin
    mass = ops.sigmoid(plus) - ops.sigmoid(minus)
    mid = centred * inv_s
    log_density_mid = mid - log_scale - 2.0 * ops.softplus(mid) + math.log(2.0 * half)
    log_mass = ops.where(mass > 1e-5, ops.log(ops.maximum(mass, 1e-12)), log_density_mid)
    log_prob = ops.where(x < half, log_cdf_plus, ops.where(x > 1.0 - half, log_one_minus_cdf_minus, log_mass))
    return -_sum_per_example(log_prob)


def gaussian_log_prob(z, mean, log_var):
    """log N(z | mean, diag(exp(log_var))) summed over the last axis."""
    return -0.5 * ops.sum(LOG_2PI + log_var + ops.square(z - mean) * ops.exp(-log_var), axis=-1)


def gaussian_entropy(log_var):
    """Differential entropy of N(mean, diag(exp(log_var))) per example, in nats."""
    return 0.5 * ops.sum(LOG_2PI + 1.0 + log_var, axis=-1)


def standard_normal_log_prob(z):
    """log N(z | 0, I) summed over the last axis."""
    return -0.5 * ops.sum(LOG_2PI + ops.square(z), axis=-1)


def kl_standard_normal(mean, log_var):
    """Analytic KL(N(mean, exp(log_var)) || N(0, I)) per example, in nats."""
    return 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var, axis=-1)


def kl_gaussians(mean_q, log_var_q, mean_p, log_var_p):
    """Analytic KL(N(mean_q, var_q) || N(mean_p, var_p)) per example (diagonal)."""
    return 0.5 * ops.sum(
        log_var_p
        - log_var_q
        + (ops.exp(log_var_q) + ops.square(mean_q - mean_p)) * ops.exp(-log_var_p)
        - 1.0,
        axis=-1,
    )


def l1_activity(h):
    """``sum_j |h_j|`` per example (the L1 sparsity penalty before its weight)."""
    return _sum_per_example(ops.abs(h))


def kl_sparsity(h, target, epsilon=1e-6):
    """``sum_j KL(rho || rho_hat_j)`` with ``rho_hat_j`` = mean activation of unit j over the batch.

    ``h`` must lie in (0, 1) (sigmoid codes). This is a batch-level term
    (Ng's sparse autoencoder), returned as a scalar.
    """
    rho_hat = ops.clip(ops.mean(h, axis=0), epsilon, 1.0 - epsilon)
    rho = target
    return ops.sum(rho * ops.log(rho / rho_hat) + (1.0 - rho) * ops.log((1.0 - rho) / (1.0 - rho_hat)))


def sigmoid_cross_entropy(labels, logits):
    """Elementwise binary cross-entropy from logits (for discriminators)."""
    return ops.softplus(logits) - labels * logits


def log_mean_exp(values, axis):
    """Numerically stable ``log(mean(exp(values)))`` along ``axis``."""
    m = ops.stop_gradient(ops.max(values, axis=axis, keepdims=True))
    out = m + ops.log(ops.mean(ops.exp(values - m), axis=axis, keepdims=True))
    return ops.squeeze(out, axis=axis)


def reparameterize(mean, log_var, seed):
    """``mean + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)`` drawn from ``seed``."""
    eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=seed)
    return mean + ops.exp(0.5 * log_var) * eps
