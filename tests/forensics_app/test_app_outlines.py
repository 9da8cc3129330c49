"""The shipped country outlines (Natural Earth admin-0, simplified) and the script that made
them, run here on a small shapefile written by the test."""

from __future__ import annotations

import json
import runpy
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from repo_paths import REPO

from geoforensics.core.paths import assets_dir

SCRIPT = REPO / "assets" / "outlines" / "make_outlines.py"


@pytest.fixture(scope="module")
def make() -> dict[str, Any]:
    return runpy.run_path(str(SCRIPT), run_name="make_outlines")


@pytest.fixture(scope="module")
def outlines() -> dict[str, Any]:
    path = assets_dir() / "outlines" / "countries.geojson"
    assert path.stat().st_size < 1_500_000
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _country(outlines: dict[str, Any], iso: str) -> dict[str, Any]:
    (feature,) = [f for f in outlines["features"] if f["properties"]["iso_a2"] == iso]
    return feature


def test_shipped_outlines_are_small_valid_geojson(outlines: dict[str, Any]) -> None:
    assert outlines["type"] == "FeatureCollection"
    assert outlines["source"].startswith("Natural Earth 1:10m admin-0 countries (public domain)")
    features = outlines["features"]
    assert len(features) >= 200
    codes = [f["properties"]["iso_a2"] for f in features if f["properties"]["iso_a2"]]
    assert len(codes) == len(set(codes)) >= 195
    # ISO_A2_EH: France and Norway have codes (ISO_A2 is -99 for them)
    assert _country(outlines, "FR")["properties"]["name"] == "France"
    assert _country(outlines, "NO")["properties"]["name"] == "Norway"
    for feature in features:
        assert feature["geometry"]["type"] == "MultiPolygon"
        for polygon in feature["geometry"]["coordinates"]:
            for ring in polygon:
                points = np.asarray(ring)
                assert len(points) >= 4 and points[0].tolist() == points[-1].tolist()
                assert np.all(np.abs(points[:, 0]) <= 180) and np.all(np.abs(points[:, 1]) <= 90)


def test_outlines_put_cities_in_their_countries(
    outlines: dict[str, Any], make: dict[str, Any]
) -> None:
    def inside(iso: str, lat: float, lon: float) -> bool:
        polygons = _country(outlines, iso)["geometry"]["coordinates"]
        point = np.array([lon, lat])
        for outer, *holes in polygons:
            if make["point_in_ring"](point, np.asarray(outer)) and not any(
                make["point_in_ring"](point, np.asarray(h)) for h in holes
            ):
                return True
        return False

    assert inside("KE", -1.286, 36.817)  # Nairobi
    assert inside("US", 42.635, -83.287)  # the demo's Michigan site
    assert inside("FR", 48.857, 2.352) and not inside("FR", 51.507, -0.128)
    assert inside("LS", -29.31, 27.48)  # Maseru, in Lesotho
    assert not inside("ZA", -29.31, 27.48)  # Lesotho is a hole in South Africa
    # GeoJSON winding (RFC 7946): outer rings counter-clockwise
    outer = np.asarray(_country(outlines, "KE")["geometry"]["coordinates"][0][0])
    assert make["signed_area"](outer) > 0


def test_douglas_peucker_keeps_corners_and_drops_wiggles(make: dict[str, Any]) -> None:
    line = np.array([[0, 0], [1, 0.01], [2, -0.01], [3, 0], [3, 1], [3.01, 2], [3, 3]], float)
    kept = make["douglas_peucker"](line, 0.1)
    assert kept.tolist() == [[0, 0], [3, 0], [3, 3]]
    assert make["douglas_peucker"](line, 0.0).tolist() == line.tolist()


def _shapefile(tmp_path: Path) -> Path:
    """A two-record polygon shapefile (a square with a square hole; a tiny islet) + DBF."""
    outer = [(0, 0), (0, 10), (10, 10), (10, 0), (0, 0)]  # clockwise: an outer ring
    hole = [(4, 4), (6, 4), (6, 6), (4, 6), (4, 4)]  # counter-clockwise: a hole
    wiggly = [(20, 0), (20, 5), (20.001, 5.5), (20, 6), (26, 6), (26, 0), (20, 0)]
    islet = [(30, 0), (30, 0.01), (30.01, 0.01), (30.01, 0), (30, 0)]

    def record(number: int, rings: list[list[tuple[float, float]]]) -> bytes:
        points = [p for ring in rings for p in ring]
        parts = np.cumsum([0, *(len(r) for r in rings[:-1])]).astype("<i4")
        content = struct.pack("<i4d2i", 5, 0, 0, 0, 0, len(rings), len(points))
        content += parts.tobytes() + np.asarray(points, "<f8").tobytes()
        return struct.pack(">2i", number, len(content) // 2) + content

    body = record(1, [outer, hole]) + record(2, [wiggly, islet])
    shp = struct.pack(">i", 9994) + b"\0" * 96 + body
    fields = [("NAME", 12), ("ISO_A2", 3), ("ISO_A2_EH", 3), ("CONTINENT", 8)]
    header = struct.pack("<B3xIHH20x", 3, 2, 32 + 32 * len(fields) + 1, 1 + 26)
    for name, length in fields:
        header += name.encode().ljust(11, b"\0") + b"C" + b"\0" * 4 + bytes([length]) + b"\0" * 15
    header += b"\x0d"
    rows = [("Squareland", "SQ", "SQ", "Atlantis"), ("Wiggle", "-99", "WG", "Atlantis")]
    dbf = header + b"".join(
        b" " + b"".join(v.encode().ljust(n) for v, (_f, n) in zip(row, fields, strict=True))
        for row in rows
    )
    archive = tmp_path / "ne_test.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ne_test.shp", shp)
        zf.writestr("ne_test.dbf", dbf)
        zf.writestr("ne_test.VERSION.txt", "9.9.9\n")
    return archive


def test_make_outlines_builds_simplified_geojson(tmp_path: Path, make: dict[str, Any]) -> None:
    archive = _shapefile(tmp_path)
    out = tmp_path / "countries.geojson"
    assert make["main"]([str(archive), "--out", str(out), "--min-area", "0.5"]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["source"].endswith("version 9.9.9")
    square, wiggle = data["features"]
    assert square["properties"] == {"iso_a2": "SQ", "name": "Squareland", "continent": "Atlantis"}
    assert wiggle["properties"]["iso_a2"] == "WG"  # ISO_A2_EH, not ISO_A2's -99
    ((outer, hole),) = square["geometry"]["coordinates"]
    assert outer == [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]  # counter-clockwise now
    assert hole == [[4, 4], [4, 6], [6, 6], [6, 4], [4, 4]]  # clockwise now
    # the wiggle within 0.1 degrees is gone; the islet under 0.5 square degrees is dropped
    ((ring,),) = wiggle["geometry"]["coordinates"]
    assert [20.0, 5.5] not in ring and len(ring) == 5
