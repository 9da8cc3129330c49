"""Confidence regions: coverage after conformal calibration, the top place, areas, GeoJSON."""

from __future__ import annotations

import itertools
import math

import h3
import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo.calibration import calibrate, conformal_scores
from geoforensics.core.geo.gallery import grid_gallery
from geoforensics.core.geo.regions import (
    RegionGrid,
    cells_to_geojson,
    confidence_regions,
    connected_parts,
    geojson_area_km2,
)

LEVELS = (0.5, 0.8, 0.9, 0.95)
#: Coverage tolerance of the seeded calibration/test split (n = 300 each): binomial standard
#: error at 80 % is 2.3 points; 5 points is about two of them.
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def grid() -> RegionGrid:
    """A 4-degree grid gallery on H3 res-2 cells (fast to build)."""
    return RegionGrid.build(grid_gallery(4.0).coords, res=2)


def _bump(coords: np.ndarray, centre: np.ndarray, sigma_deg: float) -> np.ndarray:
    dlat = coords[:, 0] - centre[0]
    dlon = (coords[:, 1] - centre[1] + 180.0) % 360.0 - 180.0
    dlon = dlon * np.cos(np.radians(centre[0]))
    weights = np.exp(-(dlat**2 + dlon**2) / (2 * sigma_deg**2)) + 1e-12
    return weights / weights.sum()


def _items(coords: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An over-confident model: predicted bump of 5 degrees, true places spread 10 degrees."""
    rng = np.random.default_rng(seed)
    centres = np.column_stack([rng.uniform(-50, 60, n), rng.uniform(-170, 170, n)])
    truth = centres + rng.normal(0.0, 10.0, (n, 2))
    truth[:, 0] = np.clip(truth[:, 0], -85, 85)
    truth[:, 1] = (truth[:, 1] + 180.0) % 360.0 - 180.0
    probs = np.stack([_bump(coords, c, 5.0) for c in centres])
    return probs, truth


def test_calibrated_coverage_reaches_nominal(grid: RegionGrid) -> None:
    cal_probs, cal_truth = _items(grid.coords, 300, seed=1)
    test_probs, test_truth = _items(grid.coords, 300, seed=2)
    calibration = calibrate(
        "agclip", {"gallery": "grid-4deg"}, grid, conformal_scores(grid, cal_probs, cal_truth)
    )
    test_scores = conformal_scores(grid, test_probs, test_truth)
    for level in LEVELS:
        t = calibration.threshold(level)
        assert t is not None
        coverage = float(np.mean(test_scores <= t + 1e-12))
        raw = float(np.mean(test_scores <= level))
        assert level - TOLERANCE <= coverage <= level + TOLERANCE, (level, coverage)
        assert raw < level - 0.1  # the raw mass of an over-confident model under-covers
    # Regions built with the calibration agree with the scores: contained iff score <= t.
    for probs, place, score in zip(test_probs[:20], test_truth[:20], test_scores[:20], strict=True):
        region = confidence_regions(probs, grid, calibration, levels=(0.9,))[0]
        inside = region.contains(*place)
        assert region.calibrated
        assert inside == (score <= calibration.thresholds[0.9])


def test_region_keeps_top_place_and_grows_with_level(grid: RegionGrid) -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        probs = rng.dirichlet(np.full(len(grid), 0.05))
        top = grid.coords[int(np.argmax(probs))]
        regions = confidence_regions(probs, grid, levels=(0.01, *LEVELS))
        areas = [r.area_km2 for r in regions]
        assert areas == sorted(areas) and areas[-1] > areas[0] > 0
        assert [r.mass for r in regions] == sorted(r.mass for r in regions)
        for region in regions:
            assert region.contains(*top)
            assert not region.calibrated and region.source.startswith("uncalibrated")
            assert region.mass >= min(region.level, 1.0) - 1e-9


def test_region_summary_and_cells(grid: RegionGrid) -> None:
    probs = _bump(grid.coords, np.array([48.0, 10.0]), 6.0)
    region = confidence_regions(probs, grid, levels=(0.9,))[0]
    info = region.as_dict()
    assert info["level"] == 0.9 and info["calibrated"] is False and info["n_parts"] == 1
    assert math.isclose(info["area_km2"], sum(h3.cell_area(c, "km^2") for c in region.cells))
    assert set(h3.uncompact_cells(info["cells"], region.res)) == set(region.cells)
    assert region.feature()["geometry"]["type"] == "Polygon"
    assert json_roundtrip(info)


def json_roundtrip(value: object) -> bool:
    import json

    return json.loads(json.dumps(value, allow_nan=False)) == value


def _rings(geometry: dict) -> list[list[list[float]]]:
    polygons = (
        [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    )
    return [ring for polygon in polygons for ring in polygon]


def _signed(ring: list[list[float]]) -> float:
    return 0.5 * sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(ring))


@pytest.mark.parametrize(
    ("lat", "lon", "k"),
    [(48.0, 10.0, 3), (65.0, 179.95, 3), (0.0, -180.0, 2), (-70.0, -179.9, 4), (89.9, 0.0, 1)],
)
def test_geojson_is_valid_and_split_at_antimeridian(lat: float, lon: float, k: int) -> None:
    cells = h3.grid_disk(h3.latlng_to_cell(lat, lon, 3), k)
    geometry = cells_to_geojson(cells)
    assert geometry["type"] in ("Polygon", "MultiPolygon")
    for ring in _rings(geometry):
        assert ring[0] == ring[-1] and len(ring) >= 4  # closed
        lons = np.array([p[0] for p in ring])
        lats = np.array([p[1] for p in ring])
        assert np.all(np.abs(lons) <= 180.0) and np.all(np.abs(lats) <= 90.0)
        # No edge jumps across the map (except along a pole, the edge closing a polar cap).
        jumps = np.abs(np.diff(lons)) > 180.0
        assert np.all(np.abs(lats[:-1][jumps]) == 90.0) and np.all(np.abs(lats[1:][jumps]) == 90.0)
    exteriors = [poly[0] for poly in ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                                      else geometry["coordinates"])]  # fmt: skip
    assert all(_signed(r) > 0 for r in exteriors)  # counter-clockwise
    h3_area = sum(h3.cell_area(c, "km^2") for c in cells)
    # Straight lon/lat edges approximate the cells: exact away from the poles.
    tolerance = 0.4 if abs(lat) > 85 else 0.002
    assert geojson_area_km2(geometry) == pytest.approx(h3_area, rel=tolerance)
    ring_points = [p for r in _rings(geometry) for p in r]
    if abs(lon) > 179 and abs(lat) < 85:  # both sides of the antimeridian are present
        assert any(p[0] > 170 for p in ring_points) and any(p[0] < -170 for p in ring_points)
        assert geometry["type"] == "MultiPolygon"
    if lat == 48.0:  # lon/lat order
        assert all(0 < p[0] < 20 and 40 < p[1] < 56 for p in ring_points)
    assert len(connected_parts(cells)) == 1


def test_separate_parts_are_counted(grid: RegionGrid) -> None:
    probs = _bump(grid.coords, np.array([45.0, 5.0]), 3.0) + _bump(
        grid.coords, np.array([-30.0, 140.0]), 3.0
    )
    region = confidence_regions(probs / probs.sum(), grid, levels=(0.9,))[0]
    assert region.n_parts == 2
    assert region.geojson()["type"] == "MultiPolygon"


def test_bad_inputs_raise_one_line_errors(grid: RegionGrid) -> None:
    with pytest.raises(InputError, match="probabilities for"):
        confidence_regions(np.ones(3), grid)
    with pytest.raises(InputError, match="level"):
        confidence_regions(np.ones(len(grid)), grid, levels=(90,))
    with pytest.raises(InputError, match="resolution"):
        RegionGrid.build(grid.coords, res=9)
    with pytest.raises(InputError, match="reach"):
        RegionGrid.build(grid.coords, res=2, max_km=10.0)
    probs = np.zeros(len(grid))
    with pytest.raises(InputError, match="sum to 0"):
        confidence_regions(probs, grid)


def test_places_beyond_reach_are_never_covered() -> None:
    coords = np.array([[48.0, 10.0], [49.0, 11.0], [47.5, 9.0]])
    grid = RegionGrid.build(coords, res=2, max_km=400.0)
    probs = np.array([0.5, 0.3, 0.2])
    scores = grid.scores(probs, np.array([[48.2, 10.1], [-30.0, 140.0]]))
    assert scores[0] <= 1.0 and math.isinf(scores[1])
    region = confidence_regions(probs, grid, levels=(0.95,))[0]
    assert region.contains(48.2, 10.1) and not region.contains(-30.0, 140.0)
    assert region.area_km2 <= grid.covered_area_km2 + 1e-6


def test_bench_coverage_figures_table_and_plot(grid: RegionGrid, tmp_path: object) -> None:
    from pathlib import Path

    from geoforensics.eval.coverage import (
        CoverageInputs,
        cap_area_km2,
        coverage_figures,
        coverage_table,
        plot_reliability,
    )

    cal_probs, cal_truth = _items(grid.coords, 120, seed=3)
    test_probs, test_truth = _items(grid.coords, 120, seed=4)
    inputs = CoverageInputs(grid.coords, cal_probs, cal_truth, test_probs, test_truth)
    groups = ["north" if lat > 0 else "south" for lat in test_truth[:, 0]]
    figures = coverage_figures(inputs, groups=groups, grid=grid)
    assert figures["n_calibration"] == figures["n_test"] == 120
    levels = figures["levels"]
    assert [e["level"] for e in levels] == list(LEVELS)
    for entry in levels:
        assert abs(entry["coverage"] - entry["level"]) <= 0.1
        assert entry["coverage_uncalibrated"] < entry["level"]  # over-confident raw mass
        assert entry["worst_group"]["coverage"] <= entry["coverage"] + 1e-9
        assert entry["radius_area_km2"] == pytest.approx(cap_area_km2(entry["radius_km"]))
    areas = [e["median_area_km2"] for e in levels]
    assert areas == sorted(areas)
    table = coverage_table({"agclip": "AG-CLIP"}, {"agclip": figures})
    assert table.count("| AG-CLIP |") == 4
    out = Path(str(tmp_path)) / "reliability.png"
    plot_reliability({"agclip": figures}, {"agclip": "AG-CLIP"}, out, caption="SYNTHETIC")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_score_within_the_threshold_is_always_inside() -> None:
    """Ties, zero-mass points included: score <= t puts the place inside the region at t."""
    from geoforensics.core.geo.calibration import Calibration

    coords = np.array([[48.0, 10.0], [40.0, -3.0], [52.0, 13.0], [45.0, 25.0], [38.0, 23.0]])
    grid = RegionGrid.build(coords, res=2, max_km=600.0)
    probs = np.array([0.5, 0.25, 0.25, 0.0, 0.0])
    for place in coords[1:]:
        score = float(grid.scores(probs, place)[0])
        entry = Calibration("agclip", {}, {0.9: score}, 10, grid.res, grid.max_km)
        region = confidence_regions(probs, grid, entry, levels=(0.9,))[0]
        assert region.contains(*place), (place, score)
    assert float(grid.scores(probs, coords[3])[0]) == pytest.approx(1.0)


def test_fused_coverage_uses_the_fused_rows_species_likelihood(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fused row records no likelihood and scores species with ``SpeciesLikelihood``'s
    default model: coverage must rebuild that posterior, not the old ``draw`` fallback."""
    from types import SimpleNamespace

    from geoforensics.core.species.likelihood import DEFAULT_LIKELIHOOD, SpeciesLikelihood
    from geoforensics.eval import coverage

    assert SpeciesLikelihood.__dataclass_fields__["model"].default == DEFAULT_LIKELIHOOD
    used: list[tuple[str, str]] = []

    def species(data: object, split: str, likelihood: str = "x", prior: object = None):  # type: ignore[no-untyped-def]
        used.append((split, likelihood))
        yield np.log(np.full((2, 3), 1.0 / 3.0))

    def agclip(data: object, embeddings: np.ndarray):  # type: ignore[no-untyped-def]
        yield np.log(np.full((2, 3), 1.0 / 3.0))

    monkeypatch.setattr(coverage, "_species_log_probs", species)
    monkeypatch.setattr(coverage, "_agclip_log_probs", agclip)
    monkeypatch.setattr(coverage, "_agclip_embeddings", lambda d, m, s: np.zeros((2, 4)))
    parent = SimpleNamespace(extra={"model_dir": "m"}, arrays={"embeddings": np.zeros((2, 4))})
    fused = SimpleNamespace(extra={"fusion_weight": 4.0}, arrays={})
    val, test, setting = coverage.row_distributions(
        object(),  # type: ignore[arg-type]
        "fused-annotated",
        fused,  # type: ignore[arg-type]
        parent,  # type: ignore[arg-type]
    )
    for chunks in (val, test):
        for chunk in chunks:
            assert np.allclose(chunk.sum(axis=1), 1.0)
    assert used == [("val", DEFAULT_LIKELIHOOD), ("test", DEFAULT_LIKELIHOOD)]
    assert setting["likelihood"] == DEFAULT_LIKELIHOOD


def test_agclip_coverage_uses_the_gallery_prior_of_every_agclip_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a regular grid gallery AG-CLIP's distribution carries the cell-area prior (the row's
    top place, ``locate``, ``calibrate``): coverage must rebuild that one."""
    from types import SimpleNamespace

    from geoforensics.core.geo.gallery import gallery_log_prior
    from geoforensics.core.models.audio_places import place_log_probs
    from geoforensics.eval import coverage

    gallery = grid_gallery(20.0)
    rng = np.random.default_rng(0)
    points = rng.normal(size=(len(gallery), 8))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    recordings = points[:3] + 0.1 * rng.normal(size=(3, 8))
    recordings /= np.linalg.norm(recordings, axis=1, keepdims=True)
    data = SimpleNamespace(gallery=gallery, retrieval_index=SimpleNamespace(embeddings=points))
    monkeypatch.setattr(coverage, "_agclip_embeddings", lambda d, m, s: recordings)
    result = SimpleNamespace(extra={"model_dir": "m"}, arrays={"embeddings": recordings})
    val, test, setting = coverage.row_distributions(
        data,  # type: ignore[arg-type]
        "agclip",
        result,  # type: ignore[arg-type]
    )
    prior = gallery_log_prior(gallery)
    assert np.ptp(prior) > 0.5  # the area prior is not flat on a 20-degree grid
    want = np.exp(place_log_probs(np.clip(recordings @ points.T, -1, 1), prior))
    for chunks in (val, test):
        got = np.concatenate(list(chunks))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)  # float32 cosines
    assert setting == {"kind": "agclip", "prior": "cell area (cos latitude)"}
