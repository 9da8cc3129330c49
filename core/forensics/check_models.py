"""What a check runs with: its options and its models, loaded once per process.

:class:`CheckOptions` holds every option of ``geoforensics check`` (the CLI, the app, folder
workers and perf build it); :class:`CheckModels` the models a check needs (the AG-CLIP model
and its gallery index in its own location space, GeoCLIP's index for frames and text, CLIP,
BirdNET and its range model), each loaded on first use; :func:`shared_check_models` keeps one
set per process for the app, batch workers and Ray tasks.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_file_memo
from geoforensics.core.forensics.check_options import (
    DEMO_MODEL,
    NO_MODEL_REASON,
    CheckOptions,
    Progress,
    default_model_dir,
)
from geoforensics.core.forensics.places import (
    TOP_RADIUS_KM,
    RegionMass,
)
from geoforensics.core.geo.gallery import (
    gallery_log_prior,
    gallery_prior_name,
    resolve_gallery,
)
from geoforensics.core.geoclip.embedding_cache import cached_embeddings_if_any
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.models.graph_agclip import GraphAGCLIP, open_graph_agclip, record_graph
from geoforensics.core.models.model_files import existing_weights
from geoforensics.core.models.provenance import model_training_data
from geoforensics.core.species.birdnet_audio import BirdNETAudio
from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available
from geoforensics.core.species.fusion import agclip_temperature, fusion_weight_for_model
from geoforensics.core.species.ranges import BirdNETRangeModel
from geoforensics.core.vision.weights import find_clip_weights

if TYPE_CHECKING:
    from geoforensics.core.geo.gallery import Gallery
    from geoforensics.core.models.geolocator import AudioGeolocator
    from geoforensics.core.models.provenance import TrainingData


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
    model: AudioGeolocator | GraphAGCLIP | None
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
                from geoforensics.core.vision import load_geo_image_text_encoder  # torch

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
                from geoforensics.core.geoclip.embeddings import geoclip_gallery_index  # torch

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
                    self._birdnet = BirdNETAudio(num_threads=cpu_share())
                    self._range_model = BirdNETRangeModel(num_threads=1)
                except WeightsNotFoundError as exc:
                    self._species_reason = str(exc)
        return self._birdnet, self._range_model, self._species_reason


def cpu_share() -> int:
    """This process's share of the cores: ``OMP_NUM_THREADS`` when set (a batch worker's,
    or Ray's one per task), else every core."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


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
    """:func:`load_check_models` with a model folder: its exported graph without torch when
    it can (:func:`~geoforensics.core.models.graph_agclip.open_graph_agclip` and the
    gallery's cached GeoCLIP embeddings), else the torch model (which records its graph for
    the next check)."""
    model_dir = options.resolved_model_dir()
    weights = existing_weights(model_dir)
    gallery = resolve_gallery(options.gallery)
    model, config, index, location_encoder = load_agclip(model_dir, gallery)
    log_prior = gallery_log_prior(gallery)
    training = model_training_data(model_dir)
    fusion_weight = fusion_weight_for_model(model_dir)
    extra = config.get("extra") or {}
    info = {
        "name": "AG-CLIP",
        "used": True,
        "training_data": training.as_dict(),
        "training_data_label": training.label(),
        "knows_real_sound": training.knows_real_sound,
        "fusion_weight": fusion_weight,
        "model_dir": str(model_dir),
        "weights_sha256": sha256_file_memo(weights),  # read once with the graph record's key
        "encoder": config.get("encoder"),
        "kind": config.get("kind"),
        "n_species": config.get("n_species"),
        "embed_dim": config.get("embed_dim"),
        "frontend": (config.get("frontend") or {}).get("name"),
        "location_encoder": location_encoder,
        "method": extra.get("method"),
        "best_epoch": extra.get("best_epoch"),
        "val_metrics": extra.get("val_metrics"),
        "pooling": "mean",
        "prior": gallery_prior_name(gallery),
        "runtime": _runtime_name(model),
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
        location_encoder=location_encoder,
        log_prior=log_prior,
        gallery=gallery,
        training=training,
        fusion_weight=fusion_weight,
        clip_weights=options.clip_weights,
        species_enabled=bool(options.species),
        info=info,
    )


def load_agclip(
    model_dir: Path, gallery: Gallery
) -> tuple[AudioGeolocator | GraphAGCLIP, dict[str, Any], RetrievalIndex, str]:
    """(model, its config as a dict, the gallery's index in the model's location space, that
    space's name): the model's recorded graph without torch when it can serve the model and
    the gallery's GeoCLIP embeddings are cached, else the torch model (which records its
    graph for next time). ``check`` and ``locate --method agclip|fused`` load models here."""
    graph = open_graph_agclip(model_dir)
    embeddings = None if graph is None else cached_embeddings_if_any(gallery.coords)
    if graph is not None and embeddings is not None:
        index = RetrievalIndex(np.asarray(gallery.coords, dtype=np.float64), embeddings)
        return graph, dict(graph.config), index, "geoclip"
    return _load_torch_agclip(model_dir, gallery)


def _runtime_name(model: AudioGeolocator | GraphAGCLIP) -> str:
    """What runs the model, for the report: the graph runtime (and whether torch is loaded)."""
    if isinstance(model, GraphAGCLIP):
        return f"{model.runner.name} (exported graph, without torch)"
    from geoforensics.core.models.onnx_backend import onnx_runner

    runner = onnx_runner(model)
    return "torch" if runner is None else f"{runner.name} (graph of the torch model)"


def _load_torch_agclip(
    model_dir: Path, gallery: Gallery
) -> tuple[AudioGeolocator, dict[str, Any], RetrievalIndex, str]:
    """(model, its config as a dict, the gallery's index in its location space, that space's
    name) loaded with torch; when the model runs as an exported graph, the graph is recorded
    so that the next check of this model needs no torch."""
    # these load torch: imported only when a check runs a model that has no usable graph yet
    from geoforensics.core.models import load_model
    from geoforensics.core.models.model_space import (
        model_location_encoder_name,
        retrieval_index_for_model,
    )
    from geoforensics.core.models.onnx_backend import exported_graph, onnx_applicable

    model = load_model(model_dir)
    if model.kind != "agclip":
        raise InputError(f"{model_dir}: a {model.kind} model; check needs an AG-CLIP model")
    index = retrieval_index_for_model(model_dir, gallery)
    if onnx_applicable(model):
        try:
            record_graph(model_dir, exported_graph(model))
        except Exception as error:  # the torch path still runs the model
            warnings.warn(
                f"{model_dir}: could not record its exported graph ({type(error).__name__}: "
                f"{error}); checks of this model will load torch",
                RuntimeWarning,
                stacklevel=3,
            )
    return model, model.config.to_dict(), index, model_location_encoder_name(model_dir)


def prepare_model_graph(model_dir: str | os.PathLike[str], gallery_name: str = "land-1deg") -> str:
    """Load the AG-CLIP model in ``model_dir`` once with torch so that later checks run its
    exported graph without torch (``weights prepare model``): the graph is exported and
    recorded and the gallery's embeddings are cached. Returns one line saying which path
    checks of this model will take."""
    folder = Path(model_dir)
    existing_weights(folder)
    gallery = resolve_gallery(gallery_name)
    _load_torch_agclip(folder, gallery)
    graph = open_graph_agclip(folder)
    if graph is None:
        return (
            f"{folder}: checks of this model load it in torch (no exported-graph path for its "
            "encoder or location space, no graph runtime, or GEOFORENSICS_INFERENCE_BACKEND="
            "torch)"
        )
    if cached_embeddings_if_any(gallery.coords) is None:
        return f"{folder}: graph recorded, but gallery {gallery.name}'s embeddings are not cached"
    return (
        f"{folder}: exported graph recorded ({graph.graph.name}); checks over gallery "
        f"{gallery.name} run it in {graph.runner.name} without torch"
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


__all__ = [
    "DEMO_MODEL",
    "NO_MODEL_REASON",
    "CheckModels",
    "CheckOptions",
    "Progress",
    "cpu_share",
    "default_model_dir",
    "load_agclip",
    "load_check_models",
    "prepare_model_graph",
    "shared_check_models",
]
