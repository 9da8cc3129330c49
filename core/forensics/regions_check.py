"""Confidence regions in ``geoforensics check``.

Every located (distribution) modality gets its 50/80/90/95 % regions
(:func:`geoforensics.core.geo.regions.confidence_regions`) in ``details["regions"]`` (the
:class:`~geoforensics.core.geo.regions.Region` objects themselves in
:attr:`ModalityResult.regions`, for maps). AG-CLIP's are calibrated from the model folder's
``calibration.json`` when it has an entry for the gallery, the species modality's from a
species-range calibration file (``check --calibration FILE``, made by ``geoforensics
calibrate --species`` for the same range model, likelihood, week known or not, gallery and
priors); the others are labelled uncalibrated.

Only a *calibrated* region changes the verdict (:func:`apply_region_rule`): a claimed place or
GPS tag outside the modality's calibrated 95 % region is a mismatch, inside its calibrated
50 % region consistent, in between inconclusive. Without a calibration the fixed-radius rules
(and the species rule) stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import GeoforensicsError
from geoforensics.core.forensics.discrepancy import (
    CONSISTENT,
    INCONCLUSIVE,
    MISMATCH,
    MODALITY_LABELS,
    Discrepancy,
)
from geoforensics.core.forensics.results import ModalityResult
from geoforensics.core.geo.calibration import (
    CALIBRATION_FILE,
    agclip_setting,
    find_calibration,
    species_setting,
)
from geoforensics.core.geo.regions import confidence_regions
from geoforensics.core.species.checklists import YEAR_ROUND

#: Levels every located modality reports.
CHECK_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
#: The level printed by the CLI and drawn on the maps.
SHOWN_LEVEL = 0.9
#: Levels of the calibrated verdict rule: outside the first = mismatch, inside the second =
#: consistent.
MISMATCH_LEVEL = 0.95
CONSISTENT_LEVEL = 0.5
#: A region's compacted H3 cells go into report.json only up to this many.
MAX_JSON_CELLS = 64
#: Modalities with a distribution, and the calibration kind each would use.
REGION_KINDS: dict[str, str] = {
    "audio": "agclip",
    "audio_species": "species-range",
    "audio_fused": "fused",
    "frames": "geoclip-image",
    "text": "geoclip-text",
}
NO_CHECK_CALIBRATION = "uncalibrated: check has no calibration for this modality"


def format_area(km2: float) -> str:
    """``1.2 M km²`` from a million up, ``84,000 km²`` below."""
    if km2 >= 1e6:
        return f"{km2 / 1e6:.1f} M km²"
    return f"{km2:,.0f} km²"


def _level_key(level: float) -> str:
    return f"{100 * level:g} %"


def _region_dict(region: Any) -> dict[str, Any]:
    out = region.as_dict(include_cells=False)
    out["area_km2"] = round(float(out["area_km2"]), 1)
    out["mass"] = round(float(out["mass"]), 6)
    if out.get("threshold") is not None:
        out["threshold"] = round(float(out["threshold"]), 6)
    import h3

    compact = sorted(h3.compact_cells(list(region.cells)))
    if len(compact) <= MAX_JSON_CELLS:
        out["cells"] = compact
    return out


def attach_regions(
    modalities: Mapping[str, ModalityResult],
    coords: np.ndarray,
    gallery_name: str,
    model_dir: Path | None,
    species_calibration: Path | None = None,
) -> None:
    """Fill ``details["regions"]`` (and ``regions``) of every available modality with a
    distribution; AG-CLIP's calibrated from ``model_dir/calibration.json`` and the species
    modality's from ``species_calibration`` (``calibrate --species``) when they have an entry
    for the setting the check used."""

    for name, modality in modalities.items():
        if not modality.available or modality.probs is None or name not in REGION_KINDS:
            continue
        calibration, note = None, NO_CHECK_CALIBRATION
        if name == "audio":
            source = None if model_dir is None else model_dir / CALIBRATION_FILE
            try:
                calibration, note = find_calibration(
                    source, "agclip", agclip_setting(gallery_name, coords)
                )
            except GeoforensicsError as exc:
                calibration, note = None, f"uncalibrated: {exc}"
        elif name == "audio_species" and species_calibration is not None:
            d = modality.details
            setting = species_setting(
                str(d.get("range_model")),
                str(d.get("likelihood")),
                int(d.get("week", YEAR_ROUND)) != YEAR_ROUND,
                gallery_name,
                coords,
                bool(d.get("area_prior")),
                d.get("effort_prior"),
            )
            try:
                calibration, note = find_calibration(species_calibration, "species-range", setting)
            except GeoforensicsError as exc:
                calibration, note = None, f"uncalibrated: {exc}"
        regions = confidence_regions(modality.probs, coords, calibration, levels=CHECK_LEVELS)
        modality.regions = regions
        modality.details["regions"] = [_region_dict(r) for r in regions]
        if calibration is None:
            modality.details["regions_note"] = note


def region_at(modality: ModalityResult, level: float) -> Any | None:
    """The modality's region at ``level`` (None when it has none)."""
    for region in modality.regions:
        if abs(region.level - level) < 1e-9:
            return region
    return None


def region_line(modality: ModalityResult, level: float = SHOWN_LEVEL) -> str | None:
    """One line on the modality's ``level`` region (area, parts, calibrated or not)."""
    region = region_at(modality, level)
    if region is None:
        return None
    parts = region.n_parts
    return (
        f"{_level_key(level)} region {format_area(region.area_km2)} in {parts} "
        f"part{'s' if parts != 1 else ''}, "
        f"{'calibrated' if region.calibrated else 'UNCALIBRATED'}"
    )


def apply_region_rule(
    discrepancies: Sequence[Discrepancy], modalities: Mapping[str, ModalityResult]
) -> None:
    """Re-judge each pair of a modality with *calibrated* regions and the claimed place or GPS
    tag: outside its 95 % region = mismatch, inside its 50 % region = consistent, else
    inconclusive. Pairs without a calibrated region keep their status."""
    for d in discrepancies:
        if d.mass_of is None or d.mass_of not in modalities:
            continue
        other = d.second if d.first == d.mass_of else d.first
        if other not in ("claimed", "metadata_gps") or other not in modalities:
            continue
        place = modalities[other].point
        measured = modalities[d.mass_of]
        wide = region_at(measured, MISMATCH_LEVEL)
        narrow = region_at(measured, CONSISTENT_LEVEL)
        if place is None or wide is None or narrow is None:
            continue
        if not (wide.calibrated and narrow.calibrated):
            continue
        what = MODALITY_LABELS.get(other, other)
        if not wide.contains(*place):
            d.status = MISMATCH
            d.reason = (
                f"{what} outside the calibrated {_level_key(MISMATCH_LEVEL)} region "
                f"(area {format_area(wide.area_km2)})"
            )
        elif narrow.contains(*place):
            d.status = CONSISTENT
            d.reason = (
                f"{what} inside the calibrated {_level_key(CONSISTENT_LEVEL)} region "
                f"(area {format_area(narrow.area_km2)})"
            )
        else:
            d.status = INCONCLUSIVE
            d.reason = (
                f"{what} inside the calibrated {_level_key(MISMATCH_LEVEL)} region "
                f"(area {format_area(wide.area_km2)}) but outside its "
                f"{_level_key(CONSISTENT_LEVEL)} region (area {format_area(narrow.area_km2)})"
            )


__all__ = [
    "CHECK_LEVELS",
    "SHOWN_LEVEL",
    "apply_region_rule",
    "attach_regions",
    "format_area",
    "region_at",
    "region_line",
]
