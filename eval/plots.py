"""Benchmark figures (paper Fig. 3): the error CDF per method and a map of median error per cell.

Both figures are drawn with matplotlib's Agg canvas (no display, no global pyplot state) at a
fixed size, and written atomically. The data behind them comes from small helpers that tests
check by hand: :func:`cdf_curve` (the CDF arrays) and :func:`per_cell_median_errors` (the
per-cell medians). Invalid predictions (error ``inf``) count as the worst possible error,
π·R ≈ 20,015 km, exactly as in the metrics.

The map draws each H3 cell (resolution 1 or 2) holding test recordings as a filled hexagon
(``h3.cell_to_boundary``) on a plain longitude/latitude plot, coloured by the median error of
its recordings on a log scale, over coastlines contoured offline from the land grid that the
synthetic world uses (``global_land_mask``, cached); without that grid the map has no outlines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import MAX_DISTANCE_KM, check_coords
from geoforensics.core.geo.metrics import ACCURACY_THRESHOLDS_KM, error_cdf
from geoforensics.core.geo.worldmap import (
    WORLD_FIGSIZE,
    draw_coastlines,
    save_png,
    set_world_extent,
    world_figure,
)

#: x range of the CDF plot (km, log axis).
CDF_RANGE_KM: tuple[float, float] = (1.0, 20_000.0)
#: Names of the accuracy thresholds drawn as guides (the paper's scales).
THRESHOLD_NAMES: dict[float, str] = {
    1.0: "street",
    25.0: "city",
    200.0: "region",
    750.0: "country",
    2500.0: "continent",
}
#: Size of the CDF figure in inches at :data:`~geoforensics.core.geo.worldmap.DPI` (900 × 560
#: pixels); the error map is a world map of
#: :data:`~geoforensics.core.geo.worldmap.WORLD_FIGSIZE` (1200 × 640).
CDF_FIGSIZE: tuple[float, float] = (9.0, 5.6)


def _scored_errors(errors_km: ArrayLike) -> np.ndarray:
    """Errors with invalid (inf/NaN) ones set to the worst possible error, as in the metrics."""
    errors = np.asarray(errors_km, dtype=np.float64).reshape(-1)
    return np.where(np.isfinite(errors), errors, MAX_DISTANCE_KM)


# -------------------------------------------------------------------------------- CDF


def cdf_curve(errors_km: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the error CDF: sorted errors in km and the fraction of recordings with an
    error at most x. Invalid predictions are left out of x, so the curve stops below 1 by
    the invalid fraction (:func:`~geoforensics.core.geo.metrics.error_cdf`)."""
    x, y = error_cdf(errors_km)
    finite = np.isfinite(x)
    return x[finite], y[finite]


def plot_error_cdf(
    errors_by_method: Mapping[str, ArrayLike],
    out: str | Path,
    title: str = "CDF of geolocation error",
    caption: str | None = None,
) -> Path:
    """Write the CDF figure: x = error (km, log, 1 .. 20,000), y = fraction of recordings,
    one step curve per method, dotted guides at 1 / 25 / 200 / 750 / 2,500 km."""
    if not errors_by_method:
        raise InputError("CDF plot: no methods to draw")
    figure = world_figure(CDF_FIGSIZE)
    axes = figure.add_subplot()
    low, high = CDF_RANGE_KM
    for label, errors in errors_by_method.items():
        x, y = cdf_curve(errors)
        # Start the step at the left edge; errors below 1 km sit on the edge of the log axis.
        xs = np.concatenate([[low], np.clip(x, low, high)])
        ys = np.concatenate([[0.0], y])
        axes.step(xs, ys, where="post", label=label, linewidth=1.6)
    for threshold in ACCURACY_THRESHOLDS_KM:
        axes.axvline(threshold, color="0.45", linestyle=":", linewidth=1.0, zorder=0)
        name = THRESHOLD_NAMES.get(threshold, "")
        # the labels sit under the curves (zorder 1.5 < 2), so no curve is hidden
        axes.text(
            threshold * 1.07, 0.01, f"{threshold:,.0f} km {name}", rotation=90, va="bottom",
            ha="left", fontsize=8, color="0.3", zorder=1.5, bbox={"facecolor": "white",
            "edgecolor": "none", "alpha": 0.8, "pad": 1.0},
        )  # fmt: skip
    axes.set_xscale("log")
    axes.set_xlim(low, high)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("geolocation error (km)")
    axes.set_ylabel("fraction of recordings")
    axes.set_title(title)
    axes.grid(axis="y", color="0.9")
    axes.legend(loc="upper left", fontsize=8, framealpha=0.9)
    if caption:
        figure.text(0.01, 0.01, caption, fontsize=8, color="0.25")
    figure.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.14)
    return save_png(figure, out)


# ------------------------------------------------------------------------- error map


@dataclass(frozen=True)
class CellErrors:
    """Median error per H3 cell: ``cells`` (strings), ``median_km`` and ``count`` per cell."""

    res: int
    cells: list[str]
    median_km: np.ndarray
    count: np.ndarray


def per_cell_median_errors(true_coords: ArrayLike, errors_km: ArrayLike, res: int) -> CellErrors:
    """Group recordings by the H3 cell (resolution ``res``) of their TRUE location and take
    the median error of each cell (invalid predictions count as π·R km). Cells are sorted."""
    import h3

    coords = check_coords(true_coords, "true locations")
    errors = _scored_errors(errors_km)
    if len(errors) != len(coords):
        raise InputError(f"error map: {len(errors)} errors for {len(coords)} locations")
    if not 0 <= res <= 15:
        raise InputError(f"H3 resolution {res}: must be in 0..15")
    cell_of = np.array([h3.latlng_to_cell(float(a), float(b), res) for a, b in coords])
    cells, inverse = np.unique(cell_of, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=len(cells))
    groups = np.split(errors[order], np.cumsum(counts)[:-1])
    medians = np.array([np.median(group) for group in groups], dtype=np.float64)
    return CellErrors(res, [str(c) for c in cells], medians, counts)


def cell_polygons(cell: str) -> list[np.ndarray]:
    """(K, 2) lon/lat outlines of an H3 cell for a plain lon/lat plot; a cell crossing the
    antimeridian is returned twice, shifted by ±360°, so each copy is drawn unbroken."""
    import h3

    boundary = np.array(h3.cell_to_boundary(cell), dtype=np.float64)
    lon, lat = boundary[:, 1].copy(), boundary[:, 0]
    if lon.max() - lon.min() > 180.0:
        lon = np.where(lon < 0, lon + 360.0, lon)
        return [np.stack([lon, lat], axis=1), np.stack([lon - 360.0, lat], axis=1)]
    return [np.stack([lon, lat], axis=1)]


def plot_error_map(
    true_coords: ArrayLike,
    errors_km: ArrayLike,
    out: str | Path,
    res: int = 2,
    title: str = "Median geolocation error per H3 cell",
    caption: str | None = None,
    coastlines: bool = True,
) -> CellErrors:
    """Write the map of median error per H3 cell of the true location (log colour scale);
    returns the per-cell data it drew."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import LogNorm

    data = per_cell_median_errors(true_coords, errors_km, res)
    figure = world_figure(WORLD_FIGSIZE)
    axes = figure.add_subplot()
    axes.set_facecolor("white")
    if coastlines:
        draw_coastlines(axes)
    polygons: list[np.ndarray] = []
    values: list[float] = []
    for cell, median in zip(data.cells, data.median_km, strict=True):
        for polygon in cell_polygons(cell):
            polygons.append(polygon)
            values.append(max(float(median), 1.0))
    norm = LogNorm(vmin=1.0, vmax=MAX_DISTANCE_KM)
    collection = PolyCollection(
        polygons, array=np.array(values), cmap="plasma", norm=norm,
        edgecolors="0.2", linewidths=0.3, zorder=2,
    )  # fmt: skip
    axes.add_collection(collection)
    colorbar = figure.colorbar(collection, ax=axes, fraction=0.025, pad=0.01)
    colorbar.set_label("median error (km, log scale)")
    set_world_extent(axes)
    axes.set_title(f"{title} (H3 resolution {res}, {len(data.cells)} cells)")
    if caption:
        figure.text(0.01, 0.01, caption, fontsize=8, color="0.25")
    figure.subplots_adjust(left=0.06, right=0.97, top=0.93, bottom=0.1)
    save_png(figure, out)
    return data


def pooled_errors(per_seed_errors: Sequence[ArrayLike]) -> np.ndarray:
    """Errors of several seeds in one array: its CDF is the mean of the per-seed CDFs when
    every seed scores the same recordings."""
    if not per_seed_errors:
        raise InputError("no errors to pool")
    return np.concatenate([np.asarray(e, dtype=np.float64).reshape(-1) for e in per_seed_errors])
