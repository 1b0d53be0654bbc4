"""Denoising autoencoder (Vincent et al., 2008)."""

import types

import keras
import numpy as np
from keras import ops

from keraszoo.models import checks
from keraszoo.models.autoencoder import AutoEncoder
from keraszoo.models.checked_data import _is_dataset
from keraszoo.models.checked_data import _tensorflow
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

    The corruption ``x~ ~ q(x~ | x)`` is drawn afresh at every training step
    (``loss_terms(x, training=True)``, i.e. in ``fit``); ``encode``,
    ``reconstruct``, ``predict`` and ``evaluate(x)`` see the input as given. To
    denoise, pass the noisy image to ``reconstruct``. Loss:
    ``E_batch[ sum_pixels l(x, f_dec(f_enc(x~))) ]``.

    **Validation is on the training objective.** ``fit(..., validation_data=x_val)``
    corrupts ``x_val`` once, with a seed fixed for the whole fit (the model's
    ``seed``, or 0), and computes the validation loss of the corrupted images
    against the clean ones: the same images and the same noise every epoch,
    so ``val_loss`` tracks the denoising loss and early stopping selects the
    best denoiser. (Validated on clean images instead, a denoiser can look
    worst exactly when it denoises best, and early stopping then keeps an
    early, under-trained epoch.) ``evaluate(x_noisy, x_clean)`` computes that
    loss for given pairs; ``evaluate(x)`` the reconstruction of clean ``x``.
    Arrays and ``tf.data`` datasets are corrupted so; other validation data
    (a generator, a ``PyDataset``) is used as given.

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
        "p (a fresh draw each step; validated on one fixed draw)"
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
        draw = keras.random.normal if self.noise == "gaussian" else keras.random.uniform
        return _apply_noise(self.noise, x, draw(ops.shape(x), dtype=x.dtype, seed=seed), p, ops)

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        return self._denoising_terms(self.corrupt(x) if training else x, x, training)

    def _denoising_terms(self, x_in, target, training):
        logits = self.decoder(self.encoder(x_in, training=training), training=training)
        rec = ops.mean(self.reconstruction_nll(target, logits))
        return {"reconstruction_loss": rec, "total_loss": rec}

    def step_terms(self, x, y, training):
        """``evaluate(x_noisy, x_clean)``: a ``y`` of ``x``'s shape is the clean target of the given input."""
        if training or y is None or tuple(y.shape[1:]) != tuple(x.shape[1:]):
            return super().step_terms(x, y, training)
        return self._denoising_terms(self._check_inputs(x), self._check_inputs(y), training)

    # ------------------------------------------------------------ validation
    @property
    def validation_seed(self):
        """The seed of the validation images' corruption (fixed for a fit): the model's ``seed``, or 0."""
        return 0 if self.seed is None else int(self.seed)

    def prepare_validation_data(self, data):
        """``fit``'s ``validation_data`` as ``(x_val corrupted, x_val)`` pairs (see the class docstring)."""
        if data is None:
            return None
        if _is_dataset(data):
            return self._corrupted_dataset(data)
        images = data[0] if isinstance(data, (list, tuple)) and 1 <= len(data) <= 3 else data
        if not (hasattr(images, "shape") and len(images.shape) == len(self.image_shape) + 1):
            return data  # a generator, a PyDataset, ...: validated as given
        images = np.asarray(to_numpy(images), dtype="float32")
        noisy = [to_numpy(self.corrupt(ops.convert_to_tensor(xb), seed=self.validation_seed + i))
                 for i, xb in enumerate(batches(images, 1024))]
        return np.concatenate(noisy).astype("float32"), images

    def _corrupted_dataset(self, ds):
        """A dataset of ``x`` (or ``(x, y[, sw])``) batches as ``(x corrupted, x)``: batch ``i``'s noise drawn with
        the stateless seed ``(validation_seed, i)``, the same every epoch."""
        tf = _tensorflow()
        tf_ops = types.SimpleNamespace(where=tf.where, clip=tf.clip_by_value, zeros_like=tf.zeros_like,
                                       ones_like=tf.ones_like)
        noise, level, seed = self.noise, float(self.noise_level), self.validation_seed

        def pair(i, element):
            x = element[0] if isinstance(element, tuple) else element
            draw = tf.random.stateless_normal if noise == "gaussian" else tf.random.stateless_uniform
            u = draw(tf.shape(x), seed=tf.stack([tf.cast(seed, tf.int64), i]), dtype=x.dtype)
            return _apply_noise(noise, x, u, level, tf_ops), x

        return ds.enumerate().map(pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

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


def _apply_noise(noise, x, draw, p, xp):
    """``x~`` from ``x`` and one draw per pixel (standard normal for ``"gaussian"``, else uniform on [0, 1)),
    with ``xp`` the ops (``keras.ops``, or TensorFlow's in a ``tf.data`` map)."""
    if noise == "gaussian":
        return xp.clip(x + p * draw, 0.0, 1.0)
    if noise == "masking":
        return xp.where(draw < p, xp.zeros_like(x), x)
    # salt and pepper: u < p/2 -> 0 (pepper), p/2 <= u < p -> 1 (salt)
    return xp.where(draw < p / 2, xp.zeros_like(x), xp.where(draw < p, xp.ones_like(x), x))
