"""Geolocation metrics: errors, accuracies, invalid predictions as misses, seeds, CDF."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import MAX_DISTANCE_KM
from geoforensics.core.geo.metrics import (
    ACCURACY_THRESHOLDS_KM,
    GeoMetrics,
    aggregate_over_seeds,
    error_cdf,
    geolocation_errors,
    geolocation_metrics,
    summarize_errors,
)

KM_PER_DEG = 2 * math.pi * 6371.0 / 360  # 111.19 km


def _hand_made() -> tuple[np.ndarray, np.ndarray]:
    true = np.zeros((5, 2))
    pred = np.array(
        [
            [0.0, 0.0],  # exact: 0 km
            [0.1, 0.0],  # 11.12 km
            [1.0, 0.0],  # 111.19 km
            [np.nan, 0.0],  # invalid
            [95.0, 0.0],  # out of range: invalid
        ]
    )
    return pred, true


def test_thresholds_are_the_benchmarks() -> None:
    assert ACCURACY_THRESHOLDS_KM == (1.0, 25.0, 200.0, 750.0, 2500.0)


def test_errors_mark_invalid_predictions_infinite() -> None:
    pred, true = _hand_made()
    errors = geolocation_errors(pred, true)
    np.testing.assert_allclose(errors[:3], [0.0, 0.1 * KM_PER_DEG, KM_PER_DEG], rtol=1e-9)
    assert np.isinf(errors[3:]).all()


def test_invalid_predictions_count_as_misses() -> None:
    pred, true = _hand_made()
    m = geolocation_metrics(pred, true)
    assert m.count == 5
    assert m.n_invalid == 2
    assert m.accuracy == pytest.approx({1.0: 0.2, 25.0: 0.4, 200.0: 0.6, 750.0: 0.6, 2500.0: 0.6})
    assert m.median_km == pytest.approx(KM_PER_DEG)
    assert m.mean_km == pytest.approx((0.1 * KM_PER_DEG + KM_PER_DEG + 2 * MAX_DISTANCE_KM) / 5)
    assert m.mean_valid_km == pytest.approx((0.1 * KM_PER_DEG + KM_PER_DEG) / 3)


def test_all_invalid_scores_worst_case() -> None:
    m = geolocation_metrics(np.full((3, 2), np.nan), np.zeros((3, 2)))
    assert m.n_invalid == 3
    assert m.median_km == pytest.approx(MAX_DISTANCE_KM)
    assert all(v == 0.0 for v in m.accuracy.values())
    assert math.isnan(m.mean_valid_km)


def test_thresholds_are_inclusive_and_as_dict_names() -> None:
    m = summarize_errors([25.0, 25.000001, 0.5])
    assert m.accuracy[25.0] == pytest.approx(2 / 3)
    flat = m.as_dict()
    assert flat["acc@25km"] == pytest.approx(2 / 3)
    assert flat["acc@2500km"] == 1.0
    assert {"median_km", "mean_km", "count", "n_invalid"} <= set(flat)


def test_bad_targets_and_shapes_are_errors() -> None:
    with pytest.raises(InputError, match="targets: 1 true location"):
        geolocation_errors(np.zeros((2, 2)), np.array([[0.0, 0.0], [np.nan, 1.0]]))
    with pytest.raises(InputError, match="does not match"):
        geolocation_errors(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(InputError, match="no predictions"):
        summarize_errors([])


def test_aggregate_over_seeds_mean_and_sample_std() -> None:
    true = np.zeros((5, 2))
    seed_a = geolocation_metrics(np.array([[0.1, 0]] * 2 + [[10.0, 0]] * 3), true)
    seed_b = geolocation_metrics(np.array([[0.1, 0]] * 3 + [[10.0, 0]] * 2), true)
    agg = aggregate_over_seeds([seed_a, seed_b])
    assert agg["acc@25km"].mean == pytest.approx(0.5)
    assert agg["acc@25km"].std == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert agg["acc@25km"].n == 2
    single = aggregate_over_seeds([seed_a])
    assert single["median_km"].std == 0.0
    assert single["median_km"].mean == pytest.approx(10 * KM_PER_DEG)
    with pytest.raises(InputError):
        aggregate_over_seeds([])
    other = GeoMetrics(5, 0, 1.0, 1.0, 1.0, {1.0: 0.5})
    with pytest.raises(InputError, match="different metric sets"):
        aggregate_over_seeds([seed_a, other])


def test_error_cdf() -> None:
    errors, fraction = error_cdf([30.0, np.inf, 10.0, np.nan, 20.0])
    np.testing.assert_array_equal(errors[:3], [10.0, 20.0, 30.0])
    assert np.isinf(errors[3:]).all()
    np.testing.assert_allclose(fraction, [0.2, 0.4, 0.6, 0.8, 1.0])
