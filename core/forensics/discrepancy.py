"""Discrepancy maths and the verdict of ``geoforensics check`` (pure numpy, no models).

Every modality of a clip gives either a **distribution** over the gallery of candidate
locations (audio via AG-CLIP; frames and text via CLIP + GeoCLIP) or a **point** (the
container's GPS tag, the claimed place). Two modalities are compared by

- the great-circle distance between their top-1 points (:func:`great_circle_km`), and
- the probability **mass** of a distribution within 200, 750 and 2,500 km of the other
  modality's point (:func:`mass_within`): "how much of what the audio says lies near the
  claimed place?". The prior over the gallery (uniform over the Earth's surface on a
  regular grid) would put ``baseline`` there (:func:`baseline_within`, reported beside the
  mass for scale).

Each compared pair gets a status (:func:`pair_status`):

- a distribution against a point: **consistent** when at least :data:`CONSISTENT_MIN_MASS`
  (25 %) of its mass lies within :data:`CONSISTENT_RADIUS_KM` (750 km) of the point, or at
  least :data:`CONSISTENT_WIDE_MIN_MASS` (50 %) within :data:`MISMATCH_RADIUS_KM` (2,500 km);
  **mismatch** when at most :data:`MISMATCH_MAX_MASS` (10 %) lies within 2,500 km of it *and*
  the distribution is concentrated (at least :data:`CONCENTRATED_MIN_MASS`, 50 %, within
  2,500 km of its own top-1 place, so that a diffuse "could be anywhere" prediction never
  accuses); **inconclusive** otherwise;
- two points (GPS tag against claimed place): **consistent** within 750 km, **mismatch**
  beyond 2,500 km, inconclusive in between.

Calibration (shipped demo checkpoint, tiny SYNTHETIC world, audio against its true place and
against another recording's place more than 5,000 km away): on the 52 test recordings the
true place is judged consistent for 40 %, a mismatch for 1.9 % (one recording); the far place
consistent for 0 %, a mismatch for 42 % (validation split: 39 % / 1.8 % and 0 % / 37 %).

When both modalities of a pair are distributions, the first in :data:`MODALITY_ORDER` (audio
before frames before text) is the distribution and the second's top-1 is the point.

The audio has up to three modalities (:data:`AUDIO_MODALITIES`): the species BirdNET hears
scored against a range model (its pairs with a place follow the species rule of
:mod:`.species_rule`, so that one stray species never decides), AG-CLIP, and their fusion. A
modality whose ``evidence`` is False (an AG-CLIP model trained on a SYNTHETIC world, or of
unknown training data, applied to a clip that is not itself SYNTHETIC) is compared and shown,
but its pairs do not count towards the verdict.

The verdict (:func:`decide_verdict`) over the counted pairs: **mismatch** when any pair is a
mismatch; **consistent** when every pair is consistent and an audio modality took part in at
least one; **inconclusive** otherwise (no audio, nothing to compare against, or a mix of
consistent and inconclusive pairs). Its ``reasons`` name each pair's figures;
``thresholds`` holds the constants above so that every report states the rules it was judged by.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import check_coords, haversine_np

#: Modality keys of a check report, in comparison order.
MODALITY_ORDER: tuple[str, ...] = (
    "audio_species",
    "audio_fused",
    "audio",
    "frames",
    "text",
    "metadata_gps",
    "claimed",
)
#: The modalities that locate the audio track (any of them lets a verdict be consistent).
AUDIO_MODALITIES: tuple[str, ...] = ("audio_species", "audio_fused", "audio")
#: Human names of the modalities.
MODALITY_LABELS: dict[str, str] = {
    "audio_species": "audio species (BirdNET x range)",
    "audio_fused": "audio fused (AG-CLIP x species)",
    "audio": "audio (AG-CLIP)",
    "frames": "frames (CLIP + GeoCLIP)",
    "text": "text hint (CLIP + GeoCLIP)",
    "metadata_gps": "container GPS tag",
    "claimed": "claimed place",
}
#: Radii of the mass-within-radius figures, km (the benchmark's region to continent scales).
RADII_KM: tuple[float, ...] = (200.0, 750.0, 2500.0)
#: A distribution agrees with a point when this much mass lies within CONSISTENT_RADIUS_KM,
#: or CONSISTENT_WIDE_MIN_MASS within MISMATCH_RADIUS_KM.
CONSISTENT_RADIUS_KM = 750.0
CONSISTENT_MIN_MASS = 0.25
CONSISTENT_WIDE_MIN_MASS = 0.5
#: A concentrated distribution contradicts a point when at most this much mass lies within
#: MISMATCH_RADIUS_KM of it.
MISMATCH_RADIUS_KM = 2500.0
MISMATCH_MAX_MASS = 0.1
#: "Concentrated": at least this much mass within MISMATCH_RADIUS_KM of its own top-1 place.
CONCENTRATED_MIN_MASS = 0.5
#: Two points agree within / contradict beyond these distances.
POINT_CONSISTENT_KM = 750.0
POINT_MISMATCH_KM = 2500.0

CONSISTENT = "consistent"
MISMATCH = "mismatch"
INCONCLUSIVE = "inconclusive"
STATUSES: tuple[str, ...] = (CONSISTENT, MISMATCH, INCONCLUSIVE)


def thresholds() -> dict[str, float]:
    """The verdict's constants (written into every report)."""
    return {
        "consistent_radius_km": CONSISTENT_RADIUS_KM,
        "consistent_min_mass": CONSISTENT_MIN_MASS,
        "consistent_wide_min_mass": CONSISTENT_WIDE_MIN_MASS,
        "mismatch_radius_km": MISMATCH_RADIUS_KM,
        "mismatch_max_mass": MISMATCH_MAX_MASS,
        "concentrated_min_mass": CONCENTRATED_MIN_MASS,
        "point_consistent_km": POINT_CONSISTENT_KM,
        "point_mismatch_km": POINT_MISMATCH_KM,
    }


def radius_key(radius_km: float) -> str:
    """``"750"`` for 750.0: the JSON key of a radius."""
    return f"{radius_km:g}"


# ------------------------------------------------------------------------------- maths


def great_circle_km(a: ArrayLike, b: ArrayLike) -> float:
    """Great-circle distance in km between two (lat, lon) points (R = 6,371 km)."""
    pa = np.asarray(a, dtype=np.float64).reshape(2)
    pb = np.asarray(b, dtype=np.float64).reshape(2)
    check_coords(np.stack([pa, pb]), "discrepancy points")
    return float(haversine_np(pa, pb))


def _checked_probs(probs: ArrayLike, coords: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    points = check_coords(coords, "gallery coordinates")
    values = np.asarray(probs, dtype=np.float64)
    if values.shape != (len(points),):
        raise InputError(
            f"mass within radius: {values.shape} probabilities for {len(points)} gallery points"
        )
    if not np.isfinite(values).all() or (values < 0).any():
        raise InputError("mass within radius: probabilities must be finite and >= 0")
    return values, points


def mass_within(
    probs: ArrayLike,
    coords: ArrayLike,
    point: ArrayLike,
    radii_km: Sequence[float] = RADII_KM,
) -> dict[float, float]:
    """Probability mass of ``probs`` (G,) over the gallery ``coords`` (G, 2) lying within each
    radius of ``point`` (great circle, boundary included). ``probs`` need not sum to 1: the
    result is divided by their total, so it is a fraction in [0, 1]."""
    values, points = _checked_probs(probs, coords)
    distances = distances_from(points, point)
    out = {}
    for radius in radii_km:
        if not (math.isfinite(radius) and radius >= 0):
            raise InputError(f"mass within radius: radius {radius} km must be a number >= 0")
        out[float(radius)] = mass_in(values, distances <= radius)
    return out


def distances_from(coords: ArrayLike, point: ArrayLike) -> np.ndarray:
    """(G,) great-circle km from ``point`` to each gallery point (``coords`` (G, 2))."""
    target = np.asarray(point, dtype=np.float64).reshape(1, 2)
    check_coords(target, "mass-within-radius point")
    return np.asarray(haversine_np(np.asarray(coords, dtype=np.float64), target))


def mass_in(probs: np.ndarray, inside: np.ndarray) -> float:
    """Share of ``probs`` (G,) on the gallery points where ``inside`` (G,) is True: what
    :func:`mass_within` gives when ``inside`` is ``distances_from(...) <= radius``, for many
    distributions against one point (a clip's timeline)."""
    values = np.asarray(probs, dtype=np.float64)
    total = float(values.sum())
    if not (math.isfinite(total) and total > 0):
        raise InputError("mass within radius: the probabilities sum to zero")
    return min(1.0, float(values[inside].sum()) / total)


def baseline_within(
    coords: ArrayLike,
    point: ArrayLike,
    radii_km: Sequence[float] = RADII_KM,
    weights: ArrayLike | None = None,
) -> dict[float, float]:
    """The mass the prior over the gallery puts within each radius of ``point`` (the chance
    level of :func:`mass_within`): the share of gallery points there, or of ``weights`` (G,)
    (e.g. each grid cell's area) when given."""
    points = check_coords(coords, "gallery coordinates")
    prior = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    return mass_within(prior, points, point, radii_km)


# ------------------------------------------------------------------------------ pairs


class ModalityLike(Protocol):
    """What the comparison needs of a modality (see ``ModalityResult``)."""

    name: str
    available: bool
    point: tuple[float, float] | None
    probs: np.ndarray | None


def counts(modality: object) -> bool:
    """Whether a modality may decide the verdict (``evidence`` True, the default)."""
    return bool(getattr(modality, "evidence", True))


@dataclass
class Discrepancy:
    """One compared pair of modalities.

    ``distance_km`` is the great-circle distance between their top-1 points. ``mass_of`` names
    the modality whose distribution was measured (None for two points); ``mass_within`` maps
    each radius (km) to the share of that distribution within it of the other modality's
    point, ``baseline_within`` the share a uniform distribution over the gallery would put
    there; ``concentration`` is the distribution's own mass within MISMATCH_RADIUS_KM of its
    top-1. ``status`` is consistent / mismatch / inconclusive, ``reason`` says why.
    """

    first: str
    second: str
    distance_km: float
    status: str
    reason: str
    mass_of: str | None = None
    mass_within: dict[float, float] | None = None
    baseline_within: dict[float, float] | None = None
    concentration: float | None = None

    @property
    def pair(self) -> tuple[str, str]:
        """``(first, second)``."""
        return self.first, self.second

    def involves(self, name: str) -> bool:
        """Whether ``name`` is one of the pair."""
        return name in (self.first, self.second)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (radii as string keys)."""

        def keyed(values: dict[float, float] | None) -> dict[str, float] | None:
            if values is None:
                return None
            return {radius_key(r): round(v, 6) for r, v in values.items()}

        return {
            "first": self.first,
            "second": self.second,
            "distance_km": round(self.distance_km, 1),
            "mass_of": self.mass_of,
            "mass_within_km": keyed(self.mass_within),
            "baseline_within_km": keyed(self.baseline_within),
            "concentration": None if self.concentration is None else round(self.concentration, 6),
            "status": self.status,
            "reason": self.reason,
        }


def _pct(value: float) -> str:
    return f"{100.0 * value:.1f}%"


def pair_status(
    mass: Mapping[float, float] | None, concentration: float | None, distance_km: float
) -> tuple[str, str]:
    """(status, reason) of one pair by the rules of the module docstring; ``mass`` None means
    two points compared by distance alone."""
    if mass is None:
        if distance_km <= POINT_CONSISTENT_KM:
            return CONSISTENT, f"{distance_km:,.0f} km apart (<= {POINT_CONSISTENT_KM:,.0f} km)"
        if distance_km > POINT_MISMATCH_KM:
            return MISMATCH, f"{distance_km:,.0f} km apart (> {POINT_MISMATCH_KM:,.0f} km)"
        return INCONCLUSIVE, (
            f"{distance_km:,.0f} km apart (between {POINT_CONSISTENT_KM:,.0f} and "
            f"{POINT_MISMATCH_KM:,.0f} km)"
        )
    near, far = mass[CONSISTENT_RADIUS_KM], mass[MISMATCH_RADIUS_KM]
    if near >= CONSISTENT_MIN_MASS:
        return CONSISTENT, (
            f"{_pct(near)} of the prediction within {CONSISTENT_RADIUS_KM:,.0f} km "
            f"(>= {_pct(CONSISTENT_MIN_MASS)})"
        )
    if far >= CONSISTENT_WIDE_MIN_MASS:
        return CONSISTENT, (
            f"{_pct(far)} of the prediction within {MISMATCH_RADIUS_KM:,.0f} km "
            f"(>= {_pct(CONSISTENT_WIDE_MIN_MASS)}; {_pct(near)} within "
            f"{CONSISTENT_RADIUS_KM:,.0f} km)"
        )
    concentrated = concentration is not None and concentration >= CONCENTRATED_MIN_MASS
    if far <= MISMATCH_MAX_MASS and concentrated:
        return MISMATCH, (
            f"only {_pct(far)} of the prediction within {MISMATCH_RADIUS_KM:,.0f} km "
            f"(<= {_pct(MISMATCH_MAX_MASS)}) while {_pct(concentration or 0.0)} lies within "
            f"{MISMATCH_RADIUS_KM:,.0f} km of its own top place"
        )
    if far <= MISMATCH_MAX_MASS:
        return INCONCLUSIVE, (
            f"{_pct(far)} within {MISMATCH_RADIUS_KM:,.0f} km, but the prediction is diffuse "
            f"({_pct(concentration or 0.0)} near its own top place < "
            f"{_pct(CONCENTRATED_MIN_MASS)})"
        )
    return INCONCLUSIVE, (
        f"{_pct(near)} within {CONSISTENT_RADIUS_KM:,.0f} km (< {_pct(CONSISTENT_MIN_MASS)}) "
        f"and {_pct(far)} within {MISMATCH_RADIUS_KM:,.0f} km (between "
        f"{_pct(MISMATCH_MAX_MASS)} and {_pct(CONSISTENT_WIDE_MIN_MASS)})"
    )


def _ordered(modalities: Mapping[str, ModalityLike]) -> list[ModalityLike]:
    known = [modalities[name] for name in MODALITY_ORDER if name in modalities]
    extra = [m for name, m in modalities.items() if name not in MODALITY_ORDER]
    return [m for m in [*known, *extra] if m.available and m.point is not None]


def compare_modalities(
    modalities: Mapping[str, ModalityLike],
    coords: ArrayLike,
    radii_km: Sequence[float] = RADII_KM,
    prior: ArrayLike | None = None,
) -> list[Discrepancy]:
    """Every pair of available modalities with a point, in :data:`MODALITY_ORDER`: distance,
    mass within ``radii_km`` (the verdict's 750 and 2,500 km are always added) and status.
    ``prior`` (G,) weights the gallery points for the chance-level ``baseline_within``
    (uniform over points when None)."""
    radii = sorted({float(r) for r in (*radii_km, CONSISTENT_RADIUS_KM, MISMATCH_RADIUS_KM)})
    points = check_coords(coords, "gallery coordinates")
    present = _ordered(modalities)
    concentration: dict[str, float] = {}
    for modality in present:
        if modality.probs is not None:
            own = mass_within(
                modality.probs, points, modality.point or (0.0, 0.0), (MISMATCH_RADIUS_KM,)
            )
            concentration[modality.name] = own[MISMATCH_RADIUS_KM]
    out = []
    for i, first in enumerate(present):
        for second in present[i + 1 :]:
            assert first.point is not None and second.point is not None
            distance = great_circle_km(first.point, second.point)
            measured = first if first.probs is not None else None
            if measured is None and second.probs is not None:
                measured = second
            mass = base = None
            conc = None
            if measured is not None:
                other = second if measured is first else first
                assert measured.probs is not None and other.point is not None
                mass = mass_within(measured.probs, points, other.point, radii)
                base = baseline_within(points, other.point, radii, prior)
                conc = concentration[measured.name]
            status, reason = pair_status(mass, conc, distance)
            out.append(
                Discrepancy(
                    first=first.name,
                    second=second.name,
                    distance_km=distance,
                    status=status,
                    reason=reason,
                    mass_of=None if measured is None else measured.name,
                    mass_within=mass,
                    baseline_within=base,
                    concentration=conc,
                )
            )
    return out


@dataclass
class Verdict:
    """The check's conclusion: ``label`` (consistent / mismatch / inconclusive), the
    ``reasons`` (one line per compared pair, mismatches first) and the ``thresholds`` used."""

    label: str
    reasons: list[str]
    thresholds: dict[str, float] = field(default_factory=thresholds)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "label": self.label,
            "reasons": list(self.reasons),
            "thresholds": dict(self.thresholds),
        }


def _label(name: str) -> str:
    return MODALITY_LABELS.get(name, name)


def decide_verdict(
    discrepancies: Sequence[Discrepancy], modalities: Mapping[str, ModalityLike]
) -> Verdict:
    """The verdict over all compared pairs (rules in the module docstring); pairs with a
    modality that is not evidence are listed last as "not counted"."""

    def why_not(d: Discrepancy) -> str | None:
        if d.first in AUDIO_MODALITIES and d.second in AUDIO_MODALITIES:
            return "two estimates of the same audio track"
        for name in (d.first, d.second):
            if name in modalities and not counts(modalities[name]):
                note = getattr(modalities[name], "evidence_note", None)
                return f"{_label(name)}: {note or 'not evidence for this clip'}"
        return None

    def counted(d: Discrepancy) -> bool:
        return why_not(d) is None

    audio = [
        name
        for name in AUDIO_MODALITIES
        if name in modalities
        and modalities[name].available
        and modalities[name].point is not None
        and counts(modalities[name])
    ]
    used = [d for d in discrepancies if counted(d)]
    lines = []
    order = {MISMATCH: 0, INCONCLUSIVE: 1, CONSISTENT: 2}
    for d in sorted(used, key=lambda d: order[d.status]):
        lines.append(f"{d.status}: {_label(d.first)} vs {_label(d.second)}: {d.reason}")
    for d in discrepancies:
        if not counted(d):
            lines.append(
                f"not counted ({d.status}): {_label(d.first)} vs {_label(d.second)}: {why_not(d)}"
            )
    statuses = {d.status for d in used}
    if MISMATCH in statuses:
        return Verdict(MISMATCH, lines)
    if not audio:
        return Verdict(INCONCLUSIVE, ["inconclusive: no audio evidence", *lines])
    if not any(d.involves(name) for d in used for name in audio):
        return Verdict(
            INCONCLUSIVE,
            [
                "inconclusive: nothing to compare the audio with (no claimed place, GPS tag, "
                "frames or text hint)",
                *lines,
            ],
        )
    if statuses == {CONSISTENT}:
        return Verdict(CONSISTENT, lines)
    return Verdict(INCONCLUSIVE, lines)


__all__ = [
    "AUDIO_MODALITIES",
    "CONCENTRATED_MIN_MASS",
    "CONSISTENT",
    "CONSISTENT_MIN_MASS",
    "CONSISTENT_RADIUS_KM",
    "CONSISTENT_WIDE_MIN_MASS",
    "INCONCLUSIVE",
    "MISMATCH",
    "MISMATCH_MAX_MASS",
    "MISMATCH_RADIUS_KM",
    "MODALITY_LABELS",
    "MODALITY_ORDER",
    "POINT_CONSISTENT_KM",
    "POINT_MISMATCH_KM",
    "RADII_KM",
    "Discrepancy",
    "Verdict",
    "baseline_within",
    "compare_modalities",
    "counts",
    "decide_verdict",
    "great_circle_km",
    "mass_within",
    "pair_status",
    "radius_key",
    "thresholds",
]
