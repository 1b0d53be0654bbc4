"""Downloads from the Hugging Face Hub: one verified file at a time, with retries and offline handling.

Files go through ``huggingface_hub.hf_hub_download``, so its cache, ``HF_HOME``,
``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` all apply. Transient download failures
(HTTP 408/429/5xx, timeouts, dropped or truncated transfers) are retried a
bounded number of times with exponential backoff: ``$KERASZOO_HUB_ATTEMPTS``
attempts (default 3), waiting ``$KERASZOO_HUB_BACKOFF`` seconds (default 1.0)
after the first, doubling, at most 8 s. (When the Hub cannot be reached at all
and the file is not cached, ``huggingface_hub`` has already retried its
metadata request with backoff; that failure is reported at once.)

``huggingface_hub`` is imported on first use, not with this module.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from keraszoo.weights.integrity import IntegrityError
from keraszoo.weights.integrity import verify_file
from keraszoo.weights.schema import COMMIT_PATTERN

__all__ = ["HubDownloadError", "OfflineCacheMissError", "download_file", "commit_of"]

logger = logging.getLogger("keraszoo.weights")

_TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)


class HubDownloadError(OSError):
    """A file could not be fetched from the Hub (after retrying transient failures)."""


class OfflineCacheMissError(HubDownloadError, FileNotFoundError):
    """Offline mode (``HF_HUB_OFFLINE=1``) is on and the file is not in the local cache."""


def _env_number(name, default, kind=float):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"${name} must be a number, got {value!r}.") from None
    if number < 0:
        raise ValueError(f"${name} must be >= 0, got {value!r}.")
    return number


def _retry_policy():
    attempts = max(1, _env_number("KERASZOO_HUB_ATTEMPTS", 3, int))
    backoff = _env_number("KERASZOO_HUB_BACKOFF", 1.0, float)
    return attempts, backoff


def _offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "")
    return bool(constants.is_offline_mode()) or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _is_transient(err) -> bool:
    """Whether a download error is worth retrying (network trouble, not a wrong request)."""
    import httpx2
    from huggingface_hub import errors as hf_errors

    if isinstance(err, IntegrityError):
        return False
    if isinstance(err, hf_errors.OfflineModeIsEnabled):
        return False
    if isinstance(err, hf_errors.LocalEntryNotFoundError):
        # The metadata request failed and the cache is cold: huggingface_hub has already retried
        # it with backoff (about 20 s), another round would only multiply the wait.
        return False
    if isinstance(err, (hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError,
                        hf_errors.EntryNotFoundError)):
        return False
    if isinstance(err, hf_errors.HfHubHTTPError):
        response = getattr(err, "response", None)
        return response is not None and response.status_code in _TRANSIENT_STATUS
    if isinstance(err, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)):
        return True
    if type(err) is OSError and "Consistency check failed" in str(err):
        # huggingface_hub's size check: the body was shorter/longer than announced.
        return True
    return False


def _describe(err) -> str:
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def commit_of(pointer_path, fallback):
    """The commit id of a file returned by hf_hub_download (``.../snapshots/<commit>/<file>``)."""
    parent = Path(pointer_path).parent.name
    return parent if COMMIT_PATTERN.match(parent) else fallback


def download_file(repo_id, filename, *, revision=None, cache_dir=None, expected=None, description=None) -> Path:
    """Fetch one file of a Hub repository into the Hugging Face cache and verify it.

    Goes through ``huggingface_hub.hf_hub_download`` (so the cache, ``HF_HOME``,
    ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` apply). Transient failures are
    retried with exponential backoff (see the module docstring).

    Args:
        repo_id: ``"org/name"``.
        filename: file inside the repository.
        revision: branch, tag or commit id (default ``"main"``).
        cache_dir: Hugging Face cache folder (default: ``$HF_HUB_CACHE``, i.e. ``$HF_HOME/hub``).
        expected: ``{"sha256": ..., "size": ...}`` to check; a mismatching file is removed
            from the cache (snapshot symlink and blob) and :class:`IntegrityError` is raised.
        description: how to name the source in messages.

    Returns:
        the path of the cached file (inside ``snapshots/<commit>/``).

    Raises:
        IntegrityError: the downloaded bytes do not match ``expected``.
        OfflineCacheMissError: offline mode is on and the file is not cached.
        HubDownloadError: the repository/revision/file does not exist, or the
            download kept failing.
    """
    from huggingface_hub import constants
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    from keraszoo.version import __version__

    revision = revision or "main"
    where = description or f"{constants.ENDPOINT}/{repo_id} (revision {revision})"
    offline = _offline()
    attempts, backoff = _retry_policy()
    last_error = None
    for attempt in range(1, attempts + 1):
        try:
            path = hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=cache_dir,
                library_name="keraszoo",
                library_version=__version__,
                local_files_only=offline,
            )
        except hf_errors.RepositoryNotFoundError as err:
            raise HubDownloadError(
                f"Repository {repo_id!r} was not found on {constants.ENDPOINT} (it does not exist, is "
                "private, or your token has no access to it)."
            ) from err
        except hf_errors.RevisionNotFoundError as err:
            raise HubDownloadError(f"Revision {revision!r} does not exist in {repo_id!r} on {constants.ENDPOINT}.") from err
        except hf_errors.RemoteEntryNotFoundError as err:
            raise HubDownloadError(
                f"{where} has no file {filename!r}. Is it a repository written by keraszoo.save_pretrained()?"
            ) from err
        except Exception as err:  # noqa: BLE001 - classified below, re-raised when not transient
            if isinstance(err, hf_errors.OfflineModeIsEnabled) or (
                isinstance(err, hf_errors.LocalEntryNotFoundError)
                and (offline or isinstance(err.__cause__, hf_errors.OfflineModeIsEnabled))
            ):
                cache = cache_dir or constants.HF_HUB_CACHE
                raise OfflineCacheMissError(
                    f"Offline mode is on (HF_HUB_OFFLINE=1) and {filename!r} of {repo_id} (revision {revision}) "
                    f"is not in the Hugging Face cache at {cache}. Load it once with network access "
                    "(it is then cached), or unset HF_HUB_OFFLINE."
                ) from err
            if isinstance(err, hf_errors.LocalEntryNotFoundError):
                cause = err.__cause__ if err.__cause__ is not None else err
                raise HubDownloadError(
                    f"Could not reach {constants.ENDPOINT} for {filename!r} of {repo_id} (revision {revision}), "
                    f"and it is not in the Hugging Face cache: {_describe(cause)}. Check your connection "
                    "(or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use only cached files."
                ) from err
            if not _is_transient(err):
                raise
            last_error = err
            if attempt < attempts:
                delay = min(8.0, backoff * (2 ** (attempt - 1)))
                logger.warning(
                    "Downloading %s from %s failed (%s); retrying in %.2fs [attempt %d/%d].",
                    filename, where, _describe(err), delay, attempt, attempts,
                )
                time.sleep(delay)
            continue
        if expected is not None:
            verify_file(
                path,
                expected["sha256"],
                expected_size=expected.get("size"),
                filename=filename,
                source=where,
                evict=True,
            )
        return Path(path)
    raise HubDownloadError(
        f"Could not download {filename!r} from {where} after {attempts} attempt(s); last error: "
        f"{_describe(last_error)}. Check your connection (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 "
        "to use only cached files."
    ) from last_error
