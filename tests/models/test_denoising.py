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


# ------------------------------------------------------------------ validation on the training objective
def _np_denoising_loss(model, noisy, clean):
    return np_bce(clean, np_forward(model.decoder, np_forward(model.encoder, noisy))).mean()


def test_evaluate_on_noisy_clean_pairs_is_the_denoising_loss(mnist_sample):
    x = mnist_sample[0][:32]
    model = make("masking", 0.5)
    model.compile()
    noisy = np.asarray(model.corrupt(ops.convert_to_tensor(x), seed=3))
    logs = model.evaluate(noisy, x, batch_size=16, return_dict=True, verbose=0)
    np.testing.assert_allclose(logs["reconstruction_loss"], _np_denoising_loss(model, noisy, x), rtol=1e-4)
    clean = model.evaluate(x, batch_size=16, return_dict=True, verbose=0)
    np.testing.assert_allclose(clean["reconstruction_loss"], _np_denoising_loss(model, x, x), rtol=1e-4)
    # labels (not image-shaped) are still ignored
    labelled = model.evaluate(x, mnist_sample[1][:32], batch_size=16, return_dict=True, verbose=0)
    np.testing.assert_allclose(labelled["reconstruction_loss"], clean["reconstruction_loss"], rtol=1e-6)


def test_fit_validates_on_one_fixed_corruption_of_the_validation_images(mnist_sample):
    x, x_val = mnist_sample[0][:64], mnist_sample[0][64:96]
    model = make("masking", 0.5)
    model.compile()
    noisy, clean = model.prepare_validation_data(x_val)
    np.testing.assert_array_equal(clean, x_val)
    np.testing.assert_array_equal(noisy, model.prepare_validation_data(x_val)[0])  # the same noise every epoch
    assert 0.4 < ((noisy == 0) & (x_val > 0)).sum() / (x_val > 0).sum() < 0.6
    history = model.fit(x, validation_data=x_val, epochs=2, batch_size=32, verbose=0).history
    # the last epoch's val_loss is the denoising loss of those fixed pairs under the final weights
    np.testing.assert_allclose(history["val_loss"][-1], _np_denoising_loss(model, noisy, x_val), rtol=1e-4)
    assert abs(history["val_loss"][-1] - _np_denoising_loss(model, x_val, x_val)) > 1e-3


def test_a_validation_dataset_gets_the_same_noise_every_pass_and_keeps_its_clean_target():
    import tensorflow as tf

    x_val, y_val = np.full((48, 28, 28, 1), 0.5, dtype="float32"), np.arange(48) % 10
    model = make("salt_and_pepper", 0.2)
    for ds in (tf.data.Dataset.from_tensor_slices(x_val).batch(16),
               tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(16)):
        pairs = model.prepare_validation_data(ds)
        first = [(np.asarray(a), np.asarray(b)) for a, b in pairs]
        np.testing.assert_array_equal(np.concatenate([b for _, b in first]), x_val)
        noisy = np.concatenate([a for a, _ in first])
        np.testing.assert_array_equal(noisy, np.concatenate([np.asarray(a) for a, _ in pairs]))
        assert not np.array_equal(first[0][0], first[1][0])  # each batch its own draw
        assert abs((noisy == 0).mean() - 0.1) < 0.01 and abs((noisy == 1).mean() - 0.1) < 0.01
        assert set(np.unique(noisy)) == {0.0, 0.5, 1.0}


def test_other_variants_validate_on_the_data_as_given(mnist_sample):
    from keraszoo.models import AutoEncoder

    x_val = mnist_sample[0][:8]
    assert AutoEncoder(input_shape=(28, 28, 1), latent_dim=4).prepare_validation_data(x_val) is x_val
