"""The synthetic world's true range model: kernel, land mask, seasons, save/load, checklists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geoforensics.core.errors import DatasetNotFoundError, InputError
from geoforensics.core.geo.land import GRID_COLS, GRID_ROWS, load_land_grid, random_land_points
from geoforensics.core.synth import (
    PRESENCE_THRESHOLD,
    SyntheticRangeModel,
    build_world,
    date_to_week,
)
from geoforensics.core.synth.ranges import ROLE_BREEDING, ROLE_RESIDENT, ROLE_WINTERING

# Two hand-made species on an all-land grid: a resident around Paris (R = 400 km, peak 0.8)
# and a migrant breeding around Moscow (weeks ~24) and wintering around Nairobi (weeks ~48).
PARIS = (48.8566, 2.3522)
MOSCOW = (55.7558, 37.6173)
NAIROBI = (-1.2921, 36.8219)


def _weeks_bump(centre: float) -> np.ndarray:
    weeks = np.arange(1, 49)
    return np.exp(3.0 * (np.cos(2 * np.pi * (weeks - centre) / 48) - 1.0))


def _toy_model(land: np.ndarray | None = None) -> SyntheticRangeModel:
    season = np.zeros((2, 3, 48), dtype=np.float32)
    season[0, ROLE_RESIDENT] = 1.0
    season[1, ROLE_BREEDING] = _weeks_bump(24)
    season[1, ROLE_WINTERING] = _weeks_bump(48)
    grid = np.ones((GRID_ROWS, GRID_COLS), dtype=bool) if land is None else land
    return SyntheticRangeModel(
        species=["Toyus residens", "Toyus migrans"],
        blob_species=np.array([0, 1, 1]),
        blob_lat=np.array([PARIS[0], MOSCOW[0], NAIROBI[0]]),
        blob_lon=np.array([PARIS[1], MOSCOW[1], NAIROBI[1]]),
        blob_radius_km=np.array([400.0, 800.0, 600.0]),
        blob_peak=np.array([0.8, 1.0, 0.9]),
        blob_role=np.array([ROLE_RESIDENT, ROLE_BREEDING, ROLE_WINTERING]),
        habitat=np.array([0, 0]),
        season=season,
        land=grid,
        coast=np.zeros_like(grid),
    )


def test_date_to_week_four_weeks_per_month() -> None:
    weeks = date_to_week([1, 1, 1, 1, 2, 12, 12], [1, 7, 8, 31, 1, 22, 31])
    assert weeks.tolist() == [1, 1, 2, 4, 5, 48, 48]
    with pytest.raises(InputError):
        date_to_week(13, 1)
    with pytest.raises(InputError):
        date_to_week(5, 0)


def test_kernel_values_and_hard_edge() -> None:
    model = _toy_model()
    # 1 degree of latitude is 111.19 km on the 6,371 km sphere.
    km_per_deg = 6371.0 * np.pi / 180.0
    lats = PARIS[0] + np.array([0.0, 200.0, 399.0, 401.0, 2000.0]) / km_per_deg
    p = model.presence(lats, np.full(5, PARIS[1]), week=10)
    assert p.shape == (5, 2) and p.dtype == np.float32
    assert p[0, 0] == pytest.approx(0.8, abs=1e-5)
    assert p[1, 0] == pytest.approx(0.8 * (1 - 0.25) ** 2, abs=1e-4)
    assert 0 < p[2, 0] < 1e-3
    assert p[3, 0] == 0.0 and p[4, 0] == 0.0


def test_migrant_seasons_and_year_round_maximum() -> None:
    model = _toy_model()
    lat = np.array([MOSCOW[0], NAIROBI[0]])
    lon = np.array([MOSCOW[1], NAIROBI[1]])
    summer = model.presence(lat, lon, week=24)[:, 1]
    winter = model.presence(lat, lon, week=48)[:, 1]
    assert summer[0] == pytest.approx(1.0, abs=1e-5) and summer[1] < PRESENCE_THRESHOLD
    assert winter[1] == pytest.approx(0.9, abs=1e-5) and winter[0] < PRESENCE_THRESHOLD
    # week=None is the maximum over the 48 weeks.
    every_week = np.stack([model.presence(lat, lon, week=w) for w in range(1, 49)])
    assert np.allclose(model.presence(lat, lon), every_week.max(axis=0), atol=1e-6)
    # Per-point weeks give the same as one call per week.
    mixed = model.presence(lat, lon, week=np.array([24, 48]))
    assert mixed[0, 1] == summer[0] and mixed[1, 1] == winter[1]


def test_checklist_is_presence_over_threshold() -> None:
    model = _toy_model()
    rng = np.random.default_rng(0)
    lat = rng.uniform(-10, 65, 500)
    lon = rng.uniform(-10, 45, 500)
    presence = model.presence(lat, lon, week=24)
    assert np.array_equal(model.checklist(lat, lon, week=24), presence >= PRESENCE_THRESHOLD)
    assert np.array_equal(model.checklist(lat, lon, 24, threshold=0.5), presence >= 0.5)


def test_invalid_inputs_raise() -> None:
    model = _toy_model()
    with pytest.raises(InputError):
        model.presence([10.0], [10.0], week=0)
    with pytest.raises(InputError):
        model.presence([10.0], [10.0], week=49)
    with pytest.raises(InputError):
        model.presence([np.nan], [10.0])
    with pytest.raises(InputError):
        model.presence([95.0], [10.0])
    with pytest.raises(InputError):
        model.presence([1.0, 2.0], [1.0, 2.0], week=[3, 4, 5])


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = _toy_model()
    path = model.save(tmp_path / "world")
    first = path.read_bytes()
    model.save(tmp_path / "world")
    assert path.read_bytes() == first  # reproducible bytes
    loaded = SyntheticRangeModel.load(tmp_path)  # dataset root works too
    assert loaded.species == ["Toyus residens", "Toyus migrans"]
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-20, 70, 300), rng.uniform(-20, 60, 300)
    for week in (None, 5, 24, 48):
        assert np.array_equal(loaded.presence(lat, lon, week), model.presence(lat, lon, week))
    with pytest.raises(DatasetNotFoundError):
        SyntheticRangeModel.load(tmp_path / "nowhere")


def test_presence_is_zero_over_the_sea_for_land_species() -> None:
    grid = load_land_grid()
    model = _toy_model(land=grid.land)
    # The Bay of Biscay and the English Channel are inside the Paris blob but at sea.
    sea = model.presence([45.5, 49.9], [-4.0, -2.5])
    assert np.all(sea[:, 0] == 0.0)
    assert model.presence([PARIS[0]], [PARIS[1]])[0, 0] > 0.7


def test_land_grid_knows_land_sea_and_coast() -> None:
    grid = load_land_grid()
    assert grid.is_land(np.array([48.85, -25.0, 0.0]), np.array([2.35, -140.0, 20.0])).tolist() == [
        True,
        False,
        True,
    ]
    # Coastal: Lisbon's shore yes, central Spain no.
    assert grid.is_coast(np.array([38.70]), np.array([-9.20]))[0]
    assert not grid.is_coast(np.array([40.0]), np.array([-3.7]))[0]
    assert 0.25 < grid.land.mean() < 0.40  # about 30 % of the globe's grid cells


def test_world_ranges_are_local_to_continental_and_mostly_absent() -> None:
    world = build_world("tiny", seed=3)
    model = world.range_model
    radii = model.range_radius_km()
    assert radii.min() < 150 and radii.max() > 1500  # endemics and continental species
    rng = np.random.default_rng(0)
    lat, lon = random_land_points(rng, 2000, world.grid)
    present_anywhere = (model.presence(lat, lon) > 0).mean(axis=0)
    # Most species are absent from most of the world's land.
    assert np.median(present_anywhere) < 0.05
    assert np.mean(present_anywhere < 0.5) > 0.9
    # Coastal species live only near coasts.
    coastal = [i for i, r in enumerate(world.ranges) if r.habitat == 1]
    if coastal:
        inland = ~world.grid.is_coast(lat, lon)
        assert np.all(model.presence(lat[inland], lon[inland])[:, coastal] == 0.0)
