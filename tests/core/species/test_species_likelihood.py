"""Species-range geolocation: per-location normalised likelihoods, weighting, priors, regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import haversine_np, haversine_pairwise_np
from geoforensics.core.geo.gallery import (
    Gallery,
    area_log_prior,
    effort_gallery_log_prior,
    grid_gallery,
)
from geoforensics.core.geo.land import GRID_COLS, GRID_ROWS
from geoforensics.core.geo.ranking import distinct_top_k, region_probability, score_map, top_k
from geoforensics.core.species import likelihood as lk
from geoforensics.core.species import range_table
from geoforensics.core.species.likelihood import (
    SpeciesLikelihood,
    locate_species,
    location_totals,
    naive_range_sum,
    species_log_likelihood,
    week_prior,
    weights_from_probs,
    weights_from_species,
)
from geoforensics.core.synth import SyntheticRangeModel, build_world
from geoforensics.core.synth.ranges import ROLE_BREEDING, ROLE_RESIDENT, ROLE_WINTERING

#: A place where a range model "extrapolates": every species present (the open-ocean failure).
DECOY = (-45.0, -140.0)


def _known_world(seed: int = 1, n_species: int = 150) -> tuple[SyntheticRangeModel, np.ndarray]:
    """A known range model on a 4° grid over Europe/the Middle East, plus one decoy point.

    Each species is a resident blob (radius 600-1,500 km) centred on a grid point; every
    species also has a small blob at :data:`DECOY` with presence 0.95, like a range model
    that gives everything a high value where it has no data. Returns (model, gallery).
    """
    rng = np.random.default_rng(seed)
    lat, lon = np.meshgrid(np.arange(22.0, 60.0, 4.0), np.arange(-18.0, 60.0, 4.0), indexing="ij")
    grid = np.stack([lat.ravel(), lon.ravel()], axis=1)
    gallery = np.vstack([grid, [DECOY]])
    centres = grid[rng.choice(len(grid), n_species)]
    s = n_species
    season = np.zeros((s, 3, 48), dtype=np.float32)
    season[:, ROLE_RESIDENT] = 1.0
    land = np.ones((GRID_ROWS, GRID_COLS), dtype=bool)
    model = SyntheticRangeModel(
        species=[f"Knownia species{i}" for i in range(s)],
        blob_species=np.concatenate([np.arange(s), np.arange(s)]),
        blob_lat=np.concatenate([centres[:, 0], np.full(s, DECOY[0])]),
        blob_lon=np.concatenate([centres[:, 1], np.full(s, DECOY[1])]),
        blob_radius_km=np.concatenate([rng.uniform(600, 1500, s), np.full(s, 300.0)]),
        blob_peak=np.concatenate([rng.uniform(0.5, 1.0, s), np.full(s, 0.95)]),
        blob_role=np.full(2 * s, ROLE_RESIDENT),
        habitat=np.zeros(s, dtype=np.int64),
        season=season,
        land=land,
        coast=np.zeros_like(land),
    )
    return model, gallery


def _migrant_model() -> SyntheticRangeModel:
    """One migrant breeding around Moscow (weeks ~24) and wintering around Nairobi (~48), and
    one resident around Paris."""
    weeks = np.arange(1, 49)
    season = np.zeros((2, 3, 48), dtype=np.float32)
    season[0, ROLE_BREEDING] = np.exp(3.0 * (np.cos(2 * np.pi * (weeks - 24) / 48) - 1.0))
    season[0, ROLE_WINTERING] = np.exp(3.0 * (np.cos(2 * np.pi * (weeks - 48) / 48) - 1.0))
    season[1, ROLE_RESIDENT] = 1.0
    land = np.ones((GRID_ROWS, GRID_COLS), dtype=bool)
    return SyntheticRangeModel(
        species=["Migrans europaea", "Residens parisiensis"],
        blob_species=np.array([0, 0, 1]),
        blob_lat=np.array([55.76, -1.29, 48.86]),
        blob_lon=np.array([37.62, 36.82, 2.35]),
        blob_radius_km=np.array([900.0, 800.0, 500.0]),
        blob_peak=np.array([1.0, 0.9, 0.8]),
        blob_role=np.array([ROLE_BREEDING, ROLE_WINTERING, ROLE_RESIDENT]),
        habitat=np.array([0, 0]),
        season=season,
        land=land,
        coast=np.zeros_like(land),
    )


# ----------------------------------------------------------------------------- the models


def test_draw_likelihood_matches_the_formula() -> None:
    table = np.array([[0.9, 0.1, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]], dtype=np.float16)
    eps, background = 1e-3, 1.0
    got = species_log_likelihood(
        table, [0, 1], weights=[2.0, 0.5], eps=eps, background=background, model="draw"
    )
    t = table.astype(np.float64)
    denominator = t.sum(axis=1) + 3 * eps + background
    want = 2.0 * np.log((t[:, 0] + eps) / denominator) + 0.5 * np.log((t[:, 1] + eps) / denominator)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # An empty place explains nothing: far below a place where the species live.
    assert got[2] < got[0] - 5 and got[2] < got[1] - 5
    # Each row is a proper distribution over the species plus the "other" category.
    row = (t[1] + eps) / denominator[1]
    assert row.sum() + background / denominator[1] == pytest.approx(1.0)


def test_focal_likelihood_scores_one_species_by_presence_and_the_rest_as_draws() -> None:
    table = np.array([[0.9, 0.1, 0.0], [0.5, 0.5, 0.5], [0.0, 0.2, 0.0]], dtype=np.float16)
    t = table.astype(np.float64)
    eps = lk.DEFAULT_EPS
    log_d = np.log(t.sum(axis=1) + 3 * eps + lk.DEFAULT_BACKGROUND)
    alone = species_log_likelihood(table, [0], model="focal")
    np.testing.assert_allclose(alone, np.log(t[:, 0] + eps), rtol=1e-12)  # no normaliser
    # The most confident species is the focal one; the others are draws.
    got = species_log_likelihood(table, [0, 1], weights=[2.0, 0.5], model="focal")
    draw = species_log_likelihood(table, [0, 1], weights=[2.0, 0.5], model="draw")
    np.testing.assert_allclose(got, draw + 2.0 * log_d, rtol=1e-12)
    # With equal weights it does not matter which species is the focal one.
    a = species_log_likelihood(table, [0, 1, 2], model="focal")
    b = species_log_likelihood(table, [2, 1, 0], model="focal")
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert lk.DEFAULT_LIKELIHOOD == "focal"


def test_presence_absence_matches_the_formula_and_counts_duplicates_once() -> None:
    table = np.array([[0.8, 0.2, 0.6], [0.1, 0.9, 0.0]])
    d, eps = 0.4, 1e-4
    got = species_log_likelihood(
        table, [0, 0, 2], weights=[0.5, 1.0, 0.25], model="presence-absence",
        detection=d, eps=eps,
    )  # fmt: skip
    belief = np.array([1.0, 0.0, 0.25])  # species 0 listed twice: its largest belief
    p = d * table
    want = (belief * np.log(p + eps) + (1 - belief) * np.log1p(-p)).sum(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(InputError, match="beliefs"):
        species_log_likelihood(table, [0], weights=[2.0], model="presence-absence")


def test_automatic_detection_scales_with_the_range_model() -> None:
    rich = SpeciesLikelihood(np.full((4, 200), 0.5), model="presence-absence")
    poor = SpeciesLikelihood(np.full((4, 200), 0.005), model="presence-absence")
    assert rich.detection_for(5) == pytest.approx(5 / 100)
    assert poor.detection_for(5) == lk.AUTO_DETECTION_RANGE[1]  # clipped at 0.5
    assert SpeciesLikelihood(np.zeros((2, 3)), model="presence-absence").detection_for(1) == 0.5
    assert SpeciesLikelihood(np.ones((2, 3)), detection=0.2).detection_for(9) == 0.2


def test_likelihood_recovers_the_true_cell_and_the_naive_sum_prefers_the_rich_place() -> None:
    model, gallery = _known_world(seed=1)
    table = model.presence(gallery[:, 0], gallery[:, 1])
    decoy = len(gallery) - 1
    assert table[decoy].sum() > 10 * np.median(table.sum(axis=1))  # the species-rich place
    rng = np.random.default_rng(7)
    candidates = np.flatnonzero((table[:decoy] > 0.05).sum(axis=1) >= 10)
    scorers = {m: SpeciesLikelihood(table, model=m) for m in lk.LIKELIHOOD_MODELS}
    errors: dict[str, list[float]] = {m: [] for m in (*lk.LIKELIHOOD_MODELS, "naive")}
    naive_decoy = 0
    for _ in range(60):
        truth = int(rng.choice(candidates))
        p = table[truth].astype(np.float64)
        heard = rng.choice(table.shape[1], size=10, replace=False, p=p / p.sum())
        for name, scorer in scorers.items():
            best = top_k(scorer.log_likelihood(heard), 1)[0]
            errors[name].append(float(haversine_np(gallery[best], gallery[truth])))
        naive = top_k(naive_range_sum(table, heard), 1)[0]
        errors["naive"].append(float(haversine_np(gallery[naive], gallery[truth])))
        naive_decoy += int(naive == decoy)
    draw = np.array(errors["draw"])
    absent = np.array(errors["presence-absence"])
    # Grid spacing is 4° (~445 km): within 500 km is the true cell or a neighbour.
    assert np.mean(draw == 0) >= 0.6, np.mean(draw == 0)
    assert np.mean(draw < 500) >= 0.9, np.mean(draw < 500)
    assert np.mean(absent < 500) >= 0.85, np.mean(absent < 500)
    assert naive_decoy >= 55  # the unnormalised sum points at the species-rich place
    assert np.mean(np.array(errors["naive"]) < 500) <= 0.1


def test_tiny_world_checklists_locate_at_country_scale() -> None:
    # The synthetic world's true ranges do not extrapolate, so here the naive sum is a fair
    # competitor: the normalised likelihood must be about as good, and good in absolute terms.
    world = build_world("tiny", seed=0)
    model = world.range_model
    coords = grid_gallery(3.0).coords
    coords = coords[world.grid.is_land(coords[:, 0], coords[:, 1])]
    plans = [p for p in world.recordings if not p.location_missing][:200]
    tables: dict[int, np.ndarray] = {}
    hits, naive_hits, continent = 0, 0, 0
    for plan in plans:
        if plan.week not in tables:
            tables[plan.week] = model.presence(coords[:, 0], coords[:, 1], week=plan.week)
        table = tables[plan.week]
        heard = [plan.focal, *plan.background]
        truth = np.array([plan.latitude, plan.longitude])
        best = coords[top_k(species_log_likelihood(table, heard), 1)[0]]
        naive = coords[top_k(naive_range_sum(table, heard), 1)[0]]
        hits += int(haversine_np(best, truth) < 750)
        continent += int(haversine_np(best, truth) < 2500)
        naive_hits += int(haversine_np(naive, truth) < 750)
    print(f"tiny world: <750 km {hits}/{len(plans)} (naive {naive_hits}), <2500 km {continent}")
    assert continent / len(plans) >= 0.9
    assert hits / len(plans) >= 0.65
    assert hits >= 0.9 * naive_hits


def test_week_tables_follow_a_migrant_and_week_prior_blends() -> None:
    model = _migrant_model()
    coords = grid_gallery(4.0).coords
    moscow, nairobi = np.array([55.76, 37.62]), np.array([-1.29, 36.82])
    summer = model.presence(coords[:, 0], coords[:, 1], week=24)
    winter = model.presence(coords[:, 0], coords[:, 1], week=48)
    year = model.presence(coords[:, 0], coords[:, 1])
    for table, home in ((summer, moscow), (winter, nairobi)):
        best = coords[top_k(species_log_likelihood(table, [0]), 1)[0]]
        assert haversine_np(best, home) < 500
    blend = week_prior(year, summer, week_weight=0.75)
    np.testing.assert_allclose(blend, 0.75 * summer + 0.25 * year, rtol=1e-6)
    assert blend.dtype == np.float32
    np.testing.assert_array_equal(week_prior(year, summer, 1.0), summer)
    with pytest.raises(InputError, match="weight"):
        week_prior(year, summer, 1.5)
    with pytest.raises(InputError, match="shape"):
        week_prior(year[:5], summer, 0.5)


def test_totals_are_computed_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    table = rng.random((103, 17)).astype(np.float16)
    monkeypatch.setattr(range_table, "CHUNK_ENTRIES", 40)  # two rows per chunk
    np.testing.assert_allclose(location_totals(table), table.astype(np.float64).sum(axis=1))
    scorer = SpeciesLikelihood(table)
    first = scorer.log_likelihood([3, 4])
    np.testing.assert_allclose(first, species_log_likelihood(table, [3, 4]))
    assert scorer.totals() is scorer.totals()  # computed once


# --------------------------------------------------------------------------- edge cases


def test_bad_species_and_tables_are_input_errors() -> None:
    table = np.full((4, 3), 0.5)
    with pytest.raises(InputError, match="no species"):
        species_log_likelihood(table, [])
    with pytest.raises(InputError, match="index -1"):
        species_log_likelihood(table, [0, -1])
    with pytest.raises(InputError, match="index 3"):
        species_log_likelihood(table, [3])
    with pytest.raises(InputError, match="whole numbers"):
        species_log_likelihood(table, [0.5])
    with pytest.raises(InputError, match="weights"):
        species_log_likelihood(table, [0, 1], weights=[1.0])
    with pytest.raises(InputError, match="every species weight is 0"):
        species_log_likelihood(table, [0, 1], weights=[0.0, 0.0])
    with pytest.raises(InputError, match=">= 0"):
        species_log_likelihood(table, [0], weights=[-1.0])
    with pytest.raises(InputError, match="likelihood model"):
        species_log_likelihood(table, [0], model="sum")
    with pytest.raises(InputError, match="detection"):
        species_log_likelihood(table, [0], model="presence-absence", detection=1.0)
    bad = table.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match=r"entry \(2, 1\)"):  # the draw reads every column
        species_log_likelihood(bad, [0], model="draw")
    with pytest.raises(InputError, match=r"entry \(2, 1\)"):  # focal: the heard ones only
        species_log_likelihood(bad, [1], model="focal")
    bad[2, 1] = -0.5
    with pytest.raises(InputError, match=">= 0"):
        naive_range_sum(bad, [1])
    with pytest.raises(InputError, match="2-D"):
        species_log_likelihood(np.zeros(3), [0])
    # Float indices that are whole numbers are accepted.
    np.testing.assert_allclose(
        species_log_likelihood(table, np.array([1.0])), species_log_likelihood(table, [1])
    )


def test_score_map_is_a_softmax_and_top_k_orders() -> None:
    scores = np.array([0.0, np.log(3.0), -np.inf, np.log(2.0) - 1000.0])
    probs = score_map(scores)
    assert probs.sum() == pytest.approx(1.0)
    assert probs[1] == pytest.approx(0.75) and probs[0] == pytest.approx(0.25)
    assert probs[2] == 0.0
    hot = score_map(np.log([1.0, 3.0]), temperature=0.5)
    assert hot[1] == pytest.approx(0.9)
    for bad in (np.array([0.0, np.nan]), np.array([-np.inf, -np.inf]), np.zeros(0)):
        with pytest.raises(InputError):
            score_map(bad)
    with pytest.raises(InputError, match="temperature"):
        score_map(np.zeros(3), temperature=0.0)
    assert top_k(np.array([1.0, 5.0, 5.0, np.nan, 2.0]), 3).tolist() == [1, 2, 4]
    assert top_k(np.array([1.0, 2.0]), 10).tolist() == [1, 0]
    with pytest.raises(InputError):
        top_k(np.array([1.0]), 0)


# ------------------------------------------------------------------------------ weights


def test_weights_from_probs_modes() -> None:
    probs = np.array([0.05, 0.9, 0.3, 0.12])
    top = weights_from_probs(probs, "top1")
    assert top.indices.tolist() == [1] and top.weights.tolist() == [1.0]
    weighted = weights_from_probs(probs, "weighted")
    assert weighted.indices.tolist() == [1, 2, 3]  # >= 0.1, most probable first
    np.testing.assert_allclose(weighted.weights, [0.9, 0.3, 0.12])
    threshold = weights_from_probs(probs, "threshold", min_prob=0.2)
    assert threshold.indices.tolist() == [1, 2] and threshold.weights.tolist() == [1.0, 1.0]
    assert len(weights_from_probs(probs, "top1", min_prob=0.95)) == 0
    assert len(weights_from_probs(probs, "weighted", min_prob=0.95)) == 0
    # Per-window probabilities are pooled by the maximum over windows.
    windows = np.array([[0.0, 0.2, 0.0, 0.0], [0.7, 0.1, 0.0, 0.15]])
    pooled = weights_from_probs(windows, "weighted")
    assert pooled.indices.tolist() == [0, 1, 3]
    np.testing.assert_allclose(pooled.weights, [0.7, 0.2, 0.15])
    for bad in (np.array([0.5, 1.5]), np.array([np.nan]), np.zeros((0, 3)), np.zeros(0)):
        with pytest.raises(InputError):
            weights_from_probs(bad, "weighted")
    with pytest.raises(InputError, match="weighting"):
        weights_from_probs(probs, "all")
    with pytest.raises(InputError, match="min_prob"):
        weights_from_probs(probs, "weighted", min_prob=2.0)
    annotated = weights_from_species([4, -1, 2])
    assert annotated.indices.tolist() == [4, 2] and annotated.weights.tolist() == [1.0, 1.0]


def test_weighted_predictions_score_like_annotations_when_confident() -> None:
    model, gallery = _known_world(seed=2, n_species=60)
    table = model.presence(gallery[:, 0], gallery[:, 1])
    probs = np.zeros(60)
    probs[[3, 17, 29]] = [0.99, 0.98, 0.97]
    probs[40] = 0.02  # below min_prob: ignored
    picked = weights_from_probs(probs, "weighted")
    got = species_log_likelihood(table, picked.indices, picked.weights)
    want = species_log_likelihood(table, [3, 17, 29], [0.99, 0.98, 0.97])
    np.testing.assert_allclose(got, want)
    assert top_k(got, 1)[0] == top_k(species_log_likelihood(table, [3, 17, 29]), 1)[0]


# ------------------------------------------------------------------------ prior, regions


def test_area_prior_is_cos_latitude() -> None:
    coords = np.array([[0.0, 0.0], [60.0, 10.0], [-89.5, 0.0]])
    prior = area_log_prior(coords)
    assert prior[0] - prior[1] == pytest.approx(np.log(2.0))
    assert np.exp(prior).sum() == pytest.approx(1.0)
    assert np.all(np.isfinite(prior))


def test_region_probability_equals_brute_force_mass() -> None:
    rng = np.random.default_rng(3)
    coords = np.stack([rng.uniform(-80, 80, 300), rng.uniform(-180, 180, 300)], axis=1)
    probs = rng.random(300)
    probs /= probs.sum()
    got = region_probability(probs, coords, 1500.0, chunk=64)
    near = haversine_pairwise_np(coords, coords) <= 1500.0
    np.testing.assert_allclose(got, near.astype(float) @ probs, rtol=1e-10)
    np.testing.assert_array_equal(region_probability(probs, coords, 0.0), probs)
    whole = region_probability(probs, coords, 30_000.0)
    np.testing.assert_allclose(whole, 1.0)
    with pytest.raises(InputError):
        region_probability(probs[:5], coords, 10.0)
    with pytest.raises(InputError):
        region_probability(probs, coords, -1.0)


def test_region_ranking_prefers_a_wide_range_over_one_hot_island() -> None:
    # A continent of 100 points with moderate probability and one isolated "island" point
    # with the single highest probability.
    lat, lon = np.meshgrid(np.linspace(40, 58, 10), np.linspace(-110, -80, 10), indexing="ij")
    coords = np.vstack([np.stack([lat.ravel(), lon.ravel()], axis=1), [[-0.5, -91.0]]])
    probs = np.full(101, 0.95 / 100)
    probs[100] = 0.05
    assert top_k(probs, 1)[0] == 100
    region = region_probability(probs, coords, 500.0)
    assert top_k(region, 1)[0] < 100


def test_distinct_top_k_keeps_places_apart() -> None:
    coords = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 10.0], [0.0, 10.5], [30.0, 0.0]])
    scores = np.array([5.0, 4.9, 4.0, 3.9, 1.0])
    assert distinct_top_k(scores, coords, 3, 0.0).tolist() == [0, 1, 2]
    assert distinct_top_k(scores, coords, 3, 300.0).tolist() == [0, 2, 4]
    assert distinct_top_k(scores, coords, 10, 300.0).tolist() == [0, 2, 4]


# --------------------------------------------------------------------------- locate_species


def test_locate_species_matches_names_and_reports_unmatched() -> None:
    model = _migrant_model()
    gallery = grid_gallery(4.0)
    result = locate_species(
        ["migrans europaea", "Nonexistens avis"], model, gallery, week=24, k=3, radius_km=500
    )
    assert result.match.matched == ["Migrans europaea"]
    assert result.match.unmatched == ["Nonexistens avis"]
    assert result.species_indices.tolist() == [0] and result.area_prior
    assert result.probs.sum() == pytest.approx(1.0)
    assert len(result.top) == 3
    assert haversine_np(result.coords[result.top[0]], np.array([55.76, 37.62])) < 800
    winter = locate_species(["Migrans europaea"], model, gallery, week=48, k=1)
    assert haversine_np(winter.coords[winter.top[0]], np.array([-1.29, 36.82])) < 800
    # A custom point list gets no area prior (its points are not cells of equal angle).
    custom = Gallery("points", gallery.coords[::7])
    assert not locate_species(["Migrans europaea"], model, custom, k=1).area_prior
    with pytest.raises(InputError, match="'Nonexistens avis'"):
        locate_species(["Nonexistens avis"], model, gallery)
    with pytest.raises(InputError, match="no species"):
        locate_species([], model, gallery)
    with pytest.raises(InputError, match="week"):
        locate_species(["Migrans europaea"], model, gallery, week=60)
    with pytest.raises(InputError, match="weights"):
        locate_species(["Migrans europaea"], model, gallery, weights=[1.0, 2.0])


# ------------------------------------------------------------------- recording-effort prior


class _WidespreadModel:
    """North America: one widespread species everywhere (lat 25-70), and 20 others that live
    only south of 45 deg N, so the north is species-poor; year-round."""

    def __init__(self) -> None:
        self.species = ["Widespread avis", *(f"Meridiana species{i}" for i in range(20))]

    def presence(self, lat: np.ndarray, lon: np.ndarray, week: object = None) -> np.ndarray:
        lat, lon = np.atleast_1d(lat), np.atleast_1d(lon)
        inside = (lat > 25) & (lat < 70) & (lon > -170) & (lon < -52)
        out = np.zeros((len(lat), len(self.species)), dtype=np.float32)
        out[:, 0] = 0.9 * inside
        out[:, 1:] = 0.8 * (inside & (lat < 45))[:, None]
        return out


def test_effort_prior_moves_a_lone_widespread_species_toward_people() -> None:
    from geoforensics.core.geo.effort import effort_density
    from geoforensics.core.geo.gallery import resolve_gallery

    model = _WidespreadModel()
    gallery = resolve_gallery("land-2deg")
    density = effort_density("population", gallery.coords)
    mean = float(density.mean())
    for rule in ("draw", "focal"):
        bare = locate_species(["Widespread avis"], model, gallery, model=rule, effort="none", k=1)
        auto = locate_species(["Widespread avis"], model, gallery, model=rule, k=1)
        assert bare.effort_prior is None and auto.effort_prior == "population"
        empty, peopled = density[bare.top[0]], density[auto.top[0]]
        assert peopled > 2 * mean and peopled > 2 * empty, (rule, empty / mean, peopled / mean)
        if rule == "draw":  # without the prior: a large share of few species, in the far north
            assert empty < 0.1 * mean and bare.coords[bare.top[0], 0] > 50


def test_gallery_prior_is_on_for_grids_and_off_for_recording_places(tmp_path: Path) -> None:
    from geoforensics.core.geo.effort import effort_log_prior

    gallery = grid_gallery(10.0)
    prior, area, effort = effort_gallery_log_prior(gallery)
    assert area and effort == "population"
    want = area_log_prior(gallery.coords) + effort_log_prior(gallery.coords)
    np.testing.assert_allclose(prior, want)
    places = Gallery("places", gallery.coords)
    prior, area, effort = effort_gallery_log_prior(places)
    assert not area and effort is None and not prior.any()
    # A user's effort map: all effort around one place.
    csv_file = tmp_path / "effort.csv"
    csv_file.write_text("latitude,longitude,count\n-33.9,18.4,50\n-33.8,18.5,10\n")
    prior, _, effort = effort_gallery_log_prior(gallery, effort=csv_file)
    assert effort == "effort"
    best = gallery.coords[int(np.argmax(prior - area_log_prior(gallery.coords)))]
    assert haversine_np(best, np.array([-33.9, 18.4])) < 800
    for bad, message in (
        ("lat,lon\n1,x\n", "not a number"),
        ("a,b\n1,2\n", "lat/latitude"),
        ("lat,lon,weight\n1,2,-1\n", "weights"),
    ):
        csv_file.write_text(bad)
        with pytest.raises(InputError, match=message) as info:
            effort_gallery_log_prior(gallery, effort=csv_file)
        assert "effort.csv" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="no such effort file"):
        effort_gallery_log_prior(gallery, effort=tmp_path / "missing.csv")
    npy = tmp_path / "effort.npy"
    np.save(npy, np.array([[51.5, -0.1], [48.9, 2.35]]))
    prior, _, effort = effort_gallery_log_prior(gallery, effort=npy, effort_strength=1.0)
    best = gallery.coords[int(np.argmax(prior - area_log_prior(gallery.coords)))]
    assert haversine_np(best, np.array([50.0, 1.0])) < 800


def test_effort_density_is_cached_by_content() -> None:
    from geoforensics.core.geo.effort import EffortPoints, effort_density

    coords = grid_gallery(10.0).coords
    points = EffortPoints("two", np.array([[0.0, 0.0], [10.0, 10.0]]), np.array([1.0, 3.0]))
    fresh = effort_density(points, coords, cache=False)
    first = effort_density(points, coords)
    np.testing.assert_allclose(first, fresh)
    np.testing.assert_allclose(effort_density(points, coords), fresh)  # read back
    heavier = EffortPoints("two", points.coords, np.array([1.0, 30.0]))
    assert not np.allclose(effort_density(heavier, coords), fresh)  # new content, new entry
    # The kernel: a point on a source gets its full weight.
    on_source = effort_density(points, np.array([[0.0, 0.0]]), bandwidth_km=1.0, cache=False)
    assert on_source[0] == pytest.approx(1.0)
