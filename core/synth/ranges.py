"""Species ranges of the synthetic world and its true range model.

A range is a union of 1-3 soft blobs on real land. Each blob has a centre, a radius ``R``
(log-uniform from 25 to 3,500 km: local endemics to continental species) and a peak
probability; presence inside a blob is ``peak·(1 - (d/R)²)²`` at distance ``d < R`` and exactly
zero beyond, and the blobs of a species combine by taking the maximum. Presence is zero over
the sea, except for coastal species, which live only within about 30 km of a coastline.

Seasonality, in weeks 1-48 (four per month, the convention of BirdNET's range model):
residents are present all year; ``summer`` species (insects and frogs at higher latitudes)
only in their hemisphere's warm season; migrants have a breeding range (local summer) and a
wintering range nearer to or across the equator (24 weeks later).

:class:`SyntheticRangeModel` holds all of it as plain arrays and answers
``presence(lat, lon, week)`` for many points at once; the generator draws the species of
every recording from it, so a species is heard only where and when its presence is at least
:data:`PRESENCE_THRESHOLD`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import DatasetNotFoundError, InputError
from geoforensics.core.fileio import atomic_path
from geoforensics.core.geo.distance import haversine_pairwise_np
from geoforensics.core.geo.land import (
    GRID_COLS,
    GRID_ROWS,
    LandGrid,
    destination,
    grid_index,
    random_land_points,
)
from geoforensics.core.species.checklists import WEEKS_PER_YEAR, week_rows
from geoforensics.core.synth.species import Species

#: A species can occur in a recording only where its presence is at least this (the checklist
#: threshold the paper uses for range-model checklists).
PRESENCE_THRESHOLD = 0.1
#: Weeks per year, as in BirdNET's range model (four per month).
WEEKS = WEEKS_PER_YEAR
#: Blob roles: present per the species' resident/summer curve, breeding range, wintering range.
ROLE_RESIDENT, ROLE_BREEDING, ROLE_WINTERING = 0, 1, 2
#: Habitats: land cells, or coastal cells (land or sea within about 30 km of a coast).
HABITAT_LAND, HABITAT_COAST = 0, 1
RANGE_MODEL_FILE = "range_model.npz"
_RADIUS_KM = (25.0, 3500.0)


def date_to_week(month: ArrayLike, day: ArrayLike) -> np.ndarray:
    """Week 1-48 of a date: four weeks per month, days 1-7, 8-14, 15-21 and 22-31."""
    m = np.asarray(month, dtype=np.int64)
    d = np.asarray(day, dtype=np.int64)
    if np.any((m < 1) | (m > 12)) or np.any((d < 1) | (d > 31)):
        raise InputError(
            f"date_to_week: month must be 1-12 and day 1-31, got {m.tolist()}/{d.tolist()}"
        )
    return (m - 1) * 4 + np.minimum((d - 1) // 7, 3) + 1


def _von_mises_weeks(centre: float, kappa: float) -> np.ndarray:
    """A smooth yearly bump over weeks 1-48, 1 at ``centre`` (a week number)."""
    weeks = np.arange(1, WEEKS + 1, dtype=np.float64)
    return np.exp(kappa * (np.cos(2.0 * np.pi * (weeks - centre) / WEEKS) - 1.0))


@dataclass(frozen=True)
class SpeciesRange:
    """Range and seasonality of one species (see the module docstring)."""

    season_type: str  # resident | summer | migrant
    habitat: int
    blob_lat: tuple[float, ...]
    blob_lon: tuple[float, ...]
    blob_radius_km: tuple[float, ...]
    blob_peak: tuple[float, ...]
    blob_role: tuple[int, ...]
    season: np.ndarray = field(repr=False)  # (3, 48): presence factor per role and week

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description (for ``world/species.json``)."""
        return {
            "season_type": self.season_type,
            "habitat": "coast" if self.habitat == HABITAT_COAST else "land",
            "blobs": [
                {
                    "latitude": self.blob_lat[i],
                    "longitude": self.blob_lon[i],
                    "radius_km": self.blob_radius_km[i],
                    "peak": self.blob_peak[i],
                    "role": ("resident", "breeding", "wintering")[self.blob_role[i]],
                }
                for i in range(len(self.blob_lat))
            ],
            "season_by_week": {
                "resident": [round(float(v), 4) for v in self.season[ROLE_RESIDENT]],
                "breeding": [round(float(v), 4) for v in self.season[ROLE_BREEDING]],
                "wintering": [round(float(v), 4) for v in self.season[ROLE_WINTERING]],
            },
        }


def _pick_far_anchor(
    rng: np.random.Generator,
    anchor_lat: np.ndarray,
    anchor_lon: np.ndarray,
    anchor_weight: np.ndarray,
    avoid: list[tuple[float, float, float]],
    radius: float,
) -> int:
    """An anchor index (drawn by weight), preferring ones far from the ``avoid`` ranges."""
    best, best_score = 0, -np.inf
    cdf = np.cumsum(anchor_weight)
    for _ in range(40):
        i = min(int(np.searchsorted(cdf, rng.uniform(0.0, cdf[-1]), side="right")), len(cdf) - 1)
        if not avoid:
            return i
        lat = np.array([a[0] for a in avoid])
        lon = np.array([a[1] for a in avoid])
        rad = np.array([a[2] for a in avoid])
        d = haversine_pairwise_np([[anchor_lat[i], anchor_lon[i]]], np.stack([lat, lon], 1))[0]
        score = float(np.min(d - 0.9 * (rad + radius)))
        if score > 0:
            return i
        if score > best_score:
            best, best_score = i, score
    return best


def _land_near(
    rng: np.random.Generator,
    grid: LandGrid,
    lat: float,
    lon: float,
    max_km: float,
    coastal: bool = False,
) -> tuple[float, float] | None:
    """A land (or coastal) point within ``max_km`` of (lat, lon), or None."""
    n = 96
    d = max_km * np.sqrt(rng.uniform(size=n))
    plat, plon = destination(np.full(n, lat), np.full(n, lon), d, rng.uniform(0, 2 * np.pi, n))
    ok = (
        grid.is_coast(plat, plon) & grid.is_land(plat, plon)
        if coastal
        else grid.is_land(plat, plon)
    )
    hits = np.flatnonzero(ok)
    if hits.size == 0:
        return None
    return float(plat[hits[0]]), float(plon[hits[0]])


def make_ranges(
    rng: np.random.Generator,
    species: Sequence[Species],
    grid: LandGrid,
    anchor_lat: np.ndarray,
    anchor_lon: np.ndarray,
    anchor_weight: np.ndarray | None = None,
) -> list[SpeciesRange]:
    """Draw a range for every species.

    ``anchor_lat/lon`` are places where people record (recordist sites, drawn by
    ``anchor_weight``, e.g. how often they are visited); 85 % of primary centres sit near one,
    the rest anywhere on land, so most species have recordings and some live where nobody
    records. Congeners are placed apart (allopatric) where possible.
    """
    if anchor_weight is None:
        anchor_weight = np.ones(len(anchor_lat))
    coastal_anchor = grid.is_coast(anchor_lat, anchor_lon)
    genus_ranges: dict[str, list[tuple[float, float, float]]] = {}
    out: list[SpeciesRange] = []
    for sp in species:
        radius = float(np.exp(rng.uniform(np.log(_RADIUS_KM[0]), np.log(_RADIUS_KM[1]))))
        coastal = sp.order == "Charadriiformes" and rng.uniform() < 0.7
        avoid = genus_ranges.setdefault(sp.genus, [])
        centre: tuple[float, float] | None = None
        if coastal:
            idx = np.flatnonzero(coastal_anchor)
            if idx.size:
                k = _pick_far_anchor(
                    rng, anchor_lat[idx], anchor_lon[idx], anchor_weight[idx], avoid, radius
                )
                centre = (float(anchor_lat[idx][k]), float(anchor_lon[idx][k]))
        elif rng.uniform() < 0.85:
            k = _pick_far_anchor(rng, anchor_lat, anchor_lon, anchor_weight, avoid, radius)
            centre = _land_near(rng, grid, anchor_lat[k], anchor_lon[k], min(radius * 0.3, 150.0))
            if centre is None:
                centre = (float(anchor_lat[k]), float(anchor_lon[k]))
        if centre is None:
            lat, lon = random_land_points(rng, 1, grid)
            centre = (float(lat[0]), float(lon[0]))
        avoid.append((centre[0], centre[1], radius))
        lats, lons, radii, peaks, roles = [centre[0]], [centre[1]], [radius], [], []
        # Extra blobs: nearby patches of the same range.
        for _ in range(int(rng.choice([0, 0, 0, 1, 1, 2]))):
            spot = _land_near(rng, grid, centre[0], centre[1], radius * 2.5, coastal)
            if spot is not None:
                lats.append(spot[0])
                lons.append(spot[1])
                radii.append(radius * float(rng.uniform(0.3, 0.9)))
        peaks = [round(float(p), 3) for p in rng.uniform(0.5, 1.0, len(lats))]
        season = np.zeros((3, WEEKS))
        north = centre[0] >= 0
        summer_week = 26.0 if north else 2.0
        temperate = abs(centre[0]) > 28.0
        season_type = "resident"
        roles = [ROLE_RESIDENT] * len(lats)
        if sp.supercategory in ("Insecta", "Amphibia") and temperate and rng.uniform() < 0.6:
            season_type = "summer"
            season[ROLE_RESIDENT] = _von_mises_weeks(summer_week, float(rng.uniform(1.5, 3.0)))
        elif sp.supercategory == "Aves" and abs(centre[0]) > 25.0 and rng.uniform() < 0.3:
            season_type = "migrant"
            breeding_week = float(np.round(summer_week + rng.uniform(-2, 2)))
            kappa = float(rng.uniform(2.0, 4.0))
            season[ROLE_BREEDING] = _von_mises_weeks(breeding_week, kappa)
            season[ROLE_WINTERING] = _von_mises_weeks(breeding_week + WEEKS / 2, kappa)
            roles = [ROLE_BREEDING] * len(lats)
            toward = -1.0 if north else 1.0
            target_lat = float(np.clip(centre[0] + toward * rng.uniform(15, 45), -50, 65))
            target_lon = float(np.mod(centre[1] + rng.normal(0, 15) + 180, 360) - 180)
            n_winter = int(rng.choice([1, 1, 2]))
            for _ in range(n_winter):
                spot = _land_near(rng, grid, target_lat, target_lon, 1500.0, coastal)
                if spot is None:
                    wlat, wlon = random_land_points(rng, 1, grid, (-25, 25))
                    spot = (float(wlat[0]), float(wlon[0]))
                lats.append(spot[0])
                lons.append(spot[1])
                radii.append(max(150.0, radius * float(rng.uniform(0.5, 1.2))))
                peaks.append(round(float(rng.uniform(0.5, 1.0)), 3))
                roles.append(ROLE_WINTERING)
        else:
            season[ROLE_RESIDENT] = 1.0
        out.append(
            SpeciesRange(
                season_type=season_type,
                habitat=HABITAT_COAST if coastal else HABITAT_LAND,
                blob_lat=tuple(round(v, 5) for v in lats),
                blob_lon=tuple(round(v, 5) for v in lons),
                blob_radius_km=tuple(round(v, 2) for v in radii),
                blob_peak=tuple(peaks),
                blob_role=tuple(roles),
                season=season.astype(np.float32),
            )
        )
    return out


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz with fixed timestamps, so the same arrays always give the same bytes."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buffer.getvalue())


class SyntheticRangeModel:
    """The synthetic world's true range model (the interface BirdNET and SINR models share).

    ``species`` are scientific names in category-index order. ``presence(lat, lon, week)``
    gives an (N, S) float32 array of presence probabilities; ``week`` is 1-48 (a scalar or one
    per point) or None for the whole year, which takes the maximum over the 48 weeks (a
    species is on a year-round checklist if it is present in any week, like BirdNET's week -1).
    """

    def __init__(
        self,
        species: Sequence[str],
        blob_species: np.ndarray,
        blob_lat: np.ndarray,
        blob_lon: np.ndarray,
        blob_radius_km: np.ndarray,
        blob_peak: np.ndarray,
        blob_role: np.ndarray,
        habitat: np.ndarray,
        season: np.ndarray,
        land: np.ndarray,
        coast: np.ndarray,
    ) -> None:
        self.species: list[str] = [str(s) for s in species]
        n = len(self.species)
        order = np.argsort(blob_species, kind="stable")
        self.blob_species = np.asarray(blob_species, dtype=np.int64)[order]
        if n == 0 or not np.array_equal(np.unique(self.blob_species), np.arange(n)):
            raise InputError("SyntheticRangeModel: every species needs at least one range blob")
        self.blob_lat = np.asarray(blob_lat, dtype=np.float64)[order]
        self.blob_lon = np.asarray(blob_lon, dtype=np.float64)[order]
        self.blob_radius_km = np.asarray(blob_radius_km, dtype=np.float64)[order]
        self.blob_peak = np.asarray(blob_peak, dtype=np.float64)[order]
        self.blob_role = np.asarray(blob_role, dtype=np.int64)[order]
        self.habitat = np.asarray(habitat, dtype=np.int64)
        self.season = np.asarray(season, dtype=np.float32)
        if self.season.shape != (n, 3, WEEKS) or self.habitat.shape != (n,):
            raise InputError(
                f"SyntheticRangeModel: season must be ({n}, 3, {WEEKS}) and habitat ({n},)"
            )
        self.land = np.asarray(land, dtype=bool)
        self.coast = np.asarray(coast, dtype=bool)
        if self.land.shape != (GRID_ROWS, GRID_COLS) or self.coast.shape != self.land.shape:
            raise InputError(
                f"SyntheticRangeModel: land/coast grids must be {GRID_ROWS}×{GRID_COLS}"
            )
        self._starts = np.searchsorted(self.blob_species, np.arange(n))
        # Season factor of each blob per week, and its maximum over the year.
        self._blob_season = self.season[self.blob_species, self.blob_role].astype(np.float64)
        self._blob_season_year = self._blob_season.max(axis=1)

    @classmethod
    def from_ranges(
        cls, species: Sequence[Species], ranges: Sequence[SpeciesRange], grid: LandGrid
    ) -> SyntheticRangeModel:
        """Build the model from generated ranges on a land grid."""
        blob_species = np.concatenate(
            [np.full(len(r.blob_lat), i, dtype=np.int64) for i, r in enumerate(ranges)]
        )
        return cls(
            species=[s.scientific_name for s in species],
            blob_species=blob_species,
            blob_lat=np.concatenate([r.blob_lat for r in ranges]),
            blob_lon=np.concatenate([r.blob_lon for r in ranges]),
            blob_radius_km=np.concatenate([r.blob_radius_km for r in ranges]),
            blob_peak=np.concatenate([r.blob_peak for r in ranges]),
            blob_role=np.concatenate([r.blob_role for r in ranges]),
            habitat=np.array([r.habitat for r in ranges], dtype=np.int64),
            season=np.stack([r.season for r in ranges]),
            land=grid.land,
            coast=grid.coast,
        )

    @property
    def n_species(self) -> int:
        """Number of species (columns of :meth:`presence`)."""
        return len(self.species)

    def presence(
        self, lat: ArrayLike, lon: ArrayLike, week: ArrayLike | None = None, chunk: int = 2048
    ) -> np.ndarray:
        """Presence probabilities, (N, S) float32, at N points (degrees) and week(s) 1-48."""
        lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        if lat_a.shape != lon_a.shape or lat_a.ndim != 1:
            raise InputError(
                f"presence: lat and lon must be 1-D of one length, got {lat_a.shape}, {lon_a.shape}"
            )
        bad = (
            ~(np.isfinite(lat_a) & np.isfinite(lon_a))
            | (np.abs(lat_a) > 90)
            | (np.abs(lon_a) > 180)
        )
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"presence: point {i} has invalid coordinates ({lat_a[i]}, {lon_a[i]})"
            )
        n = lat_a.shape[0]
        weeks = week_rows(week, n, "presence")
        out = np.zeros((n, self.n_species), dtype=np.float32)
        rows, cols = grid_index(lat_a, lon_a)
        land = self.land[rows, cols]
        coast = self.coast[rows, cols]
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            d = haversine_pairwise_np(
                np.stack([lat_a[a:b], lon_a[a:b]], 1), np.stack([self.blob_lat, self.blob_lon], 1)
            )
            r2 = (d / self.blob_radius_km) ** 2
            kernel = np.square(np.clip(1.0 - r2, 0.0, None)) * self.blob_peak
            if weeks is None:
                kernel *= self._blob_season_year
            else:
                kernel *= self._blob_season[:, weeks[a:b] - 1].T
            per_species = np.maximum.reduceat(kernel, self._starts, axis=1)
            habitat_ok = np.where(self.habitat == HABITAT_COAST, coast[a:b, None], land[a:b, None])
            out[a:b] = (per_species * habitat_ok).astype(np.float32)
        return out

    def checklist(
        self,
        lat: ArrayLike,
        lon: ArrayLike,
        week: ArrayLike | None = None,
        threshold: float = PRESENCE_THRESHOLD,
    ) -> np.ndarray:
        """Boolean (N, S): species whose presence is at least ``threshold``."""
        return self.presence(lat, lon, week) >= np.float32(threshold)

    def save(self, world_dir: str | Path) -> Path:
        """Write ``world_dir/range_model.npz`` (plain arrays, no pickle, reproducible bytes)."""
        path = Path(world_dir) / RANGE_MODEL_FILE
        _write_npz(
            path,
            {
                "species": np.array(self.species, dtype=np.str_),
                "blob_species": self.blob_species,
                "blob_lat": self.blob_lat,
                "blob_lon": self.blob_lon,
                "blob_radius_km": self.blob_radius_km,
                "blob_peak": self.blob_peak,
                "blob_role": self.blob_role,
                "habitat": self.habitat,
                "season": self.season,
                "land": self.land,
                "coast": self.coast,
            },
        )
        return path

    @classmethod
    def load(cls, world_dir: str | Path) -> SyntheticRangeModel:
        """Load from a world folder (``ROOT/world``), the dataset root or the .npz itself."""
        location = Path(world_dir).expanduser()
        candidates = [location, location / RANGE_MODEL_FILE, location / "world" / RANGE_MODEL_FILE]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise DatasetNotFoundError(
                f"{location}: no {RANGE_MODEL_FILE} (expected ROOT/world/{RANGE_MODEL_FILE} "
                "written by `geoforensics data synth`)"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: not a readable range model ({exc})") from exc
        missing = {
            "species",
            "blob_species",
            "blob_lat",
            "blob_lon",
            "blob_radius_km",
            "blob_peak",
            "blob_role",
            "habitat",
            "season",
            "land",
            "coast",
        } - set(arrays)
        if missing:
            raise InputError(f"{path}: range model lacks arrays {sorted(missing)}")
        names = arrays.pop("species")
        return cls(species=[str(s) for s in names], **arrays)

    def range_radius_km(self) -> np.ndarray:
        """Largest blob radius of each species (km): the scale of its range."""
        return np.maximum.reduceat(self.blob_radius_km, self._starts)
