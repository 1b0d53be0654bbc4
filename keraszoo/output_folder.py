"""The one rule for every folder keraszoo writes: nothing a user owns is overwritten or lost.

``keraszoo train``, ``finetune``, ``report``, ``experiment``, ``save_pretrained``
(and the commands built on them) write into a folder only when it is

* empty (or missing: it is created, with its parents),
* written by keraszoo for the same job -- the same ``train`` recipe, the same
  report of the same results -- which is a resume, or
* given with ``--overwrite`` (Python: ``overwrite=True``);

anything else is refused with :class:`FolderNotEmptyError`, naming what is in
the way. While a job writes, the folder is locked (``fcntl.flock`` on
``.keraszoo.lock``), so a second writer is refused at once with
:class:`FolderLockedError`, naming the holder. The job is recorded in the
marker ``.keraszoo.json`` (``job``, ``key``, ``keraszoo_version``, ``created``),
written atomically; both names are hidden, so a ``save_pretrained`` folder's
files table and a push ignore them. The lock file is removed when the job ends.

``claim(..., shared=True)`` lets several processes of one job hold the folder at
once (the shards of one sweep, ``keraszoo experiment --shard``): a shared lock
(``LOCK_SH``) that any exclusive claim is refused against, and the other way
round, while the marker still refuses another job or key. The marker is then
created with ``os.link`` (atomic, and refused when the file exists, on NFS too),
so two shared claimants of different keys racing on an empty folder cannot both
win. The lock file is removed by the last holder only. Whatever the lock is worth on
a shared file system (``flock`` is emulated with POSIX locks on NFS, and some
mounts grant every lock), a job that writes a shared folder must not rely on it
for its data: the sweep's shards each write their own files.

A claim is re-entrant within a thread: a save inside a run (``save_pretrained``
inside ``keraszoo train``) writes into the folder its caller claimed. No
TensorFlow import.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import socket
import threading
from pathlib import Path

from keraszoo.errors import UsageError
from keraszoo.utils import atomic_write_text

try:
    import fcntl
except ImportError:  # pragma: no cover - no flock (Windows): the folder rule holds, the lock is a no-op
    fcntl = None

__all__ = [
    "LOCK_FILE",
    "MARKER_FILE",
    "FolderLockedError",
    "FolderNotEmptyError",
    "OutputFolderError",
    "check",
    "claim",
    "entries_in_the_way",
    "is_claimed_by",
    "read_marker",
    "recipe_key",
]

#: The lock file, present while a job writes into the folder.
LOCK_FILE = ".keraszoo.lock"
#: The marker of the job that wrote the folder.
MARKER_FILE = ".keraszoo.json"
#: Entries named in a refusal before "and N more".
MAX_NAMED = 10
#: What a job's ``key`` stands for, in messages ("holds a keraszoo train run of another recipe").
_KEY_MEANING = {"train": "recipe", "finetune": "recipe", "report": "results folder", "experiment": "study"}
_WHAT = {"train": "a keraszoo train run", "finetune": "a keraszoo finetune run", "report": "a keraszoo report",
         "experiment": "a keraszoo experiment", "save_pretrained": "a keraszoo.save_pretrained model"}


class OutputFolderError(UsageError):
    """An output folder keraszoo may not write into (a file, another job's folder, a user's files, in use)."""


class FolderNotEmptyError(OutputFolderError):
    """The folder holds files keraszoo did not write for this job, and ``overwrite`` was not given."""


class FolderLockedError(OutputFolderError):
    """Another job (another process, or another thread) is writing into the folder."""


# --------------------------------------------------------------------------- helpers


def recipe_key(args: dict) -> str:
    """A stable key of a job's arguments (JSON-able): the first 16 hex digits of their sha256."""
    text = json.dumps(args, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_marker(path) -> dict | None:
    """The marker of the folder ``path`` (``None``: none, or unreadable)."""
    try:
        marker = json.loads((Path(path) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def is_claimed_by(path, job, key=None) -> bool:
    """Whether keraszoo wrote the folder ``path`` for ``job`` (and ``key``, unless ``None``): a resume."""
    marker = read_marker(path)
    return marker is not None and marker.get("job") == job and (key is None or marker.get("key") == key)


def _what(job) -> str:
    return _WHAT.get(job, f"the output of keraszoo {job}")


def _overwrite_hint(flag) -> str:
    return "pass --overwrite" if flag and flag.startswith("-") else "pass overwrite=True"


def _where(path, flag) -> str:
    return f"{flag} {path}" if flag else str(path)


def _entries(path, ignore) -> list:
    """The entries of ``path`` that are in the way: everything but the lock, the marker and ``ignore``."""
    skip = {LOCK_FILE, MARKER_FILE, *ignore}
    names = []
    for item in sorted(Path(path).iterdir()):
        if item.name in skip or _is_marker_draft(item.name):
            continue
        names.append(item.name + ("/" if item.is_dir() and not item.is_symlink() else ""))
    return names


def entries_in_the_way(path, ignore=()) -> list:
    """The names in the folder ``path`` other than keraszoo's lock, marker and a marker being written (and ``ignore``)."""
    return _entries(path, ignore)


def _is_marker_draft(name) -> bool:
    """A marker being written: :func:`_create_marker`'s draft, or ``atomic_write_text``'s temporary file."""
    return name.startswith(MARKER_FILE + ".") and name.endswith(".tmp")


def describe_entries(names) -> str:
    """``a, b, c`` -- up to :data:`MAX_NAMED` names, then ``and N more``."""
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def _check_is_folder(path, flag):
    if (path.exists() or path.is_symlink()) and not path.is_dir():
        if flag:
            raise OutputFolderError(f"{flag} {path} is a file; give a folder (it is created, with its parents, "
                                    "if missing).")
        raise OutputFolderError(f"{path} exists and is not a directory; give a folder (it is created, with its "
                                "parents, if missing).")


def _check_content(path, job, key, flag, ignore):
    """Raise :class:`FolderNotEmptyError` unless ``path`` is empty or ``job``'s (``key``'s) own; True on a resume."""
    names = _entries(path, ignore)
    marker = read_marker(path)
    if marker is not None and marker.get("job") == job and (key is None or marker.get("key") == key):
        return True
    if not names:
        return False
    remedy = f"choose an empty or new folder, or {_overwrite_hint(flag)} to write over them."
    if marker is not None and marker.get("job") == job:
        meaning = _KEY_MEANING.get(job, "configuration")
        raise FolderNotEmptyError(f"{_where(path, flag)} holds {_what(job)} of another {meaning} "
                                  f"({describe_entries(names)}); {remedy}")
    if marker is not None and marker.get("job"):
        raise FolderNotEmptyError(f"{_where(path, flag)} holds {_what(marker['job'])}, not {_what(job)} "
                                  f"({describe_entries(names)}); {remedy}")
    raise FolderNotEmptyError(f"{_where(path, flag)} is not empty and keraszoo did not write it: "
                              f"{describe_entries(names)} would be in the way; {remedy}")


# --------------------------------------------------------------------------- the lock


#: The folders this process holds: ``{real path: [thread id, depth]}``.
_HELD = {}
_HELD_LOCK = threading.Lock()


def _holder_text(lock_path) -> str:
    try:
        holder = json.loads(Path(lock_path).read_text(encoding="utf-8"))
        if holder.get("shared"):
            return f"keraszoo {holder['job']} (processes that share it: {holder.get('what') or 'shards'})"
        return (f"keraszoo {holder['job']} (pid {holder['pid']} on {holder['host']}, since {holder['since']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another keraszoo job"


def _locked_error(path, flag, holder) -> FolderLockedError:
    return FolderLockedError(f"{_where(path, flag)} is in use: {holder} is writing to it. Wait for it to finish, "
                             "or choose another folder.")


def _acquire(path, flag, job, shared=None):
    """The open, locked lock file of ``path`` (``None`` without fcntl); raises :class:`FolderLockedError`.

    ``shared``: ``None`` for an exclusive lock, else the text naming the processes that share it.
    """
    if fcntl is None:
        return None
    lock_path = path / LOCK_FILE
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if shared is None else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _locked_error(path, flag, _holder_text(lock_path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder before us may have removed the file after we opened it: lock the one in place
            same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    if shared is not None:  # every sharer writes the same bytes over each other: no pid, no time
        info = json.dumps({"job": job, "shared": True, "what": shared}, sort_keys=True)
        os.pwrite(fd, (info + "\n").encode("utf-8"), 0)
        return fd
    since = datetime.datetime.now().astimezone().replace(microsecond=0).isoformat()
    info = json.dumps({"job": job, "pid": os.getpid(), "host": socket.gethostname(), "since": since})
    os.ftruncate(fd, 0)
    os.write(fd, (info + "\n").encode("utf-8"))
    return fd


def _release(path, fd, shared=False):
    if fd is None:
        return
    try:
        if shared:  # removed by the last sharer only: the one that can make its lock exclusive
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return
        (path / LOCK_FILE).unlink(missing_ok=True)  # while still locked: a waiter re-checks the inode
    finally:
        os.close(fd)


def _lock_holder(path):
    """The holder of ``path``'s lock as text, or ``None`` when it is free (nothing is created)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_text(path / LOCK_FILE)
    finally:
        os.close(fd)
    return None


def _held_here(real):
    """Whether this thread already holds ``real``; another thread's hold is a :class:`FolderLockedError`."""
    entry = _HELD.get(real)
    if entry is None:
        return False
    return entry[0] == threading.get_ident() or None


# --------------------------------------------------------------------------- the API


def check(path, job, *, key=None, overwrite=False, flag="--out", ignore=()) -> bool:
    """:func:`claim`'s checks without creating or locking anything (to refuse early, before slow work).

    Returns whether the folder is a resume (``False`` for a missing or empty one).
    """
    path = Path(os.fspath(path)).expanduser()
    _check_is_folder(path, flag)
    if not path.is_dir():
        return False
    with _HELD_LOCK:
        here = _held_here(os.path.realpath(path))
    if here:
        return True
    holder = "another thread of this process" if here is None else _lock_holder(path)
    if holder:
        raise _locked_error(path, flag, holder)
    if overwrite:
        return is_claimed_by(path, job, key)
    return _check_content(path, job, key, flag, ignore)


def _create_marker(path, marker: dict):
    """Create ``path``'s marker unless one is there (``os.link``: atomic, refused when it exists, on NFS too)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f"{MARKER_FILE}.", suffix=".tmp", dir=path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(marker, indent=2, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path / MARKER_FILE)
        except FileExistsError:
            pass  # another sharer made it first: the caller checks its job and key again
    finally:
        os.unlink(tmp)


@contextlib.contextmanager
def claim(path, job, *, key=None, overwrite=False, flag="--out", ignore=(), shared=None):
    """Hold the folder ``path`` for ``job`` while the block writes into it; yields it as a ``Path``.

    Args:
        path: the folder; created with its parents if missing (and removed again
            if the block fails and nothing but the marker was written).
        job: what writes it: ``"train"``, ``"report"``, ``"save_pretrained"``, ...
        key: what makes a folder of ``job`` this job's (a recipe's hash, the
            results folder reported); ``None``: any folder of ``job`` is a resume.
        overwrite: write into a folder holding anything else (files in it may be replaced).
        flag: the option that named the folder, for messages (``None``: a Python argument).
        ignore: names in the folder that are not in the way (files the job reads and keeps).
        shared: ``None`` (default): hold the folder alone. A text (``"the shards of one sweep"``):
            hold it together with other claims of the same ``job`` and ``key`` that pass ``shared``
            too, never with an exclusive one (see the module's docstring); ``overwrite`` is refused.

    Raises:
        OutputFolderError: ``path`` is a file.
        FolderLockedError: another job is writing into the folder (the holder is named).
        FolderNotEmptyError: the folder holds something else and ``overwrite`` is false.
    """
    path = Path(os.fspath(path)).expanduser()
    _check_is_folder(path, flag)
    if shared is not None and overwrite:
        raise ValueError("claim(shared=...) cannot overwrite: sharers would write over each other.")
    created = _first_missing(path)
    path.mkdir(parents=True, exist_ok=True)
    real = os.path.realpath(path)
    with _HELD_LOCK:
        here = _held_here(real)
        if here:
            _HELD[real][1] += 1
    if here:  # the caller's own claim: its job, its rule
        try:
            yield path
        finally:
            with _HELD_LOCK:
                _HELD[real][1] -= 1
        return
    if here is None:
        raise _locked_error(path, flag, "another thread of this process")
    fd = _acquire(path, flag, job, shared)
    with _HELD_LOCK:
        _HELD[real] = [threading.get_ident(), 1]
    ok = False
    try:
        resume = _check_content(path, job, key, flag, ignore) if not overwrite else is_claimed_by(path, job, key)
        if not resume:
            from keraszoo.version import __version__

            created_at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
            marker = {"job": job, "key": key, "keraszoo_version": __version__, "created": created_at}
            if shared is None:
                atomic_write_text(path / MARKER_FILE, json.dumps(marker, indent=2, sort_keys=True) + "\n")
            else:  # another sharer may be making it right now: the first one made stands, and is checked
                existing = read_marker(path)
                if existing is None:
                    _create_marker(path, marker)
                if not is_claimed_by(path, job, key):
                    found = read_marker(path) or {}
                    raise FolderNotEmptyError(
                        f"{_where(path, flag)} holds {_what(found.get('job'))} of another "
                        f"{_KEY_MEANING.get(job, 'configuration')}" + (" (claimed at the same moment)" if existing is None
                                                                        else "") + "; choose another folder.")
        yield path
        ok = True
    finally:
        with _HELD_LOCK:
            _HELD.pop(real, None)
        try:
            if not ok and created is not None and shared is None:
                _remove_if_unused(path, created)
        finally:
            _release(path, fd, shared is not None)


def _first_missing(path):
    """The outermost folder of ``path`` that does not exist yet (``None``: it exists)."""
    missing = None
    for folder in [path, *path.parents]:
        if folder.exists() or folder.is_symlink():
            break
        missing = folder
    return missing


def _remove_if_unused(path, created):
    """After a failed job: remove the folders the claim created if they hold only the marker."""
    names = {item.name for item in path.iterdir()}
    if not names <= {MARKER_FILE, LOCK_FILE}:
        return
    (path / MARKER_FILE).unlink(missing_ok=True)
    (path / LOCK_FILE).unlink(missing_ok=True)  # still locked by us: waiters re-check the inode
    folder = path
    while True:
        try:
            folder.rmdir()
        except OSError:
            return
        if folder == created:
            return
        folder = folder.parent
