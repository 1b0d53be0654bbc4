"""A gated PixelCNN over a grid of discrete codes: the VQ-VAE's learned prior.

``p(c) = prod_i p(c_i | c_<i)`` over the positions of an ``(h, w)`` grid of
code indices in raster order (row by row, left to right), as in van den Oord
et al. (2016), "Conditional Image Generation with PixelCNN Decoders": each layer
has a *vertical* stack, which sees the rows above, and a *horizontal* stack,
which sees the codes to the left in the current row and the vertical stack;
both go through the gated activation ``tanh(W_f * x) * sigmoid(W_g * x)``, and
the horizontal stack is residual. The two stacks together have no blind spot.

The masks of the paper's masked convolutions are written as shifts and crops:
the vertical stack's input is the embedding shifted one row down, and the
horizontal stack's one column right (the paper's mask "A"); every later
convolution is causal by padding (a ``(k//2 + 1, k)`` kernel over the rows
``i - k//2 .. i`` of its input, a ``(1, k//2 + 1)`` kernel over the columns
``j - k//2 .. j``), which is the masked ``k x k`` kernel (mask "B") without the
half that the mask zeroes. So the logits at position ``(i, j)`` depend only on
the codes before it; ``tests/models/test_vqvae.py`` checks that by perturbing
every later code.

Everything is ``keras.ops`` and stock Keras layers (plus the registered
:class:`GatedBlock`), so the prior trains and samples on TensorFlow and JAX.
"""

import keras
import numpy as np
from keras import layers
from keras import ops

from keraszoo import argtypes
from keraszoo.models import checks
from keraszoo.models import image_checks
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.numeric import map_batches
from keraszoo.models.registry import keraszoo_export


@keraszoo_export()
class GatedBlock(layers.Layer):
    """One gated PixelCNN layer: ``(vertical, horizontal) -> (vertical, horizontal)``, same shapes.

    Args:
        channels: channels of both stacks.
        kernel_size: odd ``k``; the vertical kernel is ``(k//2 + 1, k)``, the horizontal ``(1, k//2 + 1)``.
    """

    def __init__(self, channels, kernel_size=5, **kwargs):
        super().__init__(**kwargs)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` of a gated PixelCNN layer must be odd and positive; received {kernel_size}.")
        self.channels = int(channels)
        self.kernel_size = int(kernel_size)
        half = self.kernel_size // 2
        self.vertical = layers.Conv2D(2 * self.channels, (half + 1, self.kernel_size), name="vertical")
        self.horizontal = layers.Conv2D(2 * self.channels, (1, half + 1), name="horizontal")
        self.vertical_to_horizontal = layers.Conv2D(2 * self.channels, 1, name="vertical_to_horizontal")
        self.horizontal_out = layers.Conv2D(self.channels, 1, name="horizontal_out")

    def build(self, input_shape):
        v_shape, h_shape = input_shape
        half = self.kernel_size // 2
        self.vertical.build((v_shape[0], v_shape[1] + half, v_shape[2] + 2 * half, v_shape[3]))
        self.horizontal.build((h_shape[0], h_shape[1], h_shape[2] + half, h_shape[3]))
        self.vertical_to_horizontal.build(tuple(v_shape[:3]) + (2 * self.channels,))
        self.horizontal_out.build(tuple(h_shape[:3]) + (self.channels,))

    @staticmethod
    def gate(features):
        f, g = ops.split(features, 2, axis=-1)
        return ops.tanh(f) * ops.sigmoid(g)

    def call(self, inputs):
        v, h = inputs
        half = self.kernel_size // 2
        # vertical: output row i sees input rows i - half .. i (their columns j - half .. j + half)
        v_features = self.vertical(ops.pad(v, [[0, 0], [half, 0], [half, half], [0, 0]]))
        # horizontal: output column j sees input columns j - half .. j of the same row
        h_features = self.horizontal(ops.pad(h, [[0, 0], [0, 0], [half, 0], [0, 0]]))
        h_features = h_features + self.vertical_to_horizontal(v_features)
        return self.gate(v_features), h + self.horizontal_out(self.gate(h_features))

    def compute_output_spec(self, inputs):
        v, h = inputs
        return keras.KerasTensor(v.shape, v.dtype), keras.KerasTensor(h.shape, h.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels, "kernel_size": self.kernel_size})
        return config


def build_pixelcnn(grid_shape, num_embeddings, channels=64, num_layers=6, kernel_size=5, name="prior"):
    """Code indices ``(batch, h, w)`` int32 -> logits ``(batch, h, w, num_embeddings)`` of ``p(c_i | c_<i)``."""
    h, w = grid_shape
    inputs = keras.Input((h, w), dtype="int32", name=f"{name}_codes")
    x = layers.Embedding(num_embeddings, channels, name=f"{name}_embedding")(inputs)
    # The first layer's masks ("A"): the vertical stack starts one row down, the horizontal one column right.
    v = layers.Cropping2D(((0, 1), (0, 0)), name=f"{name}_shift_down_crop")(
        layers.ZeroPadding2D(((1, 0), (0, 0)), name=f"{name}_shift_down")(x))
    hz = layers.Cropping2D(((0, 0), (0, 1)), name=f"{name}_shift_right_crop")(
        layers.ZeroPadding2D(((0, 0), (1, 0)), name=f"{name}_shift_right")(x))
    for i in range(num_layers):
        v, hz = GatedBlock(channels, kernel_size, name=f"{name}_gated{i}")([v, hz])
    out = layers.ReLU(name=f"{name}_relu0")(hz)
    out = layers.Conv2D(channels, 1, activation="relu", name=f"{name}_head")(out)
    logits = layers.Conv2D(num_embeddings, 1, name=f"{name}_logits")(out)
    return keras.Model(inputs, logits, name=name)


def sample_codes(logits_fn, n, grid_shape, seed):
    """Draws ``n`` code grids position by position: ``c_i ~ p(c_i | c_<i)``, raster order.

    ``logits_fn(codes)`` returns the logits of every position for a grid
    ``(n, h, w)`` int32; ``seed`` is a ``SeedGenerator`` (one draw per position).
    ``n`` may be a tensor (the exported ``sample`` endpoint).
    """
    h, w = grid_shape
    codes = ops.zeros((n, h, w), dtype="int32")
    for i in range(h):
        for j in range(w):
            logits = logits_fn(codes)[:, i, j, :]
            draw = ops.cast(keras.random.categorical(ops.cast(logits, "float32"), 1, seed=seed)[:, 0], "int32")
            mask = np.zeros((1, h, w), dtype="int32")
            mask[0, i, j] = 1
            codes = codes + ops.reshape(draw, (-1, 1, 1)) * ops.convert_to_tensor(mask)
    return codes


def train_prior(prior, codes, *, epochs, batch_size, learning_rate, validation_codes=None, verbose="auto",
                callbacks=None):
    """Fits ``prior`` to ``codes`` (NumPy int32 ``(N, h, w)``) by maximum likelihood; returns the ``History``.

    The loss is the cross-entropy of each code given the codes before it, in
    nats per code (Keras' mean over batch and positions). A throwaway
    functional model over the same layers holds the optimizer, so the prior
    inside its VQ-VAE carries no optimizer state of its own; the prior is
    trainable only during this call.
    """
    prior.trainable = True  # only while it trains: the host model's fit leaves it alone
    try:
        trainer = keras.Model(prior.inputs, prior.outputs, name="prior_trainer")
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        validation = None if validation_codes is None else (validation_codes, validation_codes)
        return trainer.fit(codes, codes, batch_size=batch_size, epochs=epochs, shuffle=True,
                           validation_data=validation, verbose=verbose, callbacks=callbacks)
    finally:
        prior.trainable = False


class _GenerativeOnceItsPriorIsTrained:
    """``is_generative``: ``True`` on the class (it can sample), and on a model whether its prior is trained."""

    def __get__(self, model, owner=None):
        return True if model is None else model.prior_trained


class PixelCNNPriorMixin:
    """A learned prior over a model's grid of code indices: training (second stage) and sampling.

    The host model has ``code_shape`` ``(h, w)``, ``num_embeddings``, an
    ``encode(x)`` returning code indices, ``decode`` accepting them, and calls
    :meth:`_build_prior` in its constructor.
    """

    is_generative = _GenerativeOnceItsPriorIsTrained()
    has_second_stage = True
    gaussian_prior = False  # a learned prior over code indices
    training_options = {
        "prior_epochs": Hyperparameter("VQ-VAE: epochs of the PixelCNN prior, trained on the codes after the "
                                       "autoencoder (default 0: no prior, no sampling)", argtypes.positive_int),
        "prior_lr": Hyperparameter("VQ-VAE: Adam learning rate of the prior (default 1e-3)"),
    }

    def _build_prior(self, channels, num_layers, kernel_size):
        self.prior = build_pixelcnn(self.code_shape, self.num_embeddings, channels, num_layers, kernel_size)
        self.prior.trainable = False  # trained apart (train_prior), never by the autoencoder's fit
        #: epochs of prior training so far (a weight: it saves and loads with the prior's weights).
        self.prior_epochs_trained = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False,
                                                    name="prior_epochs_trained")
        self.prior_epochs, self.prior_lr = 0, 1e-3

    @property
    def prior_trained(self):
        """Whether :meth:`fit_prior` has trained the prior (so ``sample`` works)."""
        value = image_checks.concrete_value(self.prior_epochs_trained.value)
        return True if value is None else bool(int(value) > 0)

    # ---------------------------------------------------------------- the prior
    def prior_logits(self, codes):
        """Logits of ``p(c_ij | c_<ij)`` for code grids ``(batch, h, w)``: ``(batch, h, w, num_embeddings)``."""
        codes = ops.cast(ops.convert_to_tensor(codes), "int32")
        return self._inference_functions("prior_logits", lambda c: self.prior(c, training=False), codes,
                                         self.code_shape)

    def prior_nll(self, codes):
        """``-log p(codes)`` under the prior, per example (nats)."""
        kind, codes = self._check_codes(codes)
        if kind != "indices":
            raise ValueError(f"prior_nll takes code indices of shape (batch, {', '.join(map(str, self.code_shape))}).")
        log_p = ops.log_softmax(ops.cast(self.prior_logits(codes), "float32"), axis=-1)
        picked = ops.sum(log_p * ops.one_hot(codes, self.num_embeddings, dtype="float32"), axis=-1)
        return -ops.sum(ops.reshape(picked, (ops.shape(picked)[0], -1)), axis=-1)

    # ---------------------------------------------------------------- the anomaly score of the prior
    @property
    def anomaly_methods(self):
        """The host's, and ``prior`` (``-log p(codes)``, nats) once the prior is trained."""
        return tuple(super().anomaly_methods) + (("prior",) if self.prior_trained else ())

    def _anomaly_scorers(self):
        return {**super()._anomaly_scorers(), "prior": self._prior_score}

    def _anomaly_unavailable(self, method):
        if method == "prior" and not self.prior_trained:
            return (f"{type(self).__name__}'s prior over its codes is not trained yet: train it with "
                    "model.fit_prior(x, epochs=...) (keraszoo train: --prior-epochs N).")
        return super()._anomaly_unavailable(method)

    def _prior_score(self, xb, given, *, samples, reference):
        del given, samples, reference
        return np.asarray(ops.convert_to_numpy(self.prior_nll(self.encode(xb))), "float64")

    def _require_prior(self):
        if not self.prior_trained:
            raise NotImplementedError(
                f"{type(self).__name__} has no trained prior over its codes yet, so it is not a generative model "
                "until it has one: train it on the codes of your training images with model.fit_prior(x, epochs=...) "
                "(keraszoo train: --prior-epochs N).")

    def sample_prior(self, n, seed=None):
        """``n`` code grids ``(n, h, w)`` int32 drawn from the PixelCNN prior, position by position."""
        self._require_prior()
        return sample_codes(self.prior_logits, n, self.code_shape, self._sampling_seed(seed))

    def sample(self, n, seed=None):
        """Draws code grids from the prior and decodes them: ``(n,) + input_shape``; needs :meth:`fit_prior` first."""
        self._require_prior()
        return super().sample(n, seed=seed)

    def _codes_of(self, data, batch_size):
        """The code indices (NumPy int32) of images: an array, or batches (``tf.data``, a generator) of x or (x, y)."""
        if isinstance(data, np.ndarray) or (hasattr(data, "shape") and hasattr(data, "dtype")):
            return map_batches(self.encode, data, batch_size).astype("int32")
        chunks = []
        for item in data:
            xb = item[0] if isinstance(item, (tuple, list)) else item
            chunks.append(np.asarray(ops.convert_to_numpy(self.encode(xb))))
        if not chunks:
            raise ValueError("fit_prior received no images.")
        return np.concatenate(chunks).astype("int32")

    def fit_prior(self, x, epochs=10, batch_size=128, learning_rate=1e-3, validation_data=None, verbose="auto",
                  callbacks=None):
        """Trains the PixelCNN prior on the codes of images ``x`` (the encoder and codebook stay as they are).

        ``x`` (and ``validation_data``): float images in [0, 1], as an array or
        a dataset of batches (``x`` or ``(x, y)``). The loss is the prior's
        cross-entropy in nats per code. Returns the Keras ``History``;
        afterwards ``sample`` works.
        """
        epochs = checks.check_positive_int("epochs", epochs)
        batch_size = checks.check_positive_int("batch_size", batch_size)
        learning_rate = checks.check_non_negative("learning_rate", learning_rate)
        codes = self._codes_of(x, batch_size)
        val = None if validation_data is None else self._codes_of(validation_data, batch_size)
        history = train_prior(self.prior, codes, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                              validation_codes=val, verbose=verbose, callbacks=callbacks)
        self.prior_epochs_trained.assign(self.prior_epochs_trained.value + epochs)
        return history

    def fit_second_stage(self, x, *, batch_size=128, verbose="auto"):
        """The training engine's hook after ``fit``: :meth:`fit_prior` for ``prior_epochs`` (a compile option).

        Returns ``{"final_train_prior_loss": nats per code}`` of the last prior epoch, or ``{}`` when
        ``prior_epochs`` is 0.
        """
        if not self.prior_epochs:
            return {}
        history = self.fit_prior(x, epochs=self.prior_epochs, batch_size=batch_size, learning_rate=self.prior_lr,
                                 verbose=verbose)
        return {"final_train_prior_loss": float(history.history["loss"][-1])}

    @classmethod
    def compile_options(cls, prior_epochs=None, prior_lr=None, **options):
        """``prior_epochs`` / ``prior_lr``: the second stage run by ``keraszoo train`` (see :meth:`fit_second_stage`)."""
        kwargs = super().compile_options(**options)
        kwargs.update({k: v for k, v in (("prior_epochs", prior_epochs), ("prior_lr", prior_lr)) if v is not None})
        return kwargs

    def compile(self, optimizer=None, prior_epochs=0, prior_lr=1e-3, **kwargs):
        """The host's ``compile``; ``prior_epochs``/``prior_lr`` configure :meth:`fit_second_stage`."""
        self.prior_epochs = checks.check_non_negative_int("prior_epochs", prior_epochs)
        self.prior_lr = checks.check_non_negative("prior_lr", prior_lr)
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config() or {}
        if config:
            config.update({"prior_epochs": self.prior_epochs, "prior_lr": self.prior_lr})
        return config

    def compile_from_config(self, config):
        """Recompiles a loaded model (its optimizer, built so that its saved state loads, and the prior options)."""
        config = dict(config)
        optimizer = config.get("optimizer")
        optimizer = None if optimizer is None else keras.saving.deserialize_keras_object(optimizer)
        self.compile(optimizer=optimizer, prior_epochs=config.get("prior_epochs", 0), prior_lr=config.get("prior_lr", 1e-3))
        self.optimizer.build(self.trainable_variables)
