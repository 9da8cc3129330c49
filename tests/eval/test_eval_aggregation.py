"""Spatiotemporal aggregation (Table 4): grouping, embedding averages, retrieval by group."""

from __future__ import annotations

from datetime import datetime

import h3
import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo.metrics import geolocation_metrics
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.eval.aggregation import (
    Grouping,
    aggregate_and_retrieve,
    average_embeddings,
    group_ids,
    period_key,
)

DIM = 16


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _toy_gallery(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """n gallery places far apart (centres of distinct res-5 cells) with random embeddings."""
    lat = rng.uniform(-50, 60, n)
    lon = rng.uniform(-170, 170, n)
    centres = np.array(
        [h3.cell_to_latlng(h3.latlng_to_cell(a, b, 5)) for a, b in zip(lat, lon, strict=True)]
    )
    return centres, _unit(rng.normal(size=(n, DIM))).astype(np.float32)


def test_identical_embeddings_are_unchanged_by_grouping() -> None:
    rng = np.random.default_rng(0)
    coords, emb = _toy_gallery(rng)
    index = RetrievalIndex(coords, emb)
    # 3 recordings at each of 5 places, all with that place's exact embedding (scaled).
    places = np.repeat(np.arange(5), 3)
    true = coords[places] + 0.001  # same res-5 cell as the gallery point
    recording_emb = emb[places] * rng.uniform(0.5, 2.0, (len(places), 1))
    alone = index.search(recording_emb, 1).coords[:, 0]
    grouped = aggregate_and_retrieve(recording_emb, true, index, Grouping(5))
    np.testing.assert_array_equal(grouped.predictions, alone)
    np.testing.assert_array_equal(grouped.predictions, coords[places])
    assert grouped.n_groups == 5 and grouped.group_sizes.tolist() == [3] * 5


def test_grouping_noisy_embeddings_of_one_place_improves_error() -> None:
    rng = np.random.default_rng(1)
    coords, emb = _toy_gallery(rng)
    index = RetrievalIndex(coords, emb)
    places = np.repeat(np.arange(6), 20)  # 20 recordings at each of 6 places
    true = coords[places]
    noisy = emb[places] + rng.normal(scale=0.45, size=(len(places), DIM))
    alone = geolocation_metrics(index.search(noisy, 1).coords[:, 0], true)
    grouped = aggregate_and_retrieve(noisy, true, index, Grouping(5))
    together = geolocation_metrics(grouped.predictions, true)
    assert alone.accuracy[1.0] < 0.8  # the noise defeats many single recordings ...
    assert together.accuracy[1.0] == 1.0  # ... but not the average of 20
    assert together.median_km <= alone.median_km and together.mean_km < alone.mean_km
    # metrics are per recording: every recording of a group gets the group's prediction
    assert len(grouped.predictions) == len(places)


def test_group_ids_by_cell_and_calendar_period() -> None:
    base = h3.cell_to_latlng(h3.latlng_to_cell(42.0, -72.0, 6))
    near = (base[0] + 0.0005, base[1])  # ~55 m away: same res-6 cell
    far = (10.0, 20.0)
    coords = np.array([base, near, far, base, base, base])
    dates = [
        datetime(2021, 5, 3),
        "2021-05-28T06:00:00",
        datetime(2021, 5, 3),
        datetime(2021, 6, 1),
        None,
        datetime(2022, 5, 3),
    ]
    assert group_ids(coords, Grouping(6)).tolist() == [0, 0, 1, 0, 0, 0]
    assert group_ids(coords, Grouping(6, "year"), dates).tolist() == [0, 0, 1, 0, 2, 3]
    assert group_ids(coords, Grouping(6, "month"), dates).tolist() == [0, 0, 1, 2, 3, 4]
    # ISO weeks: 3 May and 28 May 2021 are weeks 18 and 21
    assert group_ids(coords, Grouping(6, "week"), dates).tolist() == [0, 1, 2, 3, 4, 5]


def test_undated_recordings_stay_alone_under_a_temporal_grouping() -> None:
    coords = np.array([[42.0, -72.0]] * 3)
    ids = group_ids(coords, Grouping(5, "month"), [None, None, "not a date"])
    assert len(set(ids.tolist())) == 3
    assert group_ids(coords, Grouping(5), None).tolist() == [0, 0, 0]


def test_period_keys() -> None:
    assert period_key("2021-01-03", "week") == "2020-W53"  # ISO week of the previous year
    assert period_key(datetime(2021, 12, 31, 23, 59), "month") == "2021-12"
    assert period_key("2019-07-04 05:30", "year") == "2019"
    assert period_key(None, "year") is None
    with pytest.raises(InputError):
        period_key("2021-01-01", "season")


def test_average_embeddings_weighs_recordings_equally_when_normalising() -> None:
    emb = np.array([[10.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    groups = np.array([0, 0, 1])
    normalised = average_embeddings(emb, groups)
    np.testing.assert_allclose(normalised[0], [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)
    np.testing.assert_allclose(normalised[1], [0.6, 0.8], rtol=1e-6)
    raw = average_embeddings(emb, groups, normalize_inputs=False)
    np.testing.assert_allclose(raw[0], np.array([10.0, 1.0]) / np.hypot(10.0, 1.0), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(raw, axis=1), 1.0, rtol=1e-6)


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(InputError, match="resolution"):
        Grouping(16)
    with pytest.raises(InputError, match="time grouping"):
        Grouping(5, "day")
    with pytest.raises(InputError, match="one date per recording"):
        group_ids(np.zeros((2, 2)), Grouping(5, "week"), ["2020-01-01"])
    with pytest.raises(InputError, match="NaN"):
        average_embeddings(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(InputError, match="do not match"):
        average_embeddings(np.ones((3, 2)), np.array([0, 1]))
    assert Grouping(6, "week").name == "h3r6-week" and Grouping(5).label == "H3 res 5 cell"
