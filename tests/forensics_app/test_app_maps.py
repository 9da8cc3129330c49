"""The app's offline pydeck maps: heat hexagons, markers, arcs, outlines, no basemap."""

from __future__ import annotations

import json

import h3
import numpy as np
import pytest

from geoforensics.forensics_app.maps import (
    MODALITY_COLORS,
    MapPoint,
    build_deck,
    country_outlines,
    heat_cells,
)


def test_heat_cells_sum_probabilities_and_colour_on_a_log_scale() -> None:
    coords = np.array([[10.0, 10.0], [10.01, 10.01], [-30.0, 140.0], [50.0, -100.0]])
    probs = np.array([0.5, 0.3, 0.19, 0.01])
    rows = heat_cells(coords, probs, res=2)
    assert [row["hex"] for row in rows] == [
        h3.latlng_to_cell(10.0, 10.0, 2),
        h3.latlng_to_cell(-30.0, 140.0, 2),
        h3.latlng_to_cell(50.0, -100.0, 2),
    ]
    assert [row["value"] for row in rows] == pytest.approx([0.8, 0.19, 0.01])
    alphas = [row["color"][3] for row in rows]
    assert alphas == sorted(alphas, reverse=True) and all(0 < a <= 255 for a in alphas)
    # below a thousandth of the peak a cell is dropped; max_cells keeps the largest
    faint = heat_cells(coords, np.array([0.5, 0.4999, 0.0001, 0.0]), res=2)
    assert len(faint) == 1
    assert len(heat_cells(coords, probs, res=2, max_cells=2)) == 2
    linear = heat_cells(
        coords, np.array([-0.2, 0.1, 0.4, 0.3]), res=2, reduce="mean", log_scale=False
    )
    assert [row["value"] for row in linear] == pytest.approx([0.4, 0.3, -0.05])


def test_deck_is_offline_with_every_layer() -> None:
    audio = MapPoint("audio", 5.0, 40.0, "somewhere", 1, 0.4)
    claimed = MapPoint("claimed", -1.28, 36.82, "Nairobi")
    heat = heat_cells(np.array([[5.0, 40.0]]), np.array([1.0]))
    deck = build_deck(
        heat, [audio, MapPoint("audio", 6.0, 41.0, "second", 2), claimed], [(audio, claimed)]
    )
    assert deck.map_provider is None
    data = json.loads(deck.to_json())
    assert "mapProvider" not in data and "mapStyle" not in data
    kinds = [layer["@@type"] for layer in data["layers"]]
    assert kinds == [
        "SolidPolygonLayer",
        "GeoJsonLayer",
        "H3HexagonLayer",
        "ArcLayer",
        "ScatterplotLayer",
    ]
    layers = {layer["@@type"]: layer for layer in data["layers"]}
    assert layers["GeoJsonLayer"]["data"] == country_outlines()
    (arc,) = layers["ArcLayer"]["data"]
    assert arc["source"] == [40.0, 5.0] and arc["target"] == [36.82, -1.28]
    assert arc["target_color"] == MODALITY_COLORS["claimed"]
    markers = layers["ScatterplotLayer"]["data"]
    assert [m["radius"] for m in markers] == [5, 9, 9]  # top-1 markers drawn last, larger
    assert markers[-1]["label"] == "Claimed place #1: Nairobi"
    # without data only the outlines are drawn
    empty = json.loads(build_deck().to_json())
    assert [layer["@@type"] for layer in empty["layers"]] == ["SolidPolygonLayer", "GeoJsonLayer"]
