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

Files that no independent digest covers (``metadata.json`` of an ``hf://``
repository, the root of its trust) are checked against their *content
address* instead: the Hugging Face cache names every blob after the ETag the
Hub announced for it, which is the file's sha256 for LFS files and its git
blob id (sha1 of ``"blob <size>\\0" + content``) for regular ones
(:func:`content_address`, :func:`verify_content_address`). So every file the
loader reads from the cache is hashed on every load; a copy left unverified in
the cache (a process killed between download and check, a disk that flipped a
bit) is never trusted.
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
    "git_blob_id",
    "verify_file",
    "content_address",
    "verify_content_address",
    "evict_cached_file",
]

#: A sha256 digest as written everywhere in keraszoo: 64 lowercase hex digits.
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
#: A git object id (the Hub's ETag of a regular, non-LFS file): 40 lowercase hex digits.
GIT_SHA1_PATTERN = re.compile(r"^[0-9a-f]{40}$")

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
        algorithm: ``"sha256"``, or ``"git-sha1"`` for a content address that is a git blob id.
        removed: whether the corrupted copy was removed from the cache.
        removal_error: why it could not be removed (e.g. a read-only cache), else None.
    """

    def __init__(self, filename, *, expected, actual, path=None, expected_size=None, actual_size=None,
                 source=None, removed=False, algorithm="sha256", removal_error=None):
        self.filename = filename
        self._details = {"expected": expected, "actual": actual, "path": None if path is None else str(path),
                         "expected_size": expected_size, "actual_size": actual_size, "source": source,
                         "removed": removed, "algorithm": algorithm, "removal_error": removal_error}
        vars(self).update(self._details)
        where = f" from {source}" if source else ""
        lines = [
            f"Integrity check failed for '{filename}'{where}: "
            f"expected {algorithm} {expected}, got {actual}.",
        ]
        if expected_size is not None and actual_size is not None and expected_size != actual_size:
            lines.append(f"Expected {expected_size} bytes, got {actual_size} bytes.")
        if self.path:
            lines.append(f"File: {self.path}")
        if removed:
            remote = ("does not match the pinned digest" if algorithm == "sha256"
                      else "does not match the digest (ETag) the server announced for it")
            lines.append(
                "The corrupted copy was removed from the cache; it will be downloaded "
                f"again on the next call. If this persists, the remote file {remote}: do not use it."
            )
        elif removal_error:
            lines.append(
                f"The file was not loaded, but the corrupted copy could not be removed from the cache "
                f"({removal_error}): delete it (and the blob it links to) by hand, or make the cache writable."
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


def git_blob_id(path) -> str:
    """Return the git object id of the file at ``path``: sha1 of ``b"blob <size>\\0"`` + its content.

    It is what the Hub announces as the ETag of a regular (non-LFS) file, and the
    name of that file's blob in the Hugging Face cache.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % Path(path).stat().st_size)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require_file(path, what):
    """``path`` must be a regular file: ``IsADirectoryError`` for a folder, ``FileNotFoundError`` when absent."""
    if path.is_dir():
        raise IsADirectoryError(f"{what}: {path} is a directory, not a file.")
    if not path.is_file():
        raise FileNotFoundError(f"{what}: {path} does not exist." if not path.exists()
                                else f"{what}: {path} is not a regular file.")


def file_record(path) -> dict:
    """Return ``{"sha256": ..., "size": ...}`` for the file at ``path`` (computed, never typed)."""
    path = Path(path)
    _require_file(path, "Cannot hash it")
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
        IsADirectoryError: a directory stands where the file should be.
    """
    path = Path(path)
    filename = filename or path.name
    if not isinstance(expected_sha256, str) or not SHA256_PATTERN.match(expected_sha256):
        raise ValueError(
            f"Cannot verify '{filename}': the recorded sha256 {expected_sha256!r} is not "
            "64 lowercase hex digits."
        )
    _require_file(path, f"Cannot verify '{filename}'")
    actual_size = path.stat().st_size
    actual = sha256_file(path)
    size_ok = expected_size is None or int(expected_size) == actual_size
    if actual == expected_sha256 and size_ok:
        return path
    removed, removal_error = _evict(path) if evict else (False, None)
    raise IntegrityError(filename, expected=expected_sha256, actual=actual, path=path, expected_size=expected_size,
                         actual_size=actual_size, source=source, removed=removed, removal_error=removal_error)


def _evict(path):
    """:func:`evict_cached_file`, reporting instead of raising when the cache cannot be written."""
    try:
        return evict_cached_file(path), None
    except OSError as err:  # a read-only cache: the copy stays, the error must still be the integrity one
        return False, f"{type(err).__name__}: {err}"


def content_address(path):
    """The digest a Hugging Face cache entry is named after, as ``(algorithm, hexdigest)``, or None.

    ``path`` is a snapshot entry (``.../snapshots/<commit>/<file>``) that links to
    ``.../blobs/<etag>``. The ETag is the file's sha256 (LFS files, 64 hex digits,
    algorithm ``"sha256"``) or its git blob id (regular files, 40 hex digits,
    ``"git-sha1"``). None when the entry is not a link into the ``blobs`` folder of
    its repository cache (a cache without symlinks) or the name is neither form.
    """
    path = Path(path)
    if not path.is_symlink():
        return None
    repo_cache = _repo_cache_of(path)
    if repo_cache is None:
        return None
    blob = Path(os.path.realpath(path))
    if blob.parent != Path(os.path.realpath(repo_cache / "blobs")):
        return None
    if SHA256_PATTERN.match(blob.name):
        return "sha256", blob.name
    if GIT_SHA1_PATTERN.match(blob.name):
        return "git-sha1", blob.name
    return None


def verify_content_address(path, *, filename=None, source=None, evict=True):
    """Check that a Hugging Face cache entry holds the bytes its blob is named after.

    For files that no recorded digest covers (see :func:`content_address`). An
    entry without a content address is returned unchecked.

    Returns:
        The verified path.

    Raises:
        IntegrityError: the content does not match its address (with ``evict``, the
            snapshot entry and the blob are removed first).
        FileNotFoundError: the file is missing.
    """
    path = Path(path)
    filename = filename or path.name
    _require_file(path, f"Cannot verify '{filename}'")
    address = content_address(path)
    if address is None:
        return path
    algorithm, expected = address
    actual = sha256_file(path) if algorithm == "sha256" else git_blob_id(path)
    if actual == expected:
        return path
    removed, removal_error = _evict(path) if evict else (False, None)
    raise IntegrityError(filename, expected=expected, actual=actual, path=path, source=source, removed=removed,
                         algorithm=algorithm, removal_error=removal_error)


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
