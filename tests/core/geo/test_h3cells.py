"""H3 cell lists at resolutions 0/1/2, index lookup, parent maps and children masks."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo import h3cells


@pytest.mark.parametrize(("res", "count"), [(0, 122), (1, 842), (2, 5882)])
def test_complete_cell_lists(res: int, count: int) -> None:
    cells = h3cells.cells(res)
    assert len(cells) == count == h3cells.num_cells(res)
    assert len(set(cells)) == count
    assert list(cells) == sorted(cells)
    assert all(h3.get_resolution(c) == res for c in cells)
    assert h3cells.cell_centers(res).shape == (count, 2)


@pytest.mark.parametrize("res", [0, 1, 2])
def test_centres_map_back_to_their_own_index(res: int) -> None:
    centres = h3cells.cell_centers(res)
    np.testing.assert_array_equal(
        h3cells.latlng_to_cell_index(centres, res), np.arange(len(centres))
    )


def test_latlng_to_cell_index_known_point_and_invalid_rows() -> None:
    coords = np.array([[48.8566, 2.3522], [np.nan, 0.0], [0.0, 200.0]])
    idx = h3cells.latlng_to_cell_index(coords, 2)
    assert h3cells.cells(2)[idx[0]] == h3.latlng_to_cell(48.8566, 2.3522, 2)
    assert idx[1:].tolist() == [-1, -1]
    assert idx.dtype == np.int64


@pytest.mark.parametrize("res", [1, 2])
def test_parent_map_matches_h3(res: int) -> None:
    parents = h3cells.parent_index(res)
    coarse = h3cells.cells(res - 1)
    for i, cell in enumerate(h3cells.cells(res)):
        assert coarse[parents[i]] == h3.cell_to_parent(cell, res - 1)


def test_two_level_parent_map() -> None:
    parents = h3cells.parent_index(2, 0)
    coarse = h3cells.cells(0)
    assert all(
        coarse[p] == h3.cell_to_parent(c, 0) for c, p in zip(h3cells.cells(2), parents, strict=True)
    )
    np.testing.assert_array_equal(parents, h3cells.parent_index(1)[h3cells.parent_index(2)])


@pytest.mark.parametrize("parent_res", [0, 1])
def test_children_mask_and_csr(parent_res: int) -> None:
    mask = h3cells.children_mask(parent_res)
    n_parent, n_child = h3cells.num_cells(parent_res), h3cells.num_cells(parent_res + 1)
    assert mask.shape == (n_parent, n_child)
    assert (mask.sum(axis=0) == 1).all()  # each child has exactly one parent
    per_parent = mask.sum(axis=1)
    pentagons = np.array([h3.is_pentagon(c) for c in h3cells.cells(parent_res)])
    assert (per_parent[pentagons] == 6).all() and pentagons.sum() == 12
    assert (per_parent[~pentagons] == 7).all()
    indptr, indices = h3cells.children_csr(parent_res)
    for p in range(n_parent):
        assert sorted(indices[indptr[p] : indptr[p + 1]]) == np.flatnonzero(mask[p]).tolist()


def test_hierarchical_masking_picks_a_child_of_the_coarse_argmax() -> None:
    rng = np.random.default_rng(0)
    coarse_logits = rng.normal(size=(4, 122))
    fine_logits = rng.normal(size=(4, 842))
    best = coarse_logits.argmax(axis=1)
    masked = np.where(h3cells.children_mask(0)[best], fine_logits, -np.inf)
    chosen = masked.argmax(axis=1)
    np.testing.assert_array_equal(h3cells.parent_index(1)[chosen], best)


def test_out_of_range_resolution_is_an_error() -> None:
    with pytest.raises(InputError, match="resolution 5"):
        h3cells.cells(5)
    with pytest.raises(InputError):
        h3cells.parent_index(2, 2)


def test_grid_disk_cells() -> None:
    cell = h3.latlng_to_cell(48.8566, 2.3522, 3)
    assert h3cells.grid_disk_cells([cell, cell], 0) == {cell}
    assert len(h3cells.grid_disk_cells([cell], 1)) == 7
