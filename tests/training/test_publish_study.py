"""training/publish_study.py: a sweep is published only when every planned run has finished."""

import json

from training import publish_study


def test_an_unfinished_sweep_is_refused_and_nothing_is_written(tmp_path, capsys):
    sweep, report = tmp_path / "sweep", tmp_path / "report"
    sweep.mkdir()
    (sweep / "study.json").write_text(json.dumps({"study": "latent", "datasets": {"mnist": {"planned": ["a", "b"]}}}))
    # a classical run's line is all there is of it: finished without a folder
    (sweep / "results.jsonl").write_text(json.dumps({"run_id": "a", "kind": "classical"}) + "\n")
    assert publish_study.unfinished(sweep) == ["b"]
    assert publish_study.main([str(sweep), str(report)]) == 1
    assert "1 planned runs are not finished (b)" in capsys.readouterr().err and not report.exists()


def test_a_study_from_a_spec_file_is_rechecked_from_that_file(tmp_path, monkeypatch):
    """A user's study is no built-in name: the recheck reruns the spec file the sweep recorded, not its name."""
    sweep, report = tmp_path / "sweep", tmp_path / "report"
    sweep.mkdir()
    (sweep / "study.json").write_text(json.dumps({"study": "mine", "spec_file": "specs/mine.json",
                                                  "datasets": {"mnist": {"planned": ["a"]}}}))
    (sweep / "results.jsonl").write_text(json.dumps({"run_id": "a", "kind": "classical"}) + "\n")
    calls = []

    class Done:
        returncode = 0

    def run(command, check=False):
        calls.append(command[3:])
        if command[3] == "report":
            report.mkdir()
        return Done()

    monkeypatch.setattr(publish_study.subprocess, "run", run)
    assert publish_study.main([str(sweep), str(report), "--recheck"]) == 0
    assert calls[0][:2] == ["experiment", "specs/mine.json"] and "--recheck" in calls[0]
    assert calls[1][0] == "report" and (report / "results.jsonl").is_file()
