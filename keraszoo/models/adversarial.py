"""Adversarial autoencoder (Makhzani et al., 2016)."""

import math

import keras
import numpy as np
from keras import ops

from keraszoo.models import checks
from keraszoo.models import losses
from keraszoo.models import networks
from keraszoo.models.autoencoder import AutoEncoder
from keraszoo.models.generative import GenerativeMixin
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.metadata import ReportedMetric
from keraszoo.models.numeric import to_numpy
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_softplus
from keraszoo.models.reference_estimates import deterministic
from keraszoo.models.reference_estimates import monte_carlo
from keraszoo.models.registry import keraszoo_export
from keraszoo.models.steps import Phase

PRIORS = ("gaussian", "mixture")


@keraszoo_export("aae")
class AdversarialAutoEncoder(GenerativeMixin, AutoEncoder):
    """Deterministic autoencoder whose code distribution is matched to a prior
    by a discriminator on the latent code.

    Each ``train_step`` runs the three phases of Makhzani et al.:

    1. **reconstruction**: encoder + decoder minimise ``reconstruction_loss``
       (``optimizer``);
    2. **discriminator**: ``D`` separates prior samples (label 1) from codes
       ``f_enc(x)`` (label 0), minimising
       ``discriminator_loss = (BCE(1, D(z_prior)) + BCE(0, D(f_enc(x)))) / 2``
       (``discriminator_optimizer``);
    3. **regularization**: the encoder fools ``D``, minimising
       ``generator_loss = BCE(1, D(f_enc(x)))`` (``generator_optimizer``).

    Reported: ``reconstruction_loss``, ``generator_loss``, ``discriminator_loss``
    and ``total_loss = reconstruction_loss + adversarial_weight * generator_loss``
    (the encoder/decoder objective; the discriminator's is separate).

    Args:
        prior: ``"gaussian"`` (N(0, I)) or ``"mixture"``: a mixture of
            ``num_components`` Gaussians with std ``prior_std`` and means
            evenly spaced on a circle of radius ``mixture_radius`` in the first
            two latent dimensions (Makhzani et al.'s 10-component prior).
        discriminator_hidden_dims: hidden sizes of the discriminator MLP.
        adversarial_weight: weight of the generator loss in ``total_loss`` and
            in phase 3.
        discriminator: optional user network ``z -> (batch, 1)`` logits.

    The phases run on the TensorFlow and JAX backends
    (:mod:`keraszoo.models.steps`).
    """

    # === Metadata ===
    title = "adversarial autoencoder"
    #: the loss in one line (the README's table of variants).
    loss_summary = (
        "three phases per step — reconstruction, discriminator (prior vs codes), regularization "
        "(encoder fools it); Gaussian or 10-component mixture prior"
    )
    papers = (Paper("Adversarial Autoencoders (Makhzani et al., 2016)", "https://arxiv.org/abs/1511.05644"),)
    presets = {"conv_aae": {"architecture": "conv"}}
    hyperparameters = {
        "prior": Hyperparameter("AAE prior", str, PRIORS),
        "adversarial_weight": Hyperparameter("AAE generator weight"),
    }
    training_options = {
        "discriminator_lr": Hyperparameter("AAE discriminator/generator learning rate (model default 2e-4)"),
    }
    reported_metrics = (ReportedMetric("discriminator_accuracy", "discriminator acc. {value:.2%}"),)

    regularizer_names = ("generator_loss", "discriminator_loss")
    serialized_networks = ("encoder", "decoder", "discriminator")

    def __init__(self, *args, prior="gaussian", num_components=10, mixture_radius=4.0, prior_std=None,
                 discriminator_hidden_dims=(256, 256), adversarial_weight=1.0, discriminator=None,
                 **kwargs):
        self.prior = checks.check_choice("prior", prior, PRIORS)
        self.num_components = checks.check_positive_int("num_components", num_components)
        self.mixture_radius = checks.check_non_negative("mixture_radius", mixture_radius)
        if prior_std is None:
            prior_std = 1.0 if prior == "gaussian" else 0.5
        self.prior_std = checks.check_non_negative("prior_std", prior_std)
        if self.prior_std == 0:
            raise ValueError("`prior_std` must be > 0.")
        self.discriminator_hidden_dims = checks.check_int_tuple(
            "discriminator_hidden_dims", discriminator_hidden_dims)
        self.adversarial_weight = checks.check_non_negative("adversarial_weight", adversarial_weight)
        self._discriminator_arg = discriminator
        super().__init__(*args, **kwargs)
        if prior == "mixture" and self.latent_dim < 2:
            raise ValueError("The mixture prior lays its means out in two dimensions; `latent_dim` must be >= 2.")

    def _build_extra_layers(self):
        if self._discriminator_arg is None:
            self.discriminator = networks.build_mlp(
                self.latent_dim, self.discriminator_hidden_dims, 1, name="discriminator")
            self._custom_discriminator = False
        else:
            self.discriminator = networks.check_network(
                self._discriminator_arg, "discriminator", (self.latent_dim,), (1,))
            self._custom_discriminator = True
        del self._discriminator_arg

    # ---------------------------------------------------------------- prior
    @property
    def gaussian_prior(self):
        """Whether the prior is the Gaussian one (not the mixture): see ``BaseAutoEncoder.gaussian_prior``."""
        return self.prior == "gaussian"

    def mixture_means(self):
        """``(num_components, latent_dim)`` means of the mixture prior."""
        angles = 2 * math.pi * np.arange(self.num_components) / self.num_components
        means = np.zeros((self.num_components, self.latent_dim), dtype="float32")
        means[:, 0] = self.mixture_radius * np.cos(angles)
        means[:, 1] = self.mixture_radius * np.sin(angles)
        return means

    def sample_prior(self, n, seed=None):
        """``n`` draws from the prior (Gaussian or mixture)."""
        seed = self._sampling_seed(seed)
        z = self.prior_std * keras.random.normal((n, self.latent_dim), seed=seed)
        if self.prior == "gaussian":
            return z
        idx = keras.random.randint((n,), 0, self.num_components, seed=seed)
        return z + ops.take(ops.convert_to_tensor(self.mixture_means()), idx, axis=0)

    # --------------------------------------------------------------- losses
    def _adversarial_terms(self, x, z, z_prior, training=False):
        d_fake = self.discriminator(z, training=training)
        d_real = self.discriminator(z_prior, training=training)
        disc = 0.5 * (ops.mean(losses.sigmoid_cross_entropy(1.0, d_real))
                      + ops.mean(losses.sigmoid_cross_entropy(0.0, d_fake)))
        gen = ops.mean(losses.sigmoid_cross_entropy(1.0, d_fake))
        return disc, gen

    def loss_weights(self):
        """The encoder/decoder objective: ``generator_loss`` by ``adversarial_weight``; the discriminator's is apart."""
        return {"generator_loss": float(self.adversarial_weight)}

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        z = self.encoder(x, training=training)
        rec = ops.mean(self.reconstruction_nll(x, self.decoder(z, training=training)))
        disc, gen = self._adversarial_terms(x, z, self.sample_prior(ops.shape(x)[0]), training=training)
        return {
            "reconstruction_loss": rec,
            "generator_loss": gen,
            "discriminator_loss": disc,
            "total_loss": rec + self.adversarial_weight * gen,
        }

    def reference_terms(self, x, labels, ctx):
        """NumPy: the discriminator's loss against ``mc_samples`` prior draws per image."""
        del labels
        z = np_forward(self.encoder, x)
        rec = self.reference_reconstruction(x, np_forward(self.decoder, z))
        d_fake = np_forward(self.discriminator, z)[:, 0]
        gen = np_softplus(-d_fake)
        disc = np.empty((len(x), ctx.mc_samples))
        means = self.mixture_means().astype("float64")
        for k in range(ctx.mc_samples):
            prior = self.prior_std * ctx.rng.standard_normal(z.shape)
            if self.prior == "mixture":
                prior = prior + means[ctx.rng.integers(0, self.num_components, len(x))]
            d_real = np_forward(self.discriminator, prior)[:, 0]
            disc[:, k] = 0.5 * (np_softplus(-d_real) + np_softplus(d_fake))
        return {"reconstruction_loss": deterministic(rec), "generator_loss": deterministic(gen),
                "discriminator_loss": monte_carlo(disc), "total_loss": deterministic(rec + self.adversarial_weight * gen)}

    # -------------------------------------------------------------- training
    @classmethod
    def compile_options(cls, discriminator_lr=None, **options):
        """``discriminator_lr``: Adam (beta_1 = 0.5) at that rate for the discriminator and generator phases."""
        kwargs = super().compile_options(**options)
        if discriminator_lr is not None:
            kwargs["discriminator_optimizer"] = keras.optimizers.Adam(discriminator_lr, beta_1=0.5)
        return kwargs

    def compile(self, optimizer=None, discriminator_optimizer=None, generator_optimizer=None, **kwargs):
        """Three optimizers, one per phase (defaults: Adam 1e-3, Adam 2e-4, Adam 2e-4).

        ``generator_optimizer`` defaults to a fresh optimizer of the same
        configuration as ``discriminator_optimizer``, so that the encoder's
        reconstruction and regularization phases keep separate moment
        estimates.
        """
        super().compile(optimizer=optimizer, **kwargs)
        if discriminator_optimizer is None:
            discriminator_optimizer = keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5,
                                                            name="discriminator_adam")
        else:
            discriminator_optimizer = keras.optimizers.get(discriminator_optimizer)
        if generator_optimizer is None:
            generator_config = dict(discriminator_optimizer.get_config(), name="generator_optimizer")
            generator_optimizer = discriminator_optimizer.__class__.from_config(generator_config)
        else:
            generator_optimizer = keras.optimizers.get(generator_optimizer)
        self.discriminator_optimizer = discriminator_optimizer
        self.generator_optimizer = generator_optimizer
        # Build the phase optimizers now, each on the variables it updates, so
        # that their slots exist before a checkpoint (BackupAndRestore,
        # load_weights, .keras files) restores them.
        self.optimizer.build(self.encoder.trainable_variables + self.decoder.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        self.generator_optimizer.build(self.encoder.trainable_variables)

    def get_compile_config(self):
        config = super().get_compile_config() or {}
        if getattr(self, "discriminator_optimizer", None) is not None:
            config["discriminator_optimizer"] = keras.saving.serialize_keras_object(self.discriminator_optimizer)
            config["generator_optimizer"] = keras.saving.serialize_keras_object(self.generator_optimizer)
        return config

    def compile_from_config(self, config):
        config = dict(config)
        extra = {k: keras.saving.deserialize_keras_object(config.pop(k))
                 for k in ("discriminator_optimizer", "generator_optimizer") if k in config}
        optimizer = config.pop("optimizer", None)
        if optimizer is not None:
            optimizer = keras.saving.deserialize_keras_object(optimizer)
        self.compile(optimizer=optimizer, **extra)  # builds all three optimizers

    def training_phases(self):
        """Makhzani et al.'s three phases, each with its own optimizer (see the class docstring)."""
        encoder = self.encoder.trainable_variables
        return (
            Phase("reconstruction", self._reconstruction_objective,
                  encoder + self.decoder.trainable_variables, self.optimizer),
            Phase("discriminator", self._discriminator_objective,
                  self.discriminator.trainable_variables, self.discriminator_optimizer),
            Phase("regularization", self._regularization_objective, encoder, self.generator_optimizer),
        )

    def _reconstruction_objective(self, x):
        z = self.encoder(x, training=True)
        rec = ops.mean(self.reconstruction_nll(x, self.decoder(z, training=True)))
        return rec, {"reconstruction_loss": rec}

    def _discriminator_objective(self, x):
        z_prior = self.sample_prior(ops.shape(x)[0])
        z = ops.stop_gradient(self.encoder(x, training=True))
        disc, _ = self._adversarial_terms(x, z, z_prior, training=True)
        return disc, {"discriminator_loss": disc}

    def _regularization_objective(self, x):
        z = self.encoder(x, training=True)
        gen = ops.mean(losses.sigmoid_cross_entropy(1.0, self.discriminator(z, training=True)))
        return self.adversarial_weight * gen, {"generator_loss": gen}

    def combine_phase_terms(self, terms):
        """``total_loss``: the encoder/decoder objective of phases 1 and 3."""
        terms["total_loss"] = terms["reconstruction_loss"] + self.adversarial_weight * terms["generator_loss"]
        return terms

    def get_config(self):
        config = super().get_config()
        config.update({
            "prior": self.prior,
            "num_components": self.num_components,
            "mixture_radius": self.mixture_radius,
            "prior_std": self.prior_std,
            "discriminator_hidden_dims": list(self.discriminator_hidden_dims),
            "adversarial_weight": self.adversarial_weight,
            "discriminator": (keras.saving.serialize_keras_object(self.discriminator)
                              if self._custom_discriminator else None),
        })
        return config

    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        """Accuracy of the discriminator on test codes against as many prior samples (0.5: indistinguishable)."""
        del x, batch_size
        prior = to_numpy(self.sample_prior(len(codes), seed=seed))
        d_fake = to_numpy(self.discriminator(codes))[:, 0]
        d_real = to_numpy(self.discriminator(prior))[:, 0]
        return {"discriminator_accuracy": float(0.5 * (np.mean(d_fake < 0) + np.mean(d_real >= 0)))}
