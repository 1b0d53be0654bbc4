"""Hierarchical VAE with ladder-style top-down inference (Sonderby et al., 2016: LVAE)."""

import keras
from keras import ops

from keraszoo.models import losses
from keraszoo.models import networks
from keraszoo.models import validation
from keraszoo.models.registry import keraszoo_export
from keraszoo.models.vae import VAE


@keraszoo_export("hvae")
class HierarchicalVAE(VAE):
    """VAE with ``L >= 2`` stochastic layers ``z_1 (bottom) ... z_L (top)``.

    Generative model: ``p(z_L) = N(0, I)``, ``p(z_l | z_{l+1}) = N(mu_p, sigma_p^2)``
    from a small MLP, ``p(x | z_1)`` from the decoder.

    Inference (LVAE): a deterministic bottom-up pass gives Gaussian estimates
    ``(mu_hat_l, sigma_hat_l)`` for every layer; the top-down pass combines
    each with the generative prior by precision weighting::

        sigma_q^-2 = sigma_hat^-2 + sigma_p^-2
        mu_q       = (mu_hat sigma_hat^-2 + mu_p sigma_p^-2) sigma_q^2

    Loss per example (nats), batch mean, one sample of every ``z_l``::

        reconstruction_loss = -log p(x | z_1)
        kl_loss_L           = KL(q(z_L | x) || N(0, I))                  (analytic)
        kl_loss_l           = KL(q(z_l | z_{l+1}, x) || p(z_l | z_{l+1}))  (analytic given z_{l+1})
        kl_loss             = sum_l kl_loss_l
        total_loss          = reconstruction_loss + beta * kl_loss

    ``latent_dim`` is the size of ``z_1`` (the code that ``encode`` returns).

    Args:
        upper_latent_dims: sizes of ``z_2 ... z_L``; default ``(latent_dim // 2,)``
            (two stochastic layers).
        ladder_hidden_dim: width of the deterministic bottom-up and top-down MLPs.
        **kwargs: see ``VAE``.
    """

    def __init__(self, *args, upper_latent_dims=None, ladder_hidden_dim=256, **kwargs):
        latent_dim = kwargs.get("latent_dim", args[1] if len(args) > 1 else 16)
        if upper_latent_dims is None:
            upper_latent_dims = (max(1, int(latent_dim) // 2),) if isinstance(latent_dim, int) else (1,)
        upper_latent_dims = validation.check_int_tuple("upper_latent_dims", upper_latent_dims, allow_empty=False)
        self.upper_latent_dims = upper_latent_dims
        self.ladder_hidden_dim = validation.check_positive_int("ladder_hidden_dim", ladder_hidden_dim)
        self.extra_metric_names = tuple(f"kl_loss_{i + 1}" for i in range(len(upper_latent_dims) + 1))
        super().__init__(*args, **kwargs)

    @property
    def latent_dims(self):
        """Sizes of all stochastic layers, bottom to top."""
        return (self.latent_dim,) + tuple(self.upper_latent_dims)

    def _encoder_output_dim(self):
        return self.ladder_hidden_dim

    code_activation = "relu"

    def _build_extra_layers(self):
        dims = self.latent_dims
        h = self.ladder_hidden_dim
        self.posterior_heads = [
            networks.build_mlp(h, (), 2 * d, name=f"posterior_head_{i + 1}") for i, d in enumerate(dims)]
        self.bottom_up = [
            networks.build_mlp(h, (h,), h, output_activation="relu", name=f"bottom_up_{i + 2}")
            for i in range(len(dims) - 1)]
        self.top_down_priors = [
            networks.build_mlp(dims[i + 1], (h,), 2 * dims[i], name=f"prior_{i + 1}")
            for i in range(len(dims) - 1)]

    # ----------------------------------------------------------- inference
    def _bottom_up_params(self, x, training=False):
        h = self.encoder(x, training=training)
        params = []
        for i, head in enumerate(self.posterior_heads):
            if i > 0:
                h = self.bottom_up[i - 1](h, training=training)
            params.append(ops.split(head(h, training=training), 2, axis=-1))
        return params

    def _top_down(self, params, sample, training=False):
        """Returns ``(z_1, [kl_1..kl_L], log q(z|x), log p(z))`` (per example)."""
        mean, log_var = params[-1]
        z = losses.reparameterize(mean, log_var, self.seed_generator) if sample else mean
        kls = [losses.kl_standard_normal(mean, log_var)]
        log_q = losses.gaussian_log_prob(z, mean, log_var)
        log_p = losses.standard_normal_log_prob(z)
        for i in reversed(range(len(params) - 1)):
            mean_p, log_var_p = ops.split(self.top_down_priors[i](z, training=training), 2, axis=-1)
            mean_h, log_var_h = params[i]
            log_var_q = -ops.logaddexp(-log_var_h, -log_var_p)
            mean_q = (mean_h * ops.exp(-log_var_h) + mean_p * ops.exp(-log_var_p)) * ops.exp(log_var_q)
            z = losses.reparameterize(mean_q, log_var_q, self.seed_generator) if sample else mean_q
            kls.insert(0, losses.kl_gaussians(mean_q, log_var_q, mean_p, log_var_p))
            log_q = log_q + losses.gaussian_log_prob(z, mean_q, log_var_q)
            log_p = log_p + losses.gaussian_log_prob(z, mean_p, log_var_p)
        return z, kls, log_q, log_p

    def _deterministic_code(self, x, training=False):
        return self._top_down(self._bottom_up_params(x, training), sample=False, training=training)[0]

    def posterior(self, x, training=False):
        raise NotImplementedError(
            "HierarchicalVAE has no single Gaussian posterior; use encode(x) for the code of z_1.")

    # ---------------------------------------------------------------- the API
    def encode(self, x, sample=False):
        """Code of the bottom layer ``z_1``: the top-down posterior means, or a sample."""
        x = self._check_inputs(x)
        return self._top_down(self._bottom_up_params(x), sample=sample)[0]

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        z, kls, _, _ = self._top_down(self._bottom_up_params(x, training), sample=True, training=training)
        rec = ops.mean(self.reconstruction_nll(x, self.decoder(z, training=training)))
        kl_means = [ops.mean(kl) for kl in kls]
        kl = sum(kl_means[1:], kl_means[0])
        terms = {"reconstruction_loss": rec, "kl_loss": kl, "total_loss": rec + self.beta * kl}
        terms.update({f"kl_loss_{i + 1}": v for i, v in enumerate(kl_means)})
        return terms

    def elbo(self, x):
        x = self._check_inputs(x)
        z, kls, _, _ = self._top_down(self._bottom_up_params(x), sample=True)
        return -(self.reconstruction_nll(x, self.decoder(z)) + sum(kls[1:], kls[0]))

    def _log_weights(self, x, k):
        b = ops.shape(x)[0]
        x_k = ops.repeat(x, k, axis=0)
        z, _, log_q, log_p = self._top_down(self._bottom_up_params(x_k), sample=True)
        log_w = -self.reconstruction_nll(x_k, self.decoder(z)) + log_p - log_q
        return ops.reshape(log_w, (b, k))

    def sample_prior(self, n, seed=None):
        """Ancestral sample of ``z_1`` through ``p(z_L) p(z_{L-1}|z_L) ...``."""
        seed = self._sampling_seed(seed)
        z = keras.random.normal((n, self.latent_dims[-1]), seed=seed)
        for i in reversed(range(len(self.top_down_priors))):
            mean_p, log_var_p = ops.split(self.top_down_priors[i](z), 2, axis=-1)
            z = losses.reparameterize(mean_p, log_var_p, seed)
        return z

    def get_config(self):
        config = super().get_config()
        config.update({
            "upper_latent_dims": list(self.upper_latent_dims),
            "ladder_hidden_dim": self.ladder_hidden_dim,
        })
        return config
