"""SparseAutoEncoder: KL and L1 sparsity terms against NumPy."""

import numpy as np

from keraszoo.models import SparseAutoEncoder
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import terms_numpy


def test_kl_sparsity_matches_numpy(mnist_sample):
    x = mnist_sample[0][:32]
    model = SparseAutoEncoder(input_shape=(28, 28, 1), latent_dim=10, hidden_dims=(24,), sparsity="kl",
                              sparsity_weight=3.0, sparsity_target=0.1)
    h = np_forward(model.encoder, x)
    assert h.min() > 0 and h.max() < 1, "KL sparsity needs sigmoid codes"
    rho, rho_hat = 0.1, h.mean(0)
    kl = (rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))).sum()
    rec = np_bce(x, np_forward(model.decoder, h)).mean()
    terms = terms_numpy(model, x)
    np.testing.assert_allclose(terms["sparsity_loss"], kl, rtol=1e-4)
    np.testing.assert_allclose(terms["reconstruction_loss"], rec, rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], rec + 3.0 * kl, rtol=1e-4)
    np.testing.assert_allclose(terms["mean_activation"], h.mean(), rtol=1e-4)


def test_l1_sparsity_matches_numpy(mnist_sample):
    x = mnist_sample[0][:32]
    model = SparseAutoEncoder(input_shape=(28, 28, 1), latent_dim=10, hidden_dims=(24,), sparsity="l1",
                              sparsity_weight=0.5)
    h = np_forward(model.encoder, x)
    assert h.min() >= 0, "L1 sparsity uses ReLU codes"
    terms = terms_numpy(model, x)
    np.testing.assert_allclose(terms["sparsity_loss"], np.abs(h).sum(1).mean(), rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], terms["reconstruction_loss"] + 0.5 * terms["sparsity_loss"],
                               rtol=1e-5)


def test_training_drives_mean_activation_towards_the_target(mnist_sample):
    x = mnist_sample[0][:256]
    model = SparseAutoEncoder(input_shape=(28, 28, 1), latent_dim=32, sparsity="kl", sparsity_weight=5.0,
                              sparsity_target=0.05, seed=0)
    model.compile()
    before = terms_numpy(model, x)["mean_activation"]
    model.fit(x, epochs=6, batch_size=64, verbose=0)
    after = terms_numpy(model, x)["mean_activation"]
    assert abs(after - 0.05) < 0.6 * abs(before - 0.05), (before, after)


def test_the_penalty_argument_chooses_what_sparsity_loss_measures():
    """KL and L1 penalties are different quantities (nats of a divergence, a sum of activations): the variant says
    which its sparsity_loss is, from its arguments, the constructor's default where one is left out."""
    kl, = SparseAutoEncoder.term_definition("sparsity_loss", {"sparsity": "kl", "sparsity_weight": 3.0})
    l1, = SparseAutoEncoder.term_definition("sparsity_loss", {"sparsity": "l1"})
    default, = SparseAutoEncoder.term_definition("sparsity_loss", {})
    assert kl.meaning.startswith("KL penalty") and l1.meaning.startswith("L1 penalty") and default == kl
    assert SparseAutoEncoder.term_definition("total_loss", {"sparsity": "l1"}) == (l1,)
    assert SparseAutoEncoder.term_definition("mean_activation", {"sparsity": "l1"}) == ()


def test_a_subclass_keeps_the_penalty_default_of_the_class_that_declares_it():
    class Sub(SparseAutoEncoder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    default, = Sub.term_definition("sparsity_loss", {})
    assert default.value == "kl"
