"""pydeck maps for the app, drawn offline: no basemap tiles, Natural Earth country outlines.

Every map is a ``pydeck.Deck`` with ``map_provider=None`` (Streamlit's bundled deck.gl
renders it without fetching anything) and these layers, bottom to top:

- an ocean rectangle and the shipped country outlines (``assets/outlines/countries.geojson``,
  simplified Natural Earth admin-0) as a ``GeoJsonLayer``;
- a probability heatmap: gallery probabilities summed into H3 hexagons
  (:func:`geoforensics.core.multimodal.aggregate_to_cells`) as an ``H3HexagonLayer``;
- arcs between the modalities' top-1 points (``ArcLayer``);
- top-k markers of every modality and point-only modalities (GPS tag, claimed place) as a
  ``ScatterplotLayer``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydeck as pdk
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.multimodal import aggregate_to_cells
from geoforensics.core.paths import assets_dir

#: RGB colour of each modality's markers and arcs.
MODALITY_COLORS: dict[str, list[int]] = {
    "audio_species": [140, 86, 75],
    "audio_fused": [227, 119, 194],
    "audio": [230, 97, 1],
    "frames": [33, 102, 172],
    "text": [118, 42, 131],
    "metadata_gps": [27, 120, 55],
    "claimed": [202, 0, 32],
}
_DEFAULT_COLOR = [90, 90, 90]
#: The Streamlit markdown colour closest to each modality's colour (legends).
MARKDOWN_COLORS: dict[str, str] = {
    "audio_species": "gray",
    "audio_fused": "rainbow",
    "audio": "orange",
    "frames": "blue",
    "text": "violet",
    "metadata_gps": "green",
    "claimed": "red",
}
#: Human names of the modalities.
MODALITY_NAMES: dict[str, str] = {
    "audio_species": "Audio species (BirdNET x range)",
    "audio_fused": "Audio fused (AG-CLIP x species)",
    "audio": "Audio (AG-CLIP)",
    "frames": "Frames (GeoCLIP image)",
    "text": "Text hint (CLIP text)",
    "metadata_gps": "Container GPS tag",
    "claimed": "Claimed place",
}
#: Hexagons kept per heatmap (the most probable ones): keeps the page light.
MAX_CELLS = 2500
OCEAN = [214, 230, 242]
LAND = [247, 245, 240]
BORDER = [140, 140, 140]
#: Outline colour of a confidence region (RGBA).
REGION_COLOR = [31, 111, 178, 230]


@dataclass(frozen=True)
class MapPoint:
    """One marker: ``modality`` (colour), ``label`` (tooltip), ``rank`` (1 = top-1)."""

    modality: str
    latitude: float
    longitude: float
    label: str
    rank: int = 1
    probability: float | None = None


@functools.cache
def country_outlines() -> dict[str, Any]:
    """The shipped Natural Earth country outlines (GeoJSON FeatureCollection)."""
    path = assets_dir() / "outlines" / "countries.geojson"
    if not path.is_file():
        raise InputError(f"{path}: country outlines missing (run assets/outlines/make_outlines.py)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _ramp(fraction: np.ndarray) -> np.ndarray:
    """(N, 4) uint8 RGBA: pale yellow → red → dark purple, more opaque as it rises."""
    from matplotlib import colormaps

    f = np.clip(fraction, 0.0, 1.0)
    rgba = colormaps["magma_r"](0.08 + 0.8 * f)
    rgba[:, 3] = 0.35 + 0.55 * f
    return np.round(rgba * 255).astype(np.uint8)


def heat_cells(
    coords: ArrayLike,
    values: ArrayLike,
    res: int = 2,
    reduce: str = "sum",
    max_cells: int = MAX_CELLS,
    log_scale: bool = True,
) -> list[dict[str, Any]]:
    """H3HexagonLayer rows ``{hex, value, color, label}`` of gallery ``values`` aggregated
    into H3 cells at ``res``: the ``max_cells`` largest, coloured on a log scale over three
    decades below the maximum (probabilities) or linearly (scores)."""
    cells, totals = aggregate_to_cells(coords, values, res, reduce)
    cells, totals = cells[:max_cells], totals[:max_cells]
    if not cells:
        return []
    top = float(totals[0])
    if log_scale:
        floor = top * 1e-3
        keep = totals > floor
        cells = [c for c, k in zip(cells, keep, strict=True) if k]
        totals = totals[keep]
        fraction = np.log10(np.maximum(totals, floor) / floor) / 3.0
    else:
        low = float(totals.min())
        fraction = (totals - low) / (top - low) if top > low else np.ones_like(totals)
    colors = _ramp(fraction)
    return [
        {
            "hex": cell,
            "value": float(value),
            "color": color.tolist(),
            "label": f"{value:.3g}",
        }
        for cell, value, color in zip(cells, totals, colors, strict=True)
    ]


def _base_layers() -> list[pdk.Layer]:
    ocean = [{"polygon": [[-180, -85], [180, -85], [180, 85], [-180, 85]]}]
    return [
        pdk.Layer(
            "SolidPolygonLayer",
            data=ocean,
            get_polygon="polygon",
            get_fill_color=OCEAN,
            id="ocean",
        ),
        pdk.Layer(
            "GeoJsonLayer",
            data=country_outlines(),
            id="countries",
            stroked=True,
            filled=True,
            get_fill_color=LAND,
            get_line_color=BORDER,
            line_width_min_pixels=0.6,
            pickable=False,
        ),
    ]


def _view(points: Sequence[MapPoint]) -> pdk.ViewState:
    """A world view, centred on the markers' mean longitude when there are any."""
    if points:
        lats = np.array([p.latitude for p in points])
        lons = np.radians([p.longitude for p in points])
        lon = float(np.degrees(np.arctan2(np.sin(lons).mean(), np.cos(lons).mean())))
        lat = float(np.clip(lats.mean(), -40, 50))
    else:
        lat, lon = 20.0, 0.0
    return pdk.ViewState(latitude=lat, longitude=lon, zoom=0.9, min_zoom=0, max_zoom=8)


def build_deck(
    heat: Sequence[Mapping[str, Any]] = (),
    points: Sequence[MapPoint] = (),
    arcs: Sequence[tuple[MapPoint, MapPoint]] = (),
    height: int = 480,
    region: Mapping[str, Any] | None = None,
) -> pdk.Deck:
    """The offline map: outlines, the heat hexagons, the outline of a confidence region
    (``region``: a GeoJSON FeatureCollection), arcs and markers (see the module doc)."""
    layers = _base_layers()
    if heat:
        layers.append(
            pdk.Layer(
                "H3HexagonLayer",
                data=list(heat),
                id="heat",
                get_hexagon="hex",
                get_fill_color="color",
                stroked=False,
                filled=True,
                extruded=False,
                pickable=True,
            )
        )
    if region is not None:
        layers.append(
            pdk.Layer(
                "GeoJsonLayer",
                data=dict(region),
                id="region",
                stroked=True,
                filled=False,
                get_line_color=REGION_COLOR,
                line_width_min_pixels=2,
                pickable=False,
            )
        )
    if arcs:
        rows = []
        for a, b in arcs:
            rows.append(
                {
                    "source": [a.longitude, a.latitude],
                    "target": [b.longitude, b.latitude],
                    "source_color": MODALITY_COLORS.get(a.modality, _DEFAULT_COLOR),
                    "target_color": MODALITY_COLORS.get(b.modality, _DEFAULT_COLOR),
                    "label": f"{MODALITY_NAMES.get(a.modality, a.modality)} ↔ "
                    f"{MODALITY_NAMES.get(b.modality, b.modality)}",
                }
            )
        layers.append(
            pdk.Layer(
                "ArcLayer",
                data=rows,
                id="arcs",
                get_source_position="source",
                get_target_position="target",
                get_source_color="source_color",
                get_target_color="target_color",
                get_width=3,
                great_circle=True,
                pickable=True,
            )
        )
    if points:
        rows = [
            {
                "position": [p.longitude, p.latitude],
                "color": [*MODALITY_COLORS.get(p.modality, _DEFAULT_COLOR), 235],
                "radius": 9 if p.rank == 1 else 5,
                "label": f"{MODALITY_NAMES.get(p.modality, p.modality)} #{p.rank}: {p.label}",
            }
            for p in sorted(points, key=lambda p: -p.rank)
        ]
        layers.append(
            pdk.Layer(
                "ScatterplotLayer",
                data=rows,
                id="markers",
                get_position="position",
                get_fill_color="color",
                get_radius="radius",
                radius_units="pixels",
                stroked=True,
                get_line_color=[255, 255, 255],
                line_width_min_pixels=1.5,
                pickable=True,
            )
        )
    return pdk.Deck(
        layers=layers,
        initial_view_state=_view(points),
        map_provider=None,
        map_style=None,
        views=[pdk.View(type="MapView", controller=True, repeat=True)],
        tooltip={"text": "{label}"},
        height=height,
    )
