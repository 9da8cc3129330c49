"""Galleries: the candidate locations a retrieval model chooses among.

A :class:`Gallery` is a name, an (N, 2) float64 lat/lon array and a little JSON-able metadata.
It is saved as ``FILE.npy`` (the coordinates, written atomically, no pickle) plus a small
``FILE.json`` sidecar (name, count, checksum, metadata); arrays never go into JSON.

Builders: regular grids of cell centres (``grid-1deg``, ``grid-0.5deg``), their land-only
subsets (``land-1deg``, ``land-0.5deg``), GeoCLIP's own 100k gallery (``geoclip-100k``), a
user file (``file:PATH``, CSV or .npy), and dataset-derived galleries (:func:`from_coords`,
:func:`train_neighbour_gallery`).

Land rule: a grid cell counts as land when its centre, or any point of a regular lattice
inside it (``LAND_SAMPLE_SPACING_DEG`` = 0.05°, about 5.5 km, apart: 20 × 20 points in a 1°
cell), is land according to ``global_land_mask`` (1 km mask). So small islands such as
St Helena, Ascension or Bermuda keep a candidate, while a cell that is sea at every sample is
dropped. The cell's gallery point is its centre when the centre is land, otherwise the land
sample nearest the centre, so every point of a land gallery lies on land. Coastal cells count
as land, which puts the land fraction of the 1° grid above the centre-only fraction.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write, save_npy_atomic, sha256_arrays
from geoforensics.core.geo.distance import check_coords, validate_coords
from geoforensics.core.geo.effort import (
    DEFAULT_EFFORT,
    DEFAULT_STRENGTH,
    EffortPoints,
    effort_log_prior,
    resolve_effort,
)
from geoforensics.core.geo.h3cells import centers_of, grid_disk_cells, latlng_to_cells
from geoforensics.core.paths import cache_dir

_SIDECAR_FORMAT = "geoforensics-gallery"
_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "lng", "long", "longitude")
#: Spacing of the land rule's sample lattice inside a grid cell, in degrees (~5.5 km).
LAND_SAMPLE_SPACING_DEG = 0.05


@dataclass(eq=False)
class Gallery:
    """Named set of candidate locations: ``coords`` is (N, 2) float64 lat/lon in degrees."""

    name: str
    coords: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coords = check_coords(self.coords, f"gallery {self.name!r}").copy()
        if len(self.coords) == 0:
            raise InputError(f"gallery {self.name!r}: no locations")

    def __len__(self) -> int:
        return len(self.coords)

    def coords_sha256(self) -> str:
        """Content hash of the coordinates (cache key for embeddings)."""
        return sha256_arrays(self.coords)

    def extent(self) -> tuple[float, float, float, float]:
        """(lat_min, lat_max, lon_min, lon_max) in degrees."""
        lat, lon = self.coords[:, 0], self.coords[:, 1]
        return float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max())

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.npy coordinates) and its ``.json`` sidecar atomically; returns path."""
        out = Path(path)
        if out.suffix != ".npy":
            raise InputError(f"{out}: a gallery is saved as .npy; give a path ending in .npy")
        try:
            meta_text = json.dumps(self.metadata)
        except TypeError as exc:
            raise InputError(f"gallery {self.name!r}: metadata is not JSON-serialisable") from exc
        save_npy_atomic(out, self.coords)
        sidecar = {
            "format": _SIDECAR_FORMAT,
            "name": self.name,
            "count": len(self),
            "coords_sha256": self.coords_sha256(),
            "metadata": json.loads(meta_text),
        }
        with atomic_write(sidecar_path(out)) as fh:
            json.dump(sidecar, fh, indent=2)
        return out

    @classmethod
    def load(cls, path: str | Path) -> Gallery:
        """Read a gallery saved by :meth:`save`, or any (N, 2) lat/lon .npy file.

        A sidecar whose checksum does not match the array (the .npy was replaced) is ignored.
        """
        source = Path(path)
        coords = _read_npy_coords(source)
        name, metadata = source.stem, {"source": str(source)}
        side = sidecar_path(source)
        if side.is_file():
            try:
                info = json.loads(side.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(f"{side}: unreadable gallery sidecar ({exc})") from exc
            if (
                isinstance(info, dict)
                and info.get("format") == _SIDECAR_FORMAT
                and info.get("coords_sha256") == sha256_arrays(coords)
            ):
                name = str(info.get("name", name))
                metadata = dict(info.get("metadata") or {})
        return cls(name=name, coords=coords, metadata=metadata)


def sidecar_path(npy_path: str | Path) -> Path:
    """The JSON sidecar beside a gallery .npy file."""
    return Path(npy_path).with_suffix(".json")


# ----------------------------------------------------------------------------- grids


def _step_label(step_deg: float) -> str:
    return f"{step_deg:g}deg"


def _grid_axes(step_deg: float) -> tuple[np.ndarray, np.ndarray]:
    if not np.isfinite(step_deg) or step_deg <= 0:
        raise InputError(f"grid step {step_deg}: must be a positive number of degrees")
    n_lat = round(180.0 / step_deg)
    if n_lat < 1 or abs(n_lat * step_deg - 180.0) > 1e-9:
        raise InputError(f"grid step {step_deg}: must divide 180 degrees evenly")
    n_lon = 2 * n_lat
    lat = -90.0 + step_deg * (np.arange(n_lat) + 0.5)
    lon = -180.0 + step_deg * (np.arange(n_lon) + 0.5)
    return lat, lon


def grid_gallery(step_deg: float) -> Gallery:
    """Centres of a regular lat/lon grid (1° -> 180 × 360 points), latitude-major order."""
    lat, lon = _grid_axes(step_deg)
    lat_g, lon_g = np.meshgrid(lat, lon, indexing="ij")
    coords = np.stack([lat_g.ravel(), lon_g.ravel()], axis=1)
    return Gallery(f"grid-{_step_label(step_deg)}", coords, {"kind": "grid", "step_deg": step_deg})


def _lattice_offsets(step_deg: float, spacing_deg: float) -> np.ndarray:
    """(S, 2) sample offsets from a cell centre: the centre first, then a lattice by distance."""
    per_side = max(1, math.ceil(step_deg / spacing_deg - 1e-9))
    frac = (np.arange(per_side) + 0.5) / per_side - 0.5
    d_lat, d_lon = (g.ravel() * step_deg for g in np.meshgrid(frac, frac, indexing="ij"))
    order = np.argsort(d_lat**2 + d_lon**2, kind="stable")
    lattice = np.stack([d_lat[order], d_lon[order]], axis=1)
    return np.concatenate([np.zeros((1, 2)), lattice])


def land_points(
    step_deg: float, spacing_deg: float = LAND_SAMPLE_SPACING_DEG
) -> tuple[np.ndarray, np.ndarray]:
    """Land rule over the whole grid: (is_land (n_cells,), point (n_cells, 2)) per grid cell.

    ``point`` is the centre if it is land, else the land sample nearest the centre (the
    centre itself for sea cells).
    """
    from global_land_mask import globe  # ~1 GB mask, loaded only when needed

    if not np.isfinite(spacing_deg) or spacing_deg <= 0:
        raise InputError(f"land sample spacing {spacing_deg}: must be a positive number")
    centres = grid_gallery(step_deg).coords
    found = np.zeros(len(centres), dtype=bool)
    points = centres.copy()
    for offset in _lattice_offsets(step_deg, spacing_deg):
        todo = np.flatnonzero(~found)
        if todo.size == 0:
            break
        sample = centres[todo] + offset
        hit = todo[globe.is_land(sample[:, 0], sample[:, 1])]
        points[hit] = centres[hit] + offset
        found[hit] = True
    return found, points


def _land_mask_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("global-land-mask")
    except PackageNotFoundError:
        return "unknown"


def land_gallery(
    step_deg: float, spacing_deg: float = LAND_SAMPLE_SPACING_DEG, use_cache: bool = True
) -> Gallery:
    """Land cells of the regular grid (see the module docstring for the land rule).

    Loading the land mask takes seconds, so the result is cached under
    ``cache_dir("galleries")`` (keyed by step, lattice and global-land-mask version).
    """
    label = _step_label(step_deg)
    metadata: dict[str, Any] = {
        "kind": "land",
        "step_deg": float(step_deg),
        "sample_spacing_deg": float(spacing_deg),
        "land_mask": f"global-land-mask {_land_mask_version()}",
        "rule": "any lattice sample on land; point = centre or nearest land sample",
    }
    cached = cache_dir("galleries") / f"land-{label}-spacing{spacing_deg:g}.npy"
    if use_cache and cached.is_file():
        try:
            gallery = Gallery.load(cached)
        except InputError:
            gallery = None
        if gallery is not None and gallery.metadata == metadata:
            return gallery
    is_land, points = land_points(step_deg, spacing_deg)
    gallery = Gallery(f"land-{label}", points[is_land], metadata)
    if use_cache:
        gallery.save(cached)
    return gallery


# ------------------------------------------------------------------- dataset-derived


def from_coords(coords: ArrayLike, name: str = "locations", **metadata: Any) -> Gallery:
    """Unique locations of an (N, 2) array (e.g. a dataset split); NaN/invalid rows dropped.

    Points are sorted (latitude, then longitude), so the gallery and its embedding cache key
    depend only on the set of locations, not on the dataset's order.
    """
    array = np.asarray(coords, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise InputError(f"{name}: expected (N, 2) lat/lon coordinates, got shape {array.shape}")
    valid = validate_coords(array)
    if not valid.any():
        raise InputError(f"{name}: no valid locations among {len(array)} rows")
    unique = np.unique(array[valid] + 0.0, axis=0)  # + 0.0 folds -0.0 into 0.0
    meta = {"kind": "locations", "n_rows": len(array), "n_dropped": int((~valid).sum())}
    meta.update(metadata)
    return Gallery(name, unique, meta)


def train_neighbour_gallery(
    train_coords: ArrayLike, res: int = 3, k: int = 1, name: str | None = None
) -> Gallery:
    """Centres of the H3 cells (resolution ``res``) holding train locations, plus k-ring cells.

    Invalid train rows are skipped. Cells are in ascending H3 order.
    """
    if not 0 <= res <= 15:
        raise InputError(f"H3 resolution {res}: must be in 0..15")
    found = [c for c in latlng_to_cells(train_coords, res) if c is not None]
    if not found:
        raise InputError("train-neighbour gallery: no valid train locations")
    cell_list = sorted(grid_disk_cells(found, k))
    return Gallery(
        name or f"train-h3r{res}k{k}",
        centers_of(cell_list),
        {"kind": "train-neighbours", "h3_res": res, "k": k, "n_train_cells": len(set(found))},
    )


# ------------------------------------------------------------------------ files


def _read_npy_coords(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: no such gallery file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from exc
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        raise InputError(f"{path}: expected a numeric (N, 2) lat/lon array")
    if array.ndim != 2 or array.shape[1] != 2:
        raise InputError(f"{path}: expected an (N, 2) lat/lon array, got shape {array.shape}")
    if len(array) == 0:
        raise InputError(f"{path}: no coordinates (empty array)")
    return check_coords(array, str(path))


def _find_column(header: list[str], names: Iterable[str]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def read_csv_coords(path: str | Path) -> np.ndarray:
    """(N, 2) lat/lon from a CSV with a ``lat,lon`` / ``latitude,longitude`` header (any case).

    Errors name the file and the line: missing columns, non-numbers, out-of-range values.
    """
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such gallery file")
    with open(source, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise InputError(f"{source}: empty file (expected a header such as lat,lon)")
        lat_col, lon_col = _find_column(header, _LAT_NAMES), _find_column(header, _LON_NAMES)
        if lat_col is None or lon_col is None:
            raise InputError(
                f"{source}: no latitude/longitude columns in header {','.join(header)!r} "
                "(expected lat,lon or latitude,longitude)"
            )
        pairs: list[tuple[str, str]] = []
        lines: list[int] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(lat_col, lon_col):
                raise InputError(f"{source}: line {reader.line_num}: too few columns")
            pairs.append((row[lat_col], row[lon_col]))
            lines.append(reader.line_num)
    if not pairs:
        raise InputError(f"{source}: no coordinates (header only)")
    try:
        coords = np.array(pairs, dtype=np.float64)
    except ValueError:
        for (lat_text, lon_text), line in zip(pairs, lines, strict=True):
            try:
                float(lat_text), float(lon_text)
            except ValueError:
                raise InputError(
                    f"{source}: line {line}: lat/lon {lat_text!r}, {lon_text!r} are not numbers"
                ) from None
        raise
    bad = np.flatnonzero(~validate_coords(coords))
    if bad.size:
        lat, lon = coords[bad[0]]
        raise InputError(
            f"{source}: line {lines[bad[0]]}: lat={lat}, lon={lon} out of range "
            "(need finite lat in [-90, 90], lon in [-180, 180])"
        )
    return coords


def file_gallery(path: str | Path) -> Gallery:
    """Gallery from a user file: a saved gallery / (N, 2) .npy, or a CSV with lat/lon columns."""
    source = Path(path)
    if source.suffix.lower() == ".npy":
        return Gallery.load(source)
    if source.suffix.lower() in (".csv", ".txt"):
        return Gallery(source.stem, read_csv_coords(source), {"kind": "file", "source": str(path)})
    raise InputError(f"{source}: unsupported gallery file type (use .csv or .npy)")


def geoclip_100k_gallery() -> Gallery:
    """GeoCLIP's own gallery of 100,000 locations, read from the geoclip wheel."""
    from geoforensics.core.geoclip import GALLERY_100K_CSV, geoclip_file

    path = geoclip_file(GALLERY_100K_CSV)
    return Gallery("geoclip-100k", read_csv_coords(path), {"kind": "geoclip", "source": str(path)})


# --------------------------------------------------------------------- registry

_GRID_SPEC = re.compile(r"(grid|land)-(\d+(?:\.\d+)?)deg")
_NAMED: dict[str, Callable[..., Gallery]] = {"geoclip-100k": geoclip_100k_gallery}
#: Specs advertised in help texts (any grid/land step dividing 180° also works).
KNOWN_SPECS: tuple[str, ...] = (
    "grid-1deg",
    "grid-0.5deg",
    "land-1deg",
    "land-0.5deg",
    "geoclip-100k",
    "file:PATH",
)


def build_gallery(spec: str, **kwargs: Any) -> Gallery:
    """Build a gallery by name: ``grid-1deg``, ``land-0.5deg``, ``geoclip-100k``, ``file:PATH``.

    ``kwargs`` go to the builder (e.g. ``spacing_deg`` for land galleries).
    """
    if spec.startswith("file:"):
        return file_gallery(spec[len("file:") :])
    match = _GRID_SPEC.fullmatch(spec)
    if match:
        kind, step = match.group(1), float(match.group(2))
        return grid_gallery(step, **kwargs) if kind == "grid" else land_gallery(step, **kwargs)
    if spec in _NAMED:
        return _NAMED[spec](**kwargs)
    raise InputError(f"unknown gallery {spec!r}; known: {', '.join(KNOWN_SPECS)}")


def resolve_gallery(file_or_spec: str, **kwargs: Any) -> Gallery:
    """An existing gallery file (.npy/.csv) if the path exists, else :func:`build_gallery`."""
    if Path(file_or_spec).is_file():
        return file_gallery(file_or_spec)
    return build_gallery(file_or_spec, **kwargs)


# ------------------------------------------------------------------------------- priors


def is_regular_grid(gallery: Gallery) -> bool:
    """Whether ``gallery`` is a regular lat/lon grid of equal-angle cells (``grid-*``,
    ``land-*``), whose points stand for cells of unequal area."""
    return gallery.metadata.get("kind") in ("grid", "land") and "step_deg" in gallery.metadata


def area_log_prior(coords: ArrayLike) -> np.ndarray:
    """(G,) log of each point's share of area on a regular lat/lon grid: log cos(latitude).

    Use it for ``grid-*`` / ``land-*`` galleries (cells of equal angular size), so that the
    prior is uniform over the Earth's surface rather than over cells.
    """
    points = check_coords(coords, "area prior coordinates")
    weight = np.cos(np.radians(points[:, 0]))
    return np.log(np.clip(weight, 1e-6, None) / weight.sum())


def gallery_log_prior(gallery: Gallery) -> np.ndarray:
    """(G,) log prior over a gallery's points, the one rule of every AG-CLIP distribution
    (``locate``, ``check``, the app, the bench): each cell's share of area (cos latitude) on a
    regular lat/lon grid (:func:`is_regular_grid`), uniform over the points otherwise
    (galleries of recording places already carry where recordings are made).

    The species-range likelihood adds a recording-effort term on top of this
    (:func:`effort_gallery_log_prior`).
    """
    if is_regular_grid(gallery):
        return area_log_prior(gallery.coords)
    return np.full(len(gallery), -math.log(len(gallery)))


def gallery_prior_name(gallery: Gallery) -> str:
    """What :func:`gallery_log_prior` puts over ``gallery``, in words."""
    if is_regular_grid(gallery):
        return "cell area (cos latitude)"
    return "uniform over gallery points"


def effort_gallery_log_prior(
    gallery: Gallery,
    area_prior: bool | None = None,
    effort: str | Path | EffortPoints | None = "auto",
    effort_strength: float | None = None,
) -> tuple[np.ndarray, bool, str | None]:
    """(G,) log prior over a gallery's points, whether the area prior is on, the effort name.

    ``area_prior`` None: on for regular grid / land galleries. ``effort`` ``auto``: the
    population effort prior on those galleries (unless ``area_prior`` is False) and none on
    others (galleries of recording places already carry the effort bias); ``population``,
    ``none`` (or None), a .csv/.npy effort map, or
    :class:`~geoforensics.core.geo.effort.EffortPoints`.
    ``effort_strength`` None: :data:`~geoforensics.core.geo.effort.DEFAULT_STRENGTH`.
    """
    coords = gallery.coords
    regular = is_regular_grid(gallery)
    use_area = regular if area_prior is None else bool(area_prior)
    log_prior = area_log_prior(coords) if use_area else np.zeros(len(coords))
    source = effort
    if isinstance(source, str) and source.strip().lower() == "auto":
        source = DEFAULT_EFFORT if regular and area_prior is not False else None
    points = resolve_effort(source)
    strength = DEFAULT_STRENGTH if effort_strength is None else float(effort_strength)
    if points is None or strength == 0:
        return log_prior, use_area, None
    log_prior = log_prior + effort_log_prior(coords, points, strength=strength)
    return log_prior, use_area, points.name
