"""Pytest fixtures and helpers around :class:`tests.support.hub_server.FakeHub`.

Import the fixtures into a ``conftest.py`` (or a test module)::

    from tests.support.hub_fixtures import fake_hub, hub_env  # noqa: F401

``fake_hub`` starts the loopback Hub and points ``huggingface_hub`` at it for
the test: ``huggingface_hub`` reads ``HF_ENDPOINT``/``HF_HOME``/... once, at
import, so the fixture patches the module constants (``ENDPOINT``,
``HUGGINGFACE_CO_URL_TEMPLATE``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, the
timeouts) for in-process calls, and sets the environment variables for
subprocesses (``hub_env`` returns a ready environment dict). Outside pytest
(the bad-input catalogue), :func:`use_hub` does the same as a context manager
and restores everything on exit.

The cache invariant
    :func:`audit_cache` walks a Hugging Face cache and hashes every file in it
    with its own code (not keraszoo's): every blob must hold the bytes it is
    named after (its sha256, or its git blob id), every snapshot entry must
    link to an existing blob and hold the file of that commit (checked
    against the fake Hub's own store when given), and every file listed in a
    snapshot's ``metadata.json`` must match that table. Partial downloads
    (``*.incomplete``) are listed apart: nothing ever reads them again.
    :func:`assert_cache_sound` fails a test when the audit finds a problem;
    every fault test calls it after its fault.

Other helpers
    :func:`hf_sleep_recorded` (fixture ``no_hf_sleep``) replaces
    ``huggingface_hub``'s fixed waits by a recorder; :func:`read_only` makes
    a folder unwritable also for root (``chattr +i``), and restores it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import types
from pathlib import Path

import pytest

from tests.support.hub_server import FakeHub

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "ETAG_TIMEOUT_S",
    "CacheAudit",
    "assert_cache_sound",
    "audit_cache",
    "fake_hub",
    "hf_sleep_recorded",
    "hub_env",
    "hub_settings",
    "no_hf_sleep",
    "read_only",
    "use_hub",
]

#: Short client timeouts so that "timeout" faults cost about a second.
DOWNLOAD_TIMEOUT_S = 1
ETAG_TIMEOUT_S = 2

_UNSET_ENV = ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN")


def hub_settings(endpoint, hf_home):
    """``(constants, environment)``: what points ``huggingface_hub`` (in process, in subprocesses) at ``endpoint``.

    ``constants`` maps ``huggingface_hub.constants`` attribute names to values;
    ``environment`` maps variable names to values, None meaning "unset".
    """
    hf_home = Path(hf_home)
    constants = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DOWNLOAD_TIMEOUT": DOWNLOAD_TIMEOUT_S,
        "HF_HUB_ETAG_TIMEOUT": ETAG_TIMEOUT_S,
    }
    environment = {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(hf_home),
        **{name: None for name in _UNSET_ENV},
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DOWNLOAD_TIMEOUT": str(DOWNLOAD_TIMEOUT_S),
        "HF_HUB_ETAG_TIMEOUT": str(ETAG_TIMEOUT_S),
        "KERASZOO_HUB_BACKOFF": "0.05",
        "KERASZOO_HUB_ATTEMPTS": "3",
    }
    return constants, environment


@contextlib.contextmanager
def use_hub(endpoint, hf_home):
    """Point ``huggingface_hub`` (constants and environment) at ``endpoint`` with ``HF_HOME=hf_home``; restore on exit."""
    from huggingface_hub import constants as hf_constants
    from huggingface_hub.utils import close_session

    constants, environment = hub_settings(endpoint, hf_home)
    saved_constants = {name: getattr(hf_constants, name) for name in constants}
    saved_env = {name: os.environ.get(name) for name in environment}
    try:
        for name, value in constants.items():
            setattr(hf_constants, name, value)
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        close_session()  # no keep-alive connection to an earlier server
        yield
    finally:
        close_session()
        for name, value in saved_constants.items():
            setattr(hf_constants, name, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A running :class:`FakeHub`; ``huggingface_hub`` talks to it, with a fresh HF_HOME under tmp_path."""
    from huggingface_hub import constants as hf_constants
    from huggingface_hub.utils import close_session

    hub = FakeHub().start()
    hf_home = tmp_path / "hf_home"
    hf_home.mkdir()
    constants, environment = hub_settings(hub.endpoint, hf_home)
    for name, value in constants.items():
        monkeypatch.setattr(hf_constants, name, value)
    for name, value in environment.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    close_session()  # no keep-alive connection to an earlier test's server
    hub.hf_home = hf_home
    hub.cache_dir = hf_home / "hub"
    try:
        yield hub
    finally:
        close_session()
        hub.stop()


@pytest.fixture
def hub_env(fake_hub):
    """Environment for a subprocess that must use ``fake_hub`` (HF_ENDPOINT, HF_HOME, ...)."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


@contextlib.contextmanager
def hf_sleep_recorded():
    """Skip ``huggingface_hub``'s own fixed waits (1 s per resume, 1-8 s backoff); yields the list of skipped waits."""
    import huggingface_hub.file_download as file_download
    import huggingface_hub.utils._http as hf_http

    waits = []
    fake_time = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    fake_time.sleep = waits.append
    saved = file_download.time, hf_http.time
    file_download.time = hf_http.time = fake_time
    try:
        yield waits
    finally:
        file_download.time, hf_http.time = saved


@pytest.fixture
def no_hf_sleep():
    """:func:`hf_sleep_recorded` for one test: the waits are recorded, so tests can still see they happened."""
    with hf_sleep_recorded() as waits:
        yield waits


# --------------------------------------------------------------------------- read-only folders


def _chattr(flag, paths):
    if paths:
        subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


@contextlib.contextmanager
def read_only(folder):
    """Make ``folder`` and everything in it unwritable for this process, then restore it.

    A normal user gets ``chmod a-w``; root ignores modes, so for root every
    folder and file is made immutable (``chattr +i``, ext4/xfs/btrfs). Skips the
    test when neither works here.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = [folder, *sorted(p for p in folder.rglob("*") if not p.is_symlink())]
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    modes = {}
    try:
        if as_root:
            if shutil.which("chattr") is None:
                pytest.skip("running as root without chattr: cannot make a folder read-only")
            try:
                _chattr("+i", entries)
            except subprocess.CalledProcessError as err:
                pytest.skip(f"running as root and chattr +i failed ({err.stderr.decode().strip()}): no read-only folder")
        else:
            for entry in reversed(entries):  # files first, the folders they are in last
                modes[entry] = entry.stat().st_mode
                entry.chmod(modes[entry] & ~0o222)
        probe = folder / ".write-probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"{folder} stays writable despite {'chattr +i' if as_root else 'chmod a-w'}")
        yield folder
    finally:
        if as_root:
            with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
                _chattr("-i", [e for e in entries if e.exists() and not e.is_symlink()])
        for entry, mode in modes.items():
            entry.chmod(mode)


# --------------------------------------------------------------------------- the cache invariant

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_PARTIAL = re.compile(r"\.incomplete$|^tmp_[0-9a-f-]{36}$")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclasses.dataclass
class CacheAudit:
    """What :func:`audit_cache` found (paths relative to the cache folder)."""

    cache_dir: Path
    verified: list = dataclasses.field(default_factory=list)  # complete files whose bytes were checked
    corrupt: list = dataclasses.field(default_factory=list)  # "path: why" for files a load could read
    dangling: list = dataclasses.field(default_factory=list)  # snapshot links to a missing blob
    partial: list = dataclasses.field(default_factory=list)  # unfinished downloads (never read again)

    @property
    def problems(self) -> list:
        return self.corrupt + [f"{p}: dangling link" for p in self.dangling]

    def snapshot_files(self) -> list:
        return [p for p in self.verified if "/snapshots/" in p]

    def __str__(self):
        lines = [f"cache {self.cache_dir}: {len(self.verified)} verified, {len(self.partial)} partial"]
        lines += [f"  CORRUPT {p}" for p in self.corrupt] + [f"  DANGLING {p}" for p in self.dangling]
        lines += [f"  partial {p}" for p in self.partial]
        return "\n".join(lines)


def _truth(hub, repo_id, commit):
    """The fake Hub's files of ``repo_id`` at ``commit``, or None when the hub does not know them."""
    if hub is None:
        return None
    with hub._lock:
        repo = hub.repos.get(repo_id)
        found = repo.commits.get(commit) if repo is not None else None
        return dict(found.files) if found is not None else None


def audit_cache(cache_dir, hub: FakeHub | None = None) -> CacheAudit:
    """Walk a Hugging Face cache and hash every file a later load could read (see the module docstring).

    With ``hub``, every snapshot file is also compared with the bytes the fake
    Hub holds for that repository and commit (the ground truth).
    """
    cache_dir = Path(cache_dir)
    audit = CacheAudit(cache_dir)
    if not cache_dir.is_dir():
        return audit
    for repo_cache in sorted(cache_dir.glob("models--*")):
        repo_id = repo_cache.name[len("models--"):].replace("--", "/", 1)
        blobs = repo_cache / "blobs"
        for blob in sorted(blobs.iterdir()) if blobs.is_dir() else []:
            rel = str(blob.relative_to(cache_dir))
            if _PARTIAL.search(blob.name):
                audit.partial.append(rel)
                continue
            data = blob.read_bytes()
            if _SHA256.match(blob.name):
                actual = _sha256(data)
            elif _SHA1.match(blob.name):
                actual = _git_sha1(data)
            else:
                audit.corrupt.append(f"{rel}: a blob name that is no content address")
                continue
            if actual != blob.name:
                audit.corrupt.append(f"{rel}: holds bytes hashing to {actual}")
            else:
                audit.verified.append(rel)
        for snapshot in sorted((repo_cache / "snapshots").glob("*")) if (repo_cache / "snapshots").is_dir() else []:
            _audit_snapshot(audit, cache_dir, repo_cache, repo_id, snapshot, _truth(hub, repo_id, snapshot.name))
        refs = repo_cache / "refs"
        for ref in sorted(p for p in refs.rglob("*") if p.is_file()) if refs.is_dir() else []:
            rel = str(ref.relative_to(cache_dir))
            if ref.name.endswith(".tmp"):
                audit.partial.append(rel)
                continue
            commit = ref.read_text()
            if not _SHA1.match(commit):
                audit.corrupt.append(f"{rel}: names {commit!r}, not a commit id")
            elif hub is not None and _truth(hub, repo_id, commit) is None:
                audit.corrupt.append(f"{rel}: names commit {commit}, unknown to the Hub")
    return audit


def _audit_snapshot(audit, cache_dir, repo_cache, repo_id, snapshot, truth):
    blobs_dir = Path(os.path.realpath(repo_cache / "blobs"))
    contents = {}
    for entry in sorted(p for p in snapshot.rglob("*") if p.is_symlink() or p.is_file()):
        rel = str(entry.relative_to(cache_dir))
        name = entry.relative_to(snapshot).as_posix()
        if entry.is_symlink():
            target = Path(os.path.realpath(entry))
            if not target.exists():
                audit.dangling.append(rel)
                continue
            if target.parent != blobs_dir:
                audit.corrupt.append(f"{rel}: links outside the blobs folder, to {target}")
                continue
        data = entry.read_bytes()
        contents[name] = data
        if truth is not None and name not in truth:
            audit.corrupt.append(f"{rel}: commit {snapshot.name} has no such file")
        elif truth is not None and truth[name] != data:
            audit.corrupt.append(f"{rel}: differs from the Hub's file (sha256 {_sha256(data)}, "
                                 f"expected {_sha256(truth[name])})")
        else:
            audit.verified.append(rel)
    table = None
    if "metadata.json" in contents:
        try:
            table = json.loads(contents["metadata.json"]).get("files")
        except (ValueError, AttributeError):
            audit.corrupt.append(f"{snapshot.relative_to(cache_dir)}/metadata.json: not a JSON object")
    for name, record in (table or {}).items() if isinstance(table, dict) else ():
        if name in contents and isinstance(record, dict):
            data = contents[name]
            if record.get("sha256") != _sha256(data) or record.get("size") != len(data):
                audit.corrupt.append(f"{snapshot.relative_to(cache_dir)}/{name}: does not match metadata.json")


def assert_cache_sound(cache_dir, hub: FakeHub | None = None, *, partial_ok=True) -> CacheAudit:
    """:func:`audit_cache`, failing the test when a file a later load could read is corrupt or a link dangles.

    ``partial_ok=False`` also refuses leftover partial downloads.
    """
    audit = audit_cache(cache_dir, hub)
    problems = audit.problems + ([] if partial_ok else [f"{p}: partial download left behind" for p in audit.partial])
    assert not problems, f"the cache holds files no load may trust:\n{audit}"
    return audit
