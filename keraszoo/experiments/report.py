"""``keraszoo report DIR -o OUT``: a Markdown report of an experiment's ``results.jsonl``.

For every study in the file: the swept settings (a *setting* is a run's ``params`` without its seed); per
likelihood (runs whose reconstruction terms share a unit), a table of L_total and each of its terms on the test
split, each setting's mean ± 95 % interval over its seeds and n (:mod:`keraszoo.experiments.stats`); how the runs
converged (epochs run, the kept epoch, settings whose seeds reached the epoch cap still improving); the other test
metrics, the parameter counts and times; every run's own numbers; the figures of
:mod:`keraszoo.experiments.figures`; a discussion whose every sentence is computed from the numbers and states an
ordering only when it holds across seeds (:mod:`keraszoo.experiments.discussion`). Then a "Literature" section
(:mod:`keraszoo.experiments.literature`) and the consistency check of :mod:`keraszoo.experiments.consistency` for
every run, with its figure. Nothing is hard-coded: a report regenerated from the same results file is the same
report.

The report loads each run's saved model once and reads each evaluated test split once
(:class:`~keraszoo.experiments.view.SavedRuns`); the figures and the consistency check share them.

**From results.jsonl alone.** When none of the runs' folders is here (a study's ``results.jsonl`` committed beside
its report, without weights), the report is rebuilt from the lines: tables, curves, interval figures, discussion,
literature and part (a) of the consistency check (the training log against the weights the line records); the
figures drawn from saved models and part (b) are left out, each with one line saying why.

A report degrades per run: the consistency check runs first, and a run whose saved model does not load (its
folder deleted, its weights altered, its ``metadata.json`` torn) or whose numbers fail the check is listed under
"Runs left out" in its study's section with what is wrong, left out of the figures, the discussion and the
literature table (its recorded numbers stay in the tables), and fails the check; every other run is reported
in full. A run whose test split is not available here fails the check but keeps its figures. A figure that
cannot be drawn is replaced by a line saying why.
"""

from __future__ import annotations

import json
import os
import pathlib
import re

from keraszoo import output_folder
from keraszoo.experiments import consistency
from keraszoo.experiments import figures
from keraszoo.experiments import stats
from keraszoo.experiments.discussion import discussion
from keraszoo.experiments.literature import literature_section
from keraszoo.experiments.results import STUDY_FILE
from keraszoo.experiments.studies import STUDIES
from keraszoo.experiments.study import Study
from keraszoo.experiments.tables import study_tables
from keraszoo.experiments.view import SavedRuns
from keraszoo.experiments.view import StudyRuns
from keraszoo.experiments.view import fmt
from keraszoo.experiments.view import group_by
from keraszoo.experiments.view import table
from keraszoo.utils import atomic_write_text

#: the results-line fields the report reads (the runner writes more).
REQUIRED_FIELDS = ("run_id", "study", "variant", "params", "history", "test", "eval", "model_dir")

#: what a report rebuilt from results.jsonl alone leaves out, and why (one line, not one per run).
RESULTS_ONLY = "the run folders are not here (results.jsonl alone)"
#: why part (b) is not run for a run carried from another machine without its folder (keraszoo.experiments.carry)
CARRIED = "trained on another machine; only its results line was carried here (carried.json)"


def read_results(results_dir):
    """The runs of ``results_dir/results.jsonl`` (the runner's reader: the last line per run, a torn tail ignored)."""
    from keraszoo.experiments.results import read_results as read_lines

    path = pathlib.Path(results_dir) / "results.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"No results file: expected {path} (written by `keraszoo experiment ... --out {results_dir}`).")
    runs = read_lines(results_dir)
    for record in runs:
        missing = [k for k in REQUIRED_FIELDS if k not in record]
        if missing:
            raise ValueError(f"{path}: the line of run {record.get('run_id', '?')!r} lacks {', '.join(missing)}; a results "
                             f"line needs {', '.join(REQUIRED_FIELDS)}.")
    if not runs:
        raise ValueError(f"{path} holds no runs.")
    return runs


# ----------------------------------------------------------------- consistency
def consistency_section(checks, out_dir=None, results_only=False):
    lines = ["## Consistency check", "",
             f"(a) every epoch's logged `total_loss` against `reconstruction_loss + Σ w·term` (the weights the results "
             f"line records, else the saved model's `loss_weights()`) and Keras' `loss` against `total_loss`, relative "
             f"tolerance {consistency.HISTORY_RTOL:g} (float32 running means); (b) every test term the run reports, "
             "recomputed from the saved weights by keraszoo's NumPy forward pass on the same images: deterministic "
             f"terms to {consistency.TEST_RTOL:g} relative, stochastic ones within {consistency.MC_SIGMAS:g} standard "
             "errors of the Monte-Carlo difference (samples: NumPy draws per image or batch).", ""]
    if results_only:
        lines += [f"(b) was not run: {RESULTS_ONLY}; (a) reran from the lines.", ""]
    rows = []
    for c in checks:
        stochastic = sorted({t.samples for t in c.terms if t.stochastic})
        if c.not_applicable:
            a = b = result = "n/a"
        else:
            a = "pass" if c.history_ok else "FAIL"
            b = "not run" if c.test_not_run and not c.test_problems else "pass" if c.test_ok else "FAIL"
            result = "pass" if c.ok else "FAIL"
        rows.append((c.run_id, c.variant, a, c.history_max_rel, b, c.test_max_rel,
                     ", ".join(f"{t.name}{'*' if t.stochastic else ''}" for t in c.terms) or "–",
                     ",".join(map(str, stochastic)) or "–", result,
                     _cell("; ".join(c.problems()) or c.not_applicable or "") or "–"))
    lines.append(table(("run", "variant", "(a) history", "(a) max rel. err.", "(b) test", "(b) max rel. err.",
                         "terms (* stochastic)", "samples", "result", "problems"), rows))
    checked = [c for c in checks if not c.not_applicable]
    failed = [c.run_id for c in checked if not c.ok]
    lines += ["", f"**{len(checked) - len(failed)} of {len(checked)} runs pass.**" + (
        f" Failed: {', '.join(failed)}." if failed else "")]
    classical = len(checks) - len(checked)
    if classical:
        lines[-1] += (f" ({classical} classical reference run{'s' if classical > 1 else ''} (PCA, the linear "
                      "autoencoder) saved no model and log one term: not checked.)")
    lines.append("")
    if out_dir is not None:
        try:
            path = figures.consistency_figure(checks, out_dir / "figures" / "consistency.png")
        except Exception as err:  # noqa: BLE001 - one figure lost, not the report
            lines += [f"(Figure `consistency` could not be drawn: {_cell(f'{type(err).__name__}: {err}')})", ""]
        else:
            if path is not None:
                caption = ("the consistency check: (a) logged total_loss against reconstruction + Σ w·term for every "
                           "epoch; (b) every reported test term against its NumPy recomputation; dashed: y = x")
                lines += [f"![{caption}](figures/{path.name})", "", f"*{caption}.*", ""]
    return lines


def _cell(text):
    """``text`` as one line that a Markdown table cell can hold."""
    return " ".join(str(text).split()).replace("|", "/")


# ----------------------------------------------------------------- a study's tables
def _left_out_lines(left_out):
    """The "Runs left out" table of a study: ``left_out`` is ``{run_id: what is wrong}``."""
    if not left_out:
        return []
    return ["### Runs left out", "", table(("run", "what is wrong"), [(k, _cell(v)) for k, v in left_out.items()]), "",
            "Their recorded numbers stay in the tables below; the figures, the discussion and the literature table "
            "leave them out, and the consistency check fails them.", ""]


# ----------------------------------------------------------------- a study's figures
def _slug(text):
    """A likelihood as part of a file name: its ASCII head (``"squared error Σ(x − x̂)²"``: ``squared_error``)."""
    head = re.split(r"[^\x00-\x7f]", str(text))[0]
    return "_".join(re.findall(r"[a-z0-9]+", head.lower()))[:40] or "loss"


def _figure_lines(shown, out_dir):
    """The figures of the runs ``shown`` (a figure that cannot be drawn: a line saying why)."""
    if not shown.runs:
        return ["(No figures: every run of this study is left out, see above.)", ""]
    lines, fig_dir = [], out_dir / "figures"
    results_only = shown.saved is not None and shown.saved.results_only
    stem_of = _file_stem(shown.name)
    panels = group_by(shown.runs, shown.likelihood)
    left_out = []
    for figure in figures.GENERIC_FIGURES + figures.STUDY_FIGURES.get(shown.name, ()):
        if figure.needs_models and (results_only or shown.saved is None):
            left_out.append(figure.stem)
            continue
        if figure.per_likelihood:
            slugs = {}
            jobs = []
            for likelihood, runs in panels.items():
                slug = _slug(likelihood)
                slugs[slug] = slugs.get(slug, 0) + 1
                suffix = "" if len(panels) == 1 else f"_{slug}" + (f"{slugs[slug]}" if slugs[slug] > 1 else "")
                jobs.append((shown.subset(runs), f"{figure.stem}{suffix}", f"{figure.caption} ({likelihood})"))
        else:
            jobs = [(shown, figure.stem, figure.caption)]
        for ctx, stem, caption in jobs:
            try:
                path = figure.fn(ctx, fig_dir / f"{stem_of}_{stem}.png")
            except ImportError:  # no matplotlib: the one message that says what to install
                raise
            except Exception as err:  # noqa: BLE001 - one figure lost, not the report
                lines += [f"(Figure `{stem}` could not be drawn: {_cell(f'{type(err).__name__}: {err}')})", ""]
                continue
            if path is not None:
                lines += [f"![{caption}](figures/{path.name})", "", f"*{caption}.*", ""]
    if left_out:
        lines += [f"(Figures drawn from the saved models — {', '.join(left_out)} — are left out: {RESULTS_ONLY}.)", ""]
    else:
        lines += _carried_rows_note(shown)
        if shown.images(1)[0] is None and any(r.get("model_dir") for r in shown.runs):
            lines += ["(Image figures left out: the test split could not be loaded here; pass --data-dir.)", ""]
    return lines


def _carried_rows_note(shown):
    """A line under the figures when runs were carried here without their folders (:mod:`keraszoo.experiments.carry`):
    which settings the figures drawn from saved models leave out (none of their seeds has a folder here), and which
    show a later seed because the first was carried."""
    saved = shown.saved
    if saved is None or not saved.carried:
        return []
    missing, later = [], []
    for s in shown.settings():
        models = [r for r in s.runs if r.get("model_dir")]
        here = [r for r in models if not saved.carried_without_folder(r)]
        if models and not here:
            missing.append(s.label)
        elif here and here[0] is not models[0]:
            later.append(s.label)
    parts = []
    if missing:
        parts.append(f"{len(missing)} setting(s) have no saved model here, every seed of theirs was carried from another "
                     f"machine as its results line (carried.json), so the figures drawn from saved models have no row "
                     f"or panel for them: {'; '.join(missing)}")
    if later:
        parts.append(f"for {'; '.join(later)} they show a later seed (the first was carried without its folder)")
    return [f"({'. '.join(p[0].upper() + p[1:] for p in parts)}.)", ""] if parts else []


def _study_section(study, shown, left_out, out_dir):
    """The section of ``study`` (all its runs, for the tables); ``shown``: its runs not ``left_out``."""
    lines = [f"## Study `{study.name}`", ""]
    if study.spec is not None and getattr(study.spec, "description", ""):
        lines += [f"*{study.spec.description}*", ""]
    swept = study.swept
    settings = study.settings()
    ns = sorted({s.n for s in settings if not s.exact})
    lines.append(f"{len(study.runs)} runs in {len(settings)} settings ({', '.join(map(str, ns)) or '1'} seed"
                 f"{'s' if ns and ns[-1] > 1 else ''} each); swept: {', '.join(f'`{k}`' for k in swept) or 'nothing (one setting)'}; "
                 f"variants: {', '.join(sorted({str(r['variant']) for r in study.runs}))}; dataset: "
                 f"{', '.join(sorted({str(r.get('dataset', '?')) for r in study.runs}))}; test: first "
                 f"{', '.join(sorted({str(r['eval'].get('num_examples')) for r in study.runs}))} images of "
                 f"{', '.join(sorted({str(r['eval'].get('split')) for r in study.runs}))}.")
    fixed = study.fixed_by_model()
    if fixed:
        lines[-1] += (" Arguments a model sets alike in all its runs, left out of its labels: "
                      + "; ".join(f"{m}: {text}" for m, text in fixed.items()) + ".")
    lines.append("")
    lines += _left_out_lines(left_out)
    lines += study_tables(study)
    lines += ["### Figures", ""] + _figure_lines(shown, out_dir)
    lines += ["### Discussion", ""] + [f"- {s}" for s in (discussion(shown) if shown.runs else [])] + [""]
    return lines


def _sweep_record(results_dir) -> dict:
    """The folder's ``study.json`` (written by ``keraszoo experiment``; ``{}`` when absent or unreadable)."""
    try:
        record = json.loads((pathlib.Path(results_dir) / STUDY_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _spec_of(name, sweep) -> Study | None:
    """The study spec of the runs of study ``name``: a built-in's own, else the one ``study.json`` records."""
    if name in STUDIES:
        return STUDIES[name]
    spec = sweep.get("spec")
    if isinstance(spec, dict) and spec.get("name") == name:
        try:
            return Study.from_dict(spec)
        except ValueError:  # a spec this keraszoo no longer reads: no baselines
            return None
    return None


def _provenance(runs, results_dir, sweep=None, saved=None):
    """The commands that wrote the runs (``sweep``: the folder's ``study.json``; ``saved``: its :class:`SavedRuns`;
    each read when not given)."""
    sweep = _sweep_record(results_dir) if sweep is None else sweep
    spec_file = sweep.get("spec_file")  # a user's study is rerun from its spec file (the runner records its path)
    lines = []
    for (study, dataset, budget), group in sorted(group_by(runs, lambda r: (r["study"], r.get("dataset"), r.get("budget"))).items(),
                                                  key=lambda kv: tuple(map(str, kv[0]))):
        versions = sorted({str(r.get("keraszoo_version")) for r in group})
        name = spec_file if spec_file and study not in STUDIES else study
        lines.append(f"- `keraszoo experiment {name} --dataset {dataset} --budget {budget} --out {results_dir}` "
                     f"({len(group)} runs, keraszoo {', '.join(versions)}, finished "
                     f"{max(str(r.get('finished_at')) for r in group)})")
    retrained = [e for e in sweep.get("retrained") or [] if isinstance(e, dict) and e.get("run_id")]
    for reason, group in group_by(retrained, lambda e: str(e.get("reason"))).items():
        ids = sorted({str(e["run_id"]) for e in group})
        lines.append(f"- {len(ids)} run(s) trained again with `--retrain` ({reason}; the first training is kept in "
                     f"the sweep's `superseded/`): " + ", ".join(f"`{i}`" for i in ids))
    saved = SavedRuns(results_dir) if saved is None else saved
    carried = [r for r in runs if saved.carried_without_folder(r)]
    if carried:
        lines.append(f"- {len(carried)} run(s) trained on another machine and carried here as their results lines alone "
                     "(`carried.json`; see `keraszoo.experiments.carry`): their consistency check reads the training log "
                     "only, and the image figures show another seed of their setting: "
                     + ", ".join(f"`{r['run_id']}`" for r in carried))
    return lines


def _how_to_read(results_only):
    lines = ["How to read it: a *setting* is a run's arguments without its seed; its runs differ only in the seed. "
             f"Tables and figures show each setting's mean over its seeds with a {100 * stats.LEVEL:g} % Student-t interval "
             "(`mean ± half-width`; one seed: the value and `n=1`, no interval; PCA is exact: one run stands for every "
             "seed) and n. The discussion states an ordering only when it holds across seeds. Losses of different "
             "likelihoods (Bernoulli NLL in nats, squared error, ...) never share a table column or an axis. Timings "
             "come from a shared, loaded machine: noisy, never ranked.", ""]
    if results_only:
        lines += ["This report was rebuilt from `results.jsonl` alone (the run folders, with the saved models, are "
                  "not here): the figures drawn from saved models and part (b) of the consistency check are left "
                  "out.", ""]
    return lines


def _check(record, saved: SavedRuns, mc_samples):
    """``(check, why)``: the consistency check of one run, on the model and test images the figures use, and
    what is wrong with the run when it is left out of the figures (``None``: it is not)."""
    def failed(problem):
        check = consistency.RunCheck(str(record["run_id"]), str(record["variant"]), mc_samples=mc_samples)
        check.history_problems.append(problem)
        return check

    carried = not saved.results_only and saved.carried_without_folder(record)
    if record.get("kind") == "classical" or saved.results_only or carried:
        try:
            check = consistency.check_record(record, build=saved.blank_model, mc_samples=mc_samples)
        except Exception as err:  # noqa: BLE001 - a check that cannot run fails, shown in the table
            problem = f"not checked: {type(err).__name__}: {err}"
            return failed(problem), problem
        if not check.not_applicable:
            check.test_not_run = CARRIED if carried else RESULTS_ONLY
        return check, (None if check.ok else "the consistency check fails: " + "; ".join(check.problems()))
    try:
        model = saved.model(record)
    except Exception as err:  # noqa: BLE001 - reported in the table
        return failed(f"not checked: the saved model does not load ({err})"), f"the saved model does not load: {err}"
    try:
        images = saved.test_images(record)
    except Exception as err:  # noqa: BLE001 - the split is missing here, not the run wrong: its figures stay
        return failed(f"not checked: {type(err).__name__}: {err}"), None
    try:
        check = consistency.check_run(record, saved.results_dir, data_dir=saved.data_dir, mc_samples=mc_samples,
                                      images=images, model=model)
    except Exception as err:  # noqa: BLE001 - a check that cannot run fails, shown in the table
        problem = f"not checked: {type(err).__name__}: {err}"
        return failed(problem), problem
    return check, (None if check.ok else "the consistency check fails: " + "; ".join(check.problems()))


def _file_stem(name):
    """A study's name as part of a file name: a results file written by another program may name its study
    ``../../x``; only letters, digits, '_', '.' and '-' (no '..') reach the figure paths."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name)).replace("..", "__")
    return stem or "study"


def report_key(results_dir) -> str:
    """What makes a report folder the report of ``results_dir`` (:mod:`keraszoo.output_folder`): its real path, hashed."""
    return output_folder.recipe_key({"results": os.path.realpath(results_dir)})


def write_report(results_dir, out_dir, *, data_dir=None, mc_samples=consistency.DEFAULT_MC_SAMPLES, command=None,
                 overwrite=False):
    """Writes ``out_dir/README.md`` and ``out_dir/figures/*.png``; returns ``(path, checks)``.

    ``out_dir`` follows keraszoo's rule for output folders: new or empty, an earlier report of the same
    ``results_dir``, or ``overwrite=True``; it is locked while the report is written
    (:func:`keraszoo.output_folder.claim`).
    """
    results_dir = pathlib.Path(results_dir)
    runs = read_results(results_dir)
    with output_folder.claim(out_dir, "report", key=report_key(results_dir), overwrite=overwrite, flag=None) as out:
        return _write(results_dir, out, runs, data_dir, mc_samples, command)


def reproducibility_section(results_dir) -> list:
    """What ``reproducibility.json`` (``keraszoo experiment ... --recheck``) measured, if the folder has it."""
    from keraszoo.experiments.reproducibility import REPRODUCIBILITY_FILE

    try:
        r = json.loads((pathlib.Path(results_dir) / REPRODUCIBILITY_FILE).read_text())
    except (OSError, ValueError):
        return ["## Reproducibility", "",
                f"Not measured for this sweep (no `{REPRODUCIBILITY_FILE}`: `keraszoo experiment STUDY --out DIR "
                "--recheck` trains one run again in a fresh process and compares).", ""]
    same = r.get("weights_bit_identical") and r.get("history_bit_identical") and r.get("test_bit_identical")
    verdict = ("**bit-identical**: every weight, every logged epoch and every test metric" if same else
               f"**not bit-identical**: weights differ by at most {fmt(r.get('weights_max_abs_diff'))} (largest "
               f"|weight| {fmt(r.get('weights_max_abs'))}), test metrics by at most "
               f"{fmt(100 * (r.get('test_max_rel_diff') or 0))} % relative")
    return ["## Reproducibility", "",
            f"Run `{r.get('run_id')}` was trained again from its seed in a fresh process ({r.get('threads')} "
            f"TensorFlow thread(s){_threads_from(r)}, TensorFlow {r.get('tensorflow_version')}, "
            f"{r.get('finished_at')}): {verdict}. "
            "keraszoo seeds Python, NumPy and Keras from the run's seed and turns on TensorFlow's op determinism; "
            "another thread count, CPU type or TensorFlow build may change the float rounding, and GPU kernels are "
            f"not all deterministic (`{REPRODUCIBILITY_FILE}` has every term's difference).", ""]


def _first_records(results_dir) -> dict:
    """``{run_id: entry}``: the latest superseded record of each retrained run (``superseded/`` in a sweep folder,
    ``superseded.jsonl`` beside a published report)."""
    from keraszoo.experiments.carry import read_superseded_file
    from keraszoo.experiments.carry import superseded_records

    results_dir = pathlib.Path(results_dir)
    entries = superseded_records(results_dir) + read_superseded_file(results_dir)
    latest = {}
    for e in sorted((e for e in entries if isinstance(e, dict) and isinstance(e.get("record"), dict)),
                    key=lambda e: str(e.get("superseded_at"))):
        latest[e["record"].get("run_id")] = e
    return latest


def retrained_section(results_dir, runs) -> list:
    """Each run trained again with ``--retrain`` against its first record: the same seed, trained again later, in
    another process and perhaps under other library versions. Grouped by reason and variant; empty without any."""
    from keraszoo.experiments.reproducibility import compare_records

    first = _first_records(results_dir)
    pairs = [(first[r["run_id"]], r) for r in runs if r.get("run_id") in first]
    if not pairs:
        return []
    rows = {}
    for entry, again in pairs:
        old = entry["record"]
        diff = compare_records(old, again)
        h1, h2 = old.get("history", {}), again.get("history", {})
        parted = [next((i for i, (a, b) in enumerate(zip(h1[k], h2[k])) if a != b), None)
                  for k, d in diff["history"].items() if d["max_abs"] != 0.0]
        first_epoch = min((i for i in parted if i is not None), default=None)
        # the loss terms only (a metric near zero, an AP or a rate at some threshold, would make a relative change
        # of nothing look large)
        rel = [d["max_rel"] for k, d in diff["test"].items() if k in h1 and k in h2 and d["max_rel"] is not None]
        auroc = [abs(d["first"] - d["second"]) * 100 for k, d in diff["test"].items() if k.startswith("anomaly_auroc_")]
        row = rows.setdefault((str(entry.get("reason")), again.get("variant")), {
            "n": 0, "same": 0, "epoch": None, "rel": 0.0, "auroc": None, "versions": set()})
        row["n"] += 1
        row["same"] += diff["history_bit_identical"] and diff["test_bit_identical"]
        if first_epoch is not None:
            row["epoch"] = first_epoch if row["epoch"] is None else min(row["epoch"], first_epoch)
        row["rel"] = max([row["rel"]] + rel)
        if auroc:
            row["auroc"] = max(auroc + ([row["auroc"]] if row["auroc"] is not None else []))
        row["versions"].add(tuple(json.dumps(r["versions"], sort_keys=True) if r.get("versions") else "not recorded"
                                  for r in (old, again)))
    with_auroc = any(row["auroc"] is not None for row in rows.values())
    lines = ["### Runs trained again against their first records", "",
             f"{len(pairs)} run(s) were trained again with `--retrain` from the seed of their first training, later and "
             "in another process. Each is set against its first record (kept in `superseded.jsonl` or the sweep's "
             "`superseded/`): bit-identical means every logged epoch and every test metric (timings aside). A "
             "retraining under a changed objective (its reason says so) is not expected to match.", "",
             "| reason | variant | runs | bit-identical | first epoch that differs | largest relative change of a test "
             "loss term |" + (" largest AUROC change, points |" if with_auroc else "") + " library versions (first → again) |",
             "|---|---|---|---|---|---|" + ("---|" if with_auroc else "") + "---|"]
    for (reason, variant), row in rows.items():
        versions = "; ".join(sorted(f"{a} → {b}" for a, b in row["versions"]))
        lines.append(f"| {reason} | {variant} | {row['n']} | {row['same']} of {row['n']} | "
                     f"{'–' if row['epoch'] is None else row['epoch'] + 1} | {fmt(100 * row['rel'])} % |"
                     + (f" {'–' if row['auroc'] is None else fmt(row['auroc'])} |" if with_auroc else "")
                     + f" {versions} |")
    return lines + [""]


def _threads_from(record):
    """Where the recheck's thread count came from, when the record says."""
    source = record.get("threads_from")
    return f", as {source} says" if source == "the results line" else (f", from {source}" if source else "")


def _write(results_dir, out_dir, runs, data_dir, mc_samples, command):
    (out_dir / "figures").mkdir(exist_ok=True)
    sweep, saved = _sweep_record(results_dir), SavedRuns(results_dir, data_dir)
    with_folders = [r for r in runs if r.get("model_dir")]
    saved.results_only = bool(with_folders) and not any(saved.has_folder(r) for r in with_folders)
    studies = [StudyRuns(name, group, saved, _spec_of(name, sweep))
               for name, group in group_by(runs, lambda r: r["study"]).items()]
    checked = [(study, r, *_check(r, saved, mc_samples)) for study in studies for r in study.runs]
    left_out = {id(r): why for _, r, _, why in checked if why is not None}
    shown = [study.subset([r for r in study.runs if id(r) not in left_out]) for study in studies]
    lines = [f"# Experiment report: {', '.join(s.name for s in studies)}", "",
             f"Produced by `{command or f'keraszoo report {results_dir} -o {out_dir}'}` from `{results_dir / 'results.jsonl'}` "
             f"({len(runs)} runs), written by:", ""] + _provenance(runs, results_dir, sweep, saved) + [""]
    lines += _how_to_read(saved.results_only)
    for study, sound in zip(studies, shown):
        lines += _study_section(study, sound, {r["run_id"]: left_out[id(r)] for r in study.runs if id(r) in left_out},
                                out_dir)
    lines += literature_section(shown)
    lines += reproducibility_section(results_dir)
    lines += retrained_section(results_dir, runs)
    checks = [check for _, _, check, _ in checked]
    lines += consistency_section(checks, out_dir, saved.results_only)
    path = out_dir / "README.md"
    atomic_write_text(path, "\n".join(lines))
    _remove_stale_figures(out_dir, lines, [s.name for s in studies])
    return path, checks


def _remove_stale_figures(out_dir, lines, names):
    """An earlier report's figures this one no longer draws (a figure dropped, a study renamed): removed, so the
    folder holds no picture its README does not show. Only ``<study>_*.png`` and ``consistency.png``: the figures a
    report of these studies writes."""
    shown = set(re.findall(r"\]\(figures/([^)]+\.png)\)", "\n".join(lines)))
    for png in (out_dir / "figures").glob("*.png"):
        ours = png.name == "consistency.png" or any(png.name.startswith(f"{name}_") for name in names)
        if ours and png.name not in shown:
            png.unlink()
