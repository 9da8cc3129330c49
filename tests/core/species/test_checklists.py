"""Checklists from a range model, the paper's checklist corruptions, species-name alignment."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo.land import GRID_COLS, GRID_ROWS
from geoforensics.core.species.checklists import (
    YEAR_ROUND,
    align_species,
    checklist_sizes,
    checklists,
    corrupt,
    dates_to_weeks,
    drop_present,
    keep_random,
    normalise_species_name,
)
from geoforensics.core.synth import SyntheticRangeModel


@pytest.fixture(scope="module")
def range_model() -> SyntheticRangeModel:
    """Three species on an all-land grid: a resident in Europe, a summer species in North
    America (present weeks ~20-32 only) and a large resident in Africa."""
    season = np.zeros((3, 3, 48), dtype=np.float32)
    season[0, 0] = 1.0
    season[1, 0, 19:32] = 1.0
    season[2, 0] = 1.0
    return SyntheticRangeModel(
        species=["Alpha one", "Beta two", "Gamma three"],
        blob_species=np.array([0, 1, 2]),
        blob_lat=np.array([48.0, 40.0, 0.0]),
        blob_lon=np.array([10.0, -100.0, 20.0]),
        blob_radius_km=np.array([800.0, 1500.0, 3000.0]),
        blob_peak=np.array([1.0, 0.9, 0.6]),
        blob_role=np.zeros(3, dtype=np.int64),
        habitat=np.zeros(3, dtype=np.int64),
        season=season,
        land=np.ones((GRID_ROWS, GRID_COLS), dtype=bool),
        coast=np.ones((GRID_ROWS, GRID_COLS), dtype=bool),
    )


POINTS = np.array([[48.0, 10.0], [40.0, -100.0], [0.0, 20.0], [-45.0, 170.0], [47.0, 12.0]])


def test_checklists_match_the_range_model_threshold(range_model: SyntheticRangeModel) -> None:
    got = checklists(range_model, POINTS)
    expected = range_model.presence(POINTS[:, 0], POINTS[:, 1]) >= np.float32(0.1)
    assert got.dtype == bool and got.shape == (5, 3)
    np.testing.assert_array_equal(got, expected)
    assert got[0].tolist() == [True, False, False]
    assert got[3].tolist() == [False, False, False]  # New Zealand: nothing lives there
    # A stricter threshold can only remove species.
    strict = checklists(range_model, POINTS, threshold=0.9)
    assert (strict <= got).all() and strict.sum() < got.sum()


def test_per_row_weeks_with_unknown_dates(range_model: SyntheticRangeModel) -> None:
    point = np.array([[40.0, -100.0]] * 3)
    weeks = np.array([26, 2, YEAR_ROUND])  # summer, winter, unknown date
    got = checklists(range_model, point, weeks)
    assert got[:, 1].tolist() == [True, False, True]
    for row, week in enumerate(weeks):
        single = checklists(range_model, point[:1], None if week == YEAR_ROUND else int(week))
        np.testing.assert_array_equal(got[row], single[0])
    # Chunking does not change anything.
    many = np.repeat(POINTS, 7, axis=0)
    np.testing.assert_array_equal(
        checklists(range_model, many, chunk=4), checklists(range_model, many)
    )


def test_checklist_input_errors(range_model: SyntheticRangeModel) -> None:
    with pytest.raises(InputError, match="week 49"):
        checklists(range_model, POINTS, weeks=49)
    with pytest.raises(InputError, match="one per point"):
        checklists(range_model, POINTS, weeks=[1, 2])
    with pytest.raises(InputError, match="threshold"):
        checklists(range_model, POINTS, threshold=0.0)
    with pytest.raises(InputError):
        checklists(range_model, np.array([[95.0, 0.0]]))


def test_dates_to_weeks() -> None:
    dates = [date(2024, 1, 1), datetime(2024, 6, 15, 5, 30), date(2023, 12, 31), None]
    assert dates_to_weeks(dates).tolist() == [1, 23, 48, YEAR_ROUND]


def _random_checklists(seed: int, rows: int = 400, species: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.0, 0.6, size=(rows, 1))
    return rng.random((rows, species)) < density


def test_drop_present_removes_half_of_each_rows_species() -> None:
    full = _random_checklists(0)
    dropped = drop_present(full, 0.5, rng=1)
    counts = full.sum(axis=1)
    assert not (dropped & ~full).any(), "dropping may never add a species"
    np.testing.assert_array_equal(dropped.sum(axis=1), np.ceil(counts / 2).astype(int))
    assert dropped[counts == 1].sum() == (counts == 1).sum(), "a lone species is kept"
    # Seeded: same seed, same draw; another seed, another draw.
    np.testing.assert_array_equal(drop_present(full, 0.5, rng=1), dropped)
    assert (drop_present(full, 0.5, rng=2) != dropped).any()
    assert drop_present(full, 1.0, rng=0).sum() == 0
    np.testing.assert_array_equal(drop_present(full, 0.0, rng=0), full)


def test_drop_present_picks_species_uniformly() -> None:
    row = np.zeros((1, 10), dtype=bool)
    row[0, [1, 3, 4, 8]] = True
    rng = np.random.default_rng(0)
    kept = np.array([drop_present(row, 0.5, rng)[0] for _ in range(4000)])
    rates = kept[:, [1, 3, 4, 8]].mean(axis=0)
    assert np.allclose(rates, 0.5, atol=0.04), rates
    assert kept[:, [0, 2, 5, 6, 7, 9]].sum() == 0


def test_keep_random_keeps_k_species() -> None:
    full = _random_checklists(3, species=60)
    kept = keep_random(full, 10, rng=0)
    counts = full.sum(axis=1)
    assert not (kept & ~full).any()
    np.testing.assert_array_equal(kept.sum(axis=1), np.minimum(counts, 10))
    np.testing.assert_array_equal(kept[counts <= 10], full[counts <= 10])
    assert (counts > 10).any()


def test_corrupt_by_name() -> None:
    full = _random_checklists(4)
    np.testing.assert_array_equal(corrupt(full, "full"), full)
    np.testing.assert_array_equal(corrupt(full, "drop50", 7), drop_present(full, 0.5, 7))
    np.testing.assert_array_equal(corrupt(full, "keep10", 7), keep_random(full, 10, 7))
    np.testing.assert_array_equal(corrupt(full.astype(int), "keep3", 7), keep_random(full, 3, 7))
    for bad in ("drop", "keepall", "drop150", "half"):
        with pytest.raises(InputError, match="checklist variant"):
            corrupt(full, bad)
    with pytest.raises(InputError, match="boolean or 0/1"):
        corrupt(np.full((2, 2), 0.5), "full")


def test_checklist_sizes() -> None:
    sizes = checklist_sizes(np.array([[1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=bool))
    assert sizes == {"mean": 5 / 3, "median": 2.0, "min": 0.0, "max": 3.0, "empty_fraction": 1 / 3}


def test_align_species_by_scientific_name() -> None:
    range_species = ["Turdus merula_Eurasian Blackbird", "Parus major", "Bufo bufo", "Apis x"]
    dataset_species = ["bufo  bufo", "Turdus Merula", "Gryllus campestris", "Parus major"]
    alignment = align_species(range_species, dataset_species)
    assert alignment.dataset_index.tolist() == [0, 1, 3]
    assert alignment.range_index.tolist() == [2, 0, 1]
    assert alignment.unmatched_dataset == ["Gryllus campestris"]
    assert alignment.unmatched_range == ["Apis x"]
    values = np.array([[0.1, 0.2, 0.3, 0.4]])
    np.testing.assert_allclose(alignment.to_dataset(values), [[0.3, 0.1, 0.0, 0.2]])
    assert normalise_species_name("  Turdus\u00a0merula_Amsel ") == "turdus merula"
    with pytest.raises(InputError, match="twice"):
        align_species(["A b", "a  B"], ["A b"])
    with pytest.raises(InputError, match="range-model columns"):
        alignment.to_dataset(np.zeros((1, 3)))
