"""Benchmark figures: the data behind them (checked by hand) and the PNG files."""

from __future__ import annotations

import struct
from pathlib import Path

import h3
import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import MAX_DISTANCE_KM
from geoforensics.core.geo.worldmap import DPI, WORLD_FIGSIZE
from geoforensics.eval.plots import (
    CDF_FIGSIZE,
    cdf_curve,
    cell_polygons,
    per_cell_median_errors,
    plot_error_cdf,
    plot_error_map,
    pooled_errors,
)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_cdf_curve_by_hand() -> None:
    x, y = cdf_curve([5.0, 1.0, np.inf, 3.0])
    np.testing.assert_array_equal(x, [1.0, 3.0, 5.0])
    # the invalid prediction is left out of x: the curve stops at 3/4, not at 1
    np.testing.assert_allclose(y, [0.25, 0.5, 0.75])
    x, y = cdf_curve([np.nan, 2.0])
    np.testing.assert_array_equal(x, [2.0])
    np.testing.assert_allclose(y, [0.5])


def test_pooled_errors_cdf_is_the_mean_of_per_seed_cdfs() -> None:
    pooled = pooled_errors([[10.0, 1000.0], [100.0, 10000.0]])
    x, y = cdf_curve(pooled)
    np.testing.assert_array_equal(x, [10.0, 100.0, 1000.0, 10000.0])
    # fraction below 500 km: seed 0 -> 1/2, seed 1 -> 1/2 -> mean 1/2
    assert y[np.searchsorted(x, 500.0) - 1] == pytest.approx(0.5)
    with pytest.raises(InputError):
        pooled_errors([])


def test_per_cell_median_errors_by_hand() -> None:
    res = 1
    paris = h3.cell_to_latlng(h3.latlng_to_cell(48.85, 2.35, res))
    sydney = h3.cell_to_latlng(h3.latlng_to_cell(-33.87, 151.21, res))
    coords = np.array(
        [
            [paris[0], paris[1]],
            [paris[0] + 0.05, paris[1] - 0.05],
            [paris[0] - 0.05, paris[1] + 0.05],
            [sydney[0], sydney[1]],
            [sydney[0] + 0.05, sydney[1]],
        ]
    )
    errors = np.array([10.0, 20.0, 1000.0, 5.0, np.inf])
    data = per_cell_median_errors(coords, errors, res)
    by_cell = dict(zip(data.cells, zip(data.median_km, data.count, strict=True), strict=True))
    paris_cell = h3.latlng_to_cell(paris[0], paris[1], res)
    sydney_cell = h3.latlng_to_cell(sydney[0], sydney[1], res)
    assert set(by_cell) == {paris_cell, sydney_cell}
    assert by_cell[paris_cell] == (20.0, 3)
    # the invalid prediction counts as the largest possible error, as in the metrics
    assert by_cell[sydney_cell][0] == pytest.approx((5.0 + MAX_DISTANCE_KM) / 2)
    assert by_cell[sydney_cell][1] == 2
    assert data.cells == sorted(data.cells)


def test_per_cell_median_errors_checks_inputs() -> None:
    with pytest.raises(InputError, match="2 errors for 1"):
        per_cell_median_errors([[0.0, 0.0]], [1.0, 2.0], 1)
    with pytest.raises(InputError):
        per_cell_median_errors([[95.0, 0.0]], [1.0], 1)


def test_cells_across_the_antimeridian_are_drawn_unbroken() -> None:
    cell = h3.latlng_to_cell(0.0, 179.9, 1)
    polygons = cell_polygons(cell)
    assert len(polygons) == 2
    for polygon in polygons:
        assert np.ptp(polygon[:, 0]) < 10.0  # a small hexagon, not a band around the globe
    assert np.allclose(polygons[0][:, 0] - 360.0, polygons[1][:, 0])
    ordinary = cell_polygons(h3.latlng_to_cell(48.85, 2.35, 2))
    assert len(ordinary) == 1 and ordinary[0].shape[1] == 2


def test_cdf_png_has_the_expected_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    out = plot_error_cdf(
        {"AG-CLIP": rng.lognormal(5, 2, 300), "Naive": np.append(rng.uniform(0, 2e4, 99), np.inf)},
        tmp_path / "figs" / "cdf.png",
        caption="SYNTHETIC data",
    )
    assert out == tmp_path / "figs" / "cdf.png"
    assert _png_size(out) == (round(CDF_FIGSIZE[0] * DPI), round(CDF_FIGSIZE[1] * DPI))
    assert _png_size(out) == (900, 560)
    assert [p.name for p in out.parent.iterdir()] == ["cdf.png"]  # no temporary file left
    with pytest.raises(InputError):
        plot_error_cdf({}, tmp_path / "empty.png")


def test_error_map_png_and_the_data_it_draws(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    coords = np.column_stack([rng.uniform(-60, 70, 200), rng.uniform(-180, 180, 200)])
    coords[0] = [0.0, 179.95]  # a cell across the antimeridian
    errors = rng.lognormal(6, 2, 200)
    errors[1] = np.inf
    data = plot_error_map(coords, errors, tmp_path / "map.png", res=1, coastlines=False)
    assert _png_size(tmp_path / "map.png") == (
        round(WORLD_FIGSIZE[0] * DPI),
        round(WORLD_FIGSIZE[1] * DPI),
    )
    assert _png_size(tmp_path / "map.png") == (1200, 640)
    expected = per_cell_median_errors(coords, errors, 1)
    assert data.cells == expected.cells
    np.testing.assert_array_equal(data.median_km, expected.median_km)
    assert int(data.count.sum()) == 200
