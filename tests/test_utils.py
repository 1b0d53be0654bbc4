"""keraszoo.utils: atomic writes keep the old file and name the one that failed."""

import errno
import pathlib

import pytest

from keraszoo import utils


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    utils.atomic_write_text(path, "first")
    utils.atomic_write_text(path, "second")
    assert path.read_text() == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]  # no temporary left behind


def test_a_full_disk_names_the_file_and_keeps_its_old_content(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    utils.atomic_write_text(path, "kept")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(OSError) as info:
        utils.atomic_write_text(path, "lost")
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert str(path) in str(info.value)
    assert path.read_text() == "kept" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
