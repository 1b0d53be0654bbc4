"""The tables of a study's section in a report: L_total and its terms per likelihood, the pairwise comparisons,
convergence, the other test metrics, size and training time, every run, and a study's own tables (the one-class
benchmark's). Each function takes a :class:`~keraszoo.experiments.view.StudyRuns` and returns Markdown lines;
:func:`study_tables` strings them together in the report's order.
"""

from __future__ import annotations

import statistics

import numpy as np

from keraszoo.experiments.comparisons import pairwise_tables
from keraszoo.experiments.view import fmt
from keraszoo.experiments.view import is_number
from keraszoo.experiments.view import seed_of
from keraszoo.experiments.view import table
from keraszoo.experiments.view import variant_class

#: at most this many metric columns per table (wider ones are split)
TABLE_COLUMNS = 6


def study_tables(study) -> list:
    """Every table of ``study``'s section, in the report's order."""
    return (terms_tables(study) + pairwise_tables(study) + convergence_table(study) + uninformative_codes(study)
            + other_metrics(study) + size_and_time(study) + runs_table(study) + STUDY_TABLES.get(study.name, lambda study: [])(study))


def terms_tables(study):
    """Per likelihood: each setting's test L_total and terms (mean ± 95 %), n, and its training L_total."""
    lines = []
    for likelihood, settings in study.panels().items():
        panel = study.subset([r for s in settings for r in s.runs])
        terms = panel.terms
        header = ["setting", "n"] + [f"test {t}" for t in terms] + ["train total_loss (kept epoch)"]
        rows = [[s.label, _n(s)] + [s.interval(lambda r, t=t: study.test_value(r, t)).text() for t in terms]
                + [s.interval(lambda r: study.train_value(r, "total_loss")).text()] for s in settings]
        lines += [f"### L_total and its terms: {likelihood}", "", table(header, rows), ""]
        lines += _definitions_note(study, settings, terms)
    if lines:
        lines += ["Test: the kept epoch's weights on the test split (clean images). Train: the epoch mean of the "
                  "training loss at the kept epoch, in training mode (a denoising model's on its corrupted inputs: "
                  "not comparable with its test loss)." + (
                      " One-class runs: the test split holds the nine other classes too (the anomalies), so a test "
                      "loss is not the fit to the normal class, and settings of different classes are not comparable."
                      if study.one_class else ""), ""]
    return lines


def _definitions_note(study, settings, terms):
    """A line under a terms table whose column holds two definitions of a term (the sparse autoencoder's KL and L1
    penalties): which argument chooses which, and that the column compares only within one."""
    split = {}
    for term in terms:
        groups = study.definition_groups(settings, term)
        if len(groups) > 1:
            split[term] = list(groups)
    named = [t for t in split if t != "total_loss"]
    if not named:
        return []
    parts = []
    for term in named:
        meanings = []
        for definition in split[term]:
            for d in definition:  # () for the settings whose variant logs no such term
                meanings.append(f"`{d.argument}={d.value}`: {d.meaning}")
        parts.append(f"test {term} is " + "; ".join(meanings))
    columns = " and ".join(f"test {t}" for t in (["total_loss"] if "total_loss" in split else []) + named)
    return ["Not one quantity down a column: " + ". ".join(parts) + (
        "; test total_loss adds it, times the setting's weight" if "total_loss" in split else "")
        + f". Compare {columns} only between rows of one definition (the figures draw each in its own panel).", ""]


def _n(setting):
    return f"{setting.n} (exact)" if setting.exact else str(setting.n)


def _per_seed(setting, field):
    values = [r.get(field) for r in setting.runs]
    if all(v is None for v in values):
        return "–"
    return ", ".join(fmt(v) for v in values)


def convergence_table(study):
    """Epochs run and the kept epoch per seed; whether a seed reached the cap still improving, and by how much."""
    settings = [s for s in study.settings() if any(isinstance(r.get("epochs_run"), int) for r in s.runs)]
    if not settings:
        return []
    rows = []
    for s in settings:
        improving = [r for r in s.runs if r.get("still_improving")]
        recent = [r["recent_improvement"] for r in improving if isinstance(r.get("recent_improvement"), (int, float))]
        flag = "no" if not improving else (f"**yes**: {len(improving)} of {s.n} seeds" + (
            f", best fell {100 * max(recent):.2g} % over the last epochs" if recent else ""))
        rows.append((s.label, _n(s), fmt(s.runs[0].get("epochs")), _per_seed(s, "epochs_run"),
                     _per_seed(s, "best_epoch"), sum(bool(r.get("stopped_early")) for r in s.runs), flag))
    return ["### Convergence", "",
            "Per seed (in seed order): the epochs trained and the kept epoch (the lowest validation L_total: the "
            "weights the test measures). A setting is marked when a seed reached the epoch cap while still improving: "
            "its numbers may be short of convergence.", "",
            table(("setting", "n", "epoch cap", "epochs run", "kept epoch", "stopped early", "at the cap, still "
                   "improving"), rows), ""]


#: a code "carries no class information" when its k-NN accuracy is at most this many times chance (1 / classes)
CHANCE_FACTOR = 2.0


def chance_accuracy(record) -> float | None:
    """1 / the number of classes of ``record``'s dataset (``None``: a dataset keraszoo does not know)."""
    from keraszoo.data.catalog import dataset_info

    try:
        return 1.0 / dataset_info(str(record.get("dataset"))).num_classes
    except ValueError:  # a dataset keraszoo does not know
        return None


def conditioned_on_labels(variant) -> bool:
    """Whether ``variant`` takes the class label beside its code (the conditional VAE): its code need not carry it."""
    cls = variant_class(variant)
    return cls is not None and bool(cls.requires_labels)


def uninformative_runs(study) -> list:
    """The runs whose test k-NN accuracy is at most :data:`CHANCE_FACTOR` times chance: a collapsed code (a
    saturated or dead bottleneck, a posterior equal to its prior) that the setting means below still include. Not
    a variant that is given the label (:func:`conditioned_on_labels`): a code free of the class is its aim."""
    out = []
    for r in study.runs:
        knn, chance = study.test_value(r, "knn_accuracy"), chance_accuracy(r)
        if (is_number(knn) and chance is not None and knn <= CHANCE_FACTOR * chance
                and not conditioned_on_labels(r.get("variant"))):
            out.append(r)
    return out


def uninformative_codes(study):
    """Every run whose code carries no class information, with its setting and seed: a failure a mean over seeds
    hides (one collapsed seed of three widens an interval; it does not say what happened)."""
    bad = uninformative_runs(study)
    if not bad:
        return []
    rows = [(r["run_id"], study.label(r), seed_of(r), fmt(study.test_value(r, "knn_accuracy")),
             fmt(study.test_value(r, "total_loss")), r.get("epochs_run")) for r in bad]
    return ["### Runs whose code carries no class information", "",
            f"{len(bad)} of {len(study.runs)} runs ended with a test k-NN accuracy at most {CHANCE_FACTOR:g} times "
            "chance (1 / the number of classes): their codes do not tell the classes apart, a collapsed bottleneck. "
            "The tables' means over seeds include them.", "",
            table(("run", "setting", "seed", "knn_accuracy", "test total_loss", "epochs run"), rows), ""]


def other_metrics(study):
    terms = study.terms
    others = sorted({k for r in study.runs for k, v in r.get("test", {}).items()  # anomaly_*: the one-class tables
                     if k not in terms and not k.startswith("anomaly_") and isinstance(v, (int, float))
                     and not isinstance(v, bool)})
    if not others:
        return []
    settings = study.settings()
    columns = _identical_merged(study, others)
    lines = ["### Other test metrics (mean ± 95 % over seeds)", ""]
    for i in range(0, len(columns), TABLE_COLUMNS):  # tables of at most TABLE_COLUMNS metrics stay readable
        chunk = columns[i : i + TABLE_COLUMNS]
        rows = [[s.label, _n(s)] + [s.interval(lambda r, k=k: study.test_value(r, k)).text() for k, _ in chunk]
                for s in settings]
        lines += [table(["setting", "n", *(" = ".join([k, *same]) for k, same in chunk)], rows), ""]
    return lines


def _identical_merged(study, names) -> list:
    """``[(metric, [the metrics equal to it in every run, to float32 precision])]``: names that measure the same thing
    here (a sparse code's mean activation, logged by the model in float32 and measured by a probe in float64, and its
    mean absolute activation, when the code is non-negative) share one column."""
    columns = []  # [name, aliases, values]
    for name in names:
        values = np.array([study.test_value(r, name) for r in study.runs], dtype="float64")
        for column in columns:
            if np.allclose(column[2], values, rtol=1e-6, atol=0.0, equal_nan=True):  # float32 against float64
                column[1].append(name)
                break
        else:
            columns.append([name, [], values])
    return [(name, same) for name, same, _ in columns]


def _median_range(values: dict) -> str:
    """``median (min–max)`` of a setting's timings: a loaded machine's times are skewed, a t-interval misleads."""
    values = sorted(float(v) for v in values.values() if is_number(v))
    if not values:
        return "–"
    median = fmt(statistics.median(values))
    return median if len(values) == 1 else f"{median} ({fmt(values[0])}–{fmt(values[-1])})"


def size_and_time(study):
    rows = []
    for s in study.settings():
        params = sorted({r.get("num_params") for r in s.runs if r.get("num_params") is not None})
        rows.append((s.label, _n(s), "–" if not params else fmt(params[0]) if len(params) == 1 else
                     f"{fmt(params[0])}–{fmt(params[-1])}",
                     _median_range(s.values(lambda r: study.run_value(r, "seconds_per_epoch"))),
                     _median_range(s.values(lambda r: study.run_value(r, "train_seconds")))))
    seconds = [r["train_seconds"] for r in study.runs if is_number(r.get("train_seconds"))]
    total = (f"Training took {sum(seconds) / 3600:.1f} hours in all, summed over the {len(seconds)} runs that "
             "record it (`train_seconds`: the fit alone, without the evaluation; each run on its worker's share of "
             "the cores). " if seconds else "")
    return ["### Size and training time", "",
            total + "Times were taken on a shared, loaded machine: they are noisy, and no setting is ranked by them.",
            "", table(["setting", "n", "parameters", "s/epoch: median (range)", "train s: median (range)"], rows), ""]


def runs_table(study):
    """Every run's own numbers (collapsed)."""
    rows = []
    for s in study.settings():
        for r in s.runs:
            rows.append((r["run_id"], s.label, "– (exact)" if s.exact else seed_of(r),
                         study.test_value(r, "total_loss"), study.train_value(r, "total_loss"), r.get("epochs_run"),
                         r.get("best_epoch"), r.get("seconds_per_epoch")))
    return ["<details><summary>Every run</summary>", "",
            table(("run", "setting", "seed", "test total_loss", "train total_loss (kept epoch)", "epochs run",
                   "kept epoch", "s/epoch"), rows), "", "</details>", ""]


def _anomaly_tables(study) -> list:
    """The one-class benchmark's tables (keraszoo.anomaly.report): AUROC and AP per class, the literature, a summary."""
    from keraszoo.anomaly import report as anomaly_report

    dataset = str(study.runs[0].get("dataset", "mnist")) if study.runs else "mnist"
    parts = (anomaly_report.auroc_table(study.runs, dataset), anomaly_report.ap_table(study.runs, dataset),
             anomaly_report.literature_section(dataset))
    return ["### One-class detection", ""] + [line for part in parts if part for line in (part, "")]


#: study name -> tables of its own after the generic ones (a user's study gets the generic ones only).
STUDY_TABLES = {"anomaly": _anomaly_tables, "anomaly_cifar10": _anomaly_tables}
