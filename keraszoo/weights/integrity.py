"""Content integrity for weight files: sha256 digests, verification, cache eviction.

This module has no heavy dependencies (no TensorFlow, Keras or huggingface_hub),
so it can be used by the manifest tools as well as by the loader.

Every file that the loader hands to Keras is first hashed here and compared to
the digest recorded in the manifest (for zoo names) or in the repository's own
``metadata.json`` (for ``hf://`` repositories and local directories). A file
that does not match is never deserialized: :func:`verify_file` raises
:class:`IntegrityError`, and for files coming from the Hugging Face cache
:func:`evict_cached_file` removes both the snapshot symlink and the blob it
points to, so that the next attempt downloads a fresh copy instead of reusing
the corrupted one.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = [
    "IntegrityError",
    "SHA256_PATTERN",
    "sha256_file",
    "file_record",
    "verify_file",
    "evict_cached_file",
]

#: A sha256 digest as written everywhere in keraszoo: 64 lowercase hex digits.
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")

_CHUNK = 1 << 20


class IntegrityError(ValueError, OSError):
    """A file's content does not match its recorded sha256 digest or size.

    It is both a :class:`ValueError` (the data is wrong) and an
    :class:`OSError` (it is about a file), so callers can catch either.

    Attributes:
        filename: the file's name inside the model folder (e.g. ``"model.weights.h5"``).
        path: where the offending copy was found (it may have been deleted since).
        expected: the recorded sha256 digest.
        actual: the digest of the bytes that were found.
        expected_size, actual_size: the recorded and actual sizes in bytes (when known).
    """

    def __init__(self, filename, *, expected, actual, path=None, expected_size=None, actual_size=None,
                 source=None, removed=False):
        self.filename = filename
        self._details = {"expected": expected, "actual": actual, "path": None if path is None else str(path),
                         "expected_size": expected_size, "actual_size": actual_size, "source": source,
                         "removed": removed}
        vars(self).update(self._details)
        where = f" from {source}" if source else ""
        lines = [
            f"Integrity check failed for '{filename}'{where}: "
            f"expected sha256 {expected}, got {actual}.",
        ]
        if expected_size is not None and actual_size is not None and expected_size != actual_size:
            lines.append(f"Expected {expected_size} bytes, got {actual_size} bytes.")
        if self.path:
            lines.append(f"File: {self.path}")
        if removed:
            lines.append(
                "The corrupted copy was removed from the cache; it will be downloaded "
                "again on the next call. If this persists, the remote file does not "
                "match the pinned digest: do not use it."
            )
        else:
            lines.append("The file was not loaded.")
        self.message = " ".join(lines)
        super().__init__(self.message)

    def __str__(self):  # OSError would format errno/filename instead of the message
        return self.message

    def __reduce__(self):  # keep the exception picklable (multiprocessing, pytest-xdist)
        return (_rebuild_integrity_error, (self.filename, self._details))


def _rebuild_integrity_error(filename, details):
    return IntegrityError(filename, **details)


def sha256_file(path) -> str:
    """Return the sha256 hex digest (64 lowercase hex digits) of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path) -> dict:
    """Return ``{"sha256": ..., "size": ...}`` for the file at ``path`` (computed, never typed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Cannot hash '{path}': not a regular file.")
    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def verify_file(path, expected_sha256, *, expected_size=None, filename=None, source=None, evict=False):
    """Check that the file at ``path`` has the expected sha256 digest (and size).

    Args:
        path: the file to check.
        expected_sha256: the recorded digest (64 lowercase hex digits).
        expected_size: the recorded size in bytes, or ``None`` to skip the size check.
        filename: the name to report in errors (defaults to the path's basename).
        source: a human-readable description of where the file came from.
        evict: when true, a mismatching file is removed with :func:`evict_cached_file`
            (use it for files inside the Hugging Face cache).

    Returns:
        The verified path.

    Raises:
        IntegrityError: the content does not match.
        FileNotFoundError: the file is missing.
    """
    path = Path(path)
    filename = filename or path.name
    if not isinstance(expected_sha256, str) or not SHA256_PATTERN.match(expected_sha256):
        raise ValueError(
            f"Cannot verify '{filename}': the recorded sha256 {expected_sha256!r} is not "
            "64 lowercase hex digits."
        )
    if not path.is_file():
        raise FileNotFoundError(f"Cannot verify '{filename}': {path} does not exist.")
    actual_size = path.stat().st_size
    actual = sha256_file(path)
    size_ok = expected_size is None or int(expected_size) == actual_size
    if actual == expected_sha256 and size_ok:
        return path
    removed = False
    if evict:
        removed = evict_cached_file(path)
    raise IntegrityError(filename, expected=expected_sha256, actual=actual, path=path, expected_size=expected_size,
                         actual_size=actual_size, source=source, removed=removed)


def evict_cached_file(path) -> bool:
    """Remove a file from the Hugging Face cache: the snapshot entry and its blob.

    ``hf_hub_download`` returns ``<cache>/models--org--name/snapshots/<commit>/<file>``,
    normally a relative symlink to ``<cache>/models--org--name/blobs/<etag>``. Both
    are removed, so that no later call can pick the corrupted bytes up again. When
    the cache does not use symlinks (e.g. Windows without developer mode) the
    snapshot entry is the file itself and only it is removed. A blob is only deleted
    when it really lies in the ``blobs`` folder of the same repository cache.

    Returns:
        True when something was removed.
    """
    path = Path(path)
    removed = False
    blob = None
    if path.is_symlink():
        blob = Path(os.path.realpath(path))
    try:
        path.unlink()
        removed = True
    except FileNotFoundError:
        pass
    if blob is not None:
        # <repo cache>/snapshots/<commit>/<file...> -> <repo cache>/blobs/<etag>
        repo_cache = _repo_cache_of(path)
        if repo_cache is not None:
            blobs_dir = Path(os.path.realpath(repo_cache / "blobs"))
            if blob.parent == blobs_dir:
                try:
                    blob.unlink()
                    removed = True
                except FileNotFoundError:
                    pass
    return removed


def _repo_cache_of(path: Path):
    """Return the ``models--org--name`` folder that holds a snapshot entry, if any."""
    for parent in path.parents:
        if parent.name == "snapshots":
            return parent.parent
    return None
