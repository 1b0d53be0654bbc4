"""A sweep on Ray (issue 27): each run a Ray task on a local Ray instance (2 CPUs); skipped without ``ray``.

The fast tests run stand-in tasks (``tests/support/ray_tasks.py``: no training) through the
engine: what the sweep records of a task that returns, raises, or whose worker dies once or
every time. The slow one runs the tiny study for real, one run SIGKILLed mid-epoch by the
test, then reruns it.
"""

import dataclasses
import json
import os
import shutil

import pytest

from keraszoo.experiments import RunFailed
from keraszoo.experiments import RunSkipped
from keraszoo.experiments import plan_runs
from keraszoo.experiments import read_results
from keraszoo.experiments import run_study
from keraszoo.experiments.engines import RayEngine
from tests.conftest import REPO_ROOT
from tests.experiments.conftest import TINY_SPEC

ray = pytest.importorskip("ray")


def _start_ray():
    """A local Ray instance with 2 CPUs whose workers import this checkout's ``tests`` (the stand-in tasks)."""
    if not ray.is_initialized():
        import logging

        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 runtime_env={"env_vars": {"PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}})


@pytest.fixture(scope="module")
def local_ray():
    _start_ray()
    yield
    ray.shutdown()


def _specs(*outcomes):
    runs = plan_runs(dict(TINY_SPEC, grid={"latent_dim": list(range(2, 2 + len(outcomes)))}, variants=["ae"]),
                     "mnist", "smoke")[0]
    return [dataclasses.replace(spec, params={**spec.params, "outcome": outcome}) for spec, outcome in zip(runs, outcomes)]


def test_each_outcome_of_a_task_is_what_a_local_run_gives(local_ray, tmp_path):
    from tests.support.ray_tasks import fake_run

    specs = _specs("ok", "failed", "skipped", "dies_once", "dies")
    got = {}
    RayEngine(function=fake_run, max_retries=1).run(specs, tmp_path, None,
                                                    lambda spec, outcome, s: got.setdefault(spec.params["outcome"], outcome))
    assert got["ok"]["run_id"] == specs[0].run_id and got["ok"]["threads"] == 1
    assert isinstance(got["failed"], RunFailed) and "the loss diverged" in str(got["failed"])
    assert isinstance(got["skipped"], RunSkipped)
    assert got["dies_once"]["run_id"] == specs[3].run_id  # its worker died; Ray ran it again
    assert isinstance(got["dies"], RunFailed)
    assert f"{specs[4].run_id}: its Ray task was lost 2 times (" in str(got["dies"])  # max_retries=1: two tries


def test_a_sweep_on_ray_records_each_run_once_and_a_bug_stops_it(local_ray, tmp_path):
    from tests.support.ray_tasks import fake_run
    from tests.support.ray_tasks import fake_run_with

    specs = _specs("ok", "dies_once", "failed")
    spec = dict(TINY_SPEC, variants=["ae"], grid={"latent_dim": [2, 3, 4]})
    out = tmp_path / "sweep"
    fake = RayEngine(function=fake_run_with({s.run_id: s.params["outcome"] for s in specs}))
    result = run_study(spec, budget="smoke", out=out, engine=fake, quiet=True)
    assert sorted(result.completed) == sorted(s.run_id for s in specs[:2])
    assert [f["run_id"] for f in result.failed] == [specs[2].run_id]
    lines = (out / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["run_id"] for line in lines) == sorted(result.completed)
    assert json.loads((out / "study.json").read_text())["datasets"]["mnist"]["failed"] == result.failed
    again = run_study(spec, budget="smoke", out=out, engine=fake, quiet=True)  # the finished runs are skipped
    assert sorted(again.already_finished) == sorted(result.completed) and again.completed == []
    assert [f["run_id"] for f in again.failed] == [specs[2].run_id]
    with pytest.raises(ValueError, match=r"a bug"):  # an unexpected error stops the sweep, as with local workers
        RayEngine(function=fake_run).run(_specs("bug"), tmp_path, None, lambda *a: None)


@pytest.mark.slow
def test_a_smoke_sweep_on_ray_with_a_killed_task_then_reruns(local_ray, tmp_path, mnist_dir, capsys):
    from keraszoo.cli import main
    from tests.support.ray_tasks import kill_on_first_attempt
    from tests.support.ray_tasks import killed_once

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_SPEC))
    out = tmp_path / "sweep"
    planned = sorted(s.run_id for s in plan_runs(TINY_SPEC, "mnist", "smoke")[0])
    killed = planned[1]
    kill_on_first_attempt(out, killed)
    result = run_study(str(path), budget="smoke", out=out, data_dir=str(mnist_dir), engine=RayEngine(function=killed_once),
                       quiet=True)
    assert sorted(result.completed) == planned and not result.failed and not result.busy
    assert (out / "logs" / f"{killed}.log").read_text().count(f"training {killed}") == 2  # killed, run again by Ray
    lines = (out / "results.jsonl").read_bytes()
    records = [json.loads(line) for line in lines.splitlines()]
    assert sorted(r["run_id"] for r in records) == planned  # every run exactly once
    for r in records:
        assert (out / r["model_dir"] / "metadata.json").is_file() and len(r["history"]["total_loss"]) == 1

    ray.shutdown()  # the command starts (and stops) a Ray instance of its own
    argv = ["experiment", str(path), "--budget", "smoke", "--out", str(out), "--data-dir", str(mnist_dir), "--engine", "ray"]
    assert main(argv) == 0
    assert "4 runs (4 already finished, 0 to run)" in capsys.readouterr().out
    assert (out / "results.jsonl").read_bytes() == lines
    shutil.rmtree(out / records[0]["model_dir"])  # a lost run folder is run again, on a Ray instance started here
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "4 runs (3 already finished, 1 to run)" in printed and "on a local Ray instance (1 CPU per run)" in printed
    assert not ray.is_initialized()
    assert sorted(r["run_id"] for r in read_results(out)) == planned
    _start_ray()  # for the module's fixture
