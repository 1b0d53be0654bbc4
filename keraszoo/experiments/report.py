"""``keraszoo report DIR -o OUT``: a Markdown report of an experiment's ``results.jsonl``.

For every study in the file: the swept settings; tables of L_total and each of its terms on train (the
last epoch of ``history``) and test, of the other test metrics and of the parameter counts and times;
the figures of :mod:`keraszoo.experiments.figures`; a discussion whose every sentence is computed from
the numbers (:mod:`keraszoo.experiments.discussion`). Then a "Literature" section
(:mod:`keraszoo.experiments.literature`) and the consistency check of :mod:`keraszoo.experiments.consistency`
for every run. Nothing is hard-coded: a report regenerated from the same results file is the same report.

The report loads each run's saved model once and reads each evaluated test split once
(:class:`~keraszoo.experiments.view.SavedRuns`); the figures and the consistency check share them.

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
from keraszoo.experiments.discussion import discussion
from keraszoo.experiments.literature import literature_section
from keraszoo.experiments.results import STUDY_FILE
from keraszoo.experiments.studies import STUDIES
from keraszoo.experiments.study import Study
from keraszoo.experiments.view import SavedRuns
from keraszoo.experiments.view import StudyRuns
from keraszoo.experiments.view import group_by
from keraszoo.experiments.view import table
from keraszoo.utils import atomic_write_text

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
                     _cell("; ".join(c.problems())) or "–"))
    lines.append(table(("run", "variant", "(a) history", "(a) max rel. err.", "(b) test", "(b) max rel. err.",
                         "terms (* stochastic)", "samples", "result", "problems"), rows))
    failed = [c.run_id for c in checks if not c.ok]
    lines += ["", f"**{len(checks) - len(failed)} of {len(checks)} runs pass.**" + (
        f" Failed: {', '.join(failed)}." if failed else ""), ""]
    return lines


def _cell(text):
    """``text`` as one line that a Markdown table cell can hold."""
    return " ".join(str(text).split()).replace("|", "/")


# ----------------------------------------------------------------- the report
def _left_out_lines(left_out):
    """The "Runs left out" table of a study: ``left_out`` is ``{run_id: what is wrong}``."""
    if not left_out:
        return []
    return ["### Runs left out", "", table(("run", "what is wrong"), [(k, _cell(v)) for k, v in left_out.items()]), "",
            "Their recorded numbers stay in the tables below; the figures, the discussion and the literature table "
            "leave them out, and the consistency check fails them.", ""]


def _figure_lines(shown, out_dir):
    """The figures of the runs ``shown`` (a figure that cannot be drawn: a line saying why)."""
    if not shown.runs:
        return ["(No figures: every run of this study is left out, see above.)", ""]
    lines, fig_dir = [], out_dir / "figures"
    for stem, caption, fn in figures.GENERIC_FIGURES + figures.STUDY_FIGURES.get(shown.name, ()):
        try:
            path = fn(shown, fig_dir / f"{_file_stem(shown.name)}_{stem}.png")
        except ImportError:  # no matplotlib: the one message that says what to install
            raise
        except Exception as err:  # noqa: BLE001 - one figure lost, not the report
            lines += [f"(Figure `{stem}` could not be drawn: {_cell(f'{type(err).__name__}: {err}')})", ""]
            continue
        if path is not None:
            lines += [f"![{caption}](figures/{path.name})", "", f"*{caption}.*", ""]
    if shown.images(1)[0] is None:
        lines += ["(Image figures left out: the test split could not be loaded here; pass --data-dir.)", ""]
    return lines


def _study_section(study, shown, left_out, out_dir):
    """The section of ``study`` (all its runs, for the tables); ``shown``: its runs not ``left_out``."""
    lines = [f"## Study `{study.name}`", ""]
    swept = study.swept
    lines.append(f"{len(study.runs)} runs; swept: {', '.join(f'`{k}`' for k in swept) or 'nothing (one setting)'}; "
                 f"variants: {', '.join(sorted({r['variant'] for r in study.runs}))}; dataset: "
                 f"{', '.join(sorted({r.get('dataset', '?') for r in study.runs}))}; test: first "
                 f"{', '.join(sorted({str(r['eval'].get('num_examples')) for r in study.runs}))} images of "
                 f"{', '.join(sorted({str(r['eval'].get('split')) for r in study.runs}))}.")
    lines.append("")
    lines += _left_out_lines(left_out)
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
    """``(check, why)``: the consistency check of one run, on the model and test images the figures use, and
    what is wrong with the run when it is left out of the figures (``None``: it is not)."""
    def failed(problem):
        check = consistency.RunCheck(str(record["run_id"]), str(record["variant"]), mc_samples=mc_samples)
        check.history_problems.append(problem)
        return check

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


def _write(results_dir, out_dir, runs, data_dir, mc_samples, command):
    (out_dir / "figures").mkdir(exist_ok=True)
    sweep, saved = _sweep_record(results_dir), SavedRuns(results_dir, data_dir)
    studies = [StudyRuns(name, group, saved, _spec_of(name, sweep))
               for name, group in group_by(runs, lambda r: r["study"]).items()]
    checked = [(study, r, *_check(r, saved, mc_samples)) for study in studies for r in study.runs]
    left_out = {id(r): why for _, r, _, why in checked if why is not None}
    shown = [study.subset([r for r in study.runs if id(r) not in left_out]) for study in studies]
    lines = [f"# Experiment report: {', '.join(s.name for s in studies)}", "",
             f"Produced by `{command or f'keraszoo report {results_dir} -o {out_dir}'}` from `{results_dir / 'results.jsonl'}` "
             f"({len(runs)} runs), written by:", ""] + _provenance(runs, results_dir, sweep) + [""]
    for study, sound in zip(studies, shown):
        lines += _study_section(study, sound, {r["run_id"]: left_out[id(r)] for r in study.runs if id(r) in left_out},
                                out_dir)
    lines += literature_section(shown)
    checks = [check for _, _, check, _ in checked]
    lines += consistency_section(checks)
    path = out_dir / "README.md"
    atomic_write_text(path, "\n".join(lines))
    return path, checks
