"""Hierarchical geocell classification: three H3 classifiers composed at evaluation time.

The benchmark's hierarchical row takes the classifiers trained at H3 resolutions 0, 1 and 2
(122, 842 and 5,882 cells) and descends: the argmax cell at resolution 0, then the argmax
among *its* resolution-1 children only, then the argmax among *that* cell's resolution-2
children only; the prediction is the centre of the final cell. So the answer always descends
from the coarse classifier's choice, even when the fine classifier alone would pick a cell on
another continent. ("Inside" is meant in H3's hierarchy: children only approximately tile
their parent, so a fine cell's centre can lie just across the parent's boundary.)

Children are looked up in padded (n_parent, max_children) index tables built once from
:func:`~geoforensics.core.geo.h3cells.children_csr` (H3 cells have 7 children, pentagons 6),
so a batch costs one gather and one argmax per level: no Python h3 calls per recording.
Scores can be logits or probabilities (the argmax is the same; log-probabilities too).
A row containing NaN at any level gives an invalid (NaN) prediction, a miss in the metrics.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo import h3cells
from geoforensics.core.geo.metrics import GeoMetrics, geolocation_metrics

#: Resolutions of the three classifiers, coarse to fine.
LEVELS: tuple[int, ...] = (0, 1, 2)


@functools.cache
def _children_table(parent_res: int) -> np.ndarray:
    """(n_parent, max_children) child indices at parent_res + 1, padded with -1 (read-only)."""
    indptr, children = h3cells.children_csr(parent_res)
    counts = np.diff(indptr)
    table = np.full((len(counts), int(counts.max())), -1, dtype=np.int64)
    column = np.arange(len(children)) - np.repeat(indptr[:-1], counts)
    table[np.repeat(np.arange(len(counts)), counts), column] = children
    table.setflags(write=False)
    return table


def children_table(parent_res: int) -> np.ndarray:
    """Child cell indices of every cell at ``parent_res`` (padded with -1), a copy."""
    return _children_table(parent_res).copy()


def _scores(array: ArrayLike, res: int, name: str) -> np.ndarray:
    scores = np.asarray(array)
    expected = h3cells.num_cells(res)
    if scores.ndim != 2 or scores.shape[1] != expected:
        raise InputError(
            f"hierarchical: {name} scores must be (N, {expected}) for H3 resolution {res}, "
            f"got {scores.shape}"
        )
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    return scores


def _descend(parent: np.ndarray, scores: np.ndarray, parent_res: int) -> np.ndarray:
    """Argmax of ``scores`` among the children of each row's ``parent`` cell."""
    table = _children_table(parent_res)
    candidates = table[parent]  # (N, max_children), -1 = no child (pentagon)
    picked = np.take_along_axis(scores, np.maximum(candidates, 0), axis=1).astype(np.float64)
    picked[candidates < 0] = -np.inf
    # NaN scores must not win an argmax silently; such rows are flagged invalid by the caller.
    picked[np.isnan(picked)] = -np.inf
    best = np.argmax(picked, axis=1)
    return candidates[np.arange(len(parent)), best]


@dataclass(frozen=True)
class HierarchicalPrediction:
    """Cells chosen at each level (indices into :func:`h3cells.cells`), the final cell's
    centre (N, 2) lat/lon (NaN where a row's scores were invalid), and a validity mask."""

    cell_res0: np.ndarray
    cell_res1: np.ndarray
    cell_res2: np.ndarray
    coords: np.ndarray
    valid: np.ndarray


def hierarchical_predict(
    scores_res0: ArrayLike, scores_res1: ArrayLike, scores_res2: ArrayLike
) -> HierarchicalPrediction:
    """Compose (N, 122), (N, 842), (N, 5882) classifier scores top-down (see module doc)."""
    s0 = _scores(scores_res0, 0, "resolution-0")
    s1 = _scores(scores_res1, 1, "resolution-1")
    s2 = _scores(scores_res2, 2, "resolution-2")
    if not len(s0) == len(s1) == len(s2):
        raise InputError(
            f"hierarchical: row counts differ ({len(s0)}, {len(s1)}, {len(s2)} recordings)"
        )
    valid = ~(np.isnan(s0).any(axis=1) | np.isnan(s1).any(axis=1) | np.isnan(s2).any(axis=1))
    cell0 = np.argmax(np.where(np.isnan(s0), -np.inf, s0), axis=1)
    cell1 = _descend(cell0, s1, 0)
    cell2 = _descend(cell1, s2, 1)
    coords = h3cells.cell_centers(2)[cell2]
    coords[~valid] = np.nan
    return HierarchicalPrediction(cell0, cell1, cell2, coords, valid)


def flat_predict(scores: ArrayLike, res: int) -> np.ndarray:
    """Centre (N, 2) of the argmax cell of one classifier (NaN rows -> NaN prediction)."""
    array = _scores(scores, res, f"resolution-{res}")
    bad = np.isnan(array).any(axis=1)
    best = np.argmax(np.where(np.isnan(array), -np.inf, array), axis=1)
    coords = h3cells.cell_centers(res)[best]
    coords[bad] = np.nan
    return coords


def hierarchical_metrics(
    scores_res0: ArrayLike,
    scores_res1: ArrayLike,
    scores_res2: ArrayLike,
    true_coords: ArrayLike,
) -> dict[str, GeoMetrics]:
    """Metrics of the hierarchical prediction and of each flat classifier, by row name
    (``hierarchical``, ``res0``, ``res1``, ``res2``)."""
    truth = np.asarray(true_coords, dtype=np.float64)
    out = {
        "hierarchical": geolocation_metrics(
            hierarchical_predict(scores_res0, scores_res1, scores_res2).coords, truth
        )
    }
    for res, scores in zip(LEVELS, (scores_res0, scores_res1, scores_res2), strict=True):
        out[f"res{res}"] = geolocation_metrics(flat_predict(scores, res), truth)
    return out
