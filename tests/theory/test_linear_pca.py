"""Section 4 of docs/theory.md: the linear autoencoder with squared error and PCA (Baldi & Hornik, 1989)."""

import numpy as np
import pytest
import tensorflow as tf

from keraszoo.models import AutoEncoder
from keraszoo.models import losses
from tests.theory import linear_pca
from tests.theory.helpers import assert_rel_close
from tests.theory.helpers import float64
from tests.theory.helpers import np_value


def sample_digits(mnist_sample):
    x, _ = mnist_sample
    return np.asarray(x, "float64").reshape(len(x), -1)


def test_pca_residual_is_the_sum_of_discarded_eigenvalues(mnist_sample):
    """Eq. (4.3) in docs/theory.md: scikit-learn's PCA residual per image = the sum of the discarded eigenvalues (bundled digits)."""
    pytest.importorskip("sklearn")
    x = sample_digits(mnist_sample)
    xc = x - x.mean(axis=0)
    for k in (1, 8, 16, 32, 100):
        assert_rel_close(linear_pca.pca_residual(x, k), linear_pca.discarded_eigenvalues(xc, k), what=f"k={k}")


def linear_model(k, u, mean, mix):
    """keraszoo's AE of code size k with hidden_dims=(): its encoder and decoder are affine; set to the PCA solution."""
    model = AutoEncoder(input_shape=(28, 28, 1), latent_dim=k, hidden_dims=(), reconstruction_loss="mse")
    enc, dec = model.encoder.get_layer("encoder_out"), model.decoder.get_layer("decoder_logits")
    enc.kernel.assign(u @ mix)  # code z = (x - m) U C
    enc.bias.assign(-mean @ u @ mix)
    dec.kernel.assign(np.linalg.inv(mix) @ u.T)  # x_hat = z C^-1 U^T + m
    dec.bias.assign(mean)
    return model


def test_linear_autoencoder_optimum_spans_the_principal_subspace(mnist_sample):
    """Eqs. (4.2)-(4.4) in docs/theory.md: at (U_k C, C^-1 U_k^T) keraszoo's linear AE has the residual, zero gradient, any C."""
    x = sample_digits(mnist_sample)
    mean = x.mean(axis=0)
    xc = x - mean
    eig, vec = np.linalg.eigh(xc.T @ xc / len(xc))
    eig, vec = eig[::-1], vec[:, ::-1]
    k = 8
    rng = np.random.default_rng(40)
    images = tf.constant(x.reshape(-1, 28, 28, 1))
    with float64():
        for mix in (np.eye(k), rng.standard_normal((k, k)) + 3 * np.eye(k)):
            model = linear_model(k, vec[:, :k], mean, mix)
            variables = model.encoder.trainable_variables + model.decoder.trainable_variables
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(losses.squared_error(images, model.decoder(model.encoder(images))))
            grads = tape.gradient(loss, variables)
            assert_rel_close(float(loss), eig[k:].sum(), what="residual")
            # Eq. (4.4): stationary -- the gradient is zero up to float64 rounding of the 784-pixel sums
            assert max(float(np.max(np.abs(np_value(g)))) for g in grads) < 1e-9 * float(loss)
        # a subspace that is not the principal one is worse, by exactly the eigenvalues swapped in and out (Eq. 4.3)
        swapped = np.concatenate([vec[:, : k - 1], vec[:, k : k + 1]], axis=1)
        model = linear_model(k, swapped, mean, np.eye(k))
        worse = float(tf.reduce_mean(losses.squared_error(images, model.decoder(model.encoder(images)))))
    assert_rel_close(worse, eig[k:].sum() + eig[k - 1] - eig[k], what="swapped subspace")


@pytest.mark.slow
def test_trained_linear_autoencoder_reaches_pca_on_mnist():
    """Eq. (4.3) in docs/theory.md on real MNIST: the trained linear AE within 1 % of PCA's residual at k = 8, 16, 32.

    The same measurement prints its table with ``python -m tests.theory.linear_pca``.
    """
    pytest.importorskip("sklearn")
    if not (linear_pca.REPO_ROOT.parent / "shared" / "data" / "mnist.npz").exists():
        pytest.skip("MNIST not found at ../shared/data/mnist.npz")
    rows = linear_pca.measure()
    for row in rows:
        print(row)
        assert_rel_close(row["pca_residual"], row["discarded_eigenvalues"], what=f"k={row['k']}")
        assert -1e-5 <= row["gap"] < 0.01, row  # PCA is optimal: the AE cannot beat it beyond float32 rounding
    assert rows[0]["pca_residual"] > rows[1]["pca_residual"] > rows[2]["pca_residual"]
