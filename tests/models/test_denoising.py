"""DenoisingAutoEncoder: corruption processes and the clean-target loss."""

import numpy as np
from keras import ops

import keraszoo.models.denoising as denoising
from keraszoo.models import DenoisingAutoEncoder
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import terms_numpy


def make(noise, level):
    return DenoisingAutoEncoder(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), noise=noise,
                                noise_level=level, seed=0)


def test_masking_and_salt_and_pepper_rates():
    x = np.full((64, 28, 28, 1), 0.5, dtype="float32")
    masked = np.asarray(make("masking", 0.3).corrupt(ops.convert_to_tensor(x)))
    assert abs((masked == 0).mean() - 0.3) < 0.01 and set(np.unique(masked)) <= {0.0, 0.5}
    sp = np.asarray(make("salt_and_pepper", 0.2).corrupt(ops.convert_to_tensor(x)))
    assert abs((sp == 0).mean() - 0.1) < 0.01 and abs((sp == 1).mean() - 0.1) < 0.01


def test_gaussian_noise_is_clipped_with_the_right_scale():
    x = np.full((64, 28, 28, 1), 0.5, dtype="float32")
    noisy = np.asarray(make("gaussian", 0.1).corrupt(ops.convert_to_tensor(x)))
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert abs(noisy.std() - 0.1) < 0.005


def test_loss_targets_the_clean_input_and_noise_only_in_training(mnist_sample, monkeypatch):
    x = mnist_sample[0][:8]
    model = make("masking", 0.5)
    # evaluation: no corruption, loss on x itself
    expected_clean = np_bce(x, np_forward(model.decoder, np_forward(model.encoder, x))).mean()
    np.testing.assert_allclose(terms_numpy(model, x, training=False)["reconstruction_loss"], expected_clean,
                               rtol=1e-4)
    # training: the encoder sees a known corruption, the target stays clean
    x_tilde = x.copy()
    x_tilde[:, ::2] = 0.0
    monkeypatch.setattr(denoising.DenoisingAutoEncoder, "corrupt",
                        lambda self, inputs, seed=None: ops.convert_to_tensor(x_tilde))
    expected_train = np_bce(x, np_forward(model.decoder, np_forward(model.encoder, x_tilde))).mean()
    np.testing.assert_allclose(terms_numpy(model, x, training=True)["reconstruction_loss"], expected_train,
                               rtol=1e-4)
    assert abs(expected_train - expected_clean) > 1e-3


def test_encode_and_reconstruct_are_deterministic(mnist_sample):
    model = make("gaussian", 0.5)
    x = mnist_sample[0][:4]
    np.testing.assert_array_equal(np.asarray(model.reconstruct(x)), np.asarray(model.reconstruct(x)))
