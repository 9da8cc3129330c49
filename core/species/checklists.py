"""Species checklists from a range model, the paper's checklist corruptions, name alignment.

A *range model* is anything with ``species`` (scientific names, one per column) and
``presence(lat, lon, week=None) -> (N, S)`` presence probabilities: the synthetic world's
:class:`~geoforensics.core.synth.SyntheticRangeModel`, and the BirdNET and SINR range models.
A *checklist* is the boolean (N, S) matrix of species whose presence is at least a threshold
(0.1, the paper's checklist threshold).

The species oracles of the benchmark feed checklists at the true location to a linear map;
to mimic imperfect species detection they also use corrupted checklists:
:func:`drop_present` (half of the present species removed, per row) and :func:`keep_random`
(only ``k`` random present species kept). Both are vectorised and seeded.

:func:`align_species` maps a range model's columns onto a dataset's categories by scientific
name, so that checklists can be compared with (or projected onto) a dataset's labels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import check_coords

#: Presence probability at or above which a species is on a checklist (the paper's 0.1).
CHECKLIST_THRESHOLD = 0.1
#: Weeks per year in range models (four per month, BirdNET's convention).
WEEKS_PER_YEAR = 48
#: Week value meaning "unknown date: use the year-round checklist" (BirdNET's -1).
YEAR_ROUND = -1

RngLike = np.random.Generator | int | None


@runtime_checkable
class RangeModel(Protocol):
    """What a range model offers: species names and presence probabilities at points."""

    @property
    def species(self) -> Sequence[str]: ...

    def presence(self, lat: ArrayLike, lon: ArrayLike, week: ArrayLike | None = None) -> np.ndarray:
        """(N, S) presence probabilities at N points; ``week`` 1-48 or None (year-round)."""
        ...


def _rng(rng: RngLike) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def date_to_week(value: date | datetime | None) -> int:
    """Week 1-48 of a date (days 1-7, 8-14, 15-21, 22-31 of each month); -1 when unknown."""
    if value is None:
        return YEAR_ROUND
    return (value.month - 1) * 4 + min((value.day - 1) // 7, 3) + 1


def dates_to_weeks(dates: Sequence[date | datetime | None]) -> np.ndarray:
    """Int64 (N,) weeks 1-48 of recording dates, -1 (year-round) where the date is missing."""
    return np.array([date_to_week(d) for d in dates], dtype=np.int64)


def checklists(
    range_model: RangeModel,
    coords: ArrayLike,
    weeks: ArrayLike | None = None,
    threshold: float = CHECKLIST_THRESHOLD,
    chunk: int = 4096,
) -> np.ndarray:
    """Boolean (N, S) checklists: species with presence >= ``threshold`` at each (lat, lon).

    ``weeks`` is None (year-round for every row), a scalar week 1-48, or one week per row,
    where :data:`YEAR_ROUND` (-1) marks a row whose date is unknown (year-round checklist).
    Coordinates must be valid (filter unlocated rows first).
    """
    points = check_coords(coords, "checklist locations")
    if not np.isfinite(threshold) or not 0.0 < threshold <= 1.0:
        raise InputError(f"checklist threshold {threshold}: must be in (0, 1]")
    n = len(points)
    n_species = len(range_model.species)
    rows_of_weeks = week_rows(weeks, n, "checklists", year_round=True)
    out = np.zeros((n, n_species), dtype=bool)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        lat, lon = points[start:stop, 0], points[start:stop, 1]
        if rows_of_weeks is None:
            presence = _presence(range_model, lat, lon, None, n_species)
            out[start:stop] = presence >= np.float32(threshold)
            continue
        w = rows_of_weeks[start:stop]
        year = w == YEAR_ROUND
        if year.any():
            presence = _presence(range_model, lat[year], lon[year], None, n_species)
            out[start:stop][year] = presence >= np.float32(threshold)
        if (~year).any():
            presence = _presence(range_model, lat[~year], lon[~year], w[~year], n_species)
            out[start:stop][~year] = presence >= np.float32(threshold)
    return out


def week_rows(
    weeks: ArrayLike | None, n: int, source: str, year_round: bool = False
) -> np.ndarray | None:
    """``weeks`` (None, a scalar or one per point) as int64 weeks 1-48, one per point.

    With ``year_round`` the value -1 (date unknown: the year-round checklist) is allowed too.
    Anything else raises :class:`InputError` prefixed with ``source``.
    """
    if weeks is None:
        return None
    array = np.asarray(weeks)
    if array.ndim == 0:
        array = np.full(n, array)
    if array.shape != (n,):
        raise InputError(
            f"{source}: weeks must be a scalar or one per point ({n}), got {array.shape}"
        )
    allowed = f"1-{WEEKS_PER_YEAR}" + (
        f" (or {YEAR_ROUND} for an unknown date)" if year_round else ""
    )
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise InputError(f"{source}: weeks must be whole numbers {allowed}")
    rows = array.astype(np.int64)
    bad = (rows < 1) | (rows > WEEKS_PER_YEAR)
    if year_round:
        bad &= rows != YEAR_ROUND
    if bad.any():
        raise InputError(f"{source}: week {int(rows[bad][0])} out of range: use {allowed}")
    return rows


def _presence(
    range_model: RangeModel,
    lat: np.ndarray,
    lon: np.ndarray,
    week: np.ndarray | None,
    n_species: int,
) -> np.ndarray:
    presence = np.asarray(range_model.presence(lat, lon, week))
    if presence.shape != (len(lat), n_species):
        raise InputError(
            f"range model: presence() gave shape {presence.shape}, expected ({len(lat)}, "
            f"{n_species}) for {len(lat)} points and {n_species} species"
        )
    return presence


# ------------------------------------------------------------------------- corruptions


def _as_checklist(checklist: ArrayLike) -> np.ndarray:
    array = np.asarray(checklist)
    if array.ndim != 2:
        raise InputError(f"checklist: expected a 2-D (N, S) array, got shape {array.shape}")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise InputError("checklist: values must be boolean or 0/1")
        array = array.astype(bool)
    return array


def _keep_first(checklist: np.ndarray, n_keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep ``n_keep[i]`` uniformly random present species of row i (vectorised).

    Every present entry gets a uniform random key, absent ones +inf; an entry is kept when
    its rank within the row is below the row's quota.
    """
    keys = rng.random(checklist.shape)
    keys[~checklist] = np.inf
    ranks = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    return checklist & (ranks < n_keep[:, None])


def drop_present(checklist: ArrayLike, fraction: float = 0.5, rng: RngLike = None) -> np.ndarray:
    """Remove ``fraction`` of each row's present species at random (the paper's 50 % drop).

    A row with k present species keeps ceil((1 - fraction) · k) of them, so a non-empty
    checklist never becomes empty unless ``fraction`` is 1. Returns a new boolean array.
    """
    if not np.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
        raise InputError(f"drop fraction {fraction}: must be in [0, 1]")
    array = _as_checklist(checklist)
    counts = array.sum(axis=1)
    n_keep = np.ceil(counts * (1.0 - fraction) - 1e-9).astype(np.int64)
    return _keep_first(array, n_keep, _rng(rng))


def keep_random(checklist: ArrayLike, k: int = 10, rng: RngLike = None) -> np.ndarray:
    """Keep ``k`` random present species per row; rows with at most ``k`` stay as they are."""
    if k < 0:
        raise InputError(f"keep_random: k must be >= 0, got {k}")
    array = _as_checklist(checklist)
    n_keep = np.minimum(array.sum(axis=1), k).astype(np.int64)
    return _keep_first(array, n_keep, _rng(rng))


#: The checklist variants of the paper's species-oracle rows.
CHECKLIST_VARIANTS: tuple[str, ...] = ("full", "drop50", "keep10")


def corrupt(checklist: ArrayLike, variant: str, rng: RngLike = None) -> np.ndarray:
    """Apply a named variant: ``full`` (unchanged copy), ``drop50``, ``keep10`` (or keepK)."""
    array = _as_checklist(checklist)
    if variant == "full":
        return array.copy()
    match = re.fullmatch(r"drop(\d+)", variant)
    if match and int(match.group(1)) <= 100:
        return drop_present(array, int(match.group(1)) / 100.0, rng)
    match = re.fullmatch(r"keep(\d+)", variant)
    if match:
        return keep_random(array, int(match.group(1)), rng)
    raise InputError(
        f"checklist variant {variant!r}: use 'full', 'dropP' (P percent of present species "
        "dropped, e.g. drop50) or 'keepK' (K random present species kept, e.g. keep10)"
    )


# --------------------------------------------------------------------- name alignment


def normalise_species_name(name: str) -> str:
    """Canonical form of a scientific name for matching: lower case, single spaces.

    BirdNET labels (``"Genus species_Common Name"``) are reduced to their scientific part.
    """
    scientific = name.split("_", 1)[0]
    return " ".join(scientific.replace("\u00a0", " ").split()).lower()


@dataclass(frozen=True)
class SpeciesAlignment:
    """Columns of a range model matched to a dataset's categories by scientific name.

    ``range_index[i]`` and ``dataset_index[i]`` are the matched column pair i (sorted by
    dataset index); the ``unmatched_*`` lists name what has no partner.
    """

    range_index: np.ndarray
    dataset_index: np.ndarray
    n_range: int
    n_dataset: int
    unmatched_dataset: list[str]
    unmatched_range: list[str]

    def __len__(self) -> int:
        return len(self.range_index)

    def to_dataset(self, range_values: ArrayLike, fill: float | bool = 0) -> np.ndarray:
        """Re-index (N, n_range) range-model columns as (N, n_dataset) dataset columns.

        Dataset categories without a range-model partner get ``fill``.
        """
        values = np.asarray(range_values)
        if values.ndim != 2 or values.shape[1] != self.n_range:
            raise InputError(
                f"species alignment: expected (N, {self.n_range}) range-model columns, got "
                f"{values.shape}"
            )
        out = np.full((values.shape[0], self.n_dataset), fill, dtype=values.dtype)
        out[:, self.dataset_index] = values[:, self.range_index]
        return out


def align_species(range_species: Sequence[str], dataset_species: Sequence[str]) -> SpeciesAlignment:
    """Match range-model species to dataset categories by (normalised) scientific name.

    Duplicate names on either side are an input error (the mapping would be ambiguous).
    """
    range_keys = [normalise_species_name(s) for s in range_species]
    data_keys = [normalise_species_name(s) for s in dataset_species]
    for label, keys, names in (
        ("range model", range_keys, range_species),
        ("dataset", data_keys, dataset_species),
    ):
        seen: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key in seen:
                raise InputError(
                    f"species alignment: {label} lists {names[i]!r} twice "
                    f"(entries {seen[key]} and {i})"
                )
            seen[key] = i
    lookup = {key: i for i, key in enumerate(range_keys)}
    pairs = [(lookup[key], j) for j, key in enumerate(data_keys) if key in lookup]
    matched_range = {i for i, _ in pairs}
    return SpeciesAlignment(
        range_index=np.array([i for i, _ in pairs], dtype=np.int64),
        dataset_index=np.array([j for _, j in pairs], dtype=np.int64),
        n_range=len(range_keys),
        n_dataset=len(data_keys),
        unmatched_dataset=[
            str(dataset_species[j]) for j, k in enumerate(data_keys) if k not in lookup
        ],
        unmatched_range=[
            str(range_species[i]) for i in range(len(range_keys)) if i not in matched_range
        ],
    )


def checklist_sizes(checklist: ArrayLike) -> dict[str, float]:
    """Summary of species per row (mean, median, min, max, share of empty rows)."""
    counts = _as_checklist(checklist).sum(axis=1)
    if counts.size == 0:
        raise InputError("checklist: no rows")
    return {
        "mean": float(counts.mean()),
        "median": float(np.median(counts)),
        "min": float(counts.min()),
        "max": float(counts.max()),
        "empty_fraction": float(np.mean(counts == 0)),
    }


__all__ = [
    "CHECKLIST_THRESHOLD",
    "CHECKLIST_VARIANTS",
    "YEAR_ROUND",
    "RangeModel",
    "SpeciesAlignment",
    "align_species",
    "checklist_sizes",
    "checklists",
    "corrupt",
    "date_to_week",
    "dates_to_weeks",
    "drop_present",
    "keep_random",
    "normalise_species_name",
]
