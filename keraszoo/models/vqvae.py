"""Vector-quantized VAE (van den Oord, Vinyals & Kavukcuoglu, 2017) with a gated PixelCNN prior."""

import keras
import numpy as np
from keras import layers
from keras import ops

from keraszoo import argtypes
from keraszoo.models import checks
from keraszoo.models import image_checks
from keraszoo.models import losses
from keraszoo.models import networks
from keraszoo.models import pixelcnn
from keraszoo.models.base import BaseAutoEncoder
from keraszoo.models.generative import GenerativeMixin
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.metadata import ReportedMetric
from keraszoo.models.quantizer import CODEBOOK_UPDATES
from keraszoo.models.quantizer import VectorQuantizer
from keraszoo.models.reference import np_code_perplexity_usage
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_nearest_codes
from keraszoo.models.reference import per_example_sum
from keraszoo.models.reference_estimates import batch_weights
from keraszoo.models.reference_estimates import batches
from keraszoo.models.reference_estimates import deterministic
from keraszoo.models.registry import keraszoo_export

ENCODE_OUTPUTS = ("indices", "quantized", "continuous")


def _residual_stack(x, hidden_dims, name):
    """``x + conv1x1(relu(conv3x3(relu(x))))`` per entry of ``hidden_dims`` (its hidden channels), then ReLU."""
    channels = int(x.shape[-1])
    for i, hidden in enumerate(hidden_dims):
        h = layers.ReLU(name=f"{name}_res{i}_relu")(x)
        h = layers.Conv2D(hidden, 3, padding="same", activation="relu", name=f"{name}_res{i}_conv3")(h)
        h = layers.Conv2D(channels, 1, name=f"{name}_res{i}_conv1")(h)
        x = layers.Add(name=f"{name}_res{i}_add")([x, h])
    return layers.ReLU(name=f"{name}_relu")(x)


def build_encoder(image_shape, latent_dim, conv_filters, hidden_dims, name="encoder"):
    """x -> z_e ``(h, w, latent_dim)``: strided 4x4 convs (ReLU), a 3x3 conv, residual blocks, a 1x1 conv."""
    inputs = keras.Input(shape=image_shape, name=f"{name}_input")
    x = inputs
    for i, f in enumerate(conv_filters):
        x = layers.Conv2D(f, 4, strides=2, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
    x = layers.Conv2D(conv_filters[-1], 3, padding="same", name=f"{name}_conv_mid")(x)
    x = _residual_stack(x, hidden_dims, name)
    outputs = layers.Conv2D(latent_dim, 1, name=f"{name}_out")(x)
    return keras.Model(inputs, outputs, name=name)


def build_decoder(grid_shape, latent_dim, image_shape, conv_filters, hidden_dims, name="decoder"):
    """z_q ``(h, w, latent_dim)`` -> logits ``image_shape`` (the mirror of :func:`build_encoder`)."""
    inputs = keras.Input(shape=tuple(grid_shape) + (latent_dim,), name=f"{name}_input")
    x = layers.Conv2D(conv_filters[-1], 3, padding="same", name=f"{name}_conv_in")(inputs)
    x = _residual_stack(x, hidden_dims, name)
    for i, f in enumerate(reversed(tuple(conv_filters))):
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", activation="relu", name=f"{name}_deconv{i}")(x)
    outputs = networks.Conv2D(image_shape[-1], 3, padding="same", name=f"{name}_logits")(x)
    return keras.Model(inputs, outputs, name=name)


@keraszoo_export("vqvae")
class VQVAE(pixelcnn.PixelCNNPriorMixin, GenerativeMixin, BaseAutoEncoder):
    """VQ-VAE: a conv encoder to a grid of code vectors, each replaced by its nearest codebook vector.

    ``z_e = f_enc(x)`` has shape ``(h, w, latent_dim)`` (7x7 for 28x28 inputs,
    8x8 for 32x32 with two strided convs); ``k_ij = argmin_k ||z_e,ij - e_k||``,
    ``z_q,ij = e_k_ij``; the decoder sees ``z_e + sg[z_q - z_e]`` (the
    straight-through estimator: the reconstruction's gradient w.r.t. ``z_q`` is
    passed to the encoder unchanged). Loss per example (sums over pixels and
    over the grid and vector entries), batch mean::

        reconstruction_loss = -log p(x | z_q)          (bce, or mse: sum (x - x_hat)^2)
        codebook_loss       = ||sg[z_e] - z_q||^2      (moves the codes; "loss" update only)
        commitment_loss     = ||z_e - sg[z_q]||^2      (keeps the encoder near its codes)
        total_loss          = reconstruction_loss + codebook_loss + commitment_weight * commitment_loss

    The two VQ terms have the same value and differ in where their gradient goes.
    With ``codebook_update="ema"`` the codes follow moving averages of their
    assigned vectors instead (:class:`VectorQuantizer`), so ``codebook_loss`` is
    neither optimised nor reported and ``total_loss = reconstruction_loss +
    commitment_weight * commitment_loss``. Training also logs ``perplexity``
    (``exp`` of the entropy of the batch's code frequencies) and ``usage`` (the
    fraction of the codebook used in the batch).

    Codes: ``encode(x)`` gives the indices ``(batch, h, w)`` int32 (``code_shape``);
    ``encode(x, output="quantized")`` the vectors ``z_q`` ``(batch, h, w,
    latent_dim)``, ``output="continuous"`` the encoder's ``z_e``. ``decode``
    takes indices or vectors. ``interpolate`` moves along the straight line
    between the ``z_e`` of two images and quantizes every point. For k-NN and
    linear probes (``keraszoo.evaluate``) a code is its flattened ``z_q``
    (:meth:`code_features`).

    Sampling needs the second stage: a gated PixelCNN prior over the code grid
    (:mod:`keraszoo.models.pixelcnn`), trained on the frozen encoder's codes by
    :meth:`fit_prior` (or ``keraszoo train ... --prior-epochs N``). Until then
    ``sample`` raises and ``is_generative`` is ``False``.

    Args:
        latent_dim: width ``D`` of each code vector (and of the codebook's).
        architecture: ``"conv"`` only (a grid of codes needs a spatial encoder).
        conv_filters: filters of the strided 4x4 convs; each halves the image.
        hidden_dims: hidden channels of the residual blocks, one block per entry
            (default ``(32, 32)``).
        num_embeddings: codebook size ``K``.
        commitment_weight: ``beta``, the weight of ``commitment_loss``.
        codebook_update: ``"loss"`` (the codebook loss) or ``"ema"``.
        ema_decay, ema_epsilon: the moving averages' decay and Laplace smoothing.
        dead_code_threshold: with EMA, random restarts of the codes whose
            moving-average count ``N_k`` falls below it (0: none; see
            :class:`VectorQuantizer`).
        prior_channels, prior_layers, prior_kernel_size: the PixelCNN's size.
        encoder, decoder: optional networks ``x -> (h, w, latent_dim)`` and
            ``(h, w, latent_dim) -> logits``; the grid follows the encoder.
        **kwargs: see ``BaseAutoEncoder``.
    """

    # === Metadata ===
    title = "vector-quantized variational autoencoder (VQ-VAE) with a gated PixelCNN prior"
    #: the loss in one line (the README's table of variants).
    loss_summary = ("`-log p(x|z_q) + ‖sg[z_e] − e‖² + β·‖z_e − sg[e]‖²`, nearest-neighbour codebook "
                    "(straight-through) or EMA codes; gated PixelCNN prior trained second")
    papers = (
        Paper("Neural Discrete Representation Learning (van den Oord, Vinyals & Kavukcuoglu, 2017)",
              "https://arxiv.org/abs/1711.00937"),
    )
    presets = {"vqvae_ema": {"codebook_update": "ema"}}
    hyperparameters = {
        "num_embeddings": Hyperparameter("VQ-VAE codebook size K (model default 512)", argtypes.positive_int),
        "commitment_weight": Hyperparameter("VQ-VAE commitment loss weight beta (model default 0.25)"),
        "codebook_update": Hyperparameter("VQ-VAE codebook learning: loss (codebook loss) or ema (moving averages)",
                                          str, CODEBOOK_UPDATES),
        "ema_decay": Hyperparameter("VQ-VAE EMA decay (model default 0.99)"),
        "dead_code_threshold": Hyperparameter("VQ-VAE (ema): restart codes whose moving-average count falls below "
                                              "this at a random encoder vector (model default 0: off)"),
        "prior_channels": Hyperparameter("VQ-VAE PixelCNN prior channels (model default 32)", argtypes.positive_int),
        "prior_layers": Hyperparameter("VQ-VAE PixelCNN prior gated layers (model default 6)", argtypes.positive_int),
    }
    reported_metrics = (
        ReportedMetric("codebook_perplexity", "code perplexity {value:.1f}"),
        ReportedMetric("codebook_usage", "codebook usage {value:.1%}"),
    )
    extra_metric_names = ("perplexity", "usage")
    #: the only architecture (read by the registry-wide tests).
    architectures = ("conv",)
    code_dtype = "int32"

    def __init__(self, input_shape=(28, 28, 1), latent_dim=64, architecture="conv", hidden_dims=None,
                 conv_filters=(32, 64), reconstruction_loss="bce", encoder=None, decoder=None, seed=None,
                 num_embeddings=512, commitment_weight=0.25, codebook_update="loss", ema_decay=0.99,
                 ema_epsilon=1e-5, dead_code_threshold=0.0, prior_channels=32, prior_layers=6, prior_kernel_size=5, **kwargs):
        # === Config === (the VQ-VAE's own; BaseAutoEncoder checks the shared arguments)
        self.num_embeddings = checks.check_positive_int("num_embeddings", num_embeddings)
        if self.num_embeddings < 2:
            raise ValueError(f"`num_embeddings` (the codebook size) must be at least 2; received {num_embeddings}.")
        self.commitment_weight = checks.check_non_negative("commitment_weight", commitment_weight)
        self.codebook_update = checks.check_choice("codebook_update", codebook_update, CODEBOOK_UPDATES)
        self.ema_decay = checks.check_fraction("ema_decay", ema_decay)
        self.ema_epsilon = checks.check_non_negative("ema_epsilon", ema_epsilon)
        self.dead_code_threshold = checks.check_non_negative("dead_code_threshold", dead_code_threshold)
        if self.dead_code_threshold and codebook_update != "ema":
            raise ValueError("`dead_code_threshold` (random restarts of unused codes) needs codebook_update='ema'; "
                             f"received codebook_update={codebook_update!r}.")
        self.prior_channels = checks.check_positive_int("prior_channels", prior_channels)
        self.prior_layers = checks.check_positive_int("prior_layers", prior_layers)
        self.prior_kernel_size = checks.check_positive_int("prior_kernel_size", prior_kernel_size)
        if self.prior_kernel_size % 2 == 0:
            raise ValueError(f"`prior_kernel_size` must be odd; received {prior_kernel_size}.")
        self.regularizer_names = ("codebook_loss", "commitment_loss") if codebook_update == "loss" else (
            "commitment_loss",)
        super().__init__(input_shape, latent_dim, architecture, (32, 32) if hidden_dims is None else hidden_dims,
                         conv_filters, reconstruction_loss, encoder, decoder, seed, **kwargs)

    @classmethod
    def _check_architecture(cls, architecture):
        if architecture != "conv":
            raise ValueError(
                f"VQVAE quantizes a spatial grid of code vectors, so it has only the 'conv' architecture; received "
                f"architecture={architecture!r}. Use architecture='conv', or pass your own encoder/decoder.")

    def _build_networks(self, encoder, decoder):
        """A conv encoder to an ``(h, w)`` grid of ``latent_dim``-wide vectors and its decoder (or the user's)."""
        image_shape, latent_dim, conv_filters, hidden_dims = (
            self.image_shape, self.latent_dim, self.conv_filters, self.hidden_dims)
        self._custom_encoder, self._custom_decoder = encoder is not None, decoder is not None
        if encoder is None:
            networks._check_conv_shape(image_shape, conv_filters)
            encoder = build_encoder(image_shape, latent_dim, conv_filters, hidden_dims)
        grid = self._grid_of(encoder)
        if decoder is None:
            decoder = build_decoder(grid, latent_dim, image_shape, conv_filters, hidden_dims)
        else:
            networks.check_network(decoder, "decoder", grid + (latent_dim,), image_shape)
        self.encoder, self.decoder = encoder, decoder
        self._code_grid = grid

    def _build_extra_layers(self):
        self.quantizer = VectorQuantizer(self.num_embeddings, self.latent_dim, self.codebook_update, self.ema_decay,
                                         self.ema_epsilon, self.dead_code_threshold, self.seed, name="quantizer")
        self._build_prior(self.prior_channels, self.prior_layers, self.prior_kernel_size)

    def _grid_of(self, encoder):
        """``(h, w)`` of the encoder's output ``(batch, h, w, latent_dim)``; refuses any other shape."""
        try:
            shape = tuple(encoder.compute_output_spec(keras.KerasTensor((2,) + self.image_shape)).shape)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise ValueError(f"The `encoder` network must accept inputs of shape (batch, "
                             f"{', '.join(map(str, self.image_shape))}); calling it failed: {exc}") from exc
        if len(shape) != 4 or shape[-1] != self.latent_dim or None in shape[1:]:
            raise ValueError(f"The `encoder` network must return shape (batch, h, w, {self.latent_dim}) (a grid of "
                             f"latent_dim-wide vectors); it returns {shape}.")
        if not encoder.built:
            encoder.build((None,) + self.image_shape)
        return tuple(int(d) for d in shape[1:3])

    # ------------------------------------------------------------- shapes
    @property
    def code_shape(self):
        """``(h, w)``: one example's grid of codebook indices."""
        return self._code_grid

    @property
    def quantized_shape(self):
        """``(h, w, latent_dim)``: one example's code vectors."""
        return self.code_shape + (self.latent_dim,)

    # ------------------------------------------------------------- pieces
    def vector_quantize(self, z_e):
        """``(indices, z_q)``: the nearest code of every vector of ``z_e`` and the code vectors."""
        indices = self.quantizer.nearest(z_e)
        return indices, self.quantizer.lookup(indices, z_e.dtype)

    def _deterministic_code(self, x, training=False):
        """``z_q`` (what the decoder sees; ``reconstruct`` and ``call`` decode it)."""
        return self.vector_quantize(self.encoder(x, training=training))[1]

    def _indices(self, x):
        return self.quantizer.nearest(self.encoder(x, training=False))

    # ------------------------------------------------------------- losses
    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        z_e = self.encoder(x, training=training)
        indices, z_q = self.vector_quantize(z_e)
        z_st = z_e + ops.stop_gradient(z_q - z_e)  # straight-through: d/dz_e = d/dz_q
        rec = ops.mean(self.reconstruction_nll(x, self.decoder(z_st, training=training)))
        commitment = ops.mean(losses.squared_error(z_e, ops.stop_gradient(z_q)))
        perplexity, usage = self.quantizer.statistics(indices)
        terms = {"reconstruction_loss": rec, "commitment_loss": commitment, "perplexity": perplexity, "usage": usage}
        total = rec + self.commitment_weight * commitment
        if self.codebook_update == "loss":
            terms["codebook_loss"] = ops.mean(losses.squared_error(ops.stop_gradient(z_e), z_q))
            total = total + terms["codebook_loss"]
        elif training:
            self.quantizer.ema_update(z_e, indices)
        terms["total_loss"] = total
        return terms

    def reference_terms(self, x, labels, ctx):
        """NumPy: the nearest codes by squared distance; perplexity and usage per evaluation batch."""
        del labels
        z_e = np_forward(self.encoder, x)
        indices, z_q = np_nearest_codes(z_e, np.asarray(self.quantizer.codebook.numpy(), dtype="float64"))
        rec = self.reference_reconstruction(x, np_forward(self.decoder, z_q))
        commitment = per_example_sum((z_e - z_q) ** 2)
        parts = batches(len(x), ctx.batch_size)
        perplexity, usage = zip(*(np_code_perplexity_usage(indices[b], self.num_embeddings) for b in parts))
        w = batch_weights(parts, len(x))
        terms = {"reconstruction_loss": deterministic(rec), "commitment_loss": deterministic(commitment),
                 "perplexity": deterministic(perplexity, w), "usage": deterministic(usage, w)}
        total = rec + self.commitment_weight * commitment
        if self.codebook_update == "loss":
            terms["codebook_loss"] = deterministic(commitment)  # the same squared distance, the gradient differs
            total = total + commitment
        terms["total_loss"] = deterministic(total)
        return terms

    # ---------------------------------------------------------------- the API
    def encode(self, x, sample=False, output="indices"):
        """The codes of ``x``: indices ``(batch, h, w)`` int32 (default), or vectors.

        ``output="quantized"``: the code vectors ``z_q`` ``(batch, h, w, latent_dim)``;
        ``output="continuous"``: the encoder's ``z_e`` before quantization. The
        encoder is deterministic: ``sample`` changes nothing.
        """
        del sample
        checks.check_choice("output", output, ENCODE_OUTPUTS)
        x = self._check_inputs(x)
        fn = {"indices": self._indices, "quantized": self._deterministic_code,
              "continuous": lambda t: self.encoder(t, training=False)}[output]
        return self._inference_functions(f"encode_{output}", fn, x, self.image_shape)

    def _check_codes(self, z):
        """``("indices", int32 tensor)`` for ``(batch, h, w)`` codes, ``("vectors", float tensor)`` for
        ``(batch, h, w, latent_dim)``; anything else is refused."""
        if not hasattr(z, "shape"):
            z = np.asarray(z)
        shape, owner = tuple(z.shape), type(self).__name__
        dtype = str(getattr(z.dtype, "name", z.dtype))
        if shape[1:] in (self.code_shape, self.quantized_shape):
            checks.check_output_size(f"{owner}.decode of {shape[0]} codes", shape[0], self.image_shape,
                                     lambda most: f"decode them in batches of at most {most:,} (z[i:i + {most}])")
        if shape[1:] == self.code_shape:
            values = image_checks.concrete_value(z)
            if values is not None:
                values = np.asarray(values)
                if values.size and (not np.all(np.isfinite(values)) or np.any(values != np.round(values))
                                    or values.min() < 0 or values.max() >= self.num_embeddings):
                    raise ValueError(f"{owner}.decode received code indices outside the integers 0 .. "
                                     f"{self.num_embeddings - 1} (its codebook size is {self.num_embeddings}).")
            return "indices", ops.cast(ops.convert_to_tensor(z), "int32")
        if shape[1:] == self.quantized_shape and ("float" in dtype or "int" in dtype):
            values = image_checks.concrete_value(z)
            if values is not None and not np.all(np.isfinite(np.asarray(values, dtype="float32"))):
                raise ValueError(f"{owner}.decode received NaN or Inf codes.")
            return "vectors", ops.cast(ops.convert_to_tensor(z), self.compute_dtype)
        grid = ", ".join(map(str, self.code_shape))
        raise ValueError(
            f"{owner} expects latent codes of shape (batch, {grid}) (code indices, integers 0 .. "
            f"{self.num_embeddings - 1}) or (batch, {grid}, {self.latent_dim}) (code vectors); received shape {shape}.")

    def _decode(self, name, fn, z):
        kind, z = self._check_codes(z)
        if kind == "indices":
            return self._inference_functions(f"{name}_indices", lambda c: fn(self.quantizer.lookup(
                c, self.compute_dtype)), z, self.code_shape)
        return self._inference_functions(name, fn, z, self.quantized_shape)

    def decode_logits(self, z):
        """Decoder logits for code indices ``(batch, h, w)`` or code vectors ``(batch, h, w, latent_dim)``."""
        return self._decode("decode_logits", self._decoder_logits, z)

    def decode(self, z):
        """Images in [0, 1] for code indices ``(batch, h, w)`` or code vectors ``(batch, h, w, latent_dim)``.

        Vectors are decoded as given (not snapped to the codebook).
        """
        return self._decode("decode", self._decoder_mean, z)

    def interpolate(self, x1, x2, steps=10):
        """Decodes ``steps`` points on the line from ``z_e(x1)`` to ``z_e(x2)``, each quantized to its codes.

        The end points decode exactly as ``decode(encode(x))``. ``x1``/``x2``:
        single images -> ``(steps,) + input_shape``; batches of B images ->
        ``(B, steps) + input_shape``.
        """
        steps = checks.check_steps(steps)
        single = len(np.shape(x1)) == len(self.image_shape)
        if single:
            x1, x2 = x1[None], x2[None]
        self._check_interpolation_size(np.shape(x1)[0] if len(np.shape(x1)) == len(self.image_shape) + 1 else None,
                                       steps)
        z1, z2 = self.encode(x1, output="continuous"), self.encode(x2, output="continuous")
        if tuple(z1.shape) != tuple(z2.shape):
            raise ValueError(f"`x1` and `x2` must hold the same number of images; got {tuple(np.shape(x1))} and "
                             f"{tuple(np.shape(x2))}.")
        t = ops.reshape(ops.linspace(0.0, 1.0, steps), (1, steps, 1, 1, 1))
        z = ops.expand_dims(z1, 1) * (1.0 - t) + ops.expand_dims(z2, 1) * t
        indices = self.quantizer.nearest(ops.reshape(z, (-1,) + self.quantized_shape))
        images = ops.reshape(self.decode(indices), (-1, steps) + self.image_shape)
        return images[0] if single else images

    def code_features(self, x):
        """Flat float features of the codes of ``x`` for k-NN / linear probes: ``z_q`` flattened, ``(batch, h*w*D)``."""
        z_q = self.encode(x, output="quantized")
        return ops.reshape(z_q, (-1, int(np.prod(self.quantized_shape))))

    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        """``codebook_perplexity`` and ``codebook_usage`` of the codes of all of ``x`` (``codes``: indices)."""
        del x, batch_size, seed
        counts = np.bincount(np.asarray(codes).reshape(-1).astype("int64"), minlength=self.num_embeddings)
        p = counts / max(1, counts.sum())
        nonzero = p[p > 0]
        return {"codebook_perplexity": float(np.exp(-np.sum(nonzero * np.log(nonzero)))),
                "codebook_usage": float(np.mean(counts > 0))}

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_embeddings": self.num_embeddings, "commitment_weight": self.commitment_weight,
            "codebook_update": self.codebook_update, "ema_decay": self.ema_decay, "ema_epsilon": self.ema_epsilon,
            "dead_code_threshold": self.dead_code_threshold,
            "prior_channels": self.prior_channels, "prior_layers": self.prior_layers,
            "prior_kernel_size": self.prior_kernel_size,
        })
        return config
