"""Ranking places over a gallery: probabilities from scores, the best k (optionally kept
apart), and the mass of a distribution within a radius of each point.

Every method that scores gallery points (AG-CLIP retrieval, species ranges, their fusion,
CLIP images and text) ranks them here, so ``locate``, ``check``, the app and the bench list
the same places for the same distribution. Ranking by the mass within a radius maximises the
expected accuracy at that radius; the neighbour structure it needs is kept per process and,
for large galleries, on disk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import save_npy_atomic, sha256_arrays
from geoforensics.core.geo.distance import check_coords, chord_of_km, unit_vectors
from geoforensics.core.paths import cache_dir


def softmax(logits: ArrayLike) -> np.ndarray:
    """Softmax over the last axis (float64, max-shifted): scores over a gallery (or over
    candidates, cells) as probabilities, without validation (:func:`score_map` checks)."""
    values = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def score_map(log_lik: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """Probabilities over the gallery (sum 1): ``softmax(log_lik / temperature)``, float64.

    ``-inf`` marks an impossible location (probability 0); NaN is refused.
    """
    values = np.asarray(log_lik, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise InputError(f"score map: expected a non-empty 1-D score vector, got {values.shape}")
    if not np.isfinite(temperature) or temperature <= 0:
        raise InputError(f"score map temperature {temperature}: must be a positive number")
    if np.isnan(values).any() or np.isposinf(values).any():
        raise InputError("score map: scores contain NaN or +inf")
    top = values.max()
    if not np.isfinite(top):
        raise InputError("score map: every location has zero likelihood (all scores -inf)")
    probs = np.exp((values - top) / temperature)
    return probs / probs.sum()


def top_k(scores: ArrayLike, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first (ties: lower index first)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise InputError(f"top-k: expected a non-empty 1-D score vector, got {values.shape}")
    if k < 1:
        raise InputError(f"top-k: k must be >= 1, got {k}")
    k = min(int(k), values.size)
    key = np.where(np.isnan(values), -np.inf, values)
    part = np.argpartition(-key, k - 1)[:k]
    return part[np.lexsort((part, -key[part]))]


def region_probability(
    probs: ArrayLike, coords: ArrayLike, radius_km: float, chunk: int = 2048
) -> np.ndarray:
    """(G,) posterior mass within ``radius_km`` (great circle) of each gallery point.

    ``probs`` (G,) are probabilities over the gallery points ``coords`` (G, 2). The value at
    a point is the probability that the true location lies within the radius of it; ranking
    by it maximises the expected accuracy at that radius. ``radius_km`` 0 returns ``probs``.
    The neighbour structure is kept per process (:func:`_region_matrix`).
    """
    values = np.asarray(probs, dtype=np.float64)
    points = check_coords(coords, "region probability coordinates")
    if values.shape != (len(points),):
        raise InputError(
            f"region probability: {values.shape} probabilities for {len(points)} locations"
        )
    if not np.isfinite(radius_km) or radius_km < 0:
        raise InputError(f"region radius {radius_km} km: must be a number >= 0")
    if radius_km == 0:
        return values.copy()
    return np.asarray(_region_matrix(points, float(radius_km), chunk) @ values, dtype=np.float64)


_REGION_MATRICES: dict[tuple[str, float], Any] = {}
#: Galleries at least this large keep their neighbour matrix on disk (``cache_dir("regions")``).
_REGION_CACHE_POINTS = 5000


def _region_matrix(points: np.ndarray, radius_km: float, chunk: int = 2048) -> Any:
    """Sparse (G, G) 0/1 matrix: 1 where two points are within ``radius_km`` (self
    included). Kept per process for the last few (coordinates, radius) pairs, and on disk
    (keyed by the coordinates' hash and the radius) for large galleries, so ranking pays the
    neighbour search once."""
    from scipy.sparse import csr_matrix  # scipy is imported on first use: the CLI starts fast
    from scipy.spatial import cKDTree

    key = (sha256_arrays(np.ascontiguousarray(points, dtype=np.float64)), radius_km)
    found = _REGION_MATRICES.get(key)
    if found is not None:
        return found
    n = len(points)
    file = cache_dir("regions") / f"{key[0][:32]}-{radius_km!r}km.npy"
    if n >= _REGION_CACHE_POINTS and file.is_file():
        try:  # [indptr (G + 1), indices] of the 0/1 matrix, int32
            flat = np.load(file, allow_pickle=False)
            indptr, indices = flat[: n + 1].astype(np.int64), flat[n + 1 :]
            if indptr[0] == 0 and indptr[-1] == len(indices) and np.all(np.diff(indptr) >= 1):
                if len(indices) == 0 or (indices.min() >= 0 and indices.max() < n):
                    matrix = csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n, n))
                    _remember_region(key, matrix)
                    return matrix
        except (OSError, ValueError):
            pass
    xyz = unit_vectors(points)
    tree = cKDTree(xyz)
    reach = chord_of_km(radius_km) * (1.0 + 1e-12)
    rows_all, cols_all = [], []
    for start in range(0, len(points), chunk):
        stop = min(len(points), start + chunk)
        pairs = cKDTree(xyz[start:stop]).sparse_distance_matrix(tree, reach, output_type="ndarray")
        rows_all.append(pairs["i"].astype(np.int64) + start)
        cols_all.append(pairs["j"].astype(np.int64))
    # every point is within reach of itself (added in case a zero distance was dropped)
    rows = np.concatenate([*rows_all, np.arange(len(points))])
    cols = np.concatenate([*cols_all, np.arange(len(points))])
    matrix = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(points), len(points)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    if n >= _REGION_CACHE_POINTS and matrix.nnz < 2**31 - 1:
        flat = np.concatenate([matrix.indptr, matrix.indices]).astype(np.int32)
        save_npy_atomic(file, flat)
    _remember_region(key, matrix)
    return matrix


def _remember_region(key: tuple[str, float], matrix: Any) -> None:
    if len(_REGION_MATRICES) >= 4:
        _REGION_MATRICES.pop(next(iter(_REGION_MATRICES)))
    _REGION_MATRICES[key] = matrix


def distinct_top_k(
    scores: ArrayLike, coords: ArrayLike, k: int, min_separation_km: float = 0.0
) -> np.ndarray:
    """Indices of up to ``k`` best-scoring points, each at least ``min_separation_km`` from
    every better one (greedy non-maximum suppression); plain :func:`top_k` when 0."""
    values = np.asarray(scores, dtype=np.float64)
    points = check_coords(coords, "top-k coordinates")
    if values.shape != (len(points),):
        raise InputError(f"top-k: {values.shape} scores for {len(points)} locations")
    if not np.isfinite(min_separation_km) or min_separation_km < 0:
        raise InputError(f"top-k separation {min_separation_km} km: must be a number >= 0")
    if min_separation_km == 0:
        return top_k(values, k)
    if k < 1:
        raise InputError(f"top-k: k must be >= 1, got {k}")
    if k == 1:  # the best point is always chosen first (a timeline segment asks for one)
        return top_k(values, 1)
    order = top_k(values, values.size)
    xyz = unit_vectors(points)
    reach = chord_of_km(min_separation_km)
    chosen: list[int] = []
    for i in order:
        if chosen and np.min(np.linalg.norm(xyz[chosen] - xyz[i], axis=1)) < reach:
            continue
        chosen.append(int(i))
        if len(chosen) == k:
            break
    return np.array(chosen, dtype=np.int64)
