"""A sweep's processes live and die with it, and no run is trained by two processes at once (issue 24)."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from keraszoo.cli import main
from keraszoo.experiments import run_study
from tests.experiments.conftest import TINY_SPEC

_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")


def _gone(pid) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if not _gone(p)]


_GRANDCHILD = ("import sys, time\n"
               "from keraszoo.experiments.execute import watch_parent\n"
               "watch_parent(int(sys.argv[1]), interval=0.1)\n"
               "print('watching', flush=True)\n"
               "time.sleep(120)\n")
_CHILD = ("import os, subprocess, sys, time\n"
          f"p = subprocess.Popen([sys.executable, '-c', {_GRANDCHILD!r}, str(os.getpid())])\n"
          "print(p.pid, flush=True)\n"
          "time.sleep(120)\n")


def test_the_watchdog_ends_a_process_whose_parent_was_killed():
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True, env=_ENV)
    try:
        grandchild = int(child.stdout.readline())
        assert child.stdout.readline().strip() == "watching"  # the grandchild's watchdog runs
        assert not _gone(grandchild)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert not _wait_gone([grandchild], 5), "the orphan outlived its parent by 5 s"
    finally:
        child.kill()
        child.wait()


def _hold(folder, job="train"):
    """A process holding ``folder`` (keraszoo.output_folder.claim) until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from keraszoo import output_folder\n"
         f"with output_folder.claim({str(folder)!r}, {job!r}):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_ENV)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_run_another_process_trains_is_neither_trained_nor_recorded(tmp_path, mnist_dir, capsys):
    from keraszoo.experiments import plan_runs
    from keraszoo.experiments import runner

    spec = dict(TINY_SPEC, variants=["ae"], grid={"latent_dim": [2]})
    run, = plan_runs(spec, "mnist", "smoke")[0]
    out = tmp_path / "sweep"
    out.mkdir()
    holder = _hold(out / run.model_dir)
    try:
        result = run_study(spec, budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True)
        assert result.busy and result.busy[0]["run_id"] == run.run_id and not result.completed and not result.failed
        assert f"run {run.run_id} is being trained by another process (pid {holder.pid} on " in result.busy[0]["reason"]
        assert not (out / "results.jsonl").exists() or not (out / "results.jsonl").read_text()
        assert json.loads((out / "study.json").read_text())["datasets"]["mnist"]["failed"] == []
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(spec))
        argv = ["experiment", str(path), "--budget", "smoke", "--out", str(out), "--data-dir", str(mnist_dir), "-q"]
        assert main(argv) == 1
        assert "1 of 1 runs are being trained by another process" in capsys.readouterr().err
    finally:
        holder.communicate("", timeout=60)
    assert runner.RunBusy.__name__ == "RunBusy"


def _sweep_workers(pid):
    """The spawn workers of the sweep process ``pid`` (not multiprocessing's resource tracker)."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "spawn_main" in " ".join(c.cmdline())]


@pytest.mark.slow
def test_killing_the_sweep_kills_its_workers(tmp_path, mnist_dir):
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC))
    out = tmp_path / "sweep"

    def command(workers):
        return [sys.executable, "-m", "keraszoo", "experiment", str(spec), "--budget", "smoke", "--workers",
                str(workers), "--out", str(out), "--data-dir", str(mnist_dir)]

    sweep = subprocess.Popen(command(2), env=_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    everyone = []
    try:
        deadline = time.time() + 300
        workers = []
        while time.time() < deadline and sweep.poll() is None:
            workers = _sweep_workers(sweep.pid)
            logs = list((out / "logs").glob("*.log")) if (out / "logs").is_dir() else []
            if len(workers) == 2 and len(logs) == 2:  # both workers are in a run
                break
            time.sleep(0.2)
        assert sweep.poll() is None and len(workers) == 2, "the sweep ended before both workers were running"
        everyone = sorted({c.pid for c in psutil.Process(sweep.pid).children(recursive=True)})
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait()
        left = _wait_gone(everyone, 10)
        assert not left, f"still alive 10 s after the sweep was killed: {[psutil.Process(p).cmdline() for p in left]}"
    finally:
        sweep.kill()
        sweep.wait()
        for pid in everyone:  # this test's own processes, should the watchdog have failed
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    # the next sweep resumes: nothing is left locked
    done = subprocess.run(command(1), env=_ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "4 of 4 runs" in done.stdout
