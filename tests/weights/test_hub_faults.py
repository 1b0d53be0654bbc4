"""Downloads under faults, on the loopback Hub: retries, integrity, the local disk, concurrent and killed processes.

Every test injects a fault on the download path (the fake Hub of
tests/support/hub_server.py, the local disk, or the client process), checks
what keraszoo answers (a retry with backoff, then a clear error naming what
was expected and what happened), and then calls the shared invariant check
:func:`tests.support.hub_fixtures.assert_cache_sound`: it walks the Hugging
Face cache and hashes every file a later load could read, with its own code,
against the fake Hub's store. Most tests then lift the fault and show that the
next attempt succeeds. (The ``hub_repo`` fixture runs the check once more at
teardown, so no test can skip it.)

Faults covered: 34 faults injected, in 35 tests (1 of them ``slow``: 8 processes);
plus offline mode (3 tests) and a check of the fake Hub's Range support.

* network, Hub side (10): HTTP 500 and 503 on the download (once each), 500
  on every try, 503 on the metadata request, 502 on every metadata request
  with a cold cache, connection refused on a closed port (cold cache: clear
  error; warm cache: loads from the cache), a server slower than the timeout
  (once, on every try, on the metadata request);
* network, CDN side (5): connection refused (the LFS redirect points at a
  closed port), a dropped connection, a body cut short (once, on every try),
  a body stalling mid-way past the read timeout;
* wrong bytes of the right size (7), for every file kind: through ``hf://``
  ``model.weights.h5``, ``config.json`` (checked against metadata.json) and
  ``metadata.json`` (garbage, and valid JSON with another files table:
  checked against its content address); through a zoo name all three
  (checked against the manifest);
* the local disk (8): a cached file changed on disk after it was verified
  (each of the 3 kinds: refused offline, fetched again online), a read-only
  cache (cold: clear error, nothing written; warm: loads; holding a corrupted
  file: the integrity error, not a PermissionError), a full disk (ENOSPC
  injected at the write; EFBIG from RLIMIT_FSIZE in a subprocess);
* processes (4): 2 and 8 processes loading the same model into one cold cache
  at once, a process SIGKILLed mid-download (slow body) then restarted, a
  process SIGKILLed between the download and the verification of a tampered
  file then restarted.

Files lost or corrupted: 0 at the end of every test. A corrupted file exists
in the cache once, by construction: right after the kill between download and
verification (the tampered blob and its snapshot link). The test shows that no
load trusts it. keraszoo rehashes every file on every load, so the next load
refuses that copy, removes it and downloads a good one. Files lost: only the
faulty file itself (the verified files stay cached). A killed download leaves
1 partial file (``*.incomplete``, never read), which the next successful
download of that blob removes.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import keraszoo
from keraszoo.weights import IntegrityError
from keraszoo.weights import manifest as mf
from keraszoo.weights.hub import HubDownloadError
from keraszoo.weights.hub import OfflineCacheMissError
from keraszoo.weights.loader import resolve
from tests.support.hub_fixtures import assert_cache_sound
from tests.support.hub_fixtures import audit_cache
from tests.support.hub_fixtures import hf_sleep_recorded
from tests.support.hub_fixtures import hub_settings
from tests.support.hub_fixtures import read_only
from tests.support.hub_server import unused_endpoint
from tests.weights.conftest import LICENSE
from tests.weights.conftest import PAPER
from tests.weights.conftest import commit_saved

REPO = "keraszoo-test/ae"
SPEC = f"hf://{REPO}"
WEIGHTS = "model.weights.h5"
FILE_KINDS = ("config.json", "metadata.json", WEIGHTS)


@pytest.fixture
def hub_repo(fake_hub, saved_model):
    """The small saved model, committed to the fake Hub; request log cleared. The cache is audited at teardown."""
    commit_saved(fake_hub, saved_model, REPO)
    fake_hub.clear_log()
    yield fake_hub
    assert_cache_sound(fake_hub.cache_dir, fake_hub)


@pytest.fixture
def no_hf_sleep():
    """Skip huggingface_hub's own fixed waits (1 s per resume, 1-8 s backoff): they only cost wall time.

    The waits are replaced by a recorder, so tests can still see that they happened.
    """
    with hf_sleep_recorded() as waits:
        yield waits


def _cache_files(cache_dir):
    return sorted(str(p.relative_to(cache_dir)) for p in cache_dir.rglob("*") if p.is_file() or p.is_symlink())


def _weights_digest(saved_model):
    return json.loads((saved_model.directory / "metadata.json").read_text())["files"][WEIGHTS]["sha256"]


def _same_weights(resolved, saved_model):
    return resolved.files[WEIGHTS].read_bytes() == (saved_model.directory / WEIGHTS).read_bytes()


def _point_at(monkeypatch, endpoint, hf_home):
    """Point huggingface_hub (in this process) at another endpoint, same HF_HOME."""
    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    for name, value in hub_settings(endpoint, hf_home)[0].items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    close_session()


# --------------------------------------------------------------------------- transient faults are retried


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_on_download_is_retried(hub_repo, saved_model, status):
    hub_repo.add_fault("status", filename=WEIGHTS, status=status, times=1)
    resolved = resolve(SPEC)
    assert _same_weights(resolved, saved_model)
    assert hub_repo.count("GET", WEIGHTS, status=status) == 1
    assert hub_repo.count("GET", WEIGHTS, status=200) == 1
    assert_cache_sound(hub_repo.cache_dir, hub_repo)


def test_persistent_server_error_gives_a_clear_error(hub_repo, saved_model):
    hub_repo.add_fault("status", filename=WEIGHTS, status=500, times=None)
    with pytest.raises(HubDownloadError) as info:
        resolve(SPEC)
    message = str(info.value)
    assert f"Could not download '{WEIGHTS}'" in message and "after 3 attempt(s)" in message
    assert "500" in message and REPO in message
    assert hub_repo.count("GET", WEIGHTS) == 3, "bounded: exactly KERASZOO_HUB_ATTEMPTS tries"
    audit = assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    assert not any(p.endswith("/" + WEIGHTS) for p in audit.snapshot_files())
    hub_repo.clear_faults()
    assert _same_weights(resolve(SPEC), saved_model)


def test_dropped_connection_is_retried(hub_repo, saved_model, no_hf_sleep):
    # The server announces the full length, sends 40 % and hangs up. (huggingface_hub resumes with a
    # Range request when it already holds data; below its 10 MB read chunk it simply starts over.)
    hub_repo.add_fault("cut", filename=WEIGHTS, keep=0.4, times=1)
    resolved = resolve(SPEC)
    assert _same_weights(resolved, saved_model)
    gets = [r for r in hub_repo.requests if r.filename == WEIGHTS and r.method == "GET"]
    assert [r.fault for r in gets] == ["cut", None]
    assert no_hf_sleep, "huggingface_hub waited before retrying"
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_body_stalling_midway_is_retried(hub_repo, saved_model, no_hf_sleep):
    # 4 KB arrive, then the server stalls for longer than the 1 s read timeout. huggingface_hub reads 10 MB
    # chunks, so it holds nothing yet: it starts the transfer over (a Range resume needs data on disk).
    hub_repo.add_fault("drip", filename=WEIGHTS, chunk=4096, seconds=3, times=1)
    started = time.monotonic()
    resolved = resolve(SPEC)
    assert time.monotonic() - started < 3, "the stall was cut by the read timeout"
    assert _same_weights(resolved, saved_model)
    gets = [r for r in hub_repo.requests if r.filename == WEIGHTS and r.method == "GET"]
    assert [r.fault for r in gets] == ["drip", None]
    assert 4096 <= gets[0].sent < len(hub_repo.file(REPO, WEIGHTS)) and gets[1].status == 200
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_fake_hub_honours_range_requests(hub_repo, saved_model):
    """Range support (206 + Content-Range), which huggingface_hub's resume relies on."""
    import httpx2

    url = hub_repo.endpoint + f"/{REPO}/resolve/main/config.json"
    data = (saved_model.directory / "config.json").read_bytes()
    response = httpx2.get(url, headers={"Range": "bytes=10-"})
    assert response.status_code == 206
    assert response.content == data[10:]
    assert response.headers["Content-Range"] == f"bytes 10-{len(data) - 1}/{len(data)}"


@pytest.mark.parametrize("times, succeeds", [(1, True), (None, False)])
def test_truncated_body_is_retried_then_reported(hub_repo, saved_model, times, succeeds):
    hub_repo.add_fault("short", filename=WEIGHTS, keep=0.5, times=times)
    if succeeds:
        assert _same_weights(resolve(SPEC), saved_model)
        assert hub_repo.count("GET", WEIGHTS) == 2
    else:
        with pytest.raises(HubDownloadError, match="Consistency check failed") as info:
            resolve(SPEC)
        assert "after 3 attempt(s)" in str(info.value)
        assert hub_repo.count("GET", WEIGHTS) == 3
        assert not any(WEIGHTS in f for f in _cache_files(hub_repo.cache_dir))
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_timeout_on_download_is_retried(hub_repo, saved_model, no_hf_sleep):
    hub_repo.add_fault("delay", filename=WEIGHTS, seconds=8, times=1)  # client read timeout is 1 s
    started = time.monotonic()
    resolved = resolve(SPEC)
    assert time.monotonic() - started < 6, "the client gave up on the stalled response and retried"
    assert _same_weights(resolved, saved_model)
    assert hub_repo.count("GET", WEIGHTS) == 2
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_timeout_on_metadata_request_is_retried(hub_repo, no_hf_sleep):
    hub_repo.add_fault("delay", method="HEAD", filename="metadata.json", seconds=4, times=1)  # etag timeout 2 s
    resolved = resolve(SPEC)
    assert resolved.metadata["model"]["class"] == "AutoEncoder"
    assert hub_repo.count("HEAD", "metadata.json") == 2
    assert_cache_sound(hub_repo.cache_dir, hub_repo)


def test_persistent_timeout_gives_a_clear_error(hub_repo, monkeypatch, no_hf_sleep):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.3)
    monkeypatch.setenv("KERASZOO_HUB_ATTEMPTS", "2")
    hub_repo.add_fault("delay", filename=WEIGHTS, seconds=5, times=None)
    started = time.monotonic()
    with pytest.raises(HubDownloadError, match="after 2 attempt") as info:
        resolve(SPEC)
    assert time.monotonic() - started < 20
    assert "Timeout" in str(info.value)
    assert hub_repo.count("GET", WEIGHTS) >= 2
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_server_error_on_metadata_request_is_retried(hub_repo):
    hub_repo.add_fault("status", method="HEAD", filename="metadata.json", status=503, times=1)
    assert resolve(SPEC).metadata["model"]["class"] == "AutoEncoder"
    assert hub_repo.count("HEAD", "metadata.json") == 2
    assert_cache_sound(hub_repo.cache_dir, hub_repo)


def test_unreachable_hub_with_cold_cache_gives_a_clear_error(hub_repo, no_hf_sleep):
    hub_repo.add_fault("status", method="HEAD", filename="metadata.json", status=502, times=None)
    with pytest.raises(HubDownloadError) as info:
        resolve(SPEC)
    message = str(info.value)
    assert f"Could not reach {hub_repo.endpoint} for 'metadata.json' of {REPO}" in message
    assert "not in the Hugging Face cache" in message and "502" in message and "HF_HUB_OFFLINE=1" in message
    heads = hub_repo.count("HEAD", "metadata.json")
    assert heads >= 2, "huggingface_hub retried the metadata request"
    assert len(no_hf_sleep) == heads - 2, "with backoff between its retries, and no second round on top"
    assert audit_cache(hub_repo.cache_dir, hub_repo).verified == []


# --------------------------------------------------------------------------- connection refused


def test_connection_refused_with_cold_cache(hub_repo, saved_model, monkeypatch, no_hf_sleep):
    closed = unused_endpoint()
    _point_at(monkeypatch, closed, hub_repo.hf_home)
    started = time.monotonic()
    with pytest.raises(HubDownloadError) as info:
        resolve(SPEC)
    message = str(info.value)
    assert f"Could not reach {closed} for 'metadata.json' of {REPO}" in message
    assert "ConnectError" in message and "HF_ENDPOINT" in message
    assert len(no_hf_sleep) >= 3, "huggingface_hub retried the refused connection with backoff"
    assert no_hf_sleep == sorted(no_hf_sleep) and no_hf_sleep[-1] > no_hf_sleep[0], "growing waits"
    assert time.monotonic() - started < 10
    assert hub_repo.requests == []
    assert audit_cache(hub_repo.cache_dir, hub_repo).verified == []
    # Once the Hub answers again, the same call succeeds.
    _point_at(monkeypatch, hub_repo.endpoint, hub_repo.hf_home)
    assert _same_weights(resolve(SPEC), saved_model)
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_connection_refused_with_warm_cache_loads_the_cached_copy(hub_repo, saved_model, monkeypatch,
                                                                  no_hf_sleep):
    first = resolve(SPEC)
    _point_at(monkeypatch, unused_endpoint(), hub_repo.hf_home)
    again = resolve(SPEC)
    assert again.files == first.files and again.revision == hub_repo.head(REPO)
    assert _same_weights(again, saved_model)
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_connection_refused_by_the_cdn(hub_repo, saved_model, no_hf_sleep):
    hub_repo.redirect_cdn(unused_endpoint())
    with pytest.raises(HubDownloadError) as info:
        resolve(SPEC)
    message = str(info.value)
    assert f"Could not download '{WEIGHTS}'" in message and "after 3 attempt(s)" in message
    assert "ConnectError" in message
    assert hub_repo.count("HEAD", WEIGHTS) == 3, "one metadata request per keraszoo attempt"
    assert len(no_hf_sleep) >= 3, "and huggingface_hub's own retries of the refused transfer, with waits"
    audit = assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    assert not any(p.endswith("/" + WEIGHTS) for p in audit.snapshot_files())
    assert any(p.endswith("/config.json") for p in audit.snapshot_files()), "verified files stay cached"
    hub_repo.redirect_cdn(None)
    assert _same_weights(resolve(SPEC), saved_model)
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


# --------------------------------------------------------------------------- wrong bytes, every file kind


def _tamper_body(hub, filename):
    """Right-size wrong bytes for ``filename``: for metadata.json, valid JSON naming another weights digest."""
    if filename != "metadata.json":
        return None
    good = hub.file(REPO, "metadata.json")
    digest = json.loads(good)["files"][WEIGHTS]["sha256"]
    forged = good.replace(digest.encode(), ("f" if digest[0] != "f" else "e").encode() + digest[1:].encode())
    assert len(forged) == len(good) and forged != good
    json.loads(forged)
    return forged


@pytest.mark.parametrize("filename, forged", [(WEIGHTS, False), ("config.json", False), ("metadata.json", False),
                                              ("metadata.json", True)])
def test_wrong_bytes_of_the_right_size_are_refused_for_every_file(hub_repo, saved_model, filename, forged):
    body = _tamper_body(hub_repo, filename) if forged else None
    hub_repo.add_fault("tamper", filename=filename, times=None, body=body)
    with pytest.raises(IntegrityError) as info:
        resolve(SPEC)
    err = info.value
    assert err.filename == filename and err.removed
    assert err.expected != err.actual and err.expected in str(err) and err.actual in str(err)
    if filename == "metadata.json":  # no digest covers the trust root: its content address (git blob id) does
        assert err.algorithm == "git-sha1"
        assert f"expected git-sha1 {err.expected}" in str(err)
    assert hub_repo.count("GET", filename) == 1, "a fresh download that mismatches is not fetched again"
    audit = assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    assert not any(p.endswith("/" + filename) for p in audit.snapshot_files()), "the wrong copy is gone"
    # Once the server sends the right bytes, the next load succeeds.
    hub_repo.clear_faults()
    model = keraszoo.load(SPEC)
    np.testing.assert_allclose(np.asarray(model.reconstruct(saved_model.x)), saved_model.reconstruction, atol=1e-6)
    assert len(assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False).snapshot_files()) == 3


def test_tampered_download_is_refused_and_leaves_nothing_in_the_cache(hub_repo, saved_model):
    hub_repo.add_fault("tamper", filename=WEIGHTS, times=None)
    with pytest.raises(IntegrityError) as info:
        keraszoo.load(SPEC)
    err = info.value
    assert err.filename == WEIGHTS
    assert err.expected == _weights_digest(saved_model)
    assert err.actual != err.expected and len(err.actual) == 64
    assert err.expected in str(err) and err.actual in str(err) and WEIGHTS in str(err)
    cached = _cache_files(hub_repo.cache_dir)
    assert not any(f.endswith("/" + WEIGHTS) for f in cached), "snapshot symlink removed"
    assert not any(f.endswith("blobs/" + err.expected) for f in cached), "blob removed"
    assert any(f.endswith("/config.json") for f in cached), "verified files stay cached"
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    # Once the server is healthy again, the next load downloads a good copy.
    hub_repo.clear_faults()
    model = keraszoo.load(SPEC)
    reconstruction = np.asarray(model.reconstruct(saved_model.x))
    np.testing.assert_allclose(reconstruction, saved_model.reconstruction, atol=1e-6)
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


@pytest.mark.parametrize("filename", FILE_KINDS)
def test_wrong_bytes_for_a_zoo_name_are_refused_against_the_manifest(fake_hub, saved_model, private_manifest,
                                                                    filename):
    repo = "keraszoo-test/ae-mnist"
    oid = commit_saved(fake_hub, saved_model, repo)
    mf.add_entry("ae_mnist", saved_model.directory, repo_id=repo, revision=oid, dataset="mnist", license=LICENSE,
                 paper=PAPER, path=private_manifest)
    pinned = mf.get_entry("ae_mnist")["hub"]["files"][filename]["sha256"]
    fake_hub.add_fault("tamper", filename=filename, times=None)
    with pytest.raises(IntegrityError) as info:
        resolve("ae_mnist")
    assert info.value.filename == filename and info.value.expected == pinned and info.value.removed
    assert "'ae_mnist'" in str(info.value)
    audit = assert_cache_sound(fake_hub.cache_dir, fake_hub, partial_ok=False)
    assert not any(p.endswith("/" + filename) for p in audit.snapshot_files())
    fake_hub.clear_faults()
    resolved = resolve("ae_mnist")
    assert resolved.revision == oid and _same_weights(resolved, saved_model)
    assert len(assert_cache_sound(fake_hub.cache_dir, fake_hub, partial_ok=False).snapshot_files()) == 3


# --------------------------------------------------------------------------- the cache after the fact


def _corrupt_in_place(path):
    """Flip bytes of a cached file behind its snapshot link, keeping its size (bit rot, a stray write)."""
    blob = os.path.realpath(path)
    data = bytearray(open(blob, "rb").read())
    data[len(data) // 2] ^= 0xFF
    with open(blob, "wb") as handle:
        handle.write(bytes(data))


@pytest.mark.parametrize("filename", FILE_KINDS)
def test_cached_file_changed_on_disk_is_refused_offline_and_fetched_again_online(hub_repo, saved_model,
                                                                                 monkeypatch, filename):
    from huggingface_hub import constants

    first = resolve(SPEC)
    _corrupt_in_place(first.files[filename])
    assert audit_cache(hub_repo.cache_dir, hub_repo).corrupt, "the audit sees the damage"
    # Offline, nothing can replace it: it is refused (and removed), never loaded.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(IntegrityError) as info:
        resolve(SPEC)
    assert info.value.filename == filename and info.value.removed
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    # Online, the damaged copy is replaced by a fresh download within the same call.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    resolve(SPEC)
    _corrupt_in_place(first.files[filename])
    hub_repo.clear_log()
    again = resolve(SPEC)
    assert _same_weights(again, saved_model) and again.files == first.files
    assert hub_repo.count("GET", filename) == 1, "one fresh download of the damaged file"
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_read_only_cold_cache_gives_a_clear_error(hub_repo, saved_model):
    before = _cache_files(hub_repo.hf_home)
    with read_only(hub_repo.hf_home):
        with pytest.raises(HubDownloadError) as info:
            resolve(SPEC)
    message = str(info.value)
    assert "Cannot write 'metadata.json'" in message and str(hub_repo.cache_dir) in message
    assert "not writable" in message and "HF_HOME" in message and "cache_dir=" in message
    assert isinstance(info.value.__cause__, PermissionError)
    assert hub_repo.count("HEAD", "metadata.json") == 1, "not retried: waiting does not make a disk writable"
    assert _cache_files(hub_repo.hf_home) == before, "nothing was written"
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    assert _same_weights(resolve(SPEC), saved_model), "writable again: the next attempt succeeds"


def test_read_only_warm_cache_still_loads(hub_repo, saved_model, monkeypatch):
    from huggingface_hub import constants

    first = resolve(SPEC)
    with read_only(hub_repo.hf_home):
        online = resolve(SPEC)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        offline = resolve(SPEC)
    assert online.files == offline.files == first.files
    assert _same_weights(offline, saved_model)
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_read_only_cache_with_a_corrupted_file_raises_the_integrity_error(hub_repo, saved_model):
    first = resolve(SPEC)
    _corrupt_in_place(first.files[WEIGHTS])
    with read_only(hub_repo.hf_home):
        with pytest.raises(IntegrityError) as info:
            resolve(SPEC)
    err = info.value
    assert err.filename == WEIGHTS and not err.removed
    assert "could not be removed from the cache" in str(err) and "PermissionError" in str(err)
    assert "The file was not loaded" in str(err)
    # Writable again: the damaged copy is replaced, and the cache is sound.
    assert _same_weights(resolve(SPEC), saved_model)
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_full_disk_at_the_write_gives_a_clear_error(hub_repo, saved_model, monkeypatch):
    import huggingface_hub.file_download as file_download

    real_http_get = file_download.http_get
    writes = []

    class FullDisk:
        """The download's file, on a disk with 1000 bytes left."""

        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            writes.append(len(data))
            if sum(writes) > 1000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self._handle.write(data)

        def __getattr__(self, name):
            return getattr(self._handle, name)

    def http_get(url, temp_file, *args, **kwargs):
        return real_http_get(url, FullDisk(temp_file) if url.endswith(WEIGHTS) else temp_file, *args, **kwargs)

    monkeypatch.setattr(file_download, "http_get", http_get)
    with pytest.raises(HubDownloadError) as info:
        resolve(SPEC)
    message = str(info.value)
    assert f"Not enough disk space to store '{WEIGHTS}'" in message and str(hub_repo.cache_dir) in message
    assert "No space left on device" in message and "The partial download was removed" in message
    assert hub_repo.count("GET", WEIGHTS) == 1, "not retried: a full disk does not empty itself"
    audit = assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    assert not any(p.endswith("/" + WEIGHTS) for p in audit.snapshot_files())
    monkeypatch.setattr(file_download, "http_get", real_http_get)
    assert _same_weights(resolve(SPEC), saved_model), "space again: the next attempt succeeds"
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


# --------------------------------------------------------------------------- offline mode


def test_offline_with_warm_cache_needs_no_network(hub_repo, saved_model, monkeypatch):
    from huggingface_hub import constants

    resolve(SPEC)
    hub_repo.clear_log()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = keraszoo.load(SPEC)
    np.testing.assert_allclose(np.asarray(model.reconstruct(saved_model.x)), saved_model.reconstruction, atol=1e-6)
    assert hub_repo.requests == []
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_offline_with_cold_cache_says_so(hub_repo, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # set after huggingface_hub was imported: still honoured
    with pytest.raises(OfflineCacheMissError) as info:
        resolve(SPEC)
    message = str(info.value)
    assert "HF_HUB_OFFLINE=1" in message and "metadata.json" in message and REPO in message
    assert str(hub_repo.cache_dir) in message
    assert isinstance(info.value, FileNotFoundError)
    assert hub_repo.requests == []
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


# --------------------------------------------------------------------------- subprocesses (env vars, kills, limits)

RESOLVE_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if options.get("file_size_limit"):  # a full disk: writes past the limit fail with EFBIG
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (options["file_size_limit"],) * 2)
    if options.get("kill_before_verifying"):  # die between hf_hub_download and the sha256 check
        import keraszoo.weights.hub as hub
        real_verify = hub._verify
        def verify(path, expected, filename, where):
            if filename == options["kill_before_verifying"]:
                print(json.dumps({"killed_before_verifying": str(path)}), flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return real_verify(path, expected, filename, where)
        hub._verify = verify
    from keraszoo.weights import resolve
    try:
        r = resolve(sys.argv[1])
    except Exception as err:
        print(json.dumps({"error": type(err).__name__, "message": str(err)}))
        sys.exit(3)
    print(json.dumps({"files": {k: str(v) for k, v in r.files.items()}, "revision": r.revision,
                      "weights": r.files["model.weights.h5"].read_bytes().hex()[:64],
                      "tensorflow": "tensorflow" in sys.modules}))
""")


def _spawn(env, spec=SPEC, **options):
    return subprocess.Popen([sys.executable, "-c", RESOLVE_SCRIPT, spec, json.dumps(options)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(process, timeout=120):
    out, err = process.communicate(timeout=timeout)
    lines = out.strip().splitlines()
    assert lines, f"no output (rc={process.returncode}): {err[-2000:]}"
    return process.returncode, json.loads(lines[-1])


OVERLAP_DELAY_S = 2.0


def test_two_processes_loading_at_once_both_succeed(hub_repo, hub_env, saved_model):
    # Slow the weights down so that both processes are downloading at the same time.
    hub_repo.add_fault("delay", filename=WEIGHTS, seconds=OVERLAP_DELAY_S, times=None)
    env = dict(hub_env, HF_HUB_DOWNLOAD_TIMEOUT="20")  # a slow server, not a stalled one
    first, second = _spawn(env), _spawn(env)
    (rc1, out1), (rc2, out2) = _result(first), _result(second)
    assert (rc1, rc2) == (0, 0), (out1, out2)
    assert out1["files"] == out2["files"]
    expected = (saved_model.directory / WEIGHTS).read_bytes().hex()[:64]
    assert out1["weights"] == out2["weights"] == expected
    assert out1["tensorflow"] is False, "resolve() does not import TensorFlow"
    assert out1["files"][WEIGHTS].startswith(str(hub_repo.cache_dir)), "HF_HOME is honoured"
    assert hub_repo.count("HEAD", "metadata.json") == 2, "both processes went to the HF_ENDPOINT server"
    # They really overlapped: both had started before the first (slowed) weights download could finish.
    starts = sorted(r.started for r in hub_repo.requests if r.method == "HEAD" and r.filename == "metadata.json")
    first_weights = min(r.started for r in hub_repo.requests if r.method == "GET" and r.filename == WEIGHTS)
    assert starts[1] < first_weights + OVERLAP_DELAY_S
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    # The cache they filled is valid for a full load in this process.
    model = keraszoo.load(SPEC)
    np.testing.assert_allclose(np.asarray(model.reconstruct(saved_model.x)), saved_model.reconstruction, atol=1e-6)


@pytest.mark.slow
def test_eight_processes_loading_at_once_all_succeed(hub_repo, hub_env, saved_model):
    hub_repo.add_fault("delay", filename=WEIGHTS, seconds=OVERLAP_DELAY_S, times=None)
    env = dict(hub_env, HF_HUB_DOWNLOAD_TIMEOUT="60")
    processes = [_spawn(env) for _ in range(8)]
    results = [_result(p, timeout=240) for p in processes]
    assert [rc for rc, _ in results] == [0] * 8, results
    outputs = [out for _, out in results]
    assert all(out["files"] == outputs[0]["files"] for out in outputs)
    expected = (saved_model.directory / WEIGHTS).read_bytes().hex()[:64]
    assert {out["weights"] for out in outputs} == {expected}
    assert hub_repo.count("HEAD", "metadata.json") == 8
    # huggingface_hub's per-blob lock lets one process download while the others wait, then reuse its blob.
    assert 1 <= hub_repo.count("GET", WEIGHTS) <= 8
    audit = assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    assert len(audit.snapshot_files()) == 3
    assert _same_weights(resolve(SPEC), saved_model)


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_process_killed_mid_download_then_restarted(hub_repo, hub_env, saved_model):
    # The weights trickle in (2 KB every 50 ms, ~3.5 s in all); the client is SIGKILLed after 8 KB.
    hub_repo.add_fault("drip", filename=WEIGHTS, chunk=2048, seconds=0.05, times=1)
    process = _spawn(dict(hub_env, HF_HUB_DOWNLOAD_TIMEOUT="20"))
    try:
        _wait_for(lambda: any(r.filename == WEIGHTS and r.method == "GET" and r.sent >= 8192
                              for r in list(hub_repo.requests)), 60, "the weights download to be under way")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    sent = max(r.sent for r in hub_repo.requests if r.filename == WEIGHTS)
    assert sent < len(hub_repo.file(REPO, WEIGHTS)), "killed before the body was complete"
    audit = assert_cache_sound(hub_repo.cache_dir, hub_repo)
    assert len(audit.partial) == 1 and audit.partial[0].endswith(".incomplete"), str(audit)
    assert not any(p.endswith("/" + WEIGHTS) for p in audit.snapshot_files()), "no trusted half file"
    assert any(p.endswith("/config.json") for p in audit.snapshot_files())
    # Restarted: the next load succeeds and the killed download's partial file is cleaned up.
    hub_repo.clear_log()
    assert _same_weights(resolve(SPEC), saved_model)
    assert hub_repo.count("GET", WEIGHTS) == 1
    assert len(assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False).snapshot_files()) == 3


def test_process_killed_between_download_and_verification_leaves_no_trusted_file(hub_repo, hub_env, saved_model):
    # The CDN sends wrong bytes of the right size once; the client dies after hf_hub_download stored them in the
    # cache and before keraszoo hashed them: the worst moment.
    hub_repo.add_fault("tamper", filename=WEIGHTS, times=1)
    rc, out = _result(_spawn(hub_env, kill_before_verifying=WEIGHTS))
    assert rc == -signal.SIGKILL and "killed_before_verifying" in out
    audit = audit_cache(hub_repo.cache_dir, hub_repo)
    # The tampered blob and its snapshot link are in the Hugging Face cache; nothing else is wrong ...
    blob = "/blobs/" + _weights_digest(saved_model)
    assert audit.corrupt and all(f"/{WEIGHTS}:" in line or f"{blob}:" in line for line in audit.corrupt), str(audit)
    assert any(f"{blob}:" in line for line in audit.corrupt) and len(audit.snapshot_files()) == 2, str(audit)
    # ... and no load trusts it: the restarted process hashes it, removes it and downloads a good copy.
    hub_repo.clear_log()
    rc, out = _result(_spawn(hub_env))
    assert rc == 0, out
    assert out["weights"] == (saved_model.directory / WEIGHTS).read_bytes().hex()[:64]
    assert hub_repo.count("GET", WEIGHTS) == 1, "the damaged copy was fetched again, once"
    assert len(assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False).snapshot_files()) == 3


def test_full_disk_in_a_process_with_a_file_size_limit(hub_repo, hub_env, saved_model):
    # RLIMIT_FSIZE of 32 KB: config.json and metadata.json fit, the 135 KB weights do not (EFBIG).
    rc, out = _result(_spawn(hub_env, file_size_limit=32_000))
    assert rc == 3 and out["error"] == "HubDownloadError", out
    assert f"Not enough disk space to store '{WEIGHTS}'" in out["message"]
    assert "File too large" in out["message"] and str(hub_repo.cache_dir) in out["message"]
    assert hub_repo.count("GET", WEIGHTS) == 1, "not retried"
    audit = assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
    assert not any(p.endswith("/" + WEIGHTS) for p in audit.snapshot_files())
    # Without the limit the next attempt succeeds, reusing the two verified files.
    hub_repo.clear_log()
    assert _same_weights(resolve(SPEC), saved_model)
    assert hub_repo.count("GET", "config.json") == 0 and hub_repo.count("GET", WEIGHTS) == 1
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)


def test_offline_env_var_in_a_fresh_process(hub_repo, hub_env):
    env = dict(hub_env, HF_HUB_OFFLINE="1")
    rc, out = _result(_spawn(env))
    assert rc == 3 and out["error"] == "OfflineCacheMissError"
    assert "HF_HUB_OFFLINE=1" in out["message"]
    rc, out = _result(_spawn(hub_env))  # warm the cache online
    assert rc == 0
    hub_repo.clear_log()
    rc, out = _result(_spawn(env))
    assert rc == 0 and out["revision"] == hub_repo.head(REPO)
    assert hub_repo.requests == [], "offline: no request at all"
    assert_cache_sound(hub_repo.cache_dir, hub_repo, partial_ok=False)
