"""Tiny real results directories for the report and consistency tests.

Three tiny studies (named after the built-in ones, so that their study-specific figures are drawn) run by
the experiment runner itself (``keraszoo.experiments.run_study`` at the ``smoke`` budget, made smaller) on a
tiny ``mnist.npz`` made from the bundled sample digits; their ``results.jsonl`` lines are merged into one
folder (``model_dir`` re-rooted), as a user may gather several sweeps into one report.
"""

import json
import pathlib

import numpy as np

#: the tiny studies: a swept beta at latent size 2 (the scatter), two AE code sizes, a contractive AE.
SMALL = {"limit": 256, "eval_examples": 48, "knn_train_examples": 128, "epochs": 2}
STUDY_SPECS = (
    {"name": "beta", "variants": ["vae"], "fixed": {"hidden_dims": [32], "latent_dim": 2, "batch_size": 64},
     "grid": {"beta": [0.5, 2.0]}},
    {"name": "latent", "variants": ["ae"], "fixed": {"hidden_dims": [32], "batch_size": 64}, "grid": {"latent_dim": [2]}},
    {"name": "contractive", "variants": ["cae"], "fixed": {"hidden_dims": [32], "latent_dim": 4, "batch_size": 64},
     "grid": {"contractive_weight": [0.1]}},
)
NUM_TEST = SMALL["eval_examples"]


def tiny_mnist(folder):
    from keraszoo.samples import load_mnist_sample

    x, y = load_mnist_sample()
    x = np.round(np.asarray(x)[..., 0] * 255.0).astype(np.uint8)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "mnist.npz", x_train=x[:256], y_train=y[:256], x_test=x[256:320], y_test=y[256:320])
    return folder


def write_results(results_dir, data_dir, specs=STUDY_SPECS):
    """Runs ``specs`` (at a shrunken smoke budget) into ``results_dir/<study>/`` and merges their results lines."""
    from keraszoo.experiments import Study
    from keraszoo.experiments import run_study

    results_dir = pathlib.Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for spec in specs:
        study = Study.from_dict({**spec, "budgets": {"smoke": SMALL}, "datasets": ["mnist"]})
        run_study(study, dataset="mnist", budget="smoke", out=results_dir / study.name, data_dir=data_dir, quiet=True)
        for line in (results_dir / study.name / "results.jsonl").read_text().splitlines():
            record = json.loads(line)
            record["model_dir"] = f"{study.name}/{record['model_dir']}"
            lines.append(record)
    with (results_dir / "results.jsonl").open("w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    return results_dir


def find(records, study, **params):
    """The record of ``study`` whose params hold ``params``."""
    return next(r for r in records if r["study"] == study and all(r["params"].get(k) == v for k, v in params.items()))


def results_dir_for(tmp_path_factory):
    """The session's tiny results directory and data folder, trained once (shared by the report and consistency tests)."""
    root = tmp_path_factory.getbasetemp() / "report_fixture"
    if not (root / "results" / "results.jsonl").exists():
        data_dir = tiny_mnist(root / "data")
        write_results(root / "results", data_dir)
    return root / "results", root / "data"
