"""Two shards of one sweep, two processes at once, into one folder (issue 27); then the unsharded command gathers them."""

import json
import os
import subprocess
import sys

import pytest

from keraszoo.experiments import plan_runs
from keraszoo.experiments import read_results
from keraszoo.experiments import run_study
from tests.experiments.conftest import TINY_SPEC

_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")


@pytest.mark.slow
def test_two_shards_at_once_then_the_whole_sweep_finds_every_run_finished(tmp_path, mnist_dir):
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC))
    out = tmp_path / "sweep"

    def command(*more):
        return [sys.executable, "-m", "keraszoo", "experiment", str(spec), "--budget", "smoke", "--out", str(out),
                "--data-dir", str(mnist_dir), *more]

    shards = [subprocess.Popen(command("--shard", f"{i}/2"), env=_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for i in range(2)]
    outputs = [shard.communicate(timeout=600) for shard in shards]
    for shard, (stdout, stderr) in zip(shards, outputs):
        assert shard.returncode == 0, stdout[-2000:] + stderr[-2000:]
        assert "4 runs (shard " in stdout and "2 of 2 runs of this shard in" in stdout
    planned = sorted(s.run_id for s in plan_runs(TINY_SPEC, "mnist", "smoke")[0])
    assert sorted(p.stem for p in (out / "results.d").glob("*.json")) == planned
    assert sorted(r["run_id"] for r in read_results(out)) == planned
    assert not (out / ".keraszoo.lock").exists()  # the last shard out removed it

    result = run_study(str(spec), budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True)
    assert result.completed == [] and sorted(result.already_finished) == planned
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["run_id"] for r in records) == planned  # folded: each run once
    assert not list((out / "results.d").glob("*.json"))
    for r in records:
        assert (out / r["model_dir"] / "metadata.json").is_file()
