"""World maps as PNG figures, one home for the CLI, the check report and the bench.

Every figure is drawn on matplotlib's Agg canvas (no display, no global pyplot state) at
:data:`DPI` and written atomically (:func:`save_png`). A world map is a plain longitude /
latitude plot (:func:`set_world_extent`) over either the shipped Natural Earth country
outlines (``assets/outlines/countries.geojson``, :func:`draw_outlines`) or coastlines
contoured offline from the synthetic world's land grid (:func:`draw_coastlines`); no basemap
tiles and no network.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_path
from geoforensics.core.geo.distance import check_coords
from geoforensics.core.paths import assets_dir

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: Dots per inch of every figure: a size of (12.0, 6.4) inches is a 1200 × 640 PNG.
DPI = 100
#: Size (inches) of a full world map with a colour bar: the bench error map, ``locate --map``.
WORLD_FIGSIZE: tuple[float, float] = (12.0, 6.4)
#: The shipped country outlines, relative to the assets folder.
OUTLINES = "outlines/countries.geojson"


def world_figure(size: tuple[float, float] = WORLD_FIGSIZE) -> Figure:
    """A new figure of ``size`` inches at :data:`DPI` on its own Agg canvas (maps and charts)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, out: str | Path) -> Path:
    """Write ``figure`` as a PNG at :data:`DPI`, atomically; returns the path."""
    path = Path(out)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
    return path


def set_world_extent(axes: Axes) -> None:
    """The whole globe in plate carrée degrees: limits, equal aspect, 60°/30° ticks, labels."""
    axes.set_xlim(-180.0, 180.0)
    axes.set_ylim(-90.0, 90.0)
    axes.set_aspect("equal")
    axes.set_xticks(np.arange(-180, 181, 60))
    axes.set_yticks(np.arange(-90, 91, 30))
    axes.set_xlabel("longitude (°)")
    axes.set_ylabel("latitude (°)")


def draw_coastlines(axes: Axes) -> bool:
    """Contour the land grid (0.1°, block-averaged to 0.5°); False when it is unavailable."""
    try:
        from geoforensics.core.geo.land import GRID_DEG, load_land_grid

        land = load_land_grid().land_percent.astype(np.float32) / 100.0
    except Exception as exc:  # an optional layer: the map is still useful without it
        log.info("map: no coastlines (%s)", exc)
        return False
    block = 5
    rows, cols = land.shape[0] // block, land.shape[1] // block
    coarse = land[: rows * block, : cols * block].reshape(rows, block, cols, block).mean((1, 3))
    step = GRID_DEG * block
    lat = 90.0 - step * (np.arange(rows) + 0.5)
    lon = -180.0 + step * (np.arange(cols) + 0.5)
    axes.contour(lon, lat, coarse, levels=[0.5], colors="0.35", linewidths=0.5, zorder=1)
    return True


@functools.lru_cache(maxsize=1)
def country_rings() -> tuple[np.ndarray, ...]:
    """Every ring of the shipped country outlines as an (N, 2) lon/lat array (empty when the
    file is missing)."""
    path = assets_dir() / OUTLINES
    if not path.is_file():
        return ()
    data = json.loads(path.read_text(encoding="utf-8"))
    rings = []
    for feature in data.get("features", []):
        geometry = feature.get("geometry") or {}
        polygons = geometry.get("coordinates") or []
        if geometry.get("type") == "Polygon":
            polygons = [polygons]
        for polygon in polygons:
            for ring in polygon:
                array = np.asarray(ring, dtype=np.float64)
                if array.ndim == 2 and len(array) >= 2:
                    rings.append(array[:, :2])
    return tuple(rings)


def draw_outlines(axes: Axes) -> None:
    """Draw the country outlines; without the shipped file, the land grid's coastlines."""
    from matplotlib.collections import LineCollection

    rings = country_rings()
    if rings:
        axes.add_collection(LineCollection(list(rings), colors="0.45", linewidths=0.4, zorder=1))
        return
    log.info("map: %s missing; drawing coastlines from the land grid", OUTLINES)
    draw_coastlines(axes)


def write_score_map(
    coords: ArrayLike,
    probs: ArrayLike,
    top_coords: ArrayLike,
    out: str | Path,
    title: str = "Species-range geolocation",
) -> Path:
    """Write a PNG heatmap: gallery points coloured by probability (log scale) and the
    numbered top-k places; written atomically (matplotlib Agg, offline)."""
    from matplotlib.colors import LogNorm

    points = check_coords(coords, "map coordinates")
    values = np.asarray(probs, dtype=np.float64)
    if values.shape != (len(points),):
        raise InputError(f"map: {values.shape} probabilities for {len(points)} locations")
    top = check_coords(np.asarray(top_coords, dtype=np.float64).reshape(-1, 2), "map top-k")
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: the map is written as PNG; give a path ending in .png")
    peak = float(values.max()) if values.size and values.max() > 0 else 1.0
    floor = peak * 1e-4
    figure = world_figure(WORLD_FIGSIZE)
    axes = figure.add_subplot()
    axes.set_facecolor("white")
    draw_coastlines(axes)
    order = np.argsort(values, kind="stable")  # most probable drawn last (on top)
    size = float(np.clip(4.0e4 / max(len(points), 1), 1.0, 30.0))
    scatter = axes.scatter(
        points[order, 1], points[order, 0], c=np.clip(values[order], floor, None), s=size,
        cmap="magma_r", norm=LogNorm(vmin=floor, vmax=peak), linewidths=0, zorder=2,
    )  # fmt: skip
    for rank, (lat, lon) in enumerate(top, start=1):
        axes.scatter([lon], [lat], marker="*", s=220, c="#1f77b4", edgecolors="white", zorder=4)
        axes.annotate(
            str(rank), (lon, lat), xytext=(6, 6), textcoords="offset points", fontsize=10,
            fontweight="bold", color="#1f77b4", zorder=5,
        )  # fmt: skip
    colorbar = figure.colorbar(scatter, ax=axes, fraction=0.025, pad=0.01)
    colorbar.set_label("probability (log scale)")
    set_world_extent(axes)
    axes.set_title(title)
    figure.subplots_adjust(left=0.06, right=0.9, top=0.93, bottom=0.1)
    return save_png(figure, path)
