"""Where a sweep's runs execute: this process, a pool of local processes, or a Ray cluster.

An engine takes the runs still to do and calls ``handle(spec, outcome, seconds)``
*in the sweep's process* as each one ends; ``outcome`` is the run's
``results.jsonl`` record, or the :class:`~keraszoo.experiments.execute.RunSkipped`,
:class:`~keraszoo.experiments.execute.RunFailed` or
:class:`~keraszoo.experiments.execute.RunBusy` it raised. Everything else -- the
plan, the folder's claim, skipping finished runs, writing the records exactly
once, the summary -- is the sweep's (:func:`keraszoo.experiments.runner.run_study`),
the same whichever engine runs the runs. Every engine runs the same function,
:func:`~keraszoo.experiments.execute.execute_run`, on the same picklable spec.

* :class:`LocalEngine` (``--workers N``): one run at a time in this process, or N
  at a time in N ``spawn`` processes, each with ``cores / N`` TensorFlow threads;
  the workers end with the sweep (:func:`~keraszoo.experiments.execute.init_worker`).
  A worker that dies stops the sweep (rerun it to go on).
* :class:`RayEngine` (``--engine ray [--address ADDR]``): each run is a Ray task
  (``num_cpus``/``num_gpus`` per run) on the cluster at ``ADDR`` or on a Ray
  instance started here (stopped again at the end). A task whose worker process
  or node dies is rerun by Ray (``max_retries``; the run resumes from its training
  backup); once those are spent it is recorded as failed, like a run that raised
  :class:`RunFailed`, and the sweep goes on. The sweep folder and the data must be
  on a file system every node sees, at the same path. Ctrl-C (or the end of the
  driver) cancels the tasks in flight.

Ray is optional: ``pip install "keraszoo[ray]"``.
"""

from __future__ import annotations

import os
import time

from keraszoo.experiments.execute import RunBusy
from keraszoo.experiments.execute import RunFailed
from keraszoo.experiments.execute import RunSkipped
from keraszoo.experiments.execute import cores
from keraszoo.experiments.execute import execute_run
from keraszoo.experiments.execute import init_worker
from keraszoo.experiments.results import RESULTS_FILE
from keraszoo.experiments.study import StudyError

__all__ = ["ENGINES", "Engine", "LocalEngine", "RayEngine", "make_engine", "run_one"]

#: What a run raises that the sweep records (the other exceptions stop the sweep).
EXPECTED = (RunSkipped, RunFailed, RunBusy)
#: The engines by the name ``--engine`` takes.
ENGINES = ("local", "ray")
RAY_HINT = 'pip install "keraszoo[ray]"'


class Engine:
    """Runs a sweep's runs; see the module's docstring."""

    name = "engine"

    def describe(self) -> str:
        """A few words for the sweep's first line (``"2 local workers"``)."""
        return self.name

    def run(self, todo, out, data_dir, handle) -> None:
        """Run every spec of ``todo`` (:class:`~keraszoo.experiments.planning.RunSpec`) into the sweep folder ``out``,
        calling ``handle(spec, outcome, seconds)`` here as each one ends."""
        raise NotImplementedError


# --------------------------------------------------------------------------- on this machine
class LocalEngine(Engine):
    """``workers`` runs at a time on this machine: in this process (1) or in as many processes."""

    name = "local"

    def __init__(self, workers: int = 1):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise StudyError(f"--workers must be a positive integer; got {workers!r}.")
        self.workers = workers

    def describe(self) -> str:
        return "this process" if self.workers == 1 else f"{self.workers} local worker processes"

    def run(self, todo, out, data_dir, handle) -> None:
        if self.workers == 1 or len(todo) <= 1:
            for spec in todo:
                t0 = time.time()
                try:
                    outcome = execute_run(spec, out, data_dir)
                except EXPECTED as err:
                    outcome = err
                handle(spec, outcome, time.time() - t0)
        else:
            self._run_pool(todo, out, data_dir, handle)

    def _run_pool(self, todo, out, data_dir, handle):
        import concurrent.futures
        import multiprocessing

        threads = max(1, cores() // self.workers)
        context = multiprocessing.get_context("spawn")
        before = set(multiprocessing.active_children())
        # Each worker watches this process: killed (kill -9, a closed terminal), the sweep takes its workers along.
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
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
                except EXPECTED as err:
                    outcome = err
                except concurrent.futures.process.BrokenProcessPool as err:
                    raise RuntimeError(f"A worker process died while running {spec.run_id} ({err}); the finished runs "
                                       f"are in {out / RESULTS_FILE}: run the same command again to continue.") from None
                handle(spec, outcome, time.time() - started[spec.run_id])
        except BaseException:  # Ctrl-C, a dead worker, a failed write: the workers stop with the sweep
            pool.shutdown(wait=False, cancel_futures=True)
            for worker in set(multiprocessing.active_children()) - before:
                worker.terminate()  # its run resumes from its last backup next time
            raise
        pool.shutdown(wait=True)


# --------------------------------------------------------------------------- on a Ray cluster
def run_one(spec, out, data_dir, threads):
    """A Ray task: :func:`execute_run` with ``threads`` TensorFlow threads; returns ``(record, seconds)``."""
    t0 = time.time()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    try:  # a worker that ran a task before has its thread pools already (Ray reuses workers of one shape)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
    return execute_run(spec, out, data_dir), time.time() - t0


def import_ray():
    """The ``ray`` module, or a :class:`StudyError` saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise StudyError(f"--engine ray needs Ray, which is not installed here ({err}); install it with {RAY_HINT} "
                         "(on every node of the cluster, with keraszoo).") from None
    return ray


class RayEngine(Engine):
    """Each run a Ray task on the cluster at ``address`` (``None``: a Ray instance started here for the sweep).

    Args:
        address: ``ray.init``'s address (``"auto"``, ``"ray://head:10001"``, ``"10.0.0.1:6379"``).
        cpus_per_run: Ray's ``num_cpus`` of each task, and its TensorFlow threads.
        gpus_per_run: Ray's ``num_gpus`` of each task (a fraction shares a GPU); a GPU task gets a
            fresh worker process (``max_calls=1``), so that TensorFlow sees the GPU Ray assigned.
        max_retries: reruns of a task whose worker or node died (Ray's ``max_retries``).
        num_cpus: the CPUs of a Ray instance started here (default: every core).
        function: what each task runs (default :func:`run_one`; tests substitute a faulty one).
    """

    name = "ray"

    def __init__(self, address=None, cpus_per_run=1, gpus_per_run=0, max_retries=2, num_cpus=None, function=None):
        if not isinstance(cpus_per_run, (int, float)) or isinstance(cpus_per_run, bool) or cpus_per_run <= 0:
            raise StudyError(f"--cpus-per-run must be a positive number; got {cpus_per_run!r}.")
        if not isinstance(gpus_per_run, (int, float)) or isinstance(gpus_per_run, bool) or gpus_per_run < 0:
            raise StudyError(f"--gpus-per-run must be a number >= 0; got {gpus_per_run!r}.")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise StudyError(f"max_retries must be an integer >= 0; got {max_retries!r}.")
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self.function = function or run_one

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        gpus = f", {self.gpus_per_run:g} GPU" if self.gpus_per_run else ""
        return f"{where} ({self.cpus_per_run:g} CPU{gpus} per run)"

    def _start(self, ray) -> bool:
        """Connect to (or start) Ray; ``True`` when this call started it (and stops it at the end)."""
        import logging

        if ray.is_initialized():  # the caller's own Ray session
            return False
        options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        if self.address:
            ray.init(address=self.address, **options)
        else:
            ray.init(num_cpus=self.num_cpus, **options)
        return True

    def run(self, todo, out, data_dir, handle) -> None:
        ray = import_ray()
        if not todo:
            return
        started_here = self._start(ray)
        options = dict(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=self.max_retries,
                       retry_exceptions=False)
        if self.gpus_per_run:
            options["max_calls"] = 1
        task = ray.remote(self.function).options(**options)
        threads = max(1, int(self.cpus_per_run))
        if data_dir is None:  # the driver's, not whatever each node's workers were started with
            from keraszoo.data import DATA_DIR_ENV

            data_dir = os.environ.get(DATA_DIR_ENV) or None
        pending, submitted = {}, {}
        try:
            for spec in todo:
                ref = task.remote(spec.to_dict(), str(out), data_dir, threads)
                pending[ref], submitted[spec.run_id] = spec, time.time()
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(ref)
                outcome, seconds = self._outcome(ray, ref, spec), time.time() - submitted[spec.run_id]
                if isinstance(outcome, tuple):
                    outcome, seconds = outcome
                handle(spec, outcome, seconds)
        except BaseException:  # Ctrl-C, a failed write: nothing keeps running for a sweep that is gone
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - a task that has just ended
                    pass
            raise
        finally:
            if started_here:
                ray.shutdown()

    def _outcome(self, ray, ref, spec):
        """``(record, seconds)``, or the exception the sweep records; an unexpected error of the run is raised."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:  # the run raised: the same exception as in a local worker
            cause = getattr(err, "cause", None)
            if isinstance(cause, EXPECTED):
                return cause
            raise (cause if isinstance(cause, Exception) else err) from None
        except ray.exceptions.RayError as err:  # its worker or node died, more often than max_retries allows
            first = (str(err).strip().splitlines() or [""])[0]
            return RunFailed(f"{spec.run_id}: its Ray task was lost {self.max_retries + 1} times "
                             f"({type(err).__name__}: {first}); run the sweep again to retry it.")


# --------------------------------------------------------------------------- choosing one
def make_engine(engine="local", workers: int = 1, address=None, cpus_per_run=None, gpus_per_run=None) -> Engine:
    """The engine of ``keraszoo experiment --engine ... --workers ... --address ...`` (an :class:`Engine` is returned as is)."""
    if isinstance(engine, Engine):
        if workers != 1 or address is not None or cpus_per_run is not None or gpus_per_run is not None:
            raise StudyError("Give the engine's settings to the engine object itself, not to run_study.")
        return engine
    if engine == "local":
        ray_flags = [flag for flag, value in (("--address", address), ("--cpus-per-run", cpus_per_run),
                                              ("--gpus-per-run", gpus_per_run)) if value is not None]
        if ray_flags:
            raise StudyError(f"{', '.join(ray_flags)} go with --engine ray; the local engine takes --workers.")
        return LocalEngine(workers)
    if engine == "ray":
        import_ray()  # refused now, before the sweep claims its folder
        if workers != 1:
            raise StudyError("--workers is the local engine's; with --engine ray, Ray runs as many runs at a time as "
                             "the cluster has room for (--cpus-per-run, --gpus-per-run).")
        return RayEngine(address=address, cpus_per_run=1 if cpus_per_run is None else cpus_per_run,
                         gpus_per_run=0 if gpus_per_run is None else gpus_per_run)
    raise StudyError(f"Unknown engine {engine!r}; known: {', '.join(ENGINES)}.")
