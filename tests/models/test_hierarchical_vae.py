"""HierarchicalVAE: ladder inference, per-layer KL and the IWAE bound against NumPy."""

import numpy as np
import pytest

from keraszoo.models import HierarchicalVAE
from keraszoo.models import losses
from tests.models.model_checks import RecordedNoise
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import np_kl_std_normal
from tests.models.model_checks import np_log_normal
from tests.models.model_checks import terms_numpy


def np_kl_gauss(mq, lq, mp, lp):
    return 0.5 * (lp - lq + (np.exp(lq) + (mq - mp) ** 2) / np.exp(lp) - 1).sum(-1)


def np_hvae(model, x, draws):
    """NumPy LVAE pass replaying the recorded noise (top layer first)."""
    h = np_forward(model.encoder, x)
    params = []
    for i, head in enumerate(model.posterior_heads):
        if i > 0:
            h = np_forward(model.bottom_up[i - 1], h)
        p = np_forward(head, h)
        d = p.shape[1] // 2
        params.append((p[:, :d], p[:, d:]))
    draws = list(draws)
    mu, lv = params[-1]
    z = mu + np.exp(0.5 * lv) * draws.pop(0)
    kls = [np_kl_std_normal(mu, lv)]
    log_q, log_p = np_log_normal(z, mu, lv), np_log_normal(z, 0.0, 0.0)
    for i in reversed(range(len(params) - 1)):
        pp = np_forward(model.top_down_priors[i], z)
        d = pp.shape[1] // 2
        mp, lp = pp[:, :d], pp[:, d:]
        mh, lh = params[i]
        var_q = 1 / (np.exp(-lh) + np.exp(-lp))
        mq = (mh * np.exp(-lh) + mp * np.exp(-lp)) * var_q
        lq = np.log(var_q)
        z = mq + np.sqrt(var_q) * draws.pop(0)
        kls.insert(0, np_kl_gauss(mq, lq, mp, lp))
        log_q += np_log_normal(z, mq, lq)
        log_p += np_log_normal(z, mp, lp)
    return z, kls, log_q, log_p


@pytest.mark.parametrize("upper", [(2,), (3, 2)])
def test_loss_terms_match_numpy(upper, mnist_sample, monkeypatch):
    x = mnist_sample[0][:8]
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), upper_latent_dims=upper,
                            ladder_hidden_dim=12, beta=2.0, seed=0)
    assert model.latent_dims == (4,) + upper
    noise = RecordedNoise()
    monkeypatch.setattr(losses, "reparameterize", noise)
    terms = terms_numpy(model, x, training=True)
    z, kls, _, _ = np_hvae(model, x, noise.draws)
    rec = np_bce(x, np_forward(model.decoder, z)).mean()
    np.testing.assert_allclose(terms["reconstruction_loss"], rec, rtol=1e-4)
    for i, kl in enumerate(kls):
        np.testing.assert_allclose(terms[f"kl_loss_{i + 1}"], kl.mean(), rtol=1e-4, atol=1e-6)
    total_kl = sum(k.mean() for k in kls)
    np.testing.assert_allclose(terms["kl_loss"], total_kl, rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], rec + 2.0 * total_kl, rtol=1e-4)


def test_iwae_bound_matches_numpy(mnist_sample, monkeypatch):
    x = mnist_sample[0][:3]
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), ladder_hidden_dim=12, seed=0)
    noise = RecordedNoise(5)
    monkeypatch.setattr(losses, "reparameterize", noise)
    k = 5
    ll = np.asarray(model.log_likelihood(x, num_samples=k, chunk_size=k))
    z, _, log_q, log_p = np_hvae(model, np.repeat(x, k, 0), noise.draws)
    log_w = (-np_bce(np.repeat(x, k, 0), np_forward(model.decoder, z)) + log_p - log_q).reshape(3, k)
    expected = np.log(np.mean(np.exp(log_w - log_w.max(1, keepdims=True)), 1)) + log_w.max(1)
    np.testing.assert_allclose(ll, expected, rtol=1e-4)


def test_ancestral_sampling_uses_every_layer():
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, upper_latent_dims=(3, 2), seed=0)
    z = np.asarray(model.sample_prior(5, seed=1))
    assert z.shape == (5, 4)
    np.testing.assert_allclose(z, np.asarray(model.sample_prior(5, seed=1)))
    assert np.asarray(model.sample(5)).shape == (5, 28, 28, 1)
