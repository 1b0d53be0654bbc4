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


# ----------------------------------------------------------------- synthetic results lines (no training)
LIKELIHOODS = {"bce": "Bernoulli NLL, nats", "mse": "squared error Σ(x − x̂)²"}


def synthetic_line(study, model, seed, *, rec, kl=None, epochs=4, model_dir="auto", kind=None, likelihood="bce",
                   knn=0.8, seconds=1.0, still_improving=False, **params):
    """A results line as the runner writes it, with made-up numbers whose terms add up (check (a) passes)."""
    params = {"model": model, **params} | ({} if seed is None else {"seed": seed})
    weights = {"kl_loss": 1.0} if kl is not None else {}
    history, test = {}, {"reconstruction_loss": rec, "total_loss": rec + (kl or 0.0), "knn_accuracy": knn,
                         "psnr_db": 30.0 - rec / 10}
    if kl is not None:
        test["kl_loss"] = kl
    for prefix, scale in (("", 1.02), ("val_", 1.0)):
        recs = [rec * scale * (1 + 0.5 / (e + 1)) for e in range(epochs)]
        history[f"{prefix}reconstruction_loss"] = recs
        kls = [kl * scale for _ in range(epochs)] if kl is not None else None
        if kls is not None:
            history[f"{prefix}kl_loss"] = kls
        history[f"{prefix}total_loss"] = [a + (b if kls is not None else 0.0) for a, b in
                                          zip(recs, kls or [0.0] * epochs)]
    run_id = f"{model}-" + "-".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "model")
    line = {"run_id": run_id, "study": study, "variant": model, "dataset": "mnist", "budget": "smoke",
            "params": params, "seed": seed if seed is not None else 0, "epochs": epochs, "epochs_run": epochs,
            "best_epoch": epochs, "stopped_early": False, "still_improving": still_improving,
            "recent_improvement": 0.05 if still_improving else 0.0, "num_params": 1000,
            "train_seconds": seconds * epochs, "seconds_per_epoch": seconds, "history": history, "test": test,
            "eval": {"split": "test", "num_examples": 100, "binarize": "none"},
            "model_dir": f"runs/{run_id}" if model_dir == "auto" else model_dir, "keraszoo_version": "test",
            "finished_at": "2026-01-01T00:00:00+00:00"}
    if kind == "classical":
        line.update(kind="classical", model_dir=None, likelihood=LIKELIHOODS["mse"])
        line["history"] = {"total_loss": history["total_loss"], "val_total_loss": history["val_total_loss"]}
        line["test"].pop("kl_loss", None)
    else:
        line.update(likelihood=LIKELIHOODS[likelihood], loss_weights=weights, loss_weight_metrics={})
    return line


def png_size(path):
    """``(width, height)`` in pixels of a PNG file (its IHDR chunk)."""
    import struct

    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def write_lines(folder, lines):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder
