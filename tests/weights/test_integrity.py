"""sha256 verification and Hugging Face cache eviction (no TensorFlow needed)."""

import hashlib
import os
import pickle

import pytest

from keraszoo.weights import IntegrityError
from keraszoo.weights.integrity import evict_cached_file
from keraszoo.weights.integrity import file_record
from keraszoo.weights.integrity import sha256_file
from keraszoo.weights.integrity import verify_file


def test_sha256_and_record_match_hashlib(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert file_record(path) == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_verify_accepts_the_right_digest(tmp_path):
    path = tmp_path / "w.h5"
    path.write_bytes(b"weights")
    assert verify_file(path, hashlib.sha256(b"weights").hexdigest(), expected_size=7) == path


def test_verify_rejects_other_bytes_and_names_everything(tmp_path):
    path = tmp_path / "model.weights.h5"
    path.write_bytes(b"tampered")
    expected = hashlib.sha256(b"original").hexdigest()
    with pytest.raises(IntegrityError) as info:
        verify_file(path, expected, source="hf://org/repo@abc")
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, OSError)
    assert err.filename == "model.weights.h5"
    assert err.expected == expected
    assert err.actual == hashlib.sha256(b"tampered").hexdigest()
    message = str(err)
    assert "model.weights.h5" in message and expected in message and err.actual in message
    assert "hf://org/repo@abc" in message
    assert path.exists(), "without evict=True the file is left alone"


def test_verify_rejects_wrong_size_even_with_matching_digest(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b"{}")
    with pytest.raises(IntegrityError, match="Expected 3 bytes, got 2 bytes"):
        verify_file(path, hashlib.sha256(b"{}").hexdigest(), expected_size=3)


def test_verify_refuses_a_malformed_recorded_digest(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="64 lowercase hex"):
        verify_file(path, "ABC")


def test_integrity_error_survives_pickling():
    err = IntegrityError("a.h5", expected="0" * 64, actual="1" * 64, path="/tmp/a.h5", removed=True)
    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, IntegrityError)
    assert (clone.filename, clone.expected, clone.actual, clone.removed) == ("a.h5", "0" * 64, "1" * 64, True)
    assert str(clone) == str(err)


def _fake_cache_entry(root, content=b"corrupt"):
    """Lay out <cache>/models--org--repo/{blobs,snapshots} like huggingface_hub does."""
    repo = root / "models--org--repo"
    blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(content)
    pointer = repo / "snapshots" / ("a" * 40) / "model.weights.h5"
    pointer.parent.mkdir(parents=True)
    pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    return pointer, blob


def test_evict_removes_snapshot_symlink_and_blob(tmp_path):
    pointer, blob = _fake_cache_entry(tmp_path)
    other = blob.parent / ("f" * 64)
    other.write_bytes(b"another file of the repo")
    assert evict_cached_file(pointer) is True
    assert not os.path.lexists(pointer)
    assert not blob.exists()
    assert other.exists(), "only the blob behind the evicted file is removed"


def test_verify_with_evict_cleans_the_cache(tmp_path):
    pointer, blob = _fake_cache_entry(tmp_path)
    with pytest.raises(IntegrityError) as info:
        verify_file(pointer, hashlib.sha256(b"good").hexdigest(), evict=True)
    assert info.value.removed
    assert "removed from the cache" in str(info.value)
    assert not os.path.lexists(pointer) and not blob.exists()


def test_evict_never_deletes_outside_the_repo_blobs(tmp_path):
    outside = tmp_path / "precious.h5"
    outside.write_bytes(b"keep me")
    snapshot = tmp_path / "models--org--repo" / "snapshots" / ("b" * 40)
    snapshot.mkdir(parents=True)
    link = snapshot / "model.weights.h5"
    link.symlink_to(outside)
    evict_cached_file(link)
    assert not os.path.lexists(link)
    assert outside.read_bytes() == b"keep me"


def test_evict_plain_file_cache(tmp_path):
    # Caches without symlink support hold the file itself in the snapshot folder.
    snapshot = tmp_path / "models--org--repo" / "snapshots" / ("c" * 40)
    snapshot.mkdir(parents=True)
    path = snapshot / "config.json"
    path.write_bytes(b"{}")
    assert evict_cached_file(path) is True
    assert not path.exists()
