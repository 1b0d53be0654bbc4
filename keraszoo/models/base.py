"""The shared autoencoder API: ``encode``, ``decode``, ``reconstruct``,
``interpolate``, ``sample``, the loss-term metrics and the input checks.

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

import contextlib
import numbers

import keras
import numpy as np
from keras import ops

from keraszoo import argtypes
from keraszoo.models import losses
from keraszoo.models import networks
from keraszoo.models import validation
from keraszoo.models.compiled import CompiledFunctions
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import merged_table
from keraszoo.models.registry import list_variants
from keraszoo.models.steps import Phase
from keraszoo.models.steps import PhasedTrainingMixin

#: every decoder likelihood a variant may take (the command line's choices); ``_reconstruction_losses``
#: says which a variant supports: ``"discretized_logistic"`` is the VAE family's.
RECONSTRUCTION_LOSSES = ("bce", "mse", "discretized_logistic")


def _replica_scale():
    """1 / num_replicas under a ``tf.distribute`` replica context, else 1.

    Keras' optimizer sums gradients over replicas, so a custom loss computed
    on a per-replica batch must be divided by the replica count.
    """
    if keras.backend.backend() != "tensorflow":
        return 1.0
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return 1.0
    return 1.0 / ctx.num_replicas_in_sync


@contextlib.contextmanager
def _checked_data(model, checks):
    """Re-raises the ValueError of a data check that failed inside the input pipeline (see ``TrainingData``).

    On the JAX backend, Keras' ``fit``/``evaluate`` detach the variables' values while the loop runs
    and re-attach them after a completed step; a stream whose *first* batch fails the check would
    leave the model without any. The values (immutable JAX arrays: references, no copies; the first
    step donates them) are kept and put back in that case, so the model stays usable.
    """
    kept = None
    if checks is not None and checks.streams and keras.backend.backend() == "jax":
        kept = [(v, v.value) for v in _jax_loop_variables(model)]
    try:
        yield
    except Exception as err:
        if kept is not None:
            _reattach(kept)
        replacement = None if checks is None else checks.translate(err)
        if replacement is None:
            raise
        raise replacement from None


def _jax_loop_variables(model):
    """The variables whose values Keras' JAX loops detach (``Trainer._purge_model_variables``)."""
    optimizer = getattr(model, "optimizer", None)
    return (list(model.trainable_variables) + list(model.non_trainable_variables)
            + (list(optimizer.variables) if optimizer is not None else []) + list(model.metrics_variables))


def _reattach(kept):
    for variable, value in kept:
        if getattr(variable, "_value", True) is None and not value.is_deleted():  # detached, never re-attached
            variable.assign(value)


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A ``SeedGenerator`` whose draws differ between ``tf.distribute`` replicas.

    Every replica of a mirrored model holds the same generator state, so a
    plain ``SeedGenerator`` would hand every replica the same noise (the same
    reparameterization ``eps`` for different examples). Offsetting the drawn
    seed by the replica id keeps the draws independent; with one replica the
    draws are exactly those of ``SeedGenerator``.
    """

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        if keras.backend.backend() != "tensorflow":
            return seed
        import tensorflow as tf

        ctx = tf.distribute.get_replica_context()
        if ctx is None or ctx.num_replicas_in_sync == 1:
            return seed
        replica = tf.cast(ctx.replica_id_in_sync_group, seed.dtype)
        return seed + tf.stack([replica * 1_000_003, tf.zeros_like(replica)])


class BaseAutoEncoder(PhasedTrainingMixin, keras.Model):
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
            ``"mse"`` -- ``sum_pixels (x - sigmoid(l))^2``.
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
        "reconstruction_loss": Hyperparameter("decoder likelihood", str, RECONSTRUCTION_LOSSES),
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

    # === Capabilities === (declared here with their defaults; a variant overrides what it has.
    # Code outside keraszoo/models/ reads these and never probes with getattr/hasattr.)
    #: the API and ``fit`` take class labels beside the images (``labels=``; ``fit(x, y)``).
    requires_labels = False
    #: number of classes a conditional variant takes (labels ``0 .. num_classes - 1``); 0: none.
    num_classes = 0
    #: the architectures the variant can build (``architecture=``).
    architectures = networks.ARCHITECTURES
    #: dtype of one example's code as ``encode`` returns it (the VQ-VAE's: int32 codebook indices).
    code_dtype = "float32"
    #: ``(h, w, latent_dim)`` code vectors behind a grid of indices (the VQ-VAE's); ``None``: flat codes.
    quantized_shape = None
    #: the model has a likelihood bound: ``elbo(x)`` and ``log_likelihood(x, num_samples)`` (the VAE family).
    has_likelihood = False
    #: the model trains a second stage after ``fit`` (:meth:`fit_second_stage`; the VQ-VAE's prior).
    has_second_stage = False

    def __init__(self, input_shape=(28, 28, 1), latent_dim=16, architecture="dense",
                 hidden_dims=None, conv_filters=networks.DEFAULT_CONV_FILTERS,
                 reconstruction_loss="bce", encoder=None, decoder=None, seed=None, **kwargs):
        # === Config ===
        image_shape = validation.check_image_shape(input_shape)
        latent_dim = validation.check_positive_int("latent_dim", latent_dim)
        self._check_architecture(architecture)
        hidden_dims = validation.check_int_tuple("hidden_dims", hidden_dims)
        conv_filters = validation.check_int_tuple("conv_filters", conv_filters, allow_empty=False)
        validation.check_choice("reconstruction_loss", reconstruction_loss, self._reconstruction_losses())
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"`seed` must be an integer or None; received {seed!r}.")
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
        validation.check_choice("architecture", architecture, cls.architectures)

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

    # ----------------------------------------------------------- capabilities
    @property
    def code_shape(self):
        """Shape of one example's code as ``encode`` returns it: ``(latent_dim,)`` unless a variant says otherwise."""
        return (self.latent_dim,)

    @property
    def has_flat_codes(self):
        """Whether codes are ``(latent_dim,)`` float vectors (k-NN, probes, scatters and latent arithmetic apply)."""
        return tuple(self.code_shape) == (self.latent_dim,) and self.code_dtype == "float32"

    @property
    def discrete_likelihood(self):
        """Whether the decoder's likelihood is a probability of the 8-bit image (bits/dim apply)."""
        return False

    def label_kwargs(self, labels):
        """``{"labels": labels}`` for a model that ``requires_labels``, ``{}`` for the others: the one way to pass labels."""
        return {"labels": labels} if self.requires_labels else {}

    def cycled_labels(self, n):
        """Labels ``0, 1, .., K-1, 0, ..`` for ``n`` examples of a conditional model (every class equally often); else ``None``."""
        return np.arange(int(n)) % self.num_classes if self.requires_labels else None

    def code_features(self, x, labels=None):
        """Flat float features of the codes of ``x`` for k-NN and linear probes: the codes themselves by default."""
        return self.encode(x, **self.label_kwargs(labels))

    def fit_second_stage(self, x, *, batch_size=128, verbose="auto"):
        """Trains the variant's second stage after ``fit`` (``has_second_stage``); nothing by default."""
        del x, batch_size, verbose
        return None

    def card_pictures(self, seed=0):
        """``{file name: (images, columns)}``: pictures of the variant's own for its model card; none by default."""
        del seed
        return {}

    def reconstruction_description(self):
        """What the reconstruction term measures, with its unit, for tables and axes."""
        return {"bce": "Bernoulli NLL, nats", "mse": "squared error"}.get(self.reconstruction_loss,
                                                                          self.reconstruction_loss)

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

    def training_callbacks(self):
        """Callbacks that :meth:`fit` adds to the caller's (a loss-weight schedule); none by default."""
        return []

    def loss_terms(self, x, training=False):
        """Returns ``{"total_loss", "reconstruction_loss", <regularizers>...}`` (batch means)."""
        raise NotImplementedError

    # ------------------------------------------------------------ input checks
    def _check_inputs(self, x):
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            x = np.asarray(x)
        if isinstance(x, np.ndarray) and x.dtype == np.float64:
            x = x.astype("float32")
        validation.check_images(x, self.image_shape, type(self).__name__)
        x = ops.convert_to_tensor(x)
        if x.dtype != self.compute_dtype:
            x = ops.cast(x, self.compute_dtype)
        return x

    def _check_codes(self, z):
        if not hasattr(z, "shape"):
            z = np.asarray(z)
        if isinstance(z, np.ndarray) and z.dtype.kind not in "biuf":
            raise ValueError(
                f"{type(self).__name__} expects latent codes of shape (batch, {self.latent_dim}) as numbers; "
                f"received an array of dtype {z.dtype}.")
        if isinstance(z, np.ndarray) and z.dtype != np.float32:
            z = z.astype("float32")
        shape = tuple(z.shape)
        if len(shape) != 2 or shape[1] != self.latent_dim:
            raise ValueError(
                f"{type(self).__name__} expects latent codes of shape (batch, {self.latent_dim}); "
                f"received shape {shape}.")
        values = validation.concrete_value(z)
        if values is not None and not np.all(np.isfinite(values)):
            raise ValueError(f"{type(self).__name__}.decode received NaN or Inf codes.")
        return ops.cast(ops.convert_to_tensor(z), self.compute_dtype)

    # -------------------------------------------------------- reconstruction
    def reconstruction_nll(self, x, logits):
        """Per-example reconstruction term (sum over pixels), shape ``(batch,)``."""
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
        steps = validation.check_positive_int("steps", steps)
        if steps < 2:
            raise ValueError(f"`steps` must be at least 2 (both end points); received {steps}.")
        x1, x2 = (x if hasattr(x, "shape") else np.asarray(x) for x in (x1, x2))  # lists of pixels too
        single = len(np.shape(x1)) == len(self.image_shape)
        if single:
            x1, x2 = x1[None], x2[None]
        z1, z2 = self.encode(x1), self.encode(x2)
        if tuple(z1.shape) != tuple(z2.shape):
            raise ValueError(f"`x1` and `x2` must hold the same number of images; got {tuple(np.shape(x1))} and {tuple(np.shape(x2))}.")
        t = ops.reshape(ops.linspace(0.0, 1.0, steps), (1, steps, 1))
        z = ops.expand_dims(z1, 1) * (1.0 - t) + ops.expand_dims(z2, 1) * t
        images = self.decode(ops.reshape(z, (-1, self.latent_dim)))
        images = ops.reshape(images, (-1, steps) + self.image_shape)
        return images[0] if single else images

    def sample(self, n, seed=None):
        """Generates ``n`` images; only generative variants (VAE, HVAE, AAE) can."""
        generative = sorted(cls.__name__ for cls in list_variants().values() if cls.is_generative)
        raise NotImplementedError(
            f"{type(self).__name__} is not a generative model (it has no prior over codes); "
            f"use {', '.join(generative)} to sample.")

    # --------------------------------------------------------------- training
    def compile(self, optimizer=None, **kwargs):
        """Like ``keras.Model.compile``; the default optimizer is Adam(1e-3).

        No ``loss`` is needed: the variant's own loss terms are used.
        """
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        super().compile(optimizer=optimizer, **kwargs)

    #: Whether ``fit`` and ``evaluate`` check their data (see :meth:`fit`); their
    #: ``check_data`` argument overrides it for one call.
    check_data = True

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, check_data=None):
        """``keras.Model.fit``, with the training data checked as ``encode`` checks its input.

        ``x`` (and ``validation_data``) must hold float images in [0, 1],
        finite, of shape ``(batch,) + input_shape``: a NumPy array or tensor
        (checked in full before training, min/max slice by slice), a
        ``tf.data.Dataset`` (shape and dtype from its ``element_spec``
        before training; every batch's values as the pipeline produces it),
        a Python generator or a ``keras.utils.PyDataset`` (every batch, as it
        is produced). Data that breaks the contract -- pixels in 0..255, NaN,
        a wrong size -- raises a ``ValueError`` naming what was expected,
        before the first weight update. Labels are passed on unchecked
        (``fit(x, y)``, datasets of ``(x, y)`` pairs): the unconditional
        variants train on ``x`` alone and ignore them. A generator may yield
        ``x`` alone. ``batch_size``, ``epochs``, ``steps_per_epoch`` ... must be
        positive integers (Keras accepts 0 silently). The model's own
        :meth:`training_callbacks` (a KL warm-up) run before ``callbacks``.

        Args:
            check_data: ``False`` skips the data checks (the argument checks
                stay); ``None`` (default) follows ``model.check_data``
                (``True`` unless set). The checks cost under 1 % of a
                training epoch (``benchmarks/run.py --only data_checks``).

        The other arguments are those of ``keras.Model.fit``.
        """
        owner = f"{type(self).__name__}.fit"
        validation.check_fit_arguments(
            owner, batch_size=batch_size, epochs=epochs, initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
            validation_batch_size=validation_batch_size, validation_freq=validation_freq)
        checks = self._data_checks(owner, check_data)
        if checks is not None:
            x = checks.inputs(x, "x")
            validation_data = checks.validation(validation_data)
        callbacks = self._with_own_callbacks(callbacks)
        with _checked_data(self, checks):
            return super().fit(
                x=x, y=y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
                class_weight=class_weight, sample_weight=sample_weight, initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                validation_batch_size=validation_batch_size, validation_freq=validation_freq)

    def _with_own_callbacks(self, callbacks):
        """The caller's callbacks after :meth:`training_callbacks` (those of a type the caller passes are not added)."""
        own = self.training_callbacks()
        if not own or isinstance(callbacks, keras.callbacks.CallbackList):
            return callbacks
        theirs = list(callbacks or [])
        return [cb for cb in own if not any(type(c) is type(cb) for c in theirs)] + theirs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, check_data=None, **kwargs):
        """``keras.Model.evaluate``, with ``x`` checked as :meth:`fit` checks it (``check_data`` likewise)."""
        if kwargs.get("_use_cached_eval_dataset"):  # fit's validation pass: its data was checked by fit
            checks = None
        else:
            owner = f"{type(self).__name__}.evaluate"
            validation.check_optional_positive_int(owner, "batch_size", batch_size)
            validation.check_optional_positive_int(owner, "steps", steps)
            checks = self._data_checks(owner, check_data)
            if checks is not None:
                x = checks.inputs(x, "x")
        with _checked_data(self, checks):
            return super().evaluate(x=x, y=y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
                                    steps=steps, callbacks=callbacks, return_dict=return_dict, **kwargs)

    def _data_checks(self, owner, check_data):
        enabled = self.check_data if check_data is None else check_data
        if not isinstance(enabled, (bool, np.bool_)):
            raise ValueError(f"{owner}: `check_data` must be True, False or None; received {check_data!r}.")
        return validation.TrainingData(self.image_shape, owner) if enabled else None

    def training_phases(self):
        """The :class:`~keraszoo.models.steps.Phase` s of one training step.

        One phase by default: ``total_loss`` (plus any ``self.losses`` of user
        networks) over every trainable variable, with ``self.optimizer``.
        """
        return (Phase("total", self._training_objective, self.trainable_variables, self.optimizer),)

    def _training_objective(self, x):
        terms = dict(self.loss_terms(x, training=True))
        loss = terms["total_loss"]
        if self.losses:
            loss = loss + ops.sum(self.losses)
        terms["loss"] = loss
        return loss, terms

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The variant's ``total_loss``; updates one metric per loss term.

        ``y`` (labels) and ``sample_weight`` are ignored: the target is ``x``.
        """
        del y, y_pred, sample_weight
        terms = self.loss_terms(x, training=training)
        self._update_trackers(terms, x)
        total = terms["total_loss"]
        if self.losses:
            total = total + ops.sum(self.losses)
        return total * _replica_scale()

    def _update_trackers(self, terms, x):
        # Weighted by the batch size, like Keras' own ``loss`` metric, so that
        # an epoch's ``loss`` and ``total_loss`` agree when the last batch is short.
        batch = ops.cast(ops.shape(x)[0], "float32")
        for tracker in self.loss_trackers:
            tracker.update_state(terms[tracker.name], sample_weight=batch)

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
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.serialized_networks:
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


class GenerativeMixin:
    """``sample`` for variants with a prior ``p(z)`` (subclasses define ``sample_prior``)."""

    is_generative = True

    def _sampling_seed(self, seed):
        """The model's own generator, or a fresh one for a reproducible integer ``seed``."""
        if seed is None:
            return self.seed_generator
        if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):  # np.int64 too
            return keras.random.SeedGenerator(int(seed))
        return seed

    def sample_prior(self, n, seed=None):
        """``n`` draws of ``z ~ p(z) = N(0, I)``."""
        seed = self._sampling_seed(seed)
        return keras.random.normal((n, self.latent_dim), seed=seed)

    def sample(self, n, seed=None):
        """Draws ``z ~ p(z)`` and returns the decoder means, shape ``(n,) + input_shape``."""
        n = validation.check_positive_int("n", n)
        return self.decode(self.sample_prior(n, seed=seed))
