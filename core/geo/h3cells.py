"""Complete H3 cell lists at coarse resolutions, as class indices for geocell classifiers.

Resolutions 0, 1 and 2 have 122, 842 and 5,882 cells. Each resolution's cells are listed in
ascending H3 index order (built as the union of children of the coarser level, so pentagons'
missing children are handled), and a cell's *index* is its position in that list. Parent maps
and children masks are plain integer/boolean arrays so that a hierarchical classifier can
restrict a level to the children of the previous argmax without calling h3 at inference.

Only the h3 4.x API is used.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import h3
import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import validate_coords

#: The resolutions with complete cell lists (classification targets of the benchmark).
CLASSIFIER_RESOLUTIONS: tuple[int, ...] = (0, 1, 2)
#: Number of H3 cells at each of those resolutions.
CELL_COUNTS: dict[int, int] = {0: 122, 1: 842, 2: 5882}
#: Finest resolution for which whole cell lists may be built (res 3 already has 41,162 cells).
MAX_LIST_RESOLUTION = 3


def _check_res(res: int) -> None:
    if not 0 <= res <= MAX_LIST_RESOLUTION:
        raise InputError(
            f"H3 resolution {res}: whole cell lists exist for 0..{MAX_LIST_RESOLUTION} only"
        )


@functools.cache
def cells(res: int) -> tuple[str, ...]:
    """Every H3 cell at ``res`` (0..3), ascending by H3 index."""
    _check_res(res)
    level = sorted(h3.get_res0_cells())
    for child_res in range(1, res + 1):
        level = sorted({c for cell in level for c in h3.cell_to_children(cell, child_res)})
    return tuple(level)


@functools.cache
def _index_map(res: int) -> dict[str, int]:
    return {cell: i for i, cell in enumerate(cells(res))}


def cell_index_map(res: int) -> dict[str, int]:
    """Cell string -> index in :func:`cells` (a copy; the cached map is private)."""
    return dict(_index_map(res))


def num_cells(res: int) -> int:
    """Number of cells at ``res``."""
    return len(cells(res))


@functools.cache
def _centers(res: int) -> np.ndarray:
    centers = np.array([h3.cell_to_latlng(c) for c in cells(res)], dtype=np.float64)
    centers.setflags(write=False)
    return centers


def cell_centers(res: int) -> np.ndarray:
    """(num_cells(res), 2) float64 lat/lon of the cell centres, in list order."""
    return _centers(res).copy()


def latlng_to_cells(coords: ArrayLike, res: int) -> list[str | None]:
    """H3 cell (any resolution 0..15) of each (lat, lon) row; ``None`` for invalid rows."""
    array = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    valid = validate_coords(array)
    return [
        h3.latlng_to_cell(float(lat), float(lon), res) if ok else None
        for (lat, lon), ok in zip(array, valid, strict=True)
    ]


def latlng_to_cell_index(coords: ArrayLike, res: int) -> np.ndarray:
    """Index into :func:`cells` (``res`` 0..3) of each (lat, lon) row, int64 (N,).

    Invalid rows (NaN, out of range) get ``-1``; drop or mask them (``ignore_index=-1``).
    """
    _check_res(res)
    lookup = _index_map(res)
    return np.array(
        [-1 if cell is None else lookup[cell] for cell in latlng_to_cells(coords, res)],
        dtype=np.int64,
    )


@functools.cache
def _parent_index(res: int) -> np.ndarray:
    parent_lookup = _index_map(res - 1)
    out = np.array([parent_lookup[h3.cell_to_parent(c, res - 1)] for c in cells(res)], np.int64)
    out.setflags(write=False)
    return out


def parent_index(res: int, parent_res: int | None = None) -> np.ndarray:
    """For each cell at ``res``, the index of its ancestor at ``parent_res`` (default res - 1)."""
    parent_res = res - 1 if parent_res is None else parent_res
    _check_res(res)
    if not 0 <= parent_res < res:
        raise InputError(f"H3 parent resolution {parent_res} must be in [0, {res})")
    out = np.arange(num_cells(res), dtype=np.int64)
    for level in range(res, parent_res, -1):
        out = _parent_index(level)[out]
    return out


def children_mask(parent_res: int, child_res: int | None = None) -> np.ndarray:
    """Boolean (n_parent, n_child) matrix: ``mask[p, c]`` is True when cell c descends from p."""
    child_res = parent_res + 1 if child_res is None else child_res
    parents = parent_index(child_res, parent_res)
    mask = np.zeros((num_cells(parent_res), num_cells(child_res)), dtype=bool)
    mask[parents, np.arange(parents.size)] = True
    return mask


def children_csr(parent_res: int, child_res: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Children as CSR arrays: children of parent p are ``indices[indptr[p]:indptr[p + 1]]``."""
    child_res = parent_res + 1 if child_res is None else child_res
    parents = parent_index(child_res, parent_res)
    order = np.argsort(parents, kind="stable")
    counts = np.bincount(parents, minlength=num_cells(parent_res))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, order.astype(np.int64)


def grid_disk_cells(cells_in: Iterable[str], k: int) -> set[str]:
    """The given cells plus all cells within ``k`` grid steps of any of them."""
    if k < 0:
        raise InputError(f"k-ring size must be >= 0, got {k}")
    out: set[str] = set()
    for cell in set(cells_in):
        out.update(h3.grid_disk(cell, k))
    return out


def centers_of(cells_in: Iterable[str]) -> np.ndarray:
    """(N, 2) float64 lat/lon centres of arbitrary cells, in the given order."""
    return np.array([h3.cell_to_latlng(c) for c in cells_in], dtype=np.float64).reshape(-1, 2)
