"""Pooling a recording's window outputs (W, D) into one vector (variable-length recordings).

Methods (:data:`POOLING_METHODS`):

``mean`` (default, the paper's inference)
    Average of the windows.
``max``
    Element-wise maximum over windows.
``kmeans``
    k-means (k = 5, k-means++ starts, seeded, so deterministic) over the windows; the result is the
    centroid of the largest cluster, i.e. the mean of its windows (ties: the cluster found
    first). With fewer distinct windows than k it falls back to the mean, so one or two
    windows never form clusters of their own.

:func:`pool` pools one matrix. :func:`pool_outputs` pools a model's named outputs
consistently: the windows picked by k-means on the method's main output (the L2-normalised
AG-CLIP embedding, the regression coordinates on the unit sphere, or the class
probabilities) are averaged in every output, and regression coordinates are averaged on the
sphere (so windows at 179° and -179° longitude pool to 180°, not 0°).

:class:`~.transformer_pooling.TransformerPooling` (its own module: it needs torch) learns the
pooling instead: a small transformer over frozen window
embeddings (sequences of up to 32 windows, 6 layers, 8 heads, width 128, learned CLS token and
positional embedding, padding mask), projecting to the model's output width. Recordings longer
than 32 windows are cut into consecutive chunks of at most 32 windows
(:func:`chunk_windows`); at inference (:meth:`TransformerPooling.pool_recording`) the chunk
outputs are averaged, weighted by the number of windows in each chunk; for training,
:func:`random_crop` draws one seeded run of 32 consecutive windows.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import unit_vectors

if TYPE_CHECKING:
    import torch
    from typing_extensions import TypeIs

#: Names accepted by :func:`pool`.
POOLING_METHODS: tuple[str, ...] = ("mean", "max", "kmeans")
#: k of the k-means pooling (the paper's setting).
KMEANS_K = 5

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, "torch.Tensor")


def _is_tensor(value: Any) -> TypeIs[torch.Tensor]:
    """Whether ``value`` is a torch tensor (without importing torch: pooling numpy arrays, as
    ``check`` does, stays torch-free)."""
    torch_module = sys.modules.get("torch")
    return torch_module is not None and isinstance(value, torch_module.Tensor)


def _as_matrix(outputs: np.ndarray | torch.Tensor) -> np.ndarray:
    array = outputs.detach().cpu().numpy() if _is_tensor(outputs) else np.asarray(outputs)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise InputError(f"pooling: expected window outputs (W >= 1, D), got shape {array.shape}")
    return array


def kmeans_largest_cluster(
    outputs: np.ndarray | torch.Tensor, k: int = KMEANS_K, seed: int = 0
) -> np.ndarray:
    """Boolean mask (W,) of the windows in the largest of ``k`` k-means clusters.

    All windows are selected when there are fewer than ``k`` distinct windows.
    """
    if k < 1:
        raise InputError(f"k-means pooling: k must be >= 1, got {k}")
    x = _as_matrix(outputs).astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError("k-means pooling: window outputs contain NaN or infinite values")
    if len(np.unique(x, axis=0)) < k:
        return np.ones(len(x), dtype=bool)
    labels = kmeans_labels(x, k, seed)
    counts = np.bincount(labels, minlength=k)
    return np.asarray(labels == int(np.argmax(counts)))


def kmeans_labels(
    x: np.ndarray, k: int, seed: int = 0, n_init: int = 4, max_iter: int = 100
) -> np.ndarray:
    """Cluster label (0..k-1) of each row of ``x`` (N >= k rows): Lloyd's k-means from
    k-means++ starts, ``n_init`` seeded restarts, the lowest within-cluster sum of squares wins.

    A few lines of numpy rather than scikit-learn: scikit-learn's per-call overhead (~0.1 s)
    would dominate pooling over thousands of recordings of a few windows each.
    """
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    squared = np.einsum("ij,ij->i", x, x)
    rows = np.arange(len(x))
    best_labels, best_inertia = np.zeros(len(x), dtype=np.int64), np.inf
    for _ in range(n_init):
        first = int(rng.integers(len(x)))
        centres = [x[first]]
        nearest = ((x - x[first]) ** 2).sum(axis=1)
        for _ in range(1, k):
            total = nearest.sum()
            pick = (
                int(rng.choice(len(x), p=nearest / total))
                if total > 0
                else int(rng.integers(len(x)))
            )
            centres.append(x[pick])
            nearest = np.minimum(nearest, ((x - x[pick]) ** 2).sum(axis=1))
        centre = np.stack(centres)
        for _ in range(max_iter):
            distance = squared[:, None] - 2.0 * x @ centre.T + (centre**2).sum(axis=1)[None]
            labels = distance.argmin(axis=1)
            updated = centre.copy()
            for j in range(k):
                members = labels == j
                if members.any():  # an empty cluster keeps its centre
                    updated[j] = x[members].mean(axis=0)
            if np.array_equal(updated, centre):
                break
            centre = updated
        inertia = float(np.maximum(distance[rows, labels], 0.0).sum())
        if inertia < best_inertia:
            best_labels, best_inertia = labels, inertia
    return best_labels


def pool(
    outputs: ArrayOrTensor, method: str = "mean", k: int = KMEANS_K, seed: int = 0
) -> ArrayOrTensor:
    """Pool window outputs (W, D) into one (D,) vector with ``method`` (see the module doc).

    Returns the same kind (numpy array or torch tensor) as given.
    """
    if method not in POOLING_METHODS:
        raise InputError(f"pooling {method!r}: choose one of {', '.join(POOLING_METHODS)}")
    matrix = _as_matrix(outputs)
    if method == "max":
        pooled = matrix.max(axis=0)
    elif method == "kmeans":
        pooled = matrix[kmeans_largest_cluster(matrix, k, seed)].mean(axis=0)
    else:
        pooled = matrix.mean(axis=0)
    if _is_tensor(outputs):
        import torch

        return torch.as_tensor(pooled, dtype=outputs.dtype, device=outputs.device)
    return np.asarray(pooled, dtype=np.result_type(matrix.dtype, np.float32))


def latlon_to_unit(latlon: np.ndarray) -> np.ndarray:
    """(N, 2) degrees -> (N, 3) points on the unit sphere."""

    return unit_vectors(latlon)


def spherical_mean(latlon: np.ndarray) -> np.ndarray:
    """Mean of (N, 2) lat/lon points on the sphere -> (2,) degrees (the arithmetic mean if the
    points cancel out exactly)."""
    total = latlon_to_unit(np.asarray(latlon, dtype=np.float64)).sum(axis=0)
    norm = float(np.linalg.norm(total))
    if norm < 1e-12:
        return np.asarray(latlon, dtype=np.float64).mean(axis=0)
    x, y, z = total / norm
    return np.array([np.degrees(np.arcsin(np.clip(z, -1, 1))), np.degrees(np.arctan2(y, x))])


def _main_output(kind: str, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The matrix k-means clusters for each method kind."""
    if kind == "agclip":
        emb = np.asarray(outputs["embedding"], dtype=np.float64)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    if kind == "regression":
        return latlon_to_unit(np.asarray(outputs["latlon"], dtype=np.float64))
    if "probs" in outputs:
        return np.asarray(outputs["probs"])
    logits = np.asarray(outputs["logits"], dtype=np.float64)
    logits = np.exp(logits - logits.max(axis=1, keepdims=True))
    return logits / logits.sum(axis=1, keepdims=True)


def pool_outputs(
    kind: str,
    outputs: Mapping[str, np.ndarray],
    method: str = "mean",
    k: int = KMEANS_K,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Pool every named window output (W, ·) of a model of ``kind`` into one vector each.

    ``mean``/``kmeans`` average the same windows in every output (k-means runs on the kind's
    main output, see the module docstring); ``max`` takes each output's element-wise maximum.
    Regression ``latlon`` is the spherical mean of the selected windows (``max``: the maximum of
    ``latlon_norm``, mapped back to degrees) and ``latlon_norm`` follows it.
    """
    if method not in POOLING_METHODS:
        raise InputError(f"pooling {method!r}: choose one of {', '.join(POOLING_METHODS)}")
    if not outputs:
        raise InputError("pooling: no outputs given")
    arrays = {name: _as_matrix(value) for name, value in outputs.items()}
    sizes = {len(value) for value in arrays.values()}
    if len(sizes) != 1:
        raise InputError(f"pooling: outputs have different window counts {sorted(sizes)}")
    if method == "max":
        pooled = {name: value.max(axis=0) for name, value in arrays.items()}
        if kind == "regression" and "latlon_norm" in pooled:
            import torch

            from geoforensics.core.models.geolocator import denormalize_latlon

            norm = torch.from_numpy(np.asarray(pooled["latlon_norm"], dtype=np.float64))
            pooled["latlon"] = denormalize_latlon(norm).numpy()
        return pooled
    selected = np.ones(sizes.pop(), dtype=bool)
    if method == "kmeans":
        selected = kmeans_largest_cluster(_main_output(kind, arrays), k, seed)
    pooled = {name: value[selected].mean(axis=0) for name, value in arrays.items()}
    if kind == "regression" and "latlon" in arrays:
        centre = spherical_mean(arrays["latlon"][selected])
        pooled["latlon"] = centre.astype(arrays["latlon"].dtype)
        if "latlon_norm" in pooled:
            pooled["latlon_norm"] = (centre / np.array([90.0, 180.0])).astype(
                arrays["latlon_norm"].dtype
            )
    return pooled
