"""Report maps: a regular gallery is drawn as an image of its own cells (the probability lands
on the right pixels), an irregular one as markers."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import LogNorm

from geoforensics.core.forensics import maps


def _grid(step: float) -> np.ndarray:
    lat = np.arange(-90 + step / 2, 90, step)
    lon = np.arange(-180 + step / 2, 180, step)
    return np.stack(np.meshgrid(lat, lon, indexing="ij"), axis=-1).reshape(-1, 2)


def test_raster_step_is_the_spacing_of_a_regular_gallery_only() -> None:
    assert maps.raster_step_deg(_grid(1.0)) == 1.0
    assert maps.raster_step_deg(_grid(2.0)) == 2.0  # 90 x 180 points
    rng = np.random.default_rng(0)
    scattered = np.stack([rng.uniform(-60, 70, 20_000), rng.uniform(-180, 180, 20_000)], 1)
    assert maps.raster_step_deg(scattered) is None
    assert maps.raster_step_deg(_grid(1.0)[:4000]) is None  # small galleries stay markers


@pytest.mark.parametrize("shift", [0.0, 0.5, 0.25])  # cell centres, integer degrees, other
def test_raster_puts_each_value_in_its_own_cell(shift: float) -> None:
    coords = _grid(1.0) - shift
    values = np.full(len(coords), 1e-6)
    want = (40.5 - shift, -99.5 - shift)
    hot = int(np.flatnonzero((coords[:, 0] == want[0]) & (coords[:, 1] == want[1]))[0])
    values[hot] = 1.0
    _, axes = maps._base_axes("test")
    image = maps._draw_raster(axes, coords, values, LogNorm(1e-6, 1.0), 1.0)
    array = image.get_array()
    assert array.count() == len(coords)  # one cell per gallery point, none shared
    row, col = np.unravel_index(int(np.argmax(array)), array.shape)
    left, _, _, top = image.get_extent()
    assert left + (col + 0.5) == pytest.approx(want[1]) and top - (row + 0.5) == pytest.approx(
        want[0]
    )
    assert axes.get_xlim() == (-180.0, 180.0) and axes.get_ylim() == (-90.0, 90.0)
