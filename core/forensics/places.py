"""Top-k places of a distribution over the gallery, ranked by region mass, with place names.

A distribution over gallery points (audio, frames, text) is summarised by its most probable
*regions*: each gallery point is scored by the probability mass within :data:`TOP_RADIUS_KM`
(500 km, as ``geoforensics locate``) of it, and the listed places are at least that far apart
(greedy non-maximum suppression). Ranking by region mass rather than by single points makes
the answer independent of how densely the gallery samples an area. The region sums are a
sparse neighbour matrix built once per gallery (:class:`RegionMass`), so the many segments of
a clip's timeline cost a sparse product each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import EARTH_RADIUS_KM, check_coords, chord_of_km, unit_vectors
from geoforensics.core.geo.gazetteer import nearest_places, place_row
from geoforensics.core.geo.ranking import distinct_top_k, region_probability

#: Radius of the region mass that ranks places, km (``locate``'s default).
TOP_RADIUS_KM = 500.0
#: Neighbour pairs above which the sparse matrix is not built (memory); chunked sums instead.
_MAX_PAIRS = 30_000_000


class RegionMass:
    """``probs (G,) -> (G,)`` mass within ``radius_km`` of every gallery point.

    Built once per gallery: a CSR matrix of neighbour pairs i < j (gallery points within
    the radius, boundary included) when it fits in memory, else the chunked tree query of
    :func:`geoforensics.core.geo.ranking.region_probability` on each call.
    """

    def __init__(self, coords: ArrayLike, radius_km: float = TOP_RADIUS_KM) -> None:
        from scipy.sparse import csr_matrix
        from scipy.spatial import cKDTree

        if not (math.isfinite(radius_km) and radius_km >= 0):
            raise InputError(f"region radius {radius_km} km: must be a number >= 0")
        self.coords = check_coords(coords, "gallery coordinates")
        self.radius_km = float(radius_km)
        self._matrix: Any = None
        if self.radius_km == 0:
            return
        xyz = unit_vectors(self.coords)
        # Expected pairs from the area of a cap against the sphere, capped by all pairs.
        cap = (1.0 - math.cos(min(self.radius_km / EARTH_RADIUS_KM, math.pi))) / 2.0
        expected = len(xyz) * max(1.0, cap * len(xyz) * 4.0)
        if expected > _MAX_PAIRS:
            return
        tree = cKDTree(xyz)
        # Pairs i < j in C (``ndarray`` output) as an upper-triangular matrix U; the mass is
        # (U + U^T + I) @ p. ~4x faster than building the full matrix from Python lists.
        pairs = tree.query_pairs(chord_of_km(self.radius_km) * (1.0 + 1e-12), output_type="ndarray")
        if 2 * len(pairs) + len(xyz) > _MAX_PAIRS:
            return
        data = np.ones(len(pairs), dtype=np.float32)
        self._matrix = csr_matrix((data, (pairs[:, 0], pairs[:, 1])), shape=(len(xyz), len(xyz)))

    def __call__(self, probs: ArrayLike) -> np.ndarray:
        """(G,) -> (G,), or (G, S) -> (G, S) for S distributions at once (several times
        faster per distribution than one call each)."""
        values = np.asarray(probs, dtype=np.float64)
        if values.ndim not in (1, 2) or values.shape[0] != len(self.coords):
            raise InputError(
                f"region mass: {values.shape} probabilities for {len(self.coords)} points"
            )
        if self.radius_km == 0:
            return values.copy()
        if self._matrix is None:
            if values.ndim == 2:
                columns = [self(values[:, j]) for j in range(values.shape[1])]
                return np.stack(columns, axis=1) if columns else values.copy()
            return region_probability(values, self.coords, self.radius_km)
        upper = self._matrix
        return np.asarray(upper @ values + upper.T @ values, dtype=np.float64) + values


@dataclass(frozen=True)
class RankedPlaces:
    """Indices of the listed places (best first), their region mass and point probability."""

    indices: np.ndarray
    region: np.ndarray
    point: np.ndarray


def rank_places(probs: ArrayLike, region_mass: RegionMass, k: int) -> RankedPlaces:
    """Up to ``k`` places ranked by region mass, at least the region radius apart."""

    if k < 1:
        raise InputError(f"--top-k must be >= 1, got {k}")
    values = np.asarray(probs, dtype=np.float64)
    region = region_mass(values)
    top = distinct_top_k(region, region_mass.coords, k, region_mass.radius_km)
    return RankedPlaces(top, region[top], values[top])


def place_labels(points: ArrayLike) -> list[dict[str, Any]]:
    """Nearest gazetteer place of each point (offline GeoNames via ``reverse_geocode``):
    ``{"label": "City, State, Country (12 km)", "place": {...}}`` per point."""

    array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(array) == 0:
        return []
    return [{"label": p.label(), "place": p.as_dict()} for p in nearest_places(array)]


def top_rows(
    probs: ArrayLike, coords: ArrayLike, region_mass: RegionMass, k: int
) -> list[dict[str, Any]]:
    """The ``top`` list of a distribution modality, in the one place-row schema
    (:mod:`geoforensics.core.geo.gazetteer`): rank, gallery_index, latitude, longitude,
    region_probability (mass within the region radius), point_probability, radius_km, label
    and place of each listed place."""

    points = np.asarray(coords, dtype=np.float64)
    ranked = rank_places(probs, region_mass, k)
    names = place_labels(points[ranked.indices])
    rows = []
    for rank, (i, region, point, name) in enumerate(
        zip(ranked.indices, ranked.region, ranked.point, names, strict=True), start=1
    ):
        rows.append(
            place_row(
                rank, int(i), points[i, 0], points[i, 1], region, point, region_mass.radius_km,
                name["label"], name["place"],
            )
        )  # fmt: skip
    return rows


def point_row(point: tuple[float, float], label: str | None = None) -> dict[str, Any]:
    """The ``top`` entry of a point modality (GPS tag, claimed place), in the same schema:
    no gallery index, region and point probability 1, radius 0."""

    name = place_labels([point])[0]
    return place_row(
        1, None, point[0], point[1], 1.0, 1.0, 0.0, label or name["label"], name["place"]
    )


__all__ = [
    "TOP_RADIUS_KM",
    "RankedPlaces",
    "RegionMass",
    "place_labels",
    "point_row",
    "rank_places",
    "top_rows",
]
