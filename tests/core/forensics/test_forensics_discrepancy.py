"""Discrepancy maths of `geoforensics check`: distances, mass within radius, verdict rules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.forensics.discrepancy import (
    CONCENTRATED_MIN_MASS,
    CONSISTENT,
    CONSISTENT_MIN_MASS,
    CONSISTENT_WIDE_MIN_MASS,
    INCONCLUSIVE,
    MISMATCH,
    MISMATCH_MAX_MASS,
    baseline_within,
    compare_modalities,
    decide_verdict,
    great_circle_km,
    mass_within,
    pair_status,
    thresholds,
)
from geoforensics.core.forensics.places import RegionMass, rank_places

PARIS = (48.8566, 2.3522)
LONDON = (51.5074, -0.1278)
NAIROBI = (-1.2864, 36.8172)
DETROIT = (42.3314, -83.0458)


@dataclass
class Fake:
    """A modality as the comparison sees it."""

    name: str
    available: bool
    point: tuple[float, float] | None
    probs: np.ndarray | None = None


def test_great_circle_known_distances() -> None:
    # Paris-London ~343.5 km; a quarter of a meridian = pi/2 * R; antipodes = pi * R.
    assert great_circle_km(PARIS, LONDON) == pytest.approx(343.5, abs=1.0)
    assert great_circle_km((0, 0), (90, 0)) == pytest.approx(math.pi / 2 * 6371.0, rel=1e-9)
    assert great_circle_km((0, 0), (0, 180)) == pytest.approx(math.pi * 6371.0, rel=1e-9)
    assert great_circle_km((10, 179.5), (10, -179.5)) == pytest.approx(109.5, abs=0.5)
    with pytest.raises(InputError):
        great_circle_km((91, 0), (0, 0))


def test_mass_within_radius_by_hand() -> None:
    # Points along the equator 0, 1, 5, 10, 30 degrees east (1 degree = 111.19 km).
    coords = np.array([[0, 0], [0, 1], [0, 5], [0, 10], [0, 30]], dtype=float)
    probs = np.array([0.4, 0.2, 0.2, 0.1, 0.1])
    mass = mass_within(probs, coords, (0, 0), (100.0, 200.0, 750.0, 2500.0))
    assert mass[100.0] == pytest.approx(0.4)
    assert mass[200.0] == pytest.approx(0.6)  # 111 km in
    assert mass[750.0] == pytest.approx(0.8)  # 556 km in, 1,112 km out
    assert mass[2500.0] == pytest.approx(0.9)  # 3,336 km out
    # Unnormalised weights are normalised; the uniform baseline is the share of points.
    assert mass_within(probs * 7, coords, (0, 0), (200.0,))[200.0] == pytest.approx(0.6)
    assert baseline_within(coords, (0, 0), (200.0, 2500.0)) == pytest.approx(
        {200.0: 0.4, 2500.0: 0.8}
    )
    with pytest.raises(InputError):
        mass_within(probs[:3], coords, (0, 0))
    with pytest.raises(InputError):
        mass_within(-probs, coords, (0, 0))


def test_pair_status_rules() -> None:
    radii = (200.0, 750.0, 2500.0)

    def masses(near: float, far: float) -> dict[float, float]:
        return dict(zip(radii, (near / 2, near, far), strict=True))

    assert pair_status(masses(CONSISTENT_MIN_MASS, 0.9), 0.9, 100.0)[0] == CONSISTENT
    # Continent scale: half the mass within 2,500 km agrees too.
    status, reason = pair_status(masses(0.1, CONSISTENT_WIDE_MIN_MASS), 0.9, 900.0)
    assert status == CONSISTENT and "within 2,500 km" in reason
    assert pair_status(masses(0.1, CONSISTENT_WIDE_MIN_MASS - 0.01), 0.9, 900.0)[0] == (
        INCONCLUSIVE
    )
    assert pair_status(masses(0.0, MISMATCH_MAX_MASS), CONCENTRATED_MIN_MASS, 9e3)[0] == MISMATCH
    # A diffuse prediction never accuses.
    status, reason = pair_status(masses(0.0, 0.01), CONCENTRATED_MIN_MASS - 0.01, 9e3)
    assert status == INCONCLUSIVE and "diffuse" in reason
    assert pair_status(masses(0.1, 0.3), 0.9, 2e3)[0] == INCONCLUSIVE
    # Two points: by distance alone.
    assert pair_status(None, None, 700.0)[0] == CONSISTENT
    assert pair_status(None, None, 1500.0)[0] == INCONCLUSIVE
    assert pair_status(None, None, 2600.0)[0] == MISMATCH


def _grid() -> np.ndarray:
    lat, lon = np.meshgrid(np.arange(-60.0, 71.0, 2.0), np.arange(-180.0, 180.0, 2.0))
    return np.stack([lat.ravel(), lon.ravel()], axis=1)


def _peaked(coords: np.ndarray, centre: tuple[float, float], scale_km: float) -> np.ndarray:
    from geoforensics.core.geo.distance import haversine_np

    d = haversine_np(coords, np.asarray(centre)[None])
    probs = np.exp(-((d / scale_km) ** 2))
    return probs / probs.sum()


def test_compare_and_verdict_on_known_places() -> None:
    coords = _grid()
    audio = _peaked(coords, DETROIT, 400.0)
    mods = {
        "audio": Fake("audio", True, DETROIT, audio),
        "frames": Fake("frames", False, None),
        "text": Fake("text", False, None),
        "metadata_gps": Fake("metadata_gps", True, DETROIT),
        "claimed": Fake("claimed", True, NAIROBI),
    }
    pairs = compare_modalities(mods, coords)
    assert [(d.first, d.second) for d in pairs] == [
        ("audio", "metadata_gps"),
        ("audio", "claimed"),
        ("metadata_gps", "claimed"),
    ]
    by_pair = {(d.first, d.second): d for d in pairs}
    gps = by_pair[("audio", "metadata_gps")]
    assert gps.distance_km == pytest.approx(0.0, abs=1e-6)
    assert gps.mass_of == "audio" and gps.status == CONSISTENT
    assert gps.mass_within is not None and gps.mass_within[750.0] > 0.9
    assert gps.mass_within == pytest.approx(mass_within(audio, coords, DETROIT))
    claim = by_pair[("audio", "claimed")]
    assert claim.distance_km == pytest.approx(great_circle_km(DETROIT, NAIROBI))
    assert claim.distance_km == pytest.approx(12_510, rel=0.005)  # ~7,770 miles
    assert claim.mass_within is not None and claim.mass_within[2500.0] < 1e-6
    assert claim.status == MISMATCH
    assert by_pair[("metadata_gps", "claimed")].mass_of is None
    assert by_pair[("metadata_gps", "claimed")].status == MISMATCH
    verdict = decide_verdict(pairs, mods)
    assert verdict.label == MISMATCH
    assert verdict.reasons[0].startswith("mismatch:")
    assert verdict.thresholds == thresholds()
    json_row = claim.as_dict()
    assert set(json_row["mass_within_km"]) == {"200", "750", "2500"}

    # Claim at the true place: everything agrees.
    mods["claimed"] = Fake("claimed", True, (42.0, -83.5))
    agree = compare_modalities(mods, coords)
    assert {d.status for d in agree} == {CONSISTENT}
    assert decide_verdict(agree, mods).label == CONSISTENT

    # A flat audio distribution is inconclusive against a claim 2,000 km away.
    flat = np.full(len(coords), 1.0 / len(coords))
    mods = {
        "audio": Fake("audio", True, DETROIT, flat),
        "claimed": Fake("claimed", True, (30.0, -100.0)),
    }
    assert decide_verdict(compare_modalities(mods, coords), mods).label == INCONCLUSIVE


def test_verdict_without_audio_or_references() -> None:
    coords = _grid()
    audio = Fake("audio", True, DETROIT, _peaked(coords, DETROIT, 400.0))
    alone = {"audio": audio}
    verdict = decide_verdict(compare_modalities(alone, coords), alone)
    assert verdict.label == INCONCLUSIVE and "nothing to compare" in verdict.reasons[0]
    no_audio = {
        "audio": Fake("audio", False, None),
        "metadata_gps": Fake("metadata_gps", True, DETROIT),
        "claimed": Fake("claimed", True, (42.5, -83.0)),
    }
    verdict = decide_verdict(compare_modalities(no_audio, coords), no_audio)
    assert verdict.label == INCONCLUSIVE and "no audio" in verdict.reasons[0]


def test_region_ranking_matches_reference_and_is_distinct() -> None:
    from geoforensics.core.geo.ranking import region_probability

    coords = _grid()
    probs = 0.6 * _peaked(coords, DETROIT, 300.0) + 0.4 * _peaked(coords, PARIS, 300.0)
    region = RegionMass(coords, 500.0)
    assert np.allclose(region(probs), region_probability(probs, coords, 500.0), atol=1e-6)
    # many distributions at once (a check's timeline) equal one call each
    stack = np.stack([probs, _peaked(coords, PARIS, 300.0), np.full(len(coords), 1 / len(coords))])
    many = region(stack.T)
    assert many.shape == (len(coords), 3)
    for j in range(3):
        np.testing.assert_allclose(many[:, j], region(stack[j]), rtol=1e-12, atol=1e-15)
    with pytest.raises(InputError, match="region mass"):
        region(stack)  # (3, G): the gallery must be the first axis
    ranked = rank_places(probs, region, 2)
    top = coords[ranked.indices]
    assert great_circle_km(top[0], DETROIT) < 250 and great_circle_km(top[1], PARIS) < 250
    assert ranked.region[0] == pytest.approx(0.6, abs=0.05)
