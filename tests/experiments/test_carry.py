"""Carrying a sweep to another machine by its results lines (keraszoo.experiments.carry, training/carry_sweep.py):
the carried runs count as finished, are not trained again, are checked from their lines, and lose nothing."""

import json
import pathlib
import shutil
import types

import pytest

from keraszoo.experiments import StudyError
from keraszoo.experiments import read_results
from keraszoo.experiments import run_study
from keraszoo.experiments.carry import restore_sweep
from keraszoo.experiments.carry import save_sweep


def _run(spec, out, mnist_dir, **kw):
    return run_study(str(spec), dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True, **kw)


def test_a_carried_sweep_trains_only_what_was_not_finished(sweep, mnist_dir, tmp_path):
    out0, result, spec = sweep
    first = tmp_path / "first"
    shutil.copytree(out0, first)
    lines = {r["run_id"]: r for r in read_results(first)}
    unfinished = sorted(lines)[0]
    shutil.rmtree(first / lines[unfinished]["model_dir"])  # its folder is incomplete: it was being trained again
    state = tmp_path / "state"
    summary = save_sweep(first, state)
    assert summary["runs"] == len(lines) - 1 and summary["planned"] == len(lines)
    saved = [json.loads(t) for t in (state / "results.jsonl").read_text().splitlines()]
    assert sorted(r["run_id"] for r in saved) == sorted(set(lines) - {unfinished})
    assert not any((state / name).exists() for name in ("runs", "logs", "work"))  # no weights travel

    second = tmp_path / "second"  # another machine: nothing but the state
    restored = restore_sweep(state, second)
    assert restored["carried"] == len(lines) - 1
    carried = json.loads((second / "carried.json").read_text())["runs"]
    assert sorted(carried) == sorted(set(lines) - {unfinished})
    again = _run(spec, second, mnist_dir)
    assert again.completed == [unfinished]  # only the unfinished run is trained
    assert sorted(again.already_finished) == sorted(set(lines) - {unfinished})
    after = {r["run_id"]: r for r in read_results(second)}
    for run_id in carried:  # every carried line as it was: no number changes
        assert after[run_id] == lines[run_id]
    assert (second / after[unfinished]["model_dir"] / "metadata.json").is_file()

    # a carried run trained again here leaves carried.json: its folder is here now
    target = sorted(carried)[0]
    redo = _run(spec, second, mnist_dir, retrain=[target], reason="a test")
    assert redo.completed == [target]
    assert target not in json.loads((second / "carried.json").read_text())["runs"]
    superseded, = (second / "superseded").glob(f"{target}@*/record.json")
    assert json.loads(superseded.read_text())["record"] == lines[target]

    # saved again and restored on a third machine: the superseded record travels too
    save_sweep(second, state)
    third = tmp_path / "third"
    assert restore_sweep(state, third)["superseded"] == 1
    assert json.loads(next((third / "superseded").glob(f"{target}@*/record.json")).read_text())["reason"] == "a test"
    assert _run(spec, third, mnist_dir).completed == []
    # the state restored into the sweep it came from (what --state does at every start): the record is there
    # already, under the retiring folder's finer time, and is not added twice
    assert restore_sweep(state, second)["superseded"] == 0
    assert len(list((second / "superseded").glob(f"{target}@*/record.json"))) == 1
    save_sweep(second, state)
    assert len((state / "superseded.jsonl").read_text().splitlines()) == 1


def test_the_report_checks_carried_runs_from_their_lines(sweep, mnist_dir, tmp_path):
    from keraszoo.experiments import report
    from keraszoo.experiments.reproducibility import _pick

    out0, _, spec = sweep
    here = tmp_path / "here"
    shutil.copytree(out0, here)
    lines = {r["run_id"]: r for r in read_results(here)}
    kept = sorted(lines)[-1]
    save_sweep(here, tmp_path / "state")
    there = tmp_path / "there"
    restore_sweep(tmp_path / "state", there)
    shutil.copytree(here / lines[kept]["model_dir"], there / lines[kept]["model_dir"])  # one folder did travel
    path, checks = report.write_report(there, tmp_path / "report", data_dir=str(mnist_dir), mc_samples=4)
    by_run = {c.run_id: c for c in checks}
    for run_id in lines:
        if run_id == kept:
            assert by_run[run_id].test_not_run is None  # its model is loaded and recomputed
        elif not by_run[run_id].not_applicable:
            assert by_run[run_id].test_not_run == report.CARRIED
        assert by_run[run_id].ok, by_run[run_id].problems()
    assert sum(c.test_not_run == report.CARRIED for c in checks) == len(lines) - 1
    text = path.read_text()
    assert f"{len(lines) - 1} run(s) trained on another machine and carried here" in text
    assert "left out" not in text.split("## ")[1]  # no run is left out for its missing folder
    note, = [t for t in text.splitlines() if "have no saved model here" in t]  # the figures say whose rows are missing
    assert note.startswith(f"({len(lines) - 1} setting(s) have no saved model here")
    assert len(note.rsplit(": ", 1)[1].split("; ")) == len(lines) - 1  # one label per setting without a folder
    assert _pick(there, None)[0].run_id == kept  # the recheck takes the run whose folder is here
    carried = sorted(set(lines) - {kept})[0]
    with pytest.raises(StudyError, match="carried here without its folder"):
        _pick(there, carried)


def test_restore_refuses_another_sweep_and_writes_nothing(sweep, tmp_path, tiny_spec):
    out0, _, _ = sweep
    save_sweep(out0, tmp_path / "state")
    other = tmp_path / "other"
    other.mkdir()
    record = json.loads((out0 / "study.json").read_text())
    (other / "study.json").write_text(json.dumps({**record, "budget": "default"}))
    with pytest.raises(StudyError, match="not one sweep. Nothing was written"):
        restore_sweep(tmp_path / "state", other)
    assert sorted(p.name for p in other.iterdir()) == ["study.json"]
    with pytest.raises(StudyError, match="not one sweep"):
        save_sweep(other, tmp_path / "state")  # a state folder keeps one sweep
    with pytest.raises(StudyError, match="holds no sweep"):
        save_sweep(tmp_path / "nothing", tmp_path / "state2")
    assert not (tmp_path / "state2").exists()
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    from keraszoo.output_folder import FolderNotEmptyError

    with pytest.raises(FolderNotEmptyError):
        restore_sweep(tmp_path / "state", user)
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]


def test_image_figures_take_the_first_seed_whose_folder_is_here():
    from keraszoo.experiments.plotting import _first_runs

    runs = [{"run_id": f"r{i}", "model_dir": f"runs/r{i}"} for i in range(4)]
    settings = [types.SimpleNamespace(runs=runs[:2]), types.SimpleNamespace(runs=runs[2:3]),
                types.SimpleNamespace(runs=runs[3:])]
    away = {"r0", "r2"}
    ctx = types.SimpleNamespace(settings=lambda: settings,
                                saved=types.SimpleNamespace(carried_without_folder=lambda r: r["run_id"] in away))
    assert [r["run_id"] for _, r in _first_runs(ctx)] == ["r1", "r3"]  # r2's setting has no folder here: no row


def test_the_command_line_says_what_it_did(sweep, tmp_path, capsys):
    from training.carry_sweep import main

    out0, _, _ = sweep
    assert main(["save", str(out0), str(tmp_path / "state")]) == 0
    assert "4 of 4 planned runs finished" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "state"), str(tmp_path / "sweep")]) == 0
    assert "4 runs carried here without their folders, 0 already here" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "missing"), str(tmp_path / "elsewhere")]) == 1
    assert "holds no sweep" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()


def test_the_figures_say_which_settings_show_a_later_seed_or_none():
    from keraszoo.experiments import report
    from keraszoo.experiments.view import StudyRuns

    runs = [{"run_id": f"{m}-{seed}", "params": {"model": m, "seed": seed}, "model_dir": f"runs/{m}-{seed}",
             "likelihood": "Bernoulli NLL, nats"}
            for m in ("ae", "vae", "dae") for seed in (0, 1)]
    gone = {"ae-0", "vae-0", "vae-1"}  # ae: its first seed was carried; vae: both; dae: none
    saved = types.SimpleNamespace(carried=dict.fromkeys(gone), results_only=False,
                                  carried_without_folder=lambda r: r["run_id"] in gone)
    note, blank = report._carried_rows_note(StudyRuns("mine", runs, saved))
    assert blank == ""
    assert note.startswith("(1 setting(s) have no saved model here") and note.endswith(
        ": vae. For ae they show a later seed (the first was carried without its folder).)"), note
    saved.carried = {}
    assert report._carried_rows_note(StudyRuns("mine", runs, saved)) == []


def test_the_state_option_saves_after_every_run_and_a_new_machine_goes_on_from_it(sweep, mnist_dir, tmp_path):
    out0, _, spec = sweep
    first = tmp_path / "first"  # machine A: one run not finished yet
    shutil.copytree(out0, first)
    lines = {r["run_id"]: r for r in read_results(first)}
    unfinished = sorted(lines)[1]
    (first / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for k, r in lines.items() if k != unfinished))
    shutil.rmtree(first / lines[unfinished]["model_dir"])
    state = tmp_path / "bucket" / "state"
    assert _run(spec, first, mnist_dir, state=state).completed == [unfinished]
    saved = {json.loads(t)["run_id"] for t in (state / "results.jsonl").read_text().splitlines()}
    assert saved == set(lines)  # saved after the run that finished here
    assert not (state / "runs").exists()

    second = tmp_path / "second"  # machine B: nothing but the state
    again = _run(spec, second, mnist_dir, state=state)
    assert again.completed == [] and sorted(again.already_finished) == sorted(lines)
    assert sorted(json.loads((second / "carried.json").read_text())["runs"]) == sorted(lines)
    assert _run(spec, second, mnist_dir, state=state).completed == []  # again: nothing restored twice, nothing run


def test_the_state_option_refuses_another_sweeps_state_and_shards(sweep, mnist_dir, tmp_path, tiny_spec):
    out0, _, spec = sweep
    other = tmp_path / "other-state"
    save_sweep(out0, other)
    record = json.loads((other / "study.json").read_text())
    (other / "study.json").write_text(json.dumps({**record, "budget": "default"}))
    with pytest.raises(StudyError, match="holds the state of another sweep .* Nothing was restored or written"):
        _run(spec, tmp_path / "out", mnist_dir, state=other)
    assert not (tmp_path / "out").exists()
    with pytest.raises(StudyError, match="--state saves the whole sweep's lines"):
        _run(spec, tmp_path / "out", mnist_dir, state=tmp_path / "s", shard="0/2")


def test_the_keraszoo_command_restores_and_saves_the_state(sweep, mnist_dir, tmp_path, capsys, monkeypatch):
    import keraszoo.experiments
    from keraszoo.cli import main

    out0, _, spec = sweep
    state = tmp_path / "state"
    save_sweep(out0, state)
    out = tmp_path / "out"
    argv = ["experiment", str(spec), "--budget", "smoke", "--out", str(out), "--data-dir", str(mnist_dir),
            "--state", str(state)]
    assert main(argv) == 0
    assert "Restored 4 finished runs from" in capsys.readouterr().out

    def recheck(out, run_id, threads, data_dir):  # the recheck itself is tested in test_reproducibility.py
        record = {"run_id": "r", "threads": threads, "threads_from": "test", "weights_bit_identical": True,
                  "test_bit_identical": True}
        (pathlib.Path(out) / "reproducibility.json").write_text(json.dumps(record))
        return record

    monkeypatch.setattr(keraszoo.experiments, "recheck", recheck)
    assert main(argv + ["--recheck"]) == 0
    assert json.loads((state / "reproducibility.json").read_text()) == json.loads(
        (out / "reproducibility.json").read_text())  # the recheck travels with the lines


def test_a_state_that_cannot_be_saved_is_said_and_the_sweep_goes_on(sweep, mnist_dir, tmp_path, capsys):
    out0, _, spec = sweep
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    lines = {r["run_id"]: r for r in read_results(out)}
    unfinished = sorted(lines)[0]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for k, r in lines.items() if k != unfinished))
    shutil.rmtree(out / lines[unfinished]["model_dir"])
    (tmp_path / "a-file").write_text("not a folder")  # the state's parent is a file: every save fails
    result = _run(spec, out, mnist_dir, state=tmp_path / "a-file" / "state")
    assert result.completed == [unfinished] and not result.failed
    err = capsys.readouterr().err
    assert "WARNING: could not save the sweep's state into" in err and "the sweep goes on" in err
