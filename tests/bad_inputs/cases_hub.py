"""Bad inputs of the weights and the Hub: malformed ``hf://`` specs, missing revisions, ``..`` in a repository id,
a revision or a file name, a read-only cache, an unreachable Hub, tampered downloads.

Each ``run`` receives an empty tmp folder. Cases that talk to a Hub start the
loopback fake of tests/support/hub_server.py inside the case and stop it after
(:func:`_hub`); ``huggingface_hub`` is pointed at it with ``HF_HOME`` under
``tmp / "in"`` by :func:`tests.support.hub_fixtures.use_hub`, which restores the
environment and ``huggingface_hub``'s constants on exit. Messages naming the
server hold ``http://127.0.0.1:<port>``, which the catalogue prints as
``http://<hub>`` (:func:`tests.bad_inputs.registry.normalise`); cache paths are
under the case's tmp folder (``<tmp>``).
"""

from __future__ import annotations

import contextlib
import json

from tests.bad_inputs import shared
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import inputs

AREA = "weights and hub"

REPO = "keraszoo-test/ae"


def case(id, description, run, error, match, **kwargs):
    return Case(id=id, area=AREA, description=description, run=run, error=error, match=match, **kwargs)


def _errors():
    from keraszoo.weights import IntegrityError
    from keraszoo.weights.hub import HubDownloadError
    from keraszoo.weights.hub import OfflineCacheMissError

    return IntegrityError, HubDownloadError, OfflineCacheMissError


IntegrityError, HubDownloadError, OfflineCacheMissError = _errors()


@contextlib.contextmanager
def _hub(tmp, *, endpoint=None, publish=True):
    """A loopback Hub holding a tiny saved model at :data:`REPO` (unless ``publish=False``), ``HF_HOME`` in ``tmp/in``.

    With ``endpoint`` (e.g. a closed port), ``huggingface_hub`` is pointed there instead of at the fake Hub.
    """
    from tests.support.hub_fixtures import use_hub
    from tests.support.hub_server import FakeHub

    hub = FakeHub().start()
    hf_home = inputs(tmp) / "hf_home"
    hf_home.mkdir(parents=True, exist_ok=True)
    try:
        if publish:
            hub.commit_folder(REPO, shared.ae_folder(), message="add model")
        with use_hub(endpoint or hub.endpoint, hf_home):
            hub.cache_dir = hf_home / "hub"
            yield hub
    finally:
        hub.stop()


def _load(spec, **kwargs):
    """``keraszoo.load(spec, **kwargs)`` with a loopback Hub (that must see no request: the spec is refused first)."""

    def run(tmp):
        import keraszoo

        with _hub(tmp, publish=False) as hub:
            try:
                return keraszoo.load(spec, **kwargs)
            finally:
                if hub.requests:
                    raise AssertionError(f"{spec!r} reached the Hub: {[r.path for r in hub.requests]}")

    return run


def _download(filename, revision=None):
    def run(tmp):
        from keraszoo.weights import download_file

        with _hub(tmp, publish=False) as hub:
            try:
                return download_file(REPO, filename, revision=revision)
            finally:
                if hub.requests:
                    raise AssertionError(f"{filename!r} reached the Hub: {[r.path for r in hub.requests]}")

    return run


def _revision_missing(tmp):
    import keraszoo

    with _hub(tmp):
        keraszoo.load(f"hf://{REPO}@v9")


def _repo_missing(tmp):
    import keraszoo

    with _hub(tmp):
        keraszoo.load("hf://nobody/nothing")


def _read_only_cache(tmp):
    import keraszoo
    from tests.support.hub_fixtures import read_only

    with _hub(tmp) as hub, read_only(hub.cache_dir.parent):
        keraszoo.load(f"hf://{REPO}")


def _unreachable(tmp):
    import keraszoo
    from tests.support.hub_fixtures import hf_sleep_recorded
    from tests.support.hub_server import unused_endpoint

    with _hub(tmp, endpoint=unused_endpoint()), hf_sleep_recorded():  # huggingface_hub's backoff, without the wait
        keraszoo.load(f"hf://{REPO}")


def _offline_cold(tmp):
    from huggingface_hub import constants

    import keraszoo

    with _hub(tmp), contextlib.ExitStack() as stack:
        saved = constants.HF_HUB_OFFLINE
        stack.callback(setattr, constants, "HF_HUB_OFFLINE", saved)
        constants.HF_HUB_OFFLINE = True
        keraszoo.load(f"hf://{REPO}")


def _tampered(filename):
    def run(tmp):
        import keraszoo

        with _hub(tmp) as hub:
            hub.add_fault("tamper", filename=filename, times=None)
            keraszoo.load(f"hf://{REPO}")

    return run


def _forged_metadata(tmp):
    """metadata.json arrives as valid JSON of the right size, listing another digest for the weights."""
    import keraszoo

    with _hub(tmp) as hub:
        good = hub.file(REPO, "metadata.json")
        digest = json.loads(good)["files"]["model.weights.h5"]["sha256"]
        forged = good.replace(digest.encode(), b"0" * 64)
        hub.add_fault("tamper", filename="metadata.json", times=None, body=forged)
        keraszoo.load(f"hf://{REPO}")


_MALFORMED = r"Malformed Hub spec '{}': expected 'hf://org/repo' or 'hf://org/repo@revision'\."


def _malformed(spec):
    return _MALFORMED.format(spec.replace(".", r"\.").replace("/", "/"))


CASES = [
    # ------------------------------------------------------------------ malformed hf:// specs
    case("hub-spec-empty", "keraszoo.load('hf://') (no repository)", _load("hf://"), ValueError, _malformed("hf://")),
    case("hub-spec-no-org", "keraszoo.load('hf://vae-mnist') (no organisation)", _load("hf://vae-mnist"), ValueError,
         _malformed("hf://vae-mnist")),
    case("hub-spec-file-path", "keraszoo.load('hf://org/repo/model.weights.h5') (a file, not a repository)",
         _load("hf://keraszoo/vae-mnist/model.weights.h5"), ValueError,
         _malformed("hf://keraszoo/vae-mnist/model.weights.h5")),
    case("hub-spec-space", "keraszoo.load('hf://keraszoo/vae mnist') (a space in the name)",
         _load("hf://keraszoo/vae mnist"), ValueError, _malformed("hf://keraszoo/vae mnist")),
    case("hub-spec-url", "keraszoo.load('hf://https://huggingface.co/keraszoo/vae-mnist') (a URL after hf://)",
         _load("hf://https://huggingface.co/keraszoo/vae-mnist"), ValueError,
         r"Malformed Hub spec 'hf://https://huggingface\.co/keraszoo/vae-mnist'"),
    case("hub-spec-empty-revision", "keraszoo.load('hf://keraszoo/vae-mnist@') (nothing after '@')",
         _load("hf://keraszoo/vae-mnist@"), ValueError, r"Malformed Hub spec 'hf://keraszoo/vae-mnist@': empty revision after '@'"),
    case("hub-spec-two-revisions", "keraszoo.load('hf://keraszoo/vae-mnist@v1', revision='v2')",
         _load("hf://keraszoo/vae-mnist@v1", revision="v2"), ValueError,
         r"Conflicting revisions: 'hf://keraszoo/vae-mnist@v1' pins 'v1' but revision='v2' was passed"),
    # ------------------------------------------------------------------ path traversal
    case("hub-repo-id-dotdot", "keraszoo.load('hf://keraszoo/..') ('..' as the repository name)",
         _load("hf://keraszoo/.."), ValueError, _malformed("hf://keraszoo/..")),
    case("hub-repo-id-embedded-dotdot", "keraszoo.load('hf://keraszoo/vae..mnist') ('..' inside the repository id)",
         _load("hf://keraszoo/vae..mnist"), ValueError,
         r"Malformed Hub spec 'hf://keraszoo/vae\.\.mnist': Invalid Hub repository id 'keraszoo/vae\.\.mnist'.*no '\.\.' or '--'"),
    case("hub-revision-traversal", "keraszoo.load('hf://keraszoo-test/ae@../../../etc') ('..' in the revision)",
         _load(f"hf://{REPO}@../../../etc"), ValueError,
         r"Malformed Hub spec 'hf://keraszoo-test/ae@\.\./\.\./\.\./etc': Invalid Hub revision '\.\./\.\./\.\./etc'"),
    case("hub-revision-argument-traversal", "keraszoo.load('hf://keraszoo-test/ae', revision='refs/../../x')",
         _load(f"hf://{REPO}", revision="refs/../../x"), ValueError,
         r"^Invalid Hub revision 'refs/\.\./\.\./x': a branch, tag or commit id has no '\.\.'"),
    case("hub-revision-absolute", "keraszoo.load('hf://keraszoo-test/ae@/etc') (an absolute path as revision)",
         _load(f"hf://{REPO}@/etc"), ValueError, r"Invalid Hub revision '/etc'"),
    case("hub-filename-traversal", "keraszoo.weights.download_file('keraszoo-test/ae', '../../outside.json')",
         _download("../../outside.json"), ValueError,
         r"Invalid file name '\.\./\.\./outside\.json' for a Hub repository: expected a relative path"),
    case("hub-filename-absolute", "keraszoo.weights.download_file('keraszoo-test/ae', '/etc/passwd')",
         _download("/etc/passwd"), ValueError, r"Invalid file name '/etc/passwd' for a Hub repository"),
    case("hub-download-revision-traversal",
         "keraszoo.weights.download_file('keraszoo-test/ae', 'config.json', revision='main/../..')",
         _download("config.json", revision="main/../.."), ValueError, r"Invalid Hub revision 'main/\.\./\.\.'"),
    # ------------------------------------------------------------------ the Hub answers no
    case("hub-revision-missing", "keraszoo.load('hf://keraszoo-test/ae@v9'): the repository has no revision 'v9'",
         _revision_missing, HubDownloadError,
         r"Revision 'v9' does not exist in 'keraszoo-test/ae' on http://127\.0\.0\.1:\d+\."),
    case("hub-repo-missing", "keraszoo.load('hf://nobody/nothing'): no such repository",
         _repo_missing, HubDownloadError, r"Repository 'nobody/nothing' was not found on http://127\.0\.0\.1:\d+"),
    # ------------------------------------------------------------------ the machine
    case("hub-read-only-cache", "keraszoo.load('hf://keraszoo-test/ae') with a read-only, empty HF_HOME",
         _read_only_cache, HubDownloadError,
         r"Cannot write 'metadata\.json' of keraszoo-test/ae \(revision main\) to the Hugging Face cache at .*hf_home/hub: "
         r"permission denied for '.*hf_home/hub'\. The cache is not writable.*HF_HOME"),
    case("hub-unreachable-cold-cache", "keraszoo.load('hf://keraszoo-test/ae') with HF_ENDPOINT on a closed port, "
         "nothing cached", _unreachable, HubDownloadError,
         r"Could not reach http://127\.0\.0\.1:\d+ for 'metadata\.json' of keraszoo-test/ae \(revision main\), and it is "
         r"not in the Hugging Face cache: ConnectError.*HF_HUB_OFFLINE=1"),
    case("hub-offline-cold-cache", "keraszoo.load('hf://keraszoo-test/ae') with HF_HUB_OFFLINE=1 and nothing cached",
         _offline_cold, OfflineCacheMissError,
         r"Offline mode is on \(HF_HUB_OFFLINE=1\) and 'metadata\.json' of keraszoo-test/ae \(revision main\) is not in "
         r"the Hugging Face cache"),
    # ------------------------------------------------------------------ tampered downloads
    case("hub-tampered-weights", "keraszoo.load('hf://keraszoo-test/ae') when the weights arrive with flipped bytes",
         _tampered("model.weights.h5"), IntegrityError,
         r"Integrity check failed for 'model\.weights\.h5' from hf://keraszoo-test/ae@[0-9a-f]{40}: expected sha256 "
         r"[0-9a-f]{64}, got [0-9a-f]{64}\..*removed from the cache"),
    case("hub-tampered-config", "keraszoo.load('hf://keraszoo-test/ae') when config.json arrives with flipped bytes",
         _tampered("config.json"), IntegrityError,
         r"Integrity check failed for 'config\.json' from hf://keraszoo-test/ae@[0-9a-f]{40}: expected sha256"),
    case("hub-tampered-metadata", "keraszoo.load('hf://keraszoo-test/ae') when metadata.json arrives as other, valid "
         "JSON of the same size", _forged_metadata, IntegrityError,
         r"Integrity check failed for 'metadata\.json' from http://127\.0\.0\.1:\d+/keraszoo-test/ae \(revision main\): "
         r"expected git-sha1 [0-9a-f]{40}, got [0-9a-f]{40}\."),
]
