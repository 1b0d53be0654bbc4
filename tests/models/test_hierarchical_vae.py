"""HierarchicalVAE: ladder and bottom-up inference, per-layer KL and the IWAE bound against NumPy."""

import numpy as np
import pytest

from keraszoo.models import HierarchicalVAE
from keraszoo.models import losses
from tests.models.model_checks import RecordedNoise
from tests.models.model_checks import check_api_shapes
from tests.models.model_checks import check_config_roundtrip
from tests.models.model_checks import check_fit_step
from tests.models.model_checks import check_keras_roundtrip
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import np_kl_std_normal
from tests.models.model_checks import np_log_normal
from tests.models.model_checks import np_sigmoid
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


def np_hvae_bottom_up(model, x, draws):
    """NumPy pass of q(z_1|x) q(z_2|z_1) ... replaying the recorded noise (bottom layer first)."""
    p = np_forward(model.posterior_heads[0], np_forward(model.encoder, x))
    d = p.shape[1] // 2
    posteriors, zs, draws = [(p[:, :d], p[:, d:])], [], list(draws)
    for i in range(len(model.latent_dims)):
        if i > 0:
            p = np_forward(model.bottom_up[i - 1], zs[-1])
            d = p.shape[1] // 2
            posteriors.append((p[:, :d], p[:, d:]))
        mu, lv = posteriors[-1]
        zs.append(mu + np.exp(0.5 * lv) * draws.pop(0))
    mu, lv = posteriors[-1]
    kls = [np_kl_std_normal(mu, lv)]
    log_q, log_p = np_log_normal(zs[-1], mu, lv), np_log_normal(zs[-1], 0.0, 0.0)
    for i in reversed(range(len(zs) - 1)):
        pp = np_forward(model.top_down_priors[i], zs[i + 1])
        d = pp.shape[1] // 2
        lp_i = np_log_normal(zs[i], pp[:, :d], pp[:, d:])
        mu, lv = posteriors[i]
        entropy = 0.5 * (np.log(2 * np.pi) + 1 + lv).sum(-1)
        kls.insert(0, -entropy - lp_i)
        log_q += np_log_normal(zs[i], mu, lv)
        log_p += lp_i
    return zs[0], kls, log_q, log_p


def test_bottom_up_config_keras_file_and_training(mnist_sample, tmp_path):
    x = mnist_sample[0][:64]
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), ladder_hidden_dim=12,
                            inference="bottom_up", seed=0)
    assert model.get_config()["inference"] == "bottom_up"
    assert {w.path.split("/")[0] for w in model.weights} >= {"posterior_head_1_out", "posterior_2_out", "prior_1_out"}
    check_config_roundtrip(model)
    check_api_shapes(model, x[:4])
    check_keras_roundtrip(model, x[:4], tmp_path / "hvae.keras")
    check_fit_step(model, x)
    with pytest.raises(ValueError, match="inference"):
        HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, inference="top_down")


NUMPY_PASS = {"ladder": np_hvae, "bottom_up": np_hvae_bottom_up}


@pytest.mark.parametrize("inference", sorted(NUMPY_PASS))
@pytest.mark.parametrize("upper", [(2,), (3, 2)])
def test_loss_terms_match_numpy(upper, inference, mnist_sample, monkeypatch):
    x = mnist_sample[0][:8]
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), upper_latent_dims=upper,
                            ladder_hidden_dim=12, beta=2.0, inference=inference, seed=0)
    assert model.latent_dims == (4,) + upper
    noise = RecordedNoise()
    monkeypatch.setattr(losses, "reparameterize", noise)
    # Inference mode: the ladder's batch normalization uses its moving statistics, as the NumPy pass does.
    terms = terms_numpy(model, x, training=False)
    z, kls, _, _ = NUMPY_PASS[inference](model, x, noise.draws)
    rec = np_bce(x, np_forward(model.decoder, z)).mean()
    np.testing.assert_allclose(terms["reconstruction_loss"], rec, rtol=1e-4)
    for i, kl in enumerate(kls):
        np.testing.assert_allclose(terms[f"kl_loss_{i + 1}"], kl.mean(), rtol=1e-4, atol=1e-5)
    total_kl = sum(k.mean() for k in kls)
    np.testing.assert_allclose(terms["kl_loss"], total_kl, rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], rec + 2.0 * total_kl, rtol=1e-4)


@pytest.mark.parametrize("inference", sorted(NUMPY_PASS))
def test_mse_is_the_literal_squared_error_plus_beta_kl(inference, mnist_sample, monkeypatch):
    """``"mse"``: ``sum_pixels (x - sigmoid(l))^2 + beta * sum_l KL_l``, no likelihood (no ELBO), a posterior still."""
    x = mnist_sample[0][:4]
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), upper_latent_dims=(2,),
                            ladder_hidden_dim=12, beta=2.0, inference=inference, reconstruction_loss="mse", seed=0)
    assert not model.has_likelihood and model.has_posterior
    noise = RecordedNoise()
    monkeypatch.setattr(losses, "reparameterize", noise)
    terms = terms_numpy(model, x, training=False)
    z, kls, _, _ = NUMPY_PASS[inference](model, x, noise.draws)
    se = ((x - np_sigmoid(np_forward(model.decoder, z))) ** 2).reshape(4, -1).sum(1).mean()
    np.testing.assert_allclose(terms["reconstruction_loss"], se, rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], se + 2.0 * terms["kl_loss"], rtol=1e-5)
    with pytest.raises(NotImplementedError, match="has no likelihood"):
        model.elbo(x)


def test_bottom_up_code_is_the_posterior_mean_of_z1(mnist_sample):
    x = mnist_sample[0][:8]
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), ladder_hidden_dim=12,
                            inference="bottom_up", seed=0)
    p = np_forward(model.posterior_heads[0], np_forward(model.encoder, x))
    np.testing.assert_allclose(np.asarray(model.encode(x)), p[:, :4], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("inference", sorted(NUMPY_PASS))
def test_iwae_bound_matches_numpy_and_tightens(inference, mnist_sample, monkeypatch):
    x = mnist_sample[0][:3]
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), ladder_hidden_dim=12,
                            inference=inference, seed=0)
    with monkeypatch.context() as m:
        noise = RecordedNoise(5)
        m.setattr(losses, "reparameterize", noise)
        k = 5
        ll = np.asarray(model.log_likelihood(x, num_samples=k, chunk_size=k))
        z, _, log_q, log_p = NUMPY_PASS[inference](model, np.repeat(x, k, 0), noise.draws)
    log_w = (-np_bce(np.repeat(x, k, 0), np_forward(model.decoder, z)) + log_p - log_q).reshape(3, k)
    expected = np.log(np.mean(np.exp(log_w - log_w.max(1, keepdims=True)), 1)) + log_w.max(1)
    np.testing.assert_allclose(ll, expected, rtol=1e-4)
    elbo = np.mean([np.asarray(model.elbo(x)) for _ in range(20)], 0)
    assert np.all(np.asarray(model.log_likelihood(x, num_samples=200)) > elbo)  # IWAE >= ELBO


def test_ancestral_sampling_uses_every_layer():
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, upper_latent_dims=(3, 2), seed=0)
    z = np.asarray(model.sample_prior(5, seed=1))
    assert z.shape == (5, 4)
    np.testing.assert_allclose(z, np.asarray(model.sample_prior(5, seed=1)))
    assert np.asarray(model.sample(5)).shape == (5, 28, 28, 1)


def test_ladder_defaults_to_batch_norm_and_kl_warmup_the_bottom_up_model_to_neither():
    ladder = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), ladder_hidden_dim=12)
    assert ladder.batch_norm and ladder.kl_warmup_epochs == 10
    assert any(type(layer).__name__ == "BatchNormalization" for layer in ladder.bottom_up[0].layers)
    assert ladder.loss_weight_metrics() == {"kl_loss": "kl_weight"}
    plain = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), inference="bottom_up")
    assert not plain.batch_norm and plain.kl_warmup_epochs == 0 and plain.training_callbacks() == []
    assert not any(type(layer).__name__ == "BatchNormalization" for net in plain.top_down_priors for layer in net.layers)
    assert "kl_warmup_scale" not in {w.name for w in plain.weights}  # the published bottom-up weights load unchanged
    check_config_roundtrip(ladder)
    for bad in ({"batch_norm": "yes"}, {"kl_warmup_epochs": -1}, {"kl_warmup_epochs": 2.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, **bad)


def test_kl_warmup_weights_each_epoch_and_the_history_adds_up(mnist_sample, tmp_path):
    """KL weight beta * epoch / T during fit, logged as kl_weight; total_loss adds up with it every epoch."""
    from keraszoo.experiments.consistency import check_history

    x = mnist_sample[0][:64]
    model = HierarchicalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), ladder_hidden_dim=12,
                            beta=2.0, kl_warmup_epochs=2, seed=0)
    model.compile()
    history = model.fit(x, epochs=4, batch_size=16, verbose=0).history
    np.testing.assert_allclose(history["kl_weight"], [0.0, 1.0, 2.0, 2.0], rtol=1e-6)
    assert history["total_loss"][0] == pytest.approx(history["reconstruction_loss"][0], rel=1e-5)  # KL off
    ok, worst, problems = check_history(history, model.loss_weights(), model.loss_weight_metrics())
    assert ok and worst < 1e-5, problems
    ok, _, problems = check_history(history, model.loss_weights())  # beta alone does not explain epoch 1
    assert not ok and "epoch 1" in problems[0]
    assert float(model.kl_warmup_scale) == 1.0  # after fit: the model's own objective
    ev = terms_numpy(model, x[:16], training=False)
    assert ev["kl_weight"] == pytest.approx(2.0)
    # Resuming from epoch 1 starts at that epoch's weight (the callback reads the epoch index).
    resumed = model.fit(x, epochs=2, initial_epoch=1, batch_size=16, verbose=0).history
    np.testing.assert_allclose(resumed["kl_weight"], [1.0], rtol=1e-6)
