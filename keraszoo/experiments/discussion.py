"""The report's discussion: sentences computed from a study's numbers, none written by hand.

Every number is a setting's mean over its seeds with its 95 % interval, and every ordering, trend or "lowest"
is stated only when it holds across seeds (:func:`keraszoo.experiments.stats.compare`: a paired t-test over the
same seeds, intervals apart, or an exact reference outside an interval); otherwise the sentence says that no
difference was detected at that number of seeds. Loss values are compared only within one likelihood (their
units differ: ``StudyRuns.panels``). Timings are never ranked: they were measured on a shared, loaded machine.

In order: how many seeds; per likelihood, the lowest test reconstruction error and the trends of each term along
the swept numeric argument (and the models beside their classical references at each size); the code-quality
metrics; each setting beside the study's baselines (its spec's ``baselines``: reference runs named by their
arguments); what the study asks (:data:`STUDY_DISCUSSION`); convergence (the epoch cap, still improving); test
against validation L_total; training times.
"""

from __future__ import annotations

from keraszoo.experiments import stats
from keraszoo.experiments.probes import DENOISED_KEY
from keraszoo.experiments.probes import strongest_test_noise
from keraszoo.experiments.tables import CHANCE_FACTOR
from keraszoo.experiments.tables import uninformative_runs
from keraszoo.experiments.view import StudyRuns
from keraszoo.experiments.view import fmt
from keraszoo.experiments.view import is_number
from keraszoo.experiments.view import lines_of
from keraszoo.experiments.view import variant_class
from keraszoo.experiments.view import x_key

#: metrics where higher is better, compared across the whole study (their units do not depend on the likelihood).
HIGHER_IS_BETTER = (("psnr_db", "test PSNR (dB)"), ("knn_accuracy", "k-NN accuracy of the test codes"),
                    ("linear_probe_accuracy", "linear-probe accuracy of the test codes"))


def _test(study, term):
    return lambda r: study.test_value(r, term)


def seeds_text(settings) -> str:
    """``"3 seeds"``, ``"1 to 3 seeds"`` (the deterministic references aside; all of them: ``"exact values"``)."""
    if settings and all(s.exact for s in settings):
        return "exact values"
    ns = sorted({s.n for s in settings if not s.exact}) or [1]
    text = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]} to {ns[-1]}"
    return f"{text} seed{'s' if ns[-1] != 1 else ''}"


def _names(settings, limit=5):
    """The settings' labels, ``; ``-separated (a label holds commas)."""
    names = [s.label for s in settings]
    return "; ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _how(comparisons) -> str:
    """How a set of detected comparisons was decided: ``"paired over 3 seeds, every p ≤ 0.04"``, ..."""
    parts = []
    paired = [c for c in comparisons if c.method == "paired"]
    if paired:
        worst = max(c.p_value for c in paired)
        ns = sorted({c.n for c in paired})
        parts.append(f"paired over {'/'.join(map(str, ns))} seeds, " + (
            "every seed agrees" if worst == 0 else f"every p ≤ {worst:.2g}"))
    if any(c.method == "intervals" for c in comparisons):
        parts.append("95 % intervals apart")
    if any(c.method == "exact" for c in comparisons):
        parts.append("an exact reference outside the other's 95 % interval")
    if any(c.method == "exact values" for c in comparisons):
        parts.append("exact values")
    return "; ".join(parts)


def _seeds_sentence(study, settings):
    runs = sum(s.n for s in settings)
    exact = " (the deterministic baselines: one run each)" if any(s.exact for s in settings) and \
        not all(s.exact for s in settings) else ""
    out = (f"{len(settings)} settings, {runs} runs: each setting ran with {seeds_text(settings)}{exact}. Numbers are means "
           "with 95 % Student-t intervals over the seeds; an ordering is stated only when it holds across seeds (a "
           f"paired t-test over the same seeds at p < {stats.ALPHA:g}, or intervals apart), else the sentence says that "
           "no difference was detected.")
    if all(s.n < 2 for s in settings if not s.exact):
        out += " With one seed per setting no ordering can be stated."
    return out


def best_of(study, settings, value_of, what, lower=True, edge=False):
    """The setting of the lowest (``lower``) or highest mean, named best only when it differs from every other."""
    scored = [(s, s.interval(value_of)) for s in settings]
    scored = [(s, iv) for s, iv in scored if iv.n]
    if len(scored) < 2:
        return []
    best, biv = (min if lower else max)(scored, key=lambda p: p[1].mean)
    word = "lowest" if lower else "highest"
    comparisons = [(s, stats.compare(best.values(value_of), s.values(value_of), best.exact, s.exact))
                   for s, _ in scored if s is not best]
    undetected = [s for s, c in comparisons if not c.detected or (c.sign > 0) == lower]
    if undetected:
        return [f"The {word} mean {what} is {biv} ({best.label}), but no difference was detected at "
                f"{seeds_text([best] + undetected)} from {_names(undetected)}: no setting is best."]
    out = [f"{what[0].upper()}{what[1:]} is {word} for {best.label} ({biv}), "
           f"{'below' if lower else 'above'} "
           f"{'the other setting' if len(comparisons) == 1 else f'each of the other {len(comparisons)} settings'} "
           "across seeds "
           f"({_how([c for _, c in comparisons])})."]
    key = x_key(study, [s for s, _ in scored])
    if edge and key is not None and best.params.get(key) is not None:
        xs = sorted({float(s.params[key]) for s, _ in scored if s.params.get(key) is not None})
        if len(xs) > 2 and float(best.params[key]) in (xs[0], xs[-1]):
            out.append(f"That lowest {what} sits at the edge of the sweep ({key}={fmt(best.params[key])}): the next "
                       "settings to try lie beyond it.")
    return out


def _same_as_reconstruction(study, runs):
    return all(study.test_value(r, "total_loss") == study.test_value(r, "reconstruction_loss") for r in runs)


def trends(study, settings, likelihood):
    """Per line along the swept numeric argument: each term's trend, stated only as far as the seeds carry it."""
    key = x_key(study, settings)
    if key is None:
        return []
    lines, _ = lines_of(study, settings, key)
    out = []
    for label, line in lines:
        if len(line) < 2:
            continue
        # the likelihood is named: a study with two panels states each term's trend twice
        # (a penalty's unit is its own: the likelihood names the runs' panel, not the term's unit)
        who = f" ({label}; runs on the {likelihood})" if label != "all settings" else f" (runs on the {likelihood})"
        runs = [r for s in line for r in s.runs]
        for term in study.terms:
            if term == "total_loss" and _same_as_reconstruction(study, runs):
                continue
            fn = _test(study, term)
            ivs = [s.interval(fn) for s in line]
            if any(not iv.n for iv in ivs):
                continue
            xs = [fmt(s.params[key]) for s in line]
            steps = [stats.compare(b.values(fn), a.values(fn), b.exact, a.exact) for a, b in zip(line, line[1:])]
            ends = stats.compare(line[-1].values(fn), line[0].values(fn), line[-1].exact, line[0].exact)
            n = seeds_text(line)
            if len(line) > 2 and all(c.detected for c in steps) and len({c.sign for c in steps}) == 1:
                out.append(f"Test {term}{who} {'rises' if steps[0].sign > 0 else 'falls'} with {key} at every step, "
                           f"from {ivs[0]} at {xs[0]} to {ivs[-1]} at {xs[-1]} (each step detected: {_how(steps)}).")
            elif ends.detected:
                undetected = sum(not c.detected for c in steps)
                tail = (f"; {undetected} of the {len(steps)} steps between are not detected at {n}"
                        if len(steps) > 1 and undetected else "")
                out.append(f"Test {term}{who} is {'higher' if ends.sign > 0 else 'lower'} at {key}={xs[-1]} "
                           f"({ivs[-1]}) than at {xs[0]} ({ivs[0]}; {ends.describe()}){tail}.")
            else:
                out.append(f"Test {term}{who}: no difference was detected at {n} between {key}={xs[0]} ({ivs[0]}) "
                           f"and {key}={xs[-1]} ({ivs[-1]}).")
    return out


def versus_classical(study, settings, likelihood):
    """The models beside each classical reference (PCA, the linear autoencoder) at every size they share."""
    key = x_key(study, settings)
    if key is None:
        return []
    lines, _ = lines_of(study, settings, key)
    references = [(label, line) for label, line in lines if all(s.title for s in line)]
    models = [(label, line) for label, line in lines if not any(s.title for s in line)]
    fn = _test(study, "reconstruction_loss")
    out = []
    for ref_label, ref_line in references:
        at = {float(s.params[key]): s for s in ref_line}
        for label, line in models:
            verdicts = {"lower": [], "higher": [], "none": []}
            for s in line:
                ref = at.get(float(s.params[key]))
                if ref is None or not s.values(fn) or not ref.values(fn):
                    continue
                c = stats.compare(s.values(fn), ref.values(fn), s.exact, ref.exact)
                verdicts["none" if not c.detected else "lower" if c.sign < 0 else "higher"].append(fmt(s.params[key]))
            if not any(verdicts.values()):
                continue
            parts = [f"{word} at {key} {', '.join(xs)}" for word, xs in (("lower", verdicts["lower"]),
                                                                          ("higher", verdicts["higher"])) if xs]
            if verdicts["none"]:
                parts.append(f"no difference was detected at {key} {', '.join(verdicts['none'])} "
                             f"({seeds_text(line)})")
            out.append(f"Test reconstruction_loss ({likelihood}) of {label} against {ref_label}: {'; '.join(parts)}.")
    return out


def versus_baselines(study, metrics):
    """Each setting's ``metrics`` beside each of the study's baselines, in per cent, with whether it holds across seeds.

    A baseline ``{"params": {argument: value}, "label": ...}`` is the first setting whose params hold those values;
    it is set beside every setting that sets all of those arguments (a ``model``: every setting of a study that
    names its models; ``{"contractive_weight": 0}``: the settings with a contractive weight). A loss is set beside
    the baseline's only in the same likelihood.
    """
    out = []
    settings = study.settings()
    for baseline in study.baselines:
        wanted = baseline["params"]
        compared = [s for s in settings if all(k in s.params for k in wanted)]
        base = next((s for s in compared if all(s.params[k] == v for k, v in wanted.items())), None)
        if base is None:
            continue
        for metric in metrics:
            fn = _test(study, metric)
            biv = base.interval(fn)
            if not biv.n or biv.mean == 0:
                continue
            for s in compared:
                iv = s.interval(fn)
                if s is base or not iv.n or (metric.endswith("_loss") and s.likelihood != base.likelihood):
                    continue
                c = stats.compare(s.values(fn), base.values(fn), s.exact, base.exact)
                # a decibel is a log ratio already: its difference is stated in dB, not in per cent of a dB value
                change = (f"{'+' if iv.mean >= biv.mean else ''}{fmt(iv.mean - biv.mean)} dB" if metric.endswith("_db") else
                          f"{100 * (iv.mean - biv.mean) / abs(biv.mean):+.1f} %")
                out.append(f"{_metric_name(metric)}: {s.label} {iv} against {baseline['label']} {biv} "
                           f"({change}; {c.describe()}){_noisy_input(study, base, metric)}.")
    return out


def _metric_name(metric) -> str:
    """``denoised_psnr_gaussian_0.5_db`` as a reader says it; other metrics by their key."""
    m = DENOISED_KEY.match(metric)
    return f"PSNR (dB) of denoised test images, {m['noise'].replace('_', '-')} noise {m['level']}" if m else metric


def _noisy_input(study, base, metric) -> str:
    """``; the noisy input: X dB`` beside a denoised PSNR (the level a denoiser has to beat), when the runs record it."""
    if not DENOISED_KEY.match(metric):
        return ""
    iv = base.interval(_test(study, "noisy_" + metric[len("denoised_"):]))
    return f"; the noisy input itself: {fmt(iv.mean)} dB" if iv.n else ""


def _strongest_noise(study):
    """``denoised_psnr_<noise>_<level>_db`` at the highest test-time level of each noise type the runs report."""
    return [f"denoised_psnr_{noise}_{level:g}_db" for noise, level in sorted(strongest_test_noise(study.runs).items())]


def range_of(study, metrics):
    """Each metric's lowest and highest setting mean, and whether those two differ across seeds."""
    out = []
    for metric in metrics:
        fn = _test(study, metric)
        scored = [(s, s.interval(fn)) for s in study.settings()]
        scored = [(s, iv) for s, iv in scored if iv.n]
        if len(scored) < 2:
            continue
        (lo, ilo), (hi, ihi) = min(scored, key=lambda p: p[1].mean), max(scored, key=lambda p: p[1].mean)
        c = stats.compare(hi.values(fn), lo.values(fn), hi.exact, lo.exact)
        verdict = f"the two differ across seeds: {c.describe()}" if c.detected else c.describe().replace(
            "no difference detected", "no difference between them was detected")
        out.append(f"{metric}: setting means from {ilo} ({lo.label}) to {ihi} ({hi.label}); {verdict}.")
    return out


#: study name -> the metrics its settings are set beside its baselines on (others: L_total and the reconstruction).
BASELINE_METRICS = {
    "contractive": lambda study: ("jacobian_frobenius", "code_shift_relative", "reconstruction_loss"),
    "noise": _strongest_noise,
}

#: study name -> extra sentences about what that study asks (a user's study gets the generic ones only).
STUDY_DISCUSSION = {
    "beta": lambda study: range_of(study, ("active_units", "kl_loss", "negative_elbo_nats")),
    "sparsity": lambda study: range_of(study, ("mean_code_activation", "near_zero_code_fraction")),
    "latent": lambda study: range_of(study, ("knn_accuracy",)),
}


def uninformative(study, settings):
    """How many runs, of which settings, ended with a code that carries no class information (the report's table)."""
    scored = [r for s in settings for r in s.runs if is_number(study.test_value(r, "knn_accuracy"))]
    if not scored:
        return []
    bad = {id(r) for r in uninformative_runs(study)}
    hit = [(s, sum(id(r) in bad for r in s.runs)) for s in settings]
    hit = [(s, k) for s, k in hit if k]
    if not hit:
        return [f"Every run's code carries class information (k-NN accuracy above {CHANCE_FACTOR:g} times chance)."]
    return [f"{sum(k for _, k in hit)} of {len(scored)} runs ended with a code that carries no class information "
            f"(k-NN accuracy at most {CHANCE_FACTOR:g} times chance): "
            + "; ".join(f"{s.label}, {k} of {s.n} seeds" for s, k in hit)
            + ". Their settings' means include them, so an interval there is wide because a seed failed."]


def convergence(study, settings):
    """How the runs ended: stopped early, or at the epoch cap still improving (possibly short of convergence)."""
    runs = [r for s in settings for r in s.runs if isinstance(r.get("epochs_run"), int)]
    if not runs:
        return []
    early = sum(bool(r.get("stopped_early")) for r in runs)
    best = [r["best_epoch"] for r in runs if isinstance(r.get("best_epoch"), int)]
    out = [f"{early} of {len(runs)} runs stopped early" + (f" (kept epochs {min(best)} to {max(best)})" if best else "")
           + "."]
    # every setting that trained under the cap (the linear autoencoder too), not PCA's exact fit
    trained = [s for s in settings if not s.exact and any(isinstance(r.get("epochs_run"), int) for r in s.runs)]
    flagged = [(s, [r for r in s.runs if r.get("still_improving")]) for s in trained]
    flagged = [(s, rs) for s, rs in flagged if rs]
    if flagged:
        recent = [r["recent_improvement"] for _, rs in flagged for r in rs
                  if isinstance(r.get("recent_improvement"), (int, float))]
        caps = sorted({r.get("epochs") for _, rs in flagged for r in rs if r.get("epochs")})
        by = f" (its best validation loss fell by up to {100 * max(recent):.2g} % over its last epochs)" if recent else ""
        which = "settings" if len(trained) == len(settings) else "trained settings"
        out.append(f"{len(flagged)} of {len(trained)} {which} had a seed reach the epoch cap "
                   f"({', '.join(map(str, caps)) or '?'}) still improving{by}: {_names([s for s, _ in flagged])}. "
                   "Their numbers may be short of convergence.")
    else:
        out.append("No run reached the epoch cap while still improving.")
    return out


def validates_on_clean_images(variant) -> bool:
    """Whether ``variant``'s validation loss is on the held-out images as given, like its test loss (a DAE's is
    on corrupted copies: it overrides ``prepare_validation_data``)."""
    from keraszoo.models.checked_training import CheckedTrainingMixin

    cls = variant_class(variant)
    if cls is None:
        return False
    hook = getattr(cls, "prepare_validation_data", None)
    return hook is None or hook is CheckedTrainingMixin.prepare_validation_data


def val_test_gap(study, panels):
    """Test against validation L_total of the kept epoch: the same weights on two held-out sets of clean images
    (a denoising model's training loss sees corrupted inputs, so no train/test gap is compared; nor is its
    validation loss, on corrupted copies, set against its test loss on clean images)."""
    out = []
    for likelihood, every in panels.items():
        def gap(r):
            return study.test_value(r, "total_loss") - study.val_value(r, "total_loss")

        settings = [s for s in every if all(validates_on_clean_images(r.get("variant")) for r in s.runs)]
        if len(settings) < len(every):
            left = sorted({str(r.get("variant")) for s in every if s not in settings for r in s.runs})
            out.append(f"Test minus validation L_total ({likelihood}) is not compared for {', '.join(left)}: its "
                       "validation loss is on corrupted copies of the held-out images, its test loss on clean ones.")
        scored = [(s, s.interval(gap)) for s in settings]
        scored = [(s, iv) for s, iv in scored if iv.n]
        if not scored:
            continue
        widest, iv = max(scored, key=lambda p: abs(p[1].mean))
        nonzero = [s for s, i in scored if i.has_width and (i.low > 0 or i.high < 0)]
        verdict = (f" The gap differs from zero across seeds for {_names(nonzero)}." if nonzero else
                   " No setting's gap differs from zero across seeds.")
        out.append(f"Test minus validation L_total at the kept epoch ({likelihood}; both on clean held-out images, "
                   f"with the same weights): the widest gap is {iv} ({widest.label}).{verdict}")
    return out


def timing(study, settings):
    means = [(s, s.interval(lambda r: study.run_value(r, "seconds_per_epoch"))) for s in settings]
    means = [(s, iv) for s, iv in means if iv.n]
    if len(means) < 2:
        return []
    lo, hi = min(iv.mean for _, iv in means), max(iv.mean for _, iv in means)
    return [f"Training took {lo:.3g} to {hi:.3g} s/epoch (setting means). The timings were taken on a shared, loaded "
            "machine and are noisy: no setting is ranked by time."]


def discussion(study: StudyRuns):
    """Sentences computed from the study's numbers."""
    settings = study.settings()
    if not settings:
        return []
    out = [_seeds_sentence(study, settings)]
    if study.one_class:  # the settings differ in their normal class: compare detectors, not losses
        from keraszoo.anomaly.report import summary

        dataset = str(study.runs[0].get("dataset", "mnist"))
        return out + summary(study.runs, dataset) + convergence(study, settings) + timing(study, settings)
    panels = study.panels(settings)
    for likelihood, same in panels.items():
        out += best_of(study, same, _test(study, "reconstruction_loss"),
                       f"test reconstruction_loss ({likelihood})", lower=True, edge=True)
        out += trends(study, same, likelihood)
        out += versus_classical(study, same, likelihood)
    for metric, what in HIGHER_IS_BETTER:
        out += best_of(study, settings, _test(study, metric), what, lower=False)
    if study.baselines:
        metrics = BASELINE_METRICS.get(study.name, lambda study: ("total_loss", "reconstruction_loss"))(study)
        out += versus_baselines(study, metrics)
    out += STUDY_DISCUSSION.get(study.name, lambda study: [])(study)
    out += uninformative(study, settings)
    out += convergence(study, settings)
    out += val_test_gap(study, panels)
    out += timing(study, settings)
    return out
