"""Out-of-distribution detection with the zoo's models, the known failure of likelihoods, and a correction.

Likelihood models trained on one dataset can give *higher* likelihood to simpler images of another
(Nalisnick et al., 2019, "Do Deep Generative Models Know What They Don't Know?"). This benchmark measures it
with the bundled, converged zoo models -- no training, reproducible anywhere::

    KERASZOO_DATA_DIR=/path/to/npz python -m keraszoo.anomaly.ood --out reports/anomaly/ood

In-distribution: the test split the models were trained for (MNIST: ``vae_mnist``, ``iwae_mnist``,
``hvae_mnist``, ``vqvae_mnist``; CIFAR-10: ``vae_cifar10``, ``hvae_cifar10``, ``vqvae_cifar10``), as 8-bit
grey levels scaled to [0, 1] (the MNIST models trained on binarized digits see grey levels here, in and out
of distribution alike). Out of distribution, each of the in-distribution's shape:

* MNIST: CIFAR-10 test images in grey (ITU-R 601 luma) resized to 28x28; MNIST test digits flipped upside
  down; inverted (``1 − x``); with Gaussian noise (σ = 0.2, clipped); constant images (one grey level each);
  uniform noise;
* CIFAR-10: MNIST test digits padded to 32x32 and repeated on three channels; flipped upside down; constant
  images; uniform noise.

Every out-of-distribution image is an 8-bit image (quantized to 1/255 steps), as the test images are.

For every model and every score it declares (``model.anomaly_methods``; ``latent`` fit on the codes of
10,000 training images), the AUROC of telling the out-of-distribution images (positive) from the test
images by the score (higher = more anomalous); AUROC below 0.5 is the failure: the other images look *more*
normal. The correction is the **input complexity** of Serrà et al. (2020, "Input Complexity and
Out-of-distribution Detection with Likelihood-based Generative Models"): ``S(x) = −log₂ p(x) − L(x)``, the
negative log-likelihood in bits minus the length in bits of the image losslessly compressed (PNG, Pillow at
compression level 9: :func:`png_bits`), applied to the likelihood scores (``elbo``, ``iwae``); ``S`` is
reported beside the raw score. AUROC is scikit-learn's ``roc_auc_score``.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import pathlib
import sys
import time

import numpy as np

__all__ = ["BENCHMARKS", "OOD_SETS", "auroc", "main", "png_bits", "run"]

#: In-distribution dataset -> the zoo models trained on it, and its out-of-distribution sets.
BENCHMARKS = {
    "mnist": {"models": ("vae_mnist", "iwae_mnist", "hvae_mnist", "vqvae_mnist"),
              "ood": ("cifar10_grey", "flipped", "inverted", "noised", "constant", "uniform_noise")},
    "cifar10": {"models": ("vae_cifar10", "hvae_cifar10", "vqvae_cifar10"),
                "ood": ("mnist_padded", "flipped", "constant", "uniform_noise")},
}

#: What each out-of-distribution set is, for the report.
OOD_SETS = {
    "cifar10_grey": "CIFAR-10 test images, grey, resized to 28x28",
    "mnist_padded": "MNIST test digits padded to 32x32, grey on three channels",
    "flipped": "test images flipped upside down",
    "inverted": "test digits inverted (1 − x)",
    "noised": "test digits with Gaussian noise (σ = 0.2), clipped",
    "constant": "constant images, one uniform grey level each",
    "uniform_noise": "uniform noise",
}

#: Scores whose correction by input complexity is reported (image likelihoods, nats).
LIKELIHOOD_SCORES = ("elbo", "iwae")
#: Training images whose codes fit the ``latent`` score's Gaussian.
REFERENCE_IMAGES = 10_000


# --------------------------------------------------------------------------- metrics
def auroc(normal_scores, anomalous_scores) -> float:
    """scikit-learn's ``roc_auc_score`` with the anomalous images as the positive class (higher = more anomalous)."""
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:  # pragma: no cover - scikit-learn is a dev/experiments dependency
        raise ImportError("The anomaly benchmarks use scikit-learn's roc_auc_score: pip install scikit-learn") from None
    normal, anomalous = np.asarray(normal_scores, "float64"), np.asarray(anomalous_scores, "float64")
    labels = np.concatenate([np.zeros(len(normal)), np.ones(len(anomalous))])
    return float(roc_auc_score(labels, np.concatenate([normal, anomalous])))


def png_bits(images) -> np.ndarray:
    """The length in bits of each 8-bit image losslessly compressed as PNG (Pillow, compression level 9).

    ``images``: ``(n, h, w, c)`` floats in [0, 1] (quantized to 8 bits) or uint8; grey for ``c == 1``, RGB for 3.
    The file's fixed overhead (signature and chunk headers, the same for every image of a shape) is included.
    """
    from PIL import Image

    x = np.asarray(images)
    if x.dtype != np.uint8:
        x = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    bits = np.empty(len(x), "float64")
    for i, image in enumerate(x):
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG", compress_level=9)
        bits[i] = 8.0 * buffer.tell()
    return bits


# --------------------------------------------------------------------------- the image sets
def _to_unit(x_uint8):
    return np.asarray(x_uint8, "float32") / 255.0


def _quantized(x):
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype("float32") / 255.0


def _grey_resized(x_uint8, size):
    """RGB uint8 images in grey (ITU-R 601 luma, Pillow's ``L``) resized to ``size`` (antialiased), as [0, 1] floats."""
    from PIL import Image

    out = np.empty((len(x_uint8), size, size, 1), "float32")
    for i, image in enumerate(x_uint8):
        grey = Image.fromarray(image).convert("L").resize((size, size), Image.Resampling.LANCZOS)
        out[i, ..., 0] = np.asarray(grey, "float32") / 255.0
    return out


def _padded_rgb(x_uint8, size):
    """Grey uint8 ``(n, h, w, 1)`` images centred on a black ``size`` x ``size`` canvas, repeated on three channels."""
    n, h, w = x_uint8.shape[:3]
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((n, size, size, 3), "float32")
    out[:, top:top + h, left:left + w, :] = _to_unit(x_uint8)[..., :1]
    return out


def make_set(name, in_distribution, test_uint8, rng, n, data_dir=None):
    """``n`` images of the out-of-distribution set ``name`` in the shape of ``test_uint8`` (float32, 8-bit levels)."""
    from keraszoo import data

    shape = test_uint8.shape[1:]
    pick = rng.choice(len(test_uint8), n, replace=len(test_uint8) < n)
    base = _to_unit(test_uint8[pick])
    if name == "cifar10_grey":
        other = data.load_arrays("cifar10", "test", source="auto", data_dir=data_dir, dtype="uint8")[0]
        return _grey_resized(other[rng.choice(len(other), n, replace=False)], shape[0])
    if name == "mnist_padded":
        other = data.load_arrays("mnist", "test", source="auto", data_dir=data_dir, dtype="uint8")[0]
        return _padded_rgb(other[rng.choice(len(other), n, replace=False)], shape[0])
    if name == "flipped":
        return base[:, ::-1].copy()
    if name == "inverted":
        return _quantized(1.0 - base)
    if name == "noised":
        return _quantized(base + 0.2 * rng.standard_normal(base.shape).astype("float32"))
    if name == "constant":
        levels = rng.integers(0, 256, size=(n,) + (1,) * len(shape)).astype("float32") / 255.0
        return np.broadcast_to(levels, (n,) + shape).astype("float32")
    if name == "uniform_noise":
        return rng.integers(0, 256, size=(n,) + shape).astype("float32") / 255.0
    raise ValueError(f"Unknown out-of-distribution set {name!r}; known: {', '.join(OOD_SETS)}.")


# --------------------------------------------------------------------------- the benchmark
def _scores(model, x, method, *, iwae_samples, elbo_samples, seed):
    samples = {"iwae": iwae_samples, "elbo": elbo_samples}.get(method)
    return model.anomaly_score(x, method, num_samples=samples, seed=seed)


def run_dataset(dataset, *, models=None, examples=2000, iwae_samples=100, elbo_samples=10, seed=0, data_dir=None,
                log=print) -> dict:
    """The benchmark on one in-distribution dataset: ``{"rows": [...], "sets": {...}, "models": {...}}``."""
    import keraszoo
    from keraszoo import data

    spec = BENCHMARKS[dataset]
    rng = np.random.default_rng(seed)
    test = data.load_arrays(dataset, "test", source="auto", data_dir=data_dir, dtype="uint8")[0]
    train = data.load_arrays(dataset, "train", source="auto", data_dir=data_dir, dtype="uint8")[0]
    n = min(int(examples), len(test))
    x_id = _to_unit(test[rng.choice(len(test), n, replace=False)])
    sets = {name: make_set(name, dataset, test, rng, n, data_dir) for name in spec["ood"]}
    reference = _to_unit(train[rng.choice(len(train), min(REFERENCE_IMAGES, len(train)), replace=False)])
    pixels = int(np.prod(x_id.shape[1:]))
    complexity = {"test": png_bits(x_id), **{name: png_bits(x) for name, x in sets.items()}}
    rows, model_info = [], {}
    for name in models or spec["models"]:
        started = time.time()
        model = keraszoo.load(name)
        methods = [m for m in model.anomaly_methods]
        if "latent" in methods:
            model.fit_anomaly_reference(reference)
        model_info[name] = {"class": type(model).__name__, "methods": methods,
                            "likelihood": model.reconstruction_description()}
        for method in methods:
            t0 = time.time()
            id_scores = _scores(model, x_id, method, iwae_samples=iwae_samples, elbo_samples=elbo_samples, seed=seed)
            for set_name, x in sets.items():
                ood_scores = _scores(model, x, method, iwae_samples=iwae_samples, elbo_samples=elbo_samples,
                                     seed=seed + 1)
                row = {"dataset": dataset, "model": name, "method": method, "ood": set_name, "n_test": n,
                       "n_ood": len(x), "auroc": auroc(id_scores, ood_scores),
                       "mean_score_test": float(id_scores.mean()), "mean_score_ood": float(ood_scores.mean())}
                if method in LIKELIHOOD_SCORES:
                    bits_id = id_scores / math.log(2)
                    bits_ood = ood_scores / math.log(2)
                    row.update({
                        "bits_per_dim_test": float(bits_id.mean() / pixels),
                        "bits_per_dim_ood": float(bits_ood.mean() / pixels),
                        "auroc_complexity": auroc(bits_id - complexity["test"], bits_ood - complexity[set_name]),
                    })
                rows.append(row)
            log(f"  {name} {method}: {time.time() - t0:.0f} s")
        model_info[name]["seconds"] = round(time.time() - started, 1)
    png = {key: float(bits.mean() / pixels) for key, bits in complexity.items()}
    return {"rows": rows, "models": model_info, "png_bits_per_dim": png,
            "sets": {name: OOD_SETS[name] for name in spec["ood"]}, "examples": n}


def run(out, *, datasets=("mnist", "cifar10"), models=None, examples=2000, iwae_samples=100, elbo_samples=10, seed=0,
        data_dir=None, log=print) -> dict:
    """Run the benchmark for ``datasets`` and write ``out/results.json``, ``out/README.md`` and the pictures of the sets."""
    from keraszoo import output_folder
    from keraszoo.version import __version__

    settings = {"datasets": list(datasets), "models": None if models is None else list(models), "examples": int(examples),
                "iwae_samples": int(iwae_samples), "elbo_samples": int(elbo_samples), "seed": int(seed)}
    key = output_folder.recipe_key(settings)
    with output_folder.claim(out, "anomaly_ood", key=key, flag="--out") as folder:
        started = time.time()
        results = {"benchmark": "keraszoo.anomaly.ood", "settings": settings, "keraszoo_version": __version__,
                   "datasets": {}}
        for dataset in datasets:
            log(f"{dataset}:")
            chosen = None if models is None else [m for m in models if m in BENCHMARKS[dataset]["models"]]
            results["datasets"][dataset] = run_dataset(dataset, models=chosen, examples=examples, iwae_samples=iwae_samples,
                                                       elbo_samples=elbo_samples, seed=seed, data_dir=data_dir, log=log)
            _save_set_pictures(folder, dataset, seed, data_dir)
        results["seconds"] = round(time.time() - started, 1)
        results["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        from keraszoo.utils import atomic_write_text

        atomic_write_text(folder / "results.json", json.dumps(results, indent=2, sort_keys=True) + "\n")
        atomic_write_text(folder / "README.md", render(results))
    return results


def _save_set_pictures(folder, dataset, seed, data_dir):
    """``<dataset>_sets.png``: eight images of the test split (first row) and of each out-of-distribution set."""
    from keraszoo import data
    from keraszoo import visualization as vis

    rng = np.random.default_rng(seed + 7)
    test = data.load_arrays(dataset, "test", source="auto", data_dir=data_dir, dtype="uint8")[0]
    rows = [_to_unit(test[rng.choice(len(test), 8, replace=False)])]
    rows += [make_set(name, dataset, test, rng, 8, data_dir) for name in BENCHMARKS[dataset]["ood"]]
    vis.save_grid(np.concatenate(rows), folder / f"{dataset}_sets.png", ncols=8)


# --------------------------------------------------------------------------- the report
def _fmt(value):
    return "–" if value is None else f"{value:.3f}"


def render(results) -> str:
    """The Markdown report of :func:`run`'s results."""
    s = results["settings"]
    lines = [
        "# Out-of-distribution detection with keraszoo's likelihood models",
        "",
        "Written by `python -m keraszoo.anomaly.ood` (keraszoo "
        f"{results['keraszoo_version']}); the numbers are in `results.json`. {s['examples']} test images and "
        f"{s['examples']} images of each other set per dataset (seed {s['seed']}); `elbo`: the negative ELBO averaged over "
        f"{s['elbo_samples']} posterior draws, `iwae`: the negative IWAE bound with k = {s['iwae_samples']}; `latent`: the "
        "Mahalanobis distance of the code from the codes of 10,000 training images; `prior`: the VQ-VAE's PixelCNN "
        "NLL of the code grid. Every score is higher = more anomalous.",
        "",
        "**AUROC** of telling the other images (positive) from the test split by the score: 1 is perfect, 0.5 is "
        "chance, **below 0.5 the model finds the other images more likely than its own test images** -- the failure "
        "of likelihoods that Nalisnick et al. (2019) describe. *complexity*: the same likelihood corrected by the "
        "input complexity of Serrà et al. (2020), `S(x) = −log₂ p(x) − L(x)` with `L(x)` the PNG code length of the "
        "8-bit image in bits.",
        "",
    ]
    for dataset, res in results["datasets"].items():
        lines += [f"## {dataset}: the test split against other images", "", f"![{dataset} sets]({dataset}_sets.png)", "",
                  "The first row: test images; then one row per set below, in order.", ""]
        lines += ["| set | what | PNG bits/dim |", "|---|---|---|"]
        png = res["png_bits_per_dim"]
        lines.append(f"| test | the {dataset} test split | {png['test']:.3f} |")
        for name, what in res["sets"].items():
            lines.append(f"| {name} | {what} | {png[name]:.3f} |")
        lines.append("")
        for model, info in res["models"].items():
            rows = [r for r in res["rows"] if r["model"] == model]
            methods = info["methods"]
            head = []
            for m in methods:
                head.append(m)
                if m in LIKELIHOOD_SCORES:
                    head.append(f"{m} + complexity")
            lines += [f"### {model} ({info['class']}, {info['likelihood']})", "",
                      "| other images | " + " | ".join(head) + " | NLL bits/dim: test → other |",
                      "|---|" + "---:|" * len(head) + "---|"]
            for set_name in res["sets"]:
                cells, bpd = [], "–"
                for m in methods:
                    r = next(r for r in rows if r["method"] == m and r["ood"] == set_name)
                    cells.append(_fmt(r["auroc"]))
                    if m in LIKELIHOOD_SCORES:
                        cells.append(_fmt(r.get("auroc_complexity")))
                        if m == "elbo":
                            bpd = f"{r['bits_per_dim_test']:.3f} → {r['bits_per_dim_ood']:.3f}"
                lines.append(f"| {set_name} | " + " | ".join(cells) + f" | {bpd} |")
            lines.append("")
    lines += _findings(results)
    lines += ["## References", "",
              "* E. Nalisnick, A. Matsukawa, Y. W. Teh, D. Gorur, B. Lakshminarayanan. Do Deep Generative Models Know "
              "What They Don't Know? ICLR 2019. https://arxiv.org/abs/1810.09136",
              "* J. Serrà, D. Álvarez, V. Gómez, O. Slizovskaia, J. F. Núñez, J. Luque. Input Complexity and "
              "Out-of-distribution Detection with Likelihood-based Generative Models. ICLR 2020. "
              "https://arxiv.org/abs/1909.11480", ""]
    return "\n".join(lines)


def _findings(results) -> list:
    """The sentences the numbers support: where a likelihood fails (AUROC < 0.5) and what the correction does."""
    every = [r for res in results["datasets"].values() for r in res["rows"]]
    rows = [r for r in every if r["method"] in LIKELIHOOD_SCORES]
    failed = [r for r in every if r["auroc"] < 0.5]
    hurt = [r for r in rows if r.get("auroc_complexity") is not None and r["auroc_complexity"] < r["auroc"] - 0.1]
    lines = ["## What the numbers say", ""]
    if failed:
        lines += ["**Where a score fails** (AUROC < 0.5: the other images look *more* normal than the model's own test "
                  "images), and the likelihoods corrected by input complexity:", "",
                  "| model | score | other images | AUROC | + complexity |", "|---|---|---|---:|---:|"]
        lines += [f"| {r['model']} | {r['method']} | {r['ood']} | {r['auroc']:.3f} | {_fmt(r.get('auroc_complexity'))} |"
                  for r in failed]
    else:
        lines.append("No score ranks another set above its own test images (every AUROC ≥ 0.5).")
    lines.append("")
    if hurt:
        sets = sorted({(r["model"].rsplit("_", 1)[-1], r["ood"]) for r in hurt})
        lines.append("**The correction costs** more than 0.1 of AUROC on " + ", ".join(f"{d}/{o}" for d, o in sets)
                     + ": subtracting the PNG length rewards images that compress badly, so noise added to in-"
                     "distribution images (more bits for PNG, few more for the model) scores as *normal*. The "
                     "correction trades one failure for another where the other images are more complex than the "
                     "training data.")
        lines.append("")
    lines.append("Units: the CIFAR-10 models' discretized logistic is a probability of the 8-bit image, so its bits and "
                 "the PNG's are the same units and `S(x)` is Serrà et al.'s score exactly. The MNIST models' Bernoulli "
                 "likelihood of grey levels (they trained on binarized digits) is no probability of the 8-bit image: "
                 "there `S(x)` mixes units and is dominated by the PNG length.")
    lines.append("")
    return lines


# --------------------------------------------------------------------------- the command
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keraszoo.anomaly.ood", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the results folder (empty, new, or this command's own)")
    parser.add_argument("--datasets", nargs="+", choices=tuple(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--models", nargs="+", default=None, help="a subset of the zoo models of the datasets")
    parser.add_argument("--examples", type=int, default=2000, help="test images and images of each other set (default 2000)")
    parser.add_argument("--iwae-samples", type=int, default=100, help="importance samples of the iwae score (default 100)")
    parser.add_argument("--elbo-samples", type=int, default=10, help="posterior draws of the elbo score (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="folder of mnist.npz / cifar10 archives (default $KERASZOO_DATA_DIR)")
    args = parser.parse_args(argv)
    known = {m for spec in BENCHMARKS.values() for m in spec["models"]}
    bad = [m for m in args.models or () if m not in known]
    if bad:
        parser.error(f"--models: {', '.join(bad)} not among {', '.join(sorted(known))}")
    run(args.out, datasets=args.datasets, models=args.models, examples=args.examples, iwae_samples=args.iwae_samples,
        elbo_samples=args.elbo_samples, seed=args.seed, data_dir=args.data_dir,
        log=lambda text: print(text, file=sys.stderr, flush=True))
    print(f"Wrote {pathlib.Path(args.out) / 'README.md'} and results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
