"""Who records where and when, and which species each recording holds.

Recording places follow iNaturalist's biases: recordists live near population centres (denser
in North America and Europe) and mostly return to a few favourite sites near home, with
occasional trips. Recordings are split into train/val/test at random by recording, not by
recordist, so test sites recur near training sites as they do on iNaturalist.

Species are drawn from the true range model at the recording's place and week: only species
with presence ≥ :data:`~.ranges.PRESENCE_THRESHOLD` are candidates, and they are drawn with
probability proportional to presence × abundance × calling activity at that hour.

Everything here is planning: plans are small picklable records; :mod:`.render` turns a plan
into audio with its own seeded random stream, so audio does not depend on order or workers.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from geoforensics.core.errors import GeoforensicsError
from geoforensics.core.geo.land import LandGrid, destination
from geoforensics.core.synth.places import Ambience, PopulationCentres, sample_ambience
from geoforensics.core.synth.ranges import PRESENCE_THRESHOLD, WEEKS, SyntheticRangeModel
from geoforensics.core.synth.species import Species, activity_level

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Sample rate of every synthetic recording (that of iNatSounds), in Hz.
SAMPLE_RATE = 22_050


@dataclass(frozen=True)
class Recordist:
    """A person who records: a home near a town and a few favourite sites near it."""

    id: int
    name: str
    home_lat: float
    home_lon: float
    site_lat: np.ndarray
    site_lon: np.ndarray
    activity: float


@dataclass(frozen=True)
class Voice:
    """One species' part in a recording.

    ``level_db`` is relative to the focal species (0 for it); ``lowpass_hz`` (0 = none) dulls
    distant singers; ``spacing`` multiplies the gap between phrases (sparser when > 1);
    ``bouts`` makes the species sing in bouts with pauses (dawn choruses).
    """

    species: int
    level_db: float
    lowpass_hz: float
    spacing: float
    bouts: bool = False


@dataclass(frozen=True)
class RecordingPlan:
    """Everything needed to write one recording and its metadata."""

    kind: str  # "inat" or "xcdc"
    index: int  # position in its kind's list; part of the audio seed
    split: str
    audio_id: int | str
    file_name: str  # relative to the dataset root (iNat) or the XCDC folder
    recordist: int
    latitude: float
    longitude: float
    location_missing: bool
    location_uncertainty: int | None
    local_time: datetime
    utc_offset_h: int
    week: int
    hour: float
    date_style: int  # 0 "YYYY-MM-DDTHH:MM:SS", 1 "YYYY-MM-DD HH:MM:SS+HH:MM", 2 missing
    n_samples: int
    focal: int
    background: tuple[int, ...]
    voices: tuple[Voice, ...]
    ambience: Ambience
    snr_db: float
    out_peak: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / SAMPLE_RATE


def _offset(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, mean_km: float
) -> tuple[np.ndarray, np.ndarray]:
    n = lat.shape[0]
    return destination(lat, lon, rng.exponential(mean_km, n), rng.uniform(0, 2 * np.pi, n))


def _land_offsets(
    rng: np.random.Generator,
    grid: LandGrid,
    lat: np.ndarray,
    lon: np.ndarray,
    mean_km: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points scattered around (lat, lon) that fall on land; ``ok`` False where none did."""
    out_lat, out_lon = lat.astype(np.float64).copy(), lon.astype(np.float64).copy()
    todo = np.ones(lat.shape[0], dtype=bool)
    for _ in range(12):
        idx = np.flatnonzero(todo)
        if idx.size == 0:
            break
        plat, plon = _offset(rng, lat[idx], lon[idx], mean_km)
        ok = grid.is_land(plat, plon)
        out_lat[idx[ok]], out_lon[idx[ok]] = plat[ok], plon[ok]
        todo[idx[ok]] = False
        mean_km *= 0.6
    ok = ~todo | grid.is_land(lat, lon)
    return out_lat, out_lon, ok


def sample_places(
    rng: np.random.Generator, n: int, grid: LandGrid, centres: PopulationCentres, mean_km: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` land points near population-weighted towns (exponential offsets of ``mean_km``)."""
    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    have = 0
    while have < n:
        idx = centres.sample(rng, n - have)
        lat, lon, ok = _land_offsets(rng, grid, centres.lat[idx], centres.lon[idx], mean_km)
        lats.append(lat[ok])
        lons.append(lon[ok])
        have += int(ok.sum())
    return np.concatenate(lats)[:n], np.concatenate(lons)[:n]


def make_recordists(
    rng: np.random.Generator, n: int, grid: LandGrid, centres: PopulationCentres
) -> list[Recordist]:
    """``n`` recordists with homes near towns, 1-8 sites each and heavy-tailed activity."""
    home_lat, home_lon = sample_places(rng, n, grid, centres, mean_km=8.0)
    out: list[Recordist] = []
    for i in range(n):
        n_sites = 1 + min(7, int(rng.poisson(2.0)))
        lat = np.full(n_sites, home_lat[i])
        lon = np.full(n_sites, home_lon[i])
        slat, slon, ok = _land_offsets(rng, grid, lat, lon, mean_km=12.0)
        slat[0], slon[0] = home_lat[i], home_lon[i]
        keep = ok.copy()
        keep[0] = True
        out.append(
            Recordist(
                id=i,
                name=f"Synthetic Recordist {i:04d}",
                home_lat=float(home_lat[i]),
                home_lon=float(home_lon[i]),
                site_lat=np.round(slat[keep], 5),
                site_lon=np.round(slon[keep], 5),
                activity=float(np.exp(rng.normal(0.0, 1.2))),
            )
        )
    return out


def recordist_sites(recordists: list[Recordist]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All favourite sites of all recordists and how much each is visited (relative weight).

    These anchor species ranges, so that species live where people record.
    """
    weights = [np.full(len(r.site_lat), r.activity / len(r.site_lat)) for r in recordists]
    return (
        np.concatenate([r.site_lat for r in recordists]),
        np.concatenate([r.site_lon for r in recordists]),
        np.concatenate(weights),
    )


def _local_summer_peak(lat: np.ndarray) -> np.ndarray:
    """Week of most recording activity (spring): week 20 in the north, 44 in the south."""
    return np.where(lat >= 0, 20.0, 44.0)


def sample_weeks(rng: np.random.Generator, lat: np.ndarray) -> np.ndarray:
    """Recording weeks, more in the local spring and summer (as on iNaturalist)."""
    n = lat.shape[0]
    weeks = np.arange(1, WEEKS + 1, dtype=np.float64)
    peak = _local_summer_peak(lat)[:, None]
    weight = 1.0 + 1.5 * np.exp(2.0 * (np.cos(2 * np.pi * (weeks[None, :] - peak) / WEEKS) - 1))
    cdf = np.cumsum(weight, axis=1)
    u = np.asarray(rng.uniform(0, 1, n))[:, None] * cdf[:, -1:]
    return (np.argmax(cdf > u, axis=1) + 1).astype(np.int64)


def sample_hours(rng: np.random.Generator, n: int, dawn_share: float = 0.45) -> np.ndarray:
    """Local hours (0-24): a dawn peak around 6-7 h on top of daytime recording."""
    dawn = rng.uniform(size=n) < dawn_share
    hours = np.where(dawn, rng.normal(6.5, 1.3, n), rng.uniform(5.0, 22.5, n))
    return np.mod(hours, 24.0)


def make_local_time(
    rng: np.random.Generator, week: int, hour: float, years: tuple[int, int] = (2016, 2024)
) -> datetime:
    """A local date-time inside ``week`` (1-48) at ``hour``."""
    year = int(rng.integers(years[0], years[1] + 1))
    month = (week - 1) // 4 + 1
    quarter = (week - 1) % 4
    last = calendar.monthrange(year, month)[1]
    first_day = quarter * 7 + 1
    last_day = last if quarter == 3 else first_day + 6
    day = int(rng.integers(first_day, last_day + 1))
    seconds = int(hour * 3600.0) + int(rng.integers(0, 60))
    return datetime(year, month, day) + timedelta(seconds=min(seconds, 86_399))


def utc_offset_hours(lon: float) -> int:
    """A plausible UTC offset (whole hours) from longitude."""
    return int(np.clip(np.round(lon / 15.0), -12, 14))


def _draw(
    rng: np.random.Generator, weights: np.ndarray, k: int, exclude: int | None = None
) -> list[int]:
    """``k`` indices without replacement, with probability proportional to ``weights``."""
    w = weights.astype(np.float64).copy()
    if exclude is not None:
        w[exclude] = 0.0
    k = min(k, int(np.count_nonzero(w > 0)))
    if k <= 0:
        return []
    # Efraimidis-Spirakis weighted sampling without replacement.
    keys = np.full(w.shape, -np.inf)
    positive = w > 0
    keys[positive] = np.log(rng.uniform(size=int(positive.sum()))) / w[positive]
    return [int(i) for i in np.argsort(-keys, kind="stable")[:k]]


_PATTERNS: tuple[str, ...] = ("dawn", "dusk", "night")


class _Weighting:
    """Draw weights of species at a place and hour: presence × abundance × activity."""

    def __init__(self, species: list[Species]) -> None:
        self.abundance = np.array([s.abundance for s in species])
        self.pattern = np.array([_PATTERNS.index(s.activity) for s in species])

    def __call__(self, presence: np.ndarray, hour: float) -> np.ndarray:
        levels = np.array([float(activity_level(p, hour)) for p in _PATTERNS])
        ok = presence >= np.float32(PRESENCE_THRESHOLD)
        return np.where(ok, presence * self.abundance * (0.3 + levels[self.pattern]), 0.0)


def plan_recordings(
    rng: np.random.Generator,
    n: int,
    species: list[Species],
    model: SyntheticRangeModel,
    recordists: list[Recordist],
    grid: LandGrid,
    centres: PopulationCentres,
    duration_median_s: float,
    duration_sigma: float,
    duration_range_s: tuple[float, float],
    split_fractions: tuple[float, float, float],
    missing_location_fraction: float,
    sample_rate: int = SAMPLE_RATE,
) -> list[RecordingPlan]:
    """Plan ``n`` iNaturalist-like recordings (places, dates, species, ambience, levels)."""
    activity = np.array([r.activity for r in recordists])
    who = rng.choice(len(recordists), size=n, p=activity / activity.sum())
    lat = np.zeros(n)
    lon = np.zeros(n)
    travel = rng.uniform(size=n) < 0.18
    for row in np.flatnonzero(~travel):
        rec = recordists[who[row]]
        k = len(rec.site_lat)
        site_weights = 1.0 / np.arange(1, k + 1)
        s = int(rng.choice(k, p=site_weights / site_weights.sum()))
        lat[row], lon[row] = rec.site_lat[s], rec.site_lon[s]
    # Small jitter around a favourite site (a few hundred metres to a few km).
    home = np.flatnonzero(~travel)
    jl, jn, ok = _land_offsets(rng, grid, lat[home], lon[home], mean_km=1.0)
    lat[home[ok]], lon[home[ok]] = jl[ok], jn[ok]
    tl, tn = sample_places(rng, int(travel.sum()), grid, centres, mean_km=10.0)
    lat[travel], lon[travel] = tl, tn
    lat, lon = np.round(lat, 5), np.round(lon, 5)
    weeks = sample_weeks(rng, lat)
    hours = sample_hours(rng, n)

    # Every recording needs at least one candidate species; redraw place and week otherwise.
    presence = model.presence(lat, lon, weeks)
    for _ in range(60):
        empty = np.flatnonzero(~(presence >= np.float32(PRESENCE_THRESHOLD)).any(axis=1))
        if empty.size == 0:
            break
        nl, nn = sample_places(rng, empty.size, grid, centres, mean_km=10.0)
        lat[empty], lon[empty] = np.round(nl, 5), np.round(nn, 5)
        weeks[empty] = sample_weeks(rng, lat[empty])
        presence[empty] = model.presence(lat[empty], lon[empty], weeks[empty])
    else:
        raise GeoforensicsError("synthetic world: could not find places with species present")

    split_draw = rng.choice(len(SPLITS), size=n, p=np.asarray(split_fractions))
    durations = np.exp(rng.normal(np.log(duration_median_s), duration_sigma, n))
    durations = np.clip(durations, *duration_range_s)
    ambience = sample_ambience(rng, lat, lon, weeks, grid, centres)
    weighting = _Weighting(species)
    plans: list[RecordingPlan] = []
    for i in range(n):
        split = SPLITS[int(split_draw[i])]
        hour = float(hours[i])
        weights = weighting(presence[i], hour)
        focal = _draw(rng, weights, 1)[0]
        dawn = float(activity_level("dawn", hour))
        n_background = min(4, int(rng.poisson(0.4 + 1.4 * dawn)))
        background = tuple(_draw(rng, weights, n_background, exclude=focal))
        focal_spacing = 1.0 + 0.5 * (1.0 - float(activity_level(species[focal].activity, hour)))
        voices = [Voice(focal, 0.0, 0.0, focal_spacing)]
        for b in background:
            lowpass = float(rng.uniform(2500, 8000)) if rng.uniform() < 0.5 else 0.0
            voices.append(
                Voice(b, float(rng.uniform(-22.0, -6.0)), lowpass, float(rng.uniform(1.3, 3.5)))
            )
        local = make_local_time(rng, int(weeks[i]), hour)
        missing = split == "train" and rng.uniform() < missing_location_fraction
        date_style = int(rng.integers(0, 2))
        if split == "train" and rng.uniform() < 0.01:
            date_style = 2
        uncertainty = (
            int(np.clip(np.exp(rng.normal(np.log(30.0), 1.3)), 1, 50_000))
            if rng.uniform() < 0.8
            else None
        )
        token = rng.bytes(16).hex()
        n_samples = round(float(durations[i]) * sample_rate)
        plans.append(
            RecordingPlan(
                kind="inat",
                index=i,
                split=split,
                audio_id=100_000 + i,
                file_name=f"{split}/{species[focal].folder_name()}/{token}.wav",
                recordist=int(who[i]),
                latitude=float(lat[i]),
                longitude=float(lon[i]),
                location_missing=bool(missing),
                location_uncertainty=uncertainty,
                local_time=local,
                utc_offset_h=utc_offset_hours(float(lon[i])),
                week=int(weeks[i]),
                hour=round(hour, 3),
                date_style=date_style,
                n_samples=n_samples,
                focal=focal,
                background=background,
                voices=tuple(voices),
                ambience=ambience[i],
                snr_db=float(rng.uniform(-6.0, 15.0)),
                out_peak=float(rng.uniform(0.3, 0.9)),
            )
        )
    return plans


def plan_choruses(
    rng: np.random.Generator,
    n: int,
    minutes: tuple[float, float],
    species: list[Species],
    model: SyntheticRangeModel,
    recordists: list[Recordist],
    grid: LandGrid,
    centres: PopulationCentres,
    sample_rate: int = SAMPLE_RATE,
    species_range: tuple[int, int] = (10, 36),
) -> list[RecordingPlan]:
    """Plan ``n`` long dawn-chorus recordings (XCDC-like) with many species each.

    Each is made at a recordist site in its local breeding season at dawn, chosen among sites
    with at least 10 species present (or the richest 5 % of sites where the world has none so
    rich), and holds 10-36 species where the place allows that many.
    """
    site_lat, site_lon, _ = recordist_sites(recordists)
    owner = np.concatenate([np.full(len(r.site_lat), r.id) for r in recordists])
    plans: list[RecordingPlan] = []
    for j in range(n):
        picks = rng.choice(len(site_lat), size=min(2000, len(site_lat)), replace=False)
        lat = site_lat[picks]
        lon = site_lon[picks]
        peak = _local_summer_peak(lat)
        week = (np.mod(peak + rng.integers(-3, 5, picks.size) - 1, WEEKS) + 1).astype(np.int64)
        presence = model.presence(lat, lon, week)
        richness = (presence >= np.float32(PRESENCE_THRESHOLD)).sum(axis=1)
        target = int(rng.integers(species_range[0], species_range[1] + 1))
        # A site rich enough for the target (or among the richest 5 % where none is).
        needed = min(target, species_range[0], int(np.quantile(richness, 0.95)))
        eligible = np.flatnonzero(richness >= max(1, needed))
        if eligible.size == 0:
            eligible = np.array([int(np.argmax(richness))])
        best = int(rng.choice(eligible))
        hour = float(rng.uniform(3.8, 6.5))
        weights = _Weighting(species)(presence[best], hour)
        chosen = _draw(rng, weights, target)
        if not chosen:
            raise GeoforensicsError("synthetic world: no species present at any chorus site")
        levels = np.sort(rng.uniform(-24.0, 0.0, len(chosen)))[::-1]
        levels[0] = 0.0
        voices = tuple(
            Voice(
                s,
                float(levels[k]),
                float(rng.uniform(2000, 8000)) if levels[k] < -12 else 0.0,
                float(rng.uniform(1.0, 2.5)),
                bouts=True,
            )
            for k, s in enumerate(chosen)
        )
        n_main = min(len(chosen), int(rng.integers(1, 4)))
        length_s = float(rng.uniform(minutes[0], minutes[1]) * 60.0)
        n_samples = round(length_s) * sample_rate
        audio_id = f"XC{700_000 + j}"
        clat, clon = float(lat[best]), float(lon[best])
        plans.append(
            RecordingPlan(
                kind="xcdc",
                index=j,
                split="xcdc",
                audio_id=audio_id,
                file_name=f"audio/{audio_id}.wav",
                recordist=int(owner[picks[best]]),
                latitude=clat,
                longitude=clon,
                location_missing=False,
                location_uncertainty=None,
                local_time=make_local_time(rng, int(week[best]), hour),
                utc_offset_h=utc_offset_hours(clon),
                week=int(week[best]),
                hour=round(hour, 3),
                date_style=0,
                n_samples=n_samples,
                focal=chosen[0],
                background=tuple(chosen[1:]),
                voices=voices,
                ambience=sample_ambience(
                    rng, np.array([clat]), np.array([clon]), week[best : best + 1], grid, centres
                )[0],
                snr_db=float(rng.uniform(6.0, 18.0)),
                out_peak=float(rng.uniform(0.4, 0.9)),
                extra={
                    "main": tuple(chosen[:n_main]),
                    "partial_date": bool(rng.uniform() < 0.1),
                    "unknown_time": bool(rng.uniform() < 0.1),
                },
            )
        )
    return plans
