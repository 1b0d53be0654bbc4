"""Section 1 of docs/theory.md: parameters and multiply-adds of every layer keraszoo builds, per image.

Three counts for each network: the parameter formulas (1.1)-(1.3) against ``count_params()``; the nominal
multiply-adds (1.4) against TensorFlow's profiler (its FLOPs of the MatMul / convolution ops, halved); and
the useful multiply-adds (1.5), the taps that do not land in the zero padding, against a measurement:
the layer run with all weights 1, biases 0, on an all-ones input sums to the number of its useful taps.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keraszoo.models import VAE
from keraszoo.models import AutoEncoder

CONFIGS = [
    dict(input_shape=(28, 28, 1), latent_dim=16, architecture="dense", hidden_dims=(512, 256)),
    dict(input_shape=(32, 32, 3), latent_dim=8, architecture="dense", hidden_dims=(64,)),
    dict(input_shape=(28, 28, 1), latent_dim=16, architecture="conv", hidden_dims=(256,), conv_filters=(32, 64)),
    dict(input_shape=(32, 32, 3), latent_dim=10, architecture="conv", hidden_dims=(), conv_filters=(16,)),
    dict(input_shape=(16, 16, 1), latent_dim=4, architecture="conv", hidden_dims=(8, 6), conv_filters=(4, 8, 12)),
]


def same_taps(n_in, n_out, stride, k=3):
    """T in Eq. (1.5): the (output position, tap) pairs of a 'same' convolution n_in -> n_out that fall inside the input."""
    pad_lo = max((n_out - 1) * stride + k - n_in, 0) // 2
    return sum(1 for o in range(n_out) for a in range(k) if 0 <= o * stride + a - pad_lo < n_in)


def expected_layers(input_shape, latent_dim, architecture, hidden_dims, conv_filters=(32, 64), outputs_per_unit=1):
    """``{layer name: (params, nominal MACs, useful MACs)}`` of the encoder and decoder, from Eqs. (1.1)-(1.5)."""
    h, w, c = input_shape
    enc, dec = {}, {}
    width = h * w * c
    if architecture == "conv":
        for i, f in enumerate(conv_filters):  # Conv2D(f, 3, stride 2, same): Eqs. (1.2), (1.4), (1.5)
            ho, wo = math.ceil(h / 2), math.ceil(w / 2)
            enc[f"encoder_conv{i}"] = (9 * c * f + f, ho * wo * 9 * c * f, same_taps(h, ho, 2) * same_taps(w, wo, 2) * c * f)
            h, w, c = ho, wo, f
        width = h * w * c
    for i, units in enumerate(hidden_dims):  # Dense: Eq. (1.1)
        enc[f"encoder_dense{i}"] = (width * units + units, width * units, width * units)
        width = units
    out = outputs_per_unit * latent_dim
    enc["encoder_out"] = (width * out + out, width * out, width * out)
    width = latent_dim
    for i, units in enumerate(reversed(hidden_dims)):
        dec[f"decoder_dense{i}"] = (width * units + units, width * units, width * units)
        width = units
    hi, wi, ci = input_shape
    if architecture == "conv":
        factor = 2 ** len(conv_filters)
        h, w, c = hi // factor, wi // factor, conv_filters[-1]
        dec["decoder_project"] = (width * h * w * c + h * w * c, width * h * w * c, width * h * w * c)
        for i, f in enumerate(reversed(conv_filters)):  # Conv2DTranspose(f, 3, stride 2): Eq. (1.3)
            dec[f"decoder_deconv{i}"] = (9 * c * f + f, h * w * 9 * c * f, same_taps(2 * h, h, 2) * same_taps(2 * w, w, 2) * c * f)
            h, w, c = 2 * h, 2 * w, f
        dec["decoder_logits"] = (9 * c * ci + ci, h * w * 9 * c * ci, same_taps(h, h, 1) * same_taps(w, w, 1) * c * ci)
    else:
        n = hi * wi * ci
        dec["decoder_logits"] = (width * n + n, width * n, width * n)
    return enc, dec


def profiled_macs(network):
    """``{layer name: FLOPs / 2}`` of the MatMul and convolution ops, by TensorFlow's profiler on one image."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((1,) + tuple(network.input_shape[1:]), tf.float32)
    graph = convert_variables_to_constants_v2(tf.function(lambda v: network(v)).get_concrete_function(spec)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    counts = {}
    for node in tf.compat.v1.profiler.profile(graph=graph, options=options).children:
        op = graph.get_operation_by_name(node.name).type
        if op in ("MatMul", "Conv2D", "Conv2DBackpropInput"):
            layer = next(lay.name for lay in network.layers if f"/{lay.name}" in "/" + node.name.replace("_1/", "/"))
            counts[layer] = counts.get(layer, 0) + node.total_float_ops // 2
    return counts


def measured_useful_macs(layer):
    """The layer with kernel 1, bias 0 on an all-ones input: the sum of its outputs is its number of useful taps."""
    clone = layer.__class__.from_config(layer.get_config())
    clone.build((1,) + tuple(layer.input.shape[1:]))
    clone.set_weights([np.ones_like(v) if v.ndim > 1 else np.zeros_like(v) for v in layer.get_weights()])
    return int(round(float(tf.reduce_sum(clone(tf.ones((1,) + tuple(layer.input.shape[1:])))))))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['architecture']}{c['input_shape'][0]}x{c['input_shape'][2]}")
@pytest.mark.parametrize("cls", [AutoEncoder, VAE])
def test_parameters_and_multiply_adds(cls, config):
    """Eqs. (1.1)-(1.6) in docs/theory.md: per-layer parameters, nominal and useful multiply-adds, against the built networks."""
    model = cls(**config)
    enc, dec = expected_layers(**config, outputs_per_unit=model.encoder_outputs_per_unit)
    for network, expected in ((model.encoder, enc), (model.decoder, dec)):
        weighted = {layer.name: layer for layer in network.layers if layer.weights}
        assert set(weighted) == set(expected), (sorted(weighted), sorted(expected))
        for name, layer in weighted.items():
            assert layer.count_params() == expected[name][0], name
            assert measured_useful_macs(layer) == expected[name][2], name
        assert network.count_params() == sum(v[0] for v in expected.values())  # Eq. (1.6), per network
        assert profiled_macs(network) == {name: v[1] for name, v in expected.items()}
    extra = model.count_params() - model.encoder.count_params() - model.decoder.count_params()
    assert extra == 0  # no weights outside the two networks (the VAE's Bernoulli decoder has none)


def test_useful_taps_of_a_stride_two_convolution():
    """Eq. (1.5) in docs/theory.md, by hand: 28 -> 14 at stride 2, k = 3 ('same', no top padding) has 3 x 14 - 1 = 41 row taps."""
    assert same_taps(28, 14, 2) == 41
    assert same_taps(7, 4, 2) == 3 * 4 - 2  # odd: one padded row on each side
    assert same_taps(28, 28, 1) == 3 * 28 - 2
    keras.backend.clear_session()
