"""Downloads under faults, on the loopback Hub: retries, integrity, offline mode, concurrent processes."""

import json
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

import keraszoo
from keraszoo.weights import IntegrityError
from keraszoo.weights.hub import HubDownloadError
from keraszoo.weights.hub import OfflineCacheMissError
from keraszoo.weights.loader import resolve
from tests.weights.conftest import commit_saved

REPO = "keraszoo-test/ae"
SPEC = f"hf://{REPO}"
WEIGHTS = "model.weights.h5"


@pytest.fixture
def hub_repo(fake_hub, saved_model):
    """The small saved model, committed to the fake Hub; request log cleared."""
    commit_saved(fake_hub, saved_model, REPO)
    fake_hub.clear_log()
    return fake_hub


@pytest.fixture
def no_hf_sleep(monkeypatch):
    """Skip huggingface_hub's own fixed waits (1 s per resume, 1-8 s backoff): they only cost wall time.

    The waits are replaced by a recorder, so tests can still see that they happened.
    """
    import huggingface_hub.file_download as file_download
    import huggingface_hub.utils._http as hf_http

    waits = []
    fake_time = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    fake_time.sleep = waits.append
    monkeypatch.setattr(file_download, "time", fake_time)
    monkeypatch.setattr(hf_http, "time", fake_time)
    return waits


def _cache_files(cache_dir):
    return sorted(str(p.relative_to(cache_dir)) for p in cache_dir.rglob("*") if p.is_file() or p.is_symlink())


def _weights_digest(saved_model):
    return json.loads((saved_model.directory / "metadata.json").read_text())["files"][WEIGHTS]["sha256"]


# --------------------------------------------------------------------------- transient faults are retried


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_on_download_is_retried(hub_repo, saved_model, status):
    hub_repo.add_fault("status", filename=WEIGHTS, status=status, times=1)
    resolved = resolve(SPEC)
    assert resolved.files[WEIGHTS].read_bytes() == (saved_model.directory / WEIGHTS).read_bytes()
    assert hub_repo.count("GET", WEIGHTS, status=status) == 1
    assert hub_repo.count("GET", WEIGHTS, status=200) == 1


def test_persistent_server_error_gives_a_clear_error(hub_repo):
    hub_repo.add_fault("status", filename=WEIGHTS, status=500, times=None)
    with pytest.raises(HubDownloadError) as info:
        resolve(SPEC)
    message = str(info.value)
    assert f"Could not download '{WEIGHTS}'" in message and "after 3 attempt(s)" in message
    assert "500" in message and REPO in message
    assert hub_repo.count("GET", WEIGHTS) == 3, "bounded: exactly KERASZOO_HUB_ATTEMPTS tries"
    assert not [f for f in _cache_files(hub_repo.cache_dir) if f.endswith(".incomplete")]


def test_dropped_connection_is_retried(hub_repo, saved_model, no_hf_sleep):
    # The server announces the full length, sends 40 % and hangs up. (huggingface_hub resumes with a
    # Range request when it already holds data; below its 10 MB read chunk it simply starts over.)
    hub_repo.add_fault("cut", filename=WEIGHTS, keep=0.4, times=1)
    resolved = resolve(SPEC)
    assert resolved.files[WEIGHTS].read_bytes() == (saved_model.directory / WEIGHTS).read_bytes()
    gets = [r for r in hub_repo.requests if r.filename == WEIGHTS and r.method == "GET"]
    assert [r.fault for r in gets] == ["cut", None]
    assert no_hf_sleep, "huggingface_hub waited before retrying"


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
        resolved = resolve(SPEC)
        assert resolved.files[WEIGHTS].read_bytes() == (saved_model.directory / WEIGHTS).read_bytes()
        assert hub_repo.count("GET", WEIGHTS) == 2
    else:
        with pytest.raises(HubDownloadError, match="Consistency check failed") as info:
            resolve(SPEC)
        assert "after 3 attempt(s)" in str(info.value)
        assert hub_repo.count("GET", WEIGHTS) == 3
        assert not any(WEIGHTS in f for f in _cache_files(hub_repo.cache_dir))


def test_timeout_on_download_is_retried(hub_repo, saved_model, no_hf_sleep):
    hub_repo.add_fault("delay", filename=WEIGHTS, seconds=8, times=1)  # client read timeout is 1 s
    started = time.monotonic()
    resolved = resolve(SPEC)
    assert time.monotonic() - started < 6, "the client gave up on the stalled response and retried"
    assert resolved.files[WEIGHTS].read_bytes() == (saved_model.directory / WEIGHTS).read_bytes()
    assert hub_repo.count("GET", WEIGHTS) == 2


def test_timeout_on_metadata_request_is_retried(hub_repo, no_hf_sleep):
    hub_repo.add_fault("delay", method="HEAD", filename="metadata.json", seconds=4, times=1)  # etag timeout 2 s
    resolved = resolve(SPEC)
    assert resolved.metadata["model"]["class"] == "AutoEncoder"
    assert hub_repo.count("HEAD", "metadata.json") == 2


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


def test_server_error_on_metadata_request_is_retried(hub_repo):
    hub_repo.add_fault("status", method="HEAD", filename="metadata.json", status=503, times=1)
    assert resolve(SPEC).metadata["model"]["class"] == "AutoEncoder"
    assert hub_repo.count("HEAD", "metadata.json") == 2


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


# --------------------------------------------------------------------------- integrity


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
    # Once the server is healthy again, the next load downloads a good copy.
    hub_repo.clear_faults()
    model = keraszoo.load(SPEC)
    reconstruction = np.asarray(model.reconstruct(saved_model.x))
    np.testing.assert_allclose(reconstruction, saved_model.reconstruction, atol=1e-6)


# --------------------------------------------------------------------------- offline mode


def test_offline_with_warm_cache_needs_no_network(hub_repo, saved_model, monkeypatch):
    from huggingface_hub import constants

    resolve(SPEC)
    hub_repo.clear_log()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = keraszoo.load(SPEC)
    np.testing.assert_allclose(np.asarray(model.reconstruct(saved_model.x)), saved_model.reconstruction, atol=1e-6)
    assert hub_repo.requests == []


def test_offline_with_cold_cache_says_so(hub_repo, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # set after huggingface_hub was imported: still honoured
    with pytest.raises(OfflineCacheMissError) as info:
        resolve(SPEC)
    message = str(info.value)
    assert "HF_HUB_OFFLINE=1" in message and "metadata.json" in message and REPO in message
    assert str(hub_repo.cache_dir) in message
    assert isinstance(info.value, FileNotFoundError)
    assert hub_repo.requests == []


# --------------------------------------------------------------------------- subprocesses (env vars)

RESOLVE_SCRIPT = textwrap.dedent("""
    import json, sys
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


def _spawn(env, spec=SPEC):
    return subprocess.Popen([sys.executable, "-c", RESOLVE_SCRIPT, spec], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(process, timeout=60):
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
    assert not [f for f in _cache_files(hub_repo.cache_dir) if f.endswith(".incomplete")]
    # The cache they filled is valid for a full load in this process.
    model = keraszoo.load(SPEC)
    np.testing.assert_allclose(np.asarray(model.reconstruct(saved_model.x)), saved_model.reconstruction, atol=1e-6)


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
