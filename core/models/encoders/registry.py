"""The audio encoder registry (timm / open_clip style): names -> configs and factories.

Each encoder module registers its encoders with :func:`register_encoder` (an
:class:`EncoderConfig` and a factory) and, for a frozen ``waveform-features`` encoder, its
feature extractor with :func:`register_feature_extractor`. This module imports no encoder:
:mod:`geoforensics.core.models` imports every encoder module, so all entries exist whenever
the registry is used. :func:`create_encoder` builds one, optionally initialised from a user's
weights file, and attaches its config as ``module.config``.

Input kinds (:attr:`EncoderConfig.input_kind`):

``"spectrogram"`` (default)
    The module maps front-end images (B, C, H, W) to features; it is trained with the head.
``"waveform-features"``
    A frozen encoder whose features are computed *outside* torch from raw waveform windows by
    a registered :class:`WaveformFeatureExtractor` (:func:`register_feature_extractor`,
    :func:`feature_extractor`). Its ``nn.Module`` side is :class:`PrecomputedFeatures`, the
    identity on (B, feature_dim) precomputed features, with no parameters, so a model built on
    it trains its head only. Windows are the paper's (3 s, stride 1.5 s, placed by
    :func:`geoforensics.core.audio.windows.window_starts`), decoded straight at the extractor's
    sample rate: :func:`frontend_for` gives a front-end config whose ``sample_rate`` and
    window fields describe that window grid (its mel fields are unused) and
    :func:`~geoforensics.core.models.encoders.waveform.iter_waveform_windows` cuts a file into
    those windows.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from geoforensics.core.audio.frontend import FrontEndConfig, get_frontend_config
from geoforensics.core.errors import InputError
from geoforensics.core.models.encoders.weights import load_encoder_weights

#: What an encoder's module takes (see the module docstring).
INPUT_KINDS: tuple[str, ...] = ("spectrogram", "waveform-features")


@dataclass(frozen=True)
class EncoderConfig:
    """What a registered encoder takes and gives: square ``image_size`` inputs with
    ``in_channels`` channels made by the ``frontend`` preset, ``feature_dim`` features out.

    ``input_kind="waveform-features"`` marks a frozen encoder whose features a registered
    extractor computes from waveform windows at ``sample_rate`` Hz (the ``frontend`` preset
    then only gives the window length and stride; ``image_size``/``in_channels`` are 1).
    """

    name: str
    feature_dim: int
    image_size: int
    in_channels: int = 3
    frontend: str = "paper"
    description: str = ""
    input_kind: str = "spectrogram"
    sample_rate: int | None = None

    def __post_init__(self) -> None:
        if self.feature_dim <= 0 or self.image_size <= 0 or self.in_channels <= 0:
            raise InputError(
                f"encoder {self.name!r}: feature_dim, image_size and in_channels must be positive"
            )
        if self.input_kind not in INPUT_KINDS:
            raise InputError(
                f"encoder {self.name!r}: input_kind {self.input_kind!r} must be one of "
                f"{', '.join(INPUT_KINDS)}"
            )
        if self.input_kind == "waveform-features" and not (self.sample_rate or 0) > 0:
            raise InputError(
                f"encoder {self.name!r}: a waveform-features encoder needs sample_rate"
            )

    @property
    def frozen_features(self) -> bool:
        """Whether features are precomputed outside torch (``waveform-features``)."""
        return self.input_kind == "waveform-features"


EncoderFactory = Callable[[EncoderConfig], nn.Module]
_REGISTRY: dict[str, tuple[EncoderConfig, EncoderFactory]] = {}


def register_encoder(
    name: str, config: EncoderConfig
) -> Callable[[EncoderFactory], EncoderFactory]:
    """Decorator registering ``factory(config) -> nn.Module`` under ``name``.

    The module's ``forward`` must map (B, in_channels, H, W) to (B, feature_dim).
    Registering a name twice is an error (it would silently change saved models' meaning).
    """
    if config.name != name:
        raise InputError(f"encoder {name!r}: its config is named {config.name!r}")

    def decorator(factory: EncoderFactory) -> EncoderFactory:
        if name in _REGISTRY:
            raise InputError(f"encoder {name!r} is already registered")
        _REGISTRY[name] = (config, factory)
        return factory

    return decorator


#: The modules that register the built-in encoders (imported on the first registry lookup,
#: so that importing :mod:`geoforensics.core.models` itself loads no model code).
BUILTIN_ENCODER_MODULES = (
    "geoforensics.core.models.encoders.spectrogram",
    "geoforensics.core.models.encoders.birdnet",
    "geoforensics.core.models.clap",
    "geoforensics.core.models.wav2clip",
)
_BUILTINS_LOADED = threading.Event()


def _load_builtin_encoders() -> None:
    """Import the built-in encoder modules once (each registers its encoders)."""
    if _BUILTINS_LOADED.is_set():
        return
    import importlib

    for module in BUILTIN_ENCODER_MODULES:
        importlib.import_module(module)
    _BUILTINS_LOADED.set()


def list_encoders() -> list[str]:
    """Names of all registered encoders, sorted."""
    _load_builtin_encoders()
    return sorted(_REGISTRY)


def get_encoder_config(name: str) -> EncoderConfig:
    """The :class:`EncoderConfig` registered under ``name``."""
    if name not in _REGISTRY:
        _load_builtin_encoders()
    try:
        return _REGISTRY[name][0]
    except KeyError:
        raise InputError(
            f"unknown encoder {name!r}; choose one of {', '.join(list_encoders())}"
        ) from None


def frontend_for(config: EncoderConfig | str) -> FrontEndConfig:
    """The encoder's front-end preset with the image size set to the encoder's input size.

    For a ``waveform-features`` encoder the preset's windows are kept and the sample rate is
    the extractor's (name ``<preset>-waveform-<rate>``): the config then describes the window
    grid the features are computed on.
    """
    cfg = get_encoder_config(config) if isinstance(config, str) else config
    preset = get_frontend_config(cfg.frontend)
    if cfg.frozen_features:
        assert cfg.sample_rate is not None
        return dataclasses.replace(
            preset,
            name=f"{preset.name}-waveform-{cfg.sample_rate}",
            sample_rate=cfg.sample_rate,
            f_max=min(preset.f_max, cfg.sample_rate / 2),
            image_height=cfg.image_size,
            image_width=cfg.image_size,
            channels=cfg.in_channels,
        )
    return dataclasses.replace(
        preset,
        image_height=cfg.image_size,
        image_width=cfg.image_size,
        channels=cfg.in_channels,
    )


def create_encoder(name: str, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """Build the encoder ``name`` (random init), optionally loading ``weights`` from a file.

    The returned module carries ``.config`` (its :class:`EncoderConfig`). See
    :func:`load_encoder_weights` for the accepted weights files.
    """
    config = get_encoder_config(name)
    factory = _REGISTRY[name][1]
    module = factory(config)
    object.__setattr__(module, "config", config)  # plain attribute, not a submodule
    if weights is not None:
        load_encoder_weights(module, weights)
    return module


class WaveformFeatureExtractor(Protocol):
    """A frozen feature model run outside torch on raw waveform windows.

    ``window_samples`` is its input length, ``identity`` a string that changes whenever its
    outputs could (e.g. a checksum of its model file; part of cache keys); calling it maps
    (B, window_samples) float32 windows to (B, feature_dim) float32 features.
    """

    @property
    def window_samples(self) -> int: ...

    @property
    def identity(self) -> str: ...

    def __call__(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class _ExtractorEntry:
    identity: Callable[[], str]
    factory: Callable[[int], WaveformFeatureExtractor]


_EXTRACTORS: dict[str, _ExtractorEntry] = {}
_LOADED: dict[tuple[str, int], WaveformFeatureExtractor] = {}
_LOADED_LOCK = threading.Lock()


def register_feature_extractor(
    name: str, identity: Callable[[], str]
) -> Callable[
    [Callable[[int], WaveformFeatureExtractor]], Callable[[int], WaveformFeatureExtractor]
]:
    """Decorator registering ``factory(num_threads) -> extractor`` for the waveform-features
    encoder ``name``. ``identity()`` must be cheap (no model load) and raise a one-line
    :class:`WeightsNotFoundError` saying how to install the model when it is missing."""

    def decorator(
        factory: Callable[[int], WaveformFeatureExtractor],
    ) -> Callable[[int], WaveformFeatureExtractor]:
        if name in _EXTRACTORS:
            raise InputError(f"feature extractor {name!r} is already registered")
        _EXTRACTORS[name] = _ExtractorEntry(identity, factory)
        return factory

    return decorator


def _extractor_entry(name: str) -> _ExtractorEntry:
    config = get_encoder_config(name)
    if not config.frozen_features or name not in _EXTRACTORS:
        raise InputError(f"encoder {name!r} computes its features in torch (no extractor)")
    return _EXTRACTORS[name]


def feature_extractor_identity(name: str) -> str:
    """Identity of encoder ``name``'s extractor (its model checksum), without loading it;
    raises the extractor's install message when its model is not installed."""
    return _extractor_entry(name).identity()


def require_encoder(name: str) -> EncoderConfig:
    """The config of encoder ``name``, after checking that everything it needs is installed
    (a ``waveform-features`` encoder's model: a one-line install message otherwise)."""
    config = get_encoder_config(name)
    if config.frozen_features:
        feature_extractor_identity(name)
    return config


def feature_extractor(name: str, num_threads: int | None = None) -> WaveformFeatureExtractor:
    """The loaded extractor of the waveform-features encoder ``name`` (one per process and
    thread count; ``num_threads`` defaults to ``torch.get_num_threads()``)."""
    entry = _extractor_entry(name)
    entry.identity()  # the install message before any heavier import
    threads = max(1, int(num_threads if num_threads is not None else torch.get_num_threads()))
    with _LOADED_LOCK:
        extractor = _LOADED.get((name, threads))
        if extractor is None:
            extractor = entry.factory(threads)
            _LOADED[(name, threads)] = extractor
    return extractor


def waveform_features(
    name: str, windows: np.ndarray | torch.Tensor, num_threads: int | None = None
) -> np.ndarray:
    """(B, window_samples) waveform windows -> (B, feature_dim) float32 features of the
    waveform-features encoder ``name``."""
    config = get_encoder_config(name)
    extractor = feature_extractor(name, num_threads)
    if isinstance(windows, torch.Tensor):
        windows = windows.detach().cpu().numpy()
    batch = np.ascontiguousarray(windows, dtype=np.float32)
    if batch.ndim != 2 or batch.shape[1] != extractor.window_samples:
        raise InputError(
            f"encoder {name!r}: expected (B, {extractor.window_samples}) waveform windows, got "
            f"{batch.shape}"
        )
    if batch.shape[0] == 0:
        return np.zeros((0, config.feature_dim), dtype=np.float32)
    features = np.asarray(extractor(batch), dtype=np.float32)
    if features.shape != (batch.shape[0], config.feature_dim):
        raise InputError(
            f"encoder {name!r}: extractor gave features of shape {features.shape}, expected "
            f"{(batch.shape[0], config.feature_dim)}"
        )
    return features


class PrecomputedFeatures(nn.Module):
    """The ``nn.Module`` side of a waveform-features encoder: the identity on (B, feature_dim)
    features computed outside torch. It has no parameters (and no buffers), so the encoder
    stays frozen and a model built on it trains and saves its head only."""

    config: EncoderConfig

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.feature_dim = int(feature_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise InputError(
                f"precomputed features must be (B, {self.feature_dim}), got "
                f"{tuple(features.shape)} (waveform windows go through the feature extractor "
                "first)"
            )
        return features
