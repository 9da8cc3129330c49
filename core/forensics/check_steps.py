"""The steps of a check that each modality runs: audio (AG-CLIP), keyframes and text
(CLIP / GeoCLIP), the metadata GPS tag and the claimed place, and the helpers they share
(progress, one distribution's top places, the per-segment timeline).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.forensics.check_models import (
    NO_MODEL_REASON,
    CheckModels,
    CheckOptions,
    Progress,
)
from geoforensics.core.forensics.discrepancy import (
    CONSISTENT_RADIUS_KM,
    distances_from,
    great_circle_km,
    mass_in,
)
from geoforensics.core.forensics.places import (
    TOP_RADIUS_KM,
    place_labels,
    point_row,
    top_rows,
)
from geoforensics.core.forensics.results import ModalityResult, Segment
from geoforensics.core.geo.gazetteer import resolve_place
from geoforensics.core.geo.ranking import softmax
from geoforensics.core.media import extract_keyframes

if TYPE_CHECKING:
    from geoforensics.core.media import MediaInfo
    from geoforensics.core.models.audio_places import AudioPlaceOptions, AudioPlaces
    from geoforensics.core.models.recording_outputs import WindowOutputs


#: Container tags read as the text hint, in order (case-insensitive keys).
TEXT_TAGS: tuple[str, ...] = ("title", "description", "comment")


#: Thumbnail size of keyframes kept for the HTML report (longest side, pixels).
THUMBNAIL_SIDE = 200


def tell_progress(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(float(min(1.0, max(0.0, fraction))), message)


def audio_place_options(
    models: CheckModels, options: CheckOptions, **changes: Any
) -> AudioPlaceOptions:
    """The :class:`~geoforensics.core.models.audio_places.AudioPlaceOptions` of the check's
    AG-CLIP modalities: its top-k, the region radius, the model's temperature and fusion
    weight (``changes`` override, e.g. ``method="fused"``)."""

    from geoforensics.core.models.audio_places import AudioPlaceOptions

    settings: dict[str, Any] = {
        "method": "agclip",
        "top_k": options.top_k,
        "radius_km": TOP_RADIUS_KM,
        "fusion_weight": models.fusion_weight,
        "temperature": models.temperature,
    }
    settings.update(changes)
    return AudioPlaceOptions(**settings)


def check_audio_places(
    models: CheckModels,
    audio: WindowOutputs,
    options: AudioPlaceOptions,
    species_loglik: np.ndarray | None = None,
) -> AudioPlaces:
    """:func:`~geoforensics.core.models.audio_places.audio_places` with the check's model,
    gallery and index: the one path from audio to places."""

    from geoforensics.core.models.audio_places import audio_places

    if models.model is None or models.audio_index is None or models.gallery is None:
        raise InputError("no AG-CLIP model loaded")
    return audio_places(
        models.model, audio, models.gallery, models.audio_index, options, species_loglik
    )


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A small copy of a frame (longest side THUMBNAIL_SIDE) for the HTML report."""
    array = np.asarray(image)
    height, width = array.shape[:2]
    scale = THUMBNAIL_SIDE / max(height, width, 1)
    if scale >= 1.0:
        return array.astype(np.uint8, copy=True)
    from PIL import Image

    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(
        Image.fromarray(array.astype(np.uint8)).resize(size, Image.Resampling.BILINEAR)
    )


def text_hint(options: CheckOptions, tags: dict[str, Any]) -> tuple[str | None, str | None]:
    """(hint, where it came from): ``--text``, else the first non-empty container tag."""
    if options.text is not None and options.text.strip():
        return options.text.strip(), "--text"
    lowered = {str(k).lower(): v for k, v in (tags or {}).items()}
    for tag in TEXT_TAGS:
        value = lowered.get(tag)
        if value is not None and str(value).strip():
            return str(value).strip(), f"container tag '{tag}'"
    return None, None


def distribution_result(
    name: str,
    probs: np.ndarray,
    models: CheckModels,
    k: int,
    source: str | None,
    details: dict[str, Any],
) -> ModalityResult:
    rows = top_rows(probs, models.coords, models.region, k)
    point = (rows[0]["latitude"], rows[0]["longitude"])
    return ModalityResult(name, True, None, point, rows, probs, source, details)


#: Timeline segments whose region masses are computed together (one sparse product for
#: many distributions is several times faster than one per segment; 64 x 25,051 float64 is
#: 13 MB).
SEGMENT_BATCH = 64


def segment_tops(models: CheckModels, probs: np.ndarray) -> list[tuple[tuple[float, float], float]]:
    """Top place (the largest region mass) and that mass of each distribution of ``probs``
    (S, G), as the clip-level ranking picks its first place."""
    region = models.region(np.asarray(probs, dtype=np.float64).T)  # (G, S)
    best = np.argmax(region, axis=0)
    return [
        ((float(models.coords[i][0]), float(models.coords[i][1])), float(min(1.0, region[i, j])))
        for j, i in enumerate(best)
    ]


def audio_step(
    clip: Path,
    media: MediaInfo,
    models: CheckModels,
    options: CheckOptions,
    progress: Progress | None,
    clip_synthetic: bool,
) -> tuple[ModalityResult, list[Segment], WindowOutputs | None]:
    """AG-CLIP over every window: the ``audio`` modality, its timeline segments and the
    clip's window outputs (for fusion), all through
    :func:`~geoforensics.core.models.audio_places.audio_places` (the path ``locate --method
    agclip`` and the app take). Without a model the modality is unavailable; a model that
    does not know real sound is labelled and, unless the clip itself is SYNTHETIC, not
    counted as evidence."""
    if models.model is None:
        return ModalityResult("audio", False, NO_MODEL_REASON), [], None
    if not media.has_audio:
        return ModalityResult("audio", False, f"{clip.name}: no audio track"), [], None
    from geoforensics.core.models.audio_places import agclip_segment_probs
    from geoforensics.core.models.graph_agclip import model_window_outputs

    tell_progress(progress, 0.12, "audio: AG-CLIP over every 3 s window")
    windows = model_window_outputs(models.model, clip)
    located = check_audio_places(models, windows, audio_place_options(models, options))
    training = models.training
    warning = None if training is None else training.label()
    details = {
        "n_windows": located.n_windows,
        "window_s": float(windows.end_s[0] - windows.start_s[0]) if len(windows) else None,
        "pooling": f"{located.pooling} of window embeddings",
        "temperature": located.temperature,
        "prior": located.prior,
        "model_dir": str(models.model_dir),
        "training_data": None if training is None else training.as_dict(),
        "training_data_label": warning,
    }
    point = (located.top[0]["latitude"], located.top[0]["longitude"])
    result = ModalityResult(
        "audio", True, None, point, located.top, located.probs, f"audio track of {clip.name}",
        details,
    )  # fmt: skip
    if warning is not None:
        result.evidence = clip_synthetic
        result.evidence_note = (
            f"{warning} (counted: the clip itself is declared SYNTHETIC)"
            if clip_synthetic
            else warning
        )
    centres = (windows.start_s + windows.end_s) / 2.0
    slot = np.floor(centres / options.segment_s).astype(np.int64)
    segment_options = audio_place_options(models, options, top_k=1, place_names=False)
    groups = [np.flatnonzero(slot == value) for value in np.unique(slot)]
    segments: list[Segment] = []
    assert models.gallery is not None and models.audio_index is not None
    for begin in range(0, len(groups), SEGMENT_BATCH):
        chunk = groups[begin : begin + SEGMENT_BATCH]
        probs = agclip_segment_probs(
            models.model, windows, chunk, models.gallery, models.audio_index, segment_options
        )
        for rows, row, (point, probability) in zip(
            chunk, probs, segment_tops(models, probs), strict=True
        ):
            segments.append(
                Segment(
                    kind="audio",
                    index=len(segments),
                    start_s=float(windows.start_s[rows].min()),
                    end_s=float(windows.end_s[rows].max()),
                    point=point,
                    probability=probability,
                    n_windows=len(rows),
                    probs=row.astype(np.float32),  # 2 h: 720 of them (float64: 145 MB)
                )
            )
    return result, segments, windows


def frames_step(
    clip: Path,
    media: MediaInfo,
    models: CheckModels,
    options: CheckOptions,
    progress: Progress | None,
) -> tuple[ModalityResult, list[Segment]]:

    if not media.has_video:
        return ModalityResult("frames", False, f"{clip.name}: no video track"), []
    if options.max_frames == 0:
        return ModalityResult("frames", False, "--max-frames 0: frames not analysed"), []
    tell_progress(progress, 0.5, "frames: extracting keyframes")
    keyframes = extract_keyframes(
        clip, every_s=options.frame_every_s, max_frames=options.max_frames
    )
    if not keyframes:
        return ModalityResult("frames", False, f"{clip.name}: no frame could be decoded"), []
    segments = [
        Segment(
            kind="frame",
            index=i,
            start_s=float(k.time_s),
            end_s=float(k.time_s),
            image=thumbnail(k.image),
            label=None,
            reason=None,
        )
        for i, k in enumerate(keyframes)
    ]
    frame_info = [{"time_s": round(float(k.time_s), 3), "reason": str(k.reason)} for k in keyframes]
    encoder, why = models.clip()
    if encoder is None:
        for segment in segments:
            segment.available, segment.reason = False, "CLIP weights missing"
        return ModalityResult("frames", False, why, details={"keyframes": frame_info}), segments

    tell_progress(progress, 0.6, f"frames: CLIP + GeoCLIP on {len(keyframes)} keyframes")
    embeddings = encoder.embed_images([k.image for k in keyframes])
    from geoforensics.core.vision.geolocate import geolocate_embeddings  # torch

    log_probs = geolocate_embeddings(embeddings, models.geoclip_index())
    per_frame = softmax(np.asarray(log_probs, dtype=np.float64) + models.log_prior)
    tops = segment_tops(models, per_frame)
    for segment, probs, top in zip(segments, per_frame, tops, strict=True):
        segment.probs = probs
        segment.point, segment.probability = top
    probs = per_frame.mean(axis=0)
    details = {
        "keyframes": frame_info,
        "n_frames": len(keyframes),
        "pooling": "mean of per-frame distributions",
    }
    return distribution_result(
        "frames", probs, models, options.top_k, f"{len(keyframes)} keyframes", details
    ), segments


def text_step(
    media: MediaInfo, models: CheckModels, options: CheckOptions, progress: Progress | None
) -> ModalityResult:
    hint, source = text_hint(options, dict(media.tags or {}))
    if hint is None:
        return ModalityResult(
            "text",
            False,
            "no text hint: give --text or a clip with a title/description/comment tag",
        )
    details = {"hint": hint}
    encoder, why = models.clip()
    if encoder is None:
        return ModalityResult("text", False, why, source=source, details=details)

    tell_progress(progress, 0.75, "text: CLIP text encoder + GeoCLIP")
    embedding = encoder.embed_texts([hint])
    from geoforensics.core.vision.geolocate import geolocate_embeddings  # torch

    log_probs = geolocate_embeddings(embedding, models.geoclip_index())
    probs = softmax(np.asarray(log_probs, dtype=np.float64) + models.log_prior)[0]
    return distribution_result("text", probs, models, options.top_k, source, details)


def gps_step(media: MediaInfo) -> ModalityResult:
    gps = media.gps
    if gps is None:
        return ModalityResult("metadata_gps", False, "no GPS tag in the container")
    point = (float(gps[0]), float(gps[1]))
    return ModalityResult(
        "metadata_gps", True, None, point, [point_row(point)], None, "container location tag", {}
    )


def claimed_step(options: CheckOptions) -> ModalityResult:
    if options.claimed is None or not options.claimed.strip():
        return ModalityResult("claimed", False, "no claimed place (give --claimed PLACE|LAT,LON)")
    place = resolve_place(options.claimed, "--claimed")
    point = (float(place.latitude), float(place.longitude))
    label = None if place.kind == "coordinates" else place.label()
    return ModalityResult(
        "claimed",
        True,
        None,
        point,
        [point_row(point, label)],
        None,
        "--claimed",
        {"place": place.as_dict()},
    )


def fill_timeline(
    segments: list[Segment], modalities: dict[str, ModalityResult], coords: np.ndarray
) -> None:
    """Labels, distances and 750 km masses of every segment against the other modalities."""
    available = [s for s in segments if s.available and s.point is not None]
    labels = place_labels([s.point for s in available if s.point is not None])
    for segment, found in zip(available, labels, strict=True):
        segment.label = found["label"]
    near = {
        name: distances_from(coords, modality.point) <= CONSISTENT_RADIUS_KM
        for name, modality in modalities.items()
        if modality.available and modality.point is not None
    }  # once per modality, not per segment
    for segment in available:
        own = {"audio": "audio", "species": "audio_species"}.get(segment.kind, "frames")
        assert segment.point is not None
        for name, modality in modalities.items():
            if name == own or name not in near:
                continue
            assert modality.point is not None
            segment.distance_km[name] = great_circle_km(segment.point, modality.point)
            if segment.probs is not None:
                segment.mass_within_km[name] = mass_in(segment.probs, near[name])
