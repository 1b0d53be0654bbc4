"""Sparse autoencoder: L1 activity penalty or KL sparsity (Ng, 2011)."""

import numpy as np
from keras import ops

from keraszoo.models import checks
from keraszoo.models import losses
from keraszoo.models.autoencoder import AutoEncoder
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.metadata import ReportedMetric
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_kl_sparsity
from keraszoo.models.reference_estimates import batch_weights
from keraszoo.models.reference_estimates import batches
from keraszoo.models.reference_estimates import deterministic
from keraszoo.models.registry import keraszoo_export

SPARSITY_TYPES = ("kl", "l1")


@keraszoo_export("sae")
class SparseAutoEncoder(AutoEncoder):
    """Autoencoder with a sparsity penalty on the code ``h = f_enc(x)``.

    * ``sparsity="kl"``: ``sparsity_loss = sum_j KL(rho || rho_hat_j)`` where
      ``rho_hat_j`` is the mean activation of code unit ``j`` over the batch
      and ``rho = sparsity_target``; the code uses a sigmoid.
    * ``sparsity="l1"``: ``sparsity_loss = E_batch[ sum_j |h_j| ]``; the code
      uses a ReLU.

    ``total_loss = reconstruction_loss + sparsity_weight * sparsity_loss``.
    Also reports ``mean_activation`` (mean of ``h`` over units and batch).
    """

    # === Metadata ===
    title = "sparse autoencoder"
    #: the loss in one line (the README's table of variants).
    loss_summary = "`+ λ·Σ_j KL(ρ‖ρ̂_j)` (ρ̂ = batch-mean activation) or `+ λ·Σ|h|`"
    papers = (Paper("Sparse autoencoder, CS294A lecture notes (Ng, 2011)",
                    "https://web.stanford.edu/class/cs294a/sparseAutoencoder_2011new.pdf"),)
    presets = {"conv_sae": {"architecture": "conv"}}
    hyperparameters = {
        "sparsity": Hyperparameter("SAE penalty", str, SPARSITY_TYPES),
        "sparsity_weight": Hyperparameter("weight of the sparsity penalty"),
        "sparsity_target": Hyperparameter("target mean activation rho (KL penalty)"),
    }
    reported_metrics = (
        ReportedMetric("mean_activation", "mean activation {value:.4f}"),
        ReportedMetric("near_zero_fraction", "near-zero {value:.2%}"),
    )

    regularizer_names = ("sparsity_loss",)
    term_definitions = {"sparsity_loss": ("sparsity", {"kl": "KL penalty Σ_j KL(ρ‖ρ̂_j), nats",
                                                        "l1": "L1 penalty Σ_j |h_j|"})}
    extra_metric_names = ("mean_activation",)

    def __init__(self, *args, sparsity="kl", sparsity_weight=None, sparsity_target=0.05, **kwargs):
        checks.check_choice("sparsity", sparsity, SPARSITY_TYPES)
        if sparsity_weight is None:
            sparsity_weight = 1.0 if sparsity == "kl" else 0.1
        self.sparsity = sparsity
        self.sparsity_weight = checks.check_non_negative("sparsity_weight", sparsity_weight)
        self.sparsity_target = checks.check_fraction("sparsity_target", sparsity_target)
        self.code_activation = "sigmoid" if sparsity == "kl" else "relu"
        super().__init__(*args, **kwargs)

    def sparsity_penalty(self, h):
        if self.sparsity == "kl":
            return losses.kl_sparsity(h, self.sparsity_target)
        return ops.mean(losses.l1_activity(h))

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        h = self.encoder(x, training=training)
        logits = self.decoder(h, training=training)
        rec = ops.mean(self.reconstruction_nll(x, logits))
        sparsity = self.sparsity_penalty(h)
        return {
            "reconstruction_loss": rec,
            "sparsity_loss": sparsity,
            "total_loss": rec + self.sparsity_weight * sparsity,
            "mean_activation": ops.mean(h),
        }

    def reference_terms(self, x, labels, ctx):
        """NumPy: the KL penalty per evaluation batch (its mean activation is the batch's), or the L1 per image."""
        del labels
        h = np_forward(self.encoder, x)
        rec = deterministic(self.reference_reconstruction(x, np_forward(self.decoder, h)))
        n = len(x)
        if self.sparsity == "kl":
            parts = batches(n, ctx.batch_size)
            sparsity = deterministic([np_kl_sparsity(h[b], self.sparsity_target) for b in parts], batch_weights(parts, n))
        else:
            sparsity = deterministic(np.abs(h).reshape(n, -1).sum(1))
        return {"reconstruction_loss": rec, "sparsity_loss": sparsity,
                "mean_activation": deterministic(h.reshape(n, -1).mean(1)),
                "total_loss": rec.plus(sparsity, self.sparsity_weight)}

    def get_config(self):
        config = super().get_config()
        config.update({
            "sparsity": self.sparsity,
            "sparsity_weight": self.sparsity_weight,
            "sparsity_target": self.sparsity_target,
        })
        return config

    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        """Mean code activation and the fraction of code values with ``|h| < 0.01``."""
        del x, batch_size, seed
        return {"mean_activation": float(codes.mean()),
                "near_zero_fraction": float(np.mean(np.abs(codes) < 0.01))}
