"""A variant written the way CONTRIBUTING.md says, used to prove that the list is short and true: one that
adds a loss term, and so its own NumPy reference of it.

The InfoVAE of Zhao, Song & Ermon (2019) in its MMD form: the VAE's loss plus ``mmd_lambda`` times the
MMD between the codes (posterior means) of a batch and as many prior draws, with the WAE's kernel::

    total_loss = reconstruction_loss + beta * kl_loss + mmd_lambda * mmd_loss

Loaded as a pytest plugin (``-p tests.models.example_variant``) by ``test_adding_a_variant.py``, it must
then pass the whole registry-wide contract, the evaluation's checks, a smoke experiment and its report's
consistency check, appear on ``keraszoo train``'s command line and in the README's table of variants.
"""

import numpy as np
from keras import ops

from keraszoo.models import checks
from keraszoo.models import losses
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.metadata import ReportedMetric
from keraszoo.models.numeric import to_numpy
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_gaussian_params
from keraszoo.models.reference import np_imq_mmd
from keraszoo.models.reference_estimates import batch_weights
from keraszoo.models.reference_estimates import batches
from keraszoo.models.reference_estimates import monte_carlo
from keraszoo.models.registry import keraszoo_export
from keraszoo.models.vae import VAE
from keraszoo.models.wae import DEFAULT_KERNEL_SCALES
from keraszoo.models.wae import imq_mmd


@keraszoo_export("infovae")
class InfoVAE(VAE):
    """VAE whose codes are also pulled to the prior by an MMD penalty (InfoVAE, Zhao et al., 2019).

    Args:
        mmd_lambda: weight of ``mmd_loss``, the inverse-multiquadratic MMD U-statistic between a batch's
            posterior means and as many draws of ``N(0, I)`` (``keraszoo.models.wae.imq_mmd``).
        **kwargs: see ``VAE``.
    """

    # === Metadata ===
    title = "InfoVAE (MMD)"
    loss_summary = "`-log p(x|z) + β·KL(q(z|x)‖N(0, I)) + λ·MMD²(q(z), N(0, I))`"
    papers = (Paper("InfoVAE: Balancing Learning and Inference in Variational Autoencoders (Zhao, Song & Ermon, 2019)",
                    "https://arxiv.org/abs/1706.02262"),)
    presets = {"conv_infovae": {"architecture": "conv"}}
    hyperparameters = {"mmd_lambda": Hyperparameter("InfoVAE weight lambda of the MMD of the codes")}
    reported_metrics = (ReportedMetric("code_mmd", "code MMD² {value:.4f}"),)

    regularizer_names = ("kl_loss", "mmd_loss")

    def __init__(self, *args, mmd_lambda=10.0, **kwargs):
        self.mmd_lambda = checks.check_non_negative("mmd_lambda", mmd_lambda)
        super().__init__(*args, **kwargs)

    def paper(self):
        return self.papers[0]  # VAE.paper picks the beta-VAE's for beta != 1

    def mmd(self, codes, prior_samples):
        return imq_mmd(codes, prior_samples, 2.0 * self.latent_dim, DEFAULT_KERNEL_SCALES)

    def loss_weights(self):
        # VAE's weights the KL by beta (not by a `kl_weight`): extend it with the new term
        return {**super().loss_weights(), "mmd_loss": float(self.mmd_lambda)}

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        mean, log_var = self.posterior(x, training=training)
        z = losses.reparameterize(mean, log_var, self.seed_generator)
        rec = ops.mean(self.reconstruction_nll(x, self.decoder(z, training=training)))
        kl = ops.mean(losses.kl_standard_normal(mean, log_var))
        mmd = ops.cast(self.mmd(mean, self.sample_prior(ops.shape(x)[0])), rec.dtype)
        return {"reconstruction_loss": rec, "kl_loss": kl, "mmd_loss": mmd,
                "total_loss": rec + self.beta * kl + self.mmd_lambda * mmd}

    def reference_terms(self, x, labels, ctx):
        """The VAE's terms in NumPy, plus the MMD per evaluation batch against ``mc_samples`` sets of prior draws."""
        terms = super().reference_terms(x, labels, ctx)
        codes = np_gaussian_params(np_forward(self.encoder, x))[0]
        parts = batches(len(x), ctx.batch_size)
        terms["mmd_loss"] = monte_carlo([[np_imq_mmd(codes[b], ctx.rng.standard_normal(codes[b].shape), 2.0 * self.latent_dim,
                                                     DEFAULT_KERNEL_SCALES) for _ in range(ctx.mc_samples)] for b in parts],
                                        batch_weights(parts, len(x)))
        terms["total_loss"] = terms["total_loss"].plus(terms["mmd_loss"], self.mmd_lambda)
        return terms

    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        del x, batch_size
        codes = np.asarray(codes[:1000], "float32")
        return {"code_mmd": float(to_numpy(self.mmd(codes, self.sample_prior(len(codes), seed=int(seed)))))}

    def get_config(self):
        return {**super().get_config(), "mmd_lambda": self.mmd_lambda}
