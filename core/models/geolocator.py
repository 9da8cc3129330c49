"""The audio geolocator: a registered encoder plus one MLP head, for every method of the paper.

Method kinds (:attr:`ModelConfig.kind`) and what :meth:`AudioGeolocator.forward` returns:

``"agclip"``
    One head of ``n_species + embed_dim`` outputs, checklist logits first and the GeoCLIP-space
    embedding last (the released checkpoints' layout): ``species_logits`` (B, n_species) and
    ``embedding`` (B, embed_dim), not normalised (losses and retrieval normalise it).
``"regression"``
    ``latlon_norm`` (B, 2): the raw head output, meant as (lat / 90, lon / 180) and used by the
    losses; ``latlon`` (B, 2) in degrees, latitude clamped to [-90, 90] and longitude wrapped
    into [-180, 180).
``"classification"``
    ``logits`` (B, C) over every H3 cell at ``h3_resolution`` (C = 122 / 842 / 5,882 for
    resolutions 0 / 1 / 2, in :func:`geoforensics.core.geo.h3cells.cells` order).

Models are saved as ``model.safetensors`` (weights) and ``model.json`` (the config, with the
full front-end config so that inference rebuilds exactly the training inputs);
:func:`load_model` reads safetensors only, never a pickle.

With a frozen ``waveform-features`` encoder (``birdnet``; see :mod:`.encoders`) the model's
inputs are the encoder's precomputed (B, feature_dim) features: the encoder module is the
identity, only the head has parameters (and is saved), and
:meth:`AudioGeolocator.features_from_waveforms` computes the features of raw waveform windows
(inference does this for you).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from geoforensics.core.audio.frontend import FrontEndConfig
from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.fileio import atomic_path, atomic_write
from geoforensics.core.geo.h3cells import CLASSIFIER_RESOLUTIONS, num_cells
from geoforensics.core.models.encoders import (
    check_state_dict,
    create_encoder,
    error_summary,
    frontend_for,
    get_encoder_config,
)
from geoforensics.core.models.heads import MLPHead
from geoforensics.core.models.model_files import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    model_files,
)

if TYPE_CHECKING:
    from geoforensics.core.audio.frontend import FrontEndConfig

#: Method kinds a model can be built for.
KINDS: tuple[str, ...] = ("agclip", "regression", "classification")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an :class:`AudioGeolocator` (saved as JSON beside it).

    ``frontend`` is a :meth:`FrontEndConfig.to_dict` dictionary; ``None`` fills in the
    encoder's preset at its image size (:func:`~.encoders.frontend_for`). ``h3_resolution``
    matters only for ``"classification"``. ``extra`` holds free-form JSON-serialisable
    settings (training recipe, pooling, ...) that travel with the model.
    """

    kind: str
    encoder: str
    n_species: int = 0
    embed_dim: int = 512
    h3_resolution: int = 1
    frontend: dict[str, Any] | None = None
    hidden: int = 128
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"model kind {self.kind!r}: choose one of {', '.join(KINDS)}")
        encoder = get_encoder_config(self.encoder)
        if self.n_species < 0 or self.embed_dim <= 0 or self.hidden < 0:
            raise InputError(
                f"model config: need n_species >= 0, embed_dim > 0, hidden >= 0 (got "
                f"{self.n_species}, {self.embed_dim}, {self.hidden})"
            )
        if self.kind == "classification":
            if self.h3_resolution not in CLASSIFIER_RESOLUTIONS:
                raise InputError(
                    f"classification: H3 resolution {self.h3_resolution} must be one of "
                    f"{CLASSIFIER_RESOLUTIONS}"
                )
        if self.frontend is None:
            object.__setattr__(self, "frontend", frontend_for(encoder).to_dict())
        frontend = self.frontend_config  # validates
        if encoder.frozen_features and frontend.sample_rate != encoder.sample_rate:
            raise InputError(
                f"model config: encoder {self.encoder!r} reads {encoder.sample_rate} Hz audio, "
                f"the front-end {frontend.sample_rate} Hz"
            )
        if frontend.channels != encoder.in_channels:
            raise InputError(
                f"model config: front-end gives {frontend.channels} channels, encoder "
                f"{self.encoder!r} takes {encoder.in_channels}"
            )
        object.__setattr__(self, "frontend", frontend.to_dict())
        object.__setattr__(self, "extra", dict(self.extra))

    @property
    def frontend_config(self) -> FrontEndConfig:
        """The front-end as a :class:`FrontEndConfig`."""

        assert self.frontend is not None
        return FrontEndConfig.from_dict(self.frontend)

    @property
    def output_dim(self) -> int:
        """Width of the head's output."""
        if self.kind == "agclip":
            return self.n_species + self.embed_dim
        if self.kind == "regression":
            return 2

        return num_cells(self.h3_resolution)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dictionary (round-trips through :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Rebuild a config from :meth:`to_dict`; unknown or missing keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"model config: unknown keys {unknown}")
        missing = sorted({"kind", "encoder"} - set(data))
        if missing:
            raise InputError(f"model config: missing keys {missing}")
        return cls(**dict(data))


def normalize_latlon(coords: torch.Tensor) -> torch.Tensor:
    """(..., 2) degrees -> (lat / 90, lon / 180): the regression head's target space."""
    scale = torch.tensor([90.0, 180.0], dtype=coords.dtype, device=coords.device)
    return coords / scale


def denormalize_latlon(normalized: torch.Tensor) -> torch.Tensor:
    """(..., 2) normalised -> degrees; latitude clamped to [-90, 90], longitude wrapped into
    [-180, 180) (both keep gradients inside the valid range)."""
    lat = (normalized[..., 0] * 90.0).clamp(-90.0, 90.0)
    lon = torch.remainder(normalized[..., 1] * 180.0 + 180.0, 360.0) - 180.0
    return torch.stack([lat, lon], dim=-1)


class AudioGeolocator(nn.Module):
    """Encoder (from the registry) + :class:`MLPHead`; outputs depend on ``config.kind``."""

    def __init__(
        self, config: ModelConfig, encoder_weights: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.encoder = create_encoder(config.encoder, weights=encoder_weights)
        feature_dim = get_encoder_config(config.encoder).feature_dim
        self.head = MLPHead(feature_dim, config.output_dim, hidden=config.hidden)

    @property
    def kind(self) -> str:
        """The method kind (``agclip``, ``regression`` or ``classification``)."""
        return self.config.kind

    @property
    def frontend_config(self) -> FrontEndConfig:
        """The front-end that makes this model's inputs (for a waveform-features encoder: the
        window grid and sample rate its features are computed on)."""
        return self.config.frontend_config

    @property
    def frozen_features(self) -> bool:
        """Whether the encoder's features are precomputed outside torch (``waveform-features``
        input kind): the model's inputs are then (B, feature_dim) features."""
        return get_encoder_config(self.config.encoder).frozen_features

    def features_from_waveforms(self, windows: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(B, window_samples) raw waveform windows -> (B, feature_dim) model inputs on the
        model's device, computed by the frozen encoder's extractor (waveform-features only)."""
        from geoforensics.core.models.encoders import waveform_features

        if not self.frozen_features:
            raise InputError(
                f"encoder {self.config.encoder!r} takes spectrogram images, not waveform windows"
            )
        features = waveform_features(self.config.encoder, windows)
        device = next(self.head.parameters()).device
        return torch.from_numpy(features).to(device)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) model inputs -> (B, feature_dim) encoder features (for a
        waveform-features encoder the inputs already are the (B, feature_dim) features)."""
        return self.encoder(images)

    def outputs_from_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Apply the head to encoder features and split its output by method kind."""
        return self.split_outputs(self.head(features))

    def split_outputs(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a raw (B, output_dim) head output into the named outputs of this kind (also
        used for poolers that predict the head's output directly)."""
        if out.shape[-1] != self.config.output_dim:
            raise InputError(
                f"{self.config.kind} model: output width {out.shape[-1]}, expected "
                f"{self.config.output_dim}"
            )
        if self.config.kind == "agclip":
            n = self.config.n_species
            return {"species_logits": out[..., :n], "embedding": out[..., n:]}
        if self.config.kind == "regression":
            return {"latlon_norm": out, "latlon": denormalize_latlon(out)}
        return {"logits": out}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, C, H, W) model inputs -> dictionary of outputs (see the module docstring)."""
        return self.outputs_from_features(self.features(images))


def save_model(model: AudioGeolocator, path: str | os.PathLike[str]) -> Path:
    """Write the model's weights (safetensors) and config (JSON) atomically; returns the
    weights path. ``path`` is a folder or a ``.safetensors``/``.json`` file name."""
    from safetensors.torch import save_file

    weights_path, config_path = model_files(path)
    document = {
        "format": MODEL_FORMAT,
        "version": MODEL_FORMAT_VERSION,
        "config": model.config.to_dict(),
    }
    text = json.dumps(document, indent=2, sort_keys=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights_path) as tmp:
        save_file(tensors, str(tmp), metadata={"geoforensics_model": text})
    with atomic_write(config_path) as fh:
        fh.write(text + "\n")
    return weights_path


def _read_config(config_path: Path, weights_path: Path) -> ModelConfig:
    if config_path.is_file():
        source, text = config_path, config_path.read_text(encoding="utf-8")
    else:  # fall back to the copy inside the safetensors metadata
        from safetensors import safe_open

        try:
            with safe_open(str(weights_path), framework="pt") as handle:
                meta = handle.metadata() or {}
        except Exception as error:
            raise InputError(
                f"{weights_path}: not a safetensors file ({error_summary(error)})"
            ) from None
        if "geoforensics_model" not in meta:
            raise WeightsNotFoundError(f"{config_path}: model config not found")
        source, text = weights_path, meta["geoforensics_model"]
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{source}: invalid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(document, dict) or document.get("format") != MODEL_FORMAT:
        raise InputError(f"{source}: not a geoforensics model config (format {MODEL_FORMAT!r})")
    if not isinstance(document.get("config"), dict):
        raise InputError(f"{source}: 'config' must be an object")
    try:
        return ModelConfig.from_dict(document["config"])
    except (InputError, TypeError) as error:
        raise InputError(f"{source}: {error}") from None


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> AudioGeolocator:
    """Rebuild a model saved by :func:`save_model` (safetensors only), in eval mode."""
    from safetensors.torch import load_file

    weights_path, config_path = model_files(path)
    if not weights_path.is_file():
        raise WeightsNotFoundError(f"{weights_path}: model weights not found")
    config = _read_config(config_path, weights_path)
    try:
        state = load_file(str(weights_path), device=str(map_location))
    except Exception as error:
        raise InputError(
            f"{weights_path}: not a readable safetensors file ({error_summary(error)})"
        ) from None
    model = AudioGeolocator(config)
    check_state_dict(model, state, weights_path)
    model.load_state_dict(state, strict=True)
    return model.to(map_location).eval()
