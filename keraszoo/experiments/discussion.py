"""The report's discussion: sentences computed from a study's numbers, none written by hand.

For every group of runs: the lowest and highest reconstruction error and L_total (runs of different
likelihoods apart: ``model.reconstruction_description()``), the trends of each term along the swept setting,
the best code-quality metrics; then each run's strengths, the runs beside the study's baselines (its spec's
``baselines``: reference runs named by their arguments), what the study asks (:data:`STUDY_DISCUSSION`),
training times and the widest train/test gap.
"""

from __future__ import annotations

import math
import re

import numpy as np

from keraszoo.experiments.view import StudyRuns
from keraszoo.experiments.view import fmt
from keraszoo.experiments.view import group_by


def _trend(xs, ys):
    pairs = sorted((x, y) for x, y in zip(xs, ys) if math.isfinite(y))
    if len(pairs) < 3:
        return None
    diffs = np.diff([y for _, y in pairs])
    if np.all(diffs > 0):
        return "rises"
    if np.all(diffs < 0):
        return "falls"
    return "is not monotone"


def _extremes(study, runs, term, what, who, edge):
    """The lowest and highest test ``term`` among ``runs``, and whether the lowest sits at the sweep's edge."""
    scored = [(study.test_value(r, term), r) for r in runs if math.isfinite(study.test_value(r, term))]
    if len(scored) < 2:
        return []
    (low, best), (high, worst) = min(scored, key=lambda s: s[0]), max(scored, key=lambda s: s[0])
    out = [f"Lowest test {what}{who}: {study.label(best)} with {low:.4g}, {high - low:.4g} "
           f"({100 * (high - low) / max(abs(high), 1e-12):.1f} %) below the highest, {study.label(worst)} ({high:.4g})."]
    swept = study.swept
    if edge and swept and all(isinstance(r["params"].get(swept[0]), (int, float)) for r in runs):
        xs = [r["params"].get(swept[0]) for r in runs]
        at = best["params"].get(swept[0])
        if at in (min(xs), max(xs)) and len(set(xs)) > 2:
            out.append(f"The best reconstruction{who} sits at the edge of the sweep ({swept[0]}={fmt(at)}): "
                       "the next settings to try lie beyond it.")
    return out


#: metrics a run can be strongest or weakest in across a study: name -> +1 (higher is better) or -1.
RANKED = {"psnr_db": 1, "knn_accuracy": 1, "linear_probe_accuracy": 1, "active_units": 1, "seconds_per_epoch": -1,
          "num_params": -1}


def _strengths(study):
    """Per run (studies of 3 runs or more): the metrics of :data:`RANKED` it is best and worst in."""
    if len(study.runs) < 3:
        return []
    best, worst = {}, {}
    for metric, sign in RANKED.items():
        scored = [(sign * v, r["run_id"]) for r in study.runs
                  for v in [r.get(metric) if metric in ("seconds_per_epoch", "num_params") else study.test_value(r, metric)]
                  if isinstance(v, (int, float)) and math.isfinite(v)]
        values = [v for v, _ in scored]
        if len(scored) < 3:
            continue
        # A best or worst shared by several runs (every run has the same size) names none of them.
        if values.count(max(values)) == 1:
            best.setdefault(max(scored)[1], []).append(metric)
        if values.count(min(values)) == 1:
            worst.setdefault(min(scored)[1], []).append(metric)
    out = []
    for r in study.runs:
        parts = ([f"best in {', '.join(best[r['run_id']])}"] if r["run_id"] in best else []) + (
            [f"worst in {', '.join(worst[r['run_id']])}"] if r["run_id"] in worst else [])
        if parts:
            out.append(f"{study.label(r)}: {'; '.join(parts)} (of the {len(study.runs)} runs).")
    return out


def _versus(study, metrics, base, base_name, runs):
    """Each of ``runs`` beside ``base`` (a run, or ``None``: nothing to say), in per cent."""
    if base is None:
        return []
    out = []
    for metric in metrics:
        ref = study.test_value(base, metric)
        if not math.isfinite(ref) or ref == 0:
            continue
        for r in runs:
            value = study.test_value(r, metric)
            if r is not base and math.isfinite(value):
                out.append(f"{metric}: {study.label(r)} {value:.4g} against {base_name} {ref:.4g} "
                           f"({100 * (value - ref) / abs(ref):+.1f} %).")
    return out


def versus_baselines(study, metrics):
    """Each run's ``metrics`` beside each of the study's baselines, in per cent.

    A baseline ``{"params": {argument: value}, "label": ...}`` is the first run whose params hold those values;
    it is set beside every run that sets all of those arguments (a ``model``: every run of a study that names
    its models; ``{"contractive_weight": 0}``: the runs with a contractive weight).
    """
    out = []
    for baseline in study.baselines:
        wanted = baseline["params"]
        compared = [r for r in study.runs if all(k in r["params"] for k in wanted)]
        base = next((r for r in compared if all(r["params"][k] == v for k, v in wanted.items())), None)
        out += _versus(study, metrics, base, baseline["label"], compared)
    return out


def _strongest_noise(study):
    """``denoised_psnr_<noise>_<level>_db`` at the highest test-time level of each noise type the runs report."""
    levels = {}
    for r in study.runs:
        for key in r.get("test", {}):
            m = re.match(r"denoised_psnr_(?P<noise>[a-z_]+?)_(?P<level>[0-9.e-]+)_db$", key)
            if m and float(m["level"]) >= levels.get(m["noise"], (-1.0, ""))[0]:
                levels[m["noise"]] = (float(m["level"]), key)
    return [key for _, key in sorted(levels.values(), key=lambda v: v[1])]


def _range_of(study, metrics):
    out = []
    for metric in metrics:
        scored = [(study.test_value(r, metric), r) for r in study.runs if math.isfinite(study.test_value(r, metric))]
        if len(scored) >= 2:
            (lo, rlo), (hi, rhi) = min(scored, key=lambda s: s[0]), max(scored, key=lambda s: s[0])
            out.append(f"{metric} ranges from {lo:.4g} ({study.label(rlo)}) to {hi:.4g} ({study.label(rhi)}).")
    return out


#: study name -> the metrics its runs are set beside its baselines on (other studies: L_total and the reconstruction).
BASELINE_METRICS = {
    "contractive": lambda study: ("jacobian_frobenius", "code_shift_relative", "reconstruction_loss"),
    "noise": _strongest_noise,
}

#: study name -> extra sentences about what that study asks (a user's study gets the generic ones only).
STUDY_DISCUSSION = {
    "beta": lambda study: _range_of(study, ("active_units", "kl_loss", "negative_elbo_nats")),
    "sparsity": lambda study: _range_of(study, ("mean_code_activation", "near_zero_code_fraction")),
    "latent": lambda study: _range_of(study, ("knn_accuracy",)),
}


def discussion(study: StudyRuns):
    """Sentences computed from the study's numbers."""
    out = []
    swept = study.swept
    for group, runs in study.groups().items():
        who = f" ({group})" if group else ""
        kinds = group_by(runs, study.likelihood)
        for term, what in (("reconstruction_loss", "reconstruction error"), ("total_loss", "L_total")):
            for kind, same in sorted(kinds.items()):
                label = f"{what} ({kind}; runs of other likelihoods are not comparable)" if len(kinds) > 1 else what
                out += _extremes(study, same, term, label, who, edge=term == "reconstruction_loss")
        if swept and all(isinstance(r["params"].get(swept[0]), (int, float)) for r in runs):
            xs = [r["params"].get(swept[0]) for r in runs]
            for term in study.terms:
                trend = _trend(xs, [study.test_value(r, term) for r in runs])
                if trend and trend != "is not monotone":
                    ordered = sorted(runs, key=lambda r: r["params"].get(swept[0]))
                    lo, hi = ordered[0], ordered[-1]
                    out.append(f"Test {term}{who} {trend} with {swept[0]}: {study.test_value(lo, term):.4g} at "
                               f"{fmt(lo['params'].get(swept[0]))}, {study.test_value(hi, term):.4g} at "
                               f"{fmt(hi['params'].get(swept[0]))}.")
        for metric in ("psnr_db", "knn_accuracy", "linear_probe_accuracy"):
            scored = [(study.test_value(r, metric), r) for r in runs if math.isfinite(study.test_value(r, metric))]
            if len(scored) >= 2:
                best = max(scored, key=lambda s: s[0])
                out.append(f"Best {metric.replace('_', ' ')}{who}: {study.label(best[1])}, {best[0]:.4g}.")
    out += _strengths(study)
    if study.baselines:
        metrics = BASELINE_METRICS.get(study.name, lambda study: ("total_loss", "reconstruction_loss"))(study)
        out += versus_baselines(study, metrics)
    out += STUDY_DISCUSSION.get(study.name, lambda study: [])(study)
    timed = [(r.get("seconds_per_epoch"), r) for r in study.runs if isinstance(r.get("seconds_per_epoch"), (int, float))]
    if len(timed) >= 2:
        fast, slow = min(timed, key=lambda t: t[0]), max(timed, key=lambda t: t[0])
        out.append(f"Training took {fast[0]:.3g} s/epoch ({study.label(fast[1])}) to {slow[0]:.3g} s/epoch "
                   f"({study.label(slow[1])}), {slow[0] / max(fast[0], 1e-9):.2g}x.")
    gaps = [(study.test_value(r, "total_loss") - study.train_value(r, "total_loss"), r) for r in study.runs]
    gaps = [g for g in gaps if math.isfinite(g[0])]
    if gaps:
        widest = max(gaps, key=lambda g: abs(g[0]))
        out.append(f"The widest train/test gap of L_total is {widest[0]:+.4g} ({study.label(widest[1])}).")
    return out
