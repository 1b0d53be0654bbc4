"""``model.anomaly_score`` on every registered variant and every method it declares (a registry-wide contract).

Every declared method of every variant (a tiny network) is held to the contract: shape ``(n,)``, float64,
finite, the same scores for the same call, batches of at most ``batch_size`` images. Briefly trained (4 epochs
on 256 real digits), a model scores clearly anomalous inputs (uniform noise, flat grey images) above its
training digits: the AE and the VAE in the default run, every variant in the slow one.
"""

import keras
import numpy as np
import pytest

from keraszoo.models import list_variants
from keraszoo.models.anomaly_scores import ANOMALY_METHODS
from keraszoo.models.anomaly_scores import LatentReference

VARIANTS = sorted(list_variants())


def _tiny(name, **kwargs):
    cls = list_variants()[name]
    small = {"hidden_dims": (32,), "conv_filters": (8, 16), "latent_dim": 4, "seed": 1,
             "architecture": cls.architectures[0]}
    if cls.has_second_stage:  # the VQ-VAE's PixelCNN prior: a small one
        small.update(prior_channels=8, prior_layers=2, prior_kernel_size=3, num_embeddings=16)
    small.update(kwargs)
    return cls(input_shape=(28, 28, 1), **small)


def _anomalous(rng, n=64):
    """Clearly anomalous inputs for a model of digits: uniform noise and flat mid-grey images."""
    noise = rng.random((n // 2, 28, 28, 1), dtype=np.float32)
    grey = np.full((n - n // 2, 28, 28, 1), 0.5, np.float32)
    return np.concatenate([noise, grey])


def _every_method_declared(model, x, labels):
    """``model`` with every method it can declare: the latent reference fit, a learned prior marked trained."""
    if "latent" in model.anomaly_methods:
        model.fit_anomaly_reference(x, **model.label_kwargs(labels))
    if model.has_second_stage and "prior" not in model.anomaly_methods:
        model.prior_epochs_trained.assign(1)  # an untrained prior scores too (finite); trained: see the slow test
    return model


def _spy_batches(model, monkeypatch):
    """The sizes of the batches the scorers receive, recorded as ``anomaly_score`` runs."""
    sizes = []
    scorers = model._anomaly_scorers()

    def spy(fn):
        def scorer(xb, given, **kwargs):
            sizes.append(len(xb))
            return fn(xb, given, **kwargs)
        return scorer

    monkeypatch.setattr(model, "_anomaly_scorers", lambda: {k: spy(v) for k, v in scorers.items()})
    return sizes


@pytest.mark.parametrize("name", VARIANTS)
def test_declared_methods_and_default(name):
    model = _tiny(name)
    methods = model.anomaly_methods
    assert methods and methods[0] == "reconstruction"
    assert set(methods) <= set(ANOMALY_METHODS)
    assert model.default_anomaly_method in methods
    assert ("elbo" in methods) == ("iwae" in methods) == bool(model.has_likelihood)
    assert ("latent" in methods) == bool(model.has_flat_codes)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_declared_method_keeps_the_contract(name, mnist_sample, monkeypatch):
    """Shape (n,), float64, finite; batches of at most batch_size images; the same call, the same scores."""
    x, y = np.asarray(mnist_sample[0][:40]), np.asarray(mnist_sample[1][:40]).astype("int64")
    model = _every_method_declared(_tiny(name), x, y)
    given = model.label_kwargs(y)
    sizes = _spy_batches(model, monkeypatch)
    assert set(model.anomaly_methods) >= {"reconstruction"} | ({"prior"} if model.has_second_stage else set())
    for method in model.anomaly_methods:
        sizes.clear()
        scores = model.anomaly_score(x, method, batch_size=16, num_samples=2, **given)
        assert sizes == [16, 16, 8], (method, sizes)  # bounded memory: batch by batch
        assert scores.shape == (40,) and scores.dtype == np.float64 and np.all(np.isfinite(scores)), method
        again = model.anomaly_score(x, method, batch_size=16, num_samples=2, **given)
        np.testing.assert_array_equal(again, scores, err_msg=f"{name} {method}: the same call, other scores")
    assert model.anomaly_score(x[:0], **model.label_kwargs(y[:0])).shape == (0,)


def _trained(name, x, y, epochs=4):
    model = _tiny(name)
    labels = y if model.requires_labels else None
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(x, labels, epochs=epochs, batch_size=64, verbose=0, shuffle=True)
    if model.has_second_stage:  # the learned prior over the codes (VQ-VAE): its own training
        model.fit_prior(x, epochs=2 * epochs, batch_size=64, verbose=0)
    if "latent" in model.anomaly_methods:
        model.fit_anomaly_reference(x, **model.label_kwargs(labels))
    return model


#: Scores that rank noise and flat grey images above digits after a few epochs of a tiny model; the code-based ones
#: (latent, prior) need a model trained to convergence (the one-class study measures them) and are held to the contract.
LIKELIHOOD_LIKE = ("reconstruction", "elbo", "iwae")


def _check_ranking(name, model, x, y):
    odd = _anomalous(np.random.default_rng(0))
    for method in model.anomaly_methods:
        normal = model.anomaly_score(x[:64], method, num_samples=4, **model.label_kwargs(y[:64]))
        anomalous = model.anomaly_score(odd, method, num_samples=4, **model.label_kwargs(y[:len(odd)]))
        assert np.all(np.isfinite(anomalous)), (name, method)
        if method in LIKELIHOOD_LIKE:  # most anomalous images above nine in ten training digits
            assert np.median(anomalous) > np.quantile(normal, 0.9), (name, method, np.median(normal),
                                                                      np.median(anomalous))


@pytest.mark.parametrize("name", ["vae"])
def test_a_briefly_trained_model_scores_anomalies_higher(name, mnist_sample):
    x, y = np.asarray(mnist_sample[0][:256]), np.asarray(mnist_sample[1][:256]).astype("int64")
    _check_ranking(name, _trained(name, x, y), x, y)


@pytest.mark.slow
@pytest.mark.parametrize("name", VARIANTS)
def test_every_briefly_trained_variant_scores_anomalies_higher(name, mnist_sample):
    x, y = np.asarray(mnist_sample[0][:256]), np.asarray(mnist_sample[1][:256]).astype("int64")
    _check_ranking(name, _trained(name, x, y), x, y)


def test_default_method_is_documented_per_family():
    assert _tiny("ae").default_anomaly_method == "reconstruction"
    assert _tiny("vae").default_anomaly_method == "elbo"
    assert _tiny("vae", reconstruction_loss="mse").default_anomaly_method == "reconstruction"
    assert _tiny("vae", reconstruction_loss="mse").anomaly_methods == ("reconstruction", "latent")
    assert _tiny("iwae").default_anomaly_method == "iwae"
    vq = _tiny("vqvae")
    assert vq.anomaly_methods == ("reconstruction",)  # prior: once it is trained


def test_unavailable_and_unknown_methods_are_refused_with_the_reason(mnist_sample):
    x = np.asarray(mnist_sample[0][:4])
    with pytest.raises(ValueError, match=r"no 'elbo' anomaly score: .*has no likelihood bound"):
        _tiny("ae").anomaly_score(x, "elbo")
    with pytest.raises(ValueError, match=r"prior over its codes is not trained yet: .*fit_prior"):
        _tiny("vqvae").anomaly_score(x, "prior")
    with pytest.raises(ValueError, match=r"Unknown anomaly score method 'elb'. Did you mean 'elbo'"):
        _tiny("vae").anomaly_score(x, "elb")
    with pytest.raises(ValueError, match=r"fit them first with model.fit_anomaly_reference"):
        _tiny("ae").anomaly_score(x, "latent")
    with pytest.raises(ValueError, match=r"needs the class labels"):
        _tiny("cvae").anomaly_score(x)
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\]"):
        _tiny("ae").anomaly_score(x * 255)
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 28, 28, 1\)"):
        _tiny("ae").anomaly_score(x[..., 0])


def test_stochastic_scores_leave_the_models_draws_as_they_were(mnist_sample):
    x = np.asarray(mnist_sample[0][:8])
    model = _tiny("vae")
    state = [np.asarray(v.numpy()) for v in model.variables if v.path.endswith("seed_generator_state")]
    a = model.anomaly_score(x, "elbo", num_samples=2, seed=3)
    after = [np.asarray(v.numpy()) for v in model.variables if v.path.endswith("seed_generator_state")]
    for old, new in zip(state, after):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(a, model.anomaly_score(x, "elbo", num_samples=2, seed=4))


def test_latent_reference_is_the_mahalanobis_distance():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(500, 3)) * [1.0, 2.0, 0.5] + [1.0, -1.0, 0.0]
    ref = LatentReference.fit(codes, ridge=0.0)
    cov = np.cov(codes, rowvar=False)
    point = np.array([[2.0, 0.0, 1.0]])
    expected = np.sqrt((point - codes.mean(0)) @ np.linalg.inv(cov) @ (point - codes.mean(0)).T)[0, 0]
    np.testing.assert_allclose(ref.distance(point), [expected], rtol=1e-9)
    again = LatentReference.from_arrays(ref.to_arrays())
    np.testing.assert_allclose(again.distance(point), ref.distance(point))
    with pytest.raises(ValueError, match="at least 2 images"):
        LatentReference.fit(codes[:1])
