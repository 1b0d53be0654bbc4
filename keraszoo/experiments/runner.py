"""Running a study (the sweep): plan its runs, run each, append one JSON line per run.

:func:`run_study` is ``keraszoo experiment`` from Python. A sweep's folder::

    DIR/results.jsonl        one JSON object per finished run (written by the parent process only)
    DIR/study.json           the study, budget, planned run ids, skipped runs (with the reason), failures
    DIR/runs/<run_id>/       each run's save_pretrained folder (training_log.csv, metadata.json, ...)
    DIR/logs/<run_id>.log    what the run printed

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

``workers=N`` runs N runs at a time in N processes (``concurrent.futures`` with
the ``spawn`` start method), each limited to ``cores / N`` TensorFlow threads;
the parent process alone writes ``results.jsonl``. A worker whose sweep is gone
(killed: ``kill``, ``kill -9``, a closed terminal) exits within a second
(:func:`~keraszoo.experiments.execute.init_worker`).

Bigger than one machine
-----------------------
Runs are independent and :func:`execute_run` is a plain function of a
picklable :class:`RunSpec`, so an existing engine can map them over a cluster
-- keraszoo does not schedule. With Ray (``pip install ray``; DIR on a file
system every node sees)::

    import ray
    from keraszoo.experiments import ResultsFile, execute_run, get_study, plan_runs

    out = "/shared/runs/latent"
    runs, skipped = plan_runs(get_study("latent"), dataset="mnist", budget="full")
    results = ResultsFile(out)                     # the driver is the only writer
    results.repair()                               # a line torn by an earlier crash
    done = results.finished()
    task = ray.remote(num_gpus=1)(execute_run)
    pending = [task.remote(spec, out, data_dir="/shared/data") for spec in runs if spec.run_id not in done]
    while pending:
        ready, pending = ray.wait(pending)
        results.append(ray.get(ready[0]))

With KerasTuner's distributed mode (``KERASTUNER_TUNER_ID``,
``KERASTUNER_ORACLE_IP``/``_PORT`` on each worker), a ``keras_tuner.Tuner``
subclass whose ``run_trial`` builds the :class:`RunSpec` of its trial's
hyperparameters (the study's grid as ``hp.Choice``\\ s, searched by the
``GridSearch`` oracle) and calls :func:`execute_run` runs the same sweep; the
chief then appends the records. Either way the folder reads as one made by
``keraszoo experiment`` (``keraszoo report`` takes it as is).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time

from keraszoo.experiments.execute import RunBusy
from keraszoo.experiments.execute import RunFailed
from keraszoo.experiments.execute import RunSkipped
from keraszoo.experiments.execute import execute_run
from keraszoo.experiments.execute import init_worker
from keraszoo.experiments.planning import plan_runs
from keraszoo.experiments.results import RESULTS_FILE
from keraszoo.experiments.results import STUDY_FILE
from keraszoo.experiments.results import ResultsFile
from keraszoo.experiments.results import read_results
from keraszoo.experiments.studies import STUDIES
from keraszoo.experiments.studies import get_study
from keraszoo.experiments.study import Study
from keraszoo.experiments.study import StudyError

__all__ = ["LARGE_SWEEP", "RunBusy", "RunFailed", "RunSkipped", "SweepResult", "execute_run", "run_study"]

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
_SWEEP_ENTRIES = {STUDY_FILE, RESULTS_FILE, "runs", "logs", "work", ".lock"}


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
    names = {p.name for p in out.iterdir()} - {output_folder.LOCK_FILE, output_folder.MARKER_FILE}
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
    from keraszoo.utils import atomic_write_text

    text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    try:
        if (out / STUDY_FILE).read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(out / STUDY_FILE, text)


def _print(quiet):
    return (lambda *a, **k: None) if quiet else (lambda *a, **k: print(*a, **k, flush=True))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_study(study, dataset: str = "mnist", budget: str = "default", out=None, workers: int = 1, data_dir=None,
              quiet: bool = False, yes: bool = False) -> SweepResult:
    """Run every run of ``study`` on ``dataset`` at ``budget`` that ``out`` does not hold yet.

    Args:
        study: a built-in name (``keraszoo.experiments.STUDIES``), a JSON spec file's path or a :class:`Study`.
        dataset: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
        budget: ``"smoke"``, ``"default"`` or ``"full"``.
        out: the sweep folder (created; its parent must exist). It may hold
            several datasets' runs of one study (one spec) at one budget.
        workers: runs at a time, each in its own process (1: in this process).
        data_dir: the folder of the ``.npz`` archives (default ``$KERASZOO_DATA_DIR``).
        quiet: print nothing.
        yes: run a grid of more than :data:`LARGE_SWEEP` runs (``--yes``).

    Returns:
        a :class:`SweepResult`; ``results.jsonl`` in ``out`` holds the records.

    Raises:
        StudyError: a bad study (any value of its spec), dataset, budget, workers or out folder, a grid
            over :data:`LARGE_SWEEP` runs without ``yes``, a folder of another sweep or of an edited spec
            (before anything runs or is written).
        keraszoo.output_folder.FolderLockedError: another sweep is writing to ``out`` (it is named).
    """
    from keraszoo import output_folder

    if out is None:
        raise StudyError("run_study needs out=, the sweep folder.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise StudyError(f"--workers must be a positive integer; got {workers!r}.")
    # A spec file's path, as given: the command that reruns the sweep names it (a built-in's name is enough).
    spec_file = str(study) if isinstance(study, (str, pathlib.Path)) and str(study) not in STUDIES else None
    study = get_study(study)
    runs, skipped = plan_runs(study, dataset, budget)
    if len(runs) > LARGE_SWEEP and not yes:
        raise StudyError(f"Study {study.name!r} plans {len(runs)} runs on {dataset} at budget {budget!r}, more than "
                         f"{LARGE_SWEEP}; give --yes (Python: yes=True) to run them all, or a smaller grid.")
    out = _check_out(out)
    key = _sweep_key(study, budget)
    _, legacy = _study_record(out, study, budget, dataset, runs, key)  # refuse early, before creating anything
    say = _print(quiet)
    with output_folder.claim(out, "experiment", key=key, flag="--out", ignore=legacy):
        record, _ = _study_record(out, study, budget, dataset, runs, key)  # again, now that the folder is ours
        results = ResultsFile(out)
        torn = results.repair()
        if torn:
            say(f"Cut off a torn last line of {results.path} ({torn} bytes, a write interrupted by a crash).")
        done = results.finished()
        todo = [spec for spec in runs if spec.run_id not in done]
        already = [spec.run_id for spec in runs if spec.run_id in done]
        from keraszoo.version import __version__

        entry = {"planned": [s.run_id for s in runs], "skipped": list(skipped), "failed": []}
        record.update(study=study.name, budget=budget, spec=study.to_dict(), keraszoo_version=__version__)
        if spec_file is not None:
            record["spec_file"] = spec_file
        record.setdefault("datasets", {})[dataset] = entry
        _write_study_record(out, record)
        say(f"Study {study.name!r} on {dataset} at budget {budget!r}: {len(runs)} runs ({len(already)} already "
            f"finished, {len(todo)} to run" + (f", {len(skipped)} skipped" if skipped else "") + f") in {out}.")
        for item in skipped:
            say(f"  skipped {item['model']} {item['params']}: {item['reason']}")
        completed, busy = [], []

        def handle(spec, outcome, seconds):
            if isinstance(outcome, RunBusy):  # another live process trains it: not recorded, not retried here
                busy.append({"run_id": spec.run_id, "reason": str(outcome)})
                say(f"  BUSY {outcome}")
                return
            if isinstance(outcome, RunSkipped):
                entry["skipped"].append({"run_id": spec.run_id, "model": spec.model, "params": spec.params,
                                         "reason": str(outcome)})
                say(f"  skipped {spec.run_id}: {outcome}")
            elif isinstance(outcome, BaseException):
                entry["failed"].append({"run_id": spec.run_id, "error": f"{type(outcome).__name__}: {outcome}"})
                say(f"  FAILED {spec.run_id}: {outcome}")
            else:  # a finished run changes results.jsonl only; study.json is written when the plan's record changes
                results.append(outcome)
                completed.append(spec.run_id)
                n = len(already) + len(completed)
                total = outcome["test"].get("total_loss")
                say(f"  [{n}/{len(runs)}] {spec.run_id}: {seconds:.0f} s, test total_loss "
                    + (f"{total:.4g}" if total is not None else "-"))
                return
            _write_study_record(out, record)

        if workers == 1 or len(todo) <= 1:
            for spec in todo:
                t0 = time.time()
                try:
                    outcome = execute_run(spec, out, data_dir)
                except (RunSkipped, RunFailed, RunBusy) as err:
                    outcome = err
                handle(spec, outcome, time.time() - t0)
        else:
            _run_parallel(todo, out, data_dir, workers, handle)
        failed = entry["failed"]
    say(f"{len(already) + len(completed)} of {len(runs)} runs in {results.path}"
        + (f"; {len(failed)} failed (see {out / STUDY_FILE})" if failed else "")
        + (f"; {len(busy)} being trained by another process (run the command again once it has finished)"
           if busy else "") + ".")
    return SweepResult(out, [s.run_id for s in runs], already, completed, entry["skipped"], failed, busy)


def _run_parallel(todo, out, data_dir, workers, handle):
    import concurrent.futures
    import multiprocessing

    threads = max(1, _cores() // workers)
    context = multiprocessing.get_context("spawn")
    before = set(multiprocessing.active_children())
    # Each worker watches this process: killed (kill -9, a closed terminal), the sweep takes its workers along.
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                  initializer=init_worker, initargs=(threads, os.getpid()))
    started = {}
    try:
        futures = {}
        for spec in todo:
            futures[pool.submit(execute_run, spec.to_dict(), str(out), data_dir)] = spec
            started[spec.run_id] = time.time()
        for future in concurrent.futures.as_completed(futures):
            spec = futures[future]
            try:
                outcome = future.result()
            except (RunSkipped, RunFailed, RunBusy) as err:
                outcome = err
            except concurrent.futures.process.BrokenProcessPool as err:
                raise RuntimeError(f"A worker process died while running {spec.run_id} ({err}); the finished runs are "
                                   f"in {out / RESULTS_FILE}: run the same command again to continue.") from None
            handle(spec, outcome, time.time() - started[spec.run_id])
    except BaseException:  # Ctrl-C, a dead worker, a failed write: the workers stop with the sweep
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in set(multiprocessing.active_children()) - before:
            worker.terminate()  # its run resumes from its last backup next time
        raise
    pool.shutdown(wait=True)
