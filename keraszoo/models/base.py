"""The shared autoencoder API: ``encode``, ``decode``, ``reconstruct``,
``interpolate``, ``sample``, the configuration and the declared capabilities.

:class:`BaseAutoEncoder` is assembled from one mixin per job: the declared capabilities
(:mod:`keraszoo.models.capabilities`), the anomaly scores (:mod:`keraszoo.models.anomaly_scores`), the input checks
(:mod:`keraszoo.models.image_checks`), the checked ``fit``/``evaluate``
(:mod:`keraszoo.models.checked_training`) and the training steps
(:mod:`keraszoo.models.steps`); ``sample`` for the variants with a prior is
:mod:`keraszoo.models.generative`'s.

Every variant subclasses :class:`BaseAutoEncoder` and implements
``loss_terms(x, training)``, returning a dict of scalar tensors with the
per-example terms **summed over pixels and averaged over the batch**, plus
``total_loss`` = the weighted sum of the terms. ``compute_loss`` feeds each term
to its own ``keras.metrics.Mean`` so that ``fit``'s logs show
``L_total = L_reconstruction + L_regularization`` term by term; Keras' own
``loss`` metric equals ``total_loss``.

Training runs through :meth:`BaseAutoEncoder.training_phases` (one phase,
``total_loss`` over every trainable variable, unless a variant needs more, like
the adversarial autoencoder's three) with the drivers of
:mod:`keraszoo.models.steps`, on the TensorFlow and JAX backends.
"""

import keras
import numpy as np
from keras import ops

from keraszoo import argtypes
from keraszoo.models import checks
from keraszoo.models import losses
from keraszoo.models import networks
from keraszoo.models.anomaly_scores import AnomalyScoresMixin
from keraszoo.models.backend import ReplicaSeedGenerator
from keraszoo.models.capabilities import Capabilities
from keraszoo.models.checked_training import CheckedTrainingMixin
from keraszoo.models.compiled import CompiledFunctions
from keraszoo.models.image_checks import InputChecksMixin
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import merged_table
from keraszoo.models.registry import list_variants
from keraszoo.models.steps import PhasedTrainingMixin

#: every reconstruction term a variant may take (the command line's choices); ``_reconstruction_losses``
#: says which a variant supports: ``"bce"`` and ``"mse"`` (the literal ``Σ(x − x̂)²``) are every variant's,
#: ``"gaussian"`` (fixed ``decoder_std``) and ``"discretized_logistic"`` the VAE family's decoder likelihoods.
RECONSTRUCTION_LOSSES = ("bce", "mse", "gaussian", "discretized_logistic")

#: the version of the configuration :meth:`BaseAutoEncoder.get_config` writes (its ``"config_version"``). A config
#: without one is version 1: saved before the VAE family's ``"mse"`` became the literal squared error (it was the
#: Gaussian NLL of fixed ``decoder_std``, now ``"gaussian"``); ``from_config`` upgrades it (``_upgrade_config``).
CONFIG_VERSION = 2


class BaseAutoEncoder(Capabilities, AnomalyScoresMixin, InputChecksMixin, CheckedTrainingMixin, PhasedTrainingMixin,
                      keras.Model):
    """Base class of every keraszoo autoencoder.

    Args:
        input_shape: image shape ``(height, width, channels)``, channels last.
        latent_dim: size of the code ``z``.
        architecture: ``"dense"`` (MLP) or ``"conv"`` (strided convolutions);
            ignored for a network passed as ``encoder``/``decoder``.
        hidden_dims: sizes of the hidden dense layers of the encoder (the
            decoder mirrors them). Default ``(512, 256)`` for dense and
            ``(256,)`` for conv.
        conv_filters: filters of the strided conv layers (conv architecture).
        reconstruction_loss: ``"bce"`` -- Bernoulli negative log-likelihood
            ``sum_pixels softplus(l) - x*l`` of the decoder logits ``l`` (nats);
            ``"mse"`` -- the squared error ``sum_pixels (x - sigmoid(l))^2``, literally
            (no scale, no constant), in every variant. The VAE family adds the
            likelihoods ``"gaussian"`` and ``"discretized_logistic"``.
        encoder: optional user network ``x -> (batch, encoder_output_dim)``.
        decoder: optional user network ``z -> logits (batch,) + input_shape``.
        seed: seed of the model's ``SeedGenerator`` (sampling, noise).
    """

    # === Metadata === (see keraszoo.models.metadata; each variant sets its own)
    variant = None
    title = None
    loss_summary = None
    papers = ()
    presets = {}
    is_generative = False
    hyperparameters = {
        "latent_dim": Hyperparameter("code size (model default: 16)", argtypes.positive_int),
        "architecture": Hyperparameter("dense (MLP) or conv (strided convolutions)", str,
                                       networks.ARCHITECTURES),
        "hidden_dims": Hyperparameter("e.g. 512,256; 'none': no hidden dense layer "
                                      "(conv: project straight to the code)", argtypes.hidden_dims),
        "conv_filters": Hyperparameter("e.g. 32,64", argtypes.int_list),
        "reconstruction_loss": Hyperparameter("reconstruction term: bce (Bernoulli NLL), mse (squared error "
                                              "sum (x - x_hat)^2); VAE family also gaussian (NLL, sigma decoder_std), "
                                              "discretized_logistic", str, RECONSTRUCTION_LOSSES),
    }
    training_options = {}
    reported_metrics = ()
    #: names of the regularization terms, in reporting order.
    regularizer_names = ()
    #: extra (non-loss) metrics reported by the variant.
    extra_metric_names = ()
    #: the encoder outputs ``encoder_outputs_per_unit * latent_dim`` numbers.
    encoder_outputs_per_unit = 1
    #: activation of the encoder's code layer (``None``: linear).
    code_activation = None
    #: size of the condition a conditional variant's encoder and decoder take as a second input
    #: (``ConditionalVAE``: the one-hot label); 0: none.
    condition_dim = 0

    #: constructor arguments that may hold a user network, serialized in ``get_config``.
    serialized_networks = ("encoder", "decoder")

    def __init__(self, input_shape=(28, 28, 1), latent_dim=16, architecture="dense",
                 hidden_dims=None, conv_filters=networks.DEFAULT_CONV_FILTERS,
                 reconstruction_loss="bce", encoder=None, decoder=None, seed=None, **kwargs):
        # === Config ===
        image_shape = checks.check_image_shape(input_shape)
        latent_dim = checks.check_positive_int("latent_dim", latent_dim)
        self._check_architecture(architecture)
        hidden_dims = checks.check_int_tuple("hidden_dims", hidden_dims)
        conv_filters = checks.check_int_tuple("conv_filters", conv_filters, allow_empty=False)
        checks.check_choice("reconstruction_loss", reconstruction_loss, self._reconstruction_losses())
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"`seed` must be an integer or None; received {seed!r}.")
        seed = None if seed is None else checks.check_seed("seed", seed)
        super().__init__(**kwargs)
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden_dims = hidden_dims
        self.conv_filters = conv_filters
        self.reconstruction_loss = reconstruction_loss
        self.seed = seed

        # === Layers ===
        self._build_networks(encoder, decoder)
        self._build_extra_layers()
        self.seed_generator = ReplicaSeedGenerator(seed, name="seed_generator")
        self._inference_functions = CompiledFunctions(self)

        # === Metrics ===
        names = ("total_loss", "reconstruction_loss") + tuple(self.regularizer_names) + tuple(
            self.extra_metric_names)
        self.loss_trackers = [keras.metrics.Mean(name=n) for n in names]
        self.built = True

    @classmethod
    def _check_architecture(cls, architecture):
        """Refuses an architecture the variant cannot build (``architectures``: the VQ-VAE has only ``"conv"``)."""
        checks.check_choice("architecture", architecture, cls.architectures)

    def _build_networks(self, encoder, decoder):
        """Sets ``self.encoder`` / ``self.decoder``: the given networks, checked, or the built-in ones.

        A hook for variants whose codes are not a flat ``(latent_dim,)`` vector (the VQ-VAE's grid).
        """
        image_shape, latent_dim, architecture = self.image_shape, self.latent_dim, self.architecture
        hidden_dims, conv_filters = self.hidden_dims, self.conv_filters
        encoder_dim = self._encoder_output_dim()
        if encoder is None:
            encoder = networks.build_encoder(
                image_shape, encoder_dim, architecture, hidden_dims, conv_filters,
                output_activation=self.code_activation, name="encoder", condition_dim=self.condition_dim)
            self._custom_encoder = False
        else:
            networks.check_network(encoder, "encoder", image_shape, (encoder_dim,), self.condition_dim)
            self._custom_encoder = True
        if decoder is None:
            decoder = networks.build_decoder(latent_dim, image_shape, architecture, hidden_dims,
                                             conv_filters, name="decoder", condition_dim=self.condition_dim)
            self._custom_decoder = False
        else:
            networks.check_network(decoder, "decoder", (latent_dim,), image_shape, self.condition_dim)
            self._custom_decoder = True
        self.encoder = encoder
        self.decoder = decoder

    # ------------------------------------------------------------- metadata
    @classmethod
    def all_hyperparameters(cls):
        """``{name: Hyperparameter}`` of ``cls`` and its base classes."""
        return merged_table(cls, "hyperparameters")

    @classmethod
    def all_training_options(cls):
        """``{name: Hyperparameter}``: the arguments of :meth:`compile_options`."""
        return merged_table(cls, "training_options")

    @classmethod
    def compile_options(cls, **options):
        """``compile`` keyword arguments for the training options (see ``training_options``)."""
        if options:
            raise ValueError(f"{cls.__name__} has no training option(s) {sorted(options)}.")
        return {}

    def paper(self):
        """The :class:`~keraszoo.models.metadata.Paper` this configuration implements."""
        return self.papers[0]

    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        """The variant's own metrics on test images ``x`` and their ``codes`` (NumPy).

        ``keraszoo.evaluate`` adds what this returns to its generic metrics; the
        names are those of ``reported_metrics``.
        """
        del x, codes, batch_size, seed
        return {}

    # ------------------------------------------------------------------ hooks
    @classmethod
    def _reconstruction_losses(cls):
        return ("bce", "mse")

    def _encoder_output_dim(self):
        return self.encoder_outputs_per_unit * self.latent_dim

    def _build_extra_layers(self):
        """Subclasses create their additional sub-networks here."""

    def build(self, input_shape=None):
        # Every sub-network is a functional model built at construction.
        self.built = True

    def loss_weights(self):
        """``{term: weight}`` with ``total_loss = reconstruction_loss + sum(weight * term)`` over the logged terms.

        The default: each regularizer ``NAME_loss`` of ``regularizer_names`` weighted by the model's
        ``NAME_weight`` attribute (``sparsity_weight``, ``contractive_weight``, ``mmd_weight``,
        ``commitment_weight``), 1 when it has none. A variant whose total combines its terms otherwise
        overrides this; logged metrics outside the total (``mean_activation``) are not listed.
        """
        weights = {}
        for name in self.regularizer_names:
            stem = name[: -len("_loss")] if name.endswith("_loss") else name
            weights[name] = float(getattr(self, f"{stem}_weight", 1.0))
        return weights

    def loss_weight_metrics(self):
        """``{term: metric}`` for the weights of :meth:`loss_weights` that a schedule changes during training.

        Their weight in an epoch is the logged ``metric`` of that epoch (the HierarchicalVAE's KL
        warm-up logs ``kl_weight``); :meth:`loss_weights` gives the weight after training. None by default.
        """
        return {}

    def loss_terms(self, x, training=False):
        """Returns ``{"total_loss", "reconstruction_loss", <regularizers>...}`` (batch means)."""
        raise NotImplementedError

    # --------------------------------------------------- the NumPy reference
    def reference_terms(self, x, labels, ctx):
        """``{term: Estimate}``: every logged term of :meth:`loss_terms` on images ``x`` recomputed in NumPy.

        Float64, from the weights, with :mod:`keraszoo.models.reference` (its own forward pass) and never
        the Keras loss code: what the consistency check of ``keraszoo report`` and the model tests hold
        the logged terms to. ``labels``: the images' labels (a conditional variant's; else unused);
        ``ctx``: a :class:`~keraszoo.models.reference_estimates.ReferenceContext` (``batch_size``,
        ``mc_samples``, ``rng``). Values are averaged over the images as ``evaluate`` averages them
        (:func:`~keraszoo.models.reference_estimates.deterministic`, ``monte_carlo``). A subclass that keeps
        its parent's maths inherits its parent's; one that logs a new term extends it.
        """
        del x, labels, ctx
        raise NotImplementedError(f"{type(self).__name__} has no NumPy reference (reference_terms)")

    def reference_reconstruction(self, x, logits):
        """NumPy (float64) ``reconstruction_nll`` per example: what :meth:`reconstruction_nll` computes
        (``"bce"``: Bernoulli NLL; ``"mse"``: the squared error ``sum_pixels (x - sigmoid(l))^2``)."""
        from keraszoo.models import reference as ref

        if self.reconstruction_loss == "bce":
            return ref.np_bce(x, logits)
        return ref.np_squared_error(x, ref.np_sigmoid(logits))

    # -------------------------------------------------------- reconstruction
    def reconstruction_nll(self, x, logits):
        """Per-example reconstruction term (sum over pixels), shape ``(batch,)``.

        ``"bce"``: the Bernoulli NLL of the logits (nats); ``"mse"``: the squared error
        ``sum_pixels (x - sigmoid(l))^2`` (:func:`~keraszoo.models.losses.squared_error`), for every variant.
        """
        if self.reconstruction_loss == "bce":
            return losses.bernoulli_nll(x, logits)
        return losses.squared_error(x, ops.sigmoid(logits))

    # ---------------------------------------------------------------- the API
    def encode(self, x, sample=False):
        """Codes ``f_enc(x)``, shape ``(batch, latent_dim)``: deterministic, or a draw when ``sample=True``.

        ``sample=True`` draws ``z ~ q(z|x)`` for the stochastic encoders (VAE,
        HVAE); deterministic encoders return their code either way.
        """
        x = self._check_inputs(x)
        if sample:
            return self._sample_code(x)
        return self._inference_functions("encode", self._deterministic_code, x, self.image_shape)

    def decode_logits(self, z):
        """Decoder logits for codes ``z``."""
        return self._inference_functions("decode_logits", self._decoder_logits, self._check_codes(z), (self.latent_dim,))

    def decode(self, z):
        """Images in [0, 1] (the decoder's mean) for codes ``z`` of shape ``(batch, latent_dim)``."""
        return self._inference_functions("decode", self._decoder_mean, self._check_codes(z), (self.latent_dim,))

    def reconstruct(self, x):
        """``decode(encode(x))``: deterministic reconstructions in [0, 1]."""
        x = self._check_inputs(x)
        return self._inference_functions("reconstruct", self._reconstruction, x, self.image_shape)

    # The compiled functions of the API (keraszoo.models.compiled): tensors in, tensors out.
    def _decoder_logits(self, z):
        return self.decoder(z, training=False)

    def _decoder_mean(self, z):
        return ops.sigmoid(self.decoder(z, training=False))

    def _reconstruction(self, x):
        return self._decoder_mean(self._deterministic_code(x))

    def _sample_code(self, x):
        """``z ~ q(z|x)``; deterministic encoders return their code."""
        return self._deterministic_code(x)

    def call(self, inputs, training=False):
        """Deterministic reconstruction of ``inputs`` (images in [0, 1])."""
        x = self._check_inputs(inputs)
        z = self._deterministic_code(x, training=training)
        return ops.sigmoid(self.decoder(z, training=training))

    def _deterministic_code(self, x, training=False):
        return self.encoder(x, training=training)

    def interpolate(self, x1, x2, steps=10):
        """Decodes ``steps`` codes on the straight line from ``encode(x1)`` to ``encode(x2)``.

        ``x1``/``x2``: single images (``input_shape``) -> ``(steps,) + input_shape``;
        batches of B images -> ``(B, steps) + input_shape``.
        """
        steps = checks.check_steps(steps)
        x1, x2 = (x if hasattr(x, "shape") else np.asarray(x) for x in (x1, x2))  # lists of pixels too
        single = len(np.shape(x1)) == len(self.image_shape)
        if single:
            x1, x2 = x1[None], x2[None]
        self._check_interpolation_size(x1.shape[0] if len(x1.shape) == len(self.image_shape) + 1 else None, steps)
        z1, z2 = self.encode(x1), self.encode(x2)
        if tuple(z1.shape) != tuple(z2.shape):
            raise ValueError(f"`x1` and `x2` must hold the same number of images; got {tuple(np.shape(x1))} and {tuple(np.shape(x2))}.")
        t = ops.reshape(ops.linspace(0.0, 1.0, steps), (1, steps, 1))
        z = ops.expand_dims(z1, 1) * (1.0 - t) + ops.expand_dims(z2, 1) * t
        images = self.decode(ops.reshape(z, (-1, self.latent_dim)))
        images = ops.reshape(images, (-1, steps) + self.image_shape)
        return images[0] if single else images

    def _check_interpolation_size(self, pairs, steps):
        """Refuses ``pairs x steps`` images beyond what one call returns (``checks.MAX_VALUES_PER_CALL``)."""
        checks.check_output_size(f"{type(self).__name__}.interpolate of {pairs} image pair(s) in {steps} steps",
                                 None if pairs is None else pairs * steps, self.image_shape,
                                 lambda most: f"ask for at most {most:,} images per call (pairs x steps)")

    def sample(self, n, seed=None):
        """Generates ``n`` images; only generative variants (VAE, HVAE, AAE) can."""
        generative = sorted(cls.__name__ for cls in list_variants().values() if cls.is_generative)
        raise NotImplementedError(
            f"{type(self).__name__} is not a generative model (it has no prior over codes); "
            f"use {', '.join(generative)} to sample.")

    # ------------------------------------------------------------------ export
    def export(self, filepath, format="tf_saved_model", verbose=True, **kwargs):
        """Exports the model for serving; see :func:`keraszoo.models.export.export_model`."""
        from keraszoo.models import export as exporting

        return exporting.export_model(self, filepath, format=format, verbose=verbose, **kwargs)

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update({
            "input_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "architecture": self.architecture,
            "hidden_dims": None if self.hidden_dims is None else list(self.hidden_dims),
            "conv_filters": list(self.conv_filters),
            "reconstruction_loss": self.reconstruction_loss,
            "encoder": keras.saving.serialize_keras_object(self.encoder) if self._custom_encoder else None,
            "decoder": keras.saving.serialize_keras_object(self.decoder) if self._custom_decoder else None,
            "seed": self.seed,
            "config_version": CONFIG_VERSION,
        })
        return config

    @classmethod
    def upgraded_config(cls, config):
        """A copy of a saved ``config`` in today's terms, its ``config_version`` removed (none: version 1).

        What :meth:`from_config` builds from; a config older than :data:`CONFIG_VERSION` goes through
        :meth:`_upgrade_config` (the VAE family's ``"mse"`` of version 1 becomes ``"gaussian"``, with a warning).
        """
        config = dict(config)
        version = config.pop("config_version", 1)
        if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or not 1 <= version <= CONFIG_VERSION:
            raise ValueError(f"{cls.__name__} config: `config_version` must be an integer in [1, {CONFIG_VERSION}] "
                             f"(this keraszoo writes {CONFIG_VERSION}; a newer one may have saved it); "
                             f"received {version!r}.")
        return cls._upgrade_config(config, int(version)) if version < CONFIG_VERSION else config

    @classmethod
    def from_config(cls, config):
        config = cls.upgraded_config(config)
        for key in cls.serialized_networks:
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    @classmethod
    def _upgrade_config(cls, config, version):
        """``config`` (a dict, ``config_version`` removed) saved at ``version`` < :data:`CONFIG_VERSION`, in today's terms.

        A hook: nothing to change by default; the VAE family renames its old ``"mse"`` (see ``VAE``).
        """
        del version
        return config
