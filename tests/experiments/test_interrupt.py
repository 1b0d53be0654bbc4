"""An interrupted sweep loses no finished run (issue 11's last fault case): SIGKILL the command, run it again."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.experiments.conftest import TINY_SPEC


def _command(spec, out, data_dir):
    return [sys.executable, "-m", "keraszoo", "experiment", str(spec), "--budget", "smoke", "--out", str(out),
            "--data-dir", str(data_dir)]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")


@pytest.mark.slow
def test_sigkill_after_the_first_result_then_rerun(tmp_path, mnist_dir):
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC))
    out = tmp_path / "sweep"
    results = out / "results.jsonl"
    proc = subprocess.Popen(_command(spec, out, mnist_dir), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if results.is_file() and results.read_bytes().endswith(b"\n"):
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stdout.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    first = results.read_bytes()
    assert first.count(b"\n") == 1  # killed while the second run was in flight
    first_record = json.loads(first)
    weights = out / first_record["model_dir"] / "model.weights.h5"
    mtime = weights.stat().st_mtime_ns

    done = subprocess.run(_command(spec, out, mnist_dir), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "4 runs (1 already finished, 3 to run)" in done.stdout
    lines = results.read_bytes().splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    assert sorted(r["run_id"] for r in records) == sorted(json.loads((out / "study.json").read_text())
                                                          ["datasets"]["mnist"]["planned"])
    assert len(records) == 4 and len({r["run_id"] for r in records}) == 4  # every run exactly once
    assert lines[0] == first  # the finished run is untouched: its line and its weights
    assert weights.stat().st_mtime_ns == mtime
    for r in records:
        assert (out / r["model_dir"] / "metadata.json").is_file() and len(r["history"]["total_loss"]) == 1
