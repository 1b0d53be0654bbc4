"""Running a study: plan its runs, train and evaluate each, append one JSON line per run.

:func:`run_study` is ``keraszoo experiment`` from Python. A sweep's folder::

    DIR/results.jsonl        one JSON object per finished run (written by the parent process only)
    DIR/study.json           the study, budget, planned run ids, skipped runs (with the reason), failures
    DIR/runs/<run_id>/       each run's save_pretrained folder (training_log.csv, metadata.json, ...)
    DIR/logs/<run_id>.log    what the run printed

Each run is :func:`execute_run`: ``keraszoo.training.train.run`` (resumable: a
killed run continues from its backup), then the saved model is loaded back and
evaluated on the first ``N`` test images -- the loss terms (``model.evaluate``,
through the training engine), ``keraszoo.evaluate``'s metrics and the study's
probes (:mod:`keraszoo.experiments.probes`). A run whose folder is complete but
which has no results line (a kill between the two) is evaluated, not retrained.

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
import csv
import dataclasses
import datetime
import hashlib
import json
import math
import os
import pathlib
import re
import shutil
import time
import warnings

from keraszoo.experiments.studies import get_study
from keraszoo.experiments.study import RESERVED_ARGS
from keraszoo.experiments.study import Study
from keraszoo.experiments.study import StudyError
from keraszoo.experiments.study import _did_you_mean
from keraszoo.experiments.study import check_budget_name
from keraszoo.experiments.study import expand_grid
from keraszoo.experiments.study import expand_grid_entries

__all__ = [
    "ResultsFile",
    "RunFailed",
    "RunSkipped",
    "RunSpec",
    "SweepResult",
    "TornLineWarning",
    "execute_run",
    "plan_runs",
    "read_results",
    "run_study",
]

RESULTS_FILE = "results.jsonl"
STUDY_FILE = "study.json"
RUNS_DIR = "runs"
LOGS_DIR = "logs"
WORK_DIR = "work"


class RunSkipped(Exception):
    """The run's model cannot be built for the dataset; the message says why (recorded, not an error)."""


class RunFailed(Exception):
    """A run stopped with an error (the loss diverged, a write failed); the sweep goes on without it."""


class TornLineWarning(UserWarning):
    """``results.jsonl`` ends with a line cut short by a crash; it is ignored."""


# --------------------------------------------------------------------------- planning
@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: everything :func:`execute_run` needs, picklable and JSON-ready."""

    run_id: str
    study: str
    dataset: str
    budget: str
    model: str
    variant: str
    #: every argument of the run the study sets (fixed and varied), with ``model``.
    params: dict
    #: arguments of :class:`~keraszoo.training.recipe.Recipe` beyond ``params`` (the budget's).
    recipe_fields: dict
    #: ``{num_examples, binarize, knn_train_examples, iwae_samples, fid}``.
    evaluation: dict
    probes: dict
    seed: int
    epochs: int

    @property
    def model_dir(self) -> str:
        """The run's ``save_pretrained`` folder, relative to the sweep folder."""
        return f"{RUNS_DIR}/{self.run_id}"

    def recipe(self):
        """The run's :class:`~keraszoo.training.recipe.Recipe`."""
        from keraszoo.training.recipe import Recipe

        fields, kwargs, options = _split_params(self.params)
        return Recipe(model_kwargs=kwargs, options=options, dataset=self.dataset, **fields, **self.recipe_fields)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, spec: dict) -> RunSpec:
        return cls(**spec)


def _recipe_fields() -> set:
    from keraszoo.training.recipe import Recipe

    return {f.name for f in dataclasses.fields(Recipe)} - {"model_kwargs", "options", "hparam"}


def _split_params(params: dict):
    """``params`` -> ``(Recipe fields, model constructor kwargs, training options)``."""
    from keraszoo.training.recipe import option_flags

    fields, options = _recipe_fields(), option_flags()
    out = ({}, {}, {})
    for name, value in params.items():
        out[0 if name in fields else 2 if name in options else 1][name] = value
    return out


def _resolve_models(names) -> list:
    from keraszoo.models import list_presets
    from keraszoo.models import list_variants

    models = []
    for name in names:
        if name == "*":
            models.extend(sorted(list_variants()))
        elif name in list_presets():
            models.append(name)
        else:
            known = sorted(list_presets())
            raise StudyError(f"Unknown model {name!r} in the study.{_did_you_mean(name, known)} Models: variant keys "
                             f"or presets ({', '.join(known)}), or '*' for every variant.")
    return list(dict.fromkeys(models))


def _accepts(cls, arg) -> bool:
    """Whether variant ``cls`` takes ``arg`` (a constructor argument or a training option)."""
    from keraszoo.training.recipe import check_hyperparameters

    if arg in cls.all_training_options():
        return True
    try:
        check_hyperparameters(cls, {arg: None})
    except ValueError:
        return False
    return arg not in ("input_shape", "encoder", "decoder")


def _known_args(models) -> set:
    """Every constructor argument and training option of ``models`` (for did-you-mean hints)."""
    import inspect

    from keraszoo.models import resolve_preset

    names = set()
    for model in models:
        cls = resolve_preset(model)[0]
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is not None:
                names |= set(inspect.signature(init).parameters)
        names |= set(cls.all_training_options())
    return names - {"self", "args", "kwargs", "input_shape", "encoder", "decoder"}


def _fmt(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_id_for(study: str, dataset: str, model: str, point: dict, identity: dict) -> str:
    """``<model>-<dataset>[-<arg>=<value>...]-<digest>``: readable, filesystem-safe, unique.

    The varied arguments (``point``) name the run; the digest (8 hex digits of the
    SHA-1 of ``identity``: study, dataset, model, every argument and the budget's
    settings) keeps two different runs apart.
    """
    parts = [model, dataset] + [f"{k}={_fmt(v)}" for k, v in point.items() if k != "model"]
    slug = re.sub(r"[^A-Za-z0-9._,=+-]+", "_", "-".join(parts))[:120]
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def plan_runs(study, dataset: str = "mnist", budget: str = "default"):
    """``(runs, skipped)``: the :class:`RunSpec` of each run of ``study`` on ``dataset`` at ``budget``.

    ``skipped`` lists ``{"model", "params", "reason"}`` for the grid points a
    model cannot run (an argument that model does not take, an architecture it
    does not have).

    Raises:
        StudyError: unknown dataset or budget, an unknown model, a grid argument
            no model of the study accepts, the same run twice.
    """
    from keraszoo.data import list_datasets
    from keraszoo.models import resolve_preset

    study = get_study(study)
    check_budget_name(budget)
    if dataset not in list_datasets():
        raise StudyError(f"--dataset must be one of {', '.join(list_datasets())}; got {dataset!r}."
                         f"{_did_you_mean(dataset, list_datasets())}")
    if dataset not in study.datasets:
        raise StudyError(f"Study {study.name!r} runs on {', '.join(study.datasets)}; got --dataset {dataset!r}.")
    settings = study.budget(budget)
    entries = expand_grid_entries(study.grid_at(budget))
    fields = _recipe_fields()

    # Which arguments does any model of the study accept?
    points = []  # (model, point)
    for entry in entries:
        models = _resolve_models(entry["model"] if "model" in entry else study.variants)
        for point in expand_grid({k: v for k, v in entry.items() if k != "model"}):
            points.extend((model, dict(model=model, **point) if "model" in entry else point) for model in models)
    all_models = list(dict.fromkeys(m for m, _ in points))
    candidates = set(study.fixed) | {k for e in entries for k in e if k != "model"}
    accepted = {m: {a for a in candidates if _accepts(resolve_preset(m)[0], a)} for m in all_models}
    anyone = set().union(*accepted.values()) | fields
    for source, args in (("fixed", study.fixed), ("grid", {k for e in entries for k in e if k != "model"})):
        for arg in args:
            if arg in RESERVED_ARGS:
                raise StudyError(f"Study {study.name!r}: {source}.{arg}: {arg!r} is set by the command or the budget.")
            if arg not in anyone:
                raise StudyError(
                    f"Study {study.name!r}: {source} argument {arg!r} is accepted by none of its models "
                    f"({', '.join(all_models)}).{_did_you_mean(arg, sorted(_known_args(all_models) | fields))} "
                    "Arguments are the models' "
                    "constructor arguments, their training options and Recipe fields "
                    f"({', '.join(sorted(fields - {'model', 'dataset'}))}).")

    runs, skipped, seen = [], [], {}
    for model, point in points:
        cls, preset = resolve_preset(model)
        params = {"model": model, **study.fixed, **{k: v for k, v in point.items() if k != "model"}}
        unknown = sorted(k for k in params if k != "model" and k not in fields and k not in accepted[model])
        if unknown:
            skipped.append({"model": model, "params": params,
                            "reason": f"{cls.__name__} ({cls.variant}) takes no argument {', '.join(unknown)}."})
            continue
        architecture = params.get("architecture", preset.get("architecture"))
        if architecture is not None:
            try:
                cls._check_architecture(architecture)
            except ValueError as err:
                skipped.append({"model": model, "params": params, "reason": str(err)})
                continue
        recipe_fields = {"epochs": settings.epochs, "limit": settings.limit,
                         "eval_split": f"test[:{settings.eval_examples}]"}
        if "batch_size" not in params:
            recipe_fields["batch_size"] = settings.batch_size
        evaluation = {"num_examples": settings.eval_examples, "knn_train_examples": settings.knn_train_examples,
                      "iwae_samples": settings.iwae_samples, "fid": settings.fid}
        seed = int(params.get("seed", 0))
        identity = {"study": study.name, "dataset": dataset, "params": params, "recipe_fields": recipe_fields,
                    "evaluation": evaluation, "probes": study.probes}
        run_id = run_id_for(study.name, dataset, model, point, identity)
        if run_id in seen:
            raise StudyError(f"Study {study.name!r}: the grid yields the run {run_id} twice ({params}).")
        seen[run_id] = params
        spec = RunSpec(run_id=run_id, study=study.name, dataset=dataset, budget=budget, model=model,
                       variant=cls.variant, params=params, recipe_fields=recipe_fields,
                       evaluation=evaluation, probes=study.probes, seed=seed, epochs=settings.epochs)
        try:
            spec.recipe()  # the Recipe's own checks (lr, batch size, ...)
        except ValueError as err:
            raise StudyError(f"Study {study.name!r}, run {run_id}: {err}") from None
        runs.append(spec)
    return runs, skipped


# --------------------------------------------------------------------------- one run
def _complete(model_dir: pathlib.Path) -> bool:
    """A save_pretrained folder whose ``metadata.json`` (written last) is there and readable."""
    try:
        meta = json.loads((model_dir / "metadata.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and all((model_dir / name).is_file() for name in meta.get("files", {}))


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


def _limit_threads(threads: int):
    """A worker's initializer: ``threads`` TensorFlow threads (before TensorFlow starts)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


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
    """
    import keras

    import keraszoo
    from keraszoo import data
    from keraszoo.experiments.probes import compute_probes
    from keraszoo.training import train
    from keraszoo.training.recipe import UsageError
    from keraszoo.version import __version__

    spec = spec if isinstance(spec, RunSpec) else RunSpec.from_dict(spec)
    root = pathlib.Path(out)
    model_dir, work_dir = root / spec.model_dir, root / WORK_DIR / spec.run_id
    (root / LOGS_DIR).mkdir(parents=True, exist_ok=True)
    recipe = spec.recipe()
    info = data.dataset_info(spec.dataset)
    keras.backend.clear_session()
    with open(root / LOGS_DIR / f"{spec.run_id}.log", "a") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _tensorflow_warnings_to(log):
        if not _complete(model_dir):
            try:
                recipe.build_model(info.image_shape)  # a model that cannot exist for this dataset is a skip
            except UsageError as err:
                raise RunSkipped(str(err)) from None
            keras.backend.clear_session()
            print(f"keraszoo experiment: training {spec.run_id}", flush=True)
            try:
                status = train.run(recipe, model_dir, work_dir=work_dir, data_dir=data_dir, verbose=0)
            except UsageError as err:
                raise RunFailed(f"{spec.run_id}: {err}") from None
            if status != 0:
                raise RunFailed(f"{spec.run_id}: training stopped (exit status {status}); see {LOGS_DIR}/{spec.run_id}.log.")
        meta = json.loads((model_dir / "metadata.json").read_text())
        model = keraszoo.load(model_dir)  # the files checked against metadata.json: what is evaluated is what was saved
        binarize = train._eval_binarize(recipe.binarize)
        ev = spec.evaluation
        metrics = keraszoo.evaluate(model, spec.dataset, split="test", source=recipe.data_source, data_dir=data_dir,
                                    num_examples=ev["num_examples"], binarize=binarize,
                                    max_train_examples=ev["knn_train_examples"], iwae_samples=ev["iwae_samples"],
                                    fid=ev["fid"], seed=spec.seed)
        x, y = data.load_arrays(spec.dataset, f"test[:{ev['num_examples']}]", source=recipe.data_source,
                                data_dir=data_dir, binarize=binarize)
        probe_values = compute_probes(model, x, y, spec.probes, seed=spec.seed)

    # test: the loss terms (model.evaluate, by the training engine), then evaluate's metrics, then the probes.
    test = {k[len("test_"):]: v for k, v in meta.get("metrics", {}).items() if k.startswith("test_")}
    settings = {"dataset", "split", "num_examples", "binarize", "seconds", "iwae_samples"}
    for source in ({k: v for k, v in metrics.items() if k not in settings}, probe_values):
        for k, v in source.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                test.setdefault(k, v)
    history = _read_history(model_dir / "training_log.csv")
    n_train = meta["recipe"]["num_train_examples"]
    epoch_seconds = [n_train / v for v in history.get("images_per_s", []) if v]
    train_seconds = sum(epoch_seconds) if epoch_seconds else float(meta["recipe"].get("fit_time_s", 0.0))
    evaluation = {"split": "test", "num_examples": int(metrics["num_examples"]), "binarize": binarize or "none"}
    if ev["iwae_samples"] and "iwae_samples" in metrics:
        evaluation["iwae_samples"] = int(metrics["iwae_samples"])
    record = {
        "run_id": spec.run_id,
        "study": spec.study,
        "variant": spec.variant,
        "dataset": spec.dataset,
        "budget": spec.budget,
        "params": spec.params,
        "seed": spec.seed,
        "epochs": spec.epochs,
        "num_params": int(meta.get("parameter_count") or model.count_params()),
        "train_seconds": round(train_seconds, 3),
        "seconds_per_epoch": round(train_seconds / max(1, len(epoch_seconds) or spec.epochs), 3),
        "history": {k: [_finite(v) for v in vs] for k, vs in history.items()},
        "test": {k: _finite(v) for k, v in sorted(test.items())},
        "eval": evaluation,
        "model_dir": spec.model_dir,
        "keraszoo_version": __version__,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    shutil.rmtree(work_dir, ignore_errors=True)  # the backups: the folder is complete
    return record


# --------------------------------------------------------------------------- the results file
class ResultsFile:
    """``DIR/results.jsonl``: one JSON object per finished run, appended atomically line by line."""

    def __init__(self, out):
        self.out = pathlib.Path(out)
        self.path = self.out / RESULTS_FILE

    def _lines(self):
        """``(complete lines, torn tail bytes)``."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return [], b""
        head, _, tail = raw.rpartition(b"\n")
        lines = head.split(b"\n") if head or raw.startswith(b"\n") else []
        return lines, tail

    def read(self) -> list:
        """Every record, in the order written (the last of a ``run_id`` wins in :meth:`by_run`).

        A torn last line (a crash while it was written) is ignored with a
        :class:`TornLineWarning`; a malformed complete line raises ``ValueError``.
        """
        lines, tail = self._lines()
        if tail.strip():
            warnings.warn(f"{self.path}: ignoring a torn last line ({len(tail)} bytes, no newline: a write cut short "
                          "by a crash); its run is run again.", TornLineWarning, stacklevel=2)
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise ValueError(f"{self.path}, line {number}: not a JSON object ({err}).") from None
            if not isinstance(record, dict) or "run_id" not in record:
                raise ValueError(f"{self.path}, line {number}: expected a JSON object with a run_id.")
            records.append(record)
        return records

    def by_run(self) -> dict:
        """``{run_id: record}`` (the last record of each run)."""
        return {r["run_id"]: r for r in self.read()}

    def finished(self) -> dict:
        """``{run_id: record}`` of the runs whose ``model_dir`` folder is complete."""
        return {k: r for k, r in self.by_run().items() if _complete(self.out / r.get("model_dir", RUNS_DIR + "/" + k))}

    def repair(self) -> int:
        """Cut off a torn last line; returns the number of bytes removed (0: none)."""
        _, tail = self._lines()
        if not tail:
            return 0
        size = self.path.stat().st_size
        with open(self.path, "r+b") as f:
            f.truncate(size - len(tail))
            f.flush()
            os.fsync(f.fileno())
        return len(tail)

    def append(self, record: dict) -> None:
        """Append ``record`` as one line: one ``write`` of the whole line, then ``fsync``."""
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # a full disk: leave a torn line for repair() rather than a wrong one
                raise OSError(f"only {written} of {len(line)} bytes of a results line were written to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)


def read_results(out) -> list:
    """The records of a sweep folder's ``results.jsonl`` (or of that file), the last per ``run_id``."""
    out = pathlib.Path(out)
    folder = out.parent if out.name == RESULTS_FILE else out
    return list(ResultsFile(folder).by_run().values())


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
