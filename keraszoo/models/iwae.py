"""Importance weighted autoencoder, IWAE (Burda, Grosse & Salakhutdinov, 2016)."""

import numpy as np
from keras import ops

from keraszoo import argtypes
from keraszoo.models import checks
from keraszoo.models import losses
from keraszoo.models.hierarchical_vae import HierarchicalVAE
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_log_mean_exp
from keraszoo.models.reference_estimates import monte_carlo
from keraszoo.models.registry import keraszoo_export
from keraszoo.models.vae import VAE


def default_upper_latent_dims(latent_dim, stochastic_layers):
    """Sizes of ``z_2 ... z_L``: each layer half the one below (the paper's 100 -> 50), at least 1."""
    dims, d = [], int(latent_dim) if isinstance(latent_dim, int) and not isinstance(latent_dim, bool) else 2
    for _ in range(stochastic_layers - 1):
        d = max(1, d // 2)
        dims.append(d)
    return tuple(dims)


@keraszoo_export("iwae")
class IWAE(HierarchicalVAE):
    """IWAE: the VAE's model, trained on the k-sample importance-weighted bound.

    With ``z_i ~ q(z|x)`` drawn independently (reparameterized) and the
    importance weights ``w_i = p(x, z_i) / q(z_i | x)``::

        L_k(x) = log (1/k) sum_i w_i  <=  log p(x)

    ``L_1`` is the ELBO, ``L_k`` is monotone in ``k`` in expectation and tends
    to ``log p(x)`` (Burda et al., Theorem 1). The log-mean-exp is computed with
    the max shifted out; its autodiff gradient is the IWAE gradient
    ``sum_i w~_i grad log w_i`` with normalised weights ``w~_i = w_i / sum_j w_j``.

    Loss per example (nats), batch mean, from the same ``k = num_samples`` draws::

        iwae_bound          = -L_k                                  (what is minimised)
        reconstruction_loss = -(1/k) sum_i log p(x | z_i)
        kl_loss             = (1/k) sum_i [log q(z_i|x) - log p(z_i)]   (Monte Carlo, same draws)
        iwae_gap            = -L_k - (reconstruction_loss + kl_loss)
        total_loss          = reconstruction_loss + kl_loss + iwae_gap = -L_k

    ``reconstruction_loss + kl_loss`` is ``-(1/k) sum_i log w_i``, the negative
    ELBO averaged over the k draws (the "VAE, k samples" objective of the
    paper's Table 1), so ``iwae_gap = (1/k) sum_i log w_i - log (1/k) sum_i w_i``
    is ``<= 0`` for every example and every draw (Jensen), exactly ``0`` for
    ``k = 1``: it is how much tighter the bound being trained is than the ELBO.
    The KL is estimated from the draws rather than analytically, so that this
    sum is exact; its expectation is the VAE's analytic KL.

    Stochastic layers. ``stochastic_layers=2`` (default) is the paper's
    two-layer model: ``p(z_2) p(z_1 | z_2) p(x | z_1)`` with bottom-up inference
    ``q(z_1 | x) q(z_2 | z_1)``, each conditional a diagonal Gaussian from an
    MLP. That is ``HierarchicalVAE(inference="bottom_up")``, so IWAE subclasses
    it and reuses its networks, sampler (``_bottom_up_params``/``_top_down``:
    ``log q(z|x)`` and ``log p(z)`` of every draw), ancestral ``sample``,
    ``elbo`` and ``log_likelihood``; it adds only the objective. One class with a
    layer count, rather than a second one on ``VAE`` for one layer, because the
    objective needs the same three numbers per draw whatever the depth, and
    ``stochastic_layers=1`` is the same hierarchy without upper layers:
    ``q(z_1 | x)`` from the encoder's features (a ``ladder_hidden_dim`` relu
    layer, then the Gaussian head), ``p(z_1) = N(0, I)``. Its networks are
    the VAE's with one more dense layer in the encoder (``hidden_dims=(512,),
    ladder_hidden_dim=256`` has exactly the VAE's encoder of ``hidden_dims=(512, 256)``).

    The paper's sizes are ``latent_dim=100`` (``z_2``: 50; tanh MLPs of 100 and
    50 units); keraszoo's networks are relu MLPs (``hidden_dims`` for x, one
    ``ladder_hidden_dim`` layer between stochastic layers).

    Args:
        num_samples: ``k``, the importance samples per image of the training
            bound (the paper: 1, 5, 50). The cost of a step grows about
            linearly in ``k`` (the encoder's deterministic part runs once).
        stochastic_layers: ``L`` (>= 1); default ``1 + len(upper_latent_dims)``,
            or 2 when those are not given.
        upper_latent_dims: sizes of ``z_2 ... z_L``; default each half of the
            one below.
        ladder_hidden_dim: width of the encoder's top layer and of the MLPs
            between stochastic layers.
        beta: must be 1 (the bound is for the VAE's joint ``p(x, z)``).
        reconstruction_loss: a decoder likelihood, ``"bce"`` (default),
            ``"gaussian"`` (``decoder_std``) or ``"discretized_logistic"``; not
            the squared error ``"mse"``, which is no log-density ``log p(x|z)``.
        **kwargs: see ``VAE`` (``decoder_std`` for the ``"gaussian"`` decoder).
    """

    # === Metadata ===
    title = "importance weighted autoencoder"
    #: the loss in one line (the README's table of variants).
    loss_summary = (
        "`-log (1/k) Σ_i p(x, z_i)/q(z_i|x)`, `z_i ~ q(z|x)`, k = 5 (log-mean-exp) `= -log p(x|z) + KL + "
        "iwae_gap` (the ELBO's terms over the same draws; gap ≤ 0); 1 or 2 stochastic layers, bottom-up `q(z₁|x)q(z₂|z₁)`"
    )
    papers = (
        Paper("Importance Weighted Autoencoders (Burda, Grosse & Salakhutdinov, 2016)",
              "https://arxiv.org/abs/1509.00519"),
    )
    presets = {"conv_iwae": {"architecture": "conv"}}
    hyperparameters = {
        "num_samples": Hyperparameter("IWAE: importance samples k of the training bound (default 5; 1 = the ELBO)",
                                      argtypes.positive_int),
        "stochastic_layers": Hyperparameter("IWAE: stochastic layers z_1..z_L (default 2, the paper's; 1 = VAE-like)",
                                            argtypes.positive_int),
    }

    regularizer_names = ("kl_loss", "iwae_gap")
    extra_metric_names = ("iwae_bound",)

    def __init__(self, *args, num_samples=5, stochastic_layers=None, upper_latent_dims=None, ladder_hidden_dim=256,
                 **kwargs):
        # === Config ===
        self.num_samples = checks.check_positive_int("num_samples", num_samples)
        if stochastic_layers is not None:
            stochastic_layers = checks.check_positive_int("stochastic_layers", stochastic_layers)
        if upper_latent_dims is None:
            latent_dim = kwargs.get("latent_dim", args[1] if len(args) > 1 else 16)
            upper_latent_dims = default_upper_latent_dims(latent_dim, 2 if stochastic_layers is None else stochastic_layers)
        upper_latent_dims = checks.check_int_tuple("upper_latent_dims", upper_latent_dims)
        if stochastic_layers is not None and stochastic_layers != 1 + len(upper_latent_dims):
            raise ValueError(
                f"`stochastic_layers={stochastic_layers}` needs {stochastic_layers - 1} upper latent size(s) (z_2..z_L); "
                f"received upper_latent_dims={upper_latent_dims}.")
        reconstruction_loss = args[5] if len(args) > 5 else kwargs.get("reconstruction_loss", "bce")
        if isinstance(reconstruction_loss, str) and reconstruction_loss == "mse":
            raise ValueError(
                "IWAE's bound is a bound on log p(x) and needs a decoder likelihood: `reconstruction_loss` must be "
                f"one of {', '.join(repr(c) for c in self.likelihood_losses)}; received 'mse', the squared error "
                "sum (x - x_hat)^2, which is no log-density (use 'gaussian' for the Gaussian decoder of sigma "
                "decoder_std, or VAE or HierarchicalVAE to train the squared error).")
        beta = checks.check_non_negative("beta", kwargs.get("beta", 1.0))
        if beta != 1.0:
            raise ValueError(
                f"IWAE's bound is a bound on log p(x) and needs `beta` = 1; received beta={beta!r} "
                "(use VAE or HierarchicalVAE for a beta-VAE).")
        # HierarchicalVAE.__init__ insists on an upper layer (its ladder needs one); the bottom-up hierarchy
        # does not, so IWAE sets HierarchicalVAE's attributes itself and runs VAE's constructor (the layers).
        self.upper_latent_dims = upper_latent_dims
        self.stochastic_layers = 1 + len(upper_latent_dims)
        self.ladder_hidden_dim = checks.check_positive_int("ladder_hidden_dim", ladder_hidden_dim)
        self.inference = "bottom_up"
        self.batch_norm, self.kl_warmup_epochs = False, 0  # the bound is trained as it is, on plain MLPs
        VAE.__init__(self, *args, **kwargs)

    @classmethod
    def _reconstruction_losses(cls):
        return cls.likelihood_losses  # not "mse" (refused above with the reason)

    def paper(self):
        return self.papers[0]

    @property
    def default_anomaly_method(self):
        """``iwae``: the negative bound the model trains (with ``num_samples`` importance samples per image)."""
        return "iwae"

    # ---------------------------------------------------------------- losses
    def _importance_samples(self, x, k, training=False):
        """``(log p(x|z_i), log p(z_i), log q(z_i|x))`` for ``k`` draws ``z_i ~ q(z|x)`` per image, each ``(batch, k)``."""
        b = ops.shape(x)[0]
        # The deterministic part of q runs once per image; its Gaussian parameters are repeated k times.
        params = [tuple(ops.repeat(t, k, axis=0) for t in pair) for pair in self._bottom_up_params(x, training)]
        z, _, log_q, log_p = self._top_down(params, sample=True, training=training)
        log_px = -self.reconstruction_nll(ops.repeat(x, k, axis=0), self.decoder(z, training=training))
        return tuple(ops.reshape(t, (b, k)) for t in (log_px, log_p, log_q))

    def _log_weights(self, x, k):
        # The bound that log_likelihood evaluates is computed exactly as the one trained.
        log_px, log_p, log_q = self._importance_samples(x, k)
        return log_px + log_p - log_q

    def loss_weights(self):
        """The bound is ``reconstruction_loss + kl_loss + iwae_gap`` (``iwae_bound``, equal to the total, is not a part)."""
        return {"kl_loss": 1.0, "iwae_gap": 1.0}

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        log_px, log_p, log_q = self._importance_samples(x, self.num_samples, training)
        bound = -ops.mean(losses.log_mean_exp(log_px + log_p - log_q, axis=1))
        rec = -ops.mean(log_px)
        kl = ops.mean(log_q - log_p)
        return {"reconstruction_loss": rec, "kl_loss": kl, "iwae_gap": bound - rec - kl,
                "iwae_bound": bound, "total_loss": bound}

    def reference_terms(self, x, labels, ctx):
        """NumPy: ``mc_samples`` draws of the bound, each of the run's ``num_samples`` importance samples per image."""
        del labels
        h = np_forward(self.encoder, x)
        draws = {}
        for _ in range(ctx.mc_samples):
            log_w, log_px, log_pq = [], [], []
            for _ in range(self.num_samples):
                z, _, log_q, log_p = self._reference_draw(h, ctx.rng)
                lpx = -self.reference_reconstruction(x, np_forward(self.decoder, z))
                log_w.append(lpx + log_p - log_q)
                log_px.append(lpx)
                log_pq.append(log_q - log_p)
            bound = -np_log_mean_exp(np.stack(log_w, 1), axis=1)
            rec, kl = -np.mean(log_px, axis=0), np.mean(log_pq, axis=0)
            for name, v in (("reconstruction_loss", rec), ("kl_loss", kl), ("iwae_gap", bound - rec - kl),
                            ("iwae_bound", bound), ("total_loss", bound)):
                draws.setdefault(name, []).append(v)
        return {name: monte_carlo(np.stack(v, axis=1)) for name, v in draws.items()}

    def get_config(self):
        config = super().get_config()
        for key in ("inference", "batch_norm", "kl_warmup_epochs"):  # always bottom-up, plain, no warm-up
            del config[key]
        config.update({"num_samples": self.num_samples, "stochastic_layers": self.stochastic_layers})
        return config
