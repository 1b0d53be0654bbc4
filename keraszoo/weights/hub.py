"""Downloads from the Hugging Face Hub: one verified file at a time, with retries and offline handling.

Files go through ``huggingface_hub.hf_hub_download``, so its cache, ``HF_HOME``,
``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` all apply. Transient download failures
(HTTP 408/429/5xx, timeouts, dropped or truncated transfers) are retried a
bounded number of times with exponential backoff: ``$KERASZOO_HUB_ATTEMPTS``
attempts (default 3), waiting ``$KERASZOO_HUB_BACKOFF`` seconds (default 1.0)
after the first, doubling, at most 8 s. (When the Hub cannot be reached at all
and the file is not cached, ``huggingface_hub`` has already retried its
metadata request with backoff; that failure is reported at once.)

Every file is hashed after ``hf_hub_download`` returns it, on every call, also
when it came from the cache: against the digest the caller expects (the
manifest's, or the ``files`` table of the repository's ``metadata.json``), or,
for a file no digest covers (``metadata.json`` of an ``hf://`` repository),
against its content address, the ETag its cache blob is named after
(:func:`keraszoo.weights.integrity.verify_content_address`). The cache is
therefore never trusted blindly: a copy a killed process left unverified, or
one that rotted on disk, is detected, removed, and downloaded once more; only a
fresh download that still does not match raises :class:`IntegrityError`.

Failures of the local disk are not retried and say what to change: a cache
that cannot be written (read-only, wrong owner) and a full disk (``ENOSPC``,
``EFBIG``, ``EDQUOT``) raise :class:`HubDownloadError` naming the cache folder
(``huggingface_hub`` has then already removed its partial download). Partial
downloads left behind by a killed process (``blobs/<etag>.<id>.incomplete``,
never read again) are removed after the next successful download of that blob,
when no other process holds its download lock.

Repository ids, revisions and file names are checked before any request: no
``..`` segment, absolute path or backslash can reach a URL or a cache path.

``huggingface_hub`` is imported on first use, not with this module.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import re
import time
from pathlib import Path

from keraszoo.weights.integrity import IntegrityError
from keraszoo.weights.integrity import content_address
from keraszoo.weights.integrity import verify_content_address
from keraszoo.weights.integrity import verify_file
from keraszoo.weights.schema import COMMIT_PATTERN
from keraszoo.weights.schema import REPO_ID_PATTERN

__all__ = ["HubDownloadError", "OfflineCacheMissError", "download_file", "commit_of", "check_repo_id",
           "check_revision", "check_filename"]

logger = logging.getLogger("keraszoo.weights")

_TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)

#: errno values of a cache that cannot be written, and of a full disk.
_UNWRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})

# Characters git refuses in a ref name (``git check-ref-format``), plus whitespace and control characters.
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


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


def check_repo_id(repo_id) -> str:
    """Return ``repo_id`` if it is a plain ``org/name`` Hub repository id, else raise ``ValueError``.

    Beyond the pattern (letters, digits, ``_ . -``; neither part starting with a dot),
    the Hub forbids ``..`` and ``--`` anywhere: the first would walk out of a URL
    path, the second is the separator of the cache's ``models--org--name`` folders.
    """
    if not isinstance(repo_id, str) or not REPO_ID_PATTERN.match(repo_id) or ".." in repo_id or "--" in repo_id:
        raise ValueError(
            f"Invalid Hub repository id {repo_id!r}: expected 'org/name' (letters, digits, '_', '.', '-'; "
            "no '..' or '--', no other '/')."
        )
    return repo_id


def check_revision(revision) -> str:
    """Return ``revision`` if it is a valid branch, tag or commit name (git's ref rules), else raise ``ValueError``.

    Refuses what could escape a URL path or the cache's ``refs/`` folder: ``..``
    anywhere, a leading, trailing or doubled ``/``, a backslash, whitespace,
    control characters and ``~ ^ : ? * [``, ``@{``, a trailing ``.`` or ``.lock``.
    ``refs/pr/1`` and ``v1.0`` are fine.
    """
    if not isinstance(revision, str) or not revision:
        raise ValueError(f"Invalid Hub revision {revision!r}: expected a branch, tag or commit id.")
    if (".." in revision or _BAD_REF_CHARS.search(revision) or "@{" in revision or revision == "@"
            or revision.startswith("/") or revision.endswith(("/", ".", ".lock")) or "//" in revision
            or any(part.startswith(".") for part in revision.split("/"))):
        raise ValueError(
            f"Invalid Hub revision {revision!r}: a branch, tag or commit id has no '..', no leading, trailing or "
            "doubled '/', no backslash, whitespace or any of '~^:?*['."
        )
    return revision


def check_filename(filename) -> str:
    """Return ``filename`` if it is a relative ``/``-separated path inside a repository, else raise ``ValueError``."""
    parts = filename.split("/") if isinstance(filename, str) else [""]
    if any(part in ("", ".", "..") for part in parts) or "\\" in filename or _CONTROL_CHARS.search(filename):
        raise ValueError(
            f"Invalid file name {filename!r} for a Hub repository: expected a relative path such as "
            "'model.weights.h5' (no '..' or empty segment, no leading '/', no backslash)."
        )
    return filename


def _storage_error(err, filename, repo_id, revision, cache):
    """A :class:`HubDownloadError` for a local-disk failure (read-only cache, full disk), or None."""
    if not isinstance(err, OSError) or err.errno is None:
        return None
    detail = _describe(err)
    if err.errno in _UNWRITABLE_ERRNOS:
        # Worded from the errno class, not its text: EACCES (chmod) and EPERM (immutable, root) read the same.
        what = "the file system is read-only" if err.errno == errno.EROFS else "permission denied"
        at = f" for {err.filename!r}" if err.filename else ""
        return HubDownloadError(
            f"Cannot write {filename!r} of {repo_id} (revision {revision}) to the Hugging Face cache at {cache}: "
            f"{what}{at}. The cache is not writable (read-only, or owned by another user). Make it writable, or "
            "point HF_HOME (or HF_HUB_CACHE, or cache_dir=) at a writable folder; files already cached there "
            "load without writing."
        )
    if err.errno in _NO_SPACE_ERRNOS:
        return HubDownloadError(
            f"Not enough disk space to store {filename!r} of {repo_id} (revision {revision}) in the Hugging Face "
            f"cache at {cache}: {detail}. The partial download was removed. Free some space, or point HF_HOME "
            "(or HF_HUB_CACHE, or cache_dir=) at a disk with room."
        )
    return None


def _was_cached(repo_id, filename, revision, cache_dir) -> bool:
    """Whether the cache already holds ``filename`` for ``revision`` (so hf_hub_download will not fetch it)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision), str)
    except Exception:  # noqa: BLE001 - only a hint for the refetch decision
        return False


def _verify(path, expected, filename, where):
    if expected is not None:
        verify_file(path, expected["sha256"], expected_size=expected.get("size"), filename=filename, source=where,
                    evict=True)
    else:
        verify_content_address(path, filename=filename, source=where, evict=True)


def _remove_stale_partials(pointer_path) -> int:
    """Remove ``blobs/<etag>.*.incomplete`` left by killed downloads of the blob behind ``pointer_path``.

    ``huggingface_hub`` downloads every blob into a file of its own
    (``<etag>.<random>.incomplete``) while holding ``.locks/<repo>/<etag>.lock``, and
    never reads such a file again; a killed process leaves it behind. They are only
    removed when that lock can be taken at once (no download of the blob in flight).
    Best effort: returns how many were removed.
    """
    address = content_address(pointer_path)
    if address is None:
        return 0
    blob = Path(os.path.realpath(pointer_path))
    partials = sorted(blob.parent.glob(glob.escape(blob.name) + ".*.incomplete"))
    if not partials:
        return 0
    from filelock import FileLock
    from filelock import Timeout

    lock_path = blob.parent.parent.parent / ".locks" / blob.parent.parent.name / f"{blob.name}.lock"
    removed = 0
    try:
        with FileLock(str(lock_path), timeout=0):
            for partial in partials:
                try:
                    partial.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
    except (Timeout, OSError):
        return removed
    if removed:
        logger.info("Removed %d partial download(s) of %s left by an interrupted process.", removed, blob.name)
    return removed


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
        expected: ``{"sha256": ..., "size": ...}`` to check. Without it the file is checked
            against its content address (the ETag its cache blob is named after). A cached
            copy that does not match is removed and downloaded once more; a fresh download
            that does not match is removed from the cache (snapshot entry and blob) and
            :class:`IntegrityError` is raised.
        description: how to name the source in messages.

    Returns:
        the path of the cached file (inside ``snapshots/<commit>/``).

    Raises:
        ValueError: ``repo_id``, ``revision`` or ``filename`` is malformed (e.g. holds ``..``).
        IntegrityError: the downloaded bytes do not match.
        OfflineCacheMissError: offline mode is on and the file is not cached.
        HubDownloadError: the repository/revision/file does not exist, the download kept
            failing, or the cache cannot be written (read-only, disk full).
    """
    from huggingface_hub import constants
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    from keraszoo.version import __version__

    check_repo_id(repo_id)
    check_filename(filename)
    revision = check_revision(revision or "main")
    where = description or f"{constants.ENDPOINT}/{repo_id} (revision {revision})"
    cache = cache_dir or constants.HF_HUB_CACHE
    offline = _offline()
    attempts, backoff = _retry_policy()
    last_error = None
    refetched = False
    attempt = 0
    while attempt < attempts:
        attempt += 1
        was_cached = _was_cached(repo_id, filename, revision, cache_dir)
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
            storage_error = _storage_error(err, filename, repo_id, revision, cache)
            if storage_error is not None:
                raise storage_error from err
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
        try:
            _verify(path, expected, filename, where)
        except IntegrityError as err:
            if not (was_cached and err.removed and not refetched and not offline):
                raise
            # The copy came from the cache (left unverified by a killed process, or changed on disk): it is
            # gone now, so fetch it once more. That does not count as a failed attempt.
            logger.warning("The cached copy of %s from %s was corrupted (%s); it was removed, downloading it again.",
                           filename, where, _describe(err))
            refetched = True
            attempt -= 1
            continue
        _remove_stale_partials(path)
        return Path(path)
    raise HubDownloadError(
        f"Could not download {filename!r} from {where} after {attempts} attempt(s); last error: "
        f"{_describe(last_error)}. Check your connection (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 "
        "to use only cached files."
    ) from last_error
