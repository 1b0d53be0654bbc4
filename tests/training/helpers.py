"""Helpers of the training-script tests: command lines, weight comparison, subprocess runs."""

import os
import pathlib
import subprocess
import sys

import h5py
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = REPO_ROOT / "training" / "train.py"


def base_args(data_dir, **overrides):
    """A fast training command line (tiny model, 2 epochs of 8 steps)."""
    args = {
        "--model": "ae",
        "--dataset": "mnist",
        "--data-source": "npz",
        "--data-dir": str(data_dir),
        "--hidden-dims": "32",
        "--latent-dim": "4",
        "--epochs": "2",
        "--batch-size": "32",
        "--verbose": "0",
        "--eval-split": "test[:32]",
        "--steps-per-execution": "1",
    }
    args.update({k: str(v) for k, v in overrides.items() if v is not None})
    argv = []
    for k, v in args.items():
        argv += [k] if v == "" else [k, v]
    return argv


def weights_of(folder):
    """Every array of ``folder/model.weights.h5`` (model and optimizer), by path."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    with h5py.File(pathlib.Path(folder) / "model.weights.h5", "r") as f:
        f.visititems(visit)
    return out


def assert_same_weights(a, b, atol=0.0):
    wa, wb = weights_of(a), weights_of(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        if atol == 0.0:
            np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
        else:
            np.testing.assert_allclose(wa[k], wb[k], atol=atol, rtol=0, err_msg=k)


def run_script(argv, *, env=None, prelude=None, timeout=240):
    """Run ``training/train.py`` in a fresh Python process.

    ``prelude``: Python code run before the script's ``main`` (e.g. to split
    the CPU into logical devices before TensorFlow initializes).
    """
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    full_env.update(env or {})
    if prelude is None:
        cmd = [sys.executable, str(TRAIN_SCRIPT), *argv]
    else:
        code = (
            f"import sys\n{prelude}\n"
            "from keraszoo.training.train import main\nsys.exit(main(sys.argv[1:]))\n"
        )
        cmd = [sys.executable, "-c", code, *argv]
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout,
                          cwd=str(REPO_ROOT))
