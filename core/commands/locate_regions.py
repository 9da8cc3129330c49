"""The confidence region ``geoforensics locate`` prints (and writes with ``--geojson``).

Every locate method ends in probabilities over a gallery; :func:`region_output` turns them
into the 90 % region (:func:`geoforensics.core.geo.regions.confidence_regions`), calibrated
when a calibration for the setting exists (``MODEL/calibration.json`` for AG-CLIP, or
``--calibration FILE``, see ``geoforensics calibrate``), labelled *uncalibrated* otherwise. The
places it spans are the countries of its gallery points (offline gazetteer), by mass.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError

#: The level ``locate`` prints and writes.
LOCATE_LEVEL = 0.9
#: Gallery points of a region whose places are looked up (the most probable ones).
MAX_PLACE_POINTS = 400
#: Countries listed for a region.
MAX_COUNTRIES = 6


@dataclass
class RegionOutput:
    """What ``locate`` adds: ``payload`` for ``--json``, ``lines`` for text output."""

    payload: dict[str, Any]
    lines: list[str] = field(default_factory=list)


def add_region_options(parser: argparse.ArgumentParser) -> None:
    """``--geojson FILE`` and ``--calibration FILE``."""
    parser.add_argument(
        "--geojson", metavar="FILE",
        help="also write the 90%% confidence region as GeoJSON (a FeatureCollection)",
    )  # fmt: skip
    parser.add_argument(
        "--calibration", metavar="FILE.json",
        help="conformal calibration for the regions (geoforensics calibrate); AG-CLIP models "
        "use MODEL/calibration.json by default",
    )  # fmt: skip


def check_region_options(args: argparse.Namespace) -> None:
    """Refuse a ``--geojson`` path that is not .geojson/.json before any work is done."""
    path = getattr(args, "geojson", None)
    if path is not None and getattr(args, "method", None) == "taxabind":
        raise InputError("locate: --geojson is not available with --method taxabind")
    if path is not None and Path(path).suffix.lower() not in (".geojson", ".json"):
        raise InputError(f"--geojson {path}: give a path ending in .geojson or .json")


def _spanned_countries(region: Any, coords: np.ndarray) -> list[dict[str, Any]]:
    from geoforensics.core.geo.gazetteer import nearest_places

    order = np.argsort(-region.point_mass, kind="stable")[:MAX_PLACE_POINTS]
    points = region.points[order]
    masses = region.point_mass[order]
    totals: dict[str, float] = {}
    for place, mass in zip(nearest_places(coords[points]), masses, strict=True):
        name = place.country or place.country_code or "?"
        totals[name] = totals.get(name, 0.0) + float(mass)
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:MAX_COUNTRIES]
    return [{"country": name, "mass": mass} for name, mass in ranked]


def region_output(
    args: argparse.Namespace,
    probs: ArrayLike,
    coords: ArrayLike,
    kind: str,
    setting: dict[str, Any],
    default_calibration: str | Path | None = None,
) -> RegionOutput:
    """The 90 % region of ``probs`` over ``coords``, calibrated for (``kind``, ``setting``)
    from ``--calibration`` or ``default_calibration`` when such an entry exists; writes
    ``--geojson``."""
    from geoforensics.core.fileio import atomic_write
    from geoforensics.core.geo.calibration import find_calibration
    from geoforensics.core.geo.regions import confidence_regions

    points = np.asarray(coords, dtype=np.float64)
    source = getattr(args, "calibration", None) or default_calibration
    calibration, note = find_calibration(source, kind, setting)
    region = confidence_regions(probs, points, calibration, levels=(LOCATE_LEVEL,))[0]
    countries = _spanned_countries(region, points)
    payload = region.as_dict()
    payload["countries"] = countries
    if calibration is None:
        payload["note"] = note
    lines = [
        f"region {LOCATE_LEVEL:.0%} ({'calibrated' if region.calibrated else 'UNCALIBRATED'}): "
        f"{region.area_km2:,.0f} km², {len(region.cells)} H3 res-{region.res} cells in "
        f"{region.n_parts} part{'s' if region.n_parts != 1 else ''}, mass {region.mass:.3f}",
        "  spans: " + ", ".join(f"{c['country']} {c['mass']:.0%}" for c in countries),
        f"  {region.source if calibration is not None else note}",
    ]
    geojson = getattr(args, "geojson", None)
    if geojson is not None:
        feature = region.feature(countries=countries, method=kind)
        with atomic_write(geojson) as fh:
            json.dump({"type": "FeatureCollection", "features": [feature]}, fh)
        payload["geojson"] = str(geojson)
        lines.append(f"region -> {geojson}")
    return RegionOutput(payload, lines)


__all__ = [
    "LOCATE_LEVEL",
    "RegionOutput",
    "add_region_options",
    "check_region_options",
    "region_output",
]
