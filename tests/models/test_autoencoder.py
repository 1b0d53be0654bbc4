"""AutoEncoder: the reconstruction losses against NumPy on fixed weights."""

import numpy as np
import pytest

from keraszoo.models import AutoEncoder
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import np_sigmoid
from tests.models.model_checks import terms_numpy


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_reconstruction_loss_matches_numpy(loss, mnist_sample):
    x = mnist_sample[0][:16]
    model = AutoEncoder(input_shape=(28, 28, 1), latent_dim=6, hidden_dims=(20,), reconstruction_loss=loss)
    logits = np_forward(model.decoder, np_forward(model.encoder, x))
    if loss == "bce":
        expected = np_bce(x, logits).mean()
    else:
        expected = ((x - np_sigmoid(logits)) ** 2).reshape(16, -1).sum(1).mean()
    terms = terms_numpy(model, x)
    np.testing.assert_allclose(terms["reconstruction_loss"], expected, rtol=1e-4)
    assert terms["total_loss"] == terms["reconstruction_loss"]


def test_reconstruct_is_decode_of_encode(mnist_sample):
    x = mnist_sample[0][:4]
    model = AutoEncoder(input_shape=(28, 28, 1), latent_dim=3, architecture="conv")
    direct = np.asarray(model.decode(model.encode(x)))
    np.testing.assert_allclose(np.asarray(model.reconstruct(x)), direct, atol=1e-6)
