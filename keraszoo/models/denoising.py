"""Denoising autoencoder (Vincent et al., 2008)."""

import keras
import numpy as np
from keras import ops

from keraszoo.models import checks
from keraszoo.models.autoencoder import AutoEncoder
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.metadata import ReportedMetric
from keraszoo.models.numeric import batches
from keraszoo.models.numeric import psnr
from keraszoo.models.numeric import to_numpy
from keraszoo.models.registry import keraszoo_export

NOISE_TYPES = ("gaussian", "masking", "salt_and_pepper")


@keraszoo_export("dae")
class DenoisingAutoEncoder(AutoEncoder):
    """Autoencoder trained to reconstruct the clean ``x`` from a corrupted copy.

    The corruption ``x~ ~ q(x~ | x)`` is applied **during training only**
    (``loss_terms(x, training=True)``, i.e. in ``fit``); ``encode``,
    ``reconstruct``, ``evaluate`` and ``predict`` see the input as given. To
    denoise, pass the noisy image to ``reconstruct``. Loss:
    ``E_batch[ sum_pixels l(x, f_dec(f_enc(x~))) ]``.

    Args:
        noise: ``"gaussian"`` (``clip(x + noise_level * eps, 0, 1)``),
            ``"masking"`` (each pixel set to 0 with probability ``noise_level``)
            or ``"salt_and_pepper"`` (each pixel set to 0 or 1, equally
            likely, with probability ``noise_level``).
        noise_level: the Gaussian sigma, or the corruption probability.
        **kwargs: see ``AutoEncoder``.
    """

    # === Metadata ===
    title = "denoising autoencoder"
    #: the loss in one line (the README's table of variants).
    loss_summary = (
        "reconstruction of clean `x` from `x̃ ~ q(x̃|x)`: gaussian σ, masking p, salt-and-pepper "
        "p (training only)"
    )
    papers = (Paper("Extracting and Composing Robust Features with Denoising Autoencoders (Vincent et al., 2008)",
                    "https://doi.org/10.1145/1390156.1390294"),)
    presets = {"conv_dae": {"architecture": "conv"}}
    hyperparameters = {
        "noise": Hyperparameter("DAE corruption", str, NOISE_TYPES),
        "noise_level": Hyperparameter("DAE corruption level"),
    }
    reported_metrics = (
        ReportedMetric("denoised_psnr_db", "denoised PSNR {value:.2f} dB (noisy {reference})", "noisy_psnr_db"),
        ReportedMetric("denoised_psnr_2x_db", "at 2x noise {value:.2f} dB (noisy {reference})",
                       "noisy_psnr_2x_db"),
    )

    def __init__(self, *args, noise="gaussian", noise_level=0.3, **kwargs):
        checks.check_choice("noise", noise, NOISE_TYPES)
        noise_level = checks.check_non_negative("noise_level", noise_level)
        if noise != "gaussian" and noise_level > 1:
            raise ValueError(f"For noise={noise!r}, `noise_level` is a probability in [0, 1]; received {noise_level}.")
        self.noise = noise
        self.noise_level = noise_level
        super().__init__(*args, **kwargs)

    def corrupt(self, x, seed=None, noise_level=None):
        """Returns a corrupted copy of ``x`` drawn from the training noise.

        ``noise_level`` overrides the training level (e.g. to test robustness
        at twice the noise); ``seed`` (int or ``SeedGenerator``) makes the draw
        reproducible.
        """
        if isinstance(seed, int):
            seed = keras.random.SeedGenerator(seed)
        seed = self.seed_generator if seed is None else seed
        p = self.noise_level if noise_level is None else float(noise_level)
        if self.noise == "gaussian":
            eps = keras.random.normal(ops.shape(x), dtype=x.dtype, seed=seed)
            return ops.clip(x + p * eps, 0.0, 1.0)
        u = keras.random.uniform(ops.shape(x), dtype=x.dtype, seed=seed)
        if self.noise == "masking":
            return ops.where(u < p, ops.zeros_like(x), x)
        # salt and pepper: u < p/2 -> 0 (pepper), p/2 <= u < p -> 1 (salt)
        return ops.where(u < p / 2, ops.zeros_like(x), ops.where(u < p, ops.ones_like(x), x))

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        x_in = self.corrupt(x) if training else x
        logits = self.decoder(self.encoder(x_in, training=training), training=training)
        rec = ops.mean(self.reconstruction_nll(x, logits))
        return {"reconstruction_loss": rec, "total_loss": rec}

    def get_config(self):
        config = super().get_config()
        config.update({"noise": self.noise, "noise_level": self.noise_level})
        return config

    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        """PSNR of the corrupted and the denoised test images, at the training noise and twice it."""
        del codes
        levels = {"": self.noise_level, "_2x": self.noise_level * 2}
        if self.noise != "gaussian":
            levels["_2x"] = min(1.0, levels["_2x"])
        results = {}
        for suffix, level in levels.items():
            noisy, denoised = [], []
            for i, xb in enumerate(batches(x, batch_size)):
                nb = to_numpy(self.corrupt(self._check_inputs(xb), seed=seed + i, noise_level=level))
                noisy.append(nb)
                denoised.append(to_numpy(self.reconstruct(nb)))
            results[f"noisy_psnr{suffix}_db"] = psnr(x, np.concatenate(noisy))
            results[f"denoised_psnr{suffix}_db"] = psnr(x, np.concatenate(denoised))
        return results
