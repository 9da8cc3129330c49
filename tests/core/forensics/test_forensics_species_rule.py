"""The species rule of `check`: one stray BirdNET species never makes a mismatch.

Measured on the planned `small` SYNTHETIC world's XCDC choruses (true species lists at known
places and weeks, no audio rendered), with 0, 1 and 2 random false species injected, judged
at the true place and at a place more than 5,000 km away (README "Checking a clip").
"""

from __future__ import annotations

import numpy as np
import pytest

from geoforensics.core.forensics.discrepancy import CONSISTENT, INCONCLUSIVE, MISMATCH
from geoforensics.core.forensics.species_rule import (
    SpeciesTerms,
    judge_place,
    measure_false_species,
    species_pair_status,
    world_chorus_lists,
)


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    from geoforensics.core.synth import build_world

    return build_world("small", 0)


def _terms(log_p: list[list[float]], weights: list[float]) -> SpeciesTerms:
    coords = np.array([[0.0, 0.0], [0.0, 90.0], [45.0, -90.0]])
    names = [f"Species {i}" for i in range(len(weights))]
    return SpeciesTerms(names, np.array(weights), np.array(log_p), coords, 19)


def test_one_absent_species_never_makes_a_mismatch() -> None:
    # Species 0 and 1 live at point 0; species 2 (a false detection) only at point 2.
    terms = _terms([[-1, -9, -9], [-1, -9, -9], [-9, -9, -1]], [1.0, 1.0, 1.0])
    at_true = judge_place(terms, (0.0, 0.0), [0.9, 0.8, 0.0], "here", best_label="best")
    assert at_true.n_absent == 1 and not at_true.contradicts
    mass = {200.0: 0.0, 750.0: 0.0, 2500.0: 0.0}
    status, reason = species_pair_status(mass, 0.9, 9000.0, at_true)
    assert status == INCONCLUSIVE and "one does not decide" in reason
    far = judge_place(terms, (0.0, 90.0), [0.0, 0.0, 0.0], "there", best_label="best")
    assert far.n_absent == 3 and far.contradicts and far.dropped is not None
    status, reason = species_pair_status(mass, 0.9, 9000.0, far)
    assert status == MISMATCH and reason.startswith("3 of 3 species heard have range")
    # Mass near the place wins (consistent) unless the species make the place itself very
    # unlikely: then it is only inconclusive (a quail of Arizona claimed at Seattle).
    near = {200.0: 0.5, 750.0: 0.6, 2500.0: 0.9}
    assert species_pair_status(near, 0.9, 10.0, at_true)[0] == CONSISTENT
    status, reason = species_pair_status(near, 0.9, 10.0, far)
    assert far.ratio <= 0.01 and status == INCONCLUSIVE and "not consistent" in reason


def test_a_weak_majority_of_strays_does_not_outvote_a_confident_species() -> None:
    terms = _terms([[-1, -9, -9], [-9, -9, -1], [-9, -1, -9]], [0.95, 0.2, 0.2])
    judged = judge_place(terms, (0.0, 0.0), [0.9, 0.0, 0.0], "here", best_label="best")
    assert judged.n_absent == 2 and judged.absent_share < 0.5 and not judged.contradicts


def test_measured_false_species_rates(world) -> None:  # type: ignore[no-untyped-def]
    from geoforensics.core.geo.gallery import resolve_gallery

    lists = world_chorus_lists(world)
    assert len(lists) == 16 and min(len(names) for names, _, _ in lists) >= 5
    gallery = resolve_gallery("land-5deg")
    # Short clips hear few species: keep 1 true species, add 0-2 false ones.
    rates = measure_false_species(lists, world.range_model, gallery, draws=2, n_true=1)
    by_false = {r.n_false: r for r in rates}
    # By construction one false species can never make the true place a mismatch.
    assert by_false[0].wrong_true == 0.0 and by_false[1].wrong_true == 0.0
    # Stated bounds (measured 0-3 % on land-2deg with 4 draws, README table).
    assert by_false[2].wrong_true <= 0.10
    assert all(r.wrong_far <= 0.10 for r in rates)
    plain = measure_false_species(
        lists, world.range_model, gallery, draws=2, n_true=1, rule="distribution"
    )
    # The plain distribution rule lets one stray species accuse the true place.
    assert sum(r.wrong_true for r in plain) > sum(r.wrong_true for r in rates)
