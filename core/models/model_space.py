"""The location space an AG-CLIP model retrieves in: GeoCLIP's, or the encoder it was trained on.

AG-CLIP learns to map audio onto a frozen location encoder's embeddings (GeoCLIP by default;
SINR or SatCLIP in the paper's Table 2 ablation). Retrieval must embed the gallery with that
same encoder, so a model trained against another encoder carries it in its model folder::

    MODEL/model.safetensors, model.json     the audio model (save_model)
    MODEL/location_encoder.safetensors      the frozen location encoder (save_location_encoder)
    MODEL/location_encoder.json             its config and checksum

and ``model.json`` records the encoder's name in ``config.extra["location_encoder"]``
(``"geoclip"``, ``"sinr"``, ``"satclip"``). GeoCLIP models store no encoder: the wheel's
weights and the on-disk GeoCLIP embedding cache serve them. A model without the key (older
exports, the released reference checkpoints) lives in GeoCLIP space. A GeoCLIP model trained
against another GeoCLIP weights file records it as ``extra["location_encoder_weights"]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.models.geolocator import ModelConfig, _read_config, model_files
from geoforensics.core.models.location import (
    LOCATION_ENCODERS,
    GeoCLIPEncoder,
    LocationEncoder,
    create_location_encoder,
    gallery_embeddings,
    load_location_encoder_file,
    save_location_encoder,
)
from geoforensics.core.models.model_files import location_encoder_name

if TYPE_CHECKING:
    from geoforensics.core.geo.gallery import Gallery
    from geoforensics.core.geoclip.retrieval import RetrievalIndex

#: File stem of a model's own location encoder inside its folder.
LOCATION_ENCODER_STEM = "location_encoder"
LOCATION_ENCODER_FILE = f"{LOCATION_ENCODER_STEM}.safetensors"


def _model_folder(model_dir: str | os.PathLike[str]) -> Path:
    """The folder holding a model's files (``model_dir`` may name model.safetensors/.json)."""
    weights, _config = model_files(model_dir)
    return weights.parent


def read_model_config(model_dir: str | os.PathLike[str]) -> ModelConfig:
    """The :class:`ModelConfig` of a saved model, without loading its weights."""
    weights, config = model_files(model_dir)
    if not config.is_file() and not weights.is_file():
        raise WeightsNotFoundError(f"{config}: model config not found")
    return _read_config(config, weights)


def location_encoder_path(model_dir: str | os.PathLike[str]) -> Path:
    """Where a model folder keeps its location encoder (``location_encoder.safetensors``)."""
    return _model_folder(model_dir) / LOCATION_ENCODER_FILE


def model_location_encoder_name(model_dir: str | os.PathLike[str]) -> str:
    """``extra["location_encoder"]`` of a saved model (``"geoclip"`` when absent)."""
    return location_encoder_name(read_model_config(model_dir).extra)


def save_model_location_encoder(
    model_dir: str | os.PathLike[str], encoder: LocationEncoder, info: dict[str, Any] | None = None
) -> Path:
    """Write ``encoder`` into a model folder (see the module docstring); returns the weights
    path. GeoCLIP encoders are never saved (the wheel ships them)."""
    if isinstance(encoder, GeoCLIPEncoder):
        raise InputError("GeoCLIP models keep no location encoder file (the wheel ships it)")
    folder = _model_folder(model_dir)
    details = dict(encoder.pretrain_info)
    details.update(info or {})
    return save_location_encoder(encoder, folder / LOCATION_ENCODER_STEM, details)


def model_location_encoder(model_dir: str | os.PathLike[str]) -> LocationEncoder | None:
    """The frozen location encoder a saved AG-CLIP model was trained against; ``None`` means
    GeoCLIP with the wheel's weights (use the cached GeoCLIP gallery embeddings).

    An InputError names the missing file when ``model.json`` says ``sinr``/``satclip`` but the
    folder lacks ``location_encoder.safetensors`` (or its JSON), and when the saved encoder is
    not the one the config names.
    """
    config = read_model_config(model_dir)
    name = location_encoder_name(config.extra)
    if name == "geoclip":
        weights = config.extra.get("location_encoder_weights")
        if weights is None:
            return None
        if not Path(str(weights)).is_file():
            raise InputError(
                f"{model_files(model_dir)[1]}: trained against the GeoCLIP weights {weights}, "
                "which do not exist any more"
            )
        return create_location_encoder("geoclip", checkpoint=str(weights))
    if name not in LOCATION_ENCODERS:
        raise InputError(
            f"{model_files(model_dir)[1]}: location encoder {name!r} was not saved with the "
            f"model (only {', '.join(LOCATION_ENCODERS)} are); retrain with model.location_encoder"
        )
    file = location_encoder_path(model_dir)
    if not file.is_file() or not file.with_suffix(".json").is_file():
        raise InputError(
            f"{file}: missing - this model was trained against the {name} location encoder "
            "and retrieval needs that encoder (copy the whole model folder, or retrain)"
        )
    try:
        encoder = load_location_encoder_file(file)
    except WeightsNotFoundError as exc:
        raise InputError(str(exc)) from exc
    if encoder.name != name:
        raise InputError(f"{file}: holds a {encoder.name!r} encoder, but the model says {name!r}")
    if encoder.embed_dim != config.embed_dim:
        raise InputError(
            f"{file}: {encoder.embed_dim}-d location embeddings, but the model outputs "
            f"{config.embed_dim}-d"
        )
    return encoder


def retrieval_index_for_model(
    model_dir: str | os.PathLike[str], gallery_coords: Gallery | ArrayLike
) -> RetrievalIndex:
    """A faiss index over ``gallery_coords`` embedded in the model's own location space:
    GeoCLIP's (cached on disk) or the saved encoder's (:func:`gallery_embeddings`, cached by
    the encoder's weights)."""

    coords = getattr(gallery_coords, "coords", gallery_coords)
    points = np.asarray(coords, dtype=np.float64)
    encoder = model_location_encoder(model_dir)
    if encoder is None:
        embeddings = cached_gallery_embeddings(points, progress=False)
    else:
        embeddings = gallery_embeddings(encoder, points)
    return RetrievalIndex(points, embeddings)
