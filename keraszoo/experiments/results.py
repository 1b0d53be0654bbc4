"""``DIR/results.jsonl``: one JSON line per finished run, written atomically, torn tails ignored and cut off.

A last record complete but for its newline is kept (the next append writes the newline first).

The shards of a sweep (``keraszoo experiment --shard I/N``, on several hosts at once)
never write ``results.jsonl``: each finished run becomes a file of its own,
``DIR/results.d/<run_id>.json``, written to a temporary name, ``fsync``'d and
renamed into place (a rename within one folder is atomic on local file systems
and on NFS alike). Appending to one file from several hosts is not safe on NFS
(``O_APPEND`` is emulated by each client) and ``flock`` is not everywhere a lock
there; separate files need neither: two writers never touch one file, a run
written twice (a requeued task) is one file with the last record, and a crash
leaves a hidden temporary file, never a torn record. :class:`ResultsFile` reads
``results.jsonl`` and then those files (a run's record in ``results.d`` wins,
as a later line would); the next unsharded sweep of the folder, which holds it
alone, folds them into ``results.jsonl`` (:meth:`ResultsFile.fold`).
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
#: a sharded sweep's records, one file per run: ``DIR/results.d/<run_id>.json``.
RECORDS_DIR = "results.d"
#: what ``keraszoo experiment --retrain`` replaced: ``DIR/superseded/<run_id>@<UTC time>/`` (its record, folder, log).
SUPERSEDED_DIR = "superseded"
#: the runs finished on another machine whose folders were not brought here, only their results lines
#: (:mod:`keraszoo.experiments.carry`): ``DIR/carried.json``, ``{"runs": {run_id: {...}}}``.
CARRIED_FILE = "carried.json"


def record_model_dir(record: dict) -> str:
    """A results line's run folder, relative to the sweep folder (``runs/<run_id>`` for a line that names none)."""
    return record.get("model_dir") or f"{RUNS_DIR}/{record['run_id']}"


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
        self.records_dir = self.out / RECORDS_DIR

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
        """Every record: ``results.jsonl``'s in the order written, then ``results.d``'s (the last of a ``run_id`` wins).

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
        return records + [record for _, record in self._record_files()]

    def _record_files(self) -> list:
        """``[(path, record)]`` of ``results.d``, by run id (temporary files of writes in flight are not records)."""
        try:
            paths = sorted(p for p in self.records_dir.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
        except FileNotFoundError:
            return []
        found = []
        for path in paths:
            try:
                record = json.loads(path.read_bytes())
            except FileNotFoundError:  # folded away by the sweep that holds the folder
                continue
            except ValueError as err:
                raise ValueError(f"{path}: not a JSON object ({err}).") from None
            if not isinstance(record, dict) or record.get("run_id") != path.stem:
                raise ValueError(f"{path}: expected the JSON object of run {path.stem!r}.")
            found.append((path, record))
        return found

    def by_run(self) -> dict:
        """``{run_id: record}`` (the last record of each run)."""
        return {r["run_id"]: r for r in self.read()}

    def finished(self) -> dict:
        """``{run_id: record}`` of the runs whose ``model_dir`` folder is complete (a classical run has none: its line is
        all), and of the carried runs (:meth:`carried`: finished on another machine, their folders left there)."""
        carried = self.carried()
        return {k: r for k, r in self.by_run().items()
                if r.get("kind") == "classical" or k in carried or _complete(self.out / record_model_dir(r))}

    def carried(self) -> dict:
        """``{run_id: how it came}`` of ``carried.json``: runs whose results lines were brought from another machine
        without their folders (:func:`keraszoo.experiments.carry.restore_sweep`); ``{}`` when there is none.

        Raises:
            ValueError: the file is there but is not ``{"runs": {run_id: {...}}}``.
        """
        return read_carried(self.out)

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


    def write_record(self, record: dict) -> pathlib.Path:
        """Write ``record`` as ``results.d/<run_id>.json``: a temporary file, ``fsync``, then an atomic rename.

        Safe with any number of writers on any number of hosts (a shard's way to record a run).
        """
        import tempfile

        run_id = str(record["run_id"])
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise ValueError(f"run id {run_id!r} cannot name a file.")
        data = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        self.records_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{run_id}.", suffix=".tmp", dir=self.records_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            target = self.records_dir / f"{run_id}.json"
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _fsync_dir(self.records_dir)
        return target

    def remove(self, run_ids) -> int:
        """Rewrite ``results.jsonl`` without the lines of ``run_ids``; returns how many lines went.

        Only for the process that holds the folder alone (``keraszoo experiment --retrain`` keeps the
        records it removes). The new file is written beside the old one, ``fsync``'d and renamed over it:
        a crash leaves the old file or the new one, never a mix. A torn last line (see :meth:`read`) is
        dropped with them.
        """
        from keraszoo.utils import atomic_path

        gone = set(run_ids)
        lines, _ = self._lines()
        kept, removed = [], 0
        for line in lines:
            try:
                run_id = json.loads(line).get("run_id") if line.strip() else None
            except (ValueError, AttributeError):
                run_id = None
            if run_id in gone:
                removed += 1
            elif line.strip():
                kept.append(line + b"\n")
        if removed:
            with atomic_path(self.path, mode=0o644) as tmp:
                with open(tmp, "wb") as f:
                    f.write(b"".join(kept))
                    f.flush()
                    os.fsync(f.fileno())
            _fsync_dir(self.out)
        return removed

    def fold(self) -> int:
        """Move ``results.d``'s records into ``results.jsonl``; returns how many lines were appended.

        Only for the process that holds the folder alone (an unsharded sweep). A record is
        appended unless ``results.jsonl``'s last line of its run is the same record (a fold
        cut short after the append), then its file is removed: each run's record ends up in
        ``results.jsonl`` exactly once, whenever the fold is interrupted.
        """
        files = self._record_files()
        if not files:
            return 0
        lines, _ = ResultsFile._lines(self)
        written = {}
        for line in lines:
            try:
                record = json.loads(line)
                written[record["run_id"]] = record
            except (ValueError, KeyError, TypeError):
                continue
        appended = 0
        for path, record in files:
            if written.get(record["run_id"]) != json.loads(json.dumps(record, sort_keys=True)):
                self.append(record)
                appended += 1
            path.unlink(missing_ok=True)
        _fsync_dir(self.records_dir)
        return appended


def _fsync_dir(folder):
    """Make the renames and removals in ``folder`` durable (where the system allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_carried(out) -> dict:
    """``{run_id: how it came}`` of ``out/carried.json`` (``{}``: no such file). See :meth:`ResultsFile.carried`."""
    path = pathlib.Path(out) / CARRIED_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as err:
        raise ValueError(f"{path}: not JSON ({err}).") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, dict):
        raise ValueError(f"{path}: expected {{\"runs\": {{run_id: {{...}}}}}}; got {str(data)[:80]!r}.")
    return runs


def read_results(out) -> list:
    """The records of a sweep folder's ``results.jsonl`` (or of that file), the last per ``run_id``."""
    out = pathlib.Path(out)
    folder = out.parent if out.name == RESULTS_FILE else out
    return list(ResultsFile(folder).by_run().values())
