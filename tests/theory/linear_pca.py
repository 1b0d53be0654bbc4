"""Section 4 of docs/theory.md measured: a linear autoencoder on MNIST against PCA at the same code size.

Run as ``python -m tests.theory.linear_pca [--sizes 8 16 32] [--epochs 40]`` from the repository root
(MNIST from ``$KERASZOO_DATA_DIR`` or ``../shared/data/mnist.npz``). It prints, for each code size k,
the sum of the discarded eigenvalues of the data covariance, PCA's residual (scikit-learn) and the
linear autoencoder's residual, all as mean squared error per image (summed over the 784 pixels),
on the 60,000 training digits.

What is trained: keraszoo's own networks of ``AutoEncoder(latent_dim=k, hidden_dims=())`` -- the
encoder ``Flatten -> Dense(k)`` with a linear code (``code_activation`` is ``None``) and the decoder
``Dense(784) -> Reshape`` whose output is the logits -- composed as ``x_hat = decoder(encoder(x - m))``
with **no sigmoid**, on the loss ``keraszoo.models.losses.squared_error(x - m, x_hat)`` (sum over
pixels, mean over the batch); ``m`` is the training mean, as PCA centres. The model's own
``reconstruction_loss="mse"`` would put a sigmoid after the decoder (not a linear autoencoder).
"""

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_SIZES = (8, 16, 32)
DEFAULT_EPOCHS = 10


def load_mnist_train():
    """The 60,000 MNIST training digits, flattened, float64 in [0, 1]."""
    from keraszoo.data import load_arrays

    data_dir = os.environ.get("KERASZOO_DATA_DIR") or str(REPO_ROOT.parent / "shared" / "data")
    x, _ = load_arrays("mnist", "train", source="npz", data_dir=data_dir)
    x = np.asarray(x, "float64")
    if x.max() > 1.5:  # uint8 pixels
        x = x / 255.0
    return x.reshape(len(x), -1)


def discarded_eigenvalues(xc, k):
    """Eq. (4.3): the sum of the eigenvalues of C = Xc^T Xc / N beyond the k largest."""
    eig = np.linalg.eigvalsh(xc.T @ xc / len(xc))[::-1]
    return float(eig[k:].sum())


def pca_residual(x, k):
    """scikit-learn's PCA (exact SVD) of x: mean over images of ||x - x_hat||^2."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=k, svd_solver="full").fit(x)
    x_hat = pca.inverse_transform(pca.transform(x))
    return float(np.mean(np.sum((x - x_hat) ** 2, axis=1)))


def linear_ae_residual(xc, k, epochs=DEFAULT_EPOCHS, batch_size=256, seed=0, verbose=0):
    """Trains keraszoo's linear encoder/decoder of code size k on centred xc (see the module docstring)."""
    import keras

    from keraszoo.models import AutoEncoder
    from keraszoo.models import losses

    keras.utils.set_random_seed(seed)
    ae = AutoEncoder(input_shape=(28, 28, 1), latent_dim=k, hidden_dims=(), reconstruction_loss="mse", seed=seed)
    inputs = keras.Input((28, 28, 1))
    linear = keras.Model(inputs, ae.decoder(ae.encoder(inputs)), name=f"linear_ae_{k}")
    steps = epochs * int(np.ceil(len(xc) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, steps, alpha=1e-3)
    linear.compile(optimizer=keras.optimizers.Adam(schedule), loss=lambda y, y_hat: losses.squared_error(y, y_hat))
    images = xc.reshape(-1, 28, 28, 1).astype("float32")
    linear.fit(images, images, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose)
    x_hat = np.asarray(linear.predict(images, batch_size=4096, verbose=0), "float64").reshape(len(xc), -1)
    return float(np.mean(np.sum((xc - x_hat) ** 2, axis=1)))


def measure(sizes=DEFAULT_SIZES, epochs=DEFAULT_EPOCHS, verbose=0):
    """``[{k, discarded_eigenvalues, pca_residual, linear_ae_residual, gap, seconds}]`` on the MNIST training split."""
    x = load_mnist_train()
    xc = x - x.mean(axis=0)
    rows = []
    for k in sizes:
        start = time.time()
        eig = discarded_eigenvalues(xc, k)
        pca = pca_residual(x, k)
        ae = linear_ae_residual(xc, k, epochs=epochs, verbose=verbose)
        rows.append({"k": k, "discarded_eigenvalues": eig, "pca_residual": pca, "linear_ae_residual": ae,
                     "gap": ae / pca - 1.0, "seconds": time.time() - start})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (default 1)")
    args = parser.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    print(f"MNIST train (60,000 digits, 784 pixels, centred); linear AE: {args.epochs} epochs of Adam, batch 256")
    print(f"{'k':>4} {'sum discarded eig.':>19} {'PCA residual':>13} {'linear AE':>10} {'gap':>9} {'time':>6}")
    for r in measure(args.sizes, args.epochs):
        print(f"{r['k']:>4} {r['discarded_eigenvalues']:>19.4f} {r['pca_residual']:>13.4f} "
              f"{r['linear_ae_residual']:>10.4f} {r['gap']:>8.4%} {r['seconds']:>5.0f}s")


if __name__ == "__main__":
    main()
