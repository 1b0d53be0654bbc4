"""VAE / beta-VAE: every term, the ELBO and the IWAE bound against NumPy."""

import math

import numpy as np
import pytest

from keraszoo.models import VAE
from keraszoo.models import losses
from tests.models.model_checks import RecordedNoise
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import np_kl_std_normal
from tests.models.model_checks import np_log_normal
from tests.models.model_checks import np_sigmoid
from tests.models.model_checks import terms_numpy


def make(**kwargs):
    return VAE(input_shape=(28, 28, 1), latent_dim=3, hidden_dims=(16,), seed=0, **kwargs)


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_loss_terms_match_numpy(beta, mnist_sample, monkeypatch):
    x = mnist_sample[0][:10]
    model = make(beta=beta)
    noise = RecordedNoise()
    monkeypatch.setattr(losses, "reparameterize", noise)
    terms = terms_numpy(model, x, training=True)
    params = np_forward(model.encoder, x)
    mu, lv = params[:, :3], params[:, 3:]
    z = mu + np.exp(0.5 * lv) * noise.draws[0]
    rec = np_bce(x, np_forward(model.decoder, z)).mean()
    kl = np_kl_std_normal(mu, lv).mean()
    np.testing.assert_allclose(terms["reconstruction_loss"], rec, rtol=1e-4)
    np.testing.assert_allclose(terms["kl_loss"], kl, rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], rec + beta * kl, rtol=1e-4)


def test_gaussian_decoder_nll_in_nats(mnist_sample, monkeypatch):
    x = mnist_sample[0][:6]
    model = make(reconstruction_loss="mse", decoder_std=0.2)
    noise = RecordedNoise(1)
    monkeypatch.setattr(losses, "reparameterize", noise)
    terms = terms_numpy(model, x)
    params = np_forward(model.encoder, x)
    z = params[:, :3] + np.exp(0.5 * params[:, 3:]) * noise.draws[0]
    mean = np_sigmoid(np_forward(model.decoder, z))
    nll = (0.5 * ((x - mean) / 0.2) ** 2 + math.log(0.2) + 0.5 * math.log(2 * math.pi)).reshape(6, -1).sum(1)
    np.testing.assert_allclose(terms["reconstruction_loss"], nll.mean(), rtol=1e-4)


def test_elbo_and_iwae_bound_match_numpy(mnist_sample, monkeypatch):
    x = mnist_sample[0][:4]
    model = make()
    params = np_forward(model.encoder, x)
    mu, lv = params[:, :3], params[:, 3:]

    noise = RecordedNoise(2)
    monkeypatch.setattr(losses, "reparameterize", noise)
    elbo = np.asarray(model.elbo(x))
    z = mu + np.exp(0.5 * lv) * noise.draws[0]
    expected_elbo = -np_bce(x, np_forward(model.decoder, z)) - np_kl_std_normal(mu, lv)
    np.testing.assert_allclose(elbo, expected_elbo, rtol=1e-4)

    k = 7
    noise = RecordedNoise(3)
    monkeypatch.setattr(losses, "reparameterize", noise)
    ll = np.asarray(model.log_likelihood(x, num_samples=k, chunk_size=3))  # 3 chunks: 3 + 3 + 1
    eps = np.concatenate([d.reshape(4, -1, 3) for d in noise.draws], axis=1)  # (batch, k, latent)
    z = mu[:, None] + np.exp(0.5 * lv)[:, None] * eps
    log_px = -np_bce(np.repeat(x, k, 0), np_forward(model.decoder, z.reshape(-1, 3))).reshape(4, k)
    log_w = log_px + np_log_normal(z, 0.0, 0.0) - np_log_normal(z, mu[:, None], lv[:, None])
    expected = np.log(np.mean(np.exp(log_w - log_w.max(1, keepdims=True)), 1)) + log_w.max(1)
    np.testing.assert_allclose(ll, expected, rtol=1e-4)


def test_iwae_bound_tightens_with_more_samples(mnist_sample):
    x = mnist_sample[0][:64]
    model = make()
    model.compile()
    model.fit(x, epochs=3, batch_size=32, verbose=0)
    elbo = float(np.mean(model.log_likelihood(x, num_samples=1)))
    iwae = float(np.mean(model.log_likelihood(x, num_samples=500)))
    assert iwae > elbo, (iwae, elbo)
    assert np.isfinite(iwae) and iwae < 0


def test_encode_is_the_posterior_mean_and_sampling_is_random(mnist_sample):
    x = mnist_sample[0][:5]
    model = make()
    mu = np_forward(model.encoder, x)[:, :3]
    np.testing.assert_allclose(np.asarray(model.encode(x)), mu, rtol=1e-4, atol=1e-5)
    a, b = np.asarray(model.encode(x, sample=True)), np.asarray(model.encode(x, sample=True))
    assert not np.allclose(a, b)
    assert not np.allclose(np.asarray(model.sample(4)), np.asarray(model.sample(4)))
