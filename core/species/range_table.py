"""Range tables: (G, S) presence of every species at every gallery location, cached.

Species-range geolocation scores all gallery locations at once, so it needs the range model's
presence over the whole gallery. :func:`range_table` builds it in batches (one model call per
``batch_size`` locations instead of one per location: BirdNET's range model is tens of times
faster that way, see :func:`range_table_unbatched`), stores it as float16 (half the bytes;
presence needs no more than ~3 significant digits) and caches it under
``cache_dir("range_tables")``, keyed by the model's identity, the coordinates' hash and the
week. Each cached ``KEY.npy`` has a ``KEY.json`` side file holding its SHA-256; a file that
does not match (truncated, damaged, half-copied) is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import load_keyed_npy, save_keyed_npy, sha256_arrays
from geoforensics.core.geo.distance import check_coords
from geoforensics.core.paths import cache_dir
from geoforensics.core.species.checklists import YEAR_ROUND, RangeModel, week_rows
from geoforensics.core.species.ranges import DEFAULT_BATCH, synthetic_identity

#: Storage type of range tables.
TABLE_DTYPE = np.float16
_FORMAT = "geoforensics-range-table-v1"

WeekArg = ArrayLike | None


#: Table entries handled per chunk when a statistic needs every column (~16 MB of float32).
CHUNK_ENTRIES = 1 << 22


def check_range_table(table: ArrayLike) -> np.ndarray:
    """A (locations, species) range table as a float array; a one-line error otherwise."""
    array = np.asarray(table)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(
            f"range table: expected a non-empty 2-D (locations, species) array, got {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
    return array


def table_row_chunks(table: np.ndarray) -> list[slice]:
    """Row slices of about :data:`CHUNK_ENTRIES` entries each."""
    rows = max(1, CHUNK_ENTRIES // table.shape[1])
    return [slice(a, min(a + rows, table.shape[0])) for a in range(0, table.shape[0], rows)]


def checked_rows(
    block: np.ndarray, first_row: int, columns: np.ndarray | None = None
) -> np.ndarray:
    """A float64 copy of table rows, refusing NaN/inf and negative presence. A bad entry is
    named by its table row (``first_row`` + its row in ``block``) and table column
    (``columns[j]`` when ``block`` holds those columns only)."""
    values = block.astype(np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        column = col if columns is None else int(columns[col])
        raise InputError(
            f"range table: entry ({first_row + row}, {column}) is {values[row, col]}; presence "
            "must be a finite number >= 0"
        )
    return values


def checked_columns(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """A float64 copy of the table's columns ``idx``, refusing bad entries (named by their
    row and table column)."""
    return checked_rows(table[:, idx], 0, idx)


def location_totals(table: ArrayLike) -> np.ndarray:
    """``T(x)``: the summed presence of all species at each location, (G,) float64."""
    array = check_range_table(table)
    out = np.empty(array.shape[0], dtype=np.float64)
    for rows in table_row_chunks(array):
        out[rows] = checked_rows(array[rows], rows.start).sum(axis=1)
    return out


def model_identity(model: RangeModel) -> str:
    """A string naming a range model's weights, for cache keys.

    The model's ``identity`` attribute when it has one (BirdNET and SINR: the weights file's
    SHA-256); for the synthetic world's model a hash of its arrays; otherwise a hash of its
    species names and its presence at fixed probe points.
    """
    identity = getattr(model, "identity", None)
    if isinstance(identity, str) and identity:
        return identity
    from geoforensics.core.synth import SyntheticRangeModel

    if isinstance(model, SyntheticRangeModel):
        return synthetic_identity(model)
    rng = np.random.default_rng(20240)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 256)))
    lon = rng.uniform(-180.0, 180.0, 256)
    probe = np.asarray(model.presence(lat, lon, None), dtype=np.float32)
    name = type(model).__name__
    return f"probe-{name}-" + sha256_arrays(probe, extra="\n".join(map(str, model.species)))


def _weeks(week: WeekArg, n: int) -> np.ndarray | None:
    """Weeks per location (int64, -1 = year-round), or None when all are year-round."""
    rows = week_rows(week, n, "range table", year_round=True)
    if rows is None or bool(np.all(rows == YEAR_ROUND)):
        return None
    return rows


def _week_tag(weeks: np.ndarray | None) -> str:
    if weeks is None:
        return "year"
    if len(weeks) and bool(np.all(weeks == weeks[0])):
        return f"week{int(weeks[0])}"
    return "weeks-" + sha256_arrays(weeks)[:16]


def _chunk_presence(
    model: RangeModel, lat: np.ndarray, lon: np.ndarray, weeks: np.ndarray | None, n_species: int
) -> np.ndarray:
    """(n, S) presence of one chunk; year-round rows go to the model with ``week=None``."""
    year = np.ones(len(lat), dtype=bool) if weeks is None else weeks == YEAR_ROUND
    if year.all() or not year.any():
        out = _checked(model.presence(lat, lon, None if year.all() else weeks), len(lat), n_species)
    else:
        assert weeks is not None
        out = np.empty((len(lat), n_species), dtype=np.float32)
        out[year] = _checked(model.presence(lat[year], lon[year], None), int(year.sum()), n_species)
        out[~year] = _checked(
            model.presence(lat[~year], lon[~year], weeks[~year]), int((~year).sum()), n_species
        )
    if not np.isfinite(out).all():
        raise InputError("range model: presence() gave NaN or infinite values")
    return out


def _checked(presence: ArrayLike, n: int, n_species: int) -> np.ndarray:
    array = np.asarray(presence, dtype=np.float32)
    if array.shape != (n, n_species):
        raise InputError(
            f"range model: presence() gave shape {array.shape}, expected ({n}, {n_species})"
        )
    return array


#: Values below which float16 conversion is left to numpy (~0.1 s at worst).
_NUMPY_HALF_LIMIT = 1 << 20


def to_table_dtype(presence: np.ndarray) -> np.ndarray:
    """float32 -> float16 clipped to [0, 1].

    torch's conversion is used because numpy's is ~10x slower on values that are float16
    subnormals (below 6e-5, i.e. most of a range table); both round to nearest even. A small
    array (a few heard species' columns) in a process without torch yet is converted by numpy:
    importing torch for it would cost ~2 s and ~300 MB.
    """
    array = np.ascontiguousarray(presence, dtype=np.float32)
    if array.size <= _NUMPY_HALF_LIMIT and "torch" not in sys.modules:
        return np.clip(array.astype(np.float16), 0.0, 1.0)
    import torch

    half = torch.from_numpy(np.ascontiguousarray(presence, dtype=np.float32)).half()
    return half.clamp_(0.0, 1.0).numpy()


def _build(
    model: RangeModel,
    points: np.ndarray,
    weeks: np.ndarray | None,
    batch_size: int,
    progress: bool,
    desc: str,
) -> np.ndarray:
    from tqdm.auto import tqdm

    n_species = len(model.species)
    table = np.empty((len(points), n_species), dtype=TABLE_DTYPE)
    with tqdm(total=len(points), unit="pt", desc=desc, disable=not progress) as bar:
        for start in range(0, len(points), batch_size):
            stop = min(len(points), start + batch_size)
            chunk = _chunk_presence(
                model,
                points[start:stop, 0],
                points[start:stop, 1],
                None if weeks is None else weeks[start:stop],
                n_species,
            )
            table[start:stop] = to_table_dtype(chunk)
            bar.update(stop - start)
    return table


def range_table_files(
    model: RangeModel, coords: ArrayLike, week: WeekArg = None
) -> tuple[Path, Path]:
    """Cache paths (``KEY.npy``, ``KEY.json``) of a model's table over ``coords`` and week."""
    points = check_coords(coords, "range table coordinates")
    return _files(_key_info(model, points, _weeks(week, len(points))))


def _key_info(model: RangeModel, points: np.ndarray, weeks: np.ndarray | None) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "model": model_identity(model),
        "n_species": len(model.species),
        "coords_sha256": sha256_arrays(np.ascontiguousarray(points, dtype=np.float64)),
        "n_coords": len(points),
        "week": _week_tag(weeks),
        "dtype": np.dtype(TABLE_DTYPE).name,
    }


def _files(info: dict[str, Any]) -> tuple[Path, Path]:
    key = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:32]
    folder = cache_dir("range_tables")
    return folder / f"{key}.npy", folder / f"{key}.json"


def _read_cached(npy: Path, side: Path, info: dict[str, Any]) -> np.ndarray | None:
    """The cached table if its side file matches and its checksum verifies, else None."""
    table = load_keyed_npy(npy, side, info)
    shape = (info["n_coords"], info["n_species"])
    if table is None or table.shape != shape or table.dtype != TABLE_DTYPE:
        return None
    return table


def range_table(
    model: RangeModel,
    coords: ArrayLike,
    week: WeekArg = None,
    batch_size: int = DEFAULT_BATCH,
    cache: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """(G, S) float16 presence of the model's species at gallery ``coords`` (G, 2).

    ``week``: None or -1 (year-round), a week 1-48, or one week per location. Built in
    chunks of ``batch_size`` locations (a tqdm bar when ``progress``); with ``cache`` read
    from / written to ``cache_dir("range_tables")`` (checksummed; damaged files are rebuilt).
    """
    points = check_coords(coords, "range table coordinates")
    if int(batch_size) < 1:
        raise InputError(f"range table: batch_size must be >= 1, got {batch_size}")
    weeks = _weeks(week, len(points))
    if not cache:
        return _build(model, points, weeks, int(batch_size), progress, "range table")
    info = _key_info(model, points, weeks)
    npy, side = _files(info)
    table = _read_cached(npy, side, info)
    if table is not None:
        return table
    table = _build(model, points, weeks, int(batch_size), progress, "range table")
    save_keyed_npy(npy, side, table, info)
    return table


def range_table_unbatched(
    model: RangeModel, coords: ArrayLike, week: WeekArg = None, progress: bool = False
) -> np.ndarray:
    """The same table with one model call per location (no cache): the speed baseline."""
    points = check_coords(coords, "range table coordinates")
    weeks = _weeks(week, len(points))
    return _build(model, points, weeks, 1, progress, "range table (unbatched)")


def compare_speed(
    model: RangeModel, coords: ArrayLike, week: WeekArg = None, batch_size: int = DEFAULT_BATCH
) -> dict[str, float]:
    """Time a batched table against one call per location (no cache; after a warm-up call).

    Returns seconds (wall clock) of both paths, their ratio and the largest absolute
    difference between the two tables (float16 storage: ~1e-3 at most).
    """
    import time

    points = check_coords(coords, "range table coordinates")
    range_table(model, points[:2], week=None, cache=False)  # warm up lazy imports
    start = time.perf_counter()
    batched = range_table(model, points, week=week, batch_size=batch_size, cache=False)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = range_table_unbatched(model, points, week=week)
    unbatched_s = time.perf_counter() - start
    diff = np.abs(batched.astype(np.float32) - single.astype(np.float32))
    return {
        "n_locations": float(len(points)),
        "batched_s": batched_s,
        "unbatched_s": unbatched_s,
        "speedup": unbatched_s / max(batched_s, 1e-9),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
    }


__all__ = [
    "CHUNK_ENTRIES",
    "TABLE_DTYPE",
    "check_range_table",
    "checked_columns",
    "checked_rows",
    "compare_speed",
    "location_totals",
    "model_identity",
    "range_table",
    "range_table_files",
    "range_table_unbatched",
    "table_row_chunks",
    "to_table_dtype",
]
