"""Species evidence for a recording: who was heard, when, and do they live at the claimed place?

For an analyst checking a claim ("recorded in Paris in June"), :func:`species_evidence` turns
BirdNET's detections (:mod:`.detections`: species, time spans, confidence) into one finding
per species and, given a place and week, adds each species' range probability there from a
range model (:mod:`.ranges`: BirdNET's, SINR or a synthetic world's):

- species are matched to the range model by scientific name (:func:`~.names.match_species`;
  BirdNET common names too); names with no partner are listed as unmatched, never dropped
  silently;
- BirdNET's non-species sound classes (``Siren``, ``Human vocal``, ``Engine``, ``Noise``...,
  :data:`SOUND_CLASSES`) are listed as heard but get no range check (note "not a species");
- a species whose range probability at the place is below :data:`UNEXPECTED_BELOW` (0.03,
  BirdNET-Analyzer's own location-filter threshold: below it BirdNET drops a species from its
  list for that place and week) is flagged **unexpected here**; with a date, a species
  expected there at some time of year but not in that week is flagged **out of season**.

The claimed place comes as a :class:`~geoforensics.core.geo.gazetteer.ResolvedPlace`
(:func:`~geoforensics.core.geo.gazetteer.resolve_place`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.geo.gazetteer import ResolvedPlace
from geoforensics.core.species.checklists import YEAR_ROUND, RangeModel
from geoforensics.core.species.detections import DEFAULT_MIN_CONFIDENCE, Detection, detect_species
from geoforensics.core.species.likelihood import DEFAULT_MIN_PROB, weights_from_probs
from geoforensics.core.species.names import match_species

if TYPE_CHECKING:
    from geoforensics.core.species.birdnet_audio import BirdNETWindows

#: Range probability below which a heard species is "unexpected here" (BirdNET-Analyzer's
#: location-filter threshold, ``LOCATION_FILTER_THRESHOLD`` = 0.03).
UNEXPECTED_BELOW = 0.03
#: Notes of a finding.
NOTE_EXPECTED = "expected"
NOTE_UNEXPECTED = "unexpected here"
NOTE_OUT_OF_SEASON = "out of season"
NOTE_UNMATCHED = "not in range model"
NOTE_SOUND_CLASS = "not a species"
#: BirdNET V2.4 output classes that are sound sources, not wild species: no range check.
SOUND_CLASSES: frozenset[str] = frozenset(
    {
        "Dog",
        "Engine",
        "Environmental",
        "Fireworks",
        "Gun",
        "Human non-vocal",
        "Human vocal",
        "Human whistle",
        "Noise",
        "Power tools",
        "Siren",
    }
)


def is_sound_class(name: str) -> bool:
    """Whether a BirdNET label is a non-species sound class (``Siren``, ``Human vocal``,
    ``Noise``...): listed in :data:`SOUND_CLASSES`, or a one-word name (no binomial)."""
    text = " ".join(str(name).split())
    return text in SOUND_CLASSES or len(text.split()) < 2


# ---------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class SpeciesFinding:
    """One species heard in the recording, with its detections and range evidence.

    ``detections`` are its time spans (best first); ``max_conf`` the highest window
    probability, ``mean_conf`` the mean over its detected windows. With a place:
    ``range_species`` is the range model's name of it (None: unmatched), ``range_probability``
    its presence there in the week (year-round without a date), ``range_probability_year``
    the year-round value (with a date), ``note`` one of expected / unexpected here / out of
    season / not in range model / not a species (a BirdNET sound class).
    """

    scientific: str
    common: str
    birdnet_index: int
    max_conf: float
    mean_conf: float
    n_windows: int
    detections: list[Detection]
    range_species: str | None = None
    range_probability: float | None = None
    range_probability_year: float | None = None
    note: str | None = None

    @property
    def unexpected(self) -> bool:
        """Whether the range model says the species should not be at the place (in the week)."""
        return self.note in (NOTE_UNEXPECTED, NOTE_OUT_OF_SEASON)

    def spans(self) -> str:
        """``"0.0-3.0, 9.0-15.0"``: the detected spans in time order, seconds."""
        ordered = sorted(self.detections, key=lambda d: d.start_s)
        return ", ".join(f"{d.start_s:.1f}-{d.end_s:.1f}" for d in ordered)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (detections in time order)."""
        ordered = sorted(self.detections, key=lambda d: d.start_s)
        return {
            "scientific": self.scientific,
            "common": self.common,
            "birdnet_index": self.birdnet_index,
            "max_conf": round(self.max_conf, 6),
            "mean_conf": round(self.mean_conf, 6),
            "n_windows": self.n_windows,
            "detections": [
                {
                    "start_s": round(d.start_s, 3),
                    "end_s": round(d.end_s, 3),
                    "max_conf": round(d.max_conf, 6),
                    "mean_conf": round(d.mean_conf, 6),
                    "n_windows": d.n_windows,
                }
                for d in ordered
            ],
            "range_species": self.range_species,
            "range_probability": _rounded(self.range_probability),
            "range_probability_year_round": _rounded(self.range_probability_year),
            "unexpected": self.unexpected if self.note is not None else None,
            "note": self.note,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


@dataclass(frozen=True)
class SpeciesEvidence:
    """Findings for one recording (see :func:`species_evidence`)."""

    findings: list[SpeciesFinding]
    threshold: float
    place: ResolvedPlace | None = None
    week: int = YEAR_ROUND
    range_model: str | None = None
    unexpected_below: float = UNEXPECTED_BELOW
    unmatched: list[str] = field(default_factory=list)
    n_species_total: int = 0

    @property
    def n_unexpected(self) -> int:
        """How many listed species the range model does not expect at the place."""
        return sum(f.unexpected for f in self.findings)


def _group(detections: Sequence[Detection]) -> list[SpeciesFinding]:
    by_species: dict[int, list[Detection]] = {}
    for detection in detections:
        by_species.setdefault(detection.species_index, []).append(detection)
    findings = []
    for index, runs in by_species.items():
        windows = sum(d.n_windows for d in runs)
        mean = sum(d.mean_conf * d.n_windows for d in runs) / max(windows, 1)
        best = max(runs, key=lambda d: d.max_conf)
        findings.append(
            SpeciesFinding(
                scientific=best.scientific,
                common=best.common,
                birdnet_index=index,
                max_conf=best.max_conf,
                mean_conf=float(mean),
                n_windows=windows,
                detections=sorted(runs, key=lambda d: (-d.max_conf, d.start_s)),
            )
        )
    findings.sort(key=lambda f: (-f.max_conf, f.detections[0].start_s, f.birdnet_index))
    return findings


def range_probabilities(
    range_model: RangeModel,
    names: Sequence[str],
    latitude: float,
    longitude: float,
    week: int = YEAR_ROUND,
) -> tuple[np.ndarray, list[str | None]]:
    """Presence of each of ``names`` at one point: ``(probs, range names)``.

    ``probs`` (len(names),) float64 is NaN and the range name None for names the model does
    not list (matched by scientific name, common names when the model has them). ``week``
    1-48, or -1 for year-round.
    """

    match = match_species(
        list(names), list(range_model.species), getattr(range_model, "common_names", None)
    )
    probs = np.full(len(names), np.nan)
    range_names: list[str | None] = [None] * len(names)
    keep = np.flatnonzero(match.indices >= 0)
    if keep.size == 0:
        return probs, range_names
    weeks = None if int(week) == YEAR_ROUND else np.array([int(week)])
    presence = np.asarray(
        range_model.presence(np.array([float(latitude)]), np.array([float(longitude)]), weeks),
        dtype=np.float64,
    )
    if presence.ndim != 2 or presence.shape[0] != 1:
        raise InputError(f"range model: presence() gave shape {presence.shape} for one point")
    species = list(range_model.species)
    for i in keep:
        column = int(match.indices[i])
        probs[i] = float(presence[0, column])
        range_names[i] = species[column]
    return probs, range_names


def species_evidence(
    detections: Sequence[Detection],
    threshold: float = DEFAULT_MIN_CONFIDENCE,
    place: ResolvedPlace | None = None,
    week: int = YEAR_ROUND,
    range_model: RangeModel | None = None,
    range_model_name: str | None = None,
    unexpected_below: float = UNEXPECTED_BELOW,
    limit: int | None = None,
) -> SpeciesEvidence:
    """Group ``detections`` into one finding per species; with ``place`` and ``range_model``
    add each species' range probability there in ``week`` and its note.

    ``limit`` keeps the most confident species only (``n_species_total`` still counts all).
    """
    if not (math.isfinite(unexpected_below) and 0.0 <= unexpected_below <= 1.0):
        raise InputError(f"unexpected-below threshold {unexpected_below}: must be in [0, 1]")
    if limit is not None and limit < 1:
        raise InputError(f"--top must be >= 1, got {limit}")
    findings = _group(detections)
    total = len(findings)
    if limit is not None:
        findings = findings[:limit]
    unmatched: list[str] = []
    if place is not None and range_model is not None and findings:
        names = [f.scientific for f in findings]
        probs, range_names = range_probabilities(
            range_model, names, place.latitude, place.longitude, week
        )
        year = None
        if int(week) != YEAR_ROUND:
            year, _ = range_probabilities(
                range_model, names, place.latitude, place.longitude, YEAR_ROUND
            )
        updated = []
        for i, finding in enumerate(findings):
            if is_sound_class(finding.scientific):
                updated.append(_with(finding, note=NOTE_SOUND_CLASS))
                continue
            if range_names[i] is None:
                unmatched.append(finding.scientific)
                updated.append(_with(finding, note=NOTE_UNMATCHED))
                continue
            p = float(probs[i])
            p_year = None if year is None else float(year[i])
            note = NOTE_EXPECTED
            if p < unexpected_below:
                seasonal = p_year is not None and p_year >= unexpected_below
                note = NOTE_OUT_OF_SEASON if seasonal else NOTE_UNEXPECTED
            updated.append(
                _with(
                    finding,
                    range_species=range_names[i],
                    range_probability=p,
                    range_probability_year=p_year,
                    note=note,
                )
            )
        findings = updated
    return SpeciesEvidence(
        findings=findings,
        threshold=float(threshold),
        place=place,
        week=int(week),
        range_model=None
        if range_model is None
        else (range_model_name or type(range_model).__name__),
        unexpected_below=float(unexpected_below),
        unmatched=unmatched,
        n_species_total=total,
    )


@dataclass(frozen=True)
class HeardSpecies:
    """The species BirdNET heard in some windows, as a species-range query.

    ``names`` (scientific, most probable first) with ``weights`` from
    :func:`~.likelihood.weights_from_probs` over the windows' probabilities (pooled by the
    maximum over windows); ``best`` the highest probability of any column considered (0 for
    no windows).
    """

    names: list[str]
    weights: np.ndarray
    best: float
    mode: str
    min_prob: float

    def __len__(self) -> int:
        return len(self.names)


#: How ``locate --method birdnet-range`` and ``check`` weight BirdNET's species by default.
DEFAULT_HEARD_MODE = "weighted"
DEFAULT_HEARD_MIN_PROB = 0.1


@lru_cache(maxsize=8)
def _sound_class_columns(names: tuple[str, ...]) -> np.ndarray:
    """Columns of the labels that are sound classes (a check's timeline asks once per
    segment, with the same 6,522 BirdNET labels)."""
    return np.array([i for i, name in enumerate(names) if is_sound_class(name)], dtype=np.int64)


def heard_species(
    probs: np.ndarray,
    labels: Sequence[tuple[str, str]],
    mode: str = DEFAULT_HEARD_MODE,
    min_prob: float | None = DEFAULT_HEARD_MIN_PROB,
    species_only: bool = True,
) -> HeardSpecies:
    """Species and weights heard in BirdNET windows (``probs`` (W, S), ``labels`` their
    (scientific, common) names): the query ``locate --method birdnet-range`` and ``check``
    score against a range model. ``species_only`` ignores BirdNET's non-species sound classes
    (Siren, Human vocal, Engine, ...). No windows, or nothing above ``min_prob``, gives an
    empty result (not an error): a short or quiet recording has no species evidence."""

    threshold = DEFAULT_MIN_PROB[mode] if min_prob is None else float(min_prob)
    values = np.asarray(probs, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        return HeardSpecies([], np.zeros(0), 0.0, mode, threshold)
    if species_only:
        values = values.copy()
        values[:, _sound_class_columns(tuple(name for name, _ in labels))] = 0.0
    picked = weights_from_probs(values, mode, threshold)
    names = [labels[i][0] for i in picked.indices]
    return HeardSpecies(names, picked.weights, float(values.max()), mode, threshold)


def _with(finding: SpeciesFinding, **changes: Any) -> SpeciesFinding:
    from dataclasses import replace

    return replace(finding, **changes)


def evidence_from_windows(
    windows: BirdNETWindows,
    threshold: float = DEFAULT_MIN_CONFIDENCE,
    **kwargs: Any,
) -> SpeciesEvidence:
    """:func:`species_evidence` of BirdNET's windows of one recording (``kwargs`` as there)."""
    detections = detect_species(
        windows.probs, windows.start_s, windows.end_s, windows.labels, threshold=threshold
    )
    return species_evidence(detections, threshold=threshold, **kwargs)


# ------------------------------------------------------------------------------ output


def format_evidence(evidence: SpeciesEvidence) -> str:
    """A plain-text table: one row per species (confidence, windows, time spans, and with a
    place its range probability and note)."""
    with_range = evidence.place is not None and evidence.range_model is not None
    header = ["scientific", "common", "max_conf", "windows", "heard at (s)"]
    if with_range:
        header += ["range_p", "note"]
    rows = []
    for f in evidence.findings:
        row = [f.scientific, f.common, f"{f.max_conf:.3f}", str(f.n_windows), f.spans()]
        if with_range:
            p = "-" if f.range_probability is None else f"{f.range_probability:.3f}"
            note = f.note or ""
            if f.note == NOTE_OUT_OF_SEASON and f.range_probability_year is not None:
                note += f" (year-round {f.range_probability_year:.3f})"
            row += [p, note]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 5}
    lines = []
    for row in [header, *rows]:
        cells = [
            c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def evidence_payload(
    evidence: SpeciesEvidence,
    recording: str,
    duration_s: float,
    n_windows: int,
    when: date | None = None,
) -> dict[str, Any]:
    """The ``species --json`` document."""
    return {
        "recording": recording,
        "duration_s": round(float(duration_s), 3),
        "n_windows": int(n_windows),
        "threshold": evidence.threshold,
        "date": None if when is None else when.isoformat(),
        "week": evidence.week,
        "place": None if evidence.place is None else evidence.place.as_dict(),
        "range_model": evidence.range_model,
        "unexpected_below": evidence.unexpected_below,
        "n_species": evidence.n_species_total,
        "n_unexpected": evidence.n_unexpected if evidence.place and evidence.range_model else None,
        "species": [f.as_dict() for f in evidence.findings],
        "unmatched": evidence.unmatched,
    }


__all__ = [
    "DEFAULT_HEARD_MIN_PROB",
    "DEFAULT_HEARD_MODE",
    "NOTE_EXPECTED",
    "NOTE_OUT_OF_SEASON",
    "NOTE_SOUND_CLASS",
    "NOTE_UNEXPECTED",
    "NOTE_UNMATCHED",
    "SOUND_CLASSES",
    "UNEXPECTED_BELOW",
    "HeardSpecies",
    "SpeciesEvidence",
    "SpeciesFinding",
    "evidence_from_windows",
    "evidence_payload",
    "format_evidence",
    "heard_species",
    "is_sound_class",
    "range_probabilities",
    "species_evidence",
]
