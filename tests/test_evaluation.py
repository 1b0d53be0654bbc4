"""keraszoo.evaluation: each metric against a case with a known answer."""

import numpy as np
import pytest

from keraszoo import evaluation
from keraszoo.models import list_variants
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import np_sigmoid


def clusters(n_per_class, dim=4, num_classes=3, spread=0.1, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(num_classes, dim)) * 3
    y = np.repeat(np.arange(num_classes), n_per_class)
    return centers[y] + spread * rng.normal(size=(len(y), dim)), y


def test_knn_and_probe_are_perfect_on_separated_clusters_and_chance_on_noise():
    xtr, ytr = clusters(100)
    xte, yte = clusters(30, seed=1)
    xte = xte  # same centers? clusters() draws centers from the seed, so reuse the train centers:
    xte, yte = xtr[::3] + 0.01, ytr[::3]
    assert evaluation.knn_accuracy(xtr, ytr, xte, yte, k=5) == 1.0
    assert evaluation.linear_probe_accuracy(xtr, ytr, xte, yte) == 1.0
    rng = np.random.default_rng(3)
    noise_tr, noise_te = rng.normal(size=(600, 4)), rng.normal(size=(600, 4))
    labels_tr, labels_te = rng.integers(0, 3, 600), rng.integers(0, 3, 600)
    assert abs(evaluation.knn_accuracy(noise_tr, labels_tr, noise_te, labels_te) - 1 / 3) < 0.08
    assert abs(evaluation.linear_probe_accuracy(noise_tr, labels_tr, noise_te, labels_te) - 1 / 3) < 0.08


def test_active_units_and_psnr():
    codes = np.stack([np.linspace(-1, 1, 100), np.full(100, 3.0), 0.05 * np.linspace(-1, 1, 100)], axis=1)
    assert evaluation.active_units(codes) == 1
    clean = np.zeros((2, 4, 4, 1))
    assert evaluation.psnr(clean, clean + 0.1) == pytest.approx(20.0)


def test_reconstruction_metrics_match_numpy(mnist_sample):
    x = mnist_sample[0][:40]
    model = list_variants()["ae"](input_shape=(28, 28, 1), latent_dim=5, hidden_dims=(16,))
    logits = np_forward(model.decoder, np_forward(model.encoder, x))
    rec = np_sigmoid(logits)
    mse_img = ((x - rec) ** 2).reshape(40, -1).mean(1)
    got = evaluation.reconstruction_metrics(model, x, batch_size=16)
    assert got["mse_per_pixel"] == pytest.approx(mse_img.mean(), rel=1e-4)
    assert got["bce_nats_per_image"] == pytest.approx(np_bce(x, logits).mean(), rel=1e-4)
    assert got["psnr_db"] == pytest.approx(np.mean(10 * np.log10(1 / mse_img)), rel=1e-4)


#: what ``evaluate`` reports for every model (with ``train_data``: the k-NN and the probe).
GENERIC_KEYS = {"mse_per_pixel", "bce_nats_per_image", "psnr_db", "knn_accuracy", "linear_probe_accuracy"}


def expected_keys(model, iwae_samples=True):
    """What ``evaluate(model, ..., train_data=..., iwae_samples=...)`` must report, from the model's declarations.

    Its ``reported_metrics`` (each with the metric it prints beside it), the active units of a posterior
    (``has_posterior``), the likelihoods of the VAE family (``has_likelihood``; in bits/dim too for a
    ``discrete_likelihood``); the Fréchet distance of a generative model needs a named dataset, so arrays
    leave it out.
    """
    keys = set(GENERIC_KEYS)
    for metric in model.reported_metrics:
        keys |= {metric.name} | ({metric.reference} if metric.reference else set())
    if model.has_posterior:
        keys |= {"active_units"}
    if model.has_likelihood:
        keys |= {"negative_elbo_nats"} | ({"iwae_nll_nats"} if iwae_samples else set())
        if model.discrete_likelihood:
            keys |= {"negative_elbo_bits_per_dim"} | ({"iwae_bits_per_dim"} if iwae_samples else set())
    return keys


def check_evaluation(model, mnist_sample):
    """``evaluate`` on the bundled digits (400 train, 100 test) reports, finite, every key the model declares."""
    x, y = mnist_sample
    results = evaluation.evaluate(model, (x[400:], y[400:]), train_data=(x[:400], y[:400]), iwae_samples=20)
    expected = expected_keys(model)
    assert expected <= set(results), expected - set(results)
    for key in expected:
        assert np.isfinite(results[key]), (key, results[key])
    assert results["num_examples"] == 100
    if model.has_likelihood and not model.requires_labels:
        assert results["iwae_nll_nats"] <= results["negative_elbo_nats"] + 1.0
    assert "knn_accuracy" in evaluation.format_table(results)
    return results


@pytest.mark.parametrize("name", sorted(list_variants()))
def test_evaluate_reports_the_variant_metrics(name, mnist_sample):
    check_evaluation(list_variants()[name](input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(32,)), mnist_sample)


@pytest.mark.parametrize("name", ["vae", "hvae", "iwae", "cvae"])
def test_bits_per_dim_only_for_the_discretized_likelihood(name, mnist_sample):
    x, y = mnist_sample
    x = np.round(x[:40] * 255) / 255  # the 8-bit levels
    build = list_variants()[name]
    kwargs = {"input_shape": (28, 28, 1), "latent_dim": 4, "hidden_dims": (32,)}
    discrete = build(reconstruction_loss="discretized_logistic", **kwargs)
    results = evaluation.evaluate(discrete, (x, y[:40]), knn=False, probe=False, iwae_samples=5)
    dims = 28 * 28 * np.log(2)
    np.testing.assert_allclose(results["negative_elbo_bits_per_dim"], results["negative_elbo_nats"] / dims)
    np.testing.assert_allclose(results["iwae_bits_per_dim"], results["iwae_nll_nats"] / dims)
    assert 0 < results["iwae_bits_per_dim"] < 16  # a probability of 8-bit pixels, near log2(256) = 8 untrained
    continuous = evaluation.evaluate(build(reconstruction_loss="gaussian", **kwargs), (x, y[:40]), knn=False, probe=False)
    assert not any(key.endswith("bits_per_dim") for key in continuous) and "negative_elbo_nats" in continuous


LIKELIHOOD_KEYS = {"negative_elbo_nats", "iwae_nll_nats", "iwae_samples", "negative_elbo_bits_per_dim", "iwae_bits_per_dim"}


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_the_squared_error_vae_reports_no_likelihood(name, mnist_sample):
    """``reconstruction_loss="mse"`` is no log-density: no ELBO, IWAE bound or bits/dim; the active units stay."""
    x, y = mnist_sample
    model = list_variants()[name](input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(8,), reconstruction_loss="mse")
    assert not model.has_likelihood and model.has_posterior
    results = evaluation.evaluate(model, (x[:20], y[:20]), knn=False, probe=False, iwae_samples=5)
    assert not LIKELIHOOD_KEYS & set(results) and expected_keys(model) - GENERIC_KEYS <= set(results)
    assert 0 <= results["active_units"] <= 4


def test_frechet_distance_known_values():
    from keraszoo.feature_classifier import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # N(0, I) vs N(m, 4I) in 3-D: |m|^2 + 3 * (1 + 4 - 2 * 2) = |m|^2 + 3
    b = 2.0 * rng.normal(size=(20000, 3)) + np.array([1.0, 0.0, 2.0])
    assert frechet_distance(a, b) == pytest.approx(5.0 + 3.0, rel=0.03)
