"""Fusion of AG-CLIP scores with the species likelihood: normalisation, gains, weight choice."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import haversine_np
from geoforensics.core.species.fusion import (
    DEFAULT_FUSION_WEIGHTS,
    agclip_log_probs,
    agclip_temperature,
    choose_fusion_weight,
    fuse,
    fused_top1,
    log_normalise,
)

G, N = 1500, 300


def _unit(latlon: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


def _latlon(vectors: np.ndarray) -> np.ndarray:
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.stack([np.degrees(np.arcsin(v[:, 2])), np.degrees(np.arctan2(v[:, 1], v[:, 0]))], 1)


class World:
    """A random gallery on the sphere, N recordings at gallery points, and two experts whose
    maps peak at the truth displaced by independent noise (sigma 0.15 rad ~ 950 km)."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.gallery = _latlon(rng.standard_normal((G, 3)))
        self.units = _unit(self.gallery)
        self.truth_idx = rng.integers(0, G, N)
        self.truth = self.gallery[self.truth_idx]

    def centres(self, sigma: float) -> np.ndarray:
        """Noisy unit vectors around each recording's true place (sigma inf: random)."""
        true = self.units[self.truth_idx]
        if math.isinf(sigma):
            noisy = self.rng.standard_normal(true.shape)
        else:
            noisy = true + sigma * self.rng.standard_normal(true.shape)
        return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)

    def cosine(self, sigma: float) -> np.ndarray:
        """(N, G) AG-CLIP-like cosine similarities."""
        return self.centres(sigma) @ self.units.T

    def species(self, sigma: float, scale: float = 1.0) -> np.ndarray:
        """(N, G) a species log-likelihood on AG-CLIP's scale times ``scale``."""
        return scale * agclip_temperature() * self.cosine(sigma)

    def median(self, index: np.ndarray) -> float:
        return float(np.median(haversine_np(self.gallery[index], self.truth)))


@pytest.fixture()
def world() -> World:
    return World()


def test_temperature_is_geoclips() -> None:
    assert agclip_temperature() == pytest.approx(39.7, abs=0.1)


def test_fuse_normalises_and_has_the_right_limits() -> None:
    rng = np.random.default_rng(1)
    cosine = rng.uniform(-1, 1, (4, 50))
    loglik = rng.normal(0, 5, (4, 50))
    for w in (0.0, 0.5, 1.0, 3.0, math.inf):
        fused = fuse(cosine, loglik, w)
        assert fused.shape == (4, 50)
        np.testing.assert_allclose(np.exp(fused).sum(axis=1), 1.0, rtol=1e-12)
    t = agclip_temperature()
    expected = cosine * t - np.log(np.exp(cosine * t).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(fuse(cosine, loglik, 0.0), expected, rtol=1e-10)
    np.testing.assert_allclose(agclip_log_probs(cosine), expected, rtol=1e-10)
    np.testing.assert_allclose(fuse(cosine, loglik, math.inf), log_normalise(loglik), rtol=1e-10)
    # w = 1 is the product of the two normalised distributions, renormalised
    product = np.exp(expected) * np.exp(log_normalise(loglik))
    np.testing.assert_allclose(
        np.exp(fuse(cosine, loglik, 1.0)), product / product.sum(1, keepdims=True), rtol=1e-9
    )
    # an additive constant per row of the species term changes nothing
    np.testing.assert_allclose(fuse(cosine, loglik + 123.0, 2.0), fuse(cosine, loglik, 2.0))
    # no species evidence (a flat row) leaves AG-CLIP's distribution unchanged
    np.testing.assert_allclose(fuse(cosine[0], np.zeros(50), 4.0), expected[0], rtol=1e-10)
    # -inf marks an impossible place: probability 0 after fusion
    blocked = loglik[0].copy()
    blocked[7] = -np.inf
    assert np.exp(fuse(cosine[0], blocked, 1.0))[7] == 0.0
    # a custom temperature is used as given
    np.testing.assert_allclose(
        fuse(cosine[0], loglik[0], 0.0, temperature=2.0),
        log_normalise(2.0 * cosine[0]),
        rtol=1e-10,
    )


def test_fuse_rejects_bad_inputs() -> None:
    cosine = np.zeros(5)
    cases = [
        (lambda: fuse(cosine, np.zeros(4), 1.0), "same gallery"),
        (lambda: fuse(cosine, np.zeros(5), -1.0), ">= 0"),
        (lambda: fuse(cosine, np.zeros(5), math.nan), ">= 0"),
        (lambda: fuse(np.full(5, 3.0), np.zeros(5), 1.0), "cosine similarities"),
        (lambda: fuse(cosine, np.full(5, np.nan), 1.0), "NaN"),
        (lambda: fuse(cosine, np.full(5, -np.inf), 1.0), "every location"),
        (lambda: fuse(cosine, np.zeros(5), 1.0, temperature=0.0), "temperature"),
        (lambda: log_normalise(np.zeros((2, 2, 2))), "shape"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message):
            call()


def test_fused_is_better_than_each_expert_alone(world: World) -> None:
    cosine, species = world.cosine(0.15), world.species(0.15)
    medians = {
        w: world.median(fused_top1(cosine, species, w, world.gallery)) for w in (0.0, 1.0, math.inf)
    }
    # two experts with independent errors of the same size: fusing them cuts the error
    assert medians[1.0] < 0.85 * medians[0.0], medians
    assert medians[1.0] < 0.85 * medians[math.inf], medians
    choice = choose_fusion_weight(cosine, species, world.truth, world.gallery)
    assert choice.weights == tuple(sorted(DEFAULT_FUSION_WEIGHTS)) and choice.count == N
    assert choice.weight == 1.0  # equally good experts on the same scale
    by_weight = dict(zip(choice.weights, choice.median_km, strict=True))
    assert by_weight[0.0] == pytest.approx(medians[0.0])
    assert by_weight[math.inf] == pytest.approx(medians[math.inf])
    assert by_weight[1.0] <= min(by_weight[0.0], by_weight[math.inf])
    for threshold in (750.0, 2500.0):  # country and continent scale too
        accuracy = dict(zip(choice.weights, choice.accuracy[threshold], strict=True))
        assert accuracy[1.0] >= max(accuracy[0.0], accuracy[math.inf]), (threshold, accuracy)
    rows = choice.rows()
    assert [r["chosen"] for r in rows].count(True) == 1 and rows[-1]["weight"] == "inf"
    assert set(rows[0]) == {
        "weight", "median_km", "chosen", "acc@750km", "acc@2500km", "band_accuracy",
    }  # fmt: skip


def test_the_chosen_weight_follows_the_experts_quality(world: World) -> None:
    truth, gallery = world.truth, world.gallery
    # two equally good experts on the same scale: a weight near 1; the species term on twice
    # AG-CLIP's scale (same noise draws): exactly half that weight, with the same errors
    cosine, species = world.cosine(0.15), world.species(0.15)
    same = choose_fusion_weight(cosine, species, truth, gallery)
    double = choose_fusion_weight(cosine, 2.0 * species, truth, gallery)
    assert same.weight in (0.5, 1.0, 2.0), same.rows()
    assert double.weight == same.weight / 2, (same.rows(), double.rows())
    medians = dict(zip(double.weights, double.median_km, strict=True))
    for w, median in zip(same.weights, same.median_km, strict=True):
        if w / 2 in medians:
            assert medians[w / 2] == pytest.approx(median), w
    # species carrying no information: AG-CLIP alone
    choice = choose_fusion_weight(world.cosine(0.1), world.species(math.inf), truth, gallery)
    assert choice.weight == 0.0, choice.rows()
    # AG-CLIP carrying no information: the species likelihood alone (or nearly)
    choice = choose_fusion_weight(world.cosine(math.inf), world.species(0.1), truth, gallery)
    assert choice.weight >= 4.0, choice.rows()
    assert choice.median_km[-1] < 0.5 * choice.median_km[0]
    # ties go to the smaller weight: a flat species term makes every finite weight equal
    flat = np.zeros((N, G))
    choice = choose_fusion_weight(world.cosine(0.15), flat, truth, gallery, weights=[2.0, 0.5])
    assert choice.weight == 0.5 and choice.weights == (0.5, 2.0)
    assert choice.median_km[0] == choice.median_km[1]


def test_choose_fusion_weight_checks_its_inputs(world: World) -> None:
    cosine, species = world.cosine(0.15)[:5], world.species(0.15)[:5]
    with pytest.raises(InputError, match="true places"):
        choose_fusion_weight(cosine, species, world.truth[:4], world.gallery)
    with pytest.raises(InputError, match="at least one weight"):
        choose_fusion_weight(cosine, species, world.truth[:5], world.gallery, weights=[])
    with pytest.raises(InputError, match="do not match"):
        choose_fusion_weight(cosine, species, world.truth[:5], world.gallery[:10])


def test_one_weight_rule_for_library_bench_and_check(tmp_path: Path) -> None:
    import json

    from geoforensics.core.species.fusion import (
        DEFAULT_FUSION_WEIGHT,
        best_weight_index,
        fusion_weight_for_model,
    )
    from geoforensics.eval.rows.fusion import FUSION_WEIGHTS, pick_weight

    assert FUSION_WEIGHTS == DEFAULT_FUSION_WEIGHTS  # one grid
    grid = [
        {"weight": 0.0, "band_accuracy": 0.7, "median_km": 300.0},
        {"weight": 1.0, "band_accuracy": 0.8, "median_km": 500.0},
        {"weight": 2.0, "band_accuracy": 0.8, "median_km": 400.0},
    ]
    band = [r["band_accuracy"] for r in grid]
    medians = [r["median_km"] for r in grid]
    assert pick_weight(grid) == best_weight_index(band, medians) == 2
    # check's weight: recorded in the model folder, else the default.
    assert fusion_weight_for_model(tmp_path) == DEFAULT_FUSION_WEIGHT
    (tmp_path / "fusion.json").write_text(json.dumps({"fusion_weight": 4.0}))
    assert fusion_weight_for_model(tmp_path) == 4.0
    (tmp_path / "fusion.json").write_text(json.dumps({"fusion_weight": "inf"}))
    assert math.isinf(fusion_weight_for_model(tmp_path))
    (tmp_path / "fusion.json").write_text("{broken")
    assert fusion_weight_for_model(tmp_path) == DEFAULT_FUSION_WEIGHT
