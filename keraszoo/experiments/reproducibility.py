"""How far the same seed moves between two processes: one run of a sweep trained again and compared.

:func:`recheck` takes a finished sweep folder, trains one of its runs again (the first finished run of
the plan unless named) in a fresh process with the sweep's thread count, into a temporary folder, and
compares the two: every weight of ``model.weights.h5``, every logged epoch of the training log and every
test metric. It writes ``reproducibility.json`` in the sweep folder, which the report shows beside the
study. Run it with ``keraszoo experiment STUDY --out DIR --recheck [RUN_ID]``.

On a CPU, keraszoo seeds Python, NumPy and Keras from the run's seed and turns on TensorFlow's op
determinism (``keraszoo.training.runtime.determinism``); the same run in two processes with the same
number of threads is then expected to be bit-identical. A different thread count (oneDNN splits its
reductions by thread), another CPU type or another TensorFlow build may change the float rounding, and
a GPU's kernels are not all deterministic: the check measures the case at hand, it does not assume it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import shutil
import tempfile

import numpy as np

from keraszoo.experiments.study import StudyError

__all__ = ["REPRODUCIBILITY_FILE", "compare_runs", "recheck", "weights_of"]

#: The check's record in the sweep folder.
REPRODUCIBILITY_FILE = "reproducibility.json"


def weights_of(path) -> dict:
    """``{dataset path: array}`` of every array in a ``.weights.h5`` file."""
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                arrays[name] = np.asarray(item)

        f.visititems(visit)
    return arrays


def is_timing(name: str) -> bool:
    """Whether a logged or test metric is a duration or a speed (``images_per_s``, ``anomaly_seconds_<score>``): it
    changes with the machine's load, not with the seed, and is left out of the comparison."""
    return name.endswith("_per_s") or "seconds" in name.split("_")


def _diff(a, b) -> dict:
    """``{"max_abs", "max_rel"}`` between two lists or arrays of numbers (``None`` entries ignored)."""
    a = np.asarray([np.nan if v is None else v for v in np.ravel(a)], "float64")
    b = np.asarray([np.nan if v is None else v for v in np.ravel(b)], "float64")
    if a.shape != b.shape:
        return {"max_abs": None, "max_rel": None, "shapes": [list(a.shape), list(b.shape)]}
    finite = np.isfinite(a) & np.isfinite(b)
    if not finite.any():
        return {"max_abs": 0.0, "max_rel": 0.0}
    d = np.abs(a[finite] - b[finite])
    scale = np.maximum(np.abs(a[finite]), 1e-12)
    return {"max_abs": float(d.max()), "max_rel": float((d / scale).max())}


def compare_runs(first_dir, second_dir, first_record, second_record) -> dict:
    """The differences between two trainings of one run: weights, training log, test metrics."""
    w1, w2 = weights_of(pathlib.Path(first_dir) / "model.weights.h5"), weights_of(pathlib.Path(second_dir) /
                                                                                 "model.weights.h5")
    same_names = sorted(w1) == sorted(w2)
    identical = same_names and all(w1[k].shape == w2[k].shape and np.array_equal(w1[k], w2[k]) for k in w1)
    weight_abs = max((float(np.max(np.abs(w1[k].astype("float64") - w2[k].astype("float64"))))
                      for k in w1 if k in w2 and w1[k].shape == w2[k].shape and w1[k].size), default=None)
    weight_scale = max((float(np.max(np.abs(w1[k]))) for k in w1 if w1[k].size), default=1.0)
    return {
        "weights_bit_identical": bool(identical),
        "weights_max_abs_diff": weight_abs,
        "weights_max_abs": weight_scale,
        **compare_records(first_record, second_record),
    }


def compare_records(first_record, second_record) -> dict:
    """The differences between two results lines of one run: every logged epoch and every test metric (timings
    aside). Used by :func:`compare_runs` (with the weights) and by the report's retrained runs (lines alone)."""
    h1, h2 = first_record.get("history", {}), second_record.get("history", {})
    history = {k: _diff(h1[k], h2[k]) for k in sorted(set(h1) & set(h2)) if not is_timing(k)}
    t1, t2 = first_record.get("test", {}), second_record.get("test", {})
    test = {k: {"first": t1[k], "second": t2[k], **_diff([t1[k]], [t2[k]])} for k in sorted(set(t1) & set(t2))
            if isinstance(t1[k], (int, float)) and isinstance(t2[k], (int, float)) and not is_timing(k)}
    return {
        "epochs_run": [first_record.get("epochs_run"), second_record.get("epochs_run")],
        "history_bit_identical": all(d["max_abs"] == 0.0 for d in history.values()),
        "history": history,
        "test_bit_identical": all(d["max_abs"] == 0.0 for d in test.values()),
        "test_max_rel_diff": max((d["max_rel"] for d in test.values() if d["max_rel"] is not None), default=None),
        "test": test,
    }


def _pick(out, run_id):
    """``(spec, record)`` of the run to train again: ``run_id``, else the first finished model run of the plan."""
    from keraszoo.experiments.planning import RunSpec
    from keraszoo.experiments.planning import plan_runs
    from keraszoo.experiments.planning import run_digest
    from keraszoo.experiments.results import STUDY_FILE
    from keraszoo.experiments.results import ResultsFile
    from keraszoo.experiments.study import Study

    try:
        sweep = json.loads((out / STUDY_FILE).read_text())
    except (OSError, ValueError):
        raise StudyError(f"{out} holds no sweep (no readable {STUDY_FILE}): run `keraszoo experiment` first.") from None
    study = Study.from_dict(sweep["spec"])
    finished = ResultsFile(out).finished()
    plans = [s for dataset in sweep.get("datasets", {}) for s in plan_runs(study, dataset, sweep["budget"])[0]]
    # A run is known by its digest (of everything that decides it): study.json keeps the grid with its keys sorted,
    # so a run's readable name, which follows the grid's order, can differ from the one the sweep gave it.
    by_digest = {run_digest(rid): rid for rid in finished}
    plans = [dataclasses.replace(s, run_id=by_digest.get(run_digest(s.run_id), s.run_id)) for s in plans]
    # The comparison reads the first training's folder: a run carried here without it (carried.json) cannot be rechecked.
    carried = ResultsFile(out).carried()
    here = [s for s in plans if s.kind == "model" and s.run_id in finished
            and not (s.run_id in carried and not (out / s.model_dir).is_dir())]
    if run_id is not None:
        candidates = [s for s in here if s.run_id == run_id]
        if not candidates:
            why = ("was carried here without its folder (carried.json): recheck it where it was trained, or name a run "
                   "trained here" if run_id in carried else f"is not a finished run of the sweep in {out}")
            raise StudyError(f"Run {run_id!r} {why}; finished runs: "
                             f"{', '.join(sorted(finished)[:5])}{' ...' if len(finished) > 5 else ''}.")
    else:
        candidates = here
    if not candidates:
        raise StudyError(f"The sweep in {out} has no finished run to train again"
                         + (" whose folder is here (the others were carried without theirs)." if carried else "."))
    spec = candidates[0]
    return RunSpec.from_dict(spec.to_dict()), finished[spec.run_id]


def recheck(out, run_id=None, *, threads: int = 1, data_dir=None) -> dict:
    """Train one finished run of the sweep in ``out`` again in a fresh process and compare; returns the record.

    The fresh process runs the TensorFlow threads the run's results line records (``threads``, written since
    the lines record it); ``threads`` is for a line that does not: the sweep's own ``cores // workers`` (the
    sweeps of ``keraszoo experiment --workers 2`` on 2 cores use 1). The record says which
    (``threads_from``). Writes ``out/reproducibility.json``.
    """
    import concurrent.futures
    import multiprocessing

    import tensorflow as tf

    from keraszoo.experiments.execute import execute_run
    from keraszoo.experiments.execute import init_worker
    from keraszoo.utils import atomic_write_text
    from keraszoo.version import __version__

    out = pathlib.Path(out)
    spec, first = _pick(out, run_id)
    threads, threads_from = ((int(first["threads"]), "the results line") if first.get("threads")
                             else (int(threads), "the sweep's --workers (the results line records none)"))
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="keraszoo-recheck-"))
    try:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context, initializer=init_worker,
                                                    initargs=(threads, os.getpid())) as pool:
            second = pool.submit(execute_run, spec.to_dict(), str(scratch), data_dir).result()
        comparison = compare_runs(out / spec.model_dir, scratch / spec.model_dir, first, second)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    record = {
        "run_id": spec.run_id,
        "study": spec.study,
        "dataset": spec.dataset,
        "threads": threads,
        "threads_from": threads_from,
        "tensorflow_version": tf.__version__,
        "keraszoo_version": __version__,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **comparison,
    }
    atomic_write_text(out / REPRODUCIBILITY_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
