"""A variant written the way CONTRIBUTING.md says that keeps its parent's maths: no loss, no NumPy reference
of its own.

A VAE whose decoder is the Gaussian ``N(sigmoid(logits), decoder_std^2)`` by default (Kingma & Welling, 2014,
appendix C.2), offered under its own key, defaults, flag and preset. Its loss terms and their NumPy reference
(``VAE.reference_terms``, with ``VAE.reference_reconstruction``'s Gaussian NLL) are the VAE's, inherited.
Loaded as a pytest plugin (``-p tests.models.example_inherited_variant``) by ``test_adding_a_variant.py``.
"""

from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.registry import keraszoo_export
from keraszoo.models.vae import VAE


@keraszoo_export("gauss_vae")
class GaussianVAE(VAE):
    """VAE with a Gaussian decoder of fixed standard deviation ``decoder_std`` (default 0.2).

    Args:
        reconstruction_loss: ``"gaussian"`` (default): the Gaussian NLL in nats; see ``VAE``.
        decoder_std: the decoder's standard deviation.
        **kwargs: see ``VAE``.
    """

    # === Metadata ===
    title = "Gaussian-decoder VAE"
    loss_summary = "`-log N(x; sigmoid(f_dec(z)), σ²) + β·KL(q(z|x)‖N(0, I))`, σ fixed"
    papers = (Paper("Auto-Encoding Variational Bayes (Kingma & Welling, 2014)", "https://arxiv.org/abs/1312.6114"),)
    presets = {"conv_gauss_vae": {"architecture": "conv"}, "sharp_gauss_vae": {"decoder_std": 0.05}}
    hyperparameters = {"decoder_std": Hyperparameter("standard deviation of the Gaussian decoder")}

    def __init__(self, *args, reconstruction_loss="gaussian", decoder_std=0.2, **kwargs):
        super().__init__(*args, reconstruction_loss=reconstruction_loss, decoder_std=decoder_std, **kwargs)

    def paper(self):
        return self.papers[0]  # VAE.paper picks the beta-VAE's for beta != 1
