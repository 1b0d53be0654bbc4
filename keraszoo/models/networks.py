"""Encoder / decoder builders for 28x28x1 and 32x32x3 (or any H, W divisible by 4) images.

Every builder returns a functional ``keras.Model`` made of stock Keras layers
(no ``Lambda``), so the networks serialize to JSON and load in safe mode.
Decoders output **logits**; the models apply the sigmoid.
"""

import math

import keras
from keras import layers
from keras import ops

ARCHITECTURES = ("dense", "conv")
DEFAULT_HIDDEN_DIMS = {"dense": (512, 256), "conv": (256,)}
DEFAULT_CONV_FILTERS = (32, 64)
#: The most weights one Dense layer may hold (the int32 index range): a bigger one is a mistyped size,
#: refused before its kernel is allocated (TensorFlow would fail with an out-of-memory error instead).
MAX_LAYER_WEIGHTS = 2**31 - 1


@keras.saving.register_keras_serializable(package="keraszoo")
class Conv2D(layers.Conv2D):
    """``Conv2D`` with stride 1 and ``"same"`` padding, computed as the equivalent
    transposed convolution.

    The function and the weights (kernel ``(kh, kw, in, out)``) are exactly
    those of ``Conv2D``: a stride-1 transposed convolution with the kernel
    flipped in space and its channel axes swapped is the same correlation. Only
    the op differs, and with it the gradient kernels: TensorFlow's CPU
    ``Conv2DBackpropFilter`` for a convolution with few output channels (the
    decoders' 1- or 3-channel logits layer) was 4x slower than the transposed
    form's (54 vs 12 ms per step at batch 128 on the 2-core development CPU),
    which made the conv VAE's training step 40 % slower than the keras.io
    example's. Odd kernel sizes only (even ones pad asymmetrically).

    The class keeps the name ``Conv2D`` because Keras derives a layer's path in
    a ``.weights.h5`` file from its class name: the published weights load
    unchanged.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if (tuple(self.strides) != (1, 1) or self.padding != "same" or tuple(self.dilation_rate) != (1, 1)
                or self.groups != 1 or any(k % 2 == 0 for k in self.kernel_size)):
            raise ValueError("keraszoo.models.networks.Conv2D takes stride 1, 'same' padding, no dilation or groups and odd kernel sizes.")

    def convolution_op(self, inputs, kernel):
        flipped = ops.flip(ops.flip(kernel, axis=0), axis=1)
        return ops.conv_transpose(inputs, ops.transpose(flipped, (0, 1, 3, 2)), strides=1, padding="same",
                                  data_format=self.data_format)


def _dense(x, units, name, **kwargs):
    """``layers.Dense(units, name=name, **kwargs)(x)``, refusing a kernel of more than :data:`MAX_LAYER_WEIGHTS` numbers."""
    fan_in = int(x.shape[-1])
    if fan_in * int(units) > MAX_LAYER_WEIGHTS:
        raise ValueError(
            f"Layer {name!r} would map {fan_in} inputs to {units} units, a {fan_in * units:.3g}-weight kernel "
            f"({fan_in * units * 4 / 1e9:.3g} GB); keraszoo builds at most {MAX_LAYER_WEIGHTS} weights per layer. "
            "Check latent_dim, hidden_dims, conv_filters and input_shape."
        )
    return layers.Dense(units, name=name, **kwargs)(x)


def _check_conv_shape(image_shape, conv_filters):
    factor = 2 ** len(conv_filters)
    h, w, _ = image_shape
    if h % factor or w % factor:
        raise ValueError(
            f"The 'conv' architecture halves the image {len(conv_filters)} times, so height "
            f"and width must be divisible by {factor}; received input_shape {image_shape}. "
            f"Use architecture='dense', fewer conv_filters, or pass your own encoder/decoder."
        )


def _with_condition(inputs, x, condition_dim, name):
    """``(inputs, x)`` with a second input of ``condition_dim`` numbers concatenated to ``x`` (none for 0)."""
    if not condition_dim:
        return inputs, x
    condition = keras.Input(shape=(condition_dim,), name=f"{name}_condition")
    return [inputs, condition], layers.Concatenate(name=f"{name}_concat")([x, condition])


def build_encoder(image_shape, output_dim, architecture="dense", hidden_dims=None,
                  conv_filters=DEFAULT_CONV_FILTERS, output_activation=None, name="encoder", condition_dim=0):
    """x -> features -> Dense(output_dim, output_activation).

    dense: Flatten, Dense(h, relu) for h in hidden_dims.
    conv: Conv2D(f, 3, strides=2, relu) for f in conv_filters, Flatten, Dense(h, relu).
    ``condition_dim > 0``: the network takes ``[x, c]``, a condition ``c`` of that size
    (a conditional variant's one-hot label) concatenated to the flattened features.
    """
    hidden_dims = DEFAULT_HIDDEN_DIMS[architecture] if hidden_dims is None else hidden_dims
    inputs = keras.Input(shape=image_shape, name=f"{name}_input")
    x = inputs
    if architecture == "conv":
        _check_conv_shape(image_shape, conv_filters)
        for i, f in enumerate(conv_filters):
            x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    inputs, x = _with_condition(inputs, x, condition_dim, name)
    for i, h in enumerate(hidden_dims):
        x = _dense(x, h, f"{name}_dense{i}", activation="relu")
    outputs = _dense(x, output_dim, f"{name}_out", activation=output_activation)
    return keras.Model(inputs, outputs, name=name)


def build_decoder(latent_dim, image_shape, architecture="dense", hidden_dims=None,
                  conv_filters=DEFAULT_CONV_FILTERS, name="decoder", condition_dim=0):
    """z -> logits of shape ``image_shape`` (mirror of ``build_encoder``; ``[z, c]`` with a condition, concatenated)."""
    hidden_dims = DEFAULT_HIDDEN_DIMS[architecture] if hidden_dims is None else hidden_dims
    inputs = keras.Input(shape=(latent_dim,), name=f"{name}_input")
    inputs, x = _with_condition(inputs, inputs, condition_dim, name)
    for i, h in enumerate(reversed(tuple(hidden_dims))):
        x = _dense(x, h, f"{name}_dense{i}", activation="relu")
    h_img, w_img, channels = image_shape
    if architecture == "conv":
        _check_conv_shape(image_shape, conv_filters)
        factor = 2 ** len(conv_filters)
        h0, w0 = h_img // factor, w_img // factor
        x = _dense(x, h0 * w0 * conv_filters[-1], f"{name}_project", activation="relu")
        x = layers.Reshape((h0, w0, conv_filters[-1]), name=f"{name}_reshape")(x)
        for i, f in enumerate(reversed(tuple(conv_filters))):
            x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu",
                                       name=f"{name}_deconv{i}")(x)
        outputs = Conv2D(channels, 3, padding="same", name=f"{name}_logits")(x)
    else:
        x = _dense(x, math.prod(image_shape), f"{name}_logits")
        outputs = layers.Reshape(image_shape, name=f"{name}_reshape")(x)
    return keras.Model(inputs, outputs, name=name)


def build_mlp(input_dim, hidden_dims, output_dim, output_activation=None, name="mlp", batch_norm=False):
    """A plain MLP ``input_dim -> hidden (relu) ... -> output_dim``.

    ``batch_norm``: every hidden layer is ``Dense -> BatchNormalization -> ReLU``, and a ReLU output
    (a deterministic feature path) is normalized too; a linear output (Gaussian parameters) never is.
    """
    inputs = keras.Input(shape=(input_dim,), name=f"{name}_input")
    x = inputs
    for i, h in enumerate(hidden_dims):
        x = _normalized_dense(x, h, f"{name}_dense{i}") if batch_norm else _dense(
            x, h, f"{name}_dense{i}", activation="relu")
    if batch_norm and output_activation == "relu":
        outputs = _normalized_dense(x, output_dim, f"{name}_out")
    else:
        outputs = _dense(x, output_dim, f"{name}_out", activation=output_activation)
    return keras.Model(inputs, outputs, name=name)


def _normalized_dense(x, units, name):
    x = _dense(x, units, name, activation=None)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def check_network(network, role, input_shape, output_shape, condition_dim=0):
    """Checks a user-supplied sub-network by running it on a symbolic input (``[input, condition]`` with a condition)."""
    if not isinstance(network, keras.layers.Layer):
        raise ValueError(f"`{role}` must be a keras Layer/Model; received {type(network).__name__}.")
    spec = keras.KerasTensor((2,) + tuple(input_shape))
    if condition_dim:
        spec = [spec, keras.KerasTensor((2, condition_dim))]
    try:
        out = network.compute_output_spec(spec)
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        also = f" and conditions of shape (batch, {condition_dim}) as a second input" if condition_dim else ""
        raise ValueError(
            f"The `{role}` network must accept inputs of shape (batch, {', '.join(map(str, input_shape))}){also}; "
            f"calling it failed: {exc}"
        ) from exc
    got = tuple(out.shape[1:])
    if got != tuple(output_shape):
        raise ValueError(
            f"The `{role}` network must return shape (batch, {', '.join(map(str, output_shape))}); it returns {tuple(out.shape)}."
        )
    if not network.built:
        shape = (None,) + tuple(input_shape)
        network.build([shape, (None, condition_dim)] if condition_dim else shape)
    return network
