"""The sweep's engines and shards without training (issue 27): one orchestration, engines behind one interface.

A fake engine stands in for the runs (records of "classical" runs: finished without a
run folder), so that what the sweep does around its engine -- shards, the records, the
fold, skipping finished runs -- is checked in seconds. The real runs are in
``test_scaling_out.py`` (slow).
"""

import json
import sys

import pytest

from keraszoo.experiments import RunFailed
from keraszoo.experiments import StudyError
from keraszoo.experiments import plan_runs
from keraszoo.experiments import read_results
from keraszoo.experiments import run_study
from keraszoo.experiments.engines import Engine
from keraszoo.experiments.engines import LocalEngine
from keraszoo.experiments.engines import RayEngine
from keraszoo.experiments.engines import make_engine
from keraszoo.experiments.runner import parse_shard
from keraszoo.experiments.runner import shard_runs
from tests.experiments.conftest import TINY_SPEC

SPEC = dict(TINY_SPEC, grid={"latent_dim": [2, 3, 4, 5, 6]})  # 10 runs


class FakeEngine(Engine):
    """Records instead of runs; ``fail``: run ids that raise RunFailed; remembers what it was given."""

    name = "fake"

    def __init__(self, fail=()):
        self.fail, self.given = set(fail), []

    def run(self, todo, out, data_dir, handle):
        for spec in todo:
            self.given.append(spec.run_id)
            if spec.run_id in self.fail:
                handle(spec, RunFailed(f"{spec.run_id}: diverged"), 0.0)
            else:
                handle(spec, {"run_id": spec.run_id, "kind": "classical", "test": {"total_loss": 1.0}}, 0.0)


def test_shards_split_the_plan_into_disjoint_parts_that_cover_it():
    runs, _ = plan_runs(SPEC, "mnist", "smoke")
    for count in (1, 2, 3, 4, 10, 12):
        parts = [shard_runs(runs, (i, count)) for i in range(count)]
        ids = [s.run_id for part in parts for s in part]
        assert sorted(ids) == sorted(s.run_id for s in runs) and len(set(ids)) == len(ids)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
        # the same on every host: a function of the run ids alone, whatever order the plan comes in
        assert [s.run_id for s in shard_runs(list(reversed(runs)), (0, count))] == \
            [s.run_id for s in reversed(parts[0])]
    assert parse_shard("0/4") == (0, 4) and parse_shard((3, 4)) == (3, 4) and parse_shard(None) is None
    for bad in ("4/4", "-1/2", "1", "a/b", "1/0", "1/2/3"):
        with pytest.raises(StudyError, match=r"--shard must be I/N with 0 <= I < N"):
            parse_shard(bad)


def test_engine_choices_are_checked_before_anything_runs(tmp_path):
    assert isinstance(make_engine("local", 3), LocalEngine) and make_engine("local", 3).workers == 3
    with pytest.raises(StudyError, match=r"--address, --gpus-per-run go with --engine ray"):
        make_engine("local", address="auto", gpus_per_run=1)
    with pytest.raises(StudyError, match=r"Unknown engine 'slurm'; known: local, ray"):
        make_engine("slurm")
    with pytest.raises(StudyError, match=r"--workers must be a positive integer"):
        run_study(SPEC, budget="smoke", out=tmp_path / "x", workers=0)
    with pytest.raises(StudyError, match=r"--cpus-per-run must be a positive number"):
        RayEngine(cpus_per_run=0)
    assert not (tmp_path / "x").exists()


def test_without_ray_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(StudyError, match=r'--engine ray needs Ray.*pip install "keraszoo\[ray\]"'):
        run_study(SPEC, budget="smoke", out=tmp_path / "sweep", engine="ray")
    assert not (tmp_path / "sweep").exists()


def test_shards_write_one_file_per_run_and_the_unsharded_sweep_folds_them(tmp_path):
    out = tmp_path / "sweep"
    first, second = FakeEngine(fail={sorted(s.run_id for s in plan_runs(SPEC, "mnist", "smoke")[0])[0]}), FakeEngine()
    a = run_study(SPEC, budget="smoke", out=out, engine=first, shard="0/2", quiet=True)
    b = run_study(SPEC, budget="smoke", out=out, engine=second, shard="1/2", quiet=True)
    planned = json.loads((out / "study.json").read_text())["datasets"]["mnist"]["planned"]
    assert sorted(a.planned + b.planned) == sorted(planned) and not set(a.planned) & set(b.planned)
    assert first.given == a.planned and second.given == b.planned  # each engine got its shard only
    assert a.shard == (0, 2) and b.shard == (1, 2)
    assert len(a.failed) == 1 and len(a.completed) == 4 and len(b.completed) == 5
    assert (out / "results.jsonl").read_bytes() == b""  # a shard never appends: its records are files
    assert sorted(p.stem for p in (out / "results.d").glob("*.json")) == sorted(a.completed + b.completed)
    shard0 = json.loads((out / "shards" / "mnist-0-of-2.json").read_text())
    assert shard0["shard"] == "0/2" and shard0["planned"] == a.planned and shard0["failed"] == a.failed
    assert {r["run_id"] for r in read_results(out)} == set(a.completed + b.completed)  # read together

    again = run_study(SPEC, budget="smoke", out=out, engine=FakeEngine(), shard="0/2", quiet=True)
    assert again.completed == [a.failed[0]["run_id"]] and sorted(again.already_finished) == sorted(a.completed)

    engine = FakeEngine()
    whole = run_study(SPEC, budget="smoke", out=out, engine=engine, quiet=True)
    assert engine.given == [] and sorted(whole.already_finished) == sorted(planned)
    lines = (out / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["run_id"] for line in lines) == sorted(planned)  # each run once
    assert not list((out / "results.d").glob("*.json"))
    run_study(SPEC, budget="smoke", out=out, engine=FakeEngine(), quiet=True)
    assert (out / "results.jsonl").read_text().splitlines() == lines


def test_a_shard_of_another_spec_is_refused(tmp_path):
    out = tmp_path / "sweep"
    run_study(SPEC, budget="smoke", out=out, engine=FakeEngine(), shard="0/2", quiet=True)
    with pytest.raises(StudyError, match=r"holds a sweep of another spec of study 'tiny' \(changed: grid.latent_dim\)"):
        run_study(TINY_SPEC, budget="smoke", out=out, engine=FakeEngine(), shard="1/2", quiet=True)


def test_a_failed_shard_is_a_failed_command(tmp_path, capsys, monkeypatch):
    from keraszoo.cli import main
    from keraszoo.experiments import runner

    run_id = sorted(s.run_id for s in plan_runs(TINY_SPEC, "mnist", "smoke")[0])[0]
    monkeypatch.setattr(runner, "make_engine", lambda *a, **k: FakeEngine(fail={run_id}))
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC))
    out = tmp_path / "sweep"
    argv = ["experiment", str(spec), "--budget", "smoke", "--out", str(out), "--shard", "0/2", "-q"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"1 of 2 runs failed ({run_id}); see {out / 'shards'}" in err and str(out / "results.d") in err
