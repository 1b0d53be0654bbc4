"""VAE / beta-VAE: every term, the ELBO and the IWAE bound against NumPy."""

import math
import warnings

import numpy as np
import pytest

from keraszoo.models import VAE
from keraszoo.models import losses
from tests.models.model_checks import RecordedNoise
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_discretized_logistic_nll
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


def terms_and_decoder_mean(model, x, monkeypatch):
    """The model's loss terms on ``x`` and, from the same recorded posterior draw, NumPy's decoder mean."""
    noise = RecordedNoise(1)
    monkeypatch.setattr(losses, "reparameterize", noise)
    terms = terms_numpy(model, x)
    params = np_forward(model.encoder, x)
    d = model.latent_dim
    z = params[:, :d] + np.exp(0.5 * params[:, d:]) * noise.draws[0]
    return terms, np_sigmoid(np_forward(model.decoder, z))


def test_gaussian_decoder_nll_in_nats(mnist_sample, monkeypatch):
    x = mnist_sample[0][:6]
    model = make(reconstruction_loss="gaussian", decoder_std=0.2)
    terms, mean = terms_and_decoder_mean(model, x, monkeypatch)
    nll = (0.5 * ((x - mean) / 0.2) ** 2 + math.log(0.2) + 0.5 * math.log(2 * math.pi)).reshape(6, -1).sum(1)
    np.testing.assert_allclose(terms["reconstruction_loss"], nll.mean(), rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], nll.mean() + terms["kl_loss"], rtol=1e-5)
    assert model.has_likelihood and model.reconstruction_description() == "Gaussian NLL (sigma 0.2), nats"


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_mse_is_the_literal_squared_error_plus_beta_kl(beta, mnist_sample, monkeypatch):
    """``"mse"``: ``sum_pixels (x - sigmoid(l))^2``, the AutoEncoder's, whatever ``decoder_std``; total = SE + beta KL."""
    x = mnist_sample[0][:6]
    model = make(reconstruction_loss="mse", decoder_std=0.2, beta=beta)
    terms, mean = terms_and_decoder_mean(model, x, monkeypatch)
    params = np_forward(model.encoder, x)
    se = ((x - mean) ** 2).reshape(6, -1).sum(1)
    np.testing.assert_allclose(terms["reconstruction_loss"], se.mean(), rtol=1e-4)
    np.testing.assert_allclose(terms["kl_loss"], np_kl_std_normal(params[:, :3], params[:, 3:]).mean(), rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], se.mean() + beta * terms["kl_loss"], rtol=1e-5)
    assert model.loss_weights() == {"kl_loss": beta}
    assert model.reconstruction_description() == "squared error Σ(x − x̂)²"


def test_only_a_likelihood_has_an_elbo():
    """``has_likelihood`` follows the reconstruction term; ``"mse"`` keeps the posterior (active units) but no ELBO."""
    for loss, likelihood in (("bce", True), ("gaussian", True), ("mse", False)):
        model = make(reconstruction_loss=loss)
        assert model.has_likelihood is likelihood and model.has_posterior, loss
    x = np.full((2, 28, 28, 1), 0.5, "float32")
    model = make(reconstruction_loss="mse")
    for call in (lambda: model.elbo(x), lambda: model.log_likelihood(x, num_samples=2)):
        with pytest.raises(NotImplementedError, match="has no likelihood.*'gaussian'"):
            call()


def test_an_old_config_of_mse_loads_as_the_gaussian_with_a_warning(tmp_path):
    """Configs without ``config_version`` (version 1) meant the Gaussian by the VAE's "mse"; today's round-trip as saved."""
    import keras

    from keraszoo.models.base import CONFIG_VERSION

    new = make(reconstruction_loss="mse", decoder_std=0.2)
    config = new.get_config()
    assert config["config_version"] == CONFIG_VERSION
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # today's config: no warning
        assert VAE.from_config(config).reconstruction_loss == "mse"
        path = str(tmp_path / "mse.keras")
        new.save(path)
        assert keras.saving.load_model(path, safe_mode=True).reconstruction_loss == "mse"
    old = {k: v for k, v in config.items() if k != "config_version"}
    with pytest.warns(UserWarning, match=r"saved before keraszoo's config version 2.*loaded as reconstruction_loss='gaussian'"):
        migrated = VAE.from_config(old)
    assert migrated.reconstruction_loss == "gaussian" and migrated.decoder_std == 0.2 and migrated.has_likelihood
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # an old config of another loss is today's
        assert VAE.from_config({**old, "reconstruction_loss": "bce"}).reconstruction_loss == "bce"
    with pytest.raises(ValueError, match="`config_version` must be an integer in"):
        VAE.from_config({**config, "config_version": CONFIG_VERSION + 1})


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


def rgb_levels(n, seed=0):
    return (np.random.default_rng(seed).integers(0, 256, size=(n, 8, 8, 3)) / 255.0).astype("float32")


def test_discretized_logistic_decoder_learns_one_scale_per_channel(monkeypatch):
    x = rgb_levels(6)
    model = VAE(input_shape=(8, 8, 3), latent_dim=3, hidden_dims=(16,), seed=0,
                reconstruction_loss="discretized_logistic", decoder_std=0.2)
    assert model.discrete_likelihood and not make().discrete_likelihood
    np.testing.assert_allclose(np.asarray(model.decoder_log_scale), np.log([0.2] * 3), rtol=1e-6)
    assert any(w is model.decoder_log_scale for w in model.trainable_weights)
    terms, mean = terms_and_decoder_mean(model, x, monkeypatch)
    expected = np_discretized_logistic_nll(x, mean, np.log(0.2)).mean()
    np.testing.assert_allclose(terms["reconstruction_loss"], expected, rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], terms["reconstruction_loss"] + terms["kl_loss"], rtol=1e-5)


def test_discretized_logistic_scale_is_trained_and_saved(tmp_path):
    import keras

    x = rgb_levels(64, seed=1)
    model = VAE(input_shape=(8, 8, 3), latent_dim=3, hidden_dims=(16,), seed=0,
                reconstruction_loss="discretized_logistic")
    model.compile()
    history = model.fit(x, epochs=4, batch_size=16, verbose=0).history
    assert history["total_loss"][-1] < history["total_loss"][0]
    log_scale = np.asarray(model.decoder_log_scale)
    assert not np.allclose(log_scale, np.log(0.1)), "the scale must be trained"
    path = str(tmp_path / "vae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded.decoder_log_scale), log_scale)
    np.testing.assert_allclose(np.asarray(loaded.reconstruct(x[:4])), np.asarray(model.reconstruct(x[:4])), atol=1e-6)


def test_only_the_vae_family_takes_the_discretized_logistic():
    from keraszoo.models import AutoEncoder

    with pytest.raises(ValueError, match="expected one of 'bce', 'mse'"):
        AutoEncoder(input_shape=(8, 8, 3), latent_dim=3, reconstruction_loss="discretized_logistic")
