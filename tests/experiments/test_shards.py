"""Shards of one sweep share its folder safely (issue 27): shared claims, and records from many processes at once.

Plain processes that import ``keraszoo.output_folder`` or ``keraszoo.experiments.results``
(no TensorFlow), so these run in seconds; the shards' real sweeps are in
``test_scaling_out.py`` (slow).
"""

import json
import os
import subprocess
import sys

import pytest

from keraszoo import output_folder
from keraszoo.experiments import ResultsFile
from keraszoo.experiments import read_results

_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
SHARDS = "the shards (--shard I/2) of one sweep"


def _hold(folder, key, shared=SHARDS):
    """A process holding ``folder`` (a claim of job "experiment") until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from keraszoo import output_folder\n"
         f"with output_folder.claim({str(folder)!r}, 'experiment', key={key!r}, shared={shared!r}):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_ENV)
    line = holder.stdout.readline().strip()
    if line != "held":
        holder.kill()
        raise AssertionError(f"the holder did not claim {folder}: {holder.communicate()[1][-2000:]}")
    return holder


def test_shards_share_the_folder_an_exclusive_sweep_waits_and_the_last_one_out_removes_the_lock(tmp_path):
    out = tmp_path / "sweep"
    one = _hold(out, "k1")
    two = _hold(out, "k1")  # a second shard of the same sweep, at the same time
    try:
        with output_folder.claim(out, "experiment", key="k1", shared=SHARDS):  # and a third, here
            assert output_folder.read_marker(out)["key"] == "k1"
        assert (out / output_folder.LOCK_FILE).exists()  # the others still hold it
        with pytest.raises(output_folder.FolderLockedError, match=r"is in use: keraszoo experiment \(processes that share "
                                                                  r"it: the shards \(--shard I/2\) of one sweep\)"):
            with output_folder.claim(out, "experiment", key="k1"):
                pass
        with pytest.raises(output_folder.FolderNotEmptyError, match=r"holds a keraszoo experiment of another study"):
            with output_folder.claim(out, "experiment", key="k2", shared=SHARDS):
                pass
    finally:
        one.communicate("", timeout=60)
    assert (out / output_folder.LOCK_FILE).exists()
    two.communicate("", timeout=60)
    assert not (out / output_folder.LOCK_FILE).exists()  # the last sharer removed it
    exclusive = _hold(out, "k1", shared=None)
    try:
        with pytest.raises(output_folder.FolderLockedError, match=rf"is in use: keraszoo experiment \(pid {exclusive.pid} on"):
            with output_folder.claim(out, "experiment", key="k1", shared=SHARDS):
                pass
    finally:
        exclusive.communicate("", timeout=60)


def test_two_sharers_of_different_keys_racing_on_an_empty_folder_cannot_both_win(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    real = output_folder._create_marker

    def another_one_first(path, marker):  # another shard's marker lands between our check and our write
        real(path, dict(marker, key="theirs"))
        real(path, marker)

    monkeypatch.setattr(output_folder, "_create_marker", another_one_first)
    with pytest.raises(output_folder.FolderNotEmptyError, match=r"holds a keraszoo experiment of another study "
                                                                r"\(claimed at the same moment\)"):
        with output_folder.claim(out, "experiment", key="ours", shared=SHARDS):
            pass
    assert output_folder.read_marker(out)["key"] == "theirs"
    assert sorted(p.name for p in out.iterdir()) == [output_folder.MARKER_FILE]  # no draft left behind
    with pytest.raises(ValueError, match=r"cannot overwrite"):
        with output_folder.claim(out, "experiment", key="ours", shared=SHARDS, overwrite=True):
            pass


_WRITER = """
import json, sys
from keraszoo.experiments.results import ResultsFile
out, name, runs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
results = ResultsFile(out)
sys.stdin.readline()  # all writers start together
for run in runs:
    results.write_record({"run_id": run, "writer": name, "test": {"total_loss": 1.0}, "pad": "x" * 20000})
    results.read()  # and read while the others write
"""


def test_records_from_many_processes_at_once_lose_and_duplicate_nothing(tmp_path):
    out = tmp_path / "sweep"
    runs = [f"run-{i:03d}" for i in range(120)]
    # four writers: two own halves of the runs, two write every third run again (a requeued shard)
    plan = {"a": runs[:60], "b": runs[60:], "c": runs[::3], "d": runs[1::3]}
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(out), name, json.dumps(mine)], stdin=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_ENV) for name, mine in plan.items()]
    for w in writers:
        w.stdin.write("go\n")
        w.stdin.flush()
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err[-2000:]
    records = ResultsFile(out).read()
    assert sorted(r["run_id"] for r in records) == runs  # every run once, none torn
    assert all(len(r["pad"]) == 20000 for r in records)
    assert not [p for p in (out / "results.d").iterdir() if p.suffix != ".json"]  # no temporary file left
    assert {r["run_id"]: r["writer"] for r in records}["run-000"] in ("a", "c")
    assert len(read_results(out)) == 120
