"""``DIR/results.jsonl``: one JSON line per finished run, written atomically, torn tails ignored and cut off.

A last record complete but for its newline is kept (the next append writes the newline first).
"""

from __future__ import annotations

import json
import os
import pathlib
import warnings

RESULTS_FILE = "results.jsonl"
#: the runs' save_pretrained folders, ``DIR/runs/<run_id>/``.
RUNS_DIR = "runs"
#: the study, budget, planned run ids, skipped runs and failures of a sweep, ``DIR/study.json``.
STUDY_FILE = "study.json"
#: what each run printed, ``DIR/logs/<run_id>.log``.
LOGS_DIR = "logs"
#: each run's backups while it trains, ``DIR/work/<run_id>/`` (removed once its folder is complete).
WORK_DIR = "work"


def _complete(model_dir: pathlib.Path) -> bool:
    """A save_pretrained folder whose ``metadata.json`` (written last) is there and readable."""
    try:
        meta = json.loads((model_dir / "metadata.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and all((model_dir / name).is_file() for name in meta.get("files", {}))


def _complete_record(tail: bytes):
    """The record of a last line without its newline, when it is a complete one (a JSON object with a run_id)."""
    if not tail.strip():
        return None
    try:
        record = json.loads(tail)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "run_id" in record else None


class TornLineWarning(UserWarning):
    """``results.jsonl`` ends with a line cut short by a crash; it is ignored."""


# --------------------------------------------------------------------------- the results file
class ResultsFile:
    """``DIR/results.jsonl``: one JSON object per finished run, appended atomically line by line."""

    def __init__(self, out):
        self.out = pathlib.Path(out)
        self.path = self.out / RESULTS_FILE

    def _lines(self):
        """``(complete lines, torn tail bytes)``."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return [], b""
        head, _, tail = raw.rpartition(b"\n")
        lines = head.split(b"\n") if head or raw.startswith(b"\n") else []
        return lines, tail

    def read(self) -> list:
        """Every record, in the order written (the last of a ``run_id`` wins in :meth:`by_run`).

        A last line without its newline is kept when it is a complete record (a
        JSON object with a ``run_id``: the crash came between the record and its
        newline, or another tool wrote it so); a torn one (a crash while it was
        written) is ignored with a :class:`TornLineWarning`. A malformed complete
        line raises ``ValueError``.
        """
        lines, tail = self._lines()
        last = _complete_record(tail)
        if tail.strip() and last is None:
            warnings.warn(f"{self.path}: ignoring a torn last line ({len(tail)} bytes, no newline: a write cut short "
                          "by a crash); its run is run again.", TornLineWarning, stacklevel=2)
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise ValueError(f"{self.path}, line {number}: not a JSON object ({err}).") from None
            if not isinstance(record, dict) or "run_id" not in record:
                raise ValueError(f"{self.path}, line {number}: expected a JSON object with a run_id.")
            records.append(record)
        if last is not None:
            records.append(last)
        return records

    def by_run(self) -> dict:
        """``{run_id: record}`` (the last record of each run)."""
        return {r["run_id"]: r for r in self.read()}

    def finished(self) -> dict:
        """``{run_id: record}`` of the runs whose ``model_dir`` folder is complete (a classical run has none: its line is all)."""
        return {k: r for k, r in self.by_run().items()
                if r.get("kind") == "classical" or _complete(self.out / (r.get("model_dir") or RUNS_DIR + "/" + k))}

    def repair(self) -> int:
        """Cut off a torn last line; returns the number of bytes removed (0: none).

        A complete last record without its newline is kept (:meth:`append` adds the newline).
        """
        _, tail = self._lines()
        if not tail or _complete_record(tail) is not None:
            return 0
        size = self.path.stat().st_size
        with open(self.path, "r+b") as f:
            f.truncate(size - len(tail))
            f.flush()
            os.fsync(f.fileno())
        return len(tail)

    def append(self, record: dict) -> None:
        """Append ``record`` as one line: one ``write`` of the whole line, then ``fsync``.

        After a last line without its newline (a complete record: see :meth:`read`), the newline comes first.
        """
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            written = os.write(fd, line)
            if written != len(line):  # a full disk: leave a torn line for repair() rather than a wrong one
                raise OSError(f"only {written} of {len(line)} bytes of a results line were written to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)


def read_results(out) -> list:
    """The records of a sweep folder's ``results.jsonl`` (or of that file), the last per ``run_id``."""
    out = pathlib.Path(out)
    folder = out.parent if out.name == RESULTS_FILE else out
    return list(ResultsFile(folder).by_run().values())
