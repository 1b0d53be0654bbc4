"""Bad inputs of training: the hyperparameters of ``keraszoo train`` and of its Python API
(:class:`keraszoo.training.recipe.Recipe`, :func:`keraszoo.training.train.run`).

Every case fails before any training step and before the output folder is
created (the contract: nothing left behind). Decisions:

* a zero, negative, NaN or infinite learning rate, ``epochs < 1``, a batch
  size of 0 and a negative ``--backup-every`` are refused when the recipe is
  made (``UsageError``; exit 2 on the command line);
* model hyperparameters (latent size, ``beta``) are checked by the model's
  constructor (exit 1: the command line was well formed);
* ``--out`` in a folder that does not exist yet is *not* an error: the folder
  and its parents are created (as ``save_pretrained`` does); an ``--out``
  that is an existing file is.
"""

from __future__ import annotations

import numpy as np

from keraszoo.training.recipe import UsageError  # a ValueError; imports no TensorFlow
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import ErrorExit
from tests.bad_inputs.registry import UsageExit
from tests.bad_inputs.registry import inputs
from tests.bad_inputs.registry import run_cli

AREA = "training"


def case(id, description, run, error, match, **kwargs):
    return Case(id=id, area=AREA, description=description, run=run, error=error, match=match, **kwargs)


def _tiny_mnist(tmp):
    """A 16-image ``mnist.npz`` in ``tmp/in`` (what ``--data-dir`` points at)."""
    folder = inputs(tmp)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(16, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=16, dtype=np.uint8)
    np.savez(folder / "mnist.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    return folder


def _train_cli(*flags, data=False):
    """``keraszoo train --model ae ... FLAGS --out tmp/out`` (with ``--data-dir tmp/in`` when ``data``)."""

    def run(tmp):
        argv = ["train", "--model", "ae", "--hidden-dims", "8", "--latent-dim", "2", "--epochs", "1",
                "--verbose", "0", "--no-eval", *flags]
        if data:
            argv += ["--data-source", "npz", "--data-dir", str(inputs(tmp))]
        if "--out" not in flags:
            argv += ["--out", str(tmp / "out")]
        return run_cli(argv)

    return run


def _recipe(**fields):
    def run(tmp):
        from keraszoo.training.recipe import Recipe

        return Recipe(model="ae", **fields)

    return run


def _train_run(model="ae", **fields):
    """``keraszoo.training.train.run(Recipe(...), tmp/"out", data_dir=tmp/"in")`` on the tiny archive."""

    def run(tmp):
        from keraszoo.training import train
        from keraszoo.training.recipe import Recipe

        settings = {"data_source": "npz", "epochs": 1, "batch_size": 8, "eval": False, **fields}
        recipe = Recipe(model=model, **settings)
        return train.run(recipe, tmp / "out", data_dir=inputs(tmp), verbose=0)

    return run


def _file_as_out(tmp):
    _tiny_mnist(tmp)
    (inputs(tmp) / "model.txt").write_text("not a folder\n")


CASES = [
    case("train-lr-zero", "keraszoo train --lr 0 (a learning rate that cannot train)",
         _train_cli("--lr", "0"), UsageExit, r"--lr must be a finite number > 0 .*; got 0\.0\."),
    case("train-lr-nan", "keraszoo train --lr nan",
         _train_cli("--lr", "nan"), UsageExit, r"--lr must be a finite number > 0 .*; got nan\."),
    case("train-lr-negative", "Recipe(model='ae', lr=-1e-3) (Python API)",
         _recipe(lr=-1e-3), UsageError, r"--lr must be a finite number > 0 .*; got -0\.001\."),
    case("train-latent-dim-zero", "keraszoo train --latent-dim 0",
         _train_cli("--latent-dim", "0"), UsageExit, r"argument --latent-dim: expected a positive integer, got '0'"),
    case("train-latent-dim-negative", "train.run(Recipe(model='ae', model_kwargs={'latent_dim': -2}), out)",
         _train_run(model_kwargs={"latent_dim": -2}), UsageError,
         r"Cannot build AutoEncoder .*`latent_dim` must be a positive integer; received -2", prepare=_tiny_mnist),
    case("train-beta-nan", "keraszoo train --model vae --beta nan",
         _train_cli("--model", "vae", "--beta", "nan", data=True), ErrorExit,
         r"`beta` must be a finite number >= 0; received nan", prepare=_tiny_mnist),
    case("train-batch-size-zero", "Recipe(model='ae', batch_size=0) (Python API)",
         _recipe(batch_size=0), UsageError, r"--batch-size must be a positive integer; got 0\."),
    case("train-epochs-zero", "Recipe(model='ae', epochs=0) (Python API)",
         _recipe(epochs=0), UsageError, r"--epochs must be a positive integer; got 0\."),
    case("train-backup-every-negative", "keraszoo train --backup-every -1",
         _train_cli("--backup-every", "-1"), UsageExit, r"--backup-every must be an integer >= 0 \(0: every epoch only\)"),
    case("train-data-dir-without-archives", "train.run(Recipe(model='ae', data_source='npz'), out, data_dir=<empty folder>)",
         _train_run(), FileNotFoundError, r"No archive mnist\.npz in .*\bin\b"),
    case("train-out-is-a-file", "keraszoo train --out <an existing file>",
         lambda tmp: _train_cli("--out", str(inputs(tmp) / "model.txt"), data=True)(tmp), ErrorExit,
         r"--out .*model\.txt is a file; give a folder", prepare=_file_as_out),
    case("train-unknown-model", "keraszoo train --model nosuch",
         _train_cli("--model", "nosuch"), ErrorExit, r"Unknown model 'nosuch'\. Known: .*\bvae\b"),
]
