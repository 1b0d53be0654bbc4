"""Disk I/O of a training run's files: room checks before writing, flushed writes, one-line write failures.

A backup or a model file must never be left half-written by a full disk or a
file-size limit; these helpers check first, write the bytes in one plain file
write, and turn an ``OSError`` into a :class:`~keraszoo.errors.CheckpointWriteError`
that names the file, the reason and the disk's free space.
"""

from __future__ import annotations

import errno
import io
import os
import pathlib
import shutil

from keraszoo.errors import CheckpointWriteError


def free_space(path) -> str:
    """``"1.2 GB free of 50.0 GB"`` for the disk holding ``path`` (or its nearest existing parent)."""
    path = pathlib.Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return "free space unknown"

    def size(n):
        for unit in ("B", "KB", "MB", "GB", "TB"):
            if n < 1000 or unit == "TB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1000.0

    return f"{size(usage.free)} free of {size(usage.total)}"


def check_room(path, size: int, *, total: int | None = None) -> None:
    """Raise the ``OSError`` a write of ``size`` bytes to ``path`` would meet, before writing.

    ``EFBIG`` when ``size`` exceeds the process's file-size limit
    (``RLIMIT_FSIZE``: the write would fail half-way, or SIGXFSZ would kill
    the process), ``ENOSPC`` when the disk has less than ``total`` (default
    ``size``) bytes free. A failed HDF5 write leaves h5py in a state that can
    crash the process at exit, so checkpoints check first.
    """
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY and size > soft:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path))
    except ImportError:  # not POSIX
        pass
    folder = pathlib.Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if (size if total is None else total) > free:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def weights_file_bytes(model):
    """What ``model.save_weights(path)`` writes, as bytes in memory (``None`` where this Keras cannot).

    The backup then writes them with a plain file write: a full disk is a
    clean ``OSError`` there, not a half-written HDF5 file whose handles fail
    again (and may crash the process) when h5py releases them.
    """
    try:
        from keras.src.saving import saving_lib

        buffer = io.BytesIO()
        store = saving_lib.H5IOStore(buffer, mode="w")
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    try:
        saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    except TypeError:  # another Keras' private signature
        store.close()
        return None
    store.close()
    return buffer.getvalue()


def write_file(path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to the disk (the place a backup's bytes reach the disk)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_weights_file(model, path, *, what: str, advice: str) -> pathlib.Path:
    """Writes ``model``'s weights to ``path`` (``*.weights.h5``) whole or not at all.

    The weights are serialized in memory (:func:`weights_file_bytes`), the room checked (:func:`check_room`),
    the bytes written to a temporary file beside ``path`` and renamed over it: a full disk leaves any earlier
    ``path`` as it was, h5py never holds a half-written file (whose handles fail again, and can crash the
    process, when released), and the failure is one :class:`CheckpointWriteError` naming ``path``
    (:func:`write_failure` with ``what`` and ``advice``). Where this Keras cannot serialize in memory,
    ``model.save_weights`` writes the temporary file.
    """
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.weights.h5")
    try:
        data = weights_file_bytes(model)
        if data is None:
            model.save_weights(str(tmp))
        else:
            check_room(path, len(data))
            write_file(tmp, data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise write_failure(err, path, what=what, advice=advice) from None
    return path


def write_failure(err: OSError, path, *, what: str, advice: str) -> CheckpointWriteError:
    """A :class:`CheckpointWriteError` for ``err`` (raised writing ``path``), in one line.

    The message names the file, the reason (a full disk, a file-size limit,
    ...), the disk's free space and ``advice`` (what the user can do).
    """
    code = getattr(err, "errno", None)
    reason = os.strerror(code) if code else (str(err).strip().splitlines() or [type(err).__name__])[0]
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        where = f"the disk is full: {free_space(path)}"
    elif code == errno.EFBIG:
        where = f"a file-size limit (ulimit -f) or the file system's maximum file size; {free_space(path)}"
    else:
        where = free_space(path)
    return CheckpointWriteError(f"Could not write {what} {path}: {reason} ({where}). {advice}",
                                errno=code, filename=str(path))
