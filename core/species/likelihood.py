"""Species-range geolocation: score every gallery location by how well it explains the species.

Input is a *range table*: an (G, S) array of presence probabilities of S species at the G
locations of a gallery (built by :func:`geoforensics.core.species.range_table.range_table`,
for the recording's week when the date is known). Output is a log-likelihood per location
(:func:`species_log_likelihood`) and, like a retrieval method's scores over the gallery, a
probability map (``score_map`` of :mod:`geoforensics.core.geo.ranking`) that metrics, maps,
the bench and fusion use unchanged.

Why normalise per location. Range models extrapolate: BirdNET's range model gives many
species a high presence in places with no data (open ocean, ice sheets), so the unnormalised
sum of the detected species' range maps (:func:`naive_range_sum`, kept as the baseline)
points at those species-rich-looking places whatever was heard. The models here instead ask
how likely the *observed* species are among everything said to live at a place:

``focal`` (the default: :func:`locate_species`, :class:`SpeciesLikelihood`, the bench rows)
    A recording is usually made *of* a species: the recordist sought the most confident
    species (the largest weight ``w_max``) and went where it lives, so that species is
    scored by its presence ``presence(x, s) + eps`` (not divided by ``T(x)``), and every
    other species heard is a draw as below:
    ``log L(x) = Σ_i w_i log(presence(x, s_i) + eps) - (Σ_i w_i - w_max) log D(x)`` with
    ``D(x) = T(x) + S·eps + background``. With equal weights it does not matter which
    species is the focal one. One species alone is pure presence (a lone widespread species
    is no longer pushed to the species-poor edges of its range, where it is a large share of
    few species); a chorus of n species is n - 1 draws, almost the ``draw`` model.

``draw``
    Each detected species is an independent draw from the location's species distribution

    ``p(s | x) = (presence(x, s) + eps) / (T(x) + S·eps + background)``

    where ``T(x) = Σ_s' presence(x, s')`` sums all S species, and
    ``log L(x) = Σ_i w_i log p(s_i | x)``. A place where everything is "present" spreads its
    mass over thousands of species, so each one is unlikely there. ``background`` is the
    mass of species the model does not list (the "other" category of the distribution): it
    stops a place with almost no listed species (``T`` near 0) from explaining any species it
    barely lists, and ``eps`` is the floor that keeps a single out-of-range species (a
    misidentification) from ruling a place out completely.

``presence-absence``
    Each species present at ``x`` is detected independently with probability
    ``detection · presence(x, s)``; the recording shows the listed species (with belief
    ``w_s`` in [0, 1]) and not the others:
    ``log L(x) = Σ_s [w_s log(d·p + eps) + (1 - w_s) log(1 - d·p)]``. Species-rich places pay
    for every present species that was not heard. By default ``d`` is set so that a place
    of average richness would yield as many species as were heard
    (:meth:`SpeciesLikelihood.detection_for`).

Which rule, and the effort prior, were chosen by measurement on eight real recordings and the
synthetic world (README "Species evidence").

Weighting for the paper's rows: annotated species (weights 1), the top-1 predicted species,
or all predicted species weighted by their probability: :func:`weights_from_probs`.

From likelihood to places (:func:`locate_species`). The posterior over gallery points is
the likelihood times a prior: on a regular latitude/longitude grid the cells shrink towards
the poles, so a uniform prior over *cells* would favour high latitudes; the area prior makes
it uniform over *area* (cos latitude). Real recordings are made where people are, so on the
same galleries a recording-effort prior (:mod:`geoforensics.core.geo.effort`: a smoothed
population density, or a user's effort map) multiplies it; galleries made of recording
places (train locations, GeoCLIP's photo places) already carry that bias and get neither
prior by default (both priors: :func:`geoforensics.core.geo.gallery.effort_gallery_log_prior`).
Places are then ranked by their region mass (:mod:`geoforensics.core.geo.ranking`), the
posterior mass within ``radius_km`` of each candidate, which is the Bayes-optimal choice for
"within R km" accuracy: a species heard in a vast range (the Yellow Warbler across North
America) is placed in that range, not on the one small island where the range model's
single highest value happens to lie (BirdNET's Galapagos population). ``distinct_top_k``
lists places at least a radius apart.

Caveat: normalising makes species-poor places attractive. Where a range model extends a
species over the open sea (few other species there), a lone species can still point at sea
on a gallery that includes it (``grid-*``); the land galleries (the CLI's default) avoid that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.gallery import effort_gallery_log_prior
from geoforensics.core.geo.ranking import distinct_top_k, region_probability, score_map
from geoforensics.core.species.checklists import YEAR_ROUND, RangeModel, week_rows
from geoforensics.core.species.names import match_species
from geoforensics.core.species.range_table import (
    check_range_table,
    checked_columns,
    checked_rows,
    location_totals,
    range_table,
    table_row_chunks,
)

if TYPE_CHECKING:
    from pathlib import Path

    from geoforensics.core.geo.effort import EffortPoints
    from geoforensics.core.geo.gallery import Gallery
    from geoforensics.core.species.names import SpeciesMatch

#: Likelihood models of :func:`species_log_likelihood`.
LIKELIHOOD_MODELS: tuple[str, ...] = ("focal", "draw", "presence-absence")
#: The likelihood of :func:`locate_species` (``geoforensics locate``, ``check``, the bench).
DEFAULT_LIKELIHOOD = "focal"
#: Modes of :func:`weights_from_probs`.
WEIGHT_MODES: tuple[str, ...] = ("top1", "weighted", "threshold")
#: Probability floor per species (misidentifications never make a place impossible).
DEFAULT_EPS = 1e-4
#: Mass of unlisted species at every location (the draw model's "other" category).
DEFAULT_BACKGROUND = 1.0
#: Bounds of the automatic detection probability of the presence-absence model.
AUTO_DETECTION_RANGE: tuple[float, float] = (1e-3, 0.5)
#: Default ``min_prob`` of :func:`weights_from_probs` per mode (BirdNET's usual 0.1 cut).
DEFAULT_MIN_PROB: dict[str, float] = {"top1": 0.0, "weighted": 0.1, "threshold": 0.1}
#: Radius (km) of the region whose posterior mass ranks places (about a country's scale).
DEFAULT_RADIUS_KM = 500.0


def _absence_base(table: np.ndarray, detection: float) -> np.ndarray:
    """``Σ_s log(1 - d·p(x, s))`` per location: every species present but not heard."""
    out = np.empty(table.shape[0], dtype=np.float64)
    for rows in table_row_chunks(table):
        values = np.clip(checked_rows(table[rows], rows.start), 0.0, 1.0)
        out[rows] = np.log1p(-detection * values).sum(axis=1)
    return out


@dataclass(frozen=True)
class SpeciesWeights:
    """Species (column indices of a range table) and their weights, from one recording."""

    indices: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.size)


def _check_species(
    species_idx: ArrayLike, weights: ArrayLike | None, n_species: int
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.atleast_1d(np.asarray(species_idx))
    if idx.ndim != 1:
        raise InputError(f"species indices: expected a 1-D list, got shape {idx.shape}")
    if idx.size == 0:
        raise InputError(
            "no species to score: give at least one species (none were detected or matched)"
        )
    if not np.issubdtype(idx.dtype, np.integer):
        if not np.issubdtype(idx.dtype, np.floating) or np.any(idx != np.round(idx)):
            raise InputError(f"species indices must be whole numbers, got {idx.dtype} values")
        idx = idx.astype(np.int64)
    idx = idx.astype(np.int64)
    bad = (idx < 0) | (idx >= n_species)
    if bad.any():
        raise InputError(
            f"species index {int(idx[bad][0])} is not a column of the range table (0-"
            f"{n_species - 1}); drop unmatched species (index -1) first"
        )
    if weights is None:
        w = np.ones(idx.size, dtype=np.float64)
    else:
        w = np.atleast_1d(np.asarray(weights, dtype=np.float64))
        if w.shape != idx.shape:
            raise InputError(f"species weights: {w.shape} for {idx.size} species indices")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise InputError("species weights must be finite and >= 0")
        if not np.any(w > 0):
            raise InputError("no species to score: every species weight is 0")
    return idx, w


@dataclass
class SpeciesLikelihood:
    """Scores locations for many species lists over one range table.

    The per-location statistics each model needs over all species (the summed presence for
    ``draw``, the all-absent log-probability for ``presence-absence``) are computed once, on
    first use, so scoring many recordings (or many random species subsets, paper Table 3)
    against one table costs only the selected columns per call.
    """

    table: np.ndarray
    model: str = DEFAULT_LIKELIHOOD
    eps: float = DEFAULT_EPS
    background: float = DEFAULT_BACKGROUND
    detection: float | None = None
    _totals: np.ndarray | None = field(default=None, init=False, repr=False)
    _absent: dict[float, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.table = check_range_table(self.table)
        if self.model not in LIKELIHOOD_MODELS:
            raise InputError(
                f"likelihood model {self.model!r}: choose one of {', '.join(LIKELIHOOD_MODELS)}"
            )
        if not np.isfinite(self.eps) or self.eps <= 0:
            raise InputError(f"likelihood eps {self.eps}: must be a positive number")
        if not np.isfinite(self.background) or self.background < 0:
            raise InputError(f"likelihood background {self.background}: must be >= 0")
        if self.detection is not None and (
            not np.isfinite(self.detection) or not 0.0 < self.detection < 1.0
        ):
            raise InputError(f"detection probability {self.detection}: must be in (0, 1)")

    @property
    def n_locations(self) -> int:
        """G, the number of gallery locations (rows)."""
        return int(self.table.shape[0])

    @property
    def n_species(self) -> int:
        """S, the number of species (columns)."""
        return int(self.table.shape[1])

    def totals(self) -> np.ndarray:
        """``T(x)``, the summed presence per location (cached)."""
        if self._totals is None:
            self._totals = location_totals(self.table)
        return self._totals

    def detection_for(self, n_heard: float) -> float:
        """The presence-absence detection probability for a list of ``n_heard`` species.

        The fixed ``detection`` when set; otherwise the value at which a place of average
        species richness would yield as many species as were heard (``n_heard / mean T``,
        kept within [0.001, 0.5]): range models differ wildly in scale (BirdNET lists ~100
        species per place, a synthetic world a handful), and a fixed value either ignores
        the unheard species or lets them dominate.
        """
        if self.detection is not None:
            return float(self.detection)
        mean_total = float(self.totals().mean())
        if mean_total <= 0:
            return AUTO_DETECTION_RANGE[1]
        low, high = AUTO_DETECTION_RANGE
        return float(np.clip(n_heard / mean_total, low, high))

    def _absence(self, detection: float) -> np.ndarray:
        key = round(detection, 12)
        if key not in self._absent:
            self._absent[key] = _absence_base(self.table, key)
        return self._absent[key]

    def log_likelihood(
        self, species_idx: ArrayLike, weights: ArrayLike | None = None
    ) -> np.ndarray:
        """(G,) float64 log-likelihood of the species (weights default to 1) at each location."""
        idx, w = _check_species(species_idx, weights, self.n_species)
        columns = checked_columns(self.table, idx)
        return self._score(columns, idx, w)

    def _log_denominator(self) -> np.ndarray:
        """``log D(x) = log(T(x) + S·eps + background)``, the draw model's normaliser."""
        return np.log(self.totals() + self.n_species * self.eps + self.background)

    def _score(self, columns: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The log-likelihood from the selected (G, n) float64 columns."""
        if self.model in ("draw", "focal"):
            return columns_log_likelihood(
                columns, w, self.model, self.totals, self.n_species, self.eps, self.background
            )
        # presence-absence: a species listed twice counts once, with its largest belief.
        if np.any(w > 1.0):
            raise InputError("presence-absence weights are detection beliefs: must be in [0, 1]")
        unique, first, inverse = np.unique(idx, return_index=True, return_inverse=True)
        belief = np.zeros(unique.size)
        np.maximum.at(belief, inverse, w)
        detection = self.detection_for(float(belief.sum()))
        p = np.clip(columns[:, first], 0.0, 1.0) * detection
        gain = np.log(p + self.eps) - np.log1p(-p)
        return np.asarray(self._absence(detection) + gain @ belief, dtype=np.float64)


def draws_of(weights: np.ndarray, model: str) -> float:
    """How many species (summed weights) are draws normalised by the place's total: all of
    them for ``draw``, all but the most confident one for ``focal``."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum()) - (float(w.max()) if model == "focal" else 0.0)


def columns_log_likelihood(
    columns: np.ndarray,
    weights: np.ndarray,
    model: str,
    totals: Callable[[], np.ndarray] | np.ndarray | None,
    n_species: int,
    eps: float = DEFAULT_EPS,
    background: float = DEFAULT_BACKGROUND,
) -> np.ndarray:
    """``draw`` / ``focal`` log-likelihood (G,) from the heard species' columns (G, n) and
    the per-place totals ``T(x)`` (an array, or a callable giving it; used only when some
    species is a draw)."""
    values = checked_rows(np.asarray(columns), 0)
    w = np.asarray(weights, dtype=np.float64)
    log_p = np.log(values + eps) @ w
    draws = draws_of(w, model)
    if draws > 0:  # one species alone (focal) needs no per-place total
        if totals is None:
            raise InputError(f"{model} likelihood of several species needs the place totals")
        total = totals() if callable(totals) else totals
        log_p = log_p - draws * np.log(np.asarray(total) + n_species * eps + background)
    return np.asarray(log_p, dtype=np.float64)


def species_log_likelihood(
    table: ArrayLike,
    species_idx: ArrayLike,
    weights: ArrayLike | None = None,
    model: str = DEFAULT_LIKELIHOOD,
    eps: float = DEFAULT_EPS,
    background: float = DEFAULT_BACKGROUND,
    detection: float | None = None,
) -> np.ndarray:
    """(G,) log-likelihood of observing ``species_idx`` (columns of ``table``) at each location.

    ``table`` is (G, S) presence; ``weights`` (default 1 each) weight the species; ``model`` is
    ``focal`` (default), ``draw`` or ``presence-absence`` (see the module docstring). For many
    species lists over one table, use :class:`SpeciesLikelihood` (it reuses the per-location
    statistic).
    """
    scorer = SpeciesLikelihood(
        check_range_table(table), model=model, eps=eps, background=background, detection=detection
    )
    return scorer.log_likelihood(species_idx, weights)


def naive_range_sum(
    table: ArrayLike, species_idx: ArrayLike, weights: ArrayLike | None = None
) -> np.ndarray:
    """The unnormalised baseline: ``Σ_i w_i presence(x, s_i)`` per location (G,).

    Kept to show (tests, ablations) why it fails: it prefers places where range models list
    many species at once, not places where the observed species are typical.
    """
    array = check_range_table(table)
    idx, w = _check_species(species_idx, weights, array.shape[1])
    return np.asarray(checked_rows(array[:, idx], 0) @ w, dtype=np.float64)


def weights_from_probs(
    probs: ArrayLike, mode: str = "top1", min_prob: float | None = None
) -> SpeciesWeights:
    """Species and weights from predicted species probabilities (the paper's predicted rows).

    ``probs`` is (S,) for a recording, or (W, S) per window, pooled by the maximum over
    windows (a species counts if it is heard in any window). Modes:

    - ``top1``: the single most probable species, weight 1 (if its probability reaches
      ``min_prob``, default 0);
    - ``weighted``: every species with probability >= ``min_prob`` (default 0.1), weighted by
      its probability;
    - ``threshold``: the same species, weight 1 each.

    The result may be empty (nothing reached ``min_prob``); scoring it raises InputError.
    """
    if mode not in WEIGHT_MODES:
        raise InputError(f"species weighting {mode!r}: choose one of {', '.join(WEIGHT_MODES)}")
    values = np.asarray(probs, dtype=np.float64)
    if values.ndim == 2:
        if values.shape[0] == 0:
            raise InputError("species probabilities: no windows")
        values = values.max(axis=0)
    if values.ndim != 1 or values.size == 0:
        raise InputError(
            f"species probabilities: expected (S,) or (windows, S), got {np.shape(probs)}"
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values > 1):
        raise InputError("species probabilities must be finite and in [0, 1]")
    threshold = DEFAULT_MIN_PROB[mode] if min_prob is None else float(min_prob)
    if not np.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise InputError(f"min_prob {min_prob}: must be in [0, 1]")
    if mode == "top1":
        best = int(np.argmax(values))
        if values[best] < threshold:
            return SpeciesWeights(np.zeros(0, np.int64), np.zeros(0, np.float64))
        return SpeciesWeights(np.array([best], np.int64), np.ones(1, np.float64))
    keep = np.flatnonzero(values >= threshold)
    keep = keep[np.argsort(-values[keep], kind="stable")]
    weights = values[keep] if mode == "weighted" else np.ones(keep.size)
    return SpeciesWeights(keep.astype(np.int64), weights.astype(np.float64))


def weights_from_species(species_idx: Sequence[int] | np.ndarray) -> SpeciesWeights:
    """Annotated species (the paper's true-species row): every listed species, weight 1.

    Unmatched entries (index -1, from name matching) are dropped.
    """
    idx = np.asarray(species_idx, dtype=np.int64).reshape(-1)
    idx = idx[idx >= 0]
    return SpeciesWeights(idx, np.ones(idx.size, dtype=np.float64))


def week_prior(
    year_table: ArrayLike, week_table: ArrayLike, week_weight: float = 0.75
) -> np.ndarray:
    """Blend a week's range table with the year-round one: a soft prior from the recording date.

    ``week_weight`` 1 trusts the date fully (the week's table); 0 ignores it (year-round).
    A blend keeps species seen just outside their modelled season (early migrants, a slightly
    wrong date) from ruling a place out. Returns float32 (G, S).
    """
    year = check_range_table(year_table)
    week = check_range_table(week_table)
    if year.shape != week.shape:
        raise InputError(f"week prior: tables differ in shape ({year.shape} vs {week.shape})")
    if not np.isfinite(week_weight) or not 0.0 <= week_weight <= 1.0:
        raise InputError(f"week prior weight {week_weight}: must be in [0, 1]")
    out = week.astype(np.float32) * np.float32(week_weight)
    out += year.astype(np.float32) * np.float32(1.0 - week_weight)
    return out


# ------------------------------------------------------------------- from scores to places


@dataclass(frozen=True)
class SpeciesLocation:
    """Species-range geolocation of one species list over a gallery.

    ``probs`` (G,) is the posterior over gallery points (likelihood × prior), the same kind of
    score-over-gallery a retrieval method gives; ``region_probs`` (G,) the mass within
    ``radius_km`` of each point (equal to ``probs`` when the radius is 0); ``top`` the indices
    of the listed places, best first. ``match`` says which names matched the range model.
    """

    coords: np.ndarray
    log_likelihood: np.ndarray
    probs: np.ndarray
    region_probs: np.ndarray
    top: np.ndarray
    radius_km: float
    week: int
    model: str
    match: SpeciesMatch
    species_indices: np.ndarray
    weights: np.ndarray
    area_prior: bool
    effort_prior: str | None = None


def _fast_log_likelihood(
    range_model: RangeModel,
    coords: np.ndarray,
    week: int,
    week_weight: float,
    model: str,
    species_idx: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """``draw`` / ``focal`` from the heard columns and cached totals (no full range table)."""
    from geoforensics.core.species.range_evidence import range_evidence

    idx, w = _check_species(species_idx, weights, len(range_model.species))
    need_totals = draws_of(w, model) > 0
    parts: list[tuple[float, int]] = []
    if week == YEAR_ROUND or week_weight == 0.0:
        parts.append((1.0, YEAR_ROUND))
    else:
        parts.append((week_weight, week))
        if week_weight < 1.0:
            parts.append((1.0 - week_weight, YEAR_ROUND))
    columns = np.zeros((len(coords), idx.size), dtype=np.float32)
    totals = np.zeros(len(coords), dtype=np.float64) if need_totals else None
    for share, part_week in parts:
        found = range_evidence(range_model, coords, part_week, idx, need_totals)
        if len(parts) == 1:
            columns = found.columns.astype(np.float32)
        else:  # as week_prior blends two tables
            columns += found.columns.astype(np.float32) * np.float32(share)
        if totals is not None and found.totals is not None:
            totals += share * found.totals
    return columns_log_likelihood(columns, w, model, totals, len(range_model.species))


def locate_species(
    names: Sequence[str],
    range_model: RangeModel,
    gallery: Gallery,
    week: int = YEAR_ROUND,
    week_weight: float = 1.0,
    model: str = DEFAULT_LIKELIHOOD,
    radius_km: float = DEFAULT_RADIUS_KM,
    k: int = 5,
    weights: ArrayLike | None = None,
    area_prior: bool | None = None,
    progress: bool = False,
    effort: str | Path | EffortPoints | None = "auto",
    effort_strength: float | None = None,
    fast: bool = True,
) -> SpeciesLocation:
    """Geolocate a list of scientific names with a range model over a gallery.

    Names are matched to the range model's species (:func:`~.names.match_species`; common
    names too when the model has ``common_names``); if none match, :class:`InputError`
    names them. ``week`` 1-48 uses that week's range table (``week_weight`` < 1 blends in the
    year-round table, :func:`week_prior`); -1 the year-round table. ``weights`` (one per
    name, default 1) weight the species. ``model``: ``focal`` (default), ``draw`` or
    ``presence-absence`` (module docstring). ``area_prior`` None: on for regular grid / land
    galleries; ``effort`` (``auto``: the population effort prior on the same galleries) and
    ``effort_strength``: :func:`gallery_log_prior`. Range tables are built in batches and
    cached (:func:`~.range_table.range_table`); with ``fast`` (default), BirdNET's ``focal``
    and ``draw`` likelihoods skip them: only the heard species' columns are computed and the
    per-place totals are cached per week (:func:`~.range_evidence.range_evidence`; equal
    within float16 rounding).
    """
    from geoforensics.core.species.range_evidence import birdnet_mlp

    if not names:
        raise InputError("no species given: pass scientific names, e.g. 'Turdus merula'")
    match = match_species(
        list(names), list(range_model.species), getattr(range_model, "common_names", None)
    )
    if not match.matched:
        raise InputError(
            f"none of the species matched the range model's {len(range_model.species)} species: "
            + ", ".join(repr(n) for n in match.unmatched)
        )
    keep = match.indices >= 0
    species_idx = match.indices[keep]
    if weights is None:
        species_w = np.ones(species_idx.size)
    else:
        given = np.asarray(weights, dtype=np.float64).reshape(-1)
        if given.size != len(names):
            raise InputError(f"locate: {given.size} weights for {len(names)} species names")
        species_w = given[keep]
    week_value = int(week)
    week_rows([week_value], 1, "locate", year_round=True)
    if not np.isfinite(week_weight) or not 0.0 <= week_weight <= 1.0:
        raise InputError(f"week weight {week_weight}: must be in [0, 1]")
    coords = gallery.coords
    if model not in LIKELIHOOD_MODELS:
        choices = ", ".join(LIKELIHOOD_MODELS)
        raise InputError(f"likelihood model {model!r}: choose one of {choices}")
    if fast and model in ("draw", "focal") and birdnet_mlp(range_model) is not None:
        log_lik = _fast_log_likelihood(
            range_model, coords, week_value, week_weight, model, species_idx, species_w
        )
    else:
        if week_value == YEAR_ROUND or week_weight == 0.0:
            table = range_table(range_model, coords, None, progress=progress)
        else:
            table = range_table(range_model, coords, week_value, progress=progress)
            if week_weight < 1.0:
                year = range_table(range_model, coords, None, progress=progress)
                table = week_prior(year, table, week_weight)
        log_lik = SpeciesLikelihood(table, model=model).log_likelihood(species_idx, species_w)
    log_prior, use_area, effort_name = effort_gallery_log_prior(
        gallery, area_prior, effort, effort_strength
    )
    probs = score_map(log_lik + log_prior)
    region = region_probability(probs, coords, radius_km)
    top = distinct_top_k(region, coords, k, radius_km)
    return SpeciesLocation(
        coords=coords,
        log_likelihood=log_lik,
        probs=probs,
        region_probs=region,
        top=top,
        radius_km=float(radius_km),
        week=week_value,
        model=model,
        match=match,
        species_indices=species_idx,
        weights=species_w,
        area_prior=use_area,
        effort_prior=effort_name,
    )


__all__ = [
    "AUTO_DETECTION_RANGE",
    "DEFAULT_BACKGROUND",
    "DEFAULT_EPS",
    "DEFAULT_LIKELIHOOD",
    "DEFAULT_RADIUS_KM",
    "LIKELIHOOD_MODELS",
    "WEIGHT_MODES",
    "SpeciesLikelihood",
    "SpeciesLocation",
    "SpeciesWeights",
    "columns_log_likelihood",
    "draws_of",
    "locate_species",
    "location_totals",
    "naive_range_sum",
    "species_log_likelihood",
    "week_prior",
    "weights_from_probs",
    "weights_from_species",
]
