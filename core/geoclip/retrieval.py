"""Nearest-location retrieval in the GeoCLIP space: faiss inner product on unit vectors.

Gallery embeddings and queries are L2-normalised (float32), so scores are cosine similarities
in [-1, 1]. :meth:`RetrievalIndex.search` gives the top-k, :meth:`RetrievalIndex.scores` the
full score vector over the gallery (heatmaps), :meth:`RetrievalIndex.softmax_probs` a
probability map with GeoCLIP's temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import check_coords


@dataclass(frozen=True)
class TopK:
    """Top-k retrieval result: cosine ``scores`` (Q, k), gallery ``indices`` (Q, k), ``coords``
    (Q, k, 2) lat/lon, best first."""

    scores: np.ndarray
    indices: np.ndarray
    coords: np.ndarray


def _unit_rows(array: ArrayLike, name: str, dim: int | None = None) -> np.ndarray:
    """Float32 C-contiguous copy with unit-norm rows (all-zero rows stay zero)."""
    out = np.array(array, dtype=np.float32, order="C", copy=True)
    if out.ndim == 1:
        out = out[None, :]
    if out.ndim != 2 or out.shape[1] == 0:
        raise InputError(f"{name}: expected a 2-D (count, dim) array, got shape {out.shape}")
    if dim is not None and out.shape[1] != dim:
        raise InputError(f"{name}: dimension {out.shape[1]} does not match the gallery's {dim}")
    if not np.isfinite(out).all():
        raise InputError(f"{name}: contains NaN or infinite values")
    faiss.normalize_L2(out)
    return out


class RetrievalIndex:
    """Exact inner-product index (faiss ``IndexFlatIP``) over a gallery's embeddings."""

    def __init__(self, gallery_coords: ArrayLike, gallery_embeddings: ArrayLike) -> None:
        self.coords = check_coords(gallery_coords, "gallery coordinates")
        embeddings = _unit_rows(gallery_embeddings, "gallery embeddings")
        if len(embeddings) != len(self.coords):
            raise InputError(
                f"gallery: {len(embeddings)} embeddings for {len(self.coords)} coordinates"
            )
        if len(embeddings) == 0:
            raise InputError("gallery: no embeddings")
        self.dim = int(embeddings.shape[1])
        self._index = faiss.IndexFlatIP(self.dim)
        self._index.add(embeddings)
        # A read-only view of the index's own storage: full score maps without a second copy.
        view = faiss.rev_swig_ptr(self._index.get_xb(), embeddings.size)
        self._embeddings = np.asarray(view).reshape(embeddings.shape)
        self._embeddings.flags.writeable = False

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def embeddings(self) -> np.ndarray:
        """(N, dim) unit-norm float32 gallery embeddings (read-only)."""
        return self._embeddings

    def search(self, queries: ArrayLike, k: int = 1) -> TopK:
        """The ``k`` most similar gallery locations for each query (Q, dim) or (dim,)."""
        if not 1 <= k <= len(self):
            raise InputError(f"top-k: k={k} must be between 1 and the gallery size {len(self)}")
        q = _unit_rows(queries, "queries", self.dim)
        scores, indices = self._index.search(q, k)
        indices = indices.astype(np.int64)
        return TopK(scores=scores, indices=indices, coords=self.coords[indices])

    def scores(self, queries: ArrayLike) -> np.ndarray:
        """(Q, N) float32 cosine similarity of each query with every gallery location."""
        q = _unit_rows(queries, "queries", self.dim)
        return q @ self._embeddings.T

    def softmax_probs(self, queries: ArrayLike, temperature: float | None = None) -> np.ndarray:
        """(Q, N) probabilities softmax(temperature × cosine) over the gallery.

        ``temperature`` multiplies the similarities (GeoCLIP's exp(logit_scale) ≈ 39.7 when
        None, read from the geoclip wheel).
        """
        if temperature is None:
            from geoforensics.core.geoclip.location_encoder import geoclip_temperature  # torch

            temperature = geoclip_temperature()
        if not np.isfinite(temperature) or temperature <= 0:
            raise InputError(f"temperature {temperature}: must be a positive number")
        logits = self.scores(queries) * np.float32(temperature)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits
