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
