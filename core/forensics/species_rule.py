"""Species heard against a place: when may BirdNET's species contradict a claim?

The ``audio species (BirdNET x range)`` modality of a check is the species-range posterior
over the gallery (:func:`~geoforensics.core.species.likelihood.locate_species`, the call
``locate --method birdnet-range`` makes). Judged like any distribution, one stray species
could decide a verdict: BirdNET's false detections are common (on the real Seattle
soundscape it also "hears" a Great Tit and an Elegant Euphonia at 0.18-0.39), and the draw
likelihood punishes a place for every species it does not list by about the ``eps`` floor,
i.e. by three to four orders of magnitude per species. So species may call a place a
**mismatch** only when all of these hold (:func:`judge_place`):

1. at least :data:`MIN_ABSENT_SPECIES` (2) heard species have range probability below
   :data:`ABSENT_BELOW` (0.01) at the place in the clip's week (year-round without a date);
2. those absent species hold more than :data:`ABSENT_MAJORITY` (half) of the heard species'
   confidence weight (BirdNET's probabilities): a confidence-weighted majority, so a
   few weak strays beside a confidently heard resident do not outvote it;
3. after dropping the single most damaging species (the one whose removal makes the place
   most likely), the place is still at most :data:`MAX_ROBUST_RATIO` (1 %) as likely as the
   best place of the gallery under the likelihood of ``locate_species`` (``focal`` by
   default; the place's likelihood is the best gallery point within
   :data:`PLACE_RADIUS_KM` of it, a grid cell's reach);
4. the species posterior puts at most 10 % of its mass within 2,500 km of the place (the
   distribution rule's mismatch bound).

Anything weaker is **inconclusive**, never a mismatch; **consistent** is the distribution
rule (25 % within 750 km or 50 % within 2,500 km). One false species can therefore never
make the true place a mismatch (rule 1 and rule 3 each need a second absent species).
:func:`measure_false_species` measures the wrong-verdict rates on a synthetic world's
choruses with injected false species (README table).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.forensics.discrepancy import (
    CONSISTENT,
    INCONCLUSIVE,
    MISMATCH,
    MISMATCH_MAX_MASS,
    MISMATCH_RADIUS_KM,
    RADII_KM,
    mass_within,
    pair_status,
)
from geoforensics.core.geo.distance import haversine_np
from geoforensics.core.geo.gallery import resolve_gallery
from geoforensics.core.species.checklists import YEAR_ROUND
from geoforensics.core.species.evidence import range_probabilities
from geoforensics.core.species.likelihood import DEFAULT_BACKGROUND, DEFAULT_EPS, locate_species
from geoforensics.core.species.names import match_species
from geoforensics.core.species.range_evidence import range_evidence
from geoforensics.core.species.range_table import location_totals, range_table
from geoforensics.core.synth import build_world

if TYPE_CHECKING:
    from geoforensics.core.geo.gallery import Gallery
    from geoforensics.core.species.checklists import RangeModel

#: A species is absent from a place (that week) below this range probability.
ABSENT_BELOW = 0.01
#: At least this many heard species must be absent for a species mismatch.
MIN_ABSENT_SPECIES = 2
#: The absent species must hold more than this share of the heard species' weight.
ABSENT_MAJORITY = 0.5
#: After dropping the most damaging species, the place must be at most this likely relative
#: to the best gallery place.
MAX_ROBUST_RATIO = 1e-2
#: A place's likelihood is the best gallery point within this distance of it (km).
PLACE_RADIUS_KM = 150.0
#: The likelihood of the rule's ratios: the species modality's own (``locate_species``).
DEFAULT_RULE_LIKELIHOOD = "focal"


def rule_constants() -> dict[str, float]:
    """The species rule's constants (written into every report's thresholds)."""
    return {
        "species_absent_below": ABSENT_BELOW,
        "species_min_absent": float(MIN_ABSENT_SPECIES),
        "species_absent_majority": ABSENT_MAJORITY,
        "species_max_robust_ratio": MAX_ROBUST_RATIO,
        "species_place_radius_km": PLACE_RADIUS_KM,
    }


@dataclass
class SpeciesTerms:
    """Per-species log-likelihoods over a gallery (the draw model of
    :mod:`~geoforensics.core.species.likelihood`): ``log_p[i]`` (G,) is log p(species i | x),
    ``weights[i]`` its weight (BirdNET probability, or 1 for a true list); ``log_presence``
    (n, G) log(presence + eps), from which any subset's ``focal`` likelihood follows
    (:meth:`likelihood_for`). The rule's ratios use the draw model: it is additive over
    species, so dropping one is exact."""

    names: list[str]
    weights: np.ndarray
    log_p: np.ndarray
    coords: np.ndarray
    week: int
    log_presence: np.ndarray | None = None

    def log_likelihood(self, keep: np.ndarray | None = None) -> np.ndarray:
        """(G,) weighted draw log-likelihood of the kept species (all by default)."""
        mask = np.ones(len(self.names), bool) if keep is None else np.asarray(keep, bool)
        return np.asarray(self.weights[mask] @ self.log_p[mask], dtype=np.float64)

    def likelihood_for(self, weights: ArrayLike, model: str = "draw") -> np.ndarray:
        """(G,) log-likelihood of these species with other ``weights`` (one per name, 0 =
        not heard) under ``draw`` or ``focal`` (as ``locate_species`` scores them)."""
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if model == "focal" and self.log_presence is not None and w.max(initial=0.0) > 0:
            log_d = self.log_presence[0] - self.log_p[0]  # log D(x), the same for every row
            draws = float(w.sum() - w.max())
            return np.asarray(w @ self.log_presence - draws * log_d, dtype=np.float64)
        return np.asarray(w @ self.log_p, dtype=np.float64)


def species_terms(
    names: Sequence[str],
    weights: ArrayLike,
    range_model: RangeModel,
    coords: ArrayLike,
    week: int = YEAR_ROUND,
    table: np.ndarray | None = None,
) -> SpeciesTerms | None:
    """:class:`SpeciesTerms` of the ``names`` the range model lists (None when none does);
    ``table`` (G, S) is the range table over ``coords`` for ``week`` when already built."""

    points = np.asarray(coords, dtype=np.float64)
    given = np.asarray(weights, dtype=np.float64).reshape(-1)
    if given.size != len(names):
        raise InputError(f"species rule: {given.size} weights for {len(names)} species")
    match = match_species(
        list(names), list(range_model.species), getattr(range_model, "common_names", None)
    )
    keep = np.flatnonzero(match.indices >= 0)
    if keep.size == 0:
        return None
    columns = match.indices[keep]
    if table is None:  # only the heard species' columns and the week's per-place totals
        evidence = range_evidence(range_model, points, int(week), columns)
        heard, totals, n_species = evidence.columns, evidence.totals, evidence.n_species
    else:
        heard, totals, n_species = table[:, columns], location_totals(table), table.shape[1]
    assert totals is not None
    # log(presence + eps) per species, and the draw term: that minus log D(x), where
    # D(x) = T(x) + S·eps + background is the same for every species.
    log_presence = np.log(np.asarray(heard, dtype=np.float64).T + DEFAULT_EPS)
    log_d = np.log(totals + n_species * DEFAULT_EPS + DEFAULT_BACKGROUND)
    log_p = log_presence - log_d[None, :]
    return SpeciesTerms(
        [str(names[int(i)]) for i in keep], given[keep], log_p, points, int(week), log_presence
    )


@dataclass
class SpeciesJudgement:
    """What the heard species say about one place (see the module docstring).

    ``range_probability`` per species at the place; ``n_absent`` how many are below
    :data:`ABSENT_BELOW`, ``absent_share`` their share of the weight; ``ratio`` the place's
    likelihood over the best place's, ``robust_ratio`` the same after dropping ``dropped``
    (the most damaging species; None with one species); ``best`` the best gallery point.
    ``contradicts`` is rules 1-3 together.
    """

    place: str
    week: int
    species: list[str]
    weights: list[float]
    range_probability: list[float]
    n_absent: int
    absent_share: float
    ratio: float
    robust_ratio: float
    dropped: str | None
    best: tuple[float, float]
    best_label: str = ""
    absent: list[str] = field(default_factory=list)

    @property
    def contradicts(self) -> bool:
        """Rules 1-3 of the module docstring (rule 4 needs the posterior's mass)."""
        return (
            self.n_absent >= MIN_ABSENT_SPECIES
            and self.absent_share > ABSENT_MAJORITY
            and self.robust_ratio <= MAX_ROBUST_RATIO
        )

    def summary(self) -> str:
        """``3 of 3 species heard have range probability < 0.01 at Sydney in week 19; the
        place is 1e-09 as likely as Quebec (...)``."""
        when = "year-round" if self.week == YEAR_ROUND else f"in week {self.week}"
        verb = "has" if self.n_absent == 1 else "have"
        text = (
            f"{self.n_absent} of {len(self.species)} species heard {verb} range probability "
            f"< {ABSENT_BELOW:g} at {self.place} {when}"
        )
        best = self.best_label or f"{self.best[0]:.1f}, {self.best[1]:.1f}"
        text += f"; the place is {self.ratio:.1g} as likely as {best}"
        if self.dropped is not None:
            text += f" ({self.robust_ratio:.1g} without {self.dropped}, the most damaging species)"
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "place": self.place,
            "week": self.week,
            "species": [
                {"scientific": s, "weight": round(w, 6), "range_probability": round(p, 6)}
                for s, w, p in zip(self.species, self.weights, self.range_probability, strict=True)
            ],
            "n_absent": self.n_absent,
            "absent": list(self.absent),
            "absent_share": round(self.absent_share, 6),
            "likelihood_ratio": float(f"{self.ratio:.3g}"),
            "robust_likelihood_ratio": float(f"{self.robust_ratio:.3g}"),
            "dropped": self.dropped,
            "best_place": [float(self.best[0]), float(self.best[1])],
            "best_label": self.best_label,
            "contradicts": self.contradicts,
            "summary": self.summary(),
        }


def _place_value(log_lik: np.ndarray, near: np.ndarray) -> float:
    return float(log_lik[near].max())


def _near(coords: np.ndarray, point: tuple[float, float]) -> np.ndarray:

    distances = haversine_np(coords, np.asarray(point, dtype=np.float64).reshape(1, 2))
    near = np.flatnonzero(distances <= PLACE_RADIUS_KM)
    return near if near.size else np.array([int(np.argmin(distances))])


def judge_place(
    terms: SpeciesTerms,
    point: tuple[float, float],
    range_probability: ArrayLike,
    place: str = "",
    best_label: str | None = None,
    model: str = DEFAULT_RULE_LIKELIHOOD,
) -> SpeciesJudgement:
    """Rules 1-3 of the module docstring for the place ``point``; ``range_probability``
    (one per species of ``terms``) its range probabilities there in the week (NaN: not
    listed, counted as absent). ``best_label`` names the best place (looked up when None).
    ``model`` is the likelihood of the ratios (``focal``, as ``locate_species`` scores by
    default, or ``draw``); dropping a species recomputes it without that species."""
    probs = np.asarray(range_probability, dtype=np.float64).reshape(-1)
    if probs.size != len(terms.names):
        raise InputError(
            f"species rule: {probs.size} range probabilities for {len(terms.names)} species"
        )
    absent = ~(probs >= ABSENT_BELOW)
    total = float(terms.weights.sum())
    share = float(terms.weights[absent].sum() / total) if total > 0 else 0.0
    near = _near(terms.coords, point)
    full = terms.likelihood_for(terms.weights, model)
    best = int(np.argmax(full))
    ratio = math.exp(min(0.0, _place_value(full, near) - float(full[best])))
    robust, dropped = ratio, None
    if len(terms.names) > 1:
        robust = -math.inf
        for j in range(len(terms.names)):
            without = terms.weights.copy()
            without[j] = 0.0
            partial = terms.likelihood_for(without, model)
            value = math.exp(min(0.0, _place_value(partial, near) - float(partial.max())))
            if value > robust:
                robust, dropped = value, terms.names[j]
    where = (float(terms.coords[best, 0]), float(terms.coords[best, 1]))
    if best_label is None:
        from geoforensics.core.forensics.places import place_labels

        found = place_labels([where])[0]["place"]
        best_label = ", ".join(p for p in (found.get("city"), found.get("country")) if p)
    return SpeciesJudgement(
        place=place or f"{point[0]:.2f}, {point[1]:.2f}",
        week=terms.week,
        species=list(terms.names),
        weights=[float(w) for w in terms.weights],
        range_probability=[float(p) for p in probs],
        n_absent=int(absent.sum()),
        absent_share=share,
        ratio=ratio,
        robust_ratio=float(robust),
        dropped=dropped,
        best=where,
        best_label=best_label,
        absent=[n for n, a in zip(terms.names, absent, strict=True) if a],
    )


def species_pair_status(
    mass: dict[float, float],
    concentration: float | None,
    distance_km: float,
    judgement: SpeciesJudgement | None,
) -> tuple[str, str]:
    """(status, reason) of the species posterior against a place: the distribution rule for
    *consistent* (unless the species make the place at most :data:`MAX_ROBUST_RATIO` as
    likely as the best place), the species rule (module docstring) for *mismatch*, else
    inconclusive."""
    status, reason = pair_status(mass, concentration, distance_km)
    if judgement is None:
        if status == MISMATCH:
            return INCONCLUSIVE, f"{reason}; but no per-species evidence at the place"
        return status, reason
    far = mass[MISMATCH_RADIUS_KM]
    if status == CONSISTENT and judgement.ratio <= MAX_ROBUST_RATIO:
        # Mass nearby, but the species heard make this very place unlikely: not consistent.
        return INCONCLUSIVE, (
            f"{reason}; {judgement.summary()}; not consistent: the species heard make the "
            f"place at most {MAX_ROBUST_RATIO:g} as likely as the best place"
        )
    if status == CONSISTENT:
        return status, f"{reason}; {judgement.summary()}"
    if judgement.contradicts and far <= MISMATCH_MAX_MASS:
        return MISMATCH, (
            f"{judgement.summary()}; {100 * far:.1f}% of the species posterior within "
            f"{MISMATCH_RADIUS_KM:,.0f} km"
        )
    why = []
    if judgement.n_absent < MIN_ABSENT_SPECIES:
        why.append(f"fewer than {MIN_ABSENT_SPECIES} species absent there: one does not decide")
    elif judgement.absent_share <= ABSENT_MAJORITY:
        why.append(
            f"the absent species hold only {100 * judgement.absent_share:.0f}% of the heard "
            "species' confidence"
        )
    elif judgement.robust_ratio > MAX_ROBUST_RATIO:
        why.append(f"without {judgement.dropped} the place is not ruled out")
    if far > MISMATCH_MAX_MASS:
        why.append(f"{100 * far:.1f}% of the species posterior lies within 2,500 km")
    return INCONCLUSIVE, f"{judgement.summary()}; not a mismatch: {'; '.join(why) or reason}"


# ----------------------------------------------------------------------- measurement


@dataclass
class FalseSpeciesRates:
    """Wrong-verdict rates of the species rule with ``n_false`` injected false species:
    ``wrong_true`` = mismatch against the true place, ``wrong_far`` = consistent against a
    place more than ``far_km`` away; ``caught_far`` = mismatch against the far place."""

    n_false: int
    trials: int
    wrong_true: float
    wrong_far: float
    caught_far: float
    consistent_true: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_false": self.n_false,
            "trials": self.trials,
            "wrong_mismatch_at_true_place": round(self.wrong_true, 4),
            "wrong_consistent_at_far_place": round(self.wrong_far, 4),
            "mismatch_at_far_place": round(self.caught_far, 4),
            "consistent_at_true_place": round(self.consistent_true, 4),
        }


def _status_at(
    probs: np.ndarray,
    terms: SpeciesTerms,
    range_model: RangeModel,
    point: tuple[float, float],
    rule: str = "species",
    model: str = DEFAULT_RULE_LIKELIHOOD,
) -> str:

    coords = terms.coords
    mass = mass_within(probs, coords, point, RADII_KM)
    top = int(np.argmax(probs))
    own = mass_within(probs, coords, coords[top], (MISMATCH_RADIUS_KM,))[MISMATCH_RADIUS_KM]
    distance = float(haversine_np(coords[top], np.asarray(point)))
    if rule == "distribution":
        return pair_status(mass, own, distance)[0]
    range_p, _ = range_probabilities(range_model, terms.names, point[0], point[1], terms.week)
    judgement = judge_place(terms, point, range_p, best_label="best", model=model)
    return species_pair_status(mass, own, distance, judgement)[0]


def measure_false_species(
    lists: Sequence[tuple[Sequence[str], tuple[float, float], int]],
    range_model: RangeModel,
    gallery: Gallery,
    n_false: Sequence[int] = (0, 1, 2),
    draws: int = 4,
    far_km: float = 5000.0,
    seed: int = 0,
    n_true: int | None = None,
    rule: str = "species",
) -> list[FalseSpeciesRates]:
    """Wrong-verdict rates of the species modality (posterior by ``locate_species``, status
    by :func:`species_pair_status`) on true species ``lists`` (names, (lat, lon), week) with
    ``n_false`` random species of the range model added (weight 1, like the true ones), each
    list ``draws`` times, judged at its true place and at a random gallery point more than
    ``far_km`` away. ``n_true`` keeps that many random true species of each list (a short
    clip hears few); ``rule`` ``distribution`` judges by the plain distribution rule instead
    (the comparison that justifies the species rule)."""
    if rule not in ("species", "distribution"):
        raise InputError(f"species rule {rule!r}: 'species' or 'distribution'")

    rng = np.random.default_rng(seed)
    coords = np.asarray(gallery.coords, dtype=np.float64)
    pool = list(range_model.species)
    tables: dict[int, np.ndarray] = {}
    out = []
    for k in n_false:
        counts = {"true_mismatch": 0, "far_consistent": 0, "far_mismatch": 0, "true_ok": 0}
        trials = 0
        for names, place, week in lists:
            if week not in tables:
                tables[week] = range_table(
                    range_model, coords, None if week == YEAR_ROUND else week
                )
            distances = haversine_np(coords, np.asarray(place, dtype=np.float64).reshape(1, 2))
            far_points = np.flatnonzero(distances > far_km)
            for _ in range(draws if (k or n_true) else 1):
                others = [s for s in pool if s not in names]
                extra = list(rng.choice(others, size=k, replace=False)) if k else []
                kept = list(names)
                if n_true is not None and n_true < len(kept):
                    kept = list(rng.choice(kept, size=n_true, replace=False))
                query = [*kept, *extra]
                weights = np.ones(len(query))
                result = locate_species(query, range_model, gallery, week=week, k=1,
                                        weights=weights)  # fmt: skip
                terms = species_terms(query, weights, range_model, coords, week, tables[week])
                assert terms is not None
                far = coords[int(rng.choice(far_points))]
                at_true = _status_at(result.probs, terms, range_model, place, rule, result.model)
                at_far = _status_at(
                    result.probs, terms, range_model, (far[0], far[1]), rule, result.model
                )
                trials += 1
                counts["true_mismatch"] += at_true == MISMATCH
                counts["true_ok"] += at_true == CONSISTENT
                counts["far_consistent"] += at_far == CONSISTENT
                counts["far_mismatch"] += at_far == MISMATCH
        out.append(
            FalseSpeciesRates(
                k,
                trials,
                counts["true_mismatch"] / max(trials, 1),
                counts["far_consistent"] / max(trials, 1),
                counts["far_mismatch"] / max(trials, 1),
                counts["true_ok"] / max(trials, 1),
            )
        )
    return out


def world_chorus_lists(world: Any) -> list[tuple[list[str], tuple[float, float], int]]:
    """(true species names, (lat, lon), week) of a planned synthetic world's XCDC choruses."""
    names = list(world.range_model.species)
    out = []
    for plan in world.choruses:
        species = [names[i] for i in dict.fromkeys((plan.focal, *plan.background))]
        out.append((species, (float(plan.latitude), float(plan.longitude)), int(plan.week)))
    return out


def false_species_table(
    preset: str = "small",
    gallery: str = "land-2deg",
    draws: int = 4,
    n_true: Sequence[int | None] = (None, 3, 2, 1),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The README's table: :func:`measure_false_species` on a planned SYNTHETIC world's
    choruses (``preset``, seed 0; no audio is rendered) for each ``n_true`` (None: the whole
    true list) and both rules."""

    world = build_world(preset, 0)
    lists = world_chorus_lists(world)
    grid = resolve_gallery(gallery)
    rows = []
    for keep in n_true:
        for rule in ("species", "distribution"):
            rates = measure_false_species(
                lists, world.range_model, grid, draws=draws, seed=seed, n_true=keep, rule=rule
            )
            for r in rates:
                rows.append({"true_species": keep or "all", "rule": rule, **r.as_dict()})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m geoforensics.core.forensics.species_rule [PRESET GALLERY DRAWS]``: print
    the false-species table as Markdown."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    preset = args[0] if args else "small"
    gallery = args[1] if len(args) > 1 else "land-2deg"
    draws = int(args[2]) if len(args) > 2 else 4
    print(
        "| true species | false species | rule | trials | mismatch at true place | "
        "consistent at far place | mismatch at far place | consistent at true place |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in false_species_table(preset, gallery, draws):
        print(
            f"| {row['true_species']} | {row['n_false']} | {row['rule']} | {row['trials']} | "
            f"{100 * row['wrong_mismatch_at_true_place']:.1f}% | "
            f"{100 * row['wrong_consistent_at_far_place']:.1f}% | "
            f"{100 * row['mismatch_at_far_place']:.1f}% | "
            f"{100 * row['consistent_at_true_place']:.1f}% |"
        )
    return 0


__all__ = [
    "ABSENT_BELOW",
    "ABSENT_MAJORITY",
    "MAX_ROBUST_RATIO",
    "MIN_ABSENT_SPECIES",
    "PLACE_RADIUS_KM",
    "FalseSpeciesRates",
    "SpeciesJudgement",
    "SpeciesTerms",
    "false_species_table",
    "judge_place",
    "measure_false_species",
    "rule_constants",
    "species_pair_status",
    "species_terms",
    "world_chorus_lists",
]


if __name__ == "__main__":  # pragma: no cover - the README table's command
    raise SystemExit(main())
