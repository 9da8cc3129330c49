"""Geolocation metrics of the benchmark: median/mean error and accuracy at distance thresholds.

Invalid predictions (NaN, inf or out of range) are errors, never hits:

* :func:`geolocation_errors` gives them an error of ``+inf``, so they can be told apart from a
  valid but antipodal guess;
* the summary (:func:`summarize_errors`) counts them in the denominator of every accuracy as a
  miss, and scores them as the worst possible error, half the Earth's circumference
  (``MAX_DISTANCE_KM`` = π·R ≈ 20,015 km), in the median and the mean, so a method that emits
  invalid output can never look better for it; ``mean_valid_km`` (over valid predictions only)
  and ``n_invalid`` are reported beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import MAX_DISTANCE_KM, haversine_np, validate_coords

#: Accuracy thresholds of the benchmark (street, city, region, country, continent), in km.
ACCURACY_THRESHOLDS_KM: tuple[float, ...] = (1.0, 25.0, 200.0, 750.0, 2500.0)


def accuracy_key(threshold_km: float) -> str:
    """Name of an accuracy metric, e.g. ``acc@25km`` or ``acc@0.5km``."""
    return f"acc@{threshold_km:g}km"


@dataclass(frozen=True)
class GeoMetrics:
    """Summary of geolocation errors over ``count`` predictions (accuracies are fractions)."""

    count: int
    n_invalid: int
    median_km: float
    mean_km: float
    mean_valid_km: float
    accuracy: dict[float, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """Flat name -> value mapping (``median_km``, ``acc@25km``, ...), for tables and JSON."""
        out: dict[str, float] = {
            "count": float(self.count),
            "n_invalid": float(self.n_invalid),
            "median_km": self.median_km,
            "mean_km": self.mean_km,
            "mean_valid_km": self.mean_valid_km,
        }
        for threshold, value in self.accuracy.items():
            out[accuracy_key(threshold)] = value
        return out


def geolocation_errors(pred: ArrayLike, true: ArrayLike) -> np.ndarray:
    """Per-sample error in km between predicted and true (N, 2) lat/lon; ``inf`` if invalid.

    True coordinates must all be valid (filter unlocated samples before scoring).
    """
    pred_arr = np.asarray(pred, dtype=np.float64)
    true_arr = np.asarray(true, dtype=np.float64)
    if pred_arr.ndim != 2 or pred_arr.shape[1] != 2:
        raise InputError(f"predictions: expected shape (N, 2), got {pred_arr.shape}")
    if true_arr.shape != pred_arr.shape:
        raise InputError(
            f"targets: shape {true_arr.shape} does not match predictions {pred_arr.shape}"
        )
    true_valid = validate_coords(true_arr)
    if not true_valid.all():
        row = int(np.flatnonzero(~true_valid)[0])
        raise InputError(
            f"targets: {int((~true_valid).sum())} true location(s) are missing or invalid "
            f"(first at row {row}: {true_arr[row].tolist()}); drop them before scoring"
        )
    valid = validate_coords(pred_arr)
    errors = np.full(len(pred_arr), np.inf)
    errors[valid] = haversine_np(pred_arr[valid], true_arr[valid])
    return errors


def summarize_errors(
    errors_km: ArrayLike, thresholds_km: Sequence[float] = ACCURACY_THRESHOLDS_KM
) -> GeoMetrics:
    """Summarise per-sample errors (``inf``/NaN = invalid prediction) into :class:`GeoMetrics`."""
    errors = np.asarray(errors_km, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        raise InputError("metrics: no predictions to score")
    valid = np.isfinite(errors)
    scored = np.where(valid, errors, MAX_DISTANCE_KM)
    accuracy = {float(t): float(np.mean(valid & (errors <= t))) for t in thresholds_km}
    return GeoMetrics(
        count=int(errors.size),
        n_invalid=int((~valid).sum()),
        median_km=float(np.median(scored)),
        mean_km=float(np.mean(scored)),
        mean_valid_km=float(np.mean(errors[valid])) if valid.any() else float("nan"),
        accuracy=accuracy,
    )


def geolocation_metrics(
    pred: ArrayLike, true: ArrayLike, thresholds_km: Sequence[float] = ACCURACY_THRESHOLDS_KM
) -> GeoMetrics:
    """Errors and their summary for predicted vs true (N, 2) lat/lon in one call."""
    return summarize_errors(geolocation_errors(pred, true), thresholds_km)


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (ddof=1; 0 for a single run) of a metric over seeds."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g}"


def aggregate_over_seeds(results: Sequence[GeoMetrics]) -> dict[str, MeanStd]:
    """Mean ± std of every metric (``median_km``, ``acc@25km``, ...) over per-seed results."""
    if not results:
        raise InputError("aggregate_over_seeds: no results given")
    rows = [r.as_dict() for r in results]
    keys = list(rows[0])
    for row in rows[1:]:
        if list(row) != keys:
            raise InputError("aggregate_over_seeds: results have different metric sets")
    out: dict[str, MeanStd] = {}
    for key in keys:
        values = np.array([row[key] for row in rows], dtype=np.float64)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        out[key] = MeanStd(mean=float(np.mean(values)), std=std, n=len(values))
    return out


def error_cdf(errors_km: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Sorted errors and the fraction of samples with error <= each, for CDF plots.

    Invalid predictions (``inf``/NaN) sort last as ``inf``, so the finite part of the curve
    stops below 1 by exactly the invalid fraction.
    """
    errors = np.asarray(errors_km, dtype=np.float64).reshape(-1)
    errors = np.where(np.isnan(errors), np.inf, errors)
    sorted_errors = np.sort(errors)
    fraction = np.arange(1, sorted_errors.size + 1, dtype=np.float64) / max(sorted_errors.size, 1)
    return sorted_errors, fraction
