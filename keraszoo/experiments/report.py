"""``keraszoo report DIR -o OUT``: a Markdown report of an experiment's ``results.jsonl``.

For every study in the file: the swept settings; tables of L_total and each of its terms on train (the
last epoch of ``history``) and test, of the other test metrics and of the parameter counts and times;
the figures of :mod:`keraszoo.experiments.figures`; a discussion whose every sentence is computed from
the numbers (:mod:`keraszoo.experiments.discussion`). Then a "Literature" section
(:mod:`keraszoo.experiments.literature`) and the consistency check of :mod:`keraszoo.experiments.consistency`
for every run. Nothing is hard-coded: a report regenerated from the same results file is the same report.

The report loads each run's saved model once and reads each evaluated test split once
(:class:`~keraszoo.experiments.view.SavedRuns`); the figures and the consistency check share them.
"""

from __future__ import annotations

import json
import pathlib

from keraszoo.experiments import consistency
from keraszoo.experiments import figures
from keraszoo.experiments.discussion import discussion
from keraszoo.experiments.literature import literature_section
from keraszoo.experiments.results import STUDY_FILE
from keraszoo.experiments.studies import STUDIES
from keraszoo.experiments.study import Study
from keraszoo.experiments.view import SavedRuns
from keraszoo.experiments.view import StudyRuns
from keraszoo.experiments.view import group_by
from keraszoo.experiments.view import table

#: metrics per table of "Other test metrics"
TABLE_COLUMNS = 8


#: the results-line fields the report reads (the runner writes more).
REQUIRED_FIELDS = ("run_id", "study", "variant", "params", "history", "test", "eval", "model_dir")


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
def consistency_section(checks):
    lines = ["## Consistency check", "",
             f"(a) every epoch's logged `total_loss` against `reconstruction_loss + Σ w·term` (the saved model's "
             f"`loss_weights()`) and Keras' `loss` against `total_loss`, relative tolerance {consistency.HISTORY_RTOL:g} "
             "(float32 running means); (b) every test term the run reports, recomputed from the saved weights by "
             f"keraszoo's NumPy forward pass on the same images: deterministic terms to {consistency.TEST_RTOL:g} relative, "
             f"stochastic ones within {consistency.MC_SIGMAS:g} standard errors of the Monte-Carlo difference "
             "(samples: NumPy draws per image or batch).", ""]
    rows = []
    for c in checks:
        stochastic = sorted({t.samples for t in c.terms if t.stochastic})
        rows.append((c.run_id, c.variant, "pass" if c.history_ok else "FAIL", c.history_max_rel,
                     "pass" if c.test_ok else "FAIL", c.test_max_rel,
                     ", ".join(f"{t.name}{'*' if t.stochastic else ''}" for t in c.terms) or "–",
                     ",".join(map(str, stochastic)) or "–", "pass" if c.ok else "FAIL",
                     "; ".join(c.problems()).replace("|", "/") or "–"))
    lines.append(table(("run", "variant", "(a) history", "(a) max rel. err.", "(b) test", "(b) max rel. err.",
                         "terms (* stochastic)", "samples", "result", "problems"), rows))
    failed = [c.run_id for c in checks if not c.ok]
    lines += ["", f"**{len(checks) - len(failed)} of {len(checks)} runs pass.**" + (
        f" Failed: {', '.join(failed)}." if failed else ""), ""]
    return lines


# ----------------------------------------------------------------- the report
def _study_section(study, out_dir):
    lines = [f"## Study `{study.name}`", ""]
    swept = study.swept
    lines.append(f"{len(study.runs)} runs; swept: {', '.join(f'`{k}`' for k in swept) or 'nothing (one setting)'}; "
                 f"variants: {', '.join(sorted({r['variant'] for r in study.runs}))}; dataset: "
                 f"{', '.join(sorted({r.get('dataset', '?') for r in study.runs}))}; test: first "
                 f"{', '.join(sorted({str(r['eval'].get('num_examples')) for r in study.runs}))} images of "
                 f"{', '.join(sorted({str(r['eval'].get('split')) for r in study.runs}))}.")
    lines.append("")
    terms = study.terms
    header = ["run", *swept] + [f"train {t}" for t in terms] + [f"test {t}" for t in terms]
    rows = [[r["run_id"], *(r["params"].get(k) for k in swept)] + [study.train_value(r, t) for t in terms]
            + [study.test_value(r, t) for t in terms] for r in study.runs]
    lines += ["### L_total and its terms (train: last epoch; test)", "", table(header, rows), ""]
    others = sorted({k for r in study.runs for k, v in r.get("test", {}).items()
                     if k not in terms and isinstance(v, (int, float)) and not isinstance(v, bool)})
    if others:
        lines += ["### Other test metrics", ""]
        for i in range(0, len(others), TABLE_COLUMNS):  # tables of at most TABLE_COLUMNS metrics stay readable
            chunk = others[i : i + TABLE_COLUMNS]
            rows = [[r["run_id"]] + [study.test_value(r, k) for k in chunk] for r in study.runs]
            lines += [table(["run", *chunk], rows), ""]
    rows = [[r["run_id"], r.get("num_params"), r.get("epochs"), r.get("train_seconds"), r.get("seconds_per_epoch")]
            for r in study.runs]
    lines += ["### Size and training time", "", table(["run", "parameters", "epochs", "train s", "s/epoch"], rows), ""]
    lines += ["### Figures", ""]
    fig_dir = out_dir / "figures"
    for stem, caption, fn in figures.GENERIC_FIGURES + figures.STUDY_FIGURES.get(study.name, ()):
        path = fn(study, fig_dir / f"{study.name}_{stem}.png")
        if path is not None:
            lines += [f"![{caption}](figures/{path.name})", "", f"*{caption}.*", ""]
    if study.images(1)[0] is None:
        lines += ["(Image figures left out: the test split could not be loaded here; pass --data-dir.)", ""]
    lines += ["### Discussion", ""] + [f"- {s}" for s in discussion(study)] + [""]
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


def _provenance(runs, results_dir, sweep=None):
    """The commands that wrote the runs (``sweep``: the folder's ``study.json``, read when not given)."""
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
    return lines


def _check(record, saved: SavedRuns, mc_samples):
    """The consistency check of one run, on the model and test images the figures used."""
    try:
        model = saved.model(record)
    except Exception as err:  # noqa: BLE001 - reported in the table
        failed = consistency.RunCheck(str(record["run_id"]), str(record["variant"]), mc_samples=mc_samples)
        failed.history_problems.append(f"not checked: the saved model does not load ({err})")
        return failed
    try:
        return consistency.check_run(record, saved.results_dir, data_dir=saved.data_dir, mc_samples=mc_samples,
                                     images=saved.test_images(record), model=model)
    except Exception as err:  # noqa: BLE001 - a check that cannot run fails, shown in the table
        failed = consistency.RunCheck(str(record["run_id"]), str(record["variant"]))
        failed.history_problems.append(f"not checked: {type(err).__name__}: {err}")
        return failed


def write_report(results_dir, out_dir, *, data_dir=None, mc_samples=consistency.DEFAULT_MC_SAMPLES, command=None):
    """Writes ``out_dir/README.md`` and ``out_dir/figures/*.png``; returns ``(path, checks)``."""
    results_dir, out_dir = pathlib.Path(results_dir), pathlib.Path(out_dir)
    runs = read_results(results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "figures").mkdir(exist_ok=True)
    sweep, saved = _sweep_record(results_dir), SavedRuns(results_dir, data_dir)
    studies = [StudyRuns(name, group, saved, _spec_of(name, sweep))
               for name, group in group_by(runs, lambda r: r["study"]).items()]
    lines = [f"# Experiment report: {', '.join(s.name for s in studies)}", "",
             f"Produced by `{command or f'keraszoo report {results_dir} -o {out_dir}'}` from `{results_dir / 'results.jsonl'}` "
             f"({len(runs)} runs), written by:", ""] + _provenance(runs, results_dir, sweep) + [""]
    for study in studies:
        lines += _study_section(study, out_dir)
    lines += literature_section(studies)
    checks = [_check(r, saved, mc_samples) for study in studies for r in study.runs]
    lines += consistency_section(checks)
    path = out_dir / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path, checks
