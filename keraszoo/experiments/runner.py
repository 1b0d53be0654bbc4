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
is written with one ``write`` and an ``fsync``; a line torn by a crash (no
newline at its end) is ignored and reported when the file is read, and cut off
before the next line is appended.

``workers=N`` runs N runs at a time in N processes (``concurrent.futures`` with
the ``spawn`` start method), each limited to ``cores / N`` TensorFlow threads;
the parent process alone writes ``results.jsonl``.

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

import contextlib
import dataclasses
import json
import os
import pathlib
import time

from keraszoo.experiments.execute import RunFailed
from keraszoo.experiments.execute import RunSkipped
from keraszoo.experiments.execute import execute_run
from keraszoo.experiments.planning import plan_runs
from keraszoo.experiments.results import RESULTS_FILE
from keraszoo.experiments.results import STUDY_FILE
from keraszoo.experiments.results import ResultsFile
from keraszoo.experiments.results import read_results
from keraszoo.experiments.studies import STUDIES
from keraszoo.experiments.studies import get_study
from keraszoo.experiments.study import Study
from keraszoo.experiments.study import StudyError

__all__ = ["RunFailed", "RunSkipped", "SweepResult", "execute_run", "run_study"]


def _limit_threads(threads: int):
    """A worker's initializer: ``threads`` TensorFlow threads (before TensorFlow starts)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


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


@contextlib.contextmanager
def _locked(out: pathlib.Path):
    """One sweep at a time writes a folder (POSIX advisory lock on ``DIR/.lock``)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(out / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudyError(f"Another keraszoo experiment is writing to {out}; wait for it or use another --out.") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _study_record(out: pathlib.Path, study: Study, budget: str) -> dict:
    path = out / STUDY_FILE
    if not path.is_file():
        return {"study": study.name, "budget": budget, "datasets": {}}
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return {"study": study.name, "budget": budget, "datasets": {}}
    if record.get("study") != study.name or record.get("budget") != budget:
        raise StudyError(f"{out} holds the sweep of study {record.get('study')!r} at budget {record.get('budget')!r}; "
                         f"give another --out for study {study.name!r} at budget {budget!r}.")
    return record


def _write_study_record(out: pathlib.Path, record: dict):
    from keraszoo.utils import atomic_write_text

    atomic_write_text(out / STUDY_FILE, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def _print(quiet):
    return (lambda *a, **k: None) if quiet else (lambda *a, **k: print(*a, **k, flush=True))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_study(study, dataset: str = "mnist", budget: str = "default", out=None, workers: int = 1, data_dir=None,
              quiet: bool = False) -> SweepResult:
    """Run every run of ``study`` on ``dataset`` at ``budget`` that ``out`` does not hold yet.

    Args:
        study: a built-in name (``keraszoo.experiments.STUDIES``), a JSON spec file's path or a :class:`Study`.
        dataset: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
        budget: ``"smoke"``, ``"default"`` or ``"full"``.
        out: the sweep folder (created; its parent must exist). It may hold
            several datasets' runs of one study at one budget.
        workers: runs at a time, each in its own process (1: in this process).
        data_dir: the folder of the ``.npz`` archives (default ``$KERASZOO_DATA_DIR``).
        quiet: print nothing.

    Returns:
        a :class:`SweepResult`; ``results.jsonl`` in ``out`` holds the records.

    Raises:
        StudyError: a bad study, dataset, budget, workers or out folder (before anything runs).
    """
    if out is None:
        raise StudyError("run_study needs out=, the sweep folder.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise StudyError(f"--workers must be a positive integer; got {workers!r}.")
    # A spec file's path, as given: the command that reruns the sweep names it (a built-in's name is enough).
    spec_file = str(study) if isinstance(study, (str, pathlib.Path)) and str(study) not in STUDIES else None
    study = get_study(study)
    runs, skipped = plan_runs(study, dataset, budget)
    out = _check_out(out)
    say = _print(quiet)
    out.mkdir(exist_ok=True)
    with _locked(out):
        record = _study_record(out, study, budget)
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
        completed, failed = [], []

        def handle(spec, outcome, seconds):
            if isinstance(outcome, RunSkipped):
                entry["skipped"].append({"run_id": spec.run_id, "model": spec.model, "params": spec.params,
                                         "reason": str(outcome)})
                say(f"  skipped {spec.run_id}: {outcome}")
            elif isinstance(outcome, BaseException):
                entry["failed"].append({"run_id": spec.run_id, "error": f"{type(outcome).__name__}: {outcome}"})
                say(f"  FAILED {spec.run_id}: {outcome}")
            else:
                results.append(outcome)
                completed.append(spec.run_id)
                n = len(already) + len(completed)
                total = outcome["test"].get("total_loss")
                say(f"  [{n}/{len(runs)}] {spec.run_id}: {seconds:.0f} s, test total_loss "
                    + (f"{total:.4g}" if total is not None else "-"))
            _write_study_record(out, record)

        if workers == 1 or len(todo) <= 1:
            for spec in todo:
                t0 = time.time()
                try:
                    outcome = execute_run(spec, out, data_dir)
                except (RunSkipped, RunFailed) as err:
                    outcome = err
                handle(spec, outcome, time.time() - t0)
        else:
            _run_parallel(todo, out, data_dir, workers, handle)
        failed = entry["failed"]
    say(f"{len(already) + len(completed)} of {len(runs)} runs in {results.path}"
        + (f"; {len(failed)} failed (see {out / STUDY_FILE})" if failed else "") + ".")
    return SweepResult(out, [s.run_id for s in runs], already, completed, entry["skipped"], failed)


def _run_parallel(todo, out, data_dir, workers, handle):
    import concurrent.futures
    import multiprocessing

    threads = max(1, _cores() // workers)
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                  initializer=_limit_threads, initargs=(threads,))
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
            except (RunSkipped, RunFailed) as err:
                outcome = err
            except concurrent.futures.process.BrokenProcessPool as err:
                raise RuntimeError(f"A worker process died while running {spec.run_id} ({err}); the finished runs are "
                                   f"in {out / RESULTS_FILE}: run the same command again to continue.") from None
            handle(spec, outcome, time.time() - started[spec.run_id])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
