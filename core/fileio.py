"""Atomic file writing and content hashing.

Every output goes through :func:`atomic_write` (or :func:`atomic_path`) so that an interrupted
run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


def _default_file_mode() -> int:
    """Permissions a plain ``open()`` would give a new file under the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file private (0600); give it ordinary permissions before publishing.
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing and move it onto ``path`` when the block succeeds."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh


def save_npy_atomic(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Save one array as .npy atomically (no pickle: object arrays are refused)."""
    with atomic_write(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)


def sha256_file(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (large media files are never held whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file_memo(path: str | os.PathLike[str]) -> str:
    """:func:`sha256_file`, remembered per (resolved path, size, modification time) for the
    process: a model or weights file whose identity several steps ask for is read once (a
    changed file has another size or time and is read again)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _sha256_of(str(resolved), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def save_keyed_npy(npy: Path, side: Path, array: np.ndarray, key: dict[str, Any]) -> None:
    """Cache ``array`` at ``npy`` with a side file holding ``key`` and the file's SHA-256
    (both written atomically): :func:`load_keyed_npy` returns it only while both match."""
    save_npy_atomic(npy, array)
    with atomic_write(side) as fh:
        json.dump({"key": key, "sha256": sha256_file(npy)}, fh, indent=2)


def load_keyed_npy(npy: Path, side: Path, key: dict[str, Any]) -> np.ndarray | None:
    """The array cached by :func:`save_keyed_npy` under ``key``, or None when it is absent,
    made for another key, damaged (checksum) or unreadable. No pickle is ever loaded."""
    if not npy.is_file() or not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("key") != key:
            return None
        if meta.get("sha256") != sha256_file(npy):
            return None
        return np.load(npy, allow_pickle=False)
    except (OSError, ValueError):
        return None


def sha256_arrays(*arrays: np.ndarray, extra: str = "") -> str:
    """Hex SHA-256 over arrays' dtype, shape and bytes, plus an optional text tag."""
    digest = hashlib.sha256(extra.encode())
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(str(contiguous.dtype).encode())
        digest.update(str(contiguous.shape).encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()
