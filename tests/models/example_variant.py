"""A variant written the way CONTRIBUTING.md says, used to prove that the list is short and true.

The regularized autoencoder (RAE) of Ghosh et al. (2020) with an L2 penalty on the
code: ``total_loss = reconstruction_loss + code_weight * E_batch[||z||^2]``. Loaded
as a pytest plugin (``-p tests.models.example_variant``) by
``test_adding_a_variant.py``, it must then pass the whole registry-wide contract,
appear on ``keraszoo train``'s command line and in the README's table of variants.
"""

import numpy as np
from keras import ops

from keraszoo.models import validation
from keraszoo.models.autoencoder import AutoEncoder
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.metadata import ReportedMetric
from keraszoo.models.registry import keraszoo_export


@keraszoo_export("rae")
class RegularizedAutoEncoder(AutoEncoder):
    """Autoencoder with an L2 penalty on its code (Ghosh et al., 2020).

    Args:
        code_weight: weight of ``code_loss = E_batch[||f_enc(x)||^2]``.
    """

    # === Metadata ===
    title = "regularized autoencoder"
    loss_summary = "`+ λ·‖f_enc(x)‖²`"
    papers = (Paper("From Variational to Deterministic Autoencoders (Ghosh et al., 2020)",
                    "https://arxiv.org/abs/1903.12436"),)
    presets = {"conv_rae": {"architecture": "conv"}}
    hyperparameters = {"code_weight": Hyperparameter("weight of the L2 code penalty")}
    reported_metrics = (ReportedMetric("mean_code_norm", "mean ‖z‖ {value:.3f}"),)

    regularizer_names = ("code_loss",)

    def __init__(self, *args, code_weight=0.01, **kwargs):
        self.code_weight = validation.check_non_negative("code_weight", code_weight)
        super().__init__(*args, **kwargs)

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        z = self.encoder(x, training=training)
        rec = ops.mean(self.reconstruction_nll(x, self.decoder(z, training=training)))
        code = ops.mean(ops.sum(ops.square(z), axis=-1))
        return {"reconstruction_loss": rec, "code_loss": code, "total_loss": rec + self.code_weight * code}

    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        del x, batch_size, seed
        return {"mean_code_norm": float(np.mean(np.linalg.norm(codes, axis=-1)))}

    def get_config(self):
        return {**super().get_config(), "code_weight": self.code_weight}
