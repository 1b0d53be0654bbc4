"""One run of a sweep: train one model, evaluate and probe that same model, and return its results line.

:func:`execute_run` reads the run's test images (the first ``N`` of the test split,
binarized as the run is evaluated: :func:`keraszoo.data.evaluation_binarize`) once,
and hands them to everything that measures the run:

* ``keraszoo.training.train.run`` builds, trains and saves the model, and takes the
  loss terms on them (``model.evaluate``, through the training engine); it returns
  the trained model;
* ``keraszoo.evaluate`` measures that model on them (its ``test_data`` are the same
  arrays; its k-NN and linear probe fit the codes of the train split's first images);
* the study's probes (:mod:`keraszoo.experiments.probes`) measure it on them too.

A run whose folder is already complete (an earlier sweep was killed between saving
it and writing its results line) is loaded from disk and measured, not retrained.
A configuration that cannot be built for the dataset
(:class:`keraszoo.errors.ModelBuildError`, raised before any folder is made) is a
skip, not a failure. A run whose folder another live process is training (the
training engine holds it: :func:`keraszoo.output_folder.claim`) is neither
trained again nor recorded (:class:`RunBusy`).

A sweep's worker process starts with :func:`init_worker`: its TensorFlow threads,
and a watchdog that ends the worker once the sweep that started it is gone.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import math
import os
import pathlib
import shutil
import threading
import time

from keraszoo.experiments.planning import RunSpec
from keraszoo.experiments.results import LOGS_DIR
from keraszoo.experiments.results import WORK_DIR
from keraszoo.experiments.results import _complete

__all__ = ["RunBusy", "RunFailed", "RunSkipped", "execute_run", "init_worker"]

#: Seconds between a worker's checks that its sweep is alive.
WATCH_INTERVAL = 0.5
#: A worker's exit status when its sweep is gone.
ORPHANED = 70

#: ``keraszoo.evaluate``'s fields that describe the evaluation rather than measure the model.
_SETTINGS = {"dataset", "split", "num_examples", "binarize", "seconds", "iwae_samples"}


class RunSkipped(Exception):
    """The run's model cannot be built for the dataset; the message says why (recorded, not an error)."""


class RunFailed(Exception):
    """A run stopped with an error (the loss diverged, a write failed); the sweep goes on without it."""


class RunBusy(Exception):
    """Another live process is training the run (it holds the run's folder): not trained here, not recorded."""


def _holder(*folders) -> str | None:
    """``pid N on HOST, since T`` of the process holding one of ``folders`` (its lock file names it), or ``None``."""
    from keraszoo.output_folder import LOCK_FILE

    for folder in folders:
        try:
            holder = json.loads((folder / LOCK_FILE).read_text())
            return f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


# --------------------------------------------------------------------------- a sweep's worker process
def watch_parent(parent_pid: int, interval: float = WATCH_INTERVAL) -> threading.Thread:
    """End this process (``os._exit``) within ``interval`` seconds once ``parent_pid`` is no longer its parent.

    A daemon thread polls ``os.getppid()``: when the sweep dies (``kill``, ``kill -9``,
    a closed terminal), its workers are re-parented, see it and exit, instead of
    training on without the sweep's lock or blocking forever on the pool's pipes.
    The run in flight keeps its last backup (the next sweep resumes it).
    """
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(ORPHANED)

    thread = threading.Thread(target=watch, name="keraszoo-sweep-watchdog", daemon=True)
    thread.start()
    return thread


def init_worker(threads: int, parent_pid: int):
    """A sweep worker's initializer: the watchdog of ``parent_pid`` (the sweep), then ``threads`` TensorFlow threads."""
    watch_parent(parent_pid)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def cores() -> int:
    """The cores this process may run on (all of the machine's where the OS cannot say)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def training_threads() -> int:
    """TensorFlow's intra-op threads in this process (its reductions split by them: the same run is bit-identical
    only at the same count); TensorFlow's default, 0, is one per core this process may use."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or cores()


def _read_history(path: pathlib.Path) -> dict:
    """``{column: [value per epoch]}`` of a ``training_log.csv`` (``NA`` -> ``None``; all-``NA`` columns dropped)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in (rows[0].keys() if rows else []) if c != "epoch"]
    history = {}
    for column in columns:
        values = [_number(row[column]) for row in rows]
        if any(v is not None for v in values):
            history[column] = values
    return history


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _finite(value):
    """JSON has no NaN/Inf: they are written as ``null``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value
    return float(value) if math.isfinite(value) else None


@contextlib.contextmanager
def _tensorflow_warnings_to(stream):
    """TensorFlow's Python log (retracing warnings, ...) into the run's log, not the sweep's terminal."""
    import logging

    logger = logging.getLogger("tensorflow")
    handler = logging.StreamHandler(stream)
    saved = logger.handlers[:], logger.propagate
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:], logger.propagate = saved


def execute_run(spec, out, data_dir=None) -> dict:
    """Train, save, evaluate and probe one run; returns its ``results.jsonl`` record.

    ``spec`` is a :class:`RunSpec` (or its dict); ``out`` the sweep folder. The
    run's folder is ``out/spec.model_dir``; what the run prints goes to
    ``out/logs/<run_id>.log``. A complete folder is evaluated without retraining.

    Raises:
        RunSkipped: the model cannot be built for the dataset (the reason).
        RunFailed: training stopped with an error (the message).
        RunBusy: another live process is training the run (its folder is locked; the holder is named).
    """
    import keras

    import keraszoo
    from keraszoo import data
    from keraszoo.errors import ModelBuildError
    from keraszoo.errors import UsageError
    from keraszoo.output_folder import FolderLockedError
    from keraszoo.training import train

    spec = spec if isinstance(spec, RunSpec) else RunSpec.from_dict(spec)
    root = pathlib.Path(out)
    if spec.kind == "classical":  # PCA, the linear autoencoder: fit and measured here, no folder
        from keraszoo.experiments.classical import execute_classical

        (root / LOGS_DIR).mkdir(parents=True, exist_ok=True)
        with open(root / LOGS_DIR / f"{spec.run_id}.log", "a") as log, \
                contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _tensorflow_warnings_to(log):
            try:
                return execute_classical(spec, data_dir)
            except ValueError as err:  # no dataset here, a split too small
                raise RunFailed(f"{spec.run_id}: {err}") from None
    model_dir, work_dir = root / spec.model_dir, root / WORK_DIR / spec.run_id
    (root / LOGS_DIR).mkdir(parents=True, exist_ok=True)
    recipe = spec.recipe()
    binarize = data.evaluation_binarize(recipe.binarize)
    keras.backend.clear_session()
    with open(root / LOGS_DIR / f"{spec.run_id}.log", "a") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _tensorflow_warnings_to(log):
        try:  # the run's test images, read once: training's own evaluation, keraszoo.evaluate and the probes
            test = data.load_arrays(spec.dataset, recipe.eval_split,
                                    source=recipe.data_source, data_dir=data_dir, binarize=binarize)
        except ValueError as err:  # no dataset here (DatasetUnavailableError), a split too small
            raise RunFailed(f"{spec.run_id}: {err}") from None
        if _complete(model_dir):
            model = keraszoo.load(model_dir)  # finished by an earlier sweep, killed before its results line
        else:
            print(f"keraszoo experiment: training {spec.run_id}", flush=True)
            try:
                trained = train.run(recipe, model_dir, work_dir=work_dir, data_dir=data_dir, verbose=0,
                                    test_data=test)
            except ModelBuildError as err:  # a model that cannot exist for this dataset is a skip
                raise RunSkipped(str(err)) from None
            except FolderLockedError as err:  # another live process trains this run: leave it to that one
                raise RunBusy(f"run {spec.run_id} is being trained by another process "
                              f"({_holder(model_dir, work_dir) or err}); not recorded: run the command again once "
                              "it has finished.") from None
            except UsageError as err:
                raise RunFailed(f"{spec.run_id}: {err}") from None
            if trained.status != 0:
                raise RunFailed(f"{spec.run_id}: training stopped (exit status {trained.status}); "
                                f"see {LOGS_DIR}/{spec.run_id}.log.")
            model = trained.model
        metrics = _measure(model, spec, recipe, test, binarize, data_dir)
    meta = json.loads((model_dir / "metadata.json").read_text())
    num_params = int(meta.get("parameter_count") or model.count_params())
    record = _record(spec, meta, metrics, _read_history(model_dir / "training_log.csv"), binarize, num_params)
    record["likelihood"] = model.reconstruction_description()  # what reconstruction_loss measures, with its unit
    # total_loss = reconstruction_loss + Σ w·term: the training-log check reruns from the line alone
    record["loss_weights"] = {k: float(v) for k, v in model.loss_weights().items()}
    # a weight that changes during training (the HVAE's KL warm-up) is a logged metric: {term: metric}
    record["loss_weight_metrics"] = dict(model.loss_weight_metrics())
    shutil.rmtree(work_dir, ignore_errors=True)  # the backups: the folder is complete
    return record


def _measure(model, spec: RunSpec, recipe, test, binarize, data_dir) -> dict:
    """``keraszoo.evaluate``'s metrics and the study's probes, on the run's test images ``test``."""
    import keraszoo
    from keraszoo.experiments.probes import RunInputs
    from keraszoo.experiments.probes import compute_probes

    ev, (x, y) = spec.evaluation, test
    # The k-NN and linear probe fit the codes of the train split's first images (binarized as the test images).
    metrics = keraszoo.evaluate(model, (x, y), dataset=spec.dataset, split="test", source=recipe.data_source,
                                data_dir=data_dir, binarize=binarize, max_train_examples=ev["knn_train_examples"],
                                iwae_samples=ev["iwae_samples"], fid=ev["fid"], seed=spec.seed)
    return {"evaluate": metrics, "probes": compute_probes(model, x, y, spec.probes, seed=spec.seed,
                                                          run=RunInputs(recipe, data_dir))}


def convergence(history: dict, cap: int, patience: int) -> dict:
    """How the run's training ended, from its logged epochs.

    ``epochs_run``: epochs trained; ``best_epoch`` (1-based): the epoch of the lowest
    validation total loss (the weights kept under early stopping), ``None`` without
    validation; ``stopped_early``: ended before the cap; ``still_improving``: reached the
    cap while the validation loss had improved within the last ``patience`` epochs (early
    stopping would have gone on: the run may be short of convergence); ``recent_improvement``:
    the relative fall of the best validation loss over the last ``max(1, patience)`` epochs
    (how far from a plateau the run ended; ``None`` without validation).
    """
    losses = history.get("val_total_loss") or history.get("val_loss") or []
    epochs_run = max((len(v) for v in history.values()), default=0)
    finite = [(v, i) for i, v in enumerate(losses) if v is not None]
    best = min(finite)[1] + 1 if finite else None
    at_cap = epochs_run >= cap
    window = max(1, patience)
    recent = None
    if len(finite) > window:
        before = min(v for v, i in finite if i < len(losses) - window)
        now = min(v for v, _ in finite)
        recent = (before - now) / abs(before) if before else None
    return {"epochs_run": epochs_run, "best_epoch": best, "stopped_early": not at_cap,
            "still_improving": bool(at_cap and best is not None and best > epochs_run - window),
            "recent_improvement": recent}


def _record(spec: RunSpec, meta: dict, metrics: dict, history: dict, binarize, num_params: int) -> dict:
    """The run's ``results.jsonl`` line from its saved ``metadata.json``, its measures and its training log."""
    from keraszoo.training import runtime
    from keraszoo.version import __version__

    evaluated = metrics["evaluate"]
    # test: the loss terms (model.evaluate, by the training engine), then evaluate's metrics, then the probes.
    test = {k[len("test_"):]: v for k, v in meta.get("metrics", {}).items() if k.startswith("test_")}
    for source in ({k: v for k, v in evaluated.items() if k not in _SETTINGS}, metrics["probes"]):
        for k, v in source.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                test.setdefault(k, v)
    n_train = meta["recipe"]["num_train_examples"]
    epoch_seconds = [n_train / v for v in history.get("images_per_s", []) if v]
    train_seconds = sum(epoch_seconds) if epoch_seconds else float(meta["recipe"].get("fit_time_s", 0.0))
    evaluation = {"split": "test", "num_examples": int(evaluated["num_examples"]), "binarize": binarize or "none"}
    if spec.evaluation["iwae_samples"] and "iwae_samples" in evaluated:
        evaluation["iwae_samples"] = int(evaluated["iwae_samples"])
    return {
        "run_id": spec.run_id,
        "study": spec.study,
        "variant": spec.variant,
        "dataset": spec.dataset,
        "budget": spec.budget,
        "params": spec.params,
        "seed": spec.seed,
        "epochs": spec.epochs,
        **convergence(history, spec.epochs, spec.recipe_fields.get("early_stopping", 0)),
        "num_params": num_params,
        "train_seconds": round(train_seconds, 3),
        "threads": training_threads(),
        "seconds_per_epoch": round(train_seconds / max(1, len(epoch_seconds) or spec.epochs), 3),
        "history": {k: [_finite(v) for v in vs] for k, vs in history.items()},
        "test": {k: _finite(v) for k, v in sorted(test.items())},
        "eval": evaluation,
        "model_dir": spec.model_dir,
        "keraszoo_version": __version__,
        # the libraries' versions: a run trained again under another Keras may draw its noise differently (the
        # CIFAR-10 one-class VAEs retrained in a reinstalled environment parted from their first records)
        "versions": runtime.versions(),
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
