"""What the Ray tests run as a sweep's task instead of keraszoo's own (``RayEngine(function=...)``).

Ray workers import these by name, so the tests start Ray with this checkout on their
``PYTHONPATH``. The faults are arranged here, on the test side; keraszoo runs unchanged.

* :func:`fake_run`: no training -- a record (a "classical" run: finished without a folder),
  or the exception the spec's ``params["outcome"]`` names, or a SIGKILL of its own worker;
* :func:`killed_once`: keraszoo's :func:`~keraszoo.experiments.engines.run_one`, SIGKILLed after its first
  training step when the test has left ``OUT/logs/.kill-<run_id>`` (taken away by that first attempt).
"""

from __future__ import annotations

import os
import pathlib
import signal

from keraszoo.experiments.execute import RunFailed
from keraszoo.experiments.execute import RunSkipped


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _first_time(out, run_id) -> bool:
    """``True`` the first time it is asked about ``run_id`` in ``out`` (a marker file remembers across processes)."""
    marker = pathlib.Path(out) / "logs" / f".attempted-{run_id}"  # (the sweep's own logs folder)
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def fake_run(spec, out, data_dir, threads):
    """``params["outcome"]``: ``"ok"`` (a record), ``"failed"``, ``"skipped"``, ``"bug"`` (a ValueError),
    ``"dies_once"`` (SIGKILL on the first attempt, then a record) or ``"dies"`` (SIGKILL every time)."""
    run_id, outcome = spec["run_id"], spec["params"].get("outcome", "ok")
    if outcome == "failed":
        raise RunFailed(f"{run_id}: the loss diverged")
    if outcome == "skipped":
        raise RunSkipped(f"{run_id}: cannot be built")
    if outcome == "bug":
        raise ValueError(f"{run_id}: a bug")
    if outcome == "dies" or (outcome == "dies_once" and _first_time(out, run_id)):
        _die()
    return {"run_id": run_id, "kind": "classical", "pid": os.getpid(), "threads": threads,
            "test": {"total_loss": 1.0}}, 0.0


def fake_run_with(outcomes: dict):
    """:func:`fake_run` with each run's outcome from ``outcomes`` (``{run_id: outcome}``; a sweep plans its own specs)."""
    def run(spec, out, data_dir, threads):
        return fake_run(dict(spec, params={**spec["params"], "outcome": outcomes[spec["run_id"]]}), out, data_dir, threads)

    return run


def kill_on_first_attempt(out, run_id):
    """Arrange for :func:`killed_once` to SIGKILL run ``run_id`` of the sweep ``out`` once."""
    marker = pathlib.Path(out) / "logs" / f".kill-{run_id}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def killed_once(spec, out, data_dir, threads):
    """keraszoo's task; a run marked by :func:`kill_on_first_attempt` is SIGKILLed after global step 1, once."""
    from keraszoo.experiments.engines import run_one

    try:
        (pathlib.Path(out) / "logs" / f".kill-{spec['run_id']}").unlink()  # whoever removes it is the first attempt
        first = True
    except FileNotFoundError:
        first = False
    if first:
        from tests.support.faults import injected

        with injected("1"):
            return run_one(spec, out, data_dir, threads)
    return run_one(spec, out, data_dir, threads)
