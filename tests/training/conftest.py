"""Fixtures of the training-script tests."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_mnist_dir(tmp_path_factory):
    """A folder with a small ``mnist.npz`` (256 train / 64 test real digits)."""
    from keraszoo.samples import load_mnist_sample

    x, y = load_mnist_sample()
    x = np.round(np.asarray(x)[..., 0] * 255.0).astype(np.uint8)
    d = tmp_path_factory.mktemp("tiny_mnist")
    np.savez(d / "mnist.npz", x_train=x[:256], y_train=y[:256], x_test=x[256:320], y_test=y[256:320])
    return d
