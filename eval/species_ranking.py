"""Species lists -> one gallery point each: the ranking shared by the species and fused rows.

A :class:`SpeciesQuery` (range-table columns, weights, week) is scored with
:class:`~geoforensics.core.species.likelihood.SpeciesLikelihood` (``locate_species``'s default
model) over a range model's table for its week; :func:`locate_queries` groups queries by week
and scores identical queries once.

Ranking (:data:`DEFAULT_RANKING`, ``region-peak``, :class:`GalleryRanker`): the posterior over
the gallery (likelihood times a prior, uniform over the gallery's points unless one is given)
picks the region of radius :data:`RADIUS_KM` with the most posterior mass (the ranking of
``geoforensics locate --species``, :func:`~geoforensics.core.species.likelihood.locate_species`;
evaluated at the :data:`MAX_CANDIDATES` most probable points, exact for smaller galleries), and
within it the most probable point. The region's *centre* (``region``) is often a few hundred
km from a sharp peak, while the plain arg-max (``argmax``) of one species' likelihood jumps to
wherever the range model lists few other species. A query without species has no evidence: it
gets the prior's mode (the gallery point with the most gallery points within the radius).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import check_coords, chord_of_km, unit_vectors
from geoforensics.core.geo.ranking import score_map, top_k
from geoforensics.core.species.checklists import YEAR_ROUND, RangeModel, date_to_week
from geoforensics.core.species.likelihood import (
    DEFAULT_LIKELIHOOD,
    SpeciesLikelihood,
    SpeciesWeights,
)
from geoforensics.core.species.names import match_species
from geoforensics.core.species.range_table import range_table

#: How a posterior over the gallery becomes one point: ``region`` (the candidate with the most
#: mass within RADIUS_KM), ``region-peak`` (the most probable point of that region) or
#: ``argmax`` (the single most probable point).
RANKINGS: tuple[str, ...] = ("region", "region-peak", "argmax")
DEFAULT_RANKING = "region-peak"
#: Radius (km) of the region ranking (``locate_species``'s default).
RADIUS_KM = 500.0
#: Points the region ranking evaluates as region centres, and the points whose probabilities
#: it sums (both the most probable ones); exact for galleries up to this size.
MAX_CANDIDATES = 512
SUPPORT_POINTS = 4096
#: Range tables with at most this many entries (float16: 200 MB) are cached on disk.
CACHE_ENTRIES = 100_000_000
#: Unmatched names listed in a row's extra (all are counted).
LISTED_NAMES = 200


def recording_week(date: datetime | None, month: int | None = None) -> int:
    """Week 1-48 of a recording date; a known month alone gives its middle week (4k + 2);
    -1 (year-round) when neither is known."""
    if date is not None:
        return date_to_week(date)
    if month is not None and 1 <= int(month) <= 12:
        return (int(month) - 1) * 4 + 2
    return YEAR_ROUND


@dataclass(frozen=True)
class SpeciesQuery:
    """One species list to geolocate: range-table columns, their weights, the week (-1:
    year-round). No columns: no evidence (the prior's mode is predicted)."""

    indices: np.ndarray
    weights: np.ndarray
    week: int

    @classmethod
    def of(cls, indices: Sequence[int] | np.ndarray, week: int) -> SpeciesQuery:
        """Species with weight 1 each."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return cls(idx, np.ones(idx.size, dtype=np.float64), int(week))

    @classmethod
    def weighted(cls, weights: SpeciesWeights, week: int) -> SpeciesQuery:
        """From :func:`~geoforensics.core.species.likelihood.weights_from_probs`."""
        return cls(
            np.asarray(weights.indices, dtype=np.int64),
            np.asarray(weights.weights, dtype=np.float64),
            int(week),
        )

    def key(self) -> tuple[Any, ...]:
        """Identical queries share one likelihood (many recordings of a species and week)."""
        return (self.week, self.indices.tobytes(), np.round(self.weights, 12).tobytes())


@dataclass(frozen=True)
class MatchedLists:
    """Recordings' species names matched onto a range model's taxonomy.

    ``species[i]``: the distinct matched columns of recording ``i`` (in listed order);
    ``report``: the unmatched names and counts, for a row's extra.
    """

    species: list[np.ndarray]
    report: dict[str, Any]


def match_species_lists(names: Sequence[Sequence[str]], model: RangeModel) -> MatchedLists:
    """Match every recording's names (scientific; common names too when the model has them)."""
    distinct = sorted({str(n) for row in names for n in row})
    match = match_species(distinct, list(model.species), getattr(model, "common_names", None))
    lookup = dict(zip(distinct, match.indices.tolist(), strict=True))
    species: list[np.ndarray] = []
    affected = empty = 0
    for row in names:
        columns = [lookup[str(n)] for n in row]
        found = [c for c in dict.fromkeys(columns) if c >= 0]
        affected += any(c < 0 for c in columns)
        empty += not found
        species.append(np.asarray(found, dtype=np.int64))
    unmatched = sorted(set(match.unmatched))
    report = {
        "unmatched_species": unmatched[:LISTED_NAMES],
        "n_unmatched_species": len(unmatched),
        "n_species_names": len(distinct),
        "recordings_with_unmatched_species": int(affected),
        "recordings_without_matched_species": int(empty),
    }
    return MatchedLists(species, report)


# ------------------------------------------------------------------------------ ranking


class GalleryRanker:
    """Picks one gallery point from a log-posterior over the gallery (see the module docstring)."""

    def __init__(
        self,
        coords: np.ndarray,
        ranking: str = DEFAULT_RANKING,
        radius_km: float = RADIUS_KM,
        max_candidates: int = MAX_CANDIDATES,
    ) -> None:
        if ranking not in RANKINGS:
            raise InputError(f"species ranking {ranking!r}: choose one of {', '.join(RANKINGS)}")
        if not np.isfinite(radius_km) or radius_km <= 0:
            raise InputError(f"species ranking radius {radius_km} km: must be > 0")
        self.coords = check_coords(coords, "species ranking gallery")
        self.ranking = ranking
        self.radius_km = float(radius_km)
        self.max_candidates = max(1, int(max_candidates))
        self._xyz = unit_vectors(self.coords)
        # Chord through the unit sphere of the great-circle radius (as region_probability).
        self._reach = chord_of_km(self.radius_km) * (1.0 + 1e-12)
        self._prior_mode: int | None = None

    def best(self, log_posterior: np.ndarray) -> int:
        """Index of the chosen point: the arg-max; or the candidate with the most posterior mass
        within the radius (ties: the more probable candidate), for ``region-peak`` the most
        probable point within the radius of it.

        Candidates are the :data:`MAX_CANDIDATES` most probable points and the mass is summed
        over the :data:`SUPPORT_POINTS` most probable ones (all points of smaller galleries),
        so one call costs the same on a gallery of a million points.
        """
        if self.ranking == "argmax":
            return int(top_k(log_posterior, 1)[0])
        probs = score_map(log_posterior)
        support = top_k(probs, max(self.max_candidates, SUPPORT_POINTS))
        candidates = support[: self.max_candidates]  # best first
        pairs = cKDTree(self._xyz[candidates]).sparse_distance_matrix(
            cKDTree(self._xyz[support]), self._reach, output_type="ndarray"
        )
        row, col = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
        # A point is always within reach of itself (sparse matrices may drop zero distances).
        row = np.concatenate([row, np.arange(len(candidates))])
        col = np.concatenate([col, np.arange(len(candidates))])
        keep = np.ones(len(row), dtype=bool)
        keep[: len(pairs)] = pairs["i"] != pairs["j"]
        row, col = row[keep], col[keep]
        mass = np.bincount(row, weights=probs[support[col]], minlength=len(candidates))
        best = int(np.argmax(mass))
        if self.ranking == "region":
            return int(candidates[best])
        # region-peak: the most probable point inside the chosen region.
        inside = support[col[row == best]]
        return int(inside[int(np.argmax(probs[inside]))])

    def prior_mode(self) -> int:
        """The point a recording without evidence gets: the most gallery points within the
        radius (the mode of the uniform prior's region mass; on galleries larger than
        :data:`SUPPORT_POINTS`, the best of that many seeded random points); ``argmax``: the
        first point."""
        if self._prior_mode is None:
            if self.ranking == "argmax":
                self._prior_mode = 0
            else:
                n = len(self._xyz)
                probes = np.arange(n)
                if n > SUPPORT_POINTS:
                    rng = np.random.default_rng(0)
                    probes = np.sort(rng.choice(n, SUPPORT_POINTS, replace=False))
                counts = cKDTree(self._xyz).query_ball_point(
                    self._xyz[probes], self._reach, return_length=True
                )
                self._prior_mode = int(probes[int(np.argmax(counts))])
        return self._prior_mode


@dataclass(frozen=True)
class LocatedQueries:
    """Predictions (N, 2) of :func:`locate_queries` and how much work they took."""

    predictions: np.ndarray
    gallery_index: np.ndarray
    weeks: list[int]
    distinct_queries: int
    without_species: int

    def info(self) -> dict[str, Any]:
        """Counts for a row's extra."""
        return {
            "range_tables": len(self.weeks),
            "distinct_species_lists": self.distinct_queries,
            "recordings_predicted_from_prior": self.without_species,
        }


def locate_queries(
    model: RangeModel,
    coords: np.ndarray,
    queries: Sequence[SpeciesQuery],
    ranking: str | None = None,
    radius_km: float = RADIUS_KM,
    progress: bool = False,
    likelihood: str | None = None,
    log_prior: np.ndarray | None = None,
) -> LocatedQueries:
    """One gallery point per species list, from the range model's table over ``coords``.

    ``ranking``: ``region`` or ``argmax`` (default :data:`DEFAULT_RANKING`); ``likelihood``:
    a :data:`~geoforensics.core.species.likelihood.LIKELIHOOD_MODELS` name (default
    ``locate_species``'s); ``log_prior``: (G,) added to every log-likelihood (default none:
    uniform over the gallery's points).

    Queries are grouped by week (one range table per week: built in batches, cached on disk
    when at most :data:`CACHE_ENTRIES` entries); identical queries are scored once.
    """
    chosen_ranking = DEFAULT_RANKING if ranking is None else ranking
    ranker = GalleryRanker(np.asarray(coords, dtype=np.float64), chosen_ranking, radius_km)
    points = ranker.coords
    rule = DEFAULT_LIKELIHOOD if likelihood is None else likelihood
    prior = np.zeros(len(points)) if log_prior is None else np.asarray(log_prior, np.float64)
    if prior.shape != (len(points),):
        raise InputError(f"species rows: log prior {prior.shape} for {len(points)} locations")
    chosen = np.zeros(len(queries), dtype=np.int64)
    by_week: dict[int, list[int]] = {}
    empty = 0
    for i, query in enumerate(queries):
        if query.indices.size == 0:
            chosen[i] = ranker.prior_mode()
            empty += 1
        else:
            by_week.setdefault(int(query.week), []).append(i)
    cache = len(points) * len(model.species) <= CACHE_ENTRIES
    distinct = 0
    for week, members in sorted(by_week.items()):
        table = range_table(
            model, points, None if week == YEAR_ROUND else week, cache=cache, progress=progress
        )
        scorer = SpeciesLikelihood(table, model=rule)
        done: dict[tuple[Any, ...], int] = {}
        for i in members:
            query = queries[i]
            key = query.key()
            if key not in done:
                log_lik = scorer.log_likelihood(query.indices, query.weights)
                done[key] = ranker.best(log_lik + prior)
            chosen[i] = done[key]
        distinct += len(done)
    return LocatedQueries(
        predictions=points[chosen].copy(),
        gallery_index=chosen,
        weeks=sorted(by_week),
        distinct_queries=distinct,
        without_species=empty,
    )


__all__ = [
    "CACHE_ENTRIES",
    "DEFAULT_RANKING",
    "LISTED_NAMES",
    "MAX_CANDIDATES",
    "RADIUS_KM",
    "RANKINGS",
    "SUPPORT_POINTS",
    "GalleryRanker",
    "LocatedQueries",
    "MatchedLists",
    "SpeciesQuery",
    "locate_queries",
    "match_species_lists",
    "recording_week",
]
