"""PNG figures of a check report: per-modality heatmaps with arcs, and the timeline chart.

Drawn offline as world maps (:mod:`geoforensics.core.geo.worldmap`: Agg canvas, plain
longitude/latitude plot over the shipped Natural Earth country outlines, or coastlines
contoured from the land grid without that file), with no basemap tiles and no network, and
written atomically. Each map shows one distribution over the gallery (log colour scale), every
modality's top-1 place as a coloured marker, and great-circle arcs from the mapped modality's
place to the others, labelled with their distance.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.forensics.discrepancy import MODALITY_LABELS, MODALITY_ORDER
from geoforensics.core.geo.worldmap import draw_outlines, save_png, set_world_extent, world_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from geoforensics.core.forensics.results import CheckReport, ModalityResult

#: Marker colour and shape of each modality.
STYLE: dict[str, tuple[str, str]] = {
    "audio_species": ("#8c564b", "P"),
    "audio_fused": ("#e377c2", "X"),
    "audio": ("#d62728", "o"),
    "frames": ("#1f77b4", "s"),
    "text": ("#9467bd", "D"),
    "metadata_gps": ("#2ca02c", "^"),
    "claimed": ("#ff7f0e", "*"),
}
#: Size (inches) of a report map (1000 × 560 pixels) and of the timeline chart (1000 × 360).
REPORT_MAP_FIGSIZE: tuple[float, float] = (10.0, 5.6)
TIMELINE_FIGSIZE: tuple[float, float] = (10.0, 3.6)
MAP_CMAP = "magma_r"
#: Regular galleries larger than this are drawn as an image (:func:`raster_step_deg`).
RASTER_ABOVE = 5_000
RASTER_MIN_DEG = 0.1


def great_circle_path(a: ArrayLike, b: ArrayLike, n: int = 96) -> list[np.ndarray]:
    """Points along the great circle from ``a`` to ``b`` (lat, lon degrees), split into pieces
    where the path crosses the antimeridian, so that each piece plots as a plain line."""
    pa = np.radians(np.asarray(a, dtype=np.float64).reshape(2))
    pb = np.radians(np.asarray(b, dtype=np.float64).reshape(2))

    def xyz(p: np.ndarray) -> np.ndarray:
        return np.array([np.cos(p[0]) * np.cos(p[1]), np.cos(p[0]) * np.sin(p[1]), np.sin(p[0])])

    u, v = xyz(pa), xyz(pb)
    omega = float(np.arccos(np.clip(u @ v, -1.0, 1.0)))
    t = np.linspace(0.0, 1.0, n)[:, None]
    if omega < 1e-9:
        points = np.repeat(u[None], n, axis=0)
    else:
        points = (np.sin((1 - t) * omega) * u + np.sin(t * omega) * v) / np.sin(omega)
    lat = np.degrees(np.arcsin(np.clip(points[:, 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
    path = np.stack([lat, lon], axis=1)
    jumps = np.flatnonzero(np.abs(np.diff(lon)) > 180.0) + 1
    return [piece for piece in np.split(path, jumps) if len(piece)]


def _base_axes(title: str, size: tuple[float, float] = REPORT_MAP_FIGSIZE) -> tuple[Figure, Axes]:
    figure = world_figure(size)
    axes = figure.add_subplot()
    axes.set_facecolor("white")
    draw_outlines(axes)
    set_world_extent(axes)
    axes.set_title(title, fontsize=11)
    return figure, axes


def raster_step_deg(coords: np.ndarray) -> float | None:
    """Cell size of the map image of a regular lat/lon gallery (``land-*``, ``grid-*``): the
    spacing most points have to their nearest neighbour; None for an irregular gallery
    (GeoCLIP's, training places), which is drawn as markers."""
    if len(coords) <= RASTER_ABOVE:
        return None
    points = np.ascontiguousarray(coords, dtype=np.float64)
    return _step_of(points.tobytes())


@functools.lru_cache(maxsize=4)
def _step_of(coords_bytes: bytes) -> float | None:
    from scipy.spatial import cKDTree

    lonlat = np.frombuffer(coords_bytes, dtype=np.float64).reshape(-1, 2)[:, ::-1]
    distances, _ = cKDTree(lonlat).query(lonlat, k=2)
    nearest = distances[:, 1]
    step = float(np.median(nearest))
    if step < RASTER_MIN_DEG or np.mean(np.abs(nearest - step) <= 0.01 * step) < 0.5:
        return None
    return step


def _draw_raster(axes: Axes, coords: np.ndarray, values: np.ndarray, norm: Any, step: float) -> Any:
    """A regular gallery drawn as an image: the largest value per cell of the gallery's
    spacing (drawing 25,000 markers costs ~0.4 s per map; the image a few ms)."""
    # the lattice: where its points sit within a cell (centres of land-1deg cells: 0.5)
    lon0 = -180.0 + float(np.median(np.mod(coords[:, 1] + 180.0, step)))
    lat0 = 90.0 - float(np.median(np.mod(90.0 - coords[:, 0], step)))
    rows = int(np.floor((lat0 + 90.0) / step)) + 1
    cols = int(np.floor((180.0 - lon0) / step)) + 1
    r = np.clip(np.rint((lat0 - coords[:, 0]) / step).astype(np.int64), 0, rows - 1)
    c = np.clip(np.rint((coords[:, 1] - lon0) / step).astype(np.int64), 0, cols - 1)
    grid = np.full(rows * cols, np.nan)
    order = np.argsort(values, kind="stable")  # the largest value of a cell is written last
    grid[(r * cols + c)[order]] = values[order]
    image = np.ma.masked_invalid(grid.reshape(rows, cols))
    top, left = lat0 + step / 2.0, lon0 - step / 2.0
    extent = (left, left + cols * step, top - rows * step, top)
    drawn = axes.imshow(image, extent=extent, origin="upper", cmap=MAP_CMAP, norm=norm,
                        interpolation="nearest", zorder=0.5)  # fmt: skip
    axes.set_xlim(-180.0, 180.0)
    axes.set_ylim(-90.0, 90.0)
    return drawn


def region_rings(modality: ModalityResult) -> list[np.ndarray]:
    """The rings (each (N, 2) [lon, lat]) of the modality's 90 % region, [] without one."""
    from geoforensics.core.forensics.regions_check import SHOWN_LEVEL, region_at

    region = region_at(modality, SHOWN_LEVEL)
    if region is None:
        return []
    geometry = region.geojson()
    polygons = (
        [geometry["coordinates"]]
        if geometry["type"] == "Polygon"
        else list(geometry.get("coordinates", []))
    )
    return [np.asarray(ring, dtype=np.float64) for polygon in polygons for ring in polygon]


def _draw_region(axes: Axes, modality: ModalityResult) -> None:
    """Outline the modality's 90 % region (dashed when uncalibrated)."""
    from matplotlib.collections import LineCollection

    from geoforensics.core.forensics.regions_check import SHOWN_LEVEL, region_at

    rings = region_rings(modality)
    if not rings:
        return
    region = region_at(modality, SHOWN_LEVEL)
    calibrated = bool(region is not None and region.calibrated)
    label = f"{100 * SHOWN_LEVEL:g} % region ({'calibrated' if calibrated else 'uncalibrated'})"
    lines = LineCollection(
        [ring for ring in rings if len(ring) >= 2],
        colors="#1f6fb2",
        linewidths=1.1,
        linestyles="solid" if calibrated else "dashed",
        zorder=3,
        label=label,
    )
    axes.add_collection(lines)


def write_modality_map(report: CheckReport, name: str, out: str | Path) -> Path:
    """The map of modality ``name``: its distribution (when it has one), every modality's
    top-1 place, and arcs from ``name``'s place to the others with their distances."""
    from matplotlib.colors import LogNorm

    from geoforensics.core.forensics.discrepancy import great_circle_km

    modality = report.modalities[name]
    title = f"{MODALITY_LABELS.get(name, name)}: {report.clip.name}"
    figure, axes = _base_axes(title)
    coords = report.gallery_coords
    if modality.probs is not None:
        values = np.asarray(modality.probs, dtype=np.float64)
        peak = float(values.max()) if values.size and values.max() > 0 else 1.0
        floor = peak * 1e-3
        norm = LogNorm(vmin=floor, vmax=peak)
        step = raster_step_deg(coords)
        if step is not None:
            scatter = _draw_raster(axes, coords, np.clip(values, floor, None), norm, step)
        else:
            order = np.argsort(values, kind="stable")
            size = float(np.clip(6.0e4 / max(len(coords), 1), 1.5, 30.0))
            scatter = axes.scatter(
                coords[order, 1],
                coords[order, 0],
                c=np.clip(values[order], floor, None),
                s=size,
                cmap=MAP_CMAP,
                norm=norm,
                linewidths=0,
                zorder=2,
            )
        bar = figure.colorbar(scatter, ax=axes, fraction=0.022, pad=0.01)
        bar.set_label("probability (log scale)")
        bar.ax.minorticks_off()  # the decades are enough; 30+ minor ticks cost ~0.1 s a map
    _draw_region(axes, modality)
    here = modality.point if modality.available else None
    for other in MODALITY_ORDER:
        result = report.modalities.get(other)
        if result is None or not result.available or result.point is None:
            continue
        colour, marker = STYLE.get(other, ("black", "o"))
        if here is not None and other != name:
            for piece in great_circle_path(here, result.point):
                axes.plot(
                    piece[:, 1], piece[:, 0], color=colour, linewidth=1.4, alpha=0.85, zorder=3
                )
            km = great_circle_km(here, result.point)
            axes.annotate(
                f"{km:,.0f} km",
                (result.point[1], result.point[0]),
                xytext=(6, -12),
                textcoords="offset points",
                fontsize=8,
                color=colour,
                zorder=5,
            )
        axes.scatter(
            [result.point[1]],
            [result.point[0]],
            marker=marker,
            s=160 if marker == "*" else 80,
            c=colour,
            edgecolors="black",
            linewidths=0.6,
            zorder=4,
            label=MODALITY_LABELS.get(other, other),
        )
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower left", fontsize=8, framealpha=0.85)
    figure.subplots_adjust(left=0.07, right=0.92, top=0.93, bottom=0.1)
    return save_png(figure, out)


def write_timeline_chart(report: CheckReport, out: str | Path) -> Path | None:
    """Distance of each timeline entry's top place from the claimed place and the GPS tag
    over the clip (audio segments as steps, keyframes as dots); None when nothing to plot."""
    references = [
        n
        for n in ("claimed", "metadata_gps", "audio_species", "audio")
        if any(n in s.distance_km for s in report.timeline)
    ]
    if not references:
        return None
    figure = world_figure(TIMELINE_FIGSIZE)
    axes = figure.add_subplot()
    for reference in references:
        colour, _ = STYLE.get(reference, ("black", "o"))
        audio = [
            s
            for s in report.timeline
            if s.kind in ("audio", "species") and reference in s.distance_km
        ]
        for segment in audio:
            axes.plot(
                [segment.start_s, segment.end_s],
                [segment.distance_km[reference]] * 2,
                color=colour,
                linewidth=3 if segment.kind == "audio" else 5,
                alpha=1.0 if segment.kind == "audio" else 0.55,
                solid_capstyle="butt",
            )
        frames = [s for s in report.timeline if s.kind == "frame" and reference in s.distance_km]
        if frames:
            axes.scatter(
                [s.start_s for s in frames],
                [s.distance_km[reference] for s in frames],
                marker="s",
                s=36,
                color=colour,
                edgecolors="black",
                linewidths=0.5,
            )
        axes.plot(
            [],
            [],
            color=colour,
            linewidth=3,
            label=f"from {MODALITY_LABELS.get(reference, reference)}",
        )
    axes.set_xlabel(
        "time in clip (s): bars = audio segments (thin: AG-CLIP, wide: species), "
        "squares = keyframes"
    )
    axes.set_ylabel("distance of top place (km)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper right")
    axes.set_title(f"Timeline: {report.clip.name}", fontsize=11)
    figure.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.16)
    return save_png(figure, out)


__all__ = [
    "STYLE",
    "great_circle_path",
    "region_rings",
    "write_modality_map",
    "write_timeline_chart",
]
