"""Hierarchical VAE: ladder (LVAE, Sonderby et al., 2016) or bottom-up (Burda et al., 2016) inference."""

import keras
import numpy as np
from keras import ops

from keraszoo.models import checks
from keraszoo.models import losses
from keraszoo.models import networks
from keraszoo.models.metadata import Paper
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_gaussian_entropy
from keraszoo.models.reference import np_gaussian_params
from keraszoo.models.reference import np_kl_gaussians
from keraszoo.models.reference import np_kl_std_normal
from keraszoo.models.reference import np_log_normal
from keraszoo.models.reference import np_reparameterize
from keraszoo.models.reference import np_standard_normal_log_prob
from keraszoo.models.reference_estimates import monte_carlo
from keraszoo.models.registry import keraszoo_export
from keraszoo.models.schedules import KLWarmup
from keraszoo.models.vae import VAE

# The stochastic bottom-up hierarchy (IWAE's, and HierarchicalVAE(inference="bottom_up")) learns the variances of
# q(z_{l+1}|z_l) and p(z_l|z_{l+1}) from samples of the layer below: an early step that widens q(z_1|x) feeds the
# prior networks far-out codes, and an unbounded log-variance there overflows exp(-log_var) to inf, then NaN.
# Their log-variances are clipped to [-LOG_VAR_BOUND, LOG_VAR_BOUND] (variances e^-20..e^20), an identity on every
# value a trained model produces.
LOG_VAR_BOUND = 20.0
#: Epochs of linear KL warm-up of the ladder by default (Sonderby et al. warm up over the first 10 % of training).
LADDER_KL_WARMUP_EPOCHS = 10


def _bounded_gaussian(params):
    mean, log_var = ops.split(params, 2, axis=-1)
    return mean, ops.clip(log_var, -LOG_VAR_BOUND, LOG_VAR_BOUND)


@keraszoo_export("hvae")
class HierarchicalVAE(VAE):
    """VAE with ``L >= 2`` stochastic layers ``z_1 (bottom) ... z_L (top)``.

    Generative model: ``p(z_L) = N(0, I)``, ``p(z_l | z_{l+1}) = N(mu_p, sigma_p^2)``
    from a small MLP, ``p(x | z_1)`` from the decoder.

    Inference, ``inference="ladder"`` (LVAE): a deterministic bottom-up pass gives
    Gaussian estimates ``(mu_hat_l, sigma_hat_l)`` for every layer; the top-down
    pass combines each with the generative prior by precision weighting::

        sigma_q^-2 = sigma_hat^-2 + sigma_p^-2
        mu_q       = (mu_hat sigma_hat^-2 + mu_p sigma_p^-2) sigma_q^2

    Loss per example (nats), batch mean, one sample of every ``z_l``::

        reconstruction_loss = -log p(x | z_1)     (the VAE's terms: "mse" is sum_pixels (x - x_hat)^2, no likelihood)
        kl_loss_L           = KL(q(z_L | x) || N(0, I))                  (analytic)
        kl_loss_l           = KL(q(z_l | z_{l+1}, x) || p(z_l | z_{l+1}))  (analytic given z_{l+1})
        kl_loss             = sum_l kl_loss_l
        total_loss          = reconstruction_loss + beta * kl_loss

    Inference, ``inference="bottom_up"`` (the two-stochastic-layer VAE/IWAE of
    Burda et al., 2016): ``q(z_1 | x) q(z_2 | z_1) ... q(z_L | z_{L-1})``, each a
    Gaussian from an MLP; the generative model is the same. Because ``z_{l+1}``
    is drawn from ``z_l``, only the top layer's KL is analytic; the others are
    one-sample estimates with the entropy of ``q`` in closed form::

        kl_loss_L = KL(q(z_L | z_{L-1}) || N(0, I))                       (analytic given z_{L-1})
        kl_loss_l = -H[q(z_l | z_{l-1})] - log p(z_l | z_{l+1})           (one sample, l < L)

    Their sum is an unbiased estimate of ``E_q[log q(z|x) - log p(z)]``, so
    ``total_loss`` is again ``-ELBO`` (for ``beta = 1`` and a decoder likelihood). Ladder inference needs
    KL warm-up and batch normalization to keep its upper layers active (Sonderby
    et al.): without them it collapses (KL 14 nats against the VAE's 24 after 34
    epochs on MNIST), so both are its defaults; bottom-up inference trains well
    without them.

    KL warm-up: during ``fit`` the KL weight is ``beta * min(1, epoch /
    kl_warmup_epochs)`` (epoch from 0; a callback the model adds to ``fit``
    sets it), logged per epoch as ``kl_weight``, so ``total_loss =
    reconstruction_loss + kl_weight * kl_loss`` in the training history;
    evaluation and the trained model use ``beta``.

    ``latent_dim`` is the size of ``z_1`` (the code that ``encode`` returns).

    Args:
        upper_latent_dims: sizes of ``z_2 ... z_L``; default ``(latent_dim // 2,)``
            (two stochastic layers).
        ladder_hidden_dim: width of the deterministic bottom-up and top-down MLPs.
        inference: ``"ladder"`` (default) or ``"bottom_up"``.
        batch_norm: batch normalization in the deterministic bottom-up and
            top-down MLPs; default ``True`` for the ladder, ``False`` bottom-up.
        kl_warmup_epochs: epochs of linear KL warm-up; default
            ``LADDER_KL_WARMUP_EPOCHS`` (10) for the ladder, 0 (none) bottom-up.
        **kwargs: see ``VAE``.
    """

    # === Metadata ===
    title = "hierarchical variational autoencoder"
    #: the loss in one line (the README's table of variants).
    loss_summary = (
        "≥ 2 stochastic layers, `p(z_L)…p(z₁|z₂)p(x|z₁)`; inference `ladder` (LVAE, "
        "precision-weighted top-down; batch norm and a 10-epoch KL warm-up by default) or `bottom_up` "
        "(`q(z₁|x)q(z₂|z₁)`, IWAE paper); `-log p(x|z₁) + β·Σ_l KL_l` (`mse`: `Σ(x - x̂)² + β·Σ_l KL_l`)"
    )
    papers = (
        Paper("Ladder Variational Autoencoders (Sonderby et al., 2016)", "https://arxiv.org/abs/1602.02282"),
        Paper("Importance Weighted Autoencoders (Burda, Grosse & Salakhutdinov, 2016)",
              "https://arxiv.org/abs/1509.00519"),
    )
    presets = {"conv_hvae": {"architecture": "conv"}}

    INFERENCE = ("ladder", "bottom_up")

    def __init__(self, *args, upper_latent_dims=None, ladder_hidden_dim=256, inference="ladder", batch_norm=None,
                 kl_warmup_epochs=None, **kwargs):
        latent_dim = kwargs.get("latent_dim", args[1] if len(args) > 1 else 16)
        if upper_latent_dims is None:
            upper_latent_dims = (max(1, int(latent_dim) // 2),) if isinstance(latent_dim, int) else (1,)
        upper_latent_dims = checks.check_int_tuple("upper_latent_dims", upper_latent_dims, allow_empty=False)
        self.upper_latent_dims = upper_latent_dims
        self.ladder_hidden_dim = checks.check_positive_int("ladder_hidden_dim", ladder_hidden_dim)
        checks.check_choice("inference", inference, self.INFERENCE)
        self.inference = inference
        ladder = inference == "ladder"
        self.batch_norm = ladder if batch_norm is None else checks.check_bool("batch_norm", batch_norm)
        self.kl_warmup_epochs = (LADDER_KL_WARMUP_EPOCHS if ladder else 0) if kl_warmup_epochs is None else (
            checks.check_non_negative_int("kl_warmup_epochs", kl_warmup_epochs))
        self.extra_metric_names = tuple(f"kl_loss_{i + 1}" for i in range(len(upper_latent_dims) + 1)) + (
            ("kl_weight",) if self.kl_warmup_epochs else ())
        super().__init__(*args, **kwargs)
        self._add_warmup_scale()

    def _add_warmup_scale(self):
        if self.kl_warmup_epochs:
            self.kl_warmup_scale = self.add_weight(shape=(), initializer="ones", trainable=False,
                                                   name="kl_warmup_scale")

    def training_callbacks(self):
        """The KL warm-up (:class:`~keraszoo.models.schedules.KLWarmup`) when ``kl_warmup_epochs`` > 0."""
        return [KLWarmup(self.kl_warmup_epochs)] if self.kl_warmup_epochs else []

    def loss_weight_metrics(self):
        """``kl_loss``'s weight is the logged ``kl_weight`` of each epoch during a warm-up."""
        return {"kl_loss": "kl_weight"} if self.kl_warmup_epochs else {}

    def _kl_weight(self, training):
        if training and self.kl_warmup_epochs:
            return self.beta * ops.convert_to_tensor(self.kl_warmup_scale)
        return ops.convert_to_tensor(self.beta, "float32")

    def paper(self):
        """Sonderby et al. for ladder inference; bottom-up inference is the 2-layer model of Burda et al."""
        return self.papers[0] if self.inference == "ladder" else self.papers[1]

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
        if self.inference == "ladder":
            self.posterior_heads = [
                networks.build_mlp(h, (), 2 * d, name=f"posterior_head_{i + 1}") for i, d in enumerate(dims)]
            self.bottom_up = [
                networks.build_mlp(h, (h,), h, output_activation="relu", name=f"bottom_up_{i + 2}",
                                   batch_norm=self.batch_norm)
                for i in range(len(dims) - 1)]
        else:  # q(z_1 | x) from the encoder's features, q(z_{l+1} | z_l) from an MLP on z_l
            self.posterior_heads = [networks.build_mlp(h, (), 2 * dims[0], name="posterior_head_1")]
            self.bottom_up = [
                networks.build_mlp(dims[i], (h,), 2 * dims[i + 1], name=f"posterior_{i + 2}")
                for i in range(len(dims) - 1)]
        self.top_down_priors = [
            networks.build_mlp(dims[i + 1], (h,), 2 * dims[i], name=f"prior_{i + 1}", batch_norm=self.batch_norm)
            for i in range(len(dims) - 1)]

    # ----------------------------------------------------------- inference
    def _bottom_up_params(self, x, training=False):
        """Deterministic part of inference: ladder estimates of every layer, or ``q(z_1 | x)``."""
        h = self.encoder(x, training=training)
        if self.inference == "bottom_up":
            return [_bounded_gaussian(self.posterior_heads[0](h, training=training))]
        params = []
        for i, head in enumerate(self.posterior_heads):
            if i > 0:
                h = self.bottom_up[i - 1](h, training=training)
            params.append(ops.split(head(h, training=training), 2, axis=-1))
        return params

    def _top_down(self, params, sample, training=False):
        """Returns ``(z_1, [kl_1..kl_L], log q(z|x), log p(z))`` (per example)."""
        if self.inference == "bottom_up":
            return self._stochastic_bottom_up(params[0], sample, training)
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

    def _stochastic_bottom_up(self, first, sample, training=False):
        """``q(z_1|x) q(z_2|z_1) ...`` sampled upwards, then scored under ``p`` (see the class docstring)."""
        mean, log_var = first
        zs, posteriors = [], []
        for i in range(len(self.latent_dims)):
            if i > 0:
                mean, log_var = _bounded_gaussian(self.bottom_up[i - 1](zs[-1], training=training))
            zs.append(losses.reparameterize(mean, log_var, self.seed_generator) if sample else mean)
            posteriors.append((mean, log_var))
        mean, log_var = posteriors[-1]
        kls = [losses.kl_standard_normal(mean, log_var)]
        log_q = losses.gaussian_log_prob(zs[-1], mean, log_var)
        log_p = losses.standard_normal_log_prob(zs[-1])
        for i in reversed(range(len(zs) - 1)):
            mean_p, log_var_p = _bounded_gaussian(self.top_down_priors[i](zs[i + 1], training=training))
            mean, log_var = posteriors[i]
            log_p_i = losses.gaussian_log_prob(zs[i], mean_p, log_var_p)
            kls.insert(0, -losses.gaussian_entropy(log_var) - log_p_i)
            log_q = log_q + losses.gaussian_log_prob(zs[i], mean, log_var)
            log_p = log_p + log_p_i
        return zs[0], kls, log_q, log_p

    def _deterministic_code(self, x, training=False):
        if self.inference == "bottom_up":  # the posterior mean of z_1
            return self._bottom_up_params(x, training)[0][0]
        return self._top_down(self._bottom_up_params(x, training), sample=False, training=training)[0]

    def posterior(self, x, training=False):
        raise NotImplementedError(
            "HierarchicalVAE has no single Gaussian posterior; use encode(x) for the code of z_1.")

    def _sample_code(self, x):
        # encode(x, sample=True): a draw of z_1; encode(x) is its posterior mean (top-down for the ladder)
        return self._top_down(self._bottom_up_params(x), sample=True)[0]

    # ---------------------------------------------------------------- losses
    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        z, kls, _, _ = self._top_down(self._bottom_up_params(x, training), sample=True, training=training)
        rec = ops.mean(self.reconstruction_nll(x, self.decoder(z, training=training)))
        kl_means = [ops.mean(kl) for kl in kls]
        kl = sum(kl_means[1:], kl_means[0])
        weight = self._kl_weight(training)
        terms = {"reconstruction_loss": rec, "kl_loss": kl, "total_loss": rec + weight * kl}
        terms.update({f"kl_loss_{i + 1}": v for i, v in enumerate(kl_means)})
        if self.kl_warmup_epochs:
            terms["kl_weight"] = weight
        return terms

    def reference_terms(self, x, labels, ctx):
        """NumPy: ``mc_samples`` draws of the hierarchy per image (:meth:`_reference_draw`); its weight after training."""
        del labels
        h = np_forward(self.encoder, x)
        draws = {}
        for _ in range(ctx.mc_samples):
            z, kls, _, _ = self._reference_draw(h, ctx.rng)
            rec = self.reference_reconstruction(x, np_forward(self.decoder, z))
            kl = sum(kls[1:], kls[0])
            values = {"reconstruction_loss": rec, "kl_loss": kl, "total_loss": rec + self.beta * kl}
            values.update({f"kl_loss_{i + 1}": v for i, v in enumerate(kls)})
            for name, v in values.items():
                draws.setdefault(name, []).append(v)
        return {name: monte_carlo(np.stack(v, axis=1)) for name, v in draws.items()}

    def _reference_draw(self, h, rng):
        """NumPy: one draw of ``(z_1, [kl_1..kl_L], log q(z|x), log p(z))`` per image from the encoder's features ``h``,
        ladder or bottom-up (the IWAE's importance samples too; the ladder's draw leaves the log densities ``None``)."""
        if self.inference == "bottom_up":
            mean, log_var = np_gaussian_params(np_forward(self.posterior_heads[0], h), LOG_VAR_BOUND)
            zs, posteriors = [], []
            for i in range(len(self.latent_dims)):
                if i > 0:
                    mean, log_var = np_gaussian_params(np_forward(self.bottom_up[i - 1], zs[-1]), LOG_VAR_BOUND)
                zs.append(np_reparameterize(mean, log_var, rng))
                posteriors.append((mean, log_var))
            mean, log_var = posteriors[-1]
            kls = [np_kl_std_normal(mean, log_var)]
            log_q, log_p = np_log_normal(zs[-1], mean, log_var), np_standard_normal_log_prob(zs[-1])
            for i in reversed(range(len(zs) - 1)):
                mean_p, log_var_p = np_gaussian_params(np_forward(self.top_down_priors[i], zs[i + 1]), LOG_VAR_BOUND)
                mean, log_var = posteriors[i]
                log_p_i = np_log_normal(zs[i], mean_p, log_var_p)
                kls.insert(0, -np_gaussian_entropy(log_var) - log_p_i)
                log_q, log_p = log_q + np_log_normal(zs[i], mean, log_var), log_p + log_p_i
            return zs[0], kls, log_q, log_p
        params = []
        for i, head in enumerate(self.posterior_heads):
            if i > 0:
                h = np_forward(self.bottom_up[i - 1], h)
            params.append(np_gaussian_params(np_forward(head, h)))
        mean, log_var = params[-1]
        z = np_reparameterize(mean, log_var, rng)
        kls = [np_kl_std_normal(mean, log_var)]
        for i in reversed(range(len(params) - 1)):
            mean_p, log_var_p = np_gaussian_params(np_forward(self.top_down_priors[i], z))
            mean_h, log_var_h = params[i]
            log_var_q = -np.logaddexp(-log_var_h, -log_var_p)
            mean_q = (mean_h * np.exp(-log_var_h) + mean_p * np.exp(-log_var_p)) * np.exp(log_var_q)
            z = np_reparameterize(mean_q, log_var_q, rng)
            kls.insert(0, np_kl_gaussians(mean_q, log_var_q, mean_p, log_var_p))
        return z, kls, None, None

    def elbo(self, x):
        self._check_likelihood("elbo")
        x = self._check_inputs(x)
        z, kls, _, _ = self._top_down(self._bottom_up_params(x), sample=True)
        return -(self.reconstruction_nll(x, self.decoder(z)) + sum(kls[1:], kls[0]))

    def _log_weights(self, x, k):
        b = ops.shape(x)[0]
        x_k = ops.repeat(x, k, axis=0)
        # The bottom-up pass is deterministic: run it once per image, repeat its output k times.
        params = [tuple(ops.repeat(t, k, axis=0) for t in pair) for pair in self._bottom_up_params(x)]
        z, _, log_q, log_p = self._top_down(params, sample=True)
        log_w = -self.reconstruction_nll(x_k, self.decoder(z)) + log_p - log_q
        return ops.reshape(log_w, (b, k))

    def sample_prior(self, n, seed=None):
        """Ancestral sample of ``z_1`` through ``p(z_L) p(z_{L-1}|z_L) ...``."""
        seed = self._sampling_seed(seed)
        z = keras.random.normal((n, self.latent_dims[-1]), seed=seed)
        for i in reversed(range(len(self.top_down_priors))):
            out = self.top_down_priors[i](z)
            mean_p, log_var_p = _bounded_gaussian(out) if self.inference == "bottom_up" else ops.split(out, 2, axis=-1)
            z = losses.reparameterize(mean_p, log_var_p, seed)
        return z

    def get_config(self):
        config = super().get_config()
        config.update({
            "upper_latent_dims": list(self.upper_latent_dims),
            "ladder_hidden_dim": self.ladder_hidden_dim,
            "inference": self.inference,
            "batch_norm": self.batch_norm,
            "kl_warmup_epochs": self.kl_warmup_epochs,
        })
        return config
