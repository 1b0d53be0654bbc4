"""An independent NumPy (float64) implementation of keraszoo's networks and loss terms.

It reads a network's weights and runs its graph itself -- ``Dense``, ``Conv2D``
(Keras' and :class:`keraszoo.models.networks.Conv2D`), ``Conv2DTranspose``,
``Flatten``, ``Reshape``, ``ReLU``, ``Add``, ``Concatenate`` and the
activations the built-in networks use -- with no Keras op in the arithmetic,
so that each variant's ``reference_terms`` (its loss terms in NumPy, see
:mod:`keraszoo.models.reference_estimates`) can recompute what a saved model
reports for :mod:`keraszoo.experiments.consistency`, and the model tests can
check every loss term against it.

A layer it does not know raises :class:`UnsupportedLayer` naming it (a check
that cannot run is reported as such, never passed).
"""

from __future__ import annotations

import math

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


class UnsupportedLayer(TypeError):
    """A network holds a layer (or a layer option) this NumPy implementation does not compute."""


# ----------------------------------------------------------------- elementwise
def np_sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(v, dtype="float64")))


def np_softplus(v):
    return np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0)


ACTIVATIONS = {
    "linear": lambda v: v,
    "relu": lambda v: np.maximum(v, 0),
    "sigmoid": np_sigmoid,
    "tanh": np.tanh,
    "softplus": np_softplus,
}


def _activation(layer):
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if name not in ACTIVATIONS:
        raise UnsupportedLayer(f"layer {layer.name!r}: activation {name!r} (NumPy knows {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]


# ----------------------------------------------------------------- convolutions
def _same_padding(size, kernel, stride):
    """TensorFlow's 'same' padding ``(before, after)`` of a strided correlation of ``size`` inputs."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def np_conv2d(x, kernel, bias, stride, padding):
    """Cross-correlation ``(B, H, W, C) * (kh, kw, C, F)`` (Keras' Conv2D), 'same' or 'valid' padding."""
    kh, kw = kernel.shape[:2]
    sh, sw = stride
    if padding == "same":
        (pt, pb), (pl, pr) = _same_padding(x.shape[1], kh, sh), _same_padding(x.shape[2], kw, sw)
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
    for a in range(kh):
        for b in range(kw):
            out += x[:, a : a + sh * (oh - 1) + 1 : sh, b : b + sw * (ow - 1) + 1 : sw, :] @ kernel[a, b]
    return out + (0.0 if bias is None else bias)


def np_conv2d_transpose(x, kernel, bias, stride, padding):
    """Keras' Conv2DTranspose, kernel ``(kh, kw, F, C)``: every input scattered through the kernel, then cropped."""
    kh, kw = kernel.shape[:2]
    sh, sw = stride
    b_, h, w, _ = x.shape
    full = np.zeros((b_, (h - 1) * sh + kh, (w - 1) * sw + kw, kernel.shape[2]))
    for a in range(kh):
        for b in range(kw):
            full[:, a : a + sh * (h - 1) + 1 : sh, b : b + sw * (w - 1) + 1 : sw, :] += x @ kernel[a, b].T
    if padding == "same":
        top, left = max(kh - sh, 0) // 2, max(kw - sw, 0) // 2
        full = full[:, top : top + h * sh, left : left + w * sw, :]
    return full + (0.0 if bias is None else bias)


# ----------------------------------------------------------------- layers
def _weights(layer):
    return [np.asarray(v, dtype="float64") for v in layer.get_weights()]


def _check_plain_conv(layer):
    if tuple(layer.dilation_rate) != (1, 1) or getattr(layer, "groups", 1) != 1 or layer.data_format != "channels_last":
        raise UnsupportedLayer(f"layer {layer.name!r}: dilation, groups or channels_first")
    if getattr(layer, "output_padding", None) is not None:
        raise UnsupportedLayer(f"layer {layer.name!r}: output_padding")


def _dense(layer, h):
    w, *b = _weights(layer)
    return _activation(layer)(h @ w + (b[0] if b else 0.0))


def _conv(layer, h):
    _check_plain_conv(layer)
    w, *b = _weights(layer)
    return _activation(layer)(np_conv2d(h, w, b[0] if b else None, layer.strides, layer.padding))


def _deconv(layer, h):
    _check_plain_conv(layer)
    w, *b = _weights(layer)
    return _activation(layer)(np_conv2d_transpose(h, w, b[0] if b else None, layer.strides, layer.padding))


def _relu(layer, h):
    if layer.max_value is not None or float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
        raise UnsupportedLayer(f"layer {layer.name!r}: ReLU with max_value / negative_slope / threshold")
    return np.maximum(h, 0)


def _batch_norm(layer, h):
    """Inference-mode BatchNormalization over the last axis (the MLPs' ``Dense -> BN -> ReLU``)."""
    if tuple(layer.axis if isinstance(layer.axis, (list, tuple)) else (layer.axis,)) not in ((-1,), (h.ndim - 1,)):
        raise UnsupportedLayer(f"layer {layer.name!r}: BatchNormalization over axis {layer.axis}")
    w = {v.name.split("/")[-1].split(":")[0]: np.asarray(v, "float64") for v in layer.weights}
    out = (h - w["moving_mean"]) / np.sqrt(w["moving_variance"] + float(layer.epsilon))
    return out * w.get("gamma", 1.0) + w.get("beta", 0.0)


def _layer_table():
    import keras

    # (class, fn(layer, *inputs)); subclasses (keraszoo's Conv2D) match their Keras base.
    return (
        (keras.layers.InputLayer, lambda layer, h: h),
        (keras.layers.Flatten, lambda layer, h: h.reshape(h.shape[0], -1)),
        (keras.layers.Reshape, lambda layer, h: h.reshape((h.shape[0],) + tuple(layer.target_shape))),
        (keras.layers.Dense, _dense),
        (keras.layers.Conv2DTranspose, _deconv),
        (keras.layers.Conv2D, _conv),
        (keras.layers.ReLU, _relu),
        (keras.layers.BatchNormalization, _batch_norm),
        (keras.layers.Activation, lambda layer, h: _activation(layer)(h)),
        (keras.layers.Add, lambda layer, *hs: sum(hs[1:], hs[0])),
        (keras.layers.Concatenate, lambda layer, *hs: np.concatenate(hs, axis=layer.axis)),
    )


def _apply(layer, inputs):
    import keras

    if isinstance(layer, keras.Model):
        return np_forward(layer, inputs if len(inputs) > 1 else inputs[0])
    if type(layer).__name__ == "Dropout" or type(layer).__name__ == "GaussianNoise":  # identity at inference
        return inputs[0]
    for cls, fn in _layer_table():
        if isinstance(layer, cls):
            return fn(layer, *inputs)
    raise UnsupportedLayer(f"layer {layer.name!r} of type {type(layer).__name__}")


def np_forward(network, x):
    """Runs a Keras network (functional or Sequential, nested ones included) in float64 NumPy.

    ``x``: one array, or a list of arrays for a network of several inputs (a conditional model's ``[x, c]``).

    Raises:
        UnsupportedLayer: naming the first layer it cannot compute.
    """
    import keras

    inputs = [np.asarray(v, dtype="float64") for v in (x if isinstance(x, (list, tuple)) else [x])]
    if isinstance(network, keras.Sequential):
        (h,) = inputs
        for layer in network.layers:
            h = _apply(layer, [h])
        return h
    if not hasattr(network, "_nodes_by_depth"):
        return _apply(network, inputs)
    values = {id(t): v for t, v in zip(network.inputs, inputs)}
    if len(values) != len(inputs):
        raise ValueError(f"network {network.name!r} takes {len(network.inputs)} input(s); received {len(inputs)}.")
    for depth in sorted(network._nodes_by_depth, reverse=True):
        for node in network._nodes_by_depth[depth]:
            if not node.input_tensors:  # an Input
                continue
            out = _apply(node.operation, [values[id(t)] for t in node.input_tensors])
            outs = node.output_tensors
            for t, v in zip(outs, out if len(outs) > 1 else [out]):
                values[id(t)] = v
    outputs = [values[id(t)] for t in network.outputs]
    return outputs[0] if len(outputs) == 1 else outputs


# ----------------------------------------------------------------- loss terms (per example, nats)
def per_example_sum(t):
    return np.asarray(t).reshape(len(t), -1).sum(1)


def np_bce(x, logits):
    """Bernoulli NLL summed over pixels, per example."""
    return per_example_sum(np_softplus(logits) - x * logits)


def np_squared_error(x, x_hat):
    return per_example_sum((x - x_hat) ** 2)


def np_gaussian_nll(x, mean, log_std):
    z = (x - mean) * np.exp(-log_std)
    return per_example_sum(0.5 * z**2 + log_std + 0.5 * LOG_2PI)


def np_discretized_logistic_nll(x, mean, log_scale, num_bins=256):
    """-log P(level) of a discretized logistic summed over pixels, per example: the logistic CDF's mass
    over each level's bin, the end bins open to -inf and +inf (float64, without the float32 fallbacks)."""
    x, mean = np.asarray(x, "float64"), np.asarray(mean, "float64")
    s = np.exp(np.maximum(np.asarray(log_scale, "float64"), -7.0))
    half = 0.5 / (num_bins - 1)
    upper = np.where(x > 1 - half, 1.0, np_sigmoid((x + half - mean) / s))
    lower = np.where(x < half, 0.0, np_sigmoid((x - half - mean) / s))
    return per_example_sum(-np.log(upper - lower))


def np_gaussian_params(params, bound=None):
    """``(mean, log_var)`` of a network's Gaussian output (its halves), the log-variance clipped to ``+-bound`` if given."""
    mean, log_var = np.split(np.asarray(params, "float64"), 2, axis=-1)
    return mean, log_var if bound is None else np.clip(log_var, -bound, bound)


def np_reparameterize(mean, log_var, rng):
    """One draw of ``N(mean, exp(log_var))`` from ``rng``."""
    return mean + np.exp(0.5 * log_var) * rng.standard_normal(mean.shape)


def np_kl_std_normal(mu, lv):
    return 0.5 * (np.exp(lv) + mu**2 - 1 - lv).sum(-1)


def np_kl_gaussians(mq, lq, mp, lp):
    return 0.5 * (lp - lq + (np.exp(lq) + (mq - mp) ** 2) * np.exp(-lp) - 1.0).sum(-1)


def np_log_normal(z, mu, lv):
    return (-0.5 * (np.log(2 * np.pi) + lv) - (z - mu) ** 2 / (2 * np.exp(lv))).sum(-1)


def np_standard_normal_log_prob(z):
    return -0.5 * (LOG_2PI + z**2).sum(-1)


def np_gaussian_entropy(lv):
    return 0.5 * (LOG_2PI + 1.0 + lv).sum(-1)


def np_log_mean_exp(v, axis):
    m = np.max(v, axis=axis, keepdims=True)
    return np.squeeze(m + np.log(np.mean(np.exp(v - m), axis=axis, keepdims=True)), axis=axis)


def np_kl_sparsity(h, target, epsilon=1e-6):
    rho_hat = np.clip(h.mean(0), epsilon, 1 - epsilon)
    rho = target
    return float(np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))))


def np_imq_mmd(q, p, base_constant, scales):
    """The unbiased inverse-multiquadratic MMD U-statistic of the WAE (0 with fewer than two rows a side)."""
    n, m = len(q), len(p)
    if n < 2 or m < 2:
        return 0.0

    def sq(a, b):
        return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0)

    kqq = kpp = kqp = 0.0
    for s in scales:
        c = base_constant * s
        kqq, kpp, kqp = kqq + c / (c + sq(q, q)), kpp + c / (c + sq(p, p)), kqp + c / (c + sq(q, p))
    return float((kqq.sum() - np.trace(kqq)) / (n * (n - 1)) + (kpp.sum() - np.trace(kpp)) / (m * (m - 1))
                 - 2 * kqp.sum() / (n * m))


def np_nearest_codes(z_e, codebook):
    """``(indices, z_q)``: each vector of ``z_e`` (last axis) replaced by its nearest codebook row (squared distance)."""
    flat = z_e.reshape(-1, codebook.shape[1])
    distances = (flat**2).sum(1)[:, None] - 2 * flat @ codebook.T + (codebook**2).sum(1)[None, :]
    indices = distances.argmin(1)
    return indices.reshape(z_e.shape[:-1]), codebook[indices].reshape(z_e.shape)


def np_code_perplexity_usage(indices, num_embeddings):
    """``(perplexity, usage)`` of a batch's codebook indices: ``exp`` of the entropy of their histogram, and
    the fraction of the codebook they use."""
    counts = np.bincount(np.ravel(indices), minlength=num_embeddings).astype("float64")
    p = counts / max(counts.sum(), 1.0)
    return float(np.exp(-np.sum(p * np.log(np.maximum(p, 1e-12))))), float(np.mean(counts > 0))


# ----------------------------------------------------------------- the contractive penalty
_DERIVATIVES = {
    "linear": lambda pre, out: np.ones_like(pre),
    "relu": lambda pre, out: (pre > 0).astype("float64"),
    "sigmoid": lambda pre, out: out * (1 - out),
    "tanh": lambda pre, out: 1 - out**2,
    "softplus": lambda pre, out: np_sigmoid(pre),
}


def _chain(network):
    """The layers of a single-input chain network, input first; :class:`UnsupportedLayer` for any other graph."""
    import keras

    if isinstance(network, keras.Sequential):
        return list(network.layers)
    layers = []
    for depth in sorted(network._nodes_by_depth, reverse=True):
        nodes = network._nodes_by_depth[depth]
        if len(nodes) != 1 or len(nodes[0].input_tensors) > 1:
            raise UnsupportedLayer(f"network {network.name!r}: the Jacobian needs a chain of single-input layers")
        if nodes[0].input_tensors:
            layers.append(nodes[0].operation)
    return layers


def np_jacobian_frobenius_sq(network, x, gram=False):
    """``(network(x), ||d network(x_i) / d x_i||_F^2 per example)`` by reverse mode, one pass per output unit;
    with ``gram``, also ``||J_i J_i^T||_F^2`` per example (``J_i`` the Jacobian of example ``i``): the variance of
    the projection estimate ``||J_i^T v||^2``, ``v ~ N(0, I)``, is twice it.

    Handles chains of Flatten, Reshape, Dense and Conv2D with the activations of :data:`ACTIVATIONS`.
    """
    import keras

    h = np.asarray(x, dtype="float64")
    tape = []
    for layer in _chain(network):
        if isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape, keras.layers.InputLayer)):
            tape.append(("reshape", layer, h.shape))
            h = _apply(layer, [h])
            continue
        if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)) or isinstance(layer, keras.layers.Conv2DTranspose):
            raise UnsupportedLayer(f"layer {layer.name!r} of type {type(layer).__name__} in a Jacobian")
        name = getattr(layer.activation, "__name__", "linear")
        if name not in _DERIVATIVES:
            raise UnsupportedLayer(f"layer {layer.name!r}: activation {name!r} in a Jacobian")
        w, *b = _weights(layer)
        if isinstance(layer, keras.layers.Dense):
            pre = h @ w + (b[0] if b else 0.0)
        else:
            _check_plain_conv(layer)
            pre = np_conv2d(h, w, b[0] if b else None, layer.strides, layer.padding)
        out = ACTIVATIONS[name](pre)
        tape.append(("layer", layer, (w, _DERIVATIVES[name](pre, out), h.shape)))
        h = out
    batch, units = h.shape[0], int(np.prod(h.shape[1:]))
    # cotangents: (units, batch) + output shape, the identity of each output unit
    g = np.broadcast_to(np.eye(units).reshape((units, 1) + h.shape[1:]), (units, batch) + h.shape[1:]).copy()
    for kind, layer, info in reversed(tape):
        if kind == "reshape":
            g = g.reshape((units,) + tuple(info))
            continue
        w, slope, in_shape = info
        g = g * slope
        if isinstance(layer, keras.layers.Dense):
            g = g @ w.T
        else:
            flat = g.reshape((units * batch,) + g.shape[2:])
            back = np_conv2d_transpose(flat, w, None, layer.strides, layer.padding)
            g = back[:, : in_shape[1], : in_shape[2], :].reshape((units,) + tuple(in_shape))
    rows = g.reshape(units, batch, -1)  # J_i's rows, one per output unit
    frobenius_sq = (rows**2).sum(axis=(0, 2))
    if not gram:
        return h, frobenius_sq
    jj = np.einsum("ubd,vbd->buv", rows, rows)  # J_i J_i^T, (batch, units, units)
    return h, frobenius_sq, (jj**2).sum(axis=(1, 2))
