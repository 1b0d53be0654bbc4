"""``results.jsonl``'s last line (issue 24): a complete record without its newline is kept, a torn one is not."""

import json
import warnings

import pytest

from keraszoo.experiments import ResultsFile
from keraszoo.experiments import TornLineWarning


def _record(run_id):
    return {"run_id": run_id, "model_dir": f"runs/{run_id}", "test": {"total_loss": 1.5}}


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_complete_last_record_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_record("a")) + "\n" + json.dumps(_record("b")))  # no final newline
    results = ResultsFile(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a torn line: no warning
        assert [r["run_id"] for r in results.read()] == ["a", "b"]
    assert results.repair() == 0 and path.read_text().endswith("}")  # kept, not cut off


def test_the_next_append_writes_the_missing_newline_first(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_record("a")))
    results = ResultsFile(tmp_path)
    results.repair()
    results.append(_record("b"))
    assert path.read_text().count("\n") == 2 and path.read_text().endswith("\n")
    assert [r["run_id"] for r in _lines(path)] == ["a", "b"]


@pytest.mark.parametrize("tail", [
    b'{"run_id": "b", "model_dir": "runs/b", "test": {"total_lo',  # cut in the middle of a write
    b'{"model_dir": "runs/b"}',  # a JSON object, but not a record (no run_id)
    b'[1, 2]',
])
def test_a_torn_last_line_is_ignored_and_cut_off(tmp_path, tail):
    path = tmp_path / "results.jsonl"
    first = (json.dumps(_record("a")) + "\n").encode()
    path.write_bytes(first + tail)
    results = ResultsFile(tmp_path)
    with pytest.warns(TornLineWarning, match="ignoring a torn last line"):
        assert [r["run_id"] for r in results.read()] == ["a"]
    assert results.repair() == len(tail) and path.read_bytes() == first
    results.append(_record("c"))
    assert [r["run_id"] for r in _lines(path)] == ["a", "c"]


def test_append_to_a_new_or_complete_file_adds_no_blank_line(tmp_path):
    results = ResultsFile(tmp_path)
    results.append(_record("a"))
    results.append(_record("b"))
    assert (tmp_path / "results.jsonl").read_text().splitlines() == [json.dumps(_record(r), sort_keys=True)
                                                                    for r in "ab"]
