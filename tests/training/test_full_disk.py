"""A full disk while weights are written (issue 24): one error naming the file, the earlier file intact, no
half-written HDF5 file for h5py to fail on (and crash the process) when it is released.

``keraszoo.training.diskio.save_weights_file`` on a real 1 MiB tmpfs where this test may mount one (root), and with
the write itself failing (``ENOSPC`` injected half-way) everywhere.
"""

import errno
import os
import shutil
import subprocess

import numpy as np
import pytest

from keraszoo.errors import CheckpointWriteError
from keraszoo.models import AutoEncoder
from keraszoo.training import diskio


def _model(hidden):
    return AutoEncoder(input_shape=(28, 28, 1), latent_dim=2, hidden_dims=(hidden,), seed=0)


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (skipped where it cannot be mounted)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def _save(model, path):
    return diskio.save_weights_file(model, path, what="the best weights", advice="Free some space.")


def _written_weights(path):
    model = _model(8)
    model.load_weights(str(path))
    return model.get_weights()


def test_weights_larger_than_the_free_space_are_refused_before_writing(tiny_disk):
    small, large = _model(8), _model(512)  # 25 KB and 3.2 MB of weights
    path = tiny_disk / "best.weights.h5"
    _save(small, path)
    before = path.read_bytes()
    with pytest.raises(CheckpointWriteError, match=rf"^Could not write the best weights {path}: No space left on device "
                                                   r"\(the disk is full: .* free of 1\.0 MB\)\. Free some space\.$"):
        _save(large, path)
    assert path.read_bytes() == before and sorted(p.name for p in tiny_disk.iterdir()) == ["best.weights.h5"]


def test_a_disk_that_fills_up_mid_write_leaves_the_earlier_file(tiny_disk, monkeypatch):
    small, large = _model(8), _model(512)
    path = tiny_disk / "best.weights.h5"
    _save(small, path)
    expected = [w.copy() for w in small.get_weights()]
    monkeypatch.setattr(diskio, "check_room", lambda *a, **k: None)  # the room check passes: the write fails
    with pytest.raises(CheckpointWriteError, match=rf"^Could not write the best weights {path}: No space left on device"):
        _save(large, path)
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["best.weights.h5"]  # the partial file removed
    for got, want in zip(_written_weights(path), expected):
        np.testing.assert_array_equal(got, want)


def test_a_write_failing_half_way_names_the_file_wherever_the_disk_is(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "best.weights.h5"
    path.parent.mkdir()
    real = diskio.write_file

    def half(target, data):
        real(target, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # no file name, as a full disk reports it

    monkeypatch.setattr(diskio, "write_file", half)
    with pytest.raises(CheckpointWriteError, match=rf"^Could not write the best weights {path}: No space left on device "
                                                   r"\(the disk is full: .* free of .*\)\. Free some space\.$") as err:
        _save(_model(8), path)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert list(path.parent.iterdir()) == []
    monkeypatch.setattr(diskio, "write_file", real)
    assert _save(_model(8), path) == path and _written_weights(path)[0].shape == (784, 8)
