"""Shared pytest configuration: skipping ``slow`` tests (the marker is declared in pyproject.toml) and common fixtures.

Slow tests (real training runs, long subprocesses) are skipped unless
``--runslow`` is given or ``KERASZOO_RUN_SLOW=1`` is set.
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("KERASZOO_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or KERASZOO_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mnist_sample():
    """The bundled 500 MNIST test digits: float32 (500, 28, 28, 1) in [0, 1], labels."""
    from keraszoo.samples import load_mnist_sample

    return load_mnist_sample()


@pytest.fixture(scope="session")
def tiny_mnist_dir(tmp_path_factory):
    """A folder with a small ``mnist.npz`` (256 train / 64 test real digits) for training runs."""
    import numpy as np

    from keraszoo.samples import load_mnist_sample

    x, y = load_mnist_sample()
    x = np.round(np.asarray(x)[..., 0] * 255.0).astype(np.uint8)
    d = tmp_path_factory.mktemp("tiny_mnist")
    np.savez(d / "mnist.npz", x_train=x[:256], y_train=y[:256], x_test=x[256:320], y_test=y[256:320])
    return d


@pytest.fixture(autouse=True)
def _clear_keras_session():
    yield
    import keras

    # Resets Keras' global state (names, uids) without the ~0.5 s forced gc.
    keras.backend.clear_session(free_memory=False)
