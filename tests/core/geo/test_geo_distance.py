"""Haversine distances (numpy and torch), coordinate validation and longitude wrapping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import (
    EARTH_RADIUS_KM,
    MAX_DISTANCE_KM,
    check_coords,
    haversine_np,
    haversine_pairwise_np,
    haversine_pairwise_torch,
    haversine_torch,
    validate_coords,
    wrap_longitude,
)

LONDON = (51.5074, -0.1278)
PARIS = (48.8566, 2.3522)


def test_one_degree_of_latitude_is_111_19_km() -> None:
    d = haversine_np([0.0, 10.0], [1.0, 10.0])
    assert d == pytest.approx(2 * math.pi * EARTH_RADIUS_KM / 360)
    assert d == pytest.approx(111.19, abs=0.01)


def test_one_degree_of_longitude_shrinks_with_cos_latitude() -> None:
    assert haversine_np([60.0, 0.0], [60.0, 1.0]) == pytest.approx(111.19 / 2, rel=1e-3)


@pytest.mark.parametrize(
    ("a", "b"),
    [((0.0, 0.0), (0.0, 180.0)), ((90.0, 0.0), (-90.0, 0.0)), ((30.0, 20.0), (-30.0, -160.0))],
)
def test_antipodes_are_pi_r_apart(a: tuple[float, float], b: tuple[float, float]) -> None:
    assert haversine_np(a, b) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert math.pi * EARTH_RADIUS_KM == pytest.approx(MAX_DISTANCE_KM)


def test_london_paris() -> None:
    assert haversine_np(LONDON, PARIS) == pytest.approx(343.5, abs=0.5)


def test_across_the_antimeridian_is_short() -> None:
    assert haversine_np([0.0, 179.5], [0.0, -179.5]) == pytest.approx(111.19, abs=0.01)


def test_broadcasting_and_pairwise_shapes() -> None:
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(-90, 90, 7), rng.uniform(-180, 180, 7)])
    b = np.column_stack([rng.uniform(-90, 90, 5), rng.uniform(-180, 180, 5)])
    assert haversine_np(a, b[:1]).shape == (7,)
    pair = haversine_pairwise_np(a, b)
    assert pair.shape == (7, 5)
    for i in range(7):
        for j in range(5):
            assert pair[i, j] == pytest.approx(haversine_np(a[i], b[j]))


def test_torch_equals_numpy() -> None:
    rng = np.random.default_rng(1)
    a = np.column_stack([rng.uniform(-90, 90, 200), rng.uniform(-180, 180, 200)])
    b = np.column_stack([rng.uniform(-90, 90, 200), rng.uniform(-180, 180, 200)])
    expected = haversine_np(a, b)
    got64 = haversine_torch(torch.from_numpy(a), torch.from_numpy(b))
    assert got64.dtype == torch.float64
    np.testing.assert_allclose(got64.numpy(), expected, rtol=1e-12, atol=1e-9)
    got32 = haversine_torch(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    np.testing.assert_allclose(got32.numpy(), expected, rtol=1e-4, atol=0.05)
    pair = haversine_pairwise_torch(torch.from_numpy(a[:4]), torch.from_numpy(b[:3]))
    np.testing.assert_allclose(pair.numpy(), haversine_pairwise_np(a[:4], b[:3]), rtol=1e-12)


def test_torch_gradient_is_finite_at_zero_distance_with_eps() -> None:
    pred = torch.tensor([[10.0, 20.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[10.0, 20.0]], dtype=torch.float64)
    haversine_torch(pred, target, eps=1e-12).sum().backward()
    assert pred.grad is not None
    assert torch.isfinite(pred.grad).all()


def test_metric_properties_on_random_and_edge_points() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    edges = np.array([[90.0, 0.0], [-90.0, 0.0], [0.0, 180.0], [0.0, -180.0], [0.0, 0.0]])
    points = [
        np.concatenate(
            [edges, np.column_stack([rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)])]
        )
        for _ in range(3)
    ]
    for p in points[1:]:
        rng.shuffle(p)
    a, b, c = points
    ab, ba = haversine_np(a, b), haversine_np(b, a)
    np.testing.assert_allclose(ab, ba, atol=1e-9)
    assert (ab >= 0).all() and (ab <= MAX_DISTANCE_KM + 1e-6).all()
    assert (ab <= haversine_np(a, c) + haversine_np(c, b) + 1e-6).all()
    np.testing.assert_allclose(haversine_np(a, a), 0.0, atol=1e-9)


def test_validate_coords_mask() -> None:
    coords = np.array(
        [
            [0.0, 0.0],
            [90.0, 180.0],
            [-90.0, -180.0],
            [np.nan, 0.0],
            [0.0, np.inf],
            [90.5, 0.0],
            [0.0, -180.01],
        ]
    )
    assert validate_coords(coords).tolist() == [True, True, True, False, False, False, False]


def test_check_coords_names_source_and_row() -> None:
    with pytest.raises(InputError, match=r"points\.csv: row 2 .*lat=95"):
        check_coords([[0.0, 0.0], [1.0, 1.0], [95.0, 1.0]], "points.csv")
    with pytest.raises(InputError, match="shape"):
        check_coords([1.0, 2.0, 3.0], "x")
    assert check_coords([[1, 2]], "ints").dtype == np.float64


def test_wrap_longitude() -> None:
    got = wrap_longitude([0.0, 181.0, -181.0, 180.0, 540.0, -180.0, 359.5])
    np.testing.assert_allclose(got, [0.0, -179.0, 179.0, -180.0, -180.0, -180.0, -0.5])
    assert haversine_np([10.0, float(wrap_longitude(190.0))], [10.0, -170.0]) == pytest.approx(0)
    # just below -180: np.mod rounds onto 360, which must still wrap into [-180, 180)
    assert float(wrap_longitude(179.99999999999997 - 360.0)) == -180.0
