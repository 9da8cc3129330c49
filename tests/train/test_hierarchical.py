"""Hierarchical H3 classification: res 0 -> children at res 1 -> children at res 2."""

from __future__ import annotations

import time

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo import h3cells
from geoforensics.core.geo.distance import haversine_np
from geoforensics.train.hierarchical import (
    children_table,
    flat_predict,
    hierarchical_metrics,
    hierarchical_predict,
)

N0, N1, N2 = 122, 842, 5882


def _children(parent: int, parent_res: int) -> np.ndarray:
    return np.flatnonzero(h3cells.parent_index(parent_res + 1) == parent)


def _scores(rows: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((rows, n), dtype=np.float32) for n in (N0, N1, N2))


def test_hierarchy_overrides_a_flat_argmax_on_another_continent() -> None:
    london = np.array([[51.5, -0.1]])
    sydney = np.array([[-33.9, 151.2]])
    coarse = int(h3cells.latlng_to_cell_index(london, 0)[0])
    mid = int(h3cells.latlng_to_cell_index(london, 1)[0])
    fine = int(h3cells.latlng_to_cell_index(london, 2)[0])
    far_mid = int(h3cells.latlng_to_cell_index(sydney, 1)[0])
    far_fine = int(h3cells.latlng_to_cell_index(sydney, 2)[0])
    s0, s1, s2 = (np.zeros((1, n)) for n in (N0, N1, N2))
    s0[0, coarse] = 5.0
    s1[0, far_mid] = 9.0  # the flat res-1 and res-2 argmaxes are in Australia ...
    s1[0, mid] = 3.0  # ... London's res-1 cell is only the best child of the res-0 choice
    s2[0, far_fine] = 9.0
    s2[0, fine] = 2.0
    assert flat_predict(s2, 2)[0, 0] < 0, "the flat res-2 answer lies in the south"
    pred = hierarchical_predict(s0, s1, s2)
    assert (pred.cell_res0[0], pred.cell_res1[0], pred.cell_res2[0]) == (coarse, mid, fine)
    np.testing.assert_allclose(pred.coords[0], h3cells.cell_centers(2)[fine])
    assert haversine_np(pred.coords, london)[0] < 200
    assert h3cells.parent_index(2, 0)[pred.cell_res2[0]] == coarse
    assert h3cells.latlng_to_cell_index(pred.coords, 0)[0] == coarse
    assert pred.valid.all()


def test_every_level_stays_inside_the_previous_choice() -> None:
    s0, s1, s2 = _scores(500, seed=1)
    pred = hierarchical_predict(s0, s1, s2)
    np.testing.assert_array_equal(pred.cell_res0, s0.argmax(axis=1))
    np.testing.assert_array_equal(h3cells.parent_index(1)[pred.cell_res1], pred.cell_res0)
    np.testing.assert_array_equal(h3cells.parent_index(2)[pred.cell_res2], pred.cell_res1)
    # Each choice is the best-scoring child, checked row by row against the masks.
    mask1, mask2 = h3cells.children_mask(0), h3cells.children_mask(1)
    for row in range(0, 500, 50):
        allowed1 = np.flatnonzero(mask1[pred.cell_res0[row]])
        assert pred.cell_res1[row] == allowed1[np.argmax(s1[row, allowed1])]
        allowed2 = np.flatnonzero(mask2[pred.cell_res1[row]])
        assert pred.cell_res2[row] == allowed2[np.argmax(s2[row, allowed2])]
    # The final cell descends from the res-0 choice (H3 children only approximately tile their
    # parent, so "inside" is meant in the hierarchy, not always geometrically).
    np.testing.assert_array_equal(h3cells.parent_index(2, 0)[pred.cell_res2], pred.cell_res0)


def test_pentagon_padding_is_never_chosen() -> None:
    table = children_table(0)
    pentagons = np.flatnonzero((table < 0).any(axis=1))
    assert len(pentagons) == 12  # the 12 H3 pentagons have 6 children, hexagons 7
    parent = int(pentagons[0])
    s0, s1, s2 = (np.full((1, n), -1.0) for n in (N0, N1, N2))
    s0[0, parent] = 1.0
    s1[0, 0] = 100.0  # cell 0 is what a padded -1 entry would alias to
    s2[0, 0] = 100.0
    pred = hierarchical_predict(s0, s1, s2)
    assert pred.cell_res1[0] in _children(parent, 0)
    assert pred.cell_res2[0] in _children(int(pred.cell_res1[0]), 1)


def test_probabilities_logits_and_log_probabilities_agree() -> None:
    s0, s1, s2 = _scores(300, seed=2)

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    logits = hierarchical_predict(s0, s1, s2)
    probs = hierarchical_predict(softmax(s0), softmax(s1), softmax(s2).astype(np.float32))
    np.testing.assert_array_equal(logits.cell_res2, probs.cell_res2)


def test_nan_rows_are_invalid_predictions_and_count_as_misses() -> None:
    s0, s1, s2 = _scores(4, seed=3)
    truth = hierarchical_predict(s0, s1, s2).coords  # every clean prediction is a hit
    s2[1, 7] = np.nan
    pred = hierarchical_predict(s0, s1, s2)
    assert pred.valid.tolist() == [True, False, True, True]
    assert np.isnan(pred.coords[1]).all() and np.isfinite(pred.coords[[0, 2, 3]]).all()
    metrics = hierarchical_metrics(s0, s1, s2, truth)
    assert set(metrics) == {"hierarchical", "res0", "res1", "res2"}
    assert metrics["hierarchical"].n_invalid == 1
    assert metrics["hierarchical"].accuracy[1.0] == 0.75
    assert metrics["res0"].n_invalid == 0 and metrics["res2"].n_invalid == 1


def test_shape_errors() -> None:
    s0, s1, s2 = _scores(3)
    with pytest.raises(InputError, match=r"\(N, 842\)"):
        hierarchical_predict(s0, s2, s2)
    with pytest.raises(InputError, match="row counts"):
        hierarchical_predict(s0, s1[:2], s2)


def test_vectorised_on_ten_thousand_rows() -> None:
    s0, s1, s2 = _scores(10_000, seed=4)
    hierarchical_predict(s0[:2], s1[:2], s2[:2])  # builds the cached child tables
    started = time.perf_counter()
    pred = hierarchical_predict(s0, s1, s2)
    elapsed = time.perf_counter() - started
    print(f"hierarchical prediction of 10,000 rows: {elapsed * 1000:.0f} ms")
    assert pred.coords.shape == (10_000, 2) and pred.valid.all()
