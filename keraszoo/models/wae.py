"""Wasserstein autoencoder with the MMD penalty, WAE-MMD (Tolstikhin et al., 2018)."""

import math

import numpy as np
from keras import ops

from keraszoo.models import checks
from keraszoo.models.autoencoder import AutoEncoder
from keraszoo.models.generative import GenerativeMixin
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.metadata import ReportedMetric
from keraszoo.models.numeric import to_numpy
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_imq_mmd
from keraszoo.models.reference_estimates import batch_weights
from keraszoo.models.reference_estimates import batches
from keraszoo.models.reference_estimates import deterministic
from keraszoo.models.reference_estimates import monte_carlo
from keraszoo.models.registry import keraszoo_export

#: The scales ``s`` of the official implementation (github.com/tolstikhin/wae, ``mmd_penalty``):
#: the kernel is ``sum_s k_{C s}``.
DEFAULT_KERNEL_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def squared_distances(a, b):
    """``||a_i - b_j||^2`` for every pair of rows, shape ``(len(a), len(b))``.

    Written as ``|a|^2 + |b|^2 - 2 a.b`` (one matrix product); clipped at 0
    against rounding.
    """
    norms_a = ops.sum(ops.square(a), axis=-1, keepdims=True)
    norms_b = ops.sum(ops.square(b), axis=-1, keepdims=True)
    return ops.maximum(norms_a + ops.transpose(norms_b) - 2.0 * ops.matmul(a, ops.transpose(b)), 0.0)


def imq_mmd(qz, pz, base_constant, scales=DEFAULT_KERNEL_SCALES):
    """Unbiased estimate of ``MMD_k^2`` between the rows of ``qz`` (n codes) and ``pz`` (m prior draws).

    ``k(x, y) = sum_s C s / (C s + ||x - y||^2)`` (inverse multiquadratics,
    ``C = base_constant``) and the U-statistic::

        1/(n(n-1)) sum_{i!=j} k(q_i, q_j) + 1/(m(m-1)) sum_{i!=j} k(p_i, p_j) - 2/(nm) sum_{i,j} k(q_i, p_j)

    The diagonal terms are left out. With fewer than two rows on either side
    the U-statistic is undefined; the estimate is then **0** (no penalty, no
    gradient), on every backend and in graph mode. Computed in float32.
    """
    qz = ops.cast(qz, "float32")
    pz = ops.cast(pz, "float32")
    n = ops.cast(ops.shape(qz)[0], "float32")
    m = ops.cast(ops.shape(pz)[0], "float32")
    d_qq, d_pp, d_qp = squared_distances(qz, qz), squared_distances(pz, pz), squared_distances(qz, pz)
    k_qq, k_pp, k_qp = 0.0, 0.0, 0.0
    for scale in scales:
        c = float(base_constant) * float(scale)
        k_qq = k_qq + c / (c + d_qq)
        k_pp = k_pp + c / (c + d_pp)
        k_qp = k_qp + c / (c + d_qp)
    # Off-diagonal sums: the full sum less the trace (no n x n mask, so n may be dynamic).
    within_q = (ops.sum(k_qq) - ops.trace(k_qq)) / ops.maximum(n * (n - 1.0), 1.0)
    within_p = (ops.sum(k_pp) - ops.trace(k_pp)) / ops.maximum(m * (m - 1.0), 1.0)
    cross = 2.0 * ops.sum(k_qp) / ops.maximum(n * m, 1.0)
    defined = ops.logical_and(n >= 2.0, m >= 2.0)
    return ops.where(defined, within_q + within_p - cross, 0.0)


def _check_scales(scales):
    try:
        values = tuple(scales)
    except TypeError:
        values = None
    if not values or any(isinstance(s, bool) or not isinstance(s, (int, float, np.number)) for s in values):
        raise ValueError(f"`kernel_scales` must be a non-empty sequence of positive numbers, e.g. "
                         f"{list(DEFAULT_KERNEL_SCALES)}; received {scales!r}.")
    values = tuple(float(s) for s in values)
    if any(not math.isfinite(s) or s <= 0 or s > _FLOAT32_MAX for s in values):
        raise ValueError(f"`kernel_scales` must hold finite numbers > 0; received {scales!r}.")
    return values


@keraszoo_export("wae")
class WassersteinAutoEncoder(GenerativeMixin, AutoEncoder):
    """Deterministic autoencoder whose aggregate code distribution ``q(z)`` is
    pulled to the prior ``p(z) = N(0, I)`` by a kernel MMD penalty (WAE-MMD).

    Loss, on a batch of codes ``z_i = f_enc(x_i)`` and as many prior draws
    ``z~_i ~ N(0, I)``::

        reconstruction_loss = E_batch[ c(x, f_dec(z)) ]
        mmd_loss            = MMD_k^2({z_i}, {z~_i})   (unbiased U-statistic, diagonals excluded)
        total_loss          = reconstruction_loss + mmd_weight * mmd_loss

    The kernel is the inverse multiquadratic ``k(x, y) = C / (C + ||x - y||^2)``
    with ``C = 2 * latent_dim * sigma_z^2`` (``sigma_z = 1``: the standard
    prior), which the paper chose for its heavy tails. By default it is summed
    over the scales ``C * s``, ``s in (0.1, 0.2, 0.5, 1, 2, 5, 10)``, as in the
    official implementation (github.com/tolstikhin/wae); ``kernel_scales=(1.0,)``
    gives the single kernel the paper writes. See :func:`imq_mmd`.

    ``mmd_loss`` is the same estimator the penalty is trained with, so it can be
    slightly negative (an unbiased estimate of a quantity >= 0). A batch of one
    image has no within-sample pairs: its ``mmd_loss`` is defined as 0 (that
    step trains on the reconstruction alone). Under ``tf.distribute`` each
    replica estimates the MMD on its own per-replica batch (and its own prior
    draws); the step averages the replicas' estimates, which is unbiased but
    noisier than the estimate on the global batch -- keep the per-replica batch
    in the tens (the JAX backend's data parallelism traces one global batch).

    Args:
        mmd_weight: ``lambda`` (default 10, the paper's MNIST value). The
            official code also scales the squared error by 0.05, so its
            ``lambda = 10`` is ``mmd_weight = 200`` against keraszoo's unscaled
            ``sum_pixels`` reconstruction term.
        kernel_scales: the scales ``s`` the kernel is summed over.
        reconstruction_loss: ``"mse"`` (default) -- the paper's cost
            ``c(x, y) = ||x - y||^2`` summed over pixels, with
            ``y = sigmoid(logits)``; the WAE objective is the optimal-transport
            cost of that ``c``, and the decoder is deterministic (no likelihood
            is claimed). ``"bce"`` -- the Bernoulli negative log-likelihood, the
            house's default for the other autoencoders (not a transport cost:
            ``c(x, x) > 0`` for grey pixels).
        **kwargs: see ``AutoEncoder``.

    ``sample(n, seed)`` decodes ``n`` draws of the prior.
    """

    # === Metadata ===
    title = "Wasserstein autoencoder (MMD penalty)"
    #: the loss in one line (the README's table of variants).
    loss_summary = (
        "`Σ(x - x̂)² + λ·MMD²(q(z), N(0, I))`, deterministic encoder, unbiased U-statistic with an "
        "inverse-multiquadratic kernel summed over 7 scales"
    )
    papers = (Paper("Wasserstein Auto-Encoders (Tolstikhin et al., 2018)", "https://arxiv.org/abs/1711.01558"),)
    presets = {"conv_wae": {"architecture": "conv"}}
    hyperparameters = {"mmd_weight": Hyperparameter("WAE weight lambda of the MMD penalty (model default 10)")}
    reported_metrics = (ReportedMetric("code_mmd", "code MMD² {value:.4f}"),)

    regularizer_names = ("mmd_loss",)

    def __init__(self, *args, mmd_weight=10.0, kernel_scales=DEFAULT_KERNEL_SCALES, reconstruction_loss="mse",
                 **kwargs):
        self.mmd_weight = checks.check_non_negative("mmd_weight", mmd_weight)
        if self.mmd_weight > _FLOAT32_MAX:
            raise ValueError(f"`mmd_weight` must be representable in float32 (<= {_FLOAT32_MAX:.4g}); "
                             f"received {mmd_weight!r}.")
        self.kernel_scales = _check_scales(kernel_scales)
        super().__init__(*args, reconstruction_loss=reconstruction_loss, **kwargs)

    # ---------------------------------------------------------------- pieces
    @property
    def kernel_constant(self):
        """``C = 2 * latent_dim * sigma_z^2`` of the inverse-multiquadratic kernel (``sigma_z = 1``)."""
        return 2.0 * self.latent_dim

    def mmd(self, codes, prior_samples):
        """:func:`imq_mmd` of ``codes`` against ``prior_samples`` with this model's kernel."""
        return imq_mmd(codes, prior_samples, self.kernel_constant, self.kernel_scales)

    # ---------------------------------------------------------------- losses
    def loss_terms(self, x, training=False, prior_samples=None):
        """The terms of the class docstring; ``prior_samples`` replaces the batch's prior draws (tests)."""
        x = self._check_inputs(x)
        z = self.encoder(x, training=training)
        rec = ops.mean(self.reconstruction_nll(x, self.decoder(z, training=training)))
        if prior_samples is None:
            prior_samples = self.sample_prior(ops.shape(x)[0])
        mmd = ops.cast(self.mmd(z, prior_samples), rec.dtype)
        return {"reconstruction_loss": rec, "mmd_loss": mmd, "total_loss": rec + self.mmd_weight * mmd}

    def reference_terms(self, x, labels, ctx):
        """NumPy: the MMD per evaluation batch against ``mc_samples`` sets of prior draws."""
        del labels
        z = np_forward(self.encoder, x)
        rec = deterministic(self.reference_reconstruction(x, np_forward(self.decoder, z)))
        parts = batches(len(x), ctx.batch_size)
        mmd = monte_carlo([[np_imq_mmd(z[b], ctx.rng.standard_normal(z[b].shape), self.kernel_constant, self.kernel_scales)
                            for _ in range(ctx.mc_samples)] for b in parts], batch_weights(parts, len(x)))
        return {"reconstruction_loss": rec, "mmd_loss": mmd, "total_loss": rec.plus(mmd, self.mmd_weight)}

    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        """``code_mmd``: the MMD estimate between the first 1000 test codes and as many prior draws."""
        del x, batch_size
        codes = np.asarray(codes[:1000], "float32")
        prior = self.sample_prior(len(codes), seed=int(seed))
        return {"code_mmd": float(to_numpy(self.mmd(codes, prior)))}

    def get_config(self):
        config = super().get_config()
        config.update({"mmd_weight": self.mmd_weight, "kernel_scales": list(self.kernel_scales)})
        return config
