"""The one-class anomaly study's report: tables, ROC curves, the most anomalous test images, the literature.

Every function takes the study's ``results.jsonl`` records (dicts, as :func:`keraszoo.experiments.read_results`
gives them) and returns Markdown, or draws a figure to ``path`` (matplotlib; ``None`` when there is nothing to
draw). A *detector* is a row of the tables: a model with one of its anomaly scores (``ae · reconstruction``,
``vae · elbo``, ...) or a classical baseline (``PCA reconstruction error``, ...); its runs are the records of that
model, one per normal class and seed, whose ``test`` holds ``anomaly_auroc_<score>`` and its siblings
(:mod:`keraszoo.anomaly.metrics`).

* :func:`auroc_table` -- per-class AUROC (%) of every detector, mean ± the 95 % Student-t interval over seeds;
  the mean over classes with the interval of the seeds' class-averaged AUROC; Deep SVDD's published row beside;
* :func:`ap_table` -- the same for average precision;
* :func:`roc_figure` -- ROC curves per class (the recorded points, mean over seeds), the detectors' best;
* :func:`top_anomalies_figure` -- per class, the most anomalous test images of the normal class by a detector;
* :func:`literature_section` and :func:`summary` -- the published numbers and the closing sentences (the best
  detector and each baseline beside Deep SVDD's mean).

To register them in ``keraszoo report`` (keraszoo/experiments/figures.py and tables.py), wrap them as the
report's figures and sections of the studies ``anomaly`` and ``anomaly_cifar10``.
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["DEEP_SVDD", "ap_table", "auroc_table", "detectors", "literature_section", "roc_figure", "summary",
           "top_anomalies_figure"]

#: One-Class Deep SVDD, Ruff et al. (2018), Table 1, AUROC % per normal class 0..9 and their mean, as issue 26 quotes
#: them. NOT verified against the paper here: neither the paper's text nor its table could be reached from this
#: machine (the authors' repositories, lukasruff/Deep-SVDD and Deep-SVDD-PyTorch, carry no numbers). Check them at
#: https://proceedings.mlr.press/v80/ruff18a.html before publishing.
DEEP_SVDD = {
    "mnist": (98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5),
    "cifar10": (61.7, 65.9, 50.8, 59.1, 60.9, 65.7, 67.7, 67.3, 75.9, 73.1),
}
DEEP_SVDD_MEAN = {"mnist": 94.8, "cifar10": 64.8}
DEEP_SVDD_SOURCE = ("L. Ruff, R. A. Vandermeulen, N. Görnitz, L. Deecke, S. A. Siddiqui, A. Binder, E. Müller, "
                    "M. Kloft. Deep One-Class Classification. ICML 2018, PMLR 80:4393-4402. "
                    "https://proceedings.mlr.press/v80/ruff18a.html")

AUROC = re.compile(r"anomaly_auroc_(?P<score>.+)$")


# --------------------------------------------------------------------------- the data
def _classes(record):
    classes = record.get("params", {}).get("classes")
    return tuple(classes) if classes else None


def _model_label(record):
    params = record.get("params", {})
    return str(params.get("model", record.get("variant")))


def detectors(records) -> dict:
    """``{label: {"records": [...], "score": name, "classical": bool, "title": text}}`` of every detector in the records.

    A model contributes one detector per anomaly score its runs recorded; a classical baseline one (its own score).
    """
    from keraszoo.experiments.classical import CLASSICAL

    out = {}
    for record in records:
        if _classes(record) is None or len(_classes(record)) != 1:
            continue
        classical = record.get("kind") == "classical"
        for key in record.get("test", {}):
            m = AUROC.match(key)
            if not m:
                continue
            score = m["score"]
            model = _model_label(record)
            if classical:
                label = CLASSICAL[model].title if model in CLASSICAL else model
            else:
                label = f"{model} · {score}"
            entry = out.setdefault(label, {"records": [], "score": score, "classical": classical, "model": model,
                                           "deterministic": classical and model in CLASSICAL and CLASSICAL[model].deterministic})
            entry["records"].append(record)
    return dict(sorted(out.items(), key=lambda kv: (kv[1]["classical"], kv[0])))


def _per_class(entry, metric):
    """``{class: {seed: value}}`` of a detector's ``metric`` (``"auroc"`` / ``"ap"``)."""
    out = {}
    for r in entry["records"]:
        value = r["test"].get(f"anomaly_{metric}_{entry['score']}")
        if value is not None:
            out.setdefault(_classes(r)[0], {})[int(r.get("seed", 0))] = float(value)
    return out


def _class_mean_over_seeds(per_class, classes):
    """The class-averaged value of each seed that has every class: ``{seed: mean over classes}`` (a deterministic
    baseline's single run per class stands for every seed)."""
    seeds = set.intersection(*(set(per_class.get(c, {})) for c in classes)) if classes else set()
    return {s: float(np.mean([per_class[c][s] for c in classes])) for s in sorted(seeds)}


def _pct(interval) -> str:
    """An interval of a fraction as a percentage cell: ``"94.7 ± 0.5"``, ``"80.0 (exact)"``, ``"–"`` (no value)."""
    if not interval.n:
        return "–"
    if not interval.has_width:
        return f"{100 * interval.mean:.1f}" + (" (exact)" if interval.exact else "")
    return f"{100 * interval.mean:.1f} ± {100 * interval.half_width:.1f}"


def _cell(values, exact=False):
    """Mean over seeds ± the 95 % Student-t interval (:func:`keraszoo.experiments.stats.interval`), in %."""
    from keraszoo.experiments import stats

    return _pct(stats.interval(list(values), exact=exact))


# --------------------------------------------------------------------------- tables
def _table(records, metric, dataset, title, literature):
    found = detectors(records)
    if not found:
        return ""
    classes = sorted({_classes(r)[0] for e in found.values() for r in e["records"]})
    head = "| detector | " + " | ".join(str(c) for c in classes) + " | mean | seeds |"
    lines = [title, "", head, "|---|" + "---:|" * (len(classes) + 2)]
    for label, entry in found.items():
        per_class = _per_class(entry, metric)
        cells = [_cell(list(per_class.get(c, {}).values()), exact=entry["deterministic"]) for c in classes]
        means = list(_class_mean_over_seeds(per_class, classes).values())
        seeds = max((len(v) for v in per_class.values()), default=0)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | **{_cell(means, exact=entry['deterministic'])}** | "
                     f"{'exact' if entry['deterministic'] else seeds} |")
    if literature and dataset in DEEP_SVDD:
        published = DEEP_SVDD[dataset]
        cells = [f"{published[c]:.1f}" if c < len(published) else "–" for c in classes]
        shown = [published[c] for c in classes if c < len(published)]
        mean = DEEP_SVDD_MEAN[dataset] if len(shown) == len(published) else float(np.mean(shown))
        lines.append("| *One-Class Deep SVDD (Ruff et al., 2018; unverified)* | " + " | ".join(cells)
                     + f" | *{mean:.1f}* | 10 |")
    lines += ["", f"Per-class cells: mean over seeds ± the 95 % Student-t interval (one value: no interval; *exact*: a "
                  f"deterministic baseline, one run per class). *mean*: the mean over the classes; its interval is that of "
                  f"the seeds' class-averaged {metric.upper()}.", ""]
    return "\n".join(lines)


def auroc_table(records, dataset="mnist") -> str:
    """Markdown: per-class AUROC (%) of every detector, with Deep SVDD's published row (see the module docstring)."""
    return _table(records, "auroc", dataset, f"**AUROC (%)**, one class normal, the nine others anomalous ({dataset} "
                                             "test split)", literature=True)


def ap_table(records, dataset="mnist") -> str:
    """Markdown: per-class average precision (%), the anomalies the positive class (chance: 90 %)."""
    return _table(records, "ap", dataset, f"**Average precision (%)**, the anomalies the positive class (chance: their "
                                          f"share, 90 %; {dataset} test split)", literature=False)


# --------------------------------------------------------------------------- figures
def _best_per_model(found):
    """The best-scoring detector of each model (by mean AUROC over classes), and every classical baseline."""
    best = {}
    for label, entry in found.items():
        per_class = _per_class(entry, "auroc")
        mean = np.mean([np.mean(list(v.values())) for v in per_class.values()]) if per_class else -1
        key = entry["model"]
        if key not in best or mean > best[key][0]:
            best[key] = (mean, label)
    return [label for _, label in sorted(best.values(), reverse=True)]


def roc_figure(records, path, *, max_lines=10):
    """ROC curves per normal class: each model's best score and every baseline (mean over seeds of the recorded
    points, :data:`keraszoo.anomaly.metrics.FPR_POINTS`, up to (1, 1)) on a log false-positive axis. Returns ``path``."""
    from keraszoo.anomaly.metrics import FPR_POINTS
    from keraszoo.experiments.plotting import pyplot

    found = detectors(records)
    if not found:
        return None
    labels = _best_per_model(found)[:max_lines]
    classes = sorted({_classes(r)[0] for e in found.values() for r in e["records"]})
    plt = pyplot()
    cols = min(5, len(classes))
    rows = math.ceil(len(classes) / cols)
    left, panels, legend = 0.8, 2.7 * cols, 3.0  # inches: the y label, the panels, the legend on the right
    width, height = max(6.4, left + panels + legend), max(4.0, 2.6 * rows + 1.0)
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    handles = {}
    for ax, c in zip(axes.flat, classes):
        for i, label in enumerate(labels):
            entry = found[label]
            runs = [r for r in entry["records"] if _classes(r)[0] == c]
            if not runs:
                continue
            # Records written with fewer points (an older FPR grid) draw the points they have.
            points = [p for p in FPR_POINTS if all(f"anomaly_tpr_{entry['score']}_at_{p:g}" in r["test"] for r in runs)]
            tpr = [np.mean([r["test"][f"anomaly_tpr_{entry['score']}_at_{p:g}"] for r in runs]) for p in points]
            xs, ys = [*points, 1.0], [*tpr, 1.0]
            (line,) = ax.plot(xs, ys, color=colors[i % len(colors)], marker=".", linewidth=1.2)
            handles[label] = line
        chance = np.geomspace(FPR_POINTS[0], 1.0, 50)
        ax.plot(chance, chance, color="0.7", linestyle=":", linewidth=0.8)
        ax.set_title(f"normal class {c}", fontsize=9)
        ax.set_xscale("log")  # good detectors differ at low false-positive rates: a linear axis hides them at 0
        ax.set_xlim(FPR_POINTS[0] * 0.8, 1.0)
        ax.set_ylim(0, 1.01)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(classes):]:
        ax.set_visible(False)
    right = (left + panels) / width
    fig.subplots_adjust(left=left / width, right=right, bottom=0.65 / height, top=1 - 0.4 / height, wspace=0.3,
                        hspace=0.5)
    fig.supxlabel("false-positive rate (normal test images flagged; log scale)", fontsize=9, x=(left + panels / 2) / width)
    fig.supylabel("true-positive rate (anomalies flagged)", fontsize=9, x=0.15 / width)
    fig.legend(list(handles.values()), list(handles), loc="upper left", bbox_to_anchor=(right + 0.1 / width,
               1 - 0.4 / height), fontsize=7, frameon=False)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def top_anomalies_figure(records, path, *, detector=None, count=8, data_dir=None):
    """Per normal class, the ``count`` most anomalous test images *of that class* (first seed) by ``detector`` (a label
    of :func:`detectors`; default: the best model's default score that recorded them). Returns ``path``."""
    from keraszoo import data
    from keraszoo import visualization as vis

    found = {k: v for k, v in detectors(records).items() if not v["classical"]}
    with_top = {k: v for k, v in found.items() if any("anomaly_top_normal_1" in r["test"] for r in v["records"])
                and any(f"anomaly_auroc_{v['score']}" in r["test"] and "anomaly_top_normal_1" in r["test"]
                        for r in v["records"])}
    if not with_top:
        return None
    if detector is None:
        detector = next(label for label in _best_per_model(with_top) if label in with_top)
    entry = found[detector]
    dataset = entry["records"][0].get("dataset", "mnist")
    x_test = data.load_arrays(dataset, "test", source="auto", data_dir=data_dir)[0]
    rows = []
    for c in sorted({_classes(r)[0] for r in entry["records"]}):
        runs = sorted((r for r in entry["records"] if _classes(r)[0] == c and "anomaly_top_normal_1" in r["test"]),
                      key=lambda r: r.get("seed", 0))
        if not runs:
            continue
        index = [int(runs[0]["test"][f"anomaly_top_normal_{k}"]) for k in range(1, count + 1)
                 if f"anomaly_top_normal_{k}" in runs[0]["test"]]
        tiles = np.asarray(x_test[index], "float32")
        if tiles.max() > 1.5:
            tiles = tiles / 255.0
        tiles = np.concatenate([tiles, np.ones((count - len(tiles),) + tiles.shape[1:], "float32")]) \
            if len(tiles) < count else tiles
        rows.append(tiles)
    vis.save_grid(np.concatenate(rows), path, ncols=count)
    return path


# --------------------------------------------------------------------------- words
def literature_section(dataset="mnist") -> str:
    """The published numbers set beside the study, with their source and what they are."""
    if dataset not in DEEP_SVDD:
        return ""
    per_class = ", ".join(f"{c}: {v:.1f}" for c, v in enumerate(DEEP_SVDD[dataset]))
    return "\n".join([
        "**Published.** One-Class Deep SVDD (Ruff et al., 2018, Table 1), AUROC % per normal class, as issue 26 quotes "
        f"them: {per_class} (mean {DEEP_SVDD_MEAN[dataset]:.1f}). *Not verified against the paper from this machine*; "
        "the source: " + DEEP_SVDD_SOURCE + ". Their protocol is this study's: train on one class, test on the whole "
        "test split; their baselines' kernel parameters (OC-SVM) were selected on a labelled 10 % of the test split "
        "(lukasruff/Deep-SVDD, src/svm.py), this study's are fixed in advance.", ""])


def _seed_means(entry):
    """``(classes, {seed: class-averaged AUROC})`` of a detector over the seeds that have every one of its classes."""
    per_class = _per_class(entry, "auroc")
    classes = tuple(sorted(per_class))
    return classes, _class_mean_over_seeds(per_class, classes)


def summary(records, dataset="mnist") -> list:
    """The discussion's sentences: the best keraszoo detector by its mean AUROC over the classes, the detectors not
    distinguishable from it across seeds (:func:`keraszoo.experiments.stats.compare` on the seeds' class-averaged
    AUROC), every classical baseline beside it, and the gap to One-Class Deep SVDD's published mean and per-class
    AUROC. ``[]`` without detectors."""
    from keraszoo.experiments import stats

    found = detectors(records)
    if not found:
        return []
    rows = {}
    for label, entry in found.items():
        classes, by_seed = _seed_means(entry)
        if by_seed:
            exact = bool(entry.get("deterministic"))
            rows[label] = (classes, by_seed, exact, stats.interval(list(by_seed.values()), exact=exact), entry)
    neural = {k: v for k, v in rows.items() if not v[4]["classical"]}
    if not neural:
        return []
    best, (classes, best_seeds, best_exact, best_iv, best_entry) = max(neural.items(), key=lambda kv: kv[1][3].mean)
    n = len(classes)
    out = [f"The best keraszoo detector by its mean AUROC over the {n} class{'es' if n != 1 else ''} is **{best}**: "
           f"{_pct(best_iv)} % ({best_iv.n} seed{'s' if best_iv.n != 1 else ''}; the interval is that of the seeds' "
           "class-averaged AUROC)."]
    tied, below, above, others = [], [], [], []
    for label, (cls, by_seed, exact, iv, _) in rows.items():
        if label == best:
            continue
        if cls != classes:
            others.append(label)
            continue
        c = stats.compare(by_seed, best_seeds, exact, best_exact)
        (tied if not c.detected else below if c.sign < 0 else above).append((label, iv, c))
    if tied:
        out.append("Not distinguishable from it across seeds: " + "; ".join(
            f"{label} ({_pct(iv)})" for label, iv, _ in tied) + ".")
    if below:
        neural_below = [f"{label} ({_pct(iv)})" for label, iv, _ in below if not rows[label][4]["classical"]]
        if neural_below:
            out.append("Below it across seeds: " + "; ".join(neural_below) + ".")
    if above:  # a classical baseline above the best model
        out.append("**Above it** across seeds: " + "; ".join(f"{label} ({_pct(iv)}; {c.describe()})"
                                                             for label, iv, c in above) + ".")
    baselines = [(label, v[3]) for label, v in rows.items() if v[4]["classical"] and v[0] == classes]
    if baselines:
        out.append("The classical baselines' mean AUROC: " + "; ".join(
            f"{label} {_pct(iv)} %" for label, iv in baselines) + " (scikit-learn, fit on the same images; those "
            "not named above or beside the best are below it across seeds).")
    if others:
        out.append(f"Measured on other classes than the best (not compared): {', '.join(others)}.")
    anchor = DEEP_SVDD_MEAN.get(dataset)
    if anchor is not None and classes == tuple(range(10)):
        gap = 100 * best_iv.mean - anchor
        inside = best_iv.has_width and 100 * best_iv.low <= anchor <= 100 * best_iv.high
        out.append(f"That is {abs(gap):.1f} points {'above' if gap >= 0 else 'below'} One-Class Deep SVDD's published "
                   f"mean of {anchor:.1f} % (Ruff et al., 2018; as issue 26 quotes it, not verified at the source here)"
                   + (", which lies inside the best detector's interval." if inside else "."))
        per_class = _per_class(best_entry, "auroc")
        mine = {c: 100 * float(np.mean(list(per_class[c].values()))) for c in classes}
        short = [(c, mine[c], DEEP_SVDD[dataset][c]) for c in classes if mine[c] < DEEP_SVDD[dataset][c]]
        if short:
            out.append(f"Per class, {best} falls short of Deep SVDD's published AUROC on {len(short)} of 10 classes: "
                       + "; ".join(f"class {c} {mine:.1f} against {theirs:.1f}" for c, mine, theirs in short) + ".")
        else:
            out.append(f"Per class, {best} is at or above Deep SVDD's published AUROC on every class.")
    return out
