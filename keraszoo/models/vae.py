"""Variational autoencoder (Kingma & Welling, 2014) and beta-VAE (Higgins et al., 2017)."""

import math
import warnings

import keras
import numpy as np
from keras import ops

from keraszoo.models import checks
from keraszoo.models import losses
from keraszoo.models.base import BaseAutoEncoder
from keraszoo.models.generative import GenerativeMixin
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.reference import np_discretized_logistic_nll
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_gaussian_nll
from keraszoo.models.reference import np_gaussian_params
from keraszoo.models.reference import np_kl_std_normal
from keraszoo.models.reference import np_reparameterize
from keraszoo.models.reference import np_sigmoid
from keraszoo.models.reference_estimates import deterministic
from keraszoo.models.reference_estimates import monte_carlo
from keraszoo.models.registry import keraszoo_export


@keraszoo_export("vae")
class VAE(GenerativeMixin, BaseAutoEncoder):
    """VAE with a diagonal Gaussian posterior and a N(0, I) prior.

    ``q(z|x) = N(mu(x), diag(exp(log_var(x))))``, sampled with the
    reparameterization ``z = mu + exp(log_var / 2) * eps``. Loss per example,
    averaged over the batch::

        reconstruction_loss = -log p(x | z)            (one sample of z; nats)
                              or sum_pixels (x - x_hat)^2   ("mse", x_hat = sigmoid(logits))
        kl_loss             = KL(q(z|x) || N(0, I))    (analytic, nats)
        total_loss          = reconstruction_loss + beta * kl_loss

    With a decoder likelihood (``"bce"``, ``"gaussian"``, ``"discretized_logistic"``)
    and ``beta = 1`` the total is the negative ELBO; ``beta > 1`` gives the
    beta-VAE. With ``"mse"`` the total is literally ``||x - x_hat||^2 + beta * KL``:
    no likelihood, so ``has_likelihood`` is False and ``elbo``/``log_likelihood``
    (and ``keraszoo.evaluate``'s ELBO, IWAE bound and bits/dim) are not defined.
    ``"gaussian"`` is the same objective up to scale: its NLL is
    ``||x - x_hat||^2 / (2 s^2) + const``, so a Gaussian VAE of ``beta`` trains
    ``"mse"`` with ``beta' = 2 s^2 beta`` (docs/theory.md, (2.6)).

    Args:
        beta: weight of the KL term (>= 0).
        reconstruction_loss: ``"bce"`` -- Bernoulli decoder with logits (nats);
            ``"mse"`` -- the squared error ``sum_pixels (x - sigmoid(logits))^2``,
            exactly as every other variant's ``"mse"`` (no likelihood);
            ``"gaussian"`` -- Gaussian decoder ``N(sigmoid(logits), decoder_std^2)``
            with a fixed standard deviation (its NLL in nats, constant included;
            before keraszoo's config version 2 this was called ``"mse"``, and
            such saved configs load as ``"gaussian"`` with a warning);
            ``"discretized_logistic"`` -- the discretized logistic of
            PixelCNN++ (Salimans et al., 2017) over the 256 levels of an 8-bit
            image scaled to ``[0, 1]``, mean ``sigmoid(logits)`` and a learned
            scale per channel (the weight ``decoder_log_scale``, started at
            ``log(decoder_std)``): an exact probability of the discrete image,
            so its negative ELBO and IWAE bound divided by ``pixels * ln 2``
            are bits/dim (``keraszoo.evaluate`` reports them).
        decoder_std: the ``"gaussian"`` decoder's standard deviation (and the
            discretized logistic's initial scale); ignored by ``"bce"`` and ``"mse"``.
        **kwargs: see ``BaseAutoEncoder``.
    """

    # === Metadata ===
    title = "variational autoencoder"
    #: the loss in one line (the README's table of variants).
    loss_summary = ("`-log p(x|z) + β·KL(q(z|x)‖N(0, I))`, reparameterized, analytic KL; `p(x|z)` Bernoulli (`bce`), "
                    "Gaussian of fixed σ = `decoder_std` (`gaussian`), or discretized logistic with a learned scale "
                    "per channel (bits/dim); or `Σ(x - x̂)² + β·KL` (`mse`, no likelihood)")
    papers = (
        Paper("Auto-Encoding Variational Bayes (Kingma & Welling, 2014)", "https://arxiv.org/abs/1312.6114"),
        Paper("beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework "
              "(Higgins et al., 2017)", "https://openreview.net/forum?id=Sy2fzU9gl"),
    )
    presets = {
        "conv_vae": {"architecture": "conv"},
        "beta_vae": {"beta": 4.0},
        "conv_beta_vae": {"architecture": "conv", "beta": 4.0},
    }
    hyperparameters = {"beta": Hyperparameter("VAE KL weight (beta-VAE)")}

    regularizer_names = ("kl_loss",)
    encoder_outputs_per_unit = 2
    has_posterior = True
    #: the reconstruction terms that are a decoder's negative log-likelihood (``has_likelihood``).
    likelihood_losses = ("bce", "gaussian", "discretized_logistic")

    def __init__(self, *args, beta=1.0, decoder_std=0.1, **kwargs):
        self.beta = checks.check_non_negative("beta", beta)
        decoder_std = checks.check_non_negative("decoder_std", decoder_std)
        if decoder_std == 0:
            raise ValueError("`decoder_std` must be > 0.")
        self.decoder_std = decoder_std
        super().__init__(*args, **kwargs)
        if self.reconstruction_loss == "discretized_logistic":
            # === Layers === (the likelihood's own parameter: one log-scale per channel)
            self.decoder_log_scale = self.add_weight(
                shape=(self.image_shape[-1],), initializer=keras.initializers.Constant(math.log(decoder_std)),
                name="decoder_log_scale")

    @classmethod
    def _reconstruction_losses(cls):
        return super()._reconstruction_losses() + ("gaussian", "discretized_logistic")

    @classmethod
    def _upgrade_config(cls, config, version):
        """A config saved before version 2 whose ``"mse"`` meant the Gaussian of ``decoder_std``: now ``"gaussian"``."""
        config = super()._upgrade_config(config, version)
        if version < 2 and config.get("reconstruction_loss") == "mse":
            warnings.warn(
                f"{cls.__name__}: this config was saved before keraszoo's config version 2, when the VAE family's "
                f"reconstruction_loss='mse' meant the Gaussian NLL of fixed sigma decoder_std "
                f"({config.get('decoder_std', 0.1)}); it is loaded as reconstruction_loss='gaussian', the same "
                "model. 'mse' is now the literal squared error sum (x - x_hat)^2.", UserWarning, stacklevel=2)
            config["reconstruction_loss"] = "gaussian"
        return config

    @property
    def has_likelihood(self):
        """True unless the reconstruction term is the literal squared error ``"mse"`` (no log-density)."""
        return self.reconstruction_loss in self.likelihood_losses

    @property
    def default_anomaly_method(self):
        """``elbo`` (the negative ELBO, nats) with a decoder likelihood, else ``reconstruction`` (``"mse"``)."""
        return "elbo" if self.has_likelihood else "reconstruction"

    def _check_likelihood(self, method):
        """Refuses ``method`` (``elbo``, ``log_likelihood``) for a model without a likelihood (``"mse"``)."""
        if not self.has_likelihood:
            raise NotImplementedError(
                f"{type(self).__name__}(reconstruction_loss={self.reconstruction_loss!r}) has no likelihood, so no "
                f"`{method}`: its reconstruction term is the squared error sum (x - x_hat)^2, not a log-density. "
                f"Use reconstruction_loss='gaussian' (the Gaussian decoder of sigma decoder_std, in nats), 'bce' or "
                "'discretized_logistic' for a likelihood.")

    @property
    def discrete_likelihood(self):
        """Whether ``-log p(x|z)`` is a probability of the 8-bit image (bits/dim are then defined)."""
        return self.reconstruction_loss == "discretized_logistic"

    def reconstruction_description(self):
        if self.reconstruction_loss == "gaussian":
            return f"Gaussian NLL (sigma {self.decoder_std:g}), nats"
        if self.reconstruction_loss == "discretized_logistic":
            return "discretized logistic NLL, nats"
        return super().reconstruction_description()

    def paper(self):
        """Kingma & Welling for ``beta == 1``, Higgins et al. (beta-VAE) otherwise."""
        return self.papers[0] if self.beta == 1.0 else self.papers[1]

    # ---------------------------------------------------------------- pieces
    def posterior(self, x, training=False):
        """``(mean, log_var)`` of ``q(z|x)``, each ``(batch, latent_dim)``."""
        params = self.encoder(x, training=training)
        mean, log_var = ops.split(params, 2, axis=-1)
        return mean, log_var

    def reconstruction_nll(self, x, logits):
        """``-log p(x|z)`` per example (nats); for ``"mse"`` the base's squared error ``sum_pixels (x - sigmoid(l))^2``."""
        if self.reconstruction_loss == "gaussian":
            return losses.gaussian_nll(x, ops.sigmoid(logits), math.log(self.decoder_std))
        if self.reconstruction_loss == "discretized_logistic":
            return losses.discretized_logistic_nll(x, ops.sigmoid(logits), self.decoder_log_scale)
        return super().reconstruction_nll(x, logits)  # "bce", "mse"

    def _deterministic_code(self, x, training=False):
        return self.posterior(x, training=training)[0]

    def _sample_code(self, x):
        # encode(x, sample=True); encode(x) is the posterior mean (_deterministic_code)
        mean, log_var = self.posterior(x)
        return losses.reparameterize(mean, log_var, self.seed_generator)

    # ---------------------------------------------------------------- losses
    def loss_weights(self):
        """``kl_loss`` weighted by ``beta`` (HierarchicalVAE, ConditionalVAE: the same; ``kl_loss_l`` are its parts)."""
        return {"kl_loss": float(self.beta)}

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        mean, log_var = self.posterior(x, training=training)
        z = losses.reparameterize(mean, log_var, self.seed_generator)
        logits = self.decoder(z, training=training)
        rec = ops.mean(self.reconstruction_nll(x, logits))
        kl = ops.mean(losses.kl_standard_normal(mean, log_var))
        return {"reconstruction_loss": rec, "kl_loss": kl, "total_loss": rec + self.beta * kl}

    def reference_reconstruction(self, x, logits):
        """NumPy ``reconstruction_nll``: Bernoulli or the squared error (the base's), the Gaussian of ``decoder_std``,
        or the discretized logistic of the learned scales."""
        if self.reconstruction_loss == "gaussian":
            return np_gaussian_nll(x, np_sigmoid(logits), math.log(self.decoder_std))
        if self.reconstruction_loss == "discretized_logistic":
            return np_discretized_logistic_nll(x, np_sigmoid(logits), np.asarray(self.decoder_log_scale))
        return super().reference_reconstruction(x, logits)  # "bce", "mse"

    def reference_terms(self, x, labels, ctx):
        """NumPy: ``mc_samples`` reparameterized draws per image, the analytic KL."""
        del labels
        return self._reference_elbo_terms(x, x, lambda z: np_forward(self.decoder, z), ctx)

    def _reference_elbo_terms(self, x, encoder_input, decode, ctx):
        """The terms of :meth:`loss_terms` in NumPy, for an encoder taking ``encoder_input`` and a decoder ``decode(z)``."""
        mean, log_var = np_gaussian_params(np_forward(self.encoder, encoder_input))
        kl = np_kl_std_normal(mean, log_var)
        rec = np.stack([self.reference_reconstruction(x, decode(np_reparameterize(mean, log_var, ctx.rng)))
                        for _ in range(ctx.mc_samples)], axis=1)
        return {"reconstruction_loss": monte_carlo(rec), "kl_loss": deterministic(kl),
                "total_loss": monte_carlo(rec + self.beta * kl[:, None])}

    def elbo(self, x):
        """Single-sample ELBO ``E_q[log p(x|z)] - KL(q||p)`` per example (nats; beta ignored); needs ``has_likelihood``."""
        self._check_likelihood("elbo")
        x = self._check_inputs(x)
        mean, log_var = self.posterior(x)
        z = losses.reparameterize(mean, log_var, self.seed_generator)
        return -(self.reconstruction_nll(x, self.decoder(z)) + losses.kl_standard_normal(mean, log_var))

    def _log_weights(self, x, k):
        """``log p(x, z_k) - log q(z_k | x)`` for ``k`` posterior samples: shape ``(batch, k)``."""
        mean, log_var = self.posterior(x)
        b = ops.shape(x)[0]
        mean_k = ops.repeat(mean, k, axis=0)
        log_var_k = ops.repeat(log_var, k, axis=0)
        z = losses.reparameterize(mean_k, log_var_k, self.seed_generator)
        x_k = ops.repeat(x, k, axis=0)
        log_px_z = -self.reconstruction_nll(x_k, self.decoder(z))
        log_w = log_px_z + losses.standard_normal_log_prob(z) - losses.gaussian_log_prob(z, mean_k, log_var_k)
        return ops.reshape(log_w, (b, k))

    def log_likelihood(self, x, num_samples=5000, chunk_size=None):
        """Importance-weighted estimate of ``log p(x)`` per example (nats).

        ``log (1/k) sum_i p(x, z_i) / q(z_i | x)``, ``z_i ~ q(z|x)`` -- the IWAE
        bound of Burda et al. (2016); a lower bound that tightens as
        ``num_samples`` grows (``num_samples=1`` is the ELBO). Samples are
        drawn in chunks of ``chunk_size`` to bound memory. Needs ``has_likelihood``.
        """
        self._check_likelihood("log_likelihood")
        num_samples = checks.check_positive_int("num_samples", num_samples)
        x = self._check_inputs(x)
        if chunk_size is None:
            per_image = int(np.prod(self.image_shape))
            chunk_size = max(1, min(num_samples, 2_000_000 // max(1, int(x.shape[0]) * per_image)))
        chunks = []
        done = 0
        while done < num_samples:
            k = min(chunk_size, num_samples - done)
            chunks.append(self._log_weights(x, k))
            done += k
        log_w = ops.concatenate(chunks, axis=1)
        return losses.log_mean_exp(log_w, axis=1)

    def get_config(self):
        config = super().get_config()
        config.update({"beta": self.beta, "decoder_std": self.decoder_std})
        return config
