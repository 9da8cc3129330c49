"""Benchmark rows of species-range geolocation (paper Tables 1 and 3, "species range").

Every row turns each recording's species list into a likelihood over the bench gallery
(:class:`~geoforensics.core.species.likelihood.SpeciesLikelihood` with ``locate_species``'s
default model, ``focal``: the most confident species scored by its presence, every other one
as a draw that normalises per location) with a range model's table over the gallery for the
recording's week, and predicts one gallery point
(:func:`~geoforensics.eval.species_ranking.locate_queries`):

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

Range model (:func:`~geoforensics.eval.rows.species_common.choose_range_model`): the
synthetic world's true ranges when the data is a synthetic world, else BirdNET's range model
when the extra is installed; otherwise the rows are unavailable and say why. Its file's
SHA-256 is part of every row's resume check (``inputs``), so results are recomputed when the
range model changes.

Week: from the recording date (BirdNET's 48-week calendar); an XCDC row with a partial date
(``2019-05-00``) uses the middle of its month, one without a date the year-round table.

Ranking (:mod:`geoforensics.eval.species_ranking`, ``region-peak``): the posterior over the
gallery (likelihood times a prior uniform over the gallery's points, as retrieval treats them;
on a regular grid or land gallery, ``--gallery land-1deg``, the area and recording-effort prior
of ``locate``, :func:`~geoforensics.core.geo.gallery.effort_gallery_log_prior`) picks the
region of radius ``RADIUS_KM`` (500 km) with the most posterior mass (the ranking of
``geoforensics locate --species``,
:func:`~geoforensics.core.species.likelihood.locate_species`; evaluated at the
``MAX_CANDIDATES`` most probable points, exact for smaller galleries), and within it the most
probable point. On the tiny synthetic worlds it is as good as or better than both plain
rankings in every row (README "Species-range rows"): the region's *centre* (``region``) is
often a few hundred km from a sharp peak, while the plain arg-max (``argmax``) of one species'
likelihood jumps to wherever the range model lists few other species. A recording whose names
all fail to match the range model's taxonomy has no evidence: it gets the prior's mode (the
gallery point with the most gallery points within the radius). Unmatched names are reported in
the row's extra (``unmatched_species`` and counts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from geoforensics.core.geo.metrics import geolocation_errors, summarize_errors
from geoforensics.core.species import birdnet_files
from geoforensics.core.species.checklists import RangeModel
from geoforensics.core.species.likelihood import DEFAULT_LIKELIHOOD
from geoforensics.core.species.names import match_species
from geoforensics.eval.results import RowResult, metrics_json
from geoforensics.eval.rows.base import BenchData, BenchRow, RowContext, register_row
from geoforensics.eval.rows.species_common import (
    PREDICTED_MODES,
    RangeModelChoice,
    bench_range_model,
    birdnet_detections,
    birdnet_range_model,
    choose_range_model,
    file_sha,
    gallery_prior,
    no_birdnet_audio,
    no_range_model,
    no_xcdc_or_range_model,
    recording_weeks,
    species_inputs,
    split_recordings,
    true_species,
)
from geoforensics.eval.species_ranking import (
    DEFAULT_RANKING,
    RADIUS_KM,
    LocatedQueries,
    SpeciesQuery,
    locate_queries,
)

#: Row names.
ANNOTATED_ROW = "species-range-annotated"
ANNOTATED_XCDC_ROW = "species-range-annotated-xcdc"
#: Table 3 right: sizes k of the random species subsets, and draws per recording (odd, so the
#: median draw is one draw).
SUBSET_SIZES: tuple[int, ...] = (1, 2, 5, 10)
SUBSET_DRAWS = 21
SUBSET_LABEL = "Species range (k random true species)"
_LABELS = {
    ANNOTATED_ROW: "Species range (annotated species)",
    ANNOTATED_XCDC_ROW: "Species range (true species)",
    "top1": "Species range (top-1 predicted species)",
    "weighted": "Species range (all predicted species, weighted)",
}


def _base_extra(data: BenchData, choice: RangeModelChoice, weeks: Sequence[int]) -> dict[str, Any]:
    return {
        "range_model": choice.kind,
        "range_model_sha256": file_sha(choice.file),
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
    model = bench_range_model(data, choice)
    split = context.row.split
    weeks = recording_weeks(split_recordings(data, split))
    lists = true_species(data, split, model, choice)
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
    data = context.data
    choice = choose_range_model(data)
    model = bench_range_model(data, choice)
    weeks = recording_weeks(split_recordings(data, "xcdc"))
    lists = true_species(data, "xcdc", model, choice)
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


def _run_predicted(context: RowContext, mode: str) -> RowResult:
    """Species predicted by BirdNET's audio classifier (``top1`` / ``weighted``) with
    BirdNET's range model (the same 6,522 labels)."""
    data = context.data
    model, choice = birdnet_range_model(data)
    split = context.row.split
    weeks = recording_weeks(split_recordings(data, split))
    detections = birdnet_detections(data, split)
    labels = [scientific for scientific, _ in birdnet_files.birdnet_labels()]
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
            "audio_model_sha256": file_sha(birdnet_files.birdnet_file("audio")),
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


def _predicted_inputs(data: BenchData) -> dict[str, Any]:
    if not birdnet_files.birdnet_available():
        return {"birdnet": None}
    return {
        "range_model_sha256": file_sha(birdnet_files.birdnet_file("range")),
        "audio_model_sha256": file_sha(birdnet_files.birdnet_file("audio")),
        "ranking": DEFAULT_RANKING,
        "radius_km": RADIUS_KM,
        "likelihood": DEFAULT_LIKELIHOOD,
        "prior": gallery_prior(data)[1],
    }


def subset_row_name(k: int) -> str:
    """``xcdc-species-k{k}``: the Table 3 right row of k-species subsets."""
    return f"xcdc-species-k{k}"


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
        unavailable=no_range_model,
        inputs=species_inputs,
    ),
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
        unavailable=no_xcdc_or_range_model,
        inputs=species_inputs,
        xcdc_only=True,
    ),
)
for split in ("test", "xcdc"):
    for mode in PREDICTED_MODES:
        name = f"species-range-{mode}" + ("-xcdc" if split == "xcdc" else "")
        unavailable: Callable[[BenchData], str | None] = partial(no_birdnet_audio, split=split)
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
            unavailable=no_xcdc_or_range_model,
            inputs=partial(species_inputs, k=k, draws=SUBSET_DRAWS),
            xcdc_only=True,
        ),
    )


__all__ = [
    "ANNOTATED_ROW",
    "ANNOTATED_XCDC_ROW",
    "SUBSET_DRAWS",
    "SUBSET_LABEL",
    "SUBSET_SIZES",
    "subset_row_name",
]
