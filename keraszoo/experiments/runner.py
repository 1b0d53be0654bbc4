"""Running a study (the sweep): plan its runs, run each, append one JSON line per run.

:func:`run_study` is ``keraszoo experiment`` from Python. A sweep's folder::

    DIR/results.jsonl        one JSON object per finished run (written by the parent process only)
    DIR/study.json           the study, budget, planned run ids, skipped runs (with the reason), failures
    DIR/runs/<run_id>/       each run's save_pretrained folder (training_log.csv, metadata.json, ...)
    DIR/logs/<run_id>.log    what the run printed
    DIR/results.d/<run_id>.json  a shard's record of a finished run (see "Shards" below)
    DIR/shards/              each shard's planned runs and failures

Each run is :func:`~keraszoo.experiments.execute.execute_run` (:mod:`keraszoo.experiments.execute`):
``keraszoo.training.train.run`` (resumable: a killed run continues from its
backup) trains one model, which is then evaluated and probed on the first ``N``
test images, read once. A run whose folder is complete but which has no results
line (a kill between the two) is loaded and evaluated, not retrained.

Rerunning the command skips the runs already in ``results.jsonl`` whose folder
is complete, so an interrupted sweep loses at most the run in flight. Each line
is written with one ``write`` and an ``fsync``; a line torn by a crash (cut short:
not a complete JSON record) is ignored and reported when the file is read, and cut
off before the next line is appended.

Nothing a user owns is overwritten or lost:

* the sweep holds its folder (:func:`keraszoo.output_folder.claim`, job
  ``"experiment"``) while it runs: a second sweep into it is refused at once,
  naming the holder (pid, host, since); a folder holding anything but a sweep
  of this study at this budget is refused;
* an edited spec rerun into the folder of the old one is refused, naming the
  changed fields (its results would mix with the old ones): the edited spec
  gets a new ``--out``;
* the whole spec is checked before the first run (:func:`~keraszoo.experiments.planning.plan_runs`),
  and a grid of more than :data:`LARGE_SWEEP` runs asks for ``yes=True`` (``--yes``);
* each run's folder is held by the training engine while it trains: a run that
  another live process is training is neither trained again nor recorded
  (:class:`~keraszoo.experiments.execute.RunBusy`).

Retraining a finished run
-------------------------
``retrain=[RUN_ID, ...]`` (``--retrain RUN_ID``, with ``--reason TEXT``) trains
finished runs again from their seeds (a bug fixed since they ran, a result in doubt)
without losing the first training: each run's record, folder, log and any backup
move to ``DIR/superseded/<run_id>@<UTC time>/`` (``record.json`` holds the old
results line and the reason), its line leaves ``results.jsonl`` (rewritten
atomically), ``study.json`` lists it under ``retrained``, and the sweep then runs
it like any unfinished run. A run is named by its run id or by the 8-digit digest
that ends it. A ``reproducibility.json`` that compared a retrained run moves aside
with it (it measured the old training).

Where the runs execute is the sweep's *engine* (:mod:`keraszoo.experiments.engines`);
everything else above is the same for all of them:

* ``workers=N`` (``--workers N``, the local engine) runs N runs at a time in N
  processes (``concurrent.futures`` with the ``spawn`` start method), each limited
  to ``cores / N`` TensorFlow threads; a worker whose sweep is gone (killed:
  ``kill``, ``kill -9``, a closed terminal) exits within a second
  (:func:`~keraszoo.experiments.execute.init_worker`);
* ``engine="ray"`` (``--engine ray [--address ADDR] [--cpus-per-run C] [--gpus-per-run G]``)
  makes each run a Ray task, on a cluster or on a Ray instance started for the sweep;
  a task whose worker dies is rerun by Ray, then recorded as failed.

Either way the sweep's process alone writes ``results.jsonl``.

Shards: several hosts, no scheduler of keraszoo's
-------------------------------------------------
``shard="I/N"`` (``--shard I/N``, ``0 <= I < N``) runs the I-th of N disjoint
parts of the plan -- every N-th run of the plan sorted by run id, from the I-th:
the same split on every host, every run in exactly one shard -- into the one
shared sweep folder, e.g. a Slurm array ``--array=0-3`` with ``--shard
$SLURM_ARRAY_TASK_ID/4``. The shards of one sweep hold the folder together
(:func:`keraszoo.output_folder.claim` with ``shared=``): a sweep of another study,
budget or spec is still refused, and so is an unsharded sweep while shards run.
A shard never appends to ``results.jsonl``: each finished run is a file of its own,
``DIR/results.d/<run_id>.json`` (an atomic rename; see
:mod:`keraszoo.experiments.results` for why not a lock), read with
``results.jsonl`` by everything that reads the sweep. A shard's failures go to
``DIR/shards/<dataset>-<I>-of-<N>.json``. Once the shards are done,
the same command without ``--shard`` finds every finished run, folds
``results.d`` into ``results.jsonl`` and runs what failed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

from keraszoo.experiments.engines import Engine
from keraszoo.experiments.engines import make_engine
from keraszoo.experiments.execute import RunBusy
from keraszoo.experiments.execute import RunFailed
from keraszoo.experiments.execute import RunSkipped
from keraszoo.experiments.execute import execute_run
from keraszoo.experiments.planning import plan_runs
from keraszoo.experiments.planning import run_digest
from keraszoo.experiments.results import CARRIED_FILE
from keraszoo.experiments.results import LOGS_DIR
from keraszoo.experiments.results import RECORDS_DIR
from keraszoo.experiments.results import RESULTS_FILE
from keraszoo.experiments.results import STUDY_FILE
from keraszoo.experiments.results import SUPERSEDED_DIR
from keraszoo.experiments.results import WORK_DIR
from keraszoo.experiments.results import ResultsFile
from keraszoo.experiments.results import read_results
from keraszoo.experiments.results import record_model_dir
from keraszoo.experiments.studies import STUDIES
from keraszoo.experiments.studies import get_study
from keraszoo.experiments.study import Study
from keraszoo.experiments.study import StudyError

__all__ = ["LARGE_SWEEP", "Engine", "RunBusy", "RunFailed", "RunSkipped", "SweepResult", "execute_run", "parse_shard",
           "run_study", "shard_runs"]

#: Planned runs above which a sweep asks for ``yes=True`` (``--yes``) before it starts.
LARGE_SWEEP = 500


# --------------------------------------------------------------------------- the sweep
@dataclasses.dataclass
class SweepResult:
    """What :func:`run_study` did."""

    out: pathlib.Path
    planned: list
    #: run ids already finished before this call (not rerun).
    already_finished: list
    #: run ids finished by this call.
    completed: list
    #: ``{"model", "params", "reason"}`` (or ``run_id``) of the runs that cannot run.
    skipped: list
    #: ``{"run_id", "error"}`` of the runs that stopped with an error.
    failed: list
    #: ``{"run_id", "reason"}`` of the runs another live process was training (not recorded; rerun later).
    busy: list = dataclasses.field(default_factory=list)
    #: ``(I, N)`` of a shard's sweep (``planned`` and the rest are then the shard's), ``None`` for a whole one.
    shard: tuple | None = None

    @property
    def results_path(self) -> pathlib.Path:
        return self.out / RESULTS_FILE

    def records(self) -> list:
        return read_results(self.out)


def _check_out(out) -> pathlib.Path:
    out = pathlib.Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise StudyError(f"--out {out} is a file; give a folder for the sweep.")
    if not out.exists() and not out.parent.is_dir():
        raise StudyError(f"--out {out}: its parent folder {out.parent} does not exist; create it first "
                         f"(the sweep creates only the folder {out.name}).")
    return out


#: The fields of a spec that decide its runs (``description`` and ``baselines`` do not).
_RUN_FIELDS = ("variants", "fixed", "grid", "probes", "classical")
#: What a sweep writes into its folder (a folder of an earlier keraszoo holds these and no marker).
_SWEEP_ENTRIES = {STUDY_FILE, RESULTS_FILE, RECORDS_DIR, "runs", "logs", "work", "shards", SUPERSEDED_DIR,
                  "reproducibility.json", CARRIED_FILE, ".lock"}
#: The folder of the shards' records of their failures: ``DIR/shards/<dataset>-<I>-of-<N>.json``.
SHARDS_DIR = "shards"


def _spec_identity(spec: dict, budget: str) -> dict:
    """What of a spec (``Study.to_dict()``, as JSON) decides its runs at ``budget``."""
    spec = json.loads(json.dumps(spec, sort_keys=True, default=str))
    fields = {k: spec.get(k) for k in _RUN_FIELDS}
    fields["classical"] = fields["classical"] or []  # a spec written before the field existed had none
    return {**fields, "budgets": {budget: spec.get("budgets", {}).get(budget)}}


def _changes(old, new, path) -> list:
    """The paths (``grid.beta``) where ``old`` and ``new`` (JSON values) differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [c for k in sorted(set(old) | set(new), key=str) for c in _changes(old.get(k), new.get(k), f"{path}.{k}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and any(isinstance(v, dict) for v in old):
        return [c for i, (a, b) in enumerate(zip(old, new)) for c in _changes(a, b, f"{path}[{i}]")]
    return [] if old == new else [path]


def _sweep_key(study: Study, budget: str) -> str:
    """The key of the sweep folder's marker: the study, the budget and what of the spec decides the runs."""
    from keraszoo.output_folder import recipe_key

    return f"{study.name}@{budget}:{recipe_key(_spec_identity(study.to_dict(), budget))}"


def _study_record(out: pathlib.Path, study: Study, budget: str, dataset: str, runs, key: str) -> tuple:
    """``(study.json's record, entries of an earlier keraszoo's sweep)`` of ``out``; refuses another sweep's folder.

    Read only: nothing is created or locked (the claim comes after).
    """
    from keraszoo import output_folder

    fresh = {"study": study.name, "budget": budget, "datasets": {}}
    if not out.is_dir():
        return fresh, ()
    marker = output_folder.read_marker(out)
    names = {p.name for p in out.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))} \
        - {output_folder.LOCK_FILE, output_folder.MARKER_FILE}  # (a file being written by a shard is not in the way)
    if marker is not None and marker.get("job") != "experiment":
        raise StudyError(f"--out {out} holds the output of keraszoo {marker.get('job')}, not a sweep; "
                         "give another --out.")
    if marker is None and names - _SWEEP_ENTRIES:
        other = sorted(names - _SWEEP_ENTRIES)
        shown = ", ".join(other[:10]) + (f" and {len(other) - 10} more" if len(other) > 10 else "")
        raise StudyError(f"--out {out} is not empty and holds no keraszoo sweep ({shown} would be in the way); "
                         "give an empty or new folder.")
    try:
        record = json.loads((out / STUDY_FILE).read_text())
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict):
        if record.get("study") != study.name or record.get("budget") != budget:
            raise StudyError(f"{out} holds the sweep of study {record.get('study')!r} at budget "
                             f"{record.get('budget')!r}; give another --out for study {study.name!r} at budget "
                             f"{budget!r}.")
        changed = []
        if isinstance(record.get("spec"), dict):
            changed = _changes(_spec_identity(record["spec"], budget), _spec_identity(study.to_dict(), budget), "")
        planned = (record.get("datasets") or {}).get(dataset, {}).get("planned")
        if not changed and planned is not None and sorted(planned) != sorted(s.run_id for s in runs):
            changed = [f"the planned runs (keraszoo {record.get('keraszoo_version')}'s budget {budget!r})"]
        if changed:
            shown = ", ".join(c.lstrip(".") for c in changed[:5]) + (", ..." if len(changed) > 5 else "")
            raise StudyError(f"{out} holds a sweep of another spec of study {study.name!r} (changed: {shown}); its "
                             "runs would mix with this spec's. Give a new --out for the edited spec (or restore the "
                             "spec to go on with that sweep).")
    else:
        record = fresh
    if marker is not None and marker.get("key") != key:
        raise StudyError(f"{out} holds a sweep of another spec, study or budget than study {study.name!r} at budget "
                         f"{budget!r} (its {STUDY_FILE} is missing or unreadable); give another --out.")
    return record, (tuple(sorted(names)) if marker is None else ())


def _write_study_record(out: pathlib.Path, record: dict):
    """Write ``DIR/study.json`` (atomically), unless it already holds ``record``."""
    _write_json(out / STUDY_FILE, record)


def _write_json(path: pathlib.Path, record: dict):
    """Write ``record`` to ``path`` as JSON (atomically; its folder is created), unless it already holds it."""
    from keraszoo.utils import atomic_write_text

    text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    try:
        if path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)


def _print(quiet):
    return (lambda *a, **k: None) if quiet else (lambda *a, **k: print(*a, **k, flush=True))


def parse_shard(shard) -> tuple | None:
    """``(I, N)`` of ``"I/N"`` (or of an ``(I, N)`` pair), ``0 <= I < N``; ``None`` stays ``None``."""
    if shard is None:
        return None
    text = shard if isinstance(shard, str) else "/".join(map(str, shard)) if isinstance(shard, (tuple, list)) else None
    index, sep, count = (text or "").partition("/")
    try:
        index, count = int(index), int(count)
    except ValueError:
        index = count = None
    if not sep or index is None or count < 1 or not 0 <= index < count:
        raise StudyError(f"--shard must be I/N with 0 <= I < N (the I-th of N shards, from 0, as Slurm's "
                         f"$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-(N-1)); got {shard!r}.")
    return index, count


def shard_runs(runs, shard) -> list:
    """The runs of shard ``(I, N)``: every N-th run of ``runs`` sorted by run id, from the I-th (the plan's order kept)."""
    if shard is None:
        return list(runs)
    index, count = shard
    mine = {spec.run_id for spec in sorted(runs, key=lambda spec: spec.run_id)[index::count]}
    return [spec for spec in runs if spec.run_id in mine]


def _resolve_retrain(wanted, runs, finished) -> list:
    """The run ids of ``wanted`` (run ids or their 8-digit digests): finished runs of this plan, else a StudyError."""
    planned = [spec.run_id for spec in runs if spec.run_id in finished]
    found, unknown = [], []
    for name in dict.fromkeys(str(w) for w in wanted):
        match = [rid for rid in planned if rid == name or run_digest(rid) == name]
        if len(match) == 1:
            found.append(match[0])
        else:
            unknown.append(name)
    if unknown:
        shown = ", ".join(planned[:3]) + (" ..." if len(planned) > 3 else "")
        raise StudyError(f"--retrain {' '.join(unknown)}: not a finished run of this sweep (give a run id or the "
                         f"8-digit digest that ends it; finished runs: {shown or 'none'}). Nothing was moved.")
    return found


def _retire(out: pathlib.Path, results: ResultsFile, run_ids, reason: str, say) -> list:
    """Move each run's record, folder, log and backup to ``DIR/superseded/<run_id>@<time>/``, then drop its line.

    The order loses nothing at any crash: the old record is written first, then the files move (renames within
    the sweep folder), then ``results.jsonl`` is rewritten without the line. Returns ``study.json``'s entries.
    """
    import datetime

    from keraszoo.experiments.reproducibility import REPRODUCIBILITY_FILE
    from keraszoo.utils import atomic_write_text

    by_run, entries = results.by_run(), []
    now = datetime.datetime.now(datetime.timezone.utc)
    for run_id in run_ids:
        record = by_run[run_id]
        dest = out / SUPERSEDED_DIR / f"{run_id}@{now:%Y%m%dT%H%M%S%fZ}"
        dest.mkdir(parents=True)
        atomic_write_text(dest / "record.json", json.dumps(
            {"reason": reason, "superseded_at": now.isoformat(timespec="seconds"), "record": record},
            indent=2, sort_keys=True) + "\n")
        moves = [(out / record_model_dir(record), dest / "run"),
                 (out / LOGS_DIR / f"{run_id}.log", dest / "run.log"),
                 (out / WORK_DIR / run_id, dest / "work")]
        try:
            compared = json.loads((out / REPRODUCIBILITY_FILE).read_text()).get("run_id") == run_id
        except (OSError, ValueError, AttributeError):
            compared = False
        if compared:  # it measured the training being replaced
            moves.append((out / REPRODUCIBILITY_FILE, dest / REPRODUCIBILITY_FILE))
        for source, target in moves:
            if source.exists():
                os.replace(source, target)
        entries.append({"run_id": run_id, "reason": reason, "at": now.isoformat(timespec="seconds"),
                        "superseded": dest.relative_to(out).as_posix()})
        say(f"  retraining {run_id}: its first training is kept in {dest}")
    results.remove(run_ids)
    carried = results.carried()
    if any(run_id in carried for run_id in run_ids):  # trained here now: its folder will be here
        remaining = {k: v for k, v in carried.items() if k not in run_ids}
        atomic_write_text(out / CARRIED_FILE, json.dumps({"runs": remaining}, indent=2, sort_keys=True) + "\n")
    return entries


def _restore_state(state, out, key, say):
    """Restore the carried state in ``state`` into the sweep folder ``out`` when there is one (``--state``), after
    checking that it is this sweep's; returns ``state`` as a path."""
    from keraszoo.experiments.carry import restore_sweep
    from keraszoo.experiments.carry import state_key

    state = pathlib.Path(state)
    if not (state / STUDY_FILE).exists():
        if state.exists() and not state.is_dir():
            raise StudyError(f"--state {state}: not a folder.")
        if state.is_dir() and any(state.iterdir()):  # someone's files: the saves would write over them
            raise StudyError(f"--state {state} holds files but no saved state ({STUDY_FILE}): give a new or empty "
                             "folder, or this sweep's state folder. Nothing was written.")
        return state  # no state yet: it is written after the first save
    found = state_key(state)
    if found != key:
        raise StudyError(f"--state {state} holds the state of another sweep ({found.split(':')[0]}), not of this one "
                         f"({key.split(':')[0]}, or another spec of it). Nothing was restored or written; give the "
                         "state folder of this sweep (or a new one).")
    summary = restore_sweep(state, out)
    if summary["carried"]:
        say(f"Restored {summary['carried']} finished runs from {state} (their lines; their folders stayed on the machine "
            "that trained them).")
    return state


def _save_state(out, state):
    """Save the sweep's state into ``state`` (``--state``). A failure (a full or unmounted disk) is said on stderr,
    even when quiet, and the sweep goes on: its runs are worth more than one save, and the next finished run saves
    again."""
    import sys

    from keraszoo.experiments.carry import save_sweep

    try:
        save_sweep(out, state)
    except (OSError, StudyError) as err:
        print(f"keraszoo experiment: WARNING: could not save the sweep's state into {state} ({type(err).__name__}: "
              f"{err}); the sweep goes on and the next finished run tries again.", file=sys.stderr, flush=True)


def run_study(study, dataset: str | None = None, budget: str = "default", out=None, workers: int = 1, data_dir=None,
              quiet: bool = False, yes: bool = False, engine="local", address=None, cpus_per_run=None,
              gpus_per_run=None, shard=None, retrain=(), reason=None, state=None) -> SweepResult:
    """Run every run of ``study`` on ``dataset`` at ``budget`` that ``out`` does not hold yet.

    Args:
        study: a built-in name (``keraszoo.experiments.STUDIES``), a JSON spec file's path or a :class:`Study`.
        dataset: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"`` (default: the study's first, ``study.datasets[0]``).
        budget: ``"smoke"``, ``"default"`` or ``"full"``.
        out: the sweep folder (created; its parent must exist). It may hold
            several datasets' runs of one study (one spec) at one budget.
        workers: runs at a time, each in its own process (1: in this process); the local engine's.
        data_dir: the folder of the ``.npz`` archives (default ``$KERASZOO_DATA_DIR``).
        quiet: print nothing.
        yes: run a grid of more than :data:`LARGE_SWEEP` runs (``--yes``).
        engine: ``"local"`` (default), ``"ray"``, or an :class:`~keraszoo.experiments.engines.Engine`.
        address: the Ray cluster's address (``engine="ray"``; default: a Ray instance started for the sweep).
        cpus_per_run, gpus_per_run: Ray's ``num_cpus`` (default 1) and ``num_gpus`` (default 0) of each run.
        shard: ``"I/N"``: run only the I-th of N disjoint parts of the plan, beside the other shards,
            into the same ``out`` (see the module's docstring).
        retrain: finished runs (run ids or their digests) to train again, their first training kept in
            ``out/superseded/`` (see the module's docstring); not with ``shard``.
        reason: why they are retrained (recorded beside each and in ``study.json``).
        state: a folder that outlives this machine (a checkout, a mounted bucket) for the sweep's carried state
            (:mod:`keraszoo.experiments.carry`: results lines, ``study.json``, superseded records, no weights). A state
            already there is restored into ``out`` first (its runs count as finished), and the state is saved again
            after every finished run, so that the same command on another machine goes on where this one stopped.
            Not with ``shard``.

    Returns:
        a :class:`SweepResult`; ``results.jsonl`` in ``out`` (and ``results.d/`` for a shard) holds the records.

    Raises:
        StudyError: a bad study (any value of its spec), dataset, budget, engine, workers, shard or out folder, a
            grid over :data:`LARGE_SWEEP` runs without ``yes``, a folder of another sweep or of an edited spec
            (before anything runs or is written).
        keraszoo.output_folder.FolderLockedError: another sweep is writing to ``out`` (it is named).
    """
    from keraszoo import output_folder

    if out is None:
        raise StudyError("run_study needs out=, the sweep folder.")
    runner_engine = make_engine(engine, workers, address, cpus_per_run, gpus_per_run)
    shard = parse_shard(shard)
    retrain = [retrain] if isinstance(retrain, str) else list(retrain or ())
    if retrain and shard is not None:
        raise StudyError("--retrain needs the whole sweep folder: run it without --shard (no shard may be running).")
    if state is not None and shard is not None:
        raise StudyError("--state saves the whole sweep's lines: run the shards without it, then save the gathered "
                         "sweep (the command once more without --shard, with --state).")
    # A spec file's path, as given: the command that reruns the sweep names it (a built-in's name is enough).
    spec_file = str(study) if isinstance(study, (str, pathlib.Path)) and str(study) not in STUDIES else None
    study = get_study(study)
    dataset = study.datasets[0] if dataset is None else dataset
    runs, skipped = plan_runs(study, dataset, budget)
    if len(runs) > LARGE_SWEEP and not yes:
        raise StudyError(f"Study {study.name!r} plans {len(runs)} runs on {dataset} at budget {budget!r}, more than "
                         f"{LARGE_SWEEP}; give --yes (Python: yes=True) to run them all, or a smaller grid.")
    out = _check_out(out)
    key = _sweep_key(study, budget)
    _, legacy = _study_record(out, study, budget, dataset, runs, key)  # refuse early, before creating anything
    say = _print(quiet)
    if state is not None:
        state = _restore_state(state, out, key, say)
    sharers = None if shard is None else f"the shards (--shard I/{shard[1]}) of one sweep"
    with output_folder.claim(out, "experiment", key=key, flag="--out", ignore=legacy, shared=sharers):
        record, _ = _study_record(out, study, budget, dataset, runs, key)  # again, now that the folder is ours
        results = ResultsFile(out)
        if shard is None:  # the folder is ours alone: repair its file, take in the shards' records
            torn = results.repair()
            if torn:
                say(f"Cut off a torn last line of {results.path} ({torn} bytes, a write interrupted by a crash).")
            folded = results.fold()
            if folded:
                say(f"Moved {folded} shards' records from {out / RECORDS_DIR} into {results.path}.")
        else:
            results.path.touch()  # (O_CREAT, never truncated) the sweep's file exists for its readers
        if retrain:
            record.setdefault("retrained", []).extend(_retire(
                out, results, _resolve_retrain(retrain, runs, results.finished()),
                reason or "retrained with keraszoo experiment --retrain", say))
            _write_study_record(out, record)
            if state is not None:  # the superseded records travel now (and the retired lines leave the state)
                _save_state(out, state)
        done = results.finished()
        mine = shard_runs(runs, shard)
        todo = [spec for spec in mine if spec.run_id not in done]
        already = [spec.run_id for spec in mine if spec.run_id in done]
        carried = results.carried()
        carried = [run_id for run_id in already if run_id in carried]
        from keraszoo.version import __version__

        entry = {"planned": [s.run_id for s in runs], "skipped": list(skipped), "failed": []}
        record.update(study=study.name, budget=budget, spec=study.to_dict(), keraszoo_version=__version__)
        if spec_file is not None:
            record["spec_file"] = spec_file
        if shard is None:
            record.setdefault("datasets", {})[dataset] = entry
            _write_study_record(out, record)
            entry_path = out / STUDY_FILE
        else:  # study.json is the whole sweep's: written when its plan is not there yet; the shard's record apart
            if (record.get("datasets") or {}).get(dataset, {}).get("planned") != entry["planned"]:
                record.setdefault("datasets", {})[dataset] = dict(entry)
                _write_study_record(out, record)
            entry = {"shard": f"{shard[0]}/{shard[1]}", "planned": [s.run_id for s in mine], "skipped": [],
                     "failed": [], "busy": []}
            entry_path = out / SHARDS_DIR / f"{dataset}-{shard[0]}-of-{shard[1]}.json"
            _write_json(entry_path, entry)
        part = "" if shard is None else f" (shard {shard[0]}/{shard[1]}: {len(mine)} of them)"
        say(f"Study {study.name!r} on {dataset} at budget {budget!r}: {len(runs)} runs{part} ({len(already)} already "
            f"finished{f' ({len(carried)} carried here from another machine without their folders)' if carried else ''}, "
            f"{len(todo)} to run" + (f", {len(skipped)} skipped" if skipped else "") + f") in {out}"
            + (f", on {runner_engine.describe()}" if todo and runner_engine.describe() != "this process" else "")
            + ".")
        for item in skipped:
            say(f"  skipped {item['model']} {item['params']}: {item['reason']}")
        completed, busy = [], []
        keep = results.append if shard is None else results.write_record

        def handle(spec, outcome, seconds):
            if isinstance(outcome, RunBusy):  # another live process trains it: not recorded, not retried here
                busy.append({"run_id": spec.run_id, "reason": str(outcome)})
                say(f"  BUSY {outcome}")
                if shard is None:
                    return
                entry["busy"] = busy
            elif isinstance(outcome, RunSkipped):
                entry["skipped"].append({"run_id": spec.run_id, "model": spec.model, "params": spec.params,
                                         "reason": str(outcome)})
                say(f"  skipped {spec.run_id}: {outcome}")
            elif isinstance(outcome, BaseException):
                entry["failed"].append({"run_id": spec.run_id, "error": f"{type(outcome).__name__}: {outcome}"})
                say(f"  FAILED {spec.run_id}: {outcome}")
            else:  # a finished run changes its record only; study.json is written when the plan's record changes
                keep(outcome)
                completed.append(spec.run_id)
                if state is not None:
                    _save_state(out, state)
                n = len(already) + len(completed)
                total = outcome["test"].get("total_loss")
                say(f"  [{n}/{len(mine)}] {spec.run_id}: {seconds:.0f} s, test total_loss "
                    + (f"{total:.4g}" if total is not None else "-"))
                return
            _write_json(entry_path, record if shard is None else entry)

        if state is not None and todo:  # the plan travels even before the first run finishes
            _save_state(out, state)
        runner_engine.run(todo, out, data_dir, handle)
        failed = entry["failed"]
    where = results.path if shard is None else out / RECORDS_DIR
    say(f"{len(already) + len(completed)} of {len(mine)} runs{part and ' of this shard'} in {where}"
        + (f"; {len(failed)} failed (see {entry_path})" if failed else "")
        + (f"; {len(busy)} being trained by another process (run the command again once it has finished)"
           if busy else "") + ".")
    return SweepResult(out, [s.run_id for s in mine], already, completed, entry["skipped"], failed, busy, shard)
