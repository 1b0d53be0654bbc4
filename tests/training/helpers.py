"""Helpers of the training-script tests: command lines, weight comparison, subprocess runs."""

import os
import pathlib
import re
import subprocess
import sys

import h5py
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = REPO_ROOT / "training" / "train.py"
KILLED_SCRIPT = REPO_ROOT / "tests" / "support" / "train_killed.py"


def train_cli(argv) -> int:
    """``keraszoo train ARGV`` in this process (``keraszoo.cli.main``): its exit status."""
    from keraszoo.cli import main

    return main(["train", *[os.fspath(a) for a in argv]])


def train_in_process(argv) -> int:
    """The run of the ``keraszoo train`` command line ``argv``, straight through the engine: its status.

    Unlike :func:`train_cli` an exception (a simulated crash) propagates.
    """
    from keraszoo.training.arguments import parse_train_argv
    from keraszoo.training.train import run

    argv = [os.fspath(a) for a in argv]
    recipe, context = parse_train_argv(argv)
    return run(recipe, context.out, work_dir=context.work_dir, data_dir=context.data_dir, verbose=context.verbose,
               cpu_replicas=context.cpu_replicas, argv=argv).status


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


def archive_weights_of(folder):
    """Every array of the ``model.keras`` archive in ``folder``: the model's *and the optimizer's* variables.

    ``optimizer/vars/0`` is the optimizer's step counter (``iterations``).
    """
    import io
    import zipfile

    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    with zipfile.ZipFile(pathlib.Path(folder) / "model.keras") as z:
        with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
            f.visititems(visit)
    return out


def assert_same_archive(a, b):
    """The ``model.keras`` archives of folders ``a`` and ``b`` hold bitwise-equal model and optimizer states."""
    wa, wb = archive_weights_of(a), archive_weights_of(b)
    assert wa.keys() == wb.keys()
    assert any(k.startswith("optimizer/") for k in wa), "the archive holds no optimizer state"
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)


#: CSV-log columns that measure time (they differ between any two runs).
TIMING_COLUMNS = ("images_per_s", "val_images_per_s")


def log_rows(folder):
    """The rows of ``folder/training_log.csv`` as dicts, without the timing columns."""
    import csv

    with (pathlib.Path(folder) / "training_log.csv").open(newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)]


def assert_same_weights(a, b, atol=0.0):
    wa, wb = weights_of(a), weights_of(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        if atol == 0.0:
            np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
        else:
            np.testing.assert_allclose(wa[k], wb[k], atol=atol, rtol=0, err_msg=k)


def run_script(argv, *, env=None, prelude=None, kill=None, timeout=240):
    """Run ``training/train.py`` in a fresh Python process.

    ``prelude``: Python code run before the command (e.g. to split the CPU
    into logical devices before TensorFlow initializes); ``kill``: a
    ``STEP[@PHASE]`` at which the run is SIGKILLed (``tests/support/train_killed.py``).
    """
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    full_env.update(env or {})
    if kill is not None:
        cmd = [sys.executable, str(KILLED_SCRIPT), str(kill), "train", *argv]
    elif prelude is None:
        cmd = [sys.executable, str(TRAIN_SCRIPT), *argv]
    else:
        code = (
            f"import sys\n{prelude}\n"
            "from keraszoo.cli import main\nsys.exit(main(['train', *sys.argv[1:]]))\n"
        )
        cmd = [sys.executable, "-c", code, *argv]
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout,
                          cwd=str(REPO_ROOT))


#: TensorFlow's own C++ log lines (absl), which TF 2.21 writes to stderr whatever
#: ``TF_CPP_MIN_LOG_LEVEL`` says -- e.g. ``E0000 ... node_def_util.cc:682] NodeDef
#: mentions attribute use_unbounded_threadpool`` at a run's first ``tf.data`` epoch.
TF_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ )")


def keraszoo_lines(stderr):
    """The non-empty lines of ``stderr`` that keraszoo wrote (TensorFlow's C++ log lines left out)."""
    return [line for line in stderr.splitlines() if line.strip() and not TF_LOG_LINE.match(line)]


def cli_error(argv, capfd):
    """Run ``keraszoo.cli.main(argv)`` in this process; ``(exit status, keraszoo's stderr lines)``.

    Unlike ``tests.bad_inputs.registry.run_cli`` this tolerates TensorFlow's
    C++ log lines (captured at the file-descriptor level by ``capfd``), so that
    a test about training faults checks keraszoo's own output.
    """
    from keraszoo.cli import main

    capfd.readouterr()
    code = main([os.fspath(a) for a in argv])
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return code, keraszoo_lines(captured.err)
