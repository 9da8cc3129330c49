"""Atomic writes leave either the complete new file or nothing, with ordinary permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from geoforensics.core.fileio import atomic_write, save_npy_atomic, sha256_arrays, sha256_file


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("half of a new file")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_written_file_has_umask_permissions(tmp_path: Path) -> None:
    old_mask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out" / "a.txt") as fh:
            fh.write("done")
    finally:
        os.umask(old_mask)
    path = tmp_path / "out" / "a.txt"
    assert path.read_text() == "done"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_npy_round_trip_refuses_object_arrays(tmp_path: Path) -> None:
    save_npy_atomic(tmp_path / "a.npy", np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError):
        save_npy_atomic(tmp_path / "b.npy", np.array([{"x": 1}], dtype=object))
    assert not (tmp_path / "b.npy").exists()


def test_hashes_depend_on_content_dtype_and_shape(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(tmp_path / "f") == expected
    a = np.zeros((2, 3), np.float32)
    assert sha256_arrays(a) != sha256_arrays(a.reshape(3, 2))
    assert sha256_arrays(a) != sha256_arrays(a.astype(np.float64))
    assert sha256_arrays(a) != sha256_arrays(a, extra="encoder-2")


def test_remembered_file_hash_follows_the_file(tmp_path: Path) -> None:
    """sha256_file_memo reads a file once per process, and again once it changes (a rewrite of
    the same size has a new modification time)."""
    from geoforensics.core.fileio import sha256_file_memo

    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    first = sha256_file_memo(path)
    assert first == sha256_file(path) == sha256_file_memo(tmp_path / "." / "weights.bin")
    stat = path.stat()
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert sha256_file_memo(path) == sha256_file(path) != first
