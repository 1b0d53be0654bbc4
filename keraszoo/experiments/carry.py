"""Carry an unfinished sweep to another machine by its results lines alone, and go on there.

A sweep's run folders hold the weights (megabytes per run); its results lines hold everything its tables, curves
and the training-log part of the consistency check read (kilobytes). When the machine that trains a sweep is not
the one that finishes it (a session machine that is handed back, a preemptible instance, a notebook whose disk goes),
:func:`save_sweep` writes the small part into a folder that travels (a git checkout, a bucket):

* ``study.json``: the sweep's plan, as the runner wrote it;
* ``results.jsonl``: the lines of the runs finished so far (whose folders are complete, or which were carried
  here themselves), one per run;
* ``superseded.jsonl``: the first records of runs retrained with ``--retrain`` (one JSON object per line);
* ``reproducibility.json``: the recheck, when the sweep has one.

:func:`restore_sweep` puts them into the sweep folder on the new machine (missing, empty, or the same sweep's) and
lists those runs in ``carried.json``: ``keraszoo experiment`` then counts them as finished
(:meth:`~keraszoo.experiments.results.ResultsFile.finished`) and trains only the rest. Nothing is retrained and
no number changes; what is lost is each carried run's folder, so the report (``keraszoo report``)

* checks a carried run from its results line only (part (a), the training log; part (b), which loads the model,
  is *not run* and the table says why),
* draws the image figures from another seed of the same setting whose folder is here (none: that row is missing),
* rechecks (``--recheck``) a run whose folder is here.

``python training/carry_sweep.py save|restore`` is the command line.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import shutil

from keraszoo.experiments.results import CARRIED_FILE
from keraszoo.experiments.results import RESULTS_FILE
from keraszoo.experiments.results import STUDY_FILE
from keraszoo.experiments.results import SUPERSEDED_DIR
from keraszoo.experiments.results import ResultsFile
from keraszoo.experiments.results import read_carried
from keraszoo.experiments.study import StudyError

__all__ = ["SUPERSEDED_FILE", "read_superseded_file", "restore_sweep", "save_sweep", "state_key", "superseded_records",
           "write_json_lines"]

#: the retrained runs' first records in a carried state (and beside a published report), one JSON object per line.
SUPERSEDED_FILE = "superseded.jsonl"
_REPRODUCIBILITY = "reproducibility.json"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _sweep_of(folder: pathlib.Path, what: str) -> dict:
    try:
        record = json.loads((folder / STUDY_FILE).read_text())
    except FileNotFoundError:
        raise StudyError(f"{folder} holds no sweep ({STUDY_FILE} is missing): give the {what}.") from None
    except ValueError as err:
        raise StudyError(f"{folder / STUDY_FILE}: not JSON ({err}).") from None
    if not isinstance(record, dict) or not record.get("study") or not record.get("budget"):
        raise StudyError(f"{folder / STUDY_FILE}: expected a sweep's record (its study and budget).")
    return record


def _same_sweep(a: dict, b: dict, a_where, b_where):
    if (a.get("study"), a.get("budget"), a.get("spec")) != (b.get("study"), b.get("budget"), b.get("spec")):
        raise StudyError(f"{a_where} holds study {a.get('study')!r} at budget {a.get('budget')!r} and {b_where} study "
                         f"{b.get('study')!r} at budget {b.get('budget')!r} (or another spec of it): not one sweep. "
                         "Nothing was written.")


def superseded_records(sweep: pathlib.Path) -> list:
    """The ``record.json`` objects of ``sweep/superseded/*/``, oldest first."""
    found = []
    for path in sorted((sweep / SUPERSEDED_DIR).glob("*/record.json")):
        found.append(json.loads(path.read_text()))
    return sorted(found, key=lambda r: str(r.get("superseded_at")))


def read_superseded_file(folder: pathlib.Path) -> list:
    """The entries of ``folder/superseded.jsonl`` (a saved state, or beside a published report); none without it."""
    try:
        text = (pathlib.Path(folder) / SUPERSEDED_FILE).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(t) for t in text.splitlines() if t.strip()]


def _superseded_key(entry: dict) -> str:
    """One retired record's identity: the whole entry (reason, time, first record), as JSON."""
    return json.dumps(entry, sort_keys=True)


def write_json_lines(path: pathlib.Path, objects) -> None:
    from keraszoo.utils import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(o, sort_keys=True, allow_nan=False) + "\n" for o in objects))


def save_sweep(sweep, dest) -> dict:
    """Write the small part of the sweep in ``sweep`` into ``dest`` (see the module's docstring); returns a summary.

    ``dest`` is created; when it already holds a saved state, it must be this sweep's (its files are replaced by the
    newer ones: a run finished here since is added, none is dropped unless ``--retrain`` retired it). Safe while the
    sweep runs (a line being appended is not read).

    Raises:
        StudyError: ``sweep`` holds no sweep, or ``dest`` holds another sweep's state or other files (nothing is
            written).
    """
    from keraszoo.utils import atomic_write_text

    sweep, dest = pathlib.Path(sweep), pathlib.Path(dest)
    record = _sweep_of(sweep, "sweep folder (keraszoo experiment --out)")
    if (dest / STUDY_FILE).exists():
        _same_sweep(record, _sweep_of(dest, "state folder"), sweep, dest)
    elif dest.is_dir() and any(dest.iterdir()):  # a folder of someone's files: nothing of theirs is written over
        shown = ", ".join(sorted(p.name for p in dest.iterdir())[:3])
        raise StudyError(f"{dest} holds files ({shown}) but no saved state ({STUDY_FILE}): give a new or empty folder, "
                         "or the state folder of this sweep. Nothing was written.")
    lines = list(ResultsFile(sweep).finished().values())  # one per run, in the order first written
    superseded = superseded_records(sweep)
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write_text(dest / STUDY_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_json_lines(dest / RESULTS_FILE, lines)
    if superseded:
        write_json_lines(dest / SUPERSEDED_FILE, superseded)
    if (sweep / _REPRODUCIBILITY).is_file():
        shutil.copyfile(sweep / _REPRODUCIBILITY, dest / _REPRODUCIBILITY)
    return {"study": record["study"], "budget": record["budget"], "runs": len(lines),
            "planned": sum(len(e.get("planned", [])) for e in (record.get("datasets") or {}).values()),
            "superseded": len(superseded), "dest": str(dest)}


def state_key(state) -> str:
    """The sweep key (study, budget and the spec's identity, as the runner's folder marker) of the saved state in
    ``state``: ``keraszoo experiment --state`` restores only its own sweep's."""
    from keraszoo.experiments.runner import _sweep_key
    from keraszoo.experiments.study import Study

    record = _sweep_of(pathlib.Path(state), "state folder (keraszoo experiment --state, training/carry_sweep.py save)")
    return _sweep_key(Study.from_dict(record["spec"]), record["budget"])


def restore_sweep(state, sweep) -> dict:
    """Put a state written by :func:`save_sweep` into the sweep folder ``sweep``; returns a summary.

    ``sweep`` may be missing or empty (it becomes the sweep's folder) or hold the same sweep (a run finished in both
    places keeps this machine's line and folder). Each run whose line comes from ``state`` is listed in
    ``carried.json``; a retrained run's first record goes to ``superseded/``. Holds the sweep folder's lock while it
    writes, so it is refused while ``keraszoo experiment`` runs there.

    Raises:
        StudyError: ``state`` holds no saved sweep, ``sweep`` holds another sweep, or another folder's files.
        keraszoo.output_folder.FolderLockedError: a sweep is running in ``sweep``.
    """
    from keraszoo import output_folder
    from keraszoo.experiments.runner import _sweep_key
    from keraszoo.experiments.study import Study
    from keraszoo.utils import atomic_write_text

    state, sweep = pathlib.Path(state), pathlib.Path(sweep)
    record = _sweep_of(state, "state folder (training/carry_sweep.py save)")
    if (sweep / STUDY_FILE).exists():
        _same_sweep(_sweep_of(sweep, "sweep folder"), record, sweep, state)
    lines = ResultsFile(state).read()
    key = _sweep_key(Study.from_dict(record["spec"]), record["budget"])
    with output_folder.claim(sweep, "experiment", key=key, flag="the sweep folder"):
        results = ResultsFile(sweep)
        here = results.finished()
        carried = read_carried(sweep)
        when, added = _now(), []
        for line in lines:
            if line["run_id"] in here:
                continue
            results.append(line)
            carried[line["run_id"]] = {"carried_at": when, "from": str(state),
                                       "finished_at": line.get("finished_at")}
            added.append(line["run_id"])
        if not (sweep / STUDY_FILE).exists():
            atomic_write_text(sweep / STUDY_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")
        if added:
            atomic_write_text(sweep / CARRIED_FILE, json.dumps({"runs": carried}, indent=2, sort_keys=True) + "\n")
        kept = 0
        superseded = read_superseded_file(state)
        # a record already here (restored before, or retired here under a folder name of finer time) is not added
        # twice: the same state restored into its own sweep folder, as ``--state`` does at every start, had
        # doubled every retired run's first record (and the published superseded.jsonl with it)
        here_already = {_superseded_key(e) for e in superseded_records(sweep)}
        for entry in superseded:
            if _superseded_key(entry) in here_already:
                continue
            here_already.add(_superseded_key(entry))
            stamp = str(entry.get("superseded_at", "unknown")).replace(":", "").replace("-", "").replace("+0000", "Z")
            folder = sweep / SUPERSEDED_DIR / f"{entry['record']['run_id']}@{stamp}"
            if not (folder / "record.json").exists():
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_text(folder / "record.json", json.dumps(entry, indent=2, sort_keys=True) + "\n")
                kept += 1
        if (state / _REPRODUCIBILITY).is_file() and not (sweep / _REPRODUCIBILITY).exists():
            shutil.copyfile(state / _REPRODUCIBILITY, sweep / _REPRODUCIBILITY)
    return {"study": record["study"], "budget": record["budget"], "carried": len(added),
            "already_here": len(lines) - len(added), "superseded": kept, "sweep": str(sweep)}
