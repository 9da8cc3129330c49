"""Benchmark rows fusing AG-CLIP with species-range evidence ("fused").

Each recording gets two distributions over the bench gallery: AG-CLIP's (its recording
embedding against the gallery's location embeddings, cosine x temperature, softmax) and the
species likelihood of its species list under the range model for its week (the ``draw``
likelihood of :mod:`~geoforensics.eval.rows.species`). They are combined as a product of
experts, ``log p_agclip + w * log p_species`` (:func:`~geoforensics.core.species.fusion.fuse`),
and one gallery point is picked with the species rows' ranking (the peak of the 500 km region
with the most posterior mass), so ``w = inf`` reproduces the species row exactly.

The weight ``w`` is chosen on the *validation* split from :data:`FUSION_WEIGHTS` (``0`` is
AG-CLIP alone, ``inf`` the species alone): the weight with the highest accuracy over the
country-to-continent band, the mean of the accuracies at :data:`CHOICE_BAND_KM` (nine
log-spaced radii from 750 to 2,500 km, the scales where fusion must be at least as good as
either expert), ties broken by the lower median error, then the smaller weight. Averaging over
the band rather than reading two thresholds matters on small validation splits: with 57
recordings the two-threshold mean tied weights 1 to 8 on the tiny world and the median then
picked the smallest of them, which lost to the species expert on the test split; the band
separates them. The test split is then scored at that weight only; every weight's test figures
are kept in the row's extra (``test_grid``) for inspection, never for choosing.

``fused-annotated`` (Table 1)
    AG-CLIP x the recording's annotated species;
``fused-annotated-xcdc`` (Table 3)
    the same on the XCDC choruses (their true species from the CSV), with the weight chosen
    for ``fused-annotated``;
``fused-top1`` / ``fused-weighted`` (Table 1, real bird audio with the ``birdnet`` extra)
    AG-CLIP x the species BirdNET's classifier hears (top-1, or all >= 0.1 weighted), with
    BirdNET's range model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import haversine_np
from geoforensics.core.species import birdnet_files
from geoforensics.core.species.checklists import YEAR_ROUND, RangeModel
from geoforensics.core.species.fusion import (
    CHOICE_BAND_KM,
    DEFAULT_FUSION_WEIGHTS,
    REPORT_THRESHOLDS_KM,
    agclip_log_probs,
    agclip_temperature,
    band_accuracy,
    best_weight_index,
    log_normalise,
)
from geoforensics.core.species.likelihood import SpeciesLikelihood
from geoforensics.core.species.names import match_species
from geoforensics.core.species.range_table import range_table
from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import BenchData, BenchRow, RowContext, register_row
from geoforensics.eval.rows.species_common import (
    PREDICTED_MODES,
    RangeModelChoice,
    annotated_queries,
    birdnet_detections,
    birdnet_range_model,
    file_sha,
    no_birdnet_audio,
    no_range_model,
    no_xcdc_or_range_model,
    recording_weeks,
    species_inputs,
    split_recordings,
)
from geoforensics.eval.rows.training import predict_with_model
from geoforensics.eval.species_ranking import (
    DEFAULT_RANKING,
    RADIUS_KM,
    GalleryRanker,
    SpeciesQuery,
)

FUSED_ANNOTATED_ROW = "fused-annotated"
FUSED_ANNOTATED_XCDC_ROW = "fused-annotated-xcdc"

#: The grid the validation split chooses from (0: AG-CLIP alone, inf: species alone).
FUSION_WEIGHTS: tuple[float, ...] = DEFAULT_FUSION_WEIGHTS

#: Country and continent scale: the thresholds fusion is judged at.
CHOICE_THRESHOLDS_KM: tuple[float, ...] = REPORT_THRESHOLDS_KM

_LABELS = {
    "annotated": "AG-CLIP x species range (annotated species, fused)",
    "xcdc": "AG-CLIP x species range (true species, fused)",
    "top1": "AG-CLIP x species range (top-1 predicted species, fused)",
    "weighted": "AG-CLIP x species range (all predicted species, fused)",
}


@dataclass(frozen=True)
class FusionInputs:
    """One split's two experts: unit recording embeddings (N, D) and species queries (N)."""

    embeddings: np.ndarray
    queries: list[SpeciesQuery]
    truth: np.ndarray


class FusedScorer:
    """Ranks fused posteriors over one gallery for any fusion weight.

    ``gallery_embeddings`` (G, D) unit location embeddings of ``coords`` (G, 2); the species
    term comes from ``model``'s range table over ``coords`` for each query's week (built in
    batches and cached on disk, one per week).
    """

    def __init__(
        self,
        coords: np.ndarray,
        gallery_embeddings: np.ndarray,
        model: RangeModel,
        temperature: float,
        progress: bool = False,
    ) -> None:
        self.coords = np.asarray(coords, dtype=np.float64)
        self.gallery_embeddings = np.asarray(gallery_embeddings, dtype=np.float32)
        self.model = model
        self.temperature = float(temperature)
        self.progress = progress
        self.ranker = GalleryRanker(self.coords, DEFAULT_RANKING, RADIUS_KM)
        self._scorers: dict[int, SpeciesLikelihood] = {}

    def _scorer(self, week: int) -> SpeciesLikelihood:
        if week not in self._scorers:
            table = range_table(
                self.model,
                self.coords,
                None if week == YEAR_ROUND else week,
                cache=len(self.coords) * len(self.model.species) <= 100_000_000,
                progress=self.progress,
            )
            self._scorers[week] = SpeciesLikelihood(table)
        return self._scorers[week]

    def choose(self, inputs: FusionInputs, weights: Sequence[float]) -> np.ndarray:
        """(len(weights), N) gallery index picked for each weight and recording."""
        grid = list(weights)
        chosen = np.empty((len(grid), len(inputs.queries)), dtype=np.int64)
        rows = tqdm(
            range(len(inputs.queries)), desc="fusion", unit="rec", disable=not self.progress
        )
        for i in rows:
            cosine = np.clip(self.gallery_embeddings @ inputs.embeddings[i], -1.0, 1.0)
            log_agclip = agclip_log_probs(cosine.astype(np.float64), self.temperature)
            query = inputs.queries[i]
            if query.indices.size:
                species = self._scorer(query.week).log_likelihood(query.indices, query.weights)
                log_species = log_normalise(species, "species log-likelihood")
            else:  # no species evidence: the species expert is uniform
                log_species = np.full(len(self.coords), -math.log(len(self.coords)))
            for j, w in enumerate(grid):
                if math.isinf(w):
                    posterior = log_species
                elif w == 0.0:
                    posterior = log_agclip
                else:
                    posterior = log_agclip + w * log_species
                chosen[j, i] = self.ranker.best(posterior)
        return chosen


def grid_metrics(
    coords: np.ndarray, chosen: np.ndarray, truth: np.ndarray, weights: Sequence[float]
) -> list[dict[str, Any]]:
    """Per fusion weight: median error, accuracy at :data:`CHOICE_THRESHOLDS_KM` and over the
    choice band of the points ``chosen`` (len(weights), N) against ``truth``."""
    out = []
    for j, w in enumerate(weights):
        errors = haversine_np(coords[chosen[j]], truth)
        row: dict[str, Any] = {
            "weight": "inf" if math.isinf(w) else float(w),
            "median_km": float(np.median(errors)),
        }
        for t in CHOICE_THRESHOLDS_KM:
            row[f"acc@{t:g}km"] = float(np.mean(errors <= t))
        row["band_accuracy"] = band_accuracy(errors)
        out.append(row)
    return out


def pick_weight(grid: Sequence[dict[str, Any]]) -> int:
    """Index of the grid row the library's weight rule picks
    (:func:`~geoforensics.core.species.fusion.best_weight_index`: the best accuracy over the
    country-to-continent band ``band_accuracy``, :data:`CHOICE_BAND_KM`, then the lower
    median, then the earlier, i.e. smaller, weight)."""
    if not grid:
        raise InputError("fusion: no weights to choose from")
    return best_weight_index(
        [float(row["band_accuracy"]) for row in grid], [float(row["median_km"]) for row in grid]
    )


# ------------------------------------------------------------------------- species queries


def _predicted_queries(
    data: BenchData, split: str, mode: str
) -> tuple[RangeModel, RangeModelChoice, list[SpeciesQuery]]:
    model, choice = birdnet_range_model(data)
    weeks = recording_weeks(split_recordings(data, split))
    labels = [scientific for scientific, _ in birdnet_files.birdnet_labels()]
    columns = match_species(labels, list(model.species)).indices
    queries = []
    for found, week in zip(birdnet_detections(data, split), weeks, strict=True):
        mapped = columns[np.asarray(found[mode].indices, dtype=np.int64)]
        keep = mapped >= 0
        queries.append(SpeciesQuery(mapped[keep], np.asarray(found[mode].weights)[keep], week))
    return model, choice, queries


QueryMaker = Callable[[BenchData, str], tuple[RangeModel, RangeModelChoice, list[SpeciesQuery]]]


def _split_embeddings(context: RowContext, model_dir: Any, split: str) -> np.ndarray:
    """AG-CLIP's unit recording embeddings of ``split`` (computed once per bench run)."""
    data = context.data

    def compute() -> np.ndarray:
        recordings = split_recordings(data, split)
        _, embeddings = predict_with_model(context, model_dir, recordings)
        if embeddings is None:  # pragma: no cover - the AG-CLIP row always has embeddings
            raise InputError(f"{model_dir}: not an AG-CLIP model (no recording embeddings)")
        return embeddings

    embeddings: np.ndarray = data.memo(("agclip-embeddings", str(model_dir), split), compute)
    return embeddings


def _scorer(context: RowContext, model: RangeModel) -> FusedScorer:
    index = context.data.retrieval_index
    return FusedScorer(
        context.data.gallery.coords,
        index.embeddings,
        model,
        agclip_temperature(),
        progress=context.data.progress,
    )


def _truth(data: BenchData, split: str) -> np.ndarray:
    return data.xcdc.coords() if split == "xcdc" else data.split(split).coords()


def _run_fused(context: RowContext, make_queries: QueryMaker, source: str) -> RowResult:
    """Choose the weight on validation, score the test split at it."""
    data = context.data
    parent = context.result("agclip")
    model_dir = parent.extra["model_dir"]
    model, choice, val_queries = make_queries(data, "val")
    _, _, test_queries = make_queries(data, "test")
    scorer = _scorer(context, model)
    val = FusionInputs(
        _split_embeddings(context, model_dir, "val"), val_queries, _truth(data, "val")
    )
    val_grid = grid_metrics(
        scorer.coords, scorer.choose(val, FUSION_WEIGHTS), val.truth, FUSION_WEIGHTS
    )
    best = pick_weight(val_grid)
    test = FusionInputs(parent.arrays["embeddings"], test_queries, _truth(data, "test"))
    test_chosen = scorer.choose(test, FUSION_WEIGHTS)
    test_grid = grid_metrics(scorer.coords, test_chosen, test.truth, FUSION_WEIGHTS)
    extra = _extra(data, choice, source, FUSION_WEIGHTS[best], val_grid, test_grid)
    return context.make_result(scorer.coords[test_chosen[best]].copy(), extra)


def _run_fused_xcdc(context: RowContext) -> RowResult:
    """The XCDC choruses at the weight ``fused-annotated`` chose on validation."""
    data = context.data
    weight_row = context.result(FUSED_ANNOTATED_ROW)
    raw = weight_row.extra["fusion_weight"]
    weight = math.inf if raw == "inf" else float(raw)
    parent = context.result("agclip-xcdc")
    model, choice, queries = annotated_queries(data, "xcdc")
    scorer = _scorer(context, model)
    inputs = FusionInputs(parent.arrays["embeddings"], queries, _truth(data, "xcdc"))
    grid = (0.0, weight, math.inf)
    chosen = scorer.choose(inputs, grid)
    extra = _extra(
        data,
        choice,
        "annotated",
        weight,
        None,
        grid_metrics(scorer.coords, chosen, inputs.truth, grid),
    )
    return context.make_result(scorer.coords[chosen[1]].copy(), extra)


def _extra(
    data: BenchData,
    choice: RangeModelChoice,
    source: str,
    weight: float,
    val_grid: list[dict[str, Any]] | None,
    test_grid: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "species": source,
        "fusion_weight": "inf" if math.isinf(weight) else float(weight),
        "chosen_on": "val: mean accuracy at 9 log-spaced radii 750-2500 km, then median",
        "choice_band_km": list(CHOICE_BAND_KM),
        "val_grid": val_grid,
        "test_grid": test_grid,
        "temperature": agclip_temperature(),
        "range_model": choice.kind,
        "range_model_sha256": file_sha(choice.file),
        "ranking": DEFAULT_RANKING,
        "radius_km": RADIUS_KM,
        "gallery": data.gallery.name,
    }


def _fused_inputs(data: BenchData, **settings: Any) -> dict[str, Any]:
    return species_inputs(
        data, weights=["inf" if math.isinf(w) else w for w in FUSION_WEIGHTS], **settings
    )


register_row(
    BenchRow(
        name=FUSED_ANNOTATED_ROW,
        label=_LABELS["annotated"],
        table="T1",
        run=partial(_run_fused, make_queries=annotated_queries, source="annotated"),
        requires=("agclip",),
        uses_gallery=True,
        description=(
            "AG-CLIP x annotated-species range likelihood (product of experts), weight "
            "chosen on validation at country/continent scale"
        ),
        unavailable=no_range_model,
        inputs=partial(_fused_inputs, species="annotated"),
    ),
)
register_row(
    BenchRow(
        name=FUSED_ANNOTATED_XCDC_ROW,
        label=_LABELS["xcdc"],
        table="T3",
        split="xcdc",
        run=_run_fused_xcdc,
        requires=(FUSED_ANNOTATED_ROW, "agclip-xcdc"),
        uses_gallery=True,
        description="AG-CLIP x the XCDC choruses' true species, weight of fused-annotated",
        unavailable=no_xcdc_or_range_model,
        inputs=partial(_fused_inputs, species="annotated"),
    ),
)
for mode in PREDICTED_MODES:
    register_row(
        BenchRow(
            name=f"fused-{mode}",
            label=_LABELS[mode],
            table="T1",
            run=partial(
                _run_fused,
                make_queries=partial(_predicted_queries, mode=mode),
                source=f"birdnet-{mode}",
            ),
            requires=("agclip",),
            uses_gallery=True,
            description=f"AG-CLIP x BirdNET {mode} species with BirdNET's range model",
            unavailable=partial(no_birdnet_audio, split="test"),
            inputs=partial(_fused_inputs, species=f"birdnet-{mode}"),
        ),
    )


__all__ = [
    "CHOICE_BAND_KM",
    "CHOICE_THRESHOLDS_KM",
    "FUSED_ANNOTATED_ROW",
    "FUSED_ANNOTATED_XCDC_ROW",
    "FUSION_WEIGHTS",
    "FusedScorer",
    "FusionInputs",
    "grid_metrics",
    "pick_weight",
]
