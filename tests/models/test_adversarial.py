"""AdversarialAutoEncoder: losses against NumPy, priors, and the three training phases."""

import keras
import numpy as np
import pytest

from keraszoo.models import AdversarialAutoEncoder
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import np_sigmoid
from tests.models.model_checks import terms_numpy


def make(**kwargs):
    kwargs.setdefault("hidden_dims", (16,))
    return AdversarialAutoEncoder(input_shape=(28, 28, 1), latent_dim=2, discriminator_hidden_dims=(8,),
                                  seed=0, **kwargs)


def test_loss_terms_match_numpy(mnist_sample, monkeypatch):
    x = mnist_sample[0][:12]
    model = make(adversarial_weight=0.5)
    z_prior = np.random.default_rng(0).normal(size=(12, 2)).astype("float32")
    monkeypatch.setattr(AdversarialAutoEncoder, "sample_prior", lambda self, n, seed=None: z_prior)
    terms = terms_numpy(model, x)
    z = np_forward(model.encoder, x)
    d_fake = np_sigmoid(np_forward(model.discriminator, z))
    d_real = np_sigmoid(np_forward(model.discriminator, z_prior))
    disc = 0.5 * (-np.log(d_real).mean() - np.log(1 - d_fake).mean())
    gen = -np.log(d_fake).mean()
    rec = np_bce(x, np_forward(model.decoder, z)).mean()
    np.testing.assert_allclose(terms["reconstruction_loss"], rec, rtol=1e-4)
    np.testing.assert_allclose(terms["discriminator_loss"], disc, rtol=1e-4)
    np.testing.assert_allclose(terms["generator_loss"], gen, rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], rec + 0.5 * gen, rtol=1e-4)


def test_mixture_prior_has_ten_components_on_a_circle():
    model = make(prior="mixture")
    z = np.asarray(model.sample_prior(20000, seed=0))
    means = model.mixture_means()
    assert means.shape == (10, 2)
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 4.0, rtol=1e-6)
    nearest = np.argmin(((z[:, None] - means[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(nearest, minlength=10)
    assert counts.min() > 1700 and counts.max() < 2300, counts  # ~2000 each
    np.testing.assert_allclose(np.linalg.norm(z - means[nearest], axis=1).mean(), 0.5 * np.sqrt(np.pi / 2),
                               rtol=0.05)  # mean of a Rayleigh(0.5)


def snapshot(model):
    return {name: [w.copy() for w in getattr(model, name).get_weights()]
            for name in ("encoder", "decoder", "discriminator")}


def changed(before, after):
    return {name: any(not np.array_equal(a, b) for a, b in zip(before[name], after[name])) for name in before}


@pytest.mark.parametrize("phase,expected", [
    ("reconstruction", {"encoder": True, "decoder": True, "discriminator": False}),
    ("discriminator", {"encoder": False, "decoder": False, "discriminator": True}),
    ("regularization", {"encoder": True, "decoder": False, "discriminator": False}),
])
def test_each_phase_updates_exactly_its_own_networks(phase, expected, mnist_sample):
    """One optimizer per phase: with the other two at lr=0, only that phase's networks move."""
    x = mnist_sample[0][:32]
    lr = {"reconstruction": 0.0, "discriminator": 0.0, "regularization": 0.0}
    lr[phase] = 0.01
    model = make()
    model.compile(optimizer=keras.optimizers.SGD(lr["reconstruction"]),
                  discriminator_optimizer=keras.optimizers.SGD(lr["discriminator"]),
                  generator_optimizer=keras.optimizers.SGD(lr["regularization"]))
    before = snapshot(model)
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    assert changed(before, snapshot(model)) == expected


def test_adversarial_training_moves_codes_towards_the_prior(mnist_sample):
    x = mnist_sample[0][:256]
    keras.utils.set_random_seed(0)
    model = AdversarialAutoEncoder(input_shape=(28, 28, 1), latent_dim=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), discriminator_optimizer=keras.optimizers.Adam(1e-3),
                  generator_optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, epochs=10, batch_size=32, verbose=0)
    z = np.asarray(model.encode(x))
    # the encoder is pulled towards N(0, I): codes neither collapse nor blow up
    assert 0.2 < z.std(0).mean() < 3.0, z.std(0)
    assert abs(z.mean()) < 1.0
    assert 0.3 < history.history["discriminator_loss"][-1] < 0.8  # neither side wins outright


def test_keras_file_restores_all_three_optimizers(mnist_sample, tmp_path):
    x = mnist_sample[0][:32]
    model = make()
    model.compile(discriminator_optimizer=keras.optimizers.Adam(3e-4))
    model.fit(x, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "aae.keras")
    loaded = keras.saving.load_model(tmp_path / "aae.keras")
    assert float(loaded.discriminator_optimizer.learning_rate) == pytest.approx(3e-4)
    for name in ("optimizer", "discriminator_optimizer", "generator_optimizer"):
        original, restored = getattr(model, name), getattr(loaded, name)
        assert int(restored.iterations) == int(original.iterations) == 2, name
        for a, b in zip(original.variables, restored.variables):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), err_msg=name)
    np.testing.assert_allclose(np.asarray(loaded.encode(x)), np.asarray(model.encode(x)), atol=1e-6)
