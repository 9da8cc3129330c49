"""GIS exports of checked clips: GeoJSON and KML of top places, GPS tags, claims and regions.

A clip's report folder holds ``regions.geojson`` (the 90 % region of every located modality,
written by :func:`~.report.write_report`); a batch gets

- ``places.geojson``: one Point per clip and modality (each located modality's top place, the
  container GPS tag, the claimed place) with the clip's file, verdict and the modality's label;
- ``regions.geojson``: the clips' 90 % regions as (Multi)Polygons;
- ``batch.kml``: both, as two folders of placemarks (points, then regions), for Google Earth
  and GIS tools that read KML 2.2.

GeoJSON follows RFC 7946 ([lon, lat], closed rings, counter-clockwise exteriors, split at the
antimeridian); KML coordinates are ``lon,lat`` tuples as KML 2.2 requires.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from geoforensics.core.fileio import atomic_write

REGIONS_GEOJSON = "regions.geojson"
PLACES_GEOJSON = "places.geojson"
BATCH_KML = "batch.kml"
KML_NS = "http://www.opengis.net/kml/2.2"

#: Point modalities of a clip, with their labels, besides the located ones.
_POINT_LABELS = {"metadata_gps": "container GPS tag", "claimed": "claimed place"}


def clip_region_features(report: Any, level: float) -> list[dict[str, Any]]:
    """GeoJSON Features of the ``level`` region of every located modality of a check report
    (:class:`~.results.CheckReport`)."""
    features = []
    for name, modality in report.modalities.items():
        for region in modality.regions:
            if abs(region.level - level) < 1e-9:
                features.append(
                    region.feature(
                        modality=name,
                        label=modality.label,
                        evidence=bool(modality.evidence),
                        area_km2=round(float(region.area_km2), 1),
                        mass=round(float(region.mass), 6),
                    )
                )
    return features


def feature_collection(features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection."""
    return {"type": "FeatureCollection", "features": [dict(f) for f in features]}


def write_geojson(path: str | Path, features: Sequence[Mapping[str, Any]]) -> Path:
    """Write a FeatureCollection atomically."""
    target = Path(path)
    with atomic_write(target) as fh:
        json.dump(feature_collection(features), fh)
        fh.write("\n")
    return target


def place_features(file: str, document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Point Features of one clip's report: each located modality's top place, its GPS tag and
    its claimed place."""
    verdict = (document.get("verdict") or {}).get("label")
    features = []
    for name, modality in (document.get("modalities") or {}).items():
        if not modality.get("available") or modality.get("point") is None:
            continue
        lat, lon = (float(v) for v in modality["point"])
        best = (modality.get("top") or [{}])[0]
        properties = {
            "file": file,
            "verdict": verdict,
            "modality": name,
            "label": modality.get("label") or _POINT_LABELS.get(name, name),
            "place": best.get("label"),
            "evidence": bool(modality.get("evidence", True)),
        }
        if modality.get("kind") == "distribution":
            properties["p_within_radius"] = best.get("region_probability")
            properties["radius_km"] = best.get("radius_km")
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
                "properties": properties,
            }
        )
    return features


def region_features(file: str, report_dir: Path, verdict: str | None) -> list[dict[str, Any]]:
    """The Features of a clip folder's ``regions.geojson``, tagged with its file and verdict
    (none when the file is missing: reports of format 3 have none)."""
    path = report_dir / REGIONS_GEOJSON
    try:
        collection = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    features = []
    for feature in collection.get("features") or []:
        properties = dict(feature.get("properties") or {})
        properties.update(file=file, verdict=verdict)
        features.append({**feature, "properties": properties})
    return features


# ----------------------------------------------------------------------------------- KML


def _coordinates(ring: Iterable[Sequence[float]]) -> str:
    return " ".join(f"{p[0]:.6f},{p[1]:.6f}" for p in ring)


def _kml_geometry(parent: ET.Element, geometry: Mapping[str, Any]) -> None:
    kind = geometry["type"]
    if kind == "Point":
        point = ET.SubElement(parent, f"{{{KML_NS}}}Point")
        ET.SubElement(point, f"{{{KML_NS}}}coordinates").text = _coordinates(
            [geometry["coordinates"]]
        )
        return
    polygons = [geometry["coordinates"]] if kind == "Polygon" else geometry["coordinates"]
    holder = parent
    if len(polygons) > 1:
        holder = ET.SubElement(parent, f"{{{KML_NS}}}MultiGeometry")
    for rings in polygons:
        polygon = ET.SubElement(holder, f"{{{KML_NS}}}Polygon")
        for k, ring in enumerate(rings):
            boundary = ET.SubElement(
                polygon, f"{{{KML_NS}}}{'outerBoundaryIs' if k == 0 else 'innerBoundaryIs'}"
            )
            linear = ET.SubElement(boundary, f"{{{KML_NS}}}LinearRing")
            ET.SubElement(linear, f"{{{KML_NS}}}coordinates").text = _coordinates(ring)


def _placemark(folder: ET.Element, feature: Mapping[str, Any]) -> None:
    properties = feature.get("properties") or {}
    mark = ET.SubElement(folder, f"{{{KML_NS}}}Placemark")
    name = f"{properties.get('file', '')}: {properties.get('label', '')}"
    if "level" in properties:
        name += f" {100 * float(properties['level']):g} % region"
    ET.SubElement(mark, f"{{{KML_NS}}}name").text = name
    extended = ET.SubElement(mark, f"{{{KML_NS}}}ExtendedData")
    for key, value in properties.items():
        if value is None or isinstance(value, (dict, list)):
            continue
        data = ET.SubElement(extended, f"{{{KML_NS}}}Data", name=str(key))
        ET.SubElement(data, f"{{{KML_NS}}}value").text = str(value)
    _kml_geometry(mark, feature["geometry"])


def kml_text(
    folders: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], name: str = "geoforensics"
) -> str:
    """A KML 2.2 document with one Folder of Placemarks per ``(folder name, features)``."""
    ET.register_namespace("", KML_NS)
    root = ET.Element(f"{{{KML_NS}}}kml")
    document = ET.SubElement(root, f"{{{KML_NS}}}Document")
    ET.SubElement(document, f"{{{KML_NS}}}name").text = name
    for title, features in folders:
        folder = ET.SubElement(document, f"{{{KML_NS}}}Folder")
        ET.SubElement(folder, f"{{{KML_NS}}}name").text = title
        for feature in features:
            _placemark(folder, feature)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_kml(
    path: str | Path, folders: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], name: str
) -> Path:
    """Write :func:`kml_text` atomically."""
    target = Path(path)
    with atomic_write(target) as fh:
        fh.write(kml_text(folders, name))
    return target


__all__ = [
    "BATCH_KML",
    "PLACES_GEOJSON",
    "REGIONS_GEOJSON",
    "clip_region_features",
    "feature_collection",
    "kml_text",
    "place_features",
    "region_features",
    "write_geojson",
    "write_kml",
]
