"""The land grid: land, coast and nearby-sea layers on a 0.1° grid, and points on land.

The land mask comes from ``global_land_mask`` (30 arc-second GLOBE data), reduced once to a
0.1° grid of land fractions and cached, so that land tests cost an array lookup. The synthetic
world places species and recordings with it, the world map draws its coastline from it, and
range-model pretraining samples points on land from it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import GeoforensicsError
from geoforensics.core.fileio import atomic_write
from geoforensics.core.geo.distance import EARTH_RADIUS_KM
from geoforensics.core.paths import cache_dir

#: Cell size of the land grid in degrees; rows run from 90°N southwards, columns from 180°W.
GRID_DEG = 0.1
GRID_ROWS = 1800
GRID_COLS = 3600
#: A grid cell counts as land when at least this fraction of its area is land.
LAND_FRACTION_MIN = 0.1
#: Coastal cells: land and sea cells within this many cells (about 30 km) of the other kind.
COAST_CELLS = 3
_GRID_CACHE_NAME = "land_grid_0.1deg_v1.npz"


def grid_index(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the 0.1° grid cell holding each (lat, lon) in degrees."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    rows = np.clip(np.floor((90.0 - lat) / GRID_DEG), 0, GRID_ROWS - 1).astype(np.intp)
    cols = np.floor((np.mod(lon + 180.0, 360.0)) / GRID_DEG).astype(np.intp) % GRID_COLS
    return rows, cols


def _mask_file() -> Path | None:
    spec = importlib.util.find_spec("global_land_mask")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "globe_combined_mask_compressed.npz"
    return path if path.is_file() else None


def _build_land_fraction() -> np.ndarray:
    """Land fraction per 0.1° cell (uint8 percent) from the 30 arc-second GLOBE ocean mask."""
    path = _mask_file()
    if path is not None:
        # Read the package's data file directly: importing the module would keep its
        # 900 MB mask alive for the life of the process.
        with np.load(path) as data:
            ocean = data["mask"]
    else:  # pragma: no cover - a future layout of the package
        from global_land_mask import globe

        ocean = globe._mask
    if ocean.shape != (GRID_ROWS * 12, GRID_COLS * 12):
        raise GeoforensicsError(
            f"global_land_mask: unexpected mask shape {ocean.shape}, expected (21600, 43200)"
        )
    blocks = ocean.view(np.uint8).reshape(GRID_ROWS, 12, GRID_COLS, 12)
    ocean_count = blocks.sum(axis=(1, 3), dtype=np.uint16)
    land = (144 - ocean_count).astype(np.float64) / 144.0
    return np.round(land * 100.0).astype(np.uint8)


def _dilate(mask: np.ndarray, cells: int) -> np.ndarray:
    """Boolean dilation by a square of half-width ``cells``; wraps around in longitude."""
    from scipy.ndimage import maximum_filter

    padded = np.concatenate([mask[:, -cells:], mask, mask[:, :cells]], axis=1)
    grown = maximum_filter(padded.astype(np.uint8), size=2 * cells + 1, mode="nearest")
    return grown[:, cells:-cells].astype(bool)


@dataclass(frozen=True)
class LandGrid:
    """Land, coast and nearby-sea information on a 0.1° grid.

    ``land_percent``: land area per cell in percent; ``land``: cells with at least
    :data:`LAND_FRACTION_MIN` land; ``coast``: cells within :data:`COAST_CELLS` of both land and
    sea; ``sea_near``: sea fraction (0-1) in the 5×5-cell neighbourhood, used for surf ambience.
    """

    land_percent: np.ndarray
    land: np.ndarray
    coast: np.ndarray
    sea_near: np.ndarray

    @classmethod
    def from_land_percent(cls, land_percent: np.ndarray) -> LandGrid:
        """Derive the land, coast and sea-proximity layers from land percentages."""
        from scipy.ndimage import uniform_filter

        land = land_percent >= LAND_FRACTION_MIN * 100
        coast = _dilate(land, COAST_CELLS) & _dilate(~land, COAST_CELLS)
        sea = 1.0 - land_percent.astype(np.float32) / 100.0
        padded = np.concatenate([sea[:, -2:], sea, sea[:, :2]], axis=1)
        sea_near = uniform_filter(padded, size=5, mode="nearest")[:, 2:-2]
        return cls(land_percent, land, coast, sea_near.astype(np.float32))

    def is_land(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Boolean array: is each point in a land cell."""
        rows, cols = grid_index(lat, lon)
        return self.land[rows, cols]

    def is_coast(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Boolean array: is each point within about 30 km of a coastline."""
        rows, cols = grid_index(lat, lon)
        return self.coast[rows, cols]

    def sea_fraction_near(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Fraction of sea within about 25 km of each point (0 inland, 1 offshore)."""
        rows, cols = grid_index(lat, lon)
        return self.sea_near[rows, cols]


@lru_cache(maxsize=1)
def load_land_grid() -> LandGrid:
    """The land grid, built from ``global_land_mask`` on first use and cached on disk."""
    path = cache_dir("synth") / _GRID_CACHE_NAME
    land_percent: np.ndarray | None = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                land_percent = data["land_percent"]
        except (OSError, ValueError, KeyError):
            land_percent = None  # a damaged cache file is rebuilt
    if land_percent is None or land_percent.shape != (GRID_ROWS, GRID_COLS):
        land_percent = _build_land_fraction()
        with atomic_write(path, "wb") as fh:
            np.savez_compressed(fh, land_percent=land_percent)
    return LandGrid.from_land_percent(land_percent)


def destination(
    lat: ArrayLike, lon: ArrayLike, distance_km: ArrayLike, bearing_rad: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Points reached from (lat, lon) after ``distance_km`` along ``bearing_rad`` (great circle)."""
    phi1 = np.radians(np.asarray(lat, dtype=np.float64))
    lam1 = np.radians(np.asarray(lon, dtype=np.float64))
    bearing_rad = np.asarray(bearing_rad, dtype=np.float64)
    delta = np.asarray(distance_km, dtype=np.float64) / EARTH_RADIUS_KM
    sin_phi2 = np.sin(phi1) * np.cos(delta) + np.cos(phi1) * np.sin(delta) * np.cos(bearing_rad)
    phi2 = np.arcsin(np.clip(sin_phi2, -1.0, 1.0))
    lam2 = lam1 + np.arctan2(
        np.sin(bearing_rad) * np.sin(delta) * np.cos(phi1),
        np.cos(delta) - np.sin(phi1) * np.sin(phi2),
    )
    lon2 = np.mod(np.degrees(lam2) + 180.0, 360.0) - 180.0
    return np.degrees(phi2), lon2


def random_land_points(
    rng: np.random.Generator, n: int, grid: LandGrid, lat_range: tuple[float, float] = (-56, 75)
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniform over the land within ``lat_range`` (area-uniform on the sphere)."""
    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    have = 0
    z_lo, z_hi = np.sin(np.radians(lat_range[0])), np.sin(np.radians(lat_range[1]))
    while have < n:
        m = max(64, 4 * (n - have))
        lat = np.degrees(np.arcsin(rng.uniform(z_lo, z_hi, m)))
        lon = rng.uniform(-180.0, 180.0, m)
        keep = grid.is_land(lat, lon)
        lats.append(lat[keep])
        lons.append(lon[keep])
        have += int(keep.sum())
    return np.concatenate(lats)[:n], np.concatenate(lons)[:n]
