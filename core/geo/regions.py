"""Confidence regions: the smallest set of cells that holds X % of a place distribution.

Any method that scores a gallery of candidate places (AG-CLIP retrieval, the species-range
likelihood, their fusion, GeoCLIP image/text retrieval) gives probabilities ``probs`` (G,) over
gallery points ``coords`` (G, 2). A region needs *area*, so the gallery is laid on H3 cells
(:class:`RegionGrid`, resolution 3 by default: cells of about 12,400 km², 110 km across):

- every H3 cell of that resolution whose centre lies within ``max_km`` of a gallery point is
  *owned* by its nearest gallery point (a Voronoi partition rasterised on H3 cells; cells
  farther than ``max_km`` from every point belong to no region, e.g. open ocean far from a
  land gallery);
- a gallery point that owns no cell (several points share a cell) hands its mass to the owner
  of the cell it lies in, so every point's mass lands in some owned area;

The X % region (:func:`confidence_regions`) takes points (with the cells they own) in order of
decreasing probability until their cumulative mass reaches a threshold ``t(X)``: the smallest
set of gallery cells holding that mass (the "adaptive prediction sets" recipe). The most
probable gallery point's cell is always included, so the top place is never outside its own
region. ``t(X)`` is X itself for an *uncalibrated* region (raw posterior mass, rarely
calibrated) or a split-conformal threshold computed on held-out data (:mod:`.calibration`),
with which the true place falls inside with probability >= X.

A :class:`Region` reports its H3 cells, area in km² (exact H3 cell areas), the number of
separate parts (cells connected through H3 neighbours) and a GeoJSON (Multi)Polygon in
[lon, lat] order whose rings are closed, exterior rings counter-clockwise, split at the
antimeridian (cells straddling ±180° are cut along the meridian, the two sides emitted as
separate polygons at +180 and -180).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import h3
import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import sha256_arrays
from geoforensics.core.geo.distance import (
    EARTH_RADIUS_KM,
    check_coords,
    km_of_chord,
    unit_vectors,
    validate_coords,
)
from geoforensics.core.geo.h3cells import cell_centers, cells


class RegionCalibration(Protocol):
    """What region building reads from a calibration
    (:class:`~geoforensics.core.geo.calibration.Calibration` is one): its grid and the
    threshold of a coverage level, None when it has no such level."""

    @property
    def res(self) -> int: ...

    @property
    def max_km(self) -> float: ...

    def threshold(self, level: float) -> float | None: ...

    def describe(self) -> str: ...


#: Default coverage levels X of the reported regions.
DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
#: Default H3 resolution of the region cells (~12,400 km² per cell).
DEFAULT_RES = 3
#: Resolutions a region grid may use (whole-globe cell lists: res 4 has 288,122 cells).
REGION_RESOLUTIONS: tuple[int, ...] = (1, 2, 3, 4)
#: Bounds (km) of the automatic ``max_km`` (3 x the 95th percentile of the gallery spacing).
AUTO_MAX_KM: tuple[float, float] = (200.0, 1000.0)
_KEY_DIGITS = 7  # vertex identity: degrees rounded to 1e-7 (about 1 cm)


# ------------------------------------------------------------------------------ H3 lists


@functools.cache
def _global_cells(res: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, dict[str, int]]:
    """(cells, centres (C, 2), areas km² (C,), cell -> index) of every cell at ``res``."""

    if res <= 3:
        listed = cells(res)
        centres = cell_centers(res)
    else:
        listed = tuple(c for parent in cells(3) for c in sorted(h3.cell_to_children(parent, res)))
        centres = np.array([h3.cell_to_latlng(c) for c in listed], dtype=np.float64)
    areas = np.array([h3.cell_area(c, "km^2") for c in listed], dtype=np.float64)
    for array in (centres, areas):
        array.setflags(write=False)
    return listed, centres, areas, {c: i for i, c in enumerate(listed)}


def auto_max_km(coords: ArrayLike) -> float:
    """Default reach of a gallery point: 3 x the 95th percentile of the distance from each
    point to its nearest other point, within :data:`AUTO_MAX_KM` (200-1,000 km)."""
    from scipy.spatial import cKDTree

    points = np.unique(check_coords(coords, "region gallery") + 0.0, axis=0)
    if len(points) < 2:
        return AUTO_MAX_KM[1]
    xyz = unit_vectors(points)
    chord, _ = cKDTree(xyz).query(xyz, k=2)
    spacing = float(np.percentile(km_of_chord(chord[:, 1]), 95))
    return float(np.clip(3.0 * spacing, *AUTO_MAX_KM))


# ------------------------------------------------------------------------------ the grid


@dataclass(eq=False)
class RegionGrid:
    """A gallery laid on H3 cells: which cells each gallery point owns (module docstring).

    ``owner`` (C,) is the owning gallery point of every cell at ``res`` (-1: no owner);
    ``merged_into`` (G,) the point whose area carries each point's mass (itself when it owns
    cells); ``point_area`` (G,) the area (km²) each point owns.
    """

    coords: np.ndarray
    res: int
    max_km: float
    owner: np.ndarray
    merged_into: np.ndarray
    point_area: np.ndarray

    @classmethod
    def build(
        cls, coords: ArrayLike, res: int = DEFAULT_RES, max_km: float | None = None
    ) -> RegionGrid:
        """Lay gallery ``coords`` (G, 2) on H3 cells at ``res``; ``max_km`` None: automatic
        (:func:`auto_max_km`)."""
        from scipy.spatial import cKDTree

        points = check_coords(coords, "region gallery").copy()  # frozen below: not the caller's
        if len(points) == 0:
            raise InputError("region gallery: no locations")
        if res not in REGION_RESOLUTIONS:
            raise InputError(
                f"region H3 resolution {res}: choose one of "
                + ", ".join(str(r) for r in REGION_RESOLUTIONS)
            )
        reach = auto_max_km(points) if max_km is None else float(max_km)
        _, centres, areas, lookup = _global_cells(res)
        # A point's own cell must be within reach of it: at least the cell's circumradius.
        floor = 2.0 * h3.average_hexagon_edge_length(res, "km")
        if not math.isfinite(reach) or reach < floor:
            raise InputError(
                f"region reach {max_km} km: must be a number >= {floor:.0f} km at H3 res {res}"
            )
        chord, nearest = cKDTree(unit_vectors(points)).query(unit_vectors(centres))
        owner = np.where(km_of_chord(chord) <= reach, nearest, -1).astype(np.int64)
        point_area = np.bincount(
            owner[owner >= 0], weights=areas[owner >= 0], minlength=len(points)
        )
        own_cell = np.array(
            [lookup[h3.latlng_to_cell(float(a), float(b), res)] for a, b in points], np.int64
        )
        merged = np.arange(len(points), dtype=np.int64)
        empty = point_area <= 0
        merged[empty] = owner[own_cell[empty]]
        if np.any(merged < 0):  # pragma: no cover - the reach floor keeps own cells owned
            raise InputError("region gallery: a gallery point lies in a cell with no owner")
        for array in (owner, merged, point_area, points):
            array.setflags(write=False)
        return cls(points, int(res), reach, owner, merged, point_area)

    def __len__(self) -> int:
        return len(self.coords)

    @property
    def cells(self) -> tuple[str, ...]:
        """Every H3 cell at the grid's resolution (``owner`` is indexed by these)."""
        return _global_cells(self.res)[0]

    @property
    def cell_areas(self) -> np.ndarray:
        """(C,) km² of every cell at the grid's resolution."""
        return _global_cells(self.res)[2]

    @property
    def covered_area_km2(self) -> float:
        """Area of all owned cells (the largest possible region)."""
        return float(self.point_area.sum())

    def point_mass(self, probs: ArrayLike) -> np.ndarray:
        """(G,) mass each owning point carries: ``probs`` with merged points folded in."""
        values = np.asarray(probs, dtype=np.float64)
        if values.shape != (len(self),):
            raise InputError(f"regions: {values.shape} probabilities for {len(self)} locations")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise InputError("regions: probabilities must be finite and >= 0")
        total = values.sum()
        if total <= 0:
            raise InputError("regions: probabilities sum to 0")
        return np.bincount(self.merged_into, weights=values / total, minlength=len(self))

    def place_owner(self, coords: ArrayLike) -> np.ndarray:
        """(N,) gallery point owning the H3 cell of each (lat, lon) place; -1 when the cell has
        no owner (beyond ``max_km`` of the gallery) or the place is invalid."""
        places = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        lookup = _global_cells(self.res)[3]
        out = np.full(len(places), -1, dtype=np.int64)
        for i, ((lat, lon), ok) in enumerate(zip(places, validate_coords(places), strict=True)):
            if ok:
                out[i] = self.owner[lookup[h3.latlng_to_cell(float(lat), float(lon), self.res)]]
        return out

    def top_owner(self, probs: ArrayLike) -> int:
        """The point owning the cell of the most probable gallery point (the top place)."""
        values = np.asarray(probs, dtype=np.float64)
        return int(self.place_owner(self.coords[int(np.argmax(values))])[0])

    def order(self, probs: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(order, cumulative mass, rank) of the owning points by decreasing mass.

        ``order`` lists the points that own area, most probable first (ties: the lower
        index); ``cumulative[k]`` is the mass of ``order[: k + 1]``; ``rank[p]`` the position
        of point ``p`` in ``order`` (-1 for points owning nothing).
        """
        mass = self.point_mass(probs)
        owners = np.flatnonzero(self.point_area > 0)
        order = owners[np.lexsort((owners, -mass[owners]))]
        cumulative = np.cumsum(mass[order])
        rank = np.full(len(self), -1, dtype=np.int64)
        rank[order] = np.arange(len(order))
        return order, cumulative, rank

    def scores(self, probs: ArrayLike, truth: ArrayLike) -> np.ndarray:
        """Conformal scores of one distribution against true places (N, 2): the mass of all
        points at least as probable as the one owning each true place's cell (points tied
        with it included); 0 when that is the top place's cell (inside every region);
        ``inf`` where no point owns the cell (beyond reach: never inside a region)."""
        order, cumulative, _ = self.order(probs)
        mass = self.point_mass(probs)
        ordered = mass[order]  # descending
        owners = self.place_owner(truth)
        out = np.full(len(owners), np.inf)
        found = owners >= 0
        if found.any():
            # The last position whose mass is >= the true point's (ties counted in).
            last = np.searchsorted(-ordered, -mass[owners[found]], side="right") - 1
            out[found] = cumulative[np.clip(last, 0, len(order) - 1)]
        # Every region holds the top place's cell: a true place there is always covered.
        out[owners == self.top_owner(probs)] = 0.0
        return out


_GRID_CACHE: dict[tuple[str, int, float | None], RegionGrid] = {}
_GRID_CACHE_SIZE = 4


def region_grid(
    coords: ArrayLike, res: int = DEFAULT_RES, max_km: float | None = None
) -> RegionGrid:
    """:meth:`RegionGrid.build`, remembered for the last few galleries of this process (so
    several modalities over one gallery lay it on cells once)."""

    points = check_coords(coords, "region gallery")
    key = (sha256_arrays(points), int(res), None if max_km is None else float(max_km))
    if key not in _GRID_CACHE:
        if len(_GRID_CACHE) >= _GRID_CACHE_SIZE:
            _GRID_CACHE.pop(next(iter(_GRID_CACHE)))
        _GRID_CACHE[key] = RegionGrid.build(points, res, max_km)
    return _GRID_CACHE[key]


def _coerce_levels(levels: Iterable[float]) -> tuple[float, ...]:
    out = tuple(float(x) for x in levels)
    if not out:
        raise InputError("regions: no coverage levels given")
    for x in out:
        if not 0.0 < x < 1.0:
            raise InputError(f"region level {x}: must be a probability in (0, 1), e.g. 0.9")
    return out


# ----------------------------------------------------------------------------- a region


@dataclass(frozen=True, eq=False)
class Region:
    """The X % region of one distribution (see the module docstring).

    ``level`` is X; ``threshold`` the mass the region was grown to (``inf``: every owned
    cell); ``calibrated`` whether ``threshold`` comes from a conformal calibration
    (``source`` says which, or why not); ``mass`` the posterior mass inside; ``points`` the
    gallery points whose cells form it (densest first) and ``point_mass`` their mass.
    """

    level: float
    threshold: float
    calibrated: bool
    source: str
    mass: float
    res: int
    cell_indices: np.ndarray
    points: np.ndarray
    point_mass: np.ndarray
    area_km2: float
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def cells(self) -> tuple[str, ...]:
        """The region's H3 cells (resolution ``res``), ascending."""
        listed = _global_cells(self.res)[0]
        return tuple(sorted(listed[i] for i in self.cell_indices))

    @cached_property
    def n_parts(self) -> int:
        """Number of separate parts (cells connected through H3 neighbours)."""
        return len(connected_parts(self.cells))

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the place's H3 cell is one of the region's cells."""
        if not validate_coords(np.array([[lat, lon]], dtype=np.float64))[0]:
            return False
        cell = h3.latlng_to_cell(float(lat), float(lon), self.res)
        return cell in set(self.cells)

    def geojson(self) -> dict[str, Any]:
        """The region as a GeoJSON geometry: a Polygon or MultiPolygon, [lon, lat] order,
        closed rings, exterior rings counter-clockwise, split at the antimeridian."""
        return cells_to_geojson(self.cells)

    def feature(self, **properties: Any) -> dict[str, Any]:
        """A GeoJSON Feature of the region with its summary (and ``properties``)."""
        props = self.as_dict(include_cells=False)
        props.update(properties)
        return {"type": "Feature", "geometry": self.geojson(), "properties": props}

    def as_dict(self, include_cells: bool = True) -> dict[str, Any]:
        """JSON-ready summary; ``cells`` are compacted (mixed resolutions, same area)."""
        out: dict[str, Any] = {
            "level": self.level,
            "calibrated": self.calibrated,
            "source": self.source,
            "threshold": None if not math.isfinite(self.threshold) else self.threshold,
            "mass": self.mass,
            "area_km2": self.area_km2,
            "n_parts": self.n_parts,
            "n_cells": len(self.cell_indices),
            "h3_res": self.res,
        }
        out.update(self.extra)
        if include_cells:
            out["cells"] = sorted(h3.compact_cells(list(self.cells)))
        return out


def confidence_regions(
    probs: ArrayLike,
    coords: ArrayLike | RegionGrid,
    calibration: RegionCalibration | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    res: int = DEFAULT_RES,
    max_km: float | None = None,
) -> list[Region]:
    """The X % regions of ``probs`` (G,) over gallery ``coords`` (G, 2), one per level.

    ``coords`` may be a prebuilt :class:`RegionGrid` (reuse it for many distributions over one
    gallery). ``calibration``: a :class:`~geoforensics.core.geo.calibration.Calibration`
    (conformal thresholds; its grid settings are used) or None: uncalibrated, the threshold is
    X itself and the regions say so. A calibration without a level leaves that level
    uncalibrated.
    """
    wanted = _coerce_levels(levels)
    if calibration is not None:
        res, max_km = calibration.res, calibration.max_km
    if isinstance(coords, RegionGrid):
        grid = coords
        if calibration is not None and (
            grid.res != calibration.res or not math.isclose(grid.max_km, calibration.max_km)
        ):
            raise InputError(
                f"regions: the grid (res {grid.res}, {grid.max_km:g} km) differs from the "
                f"calibration's (res {calibration.res}, {calibration.max_km:g} km)"
            )
    else:
        grid = region_grid(coords, res, max_km)
    order, cumulative, _ = grid.order(probs)
    values = np.asarray(probs, dtype=np.float64)
    top = grid.top_owner(values)
    mass = grid.point_mass(values)
    ties = tie_cumulative(mass[order], cumulative)
    cell_owner = grid.owner
    areas = grid.cell_areas
    regions = []
    for level in wanted:
        threshold = None if calibration is None else calibration.threshold(level)
        calibrated = threshold is not None
        if calibration is None:
            source = "uncalibrated: raw posterior mass"
        elif threshold is None:
            source = f"uncalibrated: {calibration.describe()} has no {level:g} level"
        else:
            source = calibration.describe()
        if threshold is None:
            threshold = level
        count = region_size(cumulative, threshold, ties)
        chosen = order[:count]
        if top not in set(chosen.tolist()):
            chosen = np.concatenate([chosen, [top]])
        member = np.zeros(len(grid), dtype=bool)
        member[chosen] = True
        cell_idx = np.flatnonzero((cell_owner >= 0) & member[np.maximum(cell_owner, 0)])
        regions.append(
            Region(
                level=level,
                threshold=float(threshold),
                calibrated=calibrated,
                source=source,
                mass=float(mass[chosen].sum()),
                res=grid.res,
                cell_indices=cell_idx,
                points=chosen,
                point_mass=mass[chosen],
                area_km2=float(areas[cell_idx].sum()),
            )
        )
    return regions


def tie_cumulative(ordered_mass: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """For each position of a mass order, the cumulative mass through the end of its group
    of equal masses (the conformal score of a true place owned by that point)."""
    last = np.searchsorted(-ordered_mass, -ordered_mass, side="right") - 1
    return np.asarray(cumulative[last])


def region_size(cumulative: np.ndarray, threshold: float, ties: np.ndarray | None = None) -> int:
    """How many points of a mass order the region at ``threshold`` holds: the points up to
    the first whose cumulative mass reaches it, and every point whose score (``ties``,
    :func:`tie_cumulative`) is within it, so a place with score <= threshold is always
    inside; all points when the threshold is never reached (e.g. ``inf``); at least one."""
    if not math.isfinite(threshold):
        return len(cumulative)
    # A tiny tolerance: the calibration's scores are sums of the same kind.
    count = int(np.searchsorted(cumulative, threshold - 1e-12, side="left")) + 1
    if ties is not None:
        count = max(count, int(np.searchsorted(ties, threshold + 1e-12, side="right")))
    return int(min(max(count, 1), len(cumulative)))


def region_areas(
    grid: RegionGrid, probs: ArrayLike, thresholds: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Area (km²) of the region at each threshold and the (rank of the) top place, cheaply
    for the bench: no cell lists. Returns (areas (T,), cumulative owner areas)."""
    order, cumulative, _ = grid.order(probs)
    top = grid.top_owner(probs)
    ties = tie_cumulative(grid.point_mass(probs)[order], cumulative)
    area_cum = np.cumsum(grid.point_area[order])
    top_rank = int(np.flatnonzero(order == top)[0])
    out = np.empty(len(thresholds))
    for j, t in enumerate(thresholds):
        count = region_size(cumulative, t, ties)
        out[j] = area_cum[count - 1] + (grid.point_area[top] if top_rank >= count else 0.0)
    return out, area_cum


# ------------------------------------------------------------------------- geometry


def connected_parts(cells_in: Iterable[str]) -> list[list[str]]:
    """Groups of cells connected through H3 neighbours (one group per separate part)."""
    members = set(cells_in)
    parent = {c: c for c in members}

    def find(c: str) -> str:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for cell in members:
        for other in h3.grid_disk(cell, 1):
            if other in members:
                a, b = find(cell), find(other)
                if a != b:
                    parent[a] = b
    groups: dict[str, list[str]] = {}
    for cell in members:
        groups.setdefault(find(cell), []).append(cell)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g[0]))


Point = tuple[float, float]  # (lon, lat)


def _key(p: Point) -> Point:
    return (round(p[0], _KEY_DIGITS) + 0.0, round(p[1], _KEY_DIGITS) + 0.0)


def _crossing_lat(a: Point, b: Point) -> float:
    """Latitude where the edge a-b (on opposite sides of ±180°) meets the antimeridian;
    symmetric in a and b, so both cells sharing the edge cut it at the same point."""
    first, second = sorted((_key(a), _key(b)))
    lon1 = first[0] + 360.0 if first[0] < 0 else first[0]
    lon2 = second[0] + 360.0 if second[0] < 0 else second[0]
    if lon1 == lon2:
        return first[1]
    f = (180.0 - lon1) / (lon2 - lon1)
    return round(first[1] + f * (second[1] - first[1]), _KEY_DIGITS) + 0.0


def _signed_area(ring: Sequence[Point]) -> float:
    return 0.5 * sum(
        x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, [*ring[1:], ring[0]], strict=True)
    )


def _cell_pieces(cell: str) -> list[list[Point]]:
    """The cell as counter-clockwise (lon, lat) rings (not closed), cut at ±180°."""
    ring: list[Point] = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
    lons = [p[0] for p in ring]
    crossing = max(lons) - min(lons) > 180.0
    unwrapped = [(x + 360.0 if crossing and x < 0 else x, y) for x, y in ring]
    if _signed_area(unwrapped) < 0:  # orientation on unwrapped longitudes
        ring.reverse()
    if not crossing:
        if max(lons) >= 180.0 - 1e-9 or min(lons) <= -180.0 + 1e-9:  # a vertex on the line
            side = 180.0 if sum(lons) > 0 else -180.0
            ring = [(side if abs(abs(x) - 180.0) < 1e-9 else x, y) for x, y in ring]
        return [ring]
    lat0, _ = h3.cell_to_latlng(cell)
    pole = h3.latlng_to_cell(90.0 if lat0 > 0 else -90.0, 0.0, h3.get_resolution(cell))
    raw = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
    if pole == cell:
        return [_pole_piece(raw, 90.0 if lat0 > 0 else -90.0)]
    east: list[Point] = []  # lon in [0, 180]
    west: list[Point] = []  # lon in [-180, 0]
    n = len(ring)
    for i in range(n):
        a, b = ring[i], ring[(i + 1) % n]
        (east if a[0] >= 0 else west).append(a)
        if (a[0] >= 0) != (b[0] >= 0):
            lat = _crossing_lat(a, b)
            if a[0] >= 0:
                east.append((180.0, lat))
                west.append((-180.0, lat))
            else:
                west.append((-180.0, lat))
                east.append((180.0, lat))
    return [p for p in (east, west) if len(p) >= 3]


def _pole_piece(raw: list[Point], pole_lat: float) -> list[Point]:
    """A cell holding a pole as one ring: its boundary by longitude, closed along ±180° and
    the pole's latitude."""
    ordered = sorted(raw)
    lat_edge = _crossing_lat(ordered[-1], ordered[0])
    ring = [(-180.0, lat_edge), *ordered, (180.0, lat_edge)]
    ring += [(180.0, pole_lat), (-180.0, pole_lat)]
    if _signed_area(ring) < 0:
        ring.reverse()
    return ring


def _point_in_ring(p: Point, ring: Sequence[Point]) -> bool:
    x, y = p
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, [*ring[1:], ring[0]], strict=True):
        if (y1 > y) != (y2 > y):
            cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < cross:
                inside = not inside
    return inside


def _rings_from_edges(edges: dict[Point, list[Point]]) -> list[list[Point]]:
    rings = []
    while edges:
        start = next(iter(edges))
        ring = [start]
        current = start
        while True:
            nexts = edges[current]
            nxt = nexts.pop()
            if not nexts:
                del edges[current]
            if nxt == start:
                break
            ring.append(nxt)
            current = nxt
            if current not in edges:  # pragma: no cover - an open chain (float noise)
                break
        if len(ring) >= 3:
            rings.append(ring)
    return rings


def _simplify(ring: list[Point]) -> list[Point]:
    """Drop vertices on a straight stretch along the cut meridian (between two cut cells)."""
    out = []
    n = len(ring)
    for i in range(n):
        prev, here, nxt = ring[i - 1], ring[i], ring[(i + 1) % n]
        if abs(abs(here[0]) - 180.0) < 1e-9 and prev[0] == here[0] == nxt[0]:
            continue
        out.append(here)
    return out


def cells_to_geojson(cells_in: Iterable[str]) -> dict[str, Any]:
    """GeoJSON Polygon / MultiPolygon of the union of H3 cells, split at the antimeridian.

    The union is built from cell edges (an edge shared by two cells cancels out), so it works
    for any set of cells, including cells straddling ±180° (cut along the meridian) and the
    cells holding the poles.
    """
    counts: dict[tuple[Point, Point], int] = {}
    for cell in sorted(set(cells_in)):  # sorted: the same rings in every process
        for piece in _cell_pieces(cell):
            keys = [_key(p) for p in piece]
            for a, b in zip(keys, [*keys[1:], keys[0]], strict=True):
                if a == b:
                    continue
                if counts.get((b, a)):
                    counts[(b, a)] -= 1
                    if not counts[(b, a)]:
                        del counts[(b, a)]
                else:
                    counts[(a, b)] = counts.get((a, b), 0) + 1
    if not counts:
        return {"type": "MultiPolygon", "coordinates": []}
    edges: dict[Point, list[Point]] = {}
    for (a, b), count in counts.items():
        edges.setdefault(a, []).extend([b] * count)
    rings = [_simplify(r) for r in _rings_from_edges(edges)]
    rings = [r for r in rings if len(r) >= 3]
    outers = [r for r in rings if _signed_area(r) > 0]
    holes = [r for r in rings if _signed_area(r) < 0]
    polygons: list[list[list[Point]]] = [[r] for r in outers]
    for hole in holes:
        probe = ((hole[0][0] + hole[1][0]) / 2.0, (hole[0][1] + hole[1][1]) / 2.0)
        owners = [i for i, r in enumerate(outers) if _point_in_ring(probe, r)]
        if owners:
            best = min(owners, key=lambda i: abs(_signed_area(outers[i])))
            polygons[best].append(hole)
    closed = [[[[x, y] for x, y in [*ring, ring[0]]] for ring in poly] for poly in polygons]
    if len(closed) == 1:
        return {"type": "Polygon", "coordinates": closed[0]}
    return {"type": "MultiPolygon", "coordinates": closed}


def geojson_area_km2(geometry: dict[str, Any]) -> float:
    """Spherical area (km²) of a GeoJSON Polygon / MultiPolygon (holes subtracted)."""
    polygons = (
        [geometry["coordinates"]]
        if geometry["type"] == "Polygon"
        else list(geometry["coordinates"])
    )
    total = 0.0
    for polygon in polygons:
        for k, ring in enumerate(polygon):
            lon = np.radians([p[0] for p in ring])
            lat = np.radians([p[1] for p in ring])
            area = 0.5 * np.sum((lon[1:] - lon[:-1]) * (2 + np.sin(lat[:-1]) + np.sin(lat[1:])))
            total += abs(float(area)) * EARTH_RADIUS_KM**2 * (1 if k == 0 else -1)
    return total


__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_RES",
    "Region",
    "RegionGrid",
    "auto_max_km",
    "cells_to_geojson",
    "confidence_regions",
    "connected_parts",
    "geojson_area_km2",
    "region_areas",
    "region_grid",
    "region_size",
    "tie_cumulative",
]
