"""The on-disk cache of gallery embeddings in GeoCLIP's location space: its key and reader.

Torch-free, so that ``check`` with an exported AG-CLIP graph reads the gallery's cached
embeddings without loading the location encoder (or torch): the key needs only the hash of the
encoder's weights file. :mod:`.embeddings` computes and writes the entries.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from geoforensics.core.errors import WeightsNotFoundError
from geoforensics.core.fileio import sha256_arrays, sha256_file, sha256_file_memo
from geoforensics.core.geoclip import LOCATION_ENCODER_WEIGHTS, geoclip_file
from geoforensics.core.paths import cache_dir

log = logging.getLogger(__name__)

#: Width of GeoCLIP's location embeddings.
EMBED_DIM = 512
CACHE_FORMAT = "geoforensics-gallery-embeddings-v1"


def weights_path(path: str | os.PathLike[str] | None, default: str) -> Path:
    """A GeoCLIP weights file: ``path``, or the wheel's file ``default`` when None."""
    if path is None:
        return geoclip_file(default)
    resolved = Path(path)
    if not resolved.is_file():
        raise WeightsNotFoundError(f"{resolved}: weights file not found")
    return resolved


def encoder_id(path: str | os.PathLike[str] | None = None) -> str:
    """Identity of a location encoder weights file (hash of its bytes), for cache keys.

    The hash is memoised per (path, size, mtime), so repeated calls cost a stat only.
    """
    return "geoclip-loc-" + sha256_file_memo(weights_path(path, LOCATION_ENCODER_WEIGHTS))[:16]


def cache_key(coords: np.ndarray, weights_id: str) -> str:
    """Cache key of a gallery's embeddings: hash of float64 coordinates and encoder identity."""
    coords_sha = sha256_arrays(np.asarray(coords, dtype=np.float64))
    return sha256_arrays(extra=f"{CACHE_FORMAT}|{coords_sha}|{weights_id}")


def cache_file(coords: np.ndarray, weights_id: str) -> Path:
    """The ``.npy`` file of a gallery's embeddings (its checksummed ``.json`` sits beside it)."""
    return cache_dir("gallery_embeddings") / f"{cache_key(coords, weights_id)[:40]}.npy"


def expected_entry(coords: np.ndarray, weights_id: str) -> dict[str, object]:
    """What a valid cache entry's sidecar must say for these coordinates and encoder."""
    return {
        "format": CACHE_FORMAT,
        "coords_sha256": sha256_arrays(coords),
        "encoder_id": weights_id,
        "count": len(coords),
    }


def load_if_valid(npy: Path, expected: dict[str, object]) -> np.ndarray | None:
    """The cached (N, 512) float32 embeddings, or None when the entry is missing, does not
    match ``expected`` or fails its checksum (then it is recomputed by the caller)."""
    side = npy.with_suffix(".json")
    if not (npy.is_file() and side.is_file()):
        return None
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(info, dict) or any(info.get(k) != v for k, v in expected.items()):
        return None
    if info.get("npy_sha256") != sha256_file(npy):
        log.warning("%s: checksum mismatch, recomputing gallery embeddings", npy)
        return None
    try:
        array = np.load(npy, allow_pickle=False)
    except (ValueError, OSError):
        return None
    if array.shape != (expected["count"], EMBED_DIM) or array.dtype != np.float32:
        return None
    return array


def cached_embeddings_if_any(coords: np.ndarray) -> np.ndarray | None:
    """The gallery's cached embeddings with the wheel's GeoCLIP weights, or None when they
    are not cached yet (without loading the encoder)."""
    points = np.asarray(coords, dtype=np.float64)
    weights_id = encoder_id()
    return load_if_valid(cache_file(points, weights_id), expected_entry(points, weights_id))


__all__ = [
    "CACHE_FORMAT",
    "EMBED_DIM",
    "cache_file",
    "cache_key",
    "cached_embeddings_if_any",
    "encoder_id",
    "expected_entry",
    "load_if_valid",
    "weights_path",
]
