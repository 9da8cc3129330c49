"""Galleries: grids, the land filter, dataset-derived galleries, files, registry, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import h3
import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo import gallery as gal
from geoforensics.core.geo.distance import haversine_np
from geoforensics.core.geo.gallery import Gallery, build_gallery


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("GEOFORENSICS_CACHE", str(root))
    return root


def _cell_index_1deg(lat: float, lon: float) -> int:
    return int((np.floor(lat) + 90) * 360 + (np.floor(lon) + 180))


def test_grid_1deg_is_180_by_360_cell_centres() -> None:
    g = build_gallery("grid-1deg")
    assert g.coords.shape == (180 * 360, 2)
    assert g.coords.dtype == np.float64
    assert np.unique(g.coords[:, 0]).size == 180 and np.unique(g.coords[:, 1]).size == 360
    assert g.extent() == (-89.5, 89.5, -179.5, 179.5)
    np.testing.assert_array_equal(g.coords[_cell_index_1deg(46.2, 2.7)], [46.5, 2.5])


def test_grid_half_degree_and_bad_steps() -> None:
    g = build_gallery("grid-0.5deg")
    assert len(g) == 360 * 720
    assert g.extent() == (-89.75, 89.75, -179.75, 179.75)
    with pytest.raises(InputError, match="divide 180"):
        build_gallery("grid-0.7deg")


@pytest.fixture(scope="module")
def land_1deg() -> tuple[np.ndarray, np.ndarray]:
    return gal.land_points(1.0)


def test_land_filter_keeps_france_drops_mid_pacific(
    land_1deg: tuple[np.ndarray, np.ndarray],
) -> None:
    is_land, points = land_1deg
    assert is_land[_cell_index_1deg(46.5, 2.5)]  # central France
    np.testing.assert_array_equal(points[_cell_index_1deg(46.5, 2.5)], [46.5, 2.5])
    assert not is_land[_cell_index_1deg(0.2, -140.3)]  # mid-Pacific
    assert not is_land[_cell_index_1deg(-40.0, -30.0)]  # South Atlantic


def test_land_fraction_is_plausible(land_1deg: tuple[np.ndarray, np.ndarray]) -> None:
    from global_land_mask import globe

    is_land, points = land_1deg
    centres = gal.grid_gallery(1.0).coords
    centre_only = globe.is_land(centres[:, 0], centres[:, 1])
    # ~29 % of the surface is land; polar rows are over-represented on a lat/lon grid and
    # coastal cells count as land, so the share of 1° cells is a little higher.
    assert 0.30 < is_land.mean() < 0.42
    assert is_land[centre_only].all()  # a land centre is always a land cell
    assert globe.is_land(points[is_land, 0], points[is_land, 1]).all()  # every point on land


@pytest.mark.parametrize(
    ("name", "lat", "lon"),
    [("St Helena", -15.95, -5.71), ("Ascension", -7.95, -14.36), ("Bermuda", 32.3, -64.78)],
)
def test_small_islands_keep_a_candidate_on_the_island(
    land_1deg: tuple[np.ndarray, np.ndarray], name: str, lat: float, lon: float
) -> None:
    is_land, points = land_1deg
    i = _cell_index_1deg(lat, lon)
    assert is_land[i], name
    assert haversine_np(points[i], [lat, lon]) < 30.0, name


def test_land_gallery_is_cached_on_disk(cache: Path) -> None:
    first = gal.land_gallery(2.0)
    assert len(first) > 0
    assert first.metadata["kind"] == "land"
    cached = list((cache / "galleries").glob("land-2deg*.npy"))
    assert len(cached) == 1
    np.testing.assert_array_equal(Gallery.load(cached[0]).coords, first.coords)
    again = build_gallery("land-2deg")
    np.testing.assert_array_equal(again.coords, first.coords)
    assert again.name == "land-2deg"


def test_save_load_round_trip(tmp_path: Path) -> None:
    g = Gallery("mine", [[1.5, 2.5], [-3.0, 170.0]], {"kind": "test", "n": 2})
    out = g.save(tmp_path / "sub" / "mine.npy")
    raw = np.load(out, allow_pickle=False)
    assert raw.shape == (2, 2) and raw.dtype == np.float64
    side = json.loads((tmp_path / "sub" / "mine.json").read_text())
    assert side["count"] == 2 and side["name"] == "mine"
    back = Gallery.load(out)
    assert back.name == "mine" and back.metadata == {"kind": "test", "n": 2}
    np.testing.assert_array_equal(back.coords, g.coords)
    assert not list((tmp_path / "sub").glob("*.tmp"))


def test_stale_sidecar_is_ignored(tmp_path: Path) -> None:
    out = Gallery("old", [[1.0, 2.0]], {"kind": "x"}).save(tmp_path / "g.npy")
    np.save(out, np.array([[5.0, 6.0], [7.0, 8.0]]))
    back = Gallery.load(out)
    assert back.name == "g" and len(back) == 2 and "kind" not in back.metadata


def test_save_requires_npy_and_json_metadata(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.npy"):
        Gallery("x", [[0.0, 0.0]]).save(tmp_path / "x.csv")
    with pytest.raises(InputError, match="JSON"):
        Gallery("x", [[0.0, 0.0]], {"bad": np.zeros(2)}).save(tmp_path / "x.npy")


def test_gallery_rejects_invalid_and_empty_coords() -> None:
    with pytest.raises(InputError, match="row 1"):
        Gallery("x", [[0.0, 0.0], [100.0, 0.0]])
    with pytest.raises(InputError, match="no locations"):
        Gallery("x", np.zeros((0, 2)))


def test_from_coords_unique_sorted_nan_dropped() -> None:
    coords = np.array([[3.0, 4.0], [1.0, 2.0], [1.0, 2.0], [np.nan, 3.0], [-0.0, 5.0], [0, 5]])
    g = gal.from_coords(coords, name="train", split="train")
    np.testing.assert_array_equal(g.coords, [[0.0, 5.0], [1.0, 2.0], [3.0, 4.0]])
    assert g.metadata["n_dropped"] == 1 and g.metadata["split"] == "train"
    shuffled = gal.from_coords(coords[::-1], name="train")
    assert shuffled.coords_sha256() == g.coords_sha256()
    with pytest.raises(InputError, match="no valid locations"):
        gal.from_coords(np.full((3, 2), np.nan))


def test_train_neighbour_cells() -> None:
    train = np.array([[48.8566, 2.3522], [48.86, 2.35], [np.nan, 0.0]])
    cell = h3.latlng_to_cell(48.8566, 2.3522, 3)
    own = gal.train_neighbour_gallery(train, res=3, k=0)
    np.testing.assert_allclose(own.coords, [h3.cell_to_latlng(cell)])
    ring = gal.train_neighbour_gallery(train, res=3, k=1)
    assert len(ring) == 7
    expected = sorted(h3.grid_disk(cell, 1))
    np.testing.assert_allclose(ring.coords, [h3.cell_to_latlng(c) for c in expected])
    assert ring.metadata["n_train_cells"] == 1


@pytest.mark.parametrize("header", ["lat,lon", "latitude,longitude", "LAT,LON", "id,Lat,Lng"])
def test_csv_headers_round_trip(tmp_path: Path, header: str) -> None:
    path = tmp_path / "points.csv"
    rows = ["1.5,2.5", "-45,170.25"]
    if header.startswith("id"):
        rows = [f"{i},{r}" for i, r in enumerate(rows)]
    path.write_text("\n".join([header, *rows, ""]))
    g = build_gallery(f"file:{path}")
    np.testing.assert_array_equal(g.coords, [[1.5, 2.5], [-45.0, 170.25]])
    assert g.name == "points"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("lat,lon\n", "header only"),
        ("x,y\n1,2\n", "no latitude/longitude columns"),
        ("lat,lon\n1,2\n95,3\n", "line 3: lat=95.0"),
        ("lat,lon\n1,2\n1,abc\n", "line 3: lat/lon '1', 'abc' are not numbers"),
        ("lat,lon,z\n1\n", "line 2: too few columns"),
    ],
)
def test_bad_csv_errors_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        build_gallery(f"file:{path}")
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_npy_files(tmp_path: Path) -> None:
    good = tmp_path / "good.npy"
    np.save(good, np.array([[10.0, 20.0], [30.0, -40.0]], dtype=np.float32))
    g = build_gallery(f"file:{good}")
    assert g.coords.dtype == np.float64 and len(g) == 2
    cases = {
        "shape.npy": (np.zeros((3, 3)), "shape"),
        "range.npy": (np.array([[0.0, 0.0], [0.0, 181.0]]), "row 1"),
        "empty.npy": (np.zeros((0, 2)), "empty"),
        "text.npy": (np.array([["a", "b"]]), "numeric"),
    }
    for name, (array, message) in cases.items():
        np.save(tmp_path / name, array)
        with pytest.raises(InputError, match=message):
            build_gallery(f"file:{tmp_path / name}")
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="not a readable"):
        build_gallery(f"file:{pickled}")
    with pytest.raises(InputError, match="no such gallery file"):
        build_gallery(f"file:{tmp_path / 'missing.npy'}")
    with pytest.raises(InputError, match="unsupported"):
        build_gallery(f"file:{tmp_path / 'x.json'}")


def test_geoclip_100k_gallery() -> None:
    g = build_gallery("geoclip-100k")
    assert g.coords.shape == (100_000, 2)
    np.testing.assert_allclose(g.coords[0], [-50.943392, -72.935664])


def test_registry_and_resolve(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown gallery 'nowhere'.*land-1deg"):
        build_gallery("nowhere")
    saved = build_gallery("grid-10deg").save(tmp_path / "g10.npy")
    resolved = gal.resolve_gallery(str(saved))
    assert resolved.name == "grid-10deg" and len(resolved) == 18 * 36
    assert len(gal.resolve_gallery("grid-30deg")) == 6 * 12
