"""Tiny real results directories for the report and consistency tests.

Each run is trained by the package's own engine (``keraszoo.training.train.run``) on a tiny
``mnist.npz`` made from the bundled sample digits, saved with ``save_pretrained`` and written as
one ``results.jsonl`` line in the schema the experiment runner writes.
"""

import csv
import json
import pathlib

import numpy as np

#: (run_id, study, model, model_kwargs): a swept beta, a latent size of 2 (the scatter), a contractive and a sparse model.
RUNS = (
    ("beta-0.5", "beta", "vae", {"beta": 0.5, "latent_dim": 2}),
    ("beta-2", "beta", "vae", {"beta": 2.0, "latent_dim": 2}),
    ("latent-2", "latent", "ae", {"latent_dim": 2}),
    ("latent-4", "latent", "ae", {"latent_dim": 4}),
    ("contractive-0.1", "contractive", "cae", {"contractive_weight": 0.1, "latent_dim": 4}),
)
NUM_TEST = 48


def tiny_mnist(folder):
    from keraszoo.samples import load_mnist_sample

    x, y = load_mnist_sample()
    x = np.round(np.asarray(x)[..., 0] * 255.0).astype(np.uint8)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "mnist.npz", x_train=x[:256], y_train=y[:256], x_test=x[256:320], y_test=y[256:320])
    return folder


def _history(run_dir):
    with (run_dir / "training_log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in rows[0] if k != "epoch" and not k.endswith("images_per_s") and rows[0][k] != "NA"]
    return {k: [float(r[k]) for r in rows] for k in keys}


def write_results(results_dir, data_dir, runs=RUNS, epochs=2):
    """Trains ``runs`` into ``results_dir/runs/<run_id>`` and writes ``results_dir/results.jsonl``."""
    import keraszoo
    from keraszoo.training.recipe import Recipe
    from keraszoo.training.train import run

    results_dir = pathlib.Path(results_dir)
    lines = []
    for run_id, study, model, kwargs in runs:
        kwargs = {"hidden_dims": (32,), **kwargs}
        recipe = Recipe(model=model, model_kwargs=kwargs, dataset="mnist", data_source="npz", epochs=epochs,
                        batch_size=64, eval_split=f"test[:{NUM_TEST}]", eval_batch_size=32, steps_per_execution=1)
        out = results_dir / "runs" / run_id
        run(recipe, out, data_dir=data_dir, verbose=0)
        meta = json.loads((out / "metadata.json").read_text())
        metrics = meta["metrics"]
        test = {k[len("test_"):]: v for k, v in metrics.items() if k.startswith("test_")}
        loaded = keraszoo.load(str(out))
        lines.append({
            "run_id": run_id, "study": study, "variant": loaded.variant, "dataset": "mnist", "budget": "smoke",
            "params": {**recipe.to_args(), **kwargs}, "seed": 0, "epochs": epochs,
            "num_params": int(loaded.count_params()), "train_seconds": float(meta["recipe"].get("fit_time_s", 1.0)),
            "seconds_per_epoch": float(meta["recipe"].get("fit_time_s", 1.0)) / epochs,
            "history": _history(out), "test": test,
            "eval": {"split": "test", "num_examples": NUM_TEST, "binarize": None},
            "model_dir": f"runs/{run_id}", "keraszoo_version": keraszoo.__version__, "finished_at": "2026-12-02T00:00:00Z",
        })
    with (results_dir / "results.jsonl").open("w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    return results_dir


def results_dir_for(tmp_path_factory):
    """The session's tiny results directory and data folder, trained once (shared by the report and consistency tests)."""
    root = tmp_path_factory.getbasetemp() / "report_fixture"
    if not (root / "results" / "results.jsonl").exists():
        data_dir = tiny_mnist(root / "data")
        write_results(root / "results", data_dir)
    return root / "results", root / "data"
