"""Bench-data side of the species rows, shared by the species, fused and coverage code.

The range model a bench uses (:func:`choose_range_model`: ``--range-model``, else the
synthetic world's true ranges, else BirdNET's when the extra is installed), each split's
species lists and weeks (:func:`true_species`, :func:`recording_weeks`,
:func:`annotated_queries`), BirdNET's detections (:func:`birdnet_detections`), the gallery
prior of the species rows (:func:`gallery_prior`), and the rows' availability checks and
resume-check inputs. Everything loaded is memoised per bench run (:meth:`BenchData.memo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from geoforensics.core.errors import (
    DatasetNotFoundError,
    GeoforensicsError,
    InputError,
    WeightsNotFoundError,
)
from geoforensics.core.geo.gallery import Gallery, effort_gallery_log_prior, resolve_gallery
from geoforensics.core.species import birdnet_files
from geoforensics.core.species.birdnet_audio import BirdNETAudio
from geoforensics.core.species.checklists import RangeModel
from geoforensics.core.species.likelihood import (
    DEFAULT_LIKELIHOOD,
    SpeciesWeights,
    weights_from_probs,
)
from geoforensics.core.species.ranges import file_identity, load_range_model
from geoforensics.core.synth.ranges import RANGE_MODEL_FILE
from geoforensics.eval.rows.base import BenchData, no_xcdc
from geoforensics.eval.species_ranking import (
    DEFAULT_RANKING,
    RADIUS_KM,
    MatchedLists,
    SpeciesQuery,
    match_species_lists,
    recording_week,
)

#: Predicted-species weightings (paper Table 1): top-1 species, all species weighted.
PREDICTED_MODES: tuple[str, ...] = ("top1", "weighted")


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


def file_sha(path: Path | None) -> str | None:
    """The identity (SHA-256) of a weights file; None for none."""
    return None if path is None else file_identity(path)


def bench_range_model(data: BenchData, choice: RangeModelChoice) -> RangeModel:
    """The chosen range model, loaded once per bench run."""
    if choice.spec is None:
        raise InputError(choice.reason or "no range model")
    spec = choice.spec
    model: RangeModel = data.memo(
        ("species-range-model", spec, file_sha(choice.file)), lambda: load_range_model(spec)
    )
    return model


def birdnet_range_model(data: BenchData) -> tuple[RangeModel, RangeModelChoice]:
    """BirdNET's range model (loaded once per bench run) and its choice."""
    choice = RangeModelChoice("birdnet", "birdnet", birdnet_files.birdnet_file("range"))
    return bench_range_model(data, choice), choice


# ------------------------------------------------------------------------ species lists


def split_recordings(data: BenchData, split: str) -> list[Any]:
    """The recordings of ``split``: ``xcdc`` or an iNatSounds split (``test``, ``val``)."""
    return list(data.xcdc) if split == "xcdc" else list(data.split(split))


def recording_weeks(recordings: Sequence[Any]) -> list[int]:
    """:func:`~geoforensics.eval.species_ranking.recording_week` of each recording."""
    return [recording_week(r.date, getattr(r, "month", None)) for r in recordings]


def true_species(
    data: BenchData, split: str, model: RangeModel, choice: RangeModelChoice
) -> MatchedLists:
    """Annotated species (test: the category; XCDC: ``all_scientific``), matched once a run."""

    def compute() -> MatchedLists:
        recordings = split_recordings(data, split)
        if split == "xcdc":
            names: list[Sequence[str]] = [r.all_scientific for r in recordings]
        else:
            names = [(r.species,) for r in recordings]
        return match_species_lists(names, model)

    lists: MatchedLists = data.memo(("species-true", split, file_sha(choice.file)), compute)
    return lists


def gallery_prior(data: BenchData) -> tuple[np.ndarray | None, str]:
    """The bench gallery's log prior and its description: on a single regular grid or land
    gallery (``land-1deg``) ``locate``'s area + recording-effort prior, else none (a gallery
    of recording places is already shaped by where people record)."""
    specs = data.gallery_specs
    if len(specs) != 1 or specs[0] in ("train", "val", "test", "train-neighbours"):
        return None, "uniform over gallery points"

    def compute() -> tuple[np.ndarray | None, str]:
        # The bench gallery holds the same points in its own order: keep its coordinates and
        # take the kind (regular grid or not) from the spec's gallery.
        kind = resolve_gallery(specs[0]).metadata
        gallery = Gallery(data.gallery.name, data.gallery.coords, dict(kind))
        log_prior, area, effort = effort_gallery_log_prior(gallery)
        if not area and effort is None:
            return None, "uniform over gallery points"
        parts = (["area"] if area else []) + ([f"effort:{effort}"] if effort else [])
        return log_prior, " + ".join(parts)

    found: tuple[np.ndarray | None, str] = data.memo(("species-gallery-prior", *specs), compute)
    return found


def annotated_queries(
    data: BenchData, split: str
) -> tuple[RangeModel, RangeModelChoice, list[SpeciesQuery]]:
    """The range model, its choice, and one query per recording of ``split`` from its
    annotated (test/val) or true (XCDC) species and its week."""
    choice = choose_range_model(data)
    model = bench_range_model(data, choice)
    weeks = recording_weeks(split_recordings(data, split))
    lists = true_species(data, split, model, choice)
    return model, choice, [SpeciesQuery.of(s, w) for s, w in zip(lists.species, weeks, strict=True)]


def birdnet_detections(data: BenchData, split: str) -> list[dict[str, SpeciesWeights]]:
    """BirdNET's species weights per recording and mode (one pass over the audio per run)."""

    def compute() -> list[dict[str, SpeciesWeights]]:
        audio = BirdNETAudio()
        out = []
        recordings = split_recordings(data, split)
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


# ---------------------------------------------------------------------- availability


def no_range_model(data: BenchData) -> str | None:
    """Why the species rows have no range model on ``data`` (None when they have one)."""
    return choose_range_model(data).reason


def no_xcdc_or_range_model(data: BenchData) -> str | None:
    """Why an XCDC species row cannot run: no XCDC data or no range model."""
    return no_xcdc(data) or no_range_model(data)


def no_birdnet_audio(data: BenchData, split: str) -> str | None:
    """Why the predicted-species rows cannot run on ``split``: no XCDC data, synthetic data,
    no BirdNET, or chorus audio missing."""
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


def species_inputs(data: BenchData, **settings: Any) -> dict[str, Any]:
    """The resume check's extra inputs: the range model's identity and the row's settings."""
    choice = choose_range_model(data)
    return {
        "range_model": choice.kind,
        "range_model_sha256": file_sha(choice.file),
        "ranking": DEFAULT_RANKING,
        "radius_km": RADIUS_KM,
        "likelihood": DEFAULT_LIKELIHOOD,
        "prior": gallery_prior(data)[1],
        **settings,
    }
