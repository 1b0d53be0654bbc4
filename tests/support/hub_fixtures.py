"""Pytest fixtures around :class:`tests.support.hub_server.FakeHub`.

Import them into a ``conftest.py``::

    from tests.support.hub_fixtures import fake_hub, hub_env  # noqa: F401

``fake_hub`` starts the loopback Hub and points ``huggingface_hub`` at it for
the test: ``huggingface_hub`` reads ``HF_ENDPOINT``/``HF_HOME``/... once, at
import, so the fixture patches the module constants (``ENDPOINT``,
``HUGGINGFACE_CO_URL_TEMPLATE``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, the
timeouts) for in-process calls, and sets the environment variables for
subprocesses (``hub_env`` returns a ready environment dict).
"""

from __future__ import annotations

import os

import pytest

from tests.support.hub_server import FakeHub

#: Short client timeouts so that "timeout" faults cost about a second.
DOWNLOAD_TIMEOUT_S = 1
ETAG_TIMEOUT_S = 2


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A running :class:`FakeHub`; ``huggingface_hub`` talks to it, with a fresh HF_HOME under tmp_path."""
    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    hub = FakeHub().start()
    hf_home = tmp_path / "hf_home"
    hf_home.mkdir()
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT_S)
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", ETAG_TIMEOUT_S)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", str(DOWNLOAD_TIMEOUT_S))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", str(ETAG_TIMEOUT_S))
    monkeypatch.setenv("KERASZOO_HUB_BACKOFF", "0.05")
    monkeypatch.setenv("KERASZOO_HUB_ATTEMPTS", "3")
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
