"""IWAE: the k-sample bound, its ELBO terms and its gradient against NumPy, 1 and 2 stochastic layers, TF and JAX."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keraszoo.models import IWAE
from keraszoo.models import losses
from tests.models.model_checks import RecordedNoise
from tests.models.model_checks import check_api_shapes
from tests.models.model_checks import check_config_roundtrip
from tests.models.model_checks import check_fit_step
from tests.models.model_checks import check_keras_roundtrip
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import np_log_normal
from tests.models.model_checks import np_sigmoid
from tests.models.model_checks import terms_numpy


def make(layers=2, k=5, architecture="dense", **kwargs):
    return IWAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), conv_filters=(4, 8), ladder_hidden_dim=12,
                architecture=architecture, stochastic_layers=layers, num_samples=k, seed=0, **kwargs)


def keras_forward(network, x):
    """The network's output as float64 NumPy (conv networks, which np_forward does not run)."""
    return np.asarray(keras.ops.convert_to_numpy(network(np.asarray(x, "float32"))), dtype="float64")


def np_log_weight_parts(model, x, k, draws, forward=np_forward):
    """``log p(x|z_i), log p(z_i), log q(z_i|x)``, each ``(batch, k)``: the bottom-up hierarchy replaying the noise.

    ``q(z_1|x) q(z_2|z_1) ...`` sampled upwards (z_1's draw first), every density evaluated at the draws.
    """
    params = np.repeat(forward(model.posterior_heads[0], forward(model.encoder, x)), k, axis=0)
    draws, zs, log_q = list(draws), [], 0.0
    for layer in range(model.stochastic_layers):
        if layer > 0:
            params = forward(model.bottom_up[layer - 1], zs[-1])
        d = params.shape[1] // 2
        mu, lv = params[:, :d], params[:, d:]
        zs.append(mu + np.exp(0.5 * lv) * draws.pop(0))
        log_q = log_q + np_log_normal(zs[-1], mu, lv)
    assert not draws, "the model drew more noise than the hierarchy has layers"
    log_p = np_log_normal(zs[-1], 0.0, 0.0)
    for layer in range(model.stochastic_layers - 1):
        prior = forward(model.top_down_priors[layer], zs[layer + 1])
        d = prior.shape[1] // 2
        log_p = log_p + np_log_normal(zs[layer], prior[:, :d], prior[:, d:])
    log_px = -np_bce(np.repeat(x, k, axis=0), forward(model.decoder, zs[0]))
    return tuple(t.reshape(len(x), k) for t in (log_px, log_p, log_q)), zs[0]


def np_log_mean_exp(v):
    m = v.max(axis=1, keepdims=True)
    return (m + np.log(np.mean(np.exp(v - m), axis=1, keepdims=True)))[:, 0]


@pytest.mark.parametrize("layers,k,architecture", [(1, 5, "dense"), (2, 5, "dense"), (2, 1, "dense"),
                                                   (1, 3, "conv"), (2, 3, "conv")])
def test_loss_terms_match_numpy(layers, k, architecture, mnist_sample, monkeypatch):
    x = mnist_sample[0][:6]
    model = make(layers, k, architecture)
    noise = RecordedNoise()
    monkeypatch.setattr(losses, "reparameterize", noise)
    terms = terms_numpy(model, x, training=True)
    forward = np_forward if architecture == "dense" else keras_forward
    (log_px, log_p, log_q), _ = np_log_weight_parts(model, x, k, noise.draws, forward)
    bound = -np_log_mean_exp(log_px + log_p - log_q).mean()
    rec, kl = -log_px.mean(), (log_q - log_p).mean()
    np.testing.assert_allclose(terms["iwae_bound"], bound, rtol=1e-5)
    np.testing.assert_allclose(terms["total_loss"], bound, rtol=1e-5)
    np.testing.assert_allclose(terms["reconstruction_loss"], rec, rtol=1e-5)
    np.testing.assert_allclose(terms["kl_loss"], kl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["iwae_gap"], bound - rec - kl, atol=2e-4)
    # total_loss is the sum of its terms, with weight 1 each (the house rule), and the gap is <= 0 (Jensen)
    np.testing.assert_allclose(terms["total_loss"], terms["reconstruction_loss"] + terms["kl_loss"] + terms["iwae_gap"],
                               rtol=1e-6)
    assert terms["iwae_gap"] <= 1e-4
    if k == 1:  # L_1 is the (one-sample, Monte Carlo) ELBO: no gap at all
        np.testing.assert_allclose(terms["total_loss"], terms["reconstruction_loss"] + terms["kl_loss"], rtol=1e-6)
        assert abs(terms["iwae_gap"]) < 1e-4


@pytest.mark.parametrize("layers", [1, 2])
def test_log_likelihood_is_the_trained_bound(layers, mnist_sample, monkeypatch):
    """The evaluation's log_likelihood (chunked) is the training bound: log-mean-exp of the same log weights."""
    x = mnist_sample[0][:3]
    model = make(layers)
    noise = RecordedNoise(4)
    monkeypatch.setattr(losses, "reparameterize", noise)
    k = 6
    ll = np.asarray(model.log_likelihood(x, num_samples=k, chunk_size=k))
    (log_px, log_p, log_q), _ = np_log_weight_parts(model, x, k, noise.draws)
    np.testing.assert_allclose(ll, np_log_mean_exp(log_px + log_p - log_q), rtol=1e-5)


def test_gradient_uses_the_normalised_importance_weights(mnist_sample, monkeypatch):
    """d(-L_k)/d(decoder logit bias) = -mean_x sum_i w~_i (x - sigmoid(logits_i)), w~ = softmax_i(log w_i)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("uses tf.GradientTape")
    import tensorflow as tf

    x, k = mnist_sample[0][:5], 4
    model = make(2, k)
    bias = [layer for layer in model.decoder.layers if isinstance(layer, keras.layers.Dense)][-1].bias
    noise = RecordedNoise(7)
    monkeypatch.setattr(losses, "reparameterize", noise)
    with tf.GradientTape() as tape:
        total = model.loss_terms(x, training=True)["total_loss"]
    grad = tape.gradient(total, bias).numpy()
    (log_px, log_p, log_q), z1 = np_log_weight_parts(model, x, k, noise.draws)
    log_w = log_px + log_p - log_q
    w = np.exp(log_w - log_w.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    residual = np.repeat(x.reshape(5, -1), k, 0) - np_sigmoid(np_forward(model.decoder, z1).reshape(5 * k, -1))
    expected = -(w.reshape(-1, 1) * residual).reshape(5, k, -1).sum(1).mean(0)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)
    uniform = -residual.reshape(5, k, -1).mean(1).mean(0)  # the VAE's (k-sample ELBO) gradient differs
    assert np.abs(grad - uniform).max() > 10 * np.abs(grad - expected).max()


def test_extreme_log_variances_give_a_finite_loss_and_gradient(mnist_sample):
    """Log-variances far out (q's e^60, the learned prior's e^-100) are clipped: no inf, no NaN in a training step.

    Unclipped, exp(-log_var) of the prior overflows float32 and the step's gradient is NaN; this broke
    one short MNIST fit in three at Adam(2e-3) before the bound.
    """
    if keras.backend.backend() != "tensorflow":
        pytest.skip("uses tf.GradientTape")
    import tensorflow as tf

    model = make(2, 5)
    for network, value in ((model.posterior_heads[0], 60.0), (model.top_down_priors[0], -100.0)):
        bias = network.layers[-1].bias
        d = bias.shape[0] // 2
        bias.assign(np.concatenate([np.zeros(d), np.full(d, value)]).astype("float32"))
    x = mnist_sample[0][:8]
    with tf.GradientTape() as tape:
        terms = model.loss_terms(x, training=True)
    grads = tape.gradient(terms["total_loss"], model.trainable_weights)
    assert all(np.isfinite(float(v)) for v in terms.values()), terms
    assert all(np.all(np.isfinite(g.numpy())) for g in grads if g is not None)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(model.sample(4, seed=0))))


def test_bound_tightens_with_k_and_l1_is_the_elbo_on_average(mnist_sample):
    """E[L_1] = ELBO <= E[L_2] <= E[L_5] <= E[L_50] (Burda et al., Theorem 1), over 512 draws per k.

    Fixed weights, with q(z_1|x) made wider than the prior (log-variance bias 0.5) so that the
    importance weights vary and the gaps are several standard errors wide.
    """
    keras.utils.set_random_seed(0)
    model = make(2)
    head = model.posterior_heads[0].layers[-1]
    kernel, bias = head.get_weights()
    bias[4:] = 0.5
    head.set_weights([kernel, bias])
    xs = np.tile(mnist_sample[0][:32], (16, 1, 1, 1))  # 16 independent estimates of each of 32 images
    ks = (1, 2, 5, 50)
    bounds = {k: np.asarray(model.log_likelihood(xs, num_samples=k), dtype="float64") for k in ks}
    for small, large in zip(ks, ks[1:]):
        diff = bounds[large] - bounds[small]  # paired by image: the image-to-image spread cancels
        assert diff.mean() > 3 * diff.std() / np.sqrt(diff.size), (small, large, diff.mean(), diff.std())
    elbo = np.concatenate([np.asarray(model.elbo(xs), dtype="float64") for _ in range(2)])  # analytic top KL
    stderr = elbo.std() / np.sqrt(elbo.size) + bounds[1].std() / np.sqrt(bounds[1].size)
    assert abs(bounds[1].mean() - elbo.mean()) < 4 * stderr, (bounds[1].mean(), elbo.mean(), stderr)


@pytest.mark.parametrize("layers,architecture", [(1, "dense"), pytest.param(1, "conv", marks=pytest.mark.slow)])
def test_contract_for_one_stochastic_layer(layers, architecture, mnist_sample, tmp_path):
    """The registry-wide contract runs the default (2 layers, dense and conv); here one layer."""
    x = mnist_sample[0][:16]
    model = make(layers, 3, architecture)
    assert model.latent_dims == (4, 2)[:layers] and len(model.bottom_up) == layers - 1
    config = check_config_roundtrip(model).get_config()
    assert config["stochastic_layers"] == layers and config["num_samples"] == 3 and "inference" not in config
    check_api_shapes(model, x[:4])
    check_keras_roundtrip(model, x[:4], tmp_path / "iwae.keras")
    logs = check_fit_step(model, x)
    assert logs["iwae_gap"] <= 0 and logs["iwae_bound"] == pytest.approx(logs["total_loss"], rel=1e-6)
    np.testing.assert_allclose(logs["total_loss"], logs["reconstruction_loss"] + logs["kl_loss"] + logs["iwae_gap"],
                               rtol=1e-5)


def test_one_layer_encoder_is_the_vae_encoder_plus_a_layer():
    model = IWAE(input_shape=(28, 28, 1), latent_dim=8, hidden_dims=(32,), ladder_hidden_dim=16, stochastic_layers=1)
    assert model.latent_dims == (8,) and model.upper_latent_dims == () and model.top_down_priors == []
    assert model.paper().url == "https://arxiv.org/abs/1509.00519"
    default = IWAE(input_shape=(28, 28, 1), latent_dim=100, hidden_dims=(8,), ladder_hidden_dim=8)  # z_2 = 50
    assert default.stochastic_layers == 2 and default.upper_latent_dims == (50,) and default.num_samples == 5
    small = {"hidden_dims": (8,), "ladder_hidden_dim": 8}
    assert IWAE(latent_dim=32, stochastic_layers=3, **small).upper_latent_dims == (16, 8)
    assert IWAE(latent_dim=8, upper_latent_dims=(6, 4), **small).stochastic_layers == 3


@pytest.mark.parametrize("kwargs,match", [
    ({"num_samples": 0}, "num_samples"),
    ({"num_samples": 2.5}, "num_samples"),
    ({"stochastic_layers": 0}, "stochastic_layers"),
    ({"stochastic_layers": 2, "upper_latent_dims": (2, 1)}, r"stochastic_layers=2.*needs 1 upper"),
    ({"upper_latent_dims": (0,)}, "upper_latent_dims"),
    ({"beta": 4.0}, "beta"),
    ({"ladder_hidden_dim": -3}, "ladder_hidden_dim"),
])
def test_nonsensical_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IWAE(input_shape=(28, 28, 1), latent_dim=4, **kwargs)


def test_the_bound_needs_a_likelihood_not_the_squared_error():
    """``"mse"`` (the literal squared error) is refused, by keyword or position; the Gaussian of ``decoder_std`` is not."""
    match = r"bound on log p\(x\) and needs a decoder likelihood.*'bce', 'gaussian', 'discretized_logistic'.*received 'mse'"
    with pytest.raises(ValueError, match=match):
        IWAE(input_shape=(8, 8, 1), latent_dim=2, reconstruction_loss="mse")
    with pytest.raises(ValueError, match=match):
        IWAE((8, 8, 1), 2, "dense", (4,), (4,), "mse")
    model = IWAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4,), ladder_hidden_dim=4, reconstruction_loss="gaussian")
    assert model.has_likelihood and model.reconstruction_description() == "Gaussian NLL (sigma 0.1), nats"
    old = {k: v for k, v in model.get_config().items() if k != "config_version"}
    with pytest.warns(UserWarning, match="loaded as reconstruction_loss='gaussian'"):  # an IWAE's old "mse" was the Gaussian
        assert IWAE.from_config({**old, "reconstruction_loss": "mse"}).reconstruction_loss == "gaussian"


REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
JAX_SCRIPT = r"""
import json, numpy as np, keras
assert keras.backend.backend() == "jax"
from keraszoo.models import losses
from keraszoo.samples import load_mnist_sample
from tests.models import test_iwae as t
from tests.models.model_checks import RecordedNoise, np_forward, terms_numpy
keras.utils.set_random_seed(0)
x, _ = load_mnist_sample(64)
out = {}
real = losses.reparameterize
for layers, arch in ((1, "dense"), (2, "dense"), (2, "conv")):
    model = t.make(layers, 4, arch)
    losses.reparameterize = noise = RecordedNoise(layers)
    terms = terms_numpy(model, x[:4], training=True)
    losses.reparameterize = real
    (log_px, log_p, log_q), _ = t.np_log_weight_parts(model, x[:4], 4, noise.draws,
                                                      np_forward if arch == "dense" else t.keras_forward)
    out[f"{layers}-{arch}"] = {"bound": terms["iwae_bound"], "expected": float(-t.np_log_mean_exp(log_px + log_p - log_q).mean())}
    if layers == 1:  # the shared JAX test (test_jax_backend.py) trains the default two-layer model
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
        before = model.evaluate(x, verbose=0, return_dict=True)["total_loss"]
        logs = {k: v[-1] for k, v in model.fit(x, epochs=4, batch_size=16, verbose=0).history.items()}
        after = model.evaluate(x, verbose=0, return_dict=True)["total_loss"]
        out["training"] = {"before": before, "after": after, "logs": logs}
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_bound_and_training_on_the_jax_backend():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    training = result.pop("training")
    assert sorted(result) == ["1-dense", "2-conv", "2-dense"]
    for name, r in result.items():
        np.testing.assert_allclose(r["bound"], r["expected"], rtol=1e-5, err_msg=name)
    assert training["after"] < 0.9 * training["before"], training
    logs = training["logs"]
    assert abs(logs["loss"] - logs["total_loss"]) < 1e-3 * abs(logs["total_loss"]), logs
    assert logs["iwae_gap"] <= 0, logs
