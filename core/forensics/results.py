"""What ``geoforensics check`` finds: per-modality results, the timeline and the report.

:class:`CheckReport` is the in-memory report (arrays included: the gallery and each
distribution over it, for maps); :meth:`CheckReport.as_dict` is what ``report.json`` holds
(no arrays). The field list is in the README's ``check`` section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.forensics.discrepancy import MODALITY_LABELS, Discrepancy, Verdict

#: ``report.json`` format name and version.
REPORT_FORMAT = "geoforensics-check-report"
REPORT_VERSION = 4  # 4: regions.geojson and the species tables beside report.json


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass
class ModalityResult:
    """One modality of a clip: ``audio_species``, ``audio_fused``, ``audio`` (AG-CLIP),
    ``frames``, ``text``, ``metadata_gps``, ``claimed``.

    ``evidence`` False (with ``evidence_note`` saying why, e.g. an AG-CLIP model trained on a
    SYNTHETIC world applied to a real clip) keeps the modality out of the verdict: it is
    shown, labelled, and compared, but its pairs are not counted.

    ``available`` False comes with ``reason`` (what is missing and how to fix it). ``point``
    is the top-1 place (lat, lon); ``top`` the top-k places best first in the one place-row
    schema of :mod:`geoforensics.core.geo.gazetteer` (``latitude``, ``longitude``,
    ``region_probability``: mass within ``radius_km`` of the place, ``point_probability``,
    ``label``: the nearest gazetteer place, ...); ``probs`` the distribution over the
    report's gallery (None for point-only modalities: GPS tag, claimed place). ``source``
    says what the modality came from (``--text``, the container's ``title`` tag, ...);
    ``details`` holds the rest (frames used, text hint, resolved place...).
    """

    name: str
    available: bool
    reason: str | None = None
    point: tuple[float, float] | None = None
    top: list[dict[str, Any]] = field(default_factory=list)
    probs: np.ndarray | None = None
    source: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    evidence: bool = True
    evidence_note: str | None = None
    #: The confidence regions (``Region`` objects, 50/80/90/95 %) of a located modality;
    #: their summaries are in ``details["regions"]``.
    regions: list[Any] = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        """Human name of the modality."""
        return MODALITY_LABELS.get(self.name, self.name)

    @property
    def kind(self) -> str:
        """``distribution`` (scores the gallery) or ``point``."""
        return "point" if self.name in ("metadata_gps", "claimed") else "distribution"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (no arrays)."""
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "available": self.available,
            "reason": self.reason,
            "source": self.source,
            "point": None if self.point is None else [float(self.point[0]), float(self.point[1])],
            "top": [dict(row) for row in self.top],
            "details": dict(self.details),
            "evidence": self.evidence,
            "evidence_note": self.evidence_note,
        }


@dataclass
class Segment:
    """One entry of the clip's timeline: an audio segment (``kind`` ``audio`` for AG-CLIP's
    windows, ``species`` for BirdNET's, grouped by their centre into ``segment_s`` slices) or
    a keyframe (``frame``; ``start_s`` = ``end_s`` = its time). A species segment lists the
    ``species`` heard in it (scientific names) and is unavailable ("no species heard") when
    there are none.

    ``point`` is its top-1 place, ``probability`` the mass within the region radius of it,
    ``label`` the nearest named place. ``distance_km`` maps each reference modality
    (``claimed``, ``metadata_gps``, and for frames the clip-level ``audio``) to the distance
    of its point from this segment's point; ``mass_within_km`` the share of this segment's
    distribution within 750 km of it. ``available`` False (a frame without CLIP weights)
    comes with ``reason``.
    """

    kind: str
    index: int
    start_s: float
    end_s: float
    available: bool = True
    reason: str | None = None
    point: tuple[float, float] | None = None
    probability: float | None = None
    label: str | None = None
    n_windows: int = 0
    distance_km: dict[str, float] = field(default_factory=dict)
    mass_within_km: dict[str, float] = field(default_factory=dict)
    probs: np.ndarray | None = None
    image: np.ndarray | None = None
    species: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (no arrays)."""
        return {
            "kind": self.kind,
            "index": self.index,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "available": self.available,
            "reason": self.reason,
            "point": None if self.point is None else [float(self.point[0]), float(self.point[1])],
            "probability": _round(self.probability),
            "label": self.label,
            "n_windows": self.n_windows,
            "distance_km": {k: round(v, 1) for k, v in self.distance_km.items()},
            "mass_within_750km": {k: round(v, 6) for k, v in self.mass_within_km.items()},
            "species": list(self.species),
        }


@dataclass
class CheckReport:
    """The result of :func:`~geoforensics.core.forensics.run_check` on one clip.

    ``modalities`` in the order audio, frames, text, metadata_gps, claimed;
    ``gallery_coords`` (G, 2) the candidate locations every distribution is over;
    ``timeline`` the audio segments then the keyframes; ``discrepancies`` every compared pair;
    ``verdict`` the conclusion; ``species`` BirdNET's evidence (None when not run, with
    ``species_note`` saying why); ``inputs`` the SHA-256 of every input file; ``models``
    names, files and settings of the models; ``versions`` package versions; ``parameters``
    the options; ``fingerprint`` hashes the clip, options and models (``check FOLDER`` skips
    a clip whose report has the same one).
    """

    clip: Path
    modalities: dict[str, ModalityResult]
    gallery_name: str
    gallery_coords: np.ndarray
    timeline: list[Segment]
    discrepancies: list[Discrepancy]
    verdict: Verdict
    species: dict[str, Any] | None = None
    species_note: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    media: dict[str, Any] = field(default_factory=dict)
    date: str | None = None
    date_source: str | None = None
    week: int = -1
    fingerprint: str = ""
    created: str = ""
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    maps: dict[str, str] = field(default_factory=dict)

    def discrepancy(self, first: str, second: str) -> Discrepancy | None:
        """The compared pair of two modalities (either order), None when not compared."""
        for d in self.discrepancies:
            if {d.first, d.second} == {first, second}:
                return d
        return None

    def as_dict(self) -> dict[str, Any]:
        """What ``report.json`` holds."""
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "created": self.created,
            "clip": {"path": str(self.clip), "name": self.clip.name},
            "verdict": self.verdict.as_dict(),
            "notes": list(self.notes),
            "date": self.date,
            "date_source": self.date_source,
            "week": self.week,
            "gallery": {"name": self.gallery_name, "size": len(self.gallery_coords)},
            "modalities": {name: m.as_dict() for name, m in self.modalities.items()},
            "discrepancies": [d.as_dict() for d in self.discrepancies],
            "timeline": [s.as_dict() for s in self.timeline],
            "species": self.species,
            "species_note": self.species_note,
            "media": self.media,
            "inputs": self.inputs,
            "models": self.models,
            "versions": self.versions,
            "parameters": self.parameters,
            "fingerprint": self.fingerprint,
            "elapsed_s": round(self.elapsed_s, 2),
            "maps": dict(self.maps),
        }


__all__ = ["REPORT_FORMAT", "REPORT_VERSION", "CheckReport", "ModalityResult", "Segment"]
