"""Audio encoder registry (timm / open_clip style): spectrogram images -> feature vectors.

Each encoder is registered under a name with an :class:`EncoderConfig` (feature size, input
image size, front-end preset) and a factory. :func:`create_encoder` builds one, optionally
initialised from a user's weights file, and attaches its config as ``module.config``.

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

Weights files are read with :func:`read_state_dict` (safetensors, or ``torch.load`` with
``weights_only=True``; never arbitrary pickles).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import InputError, WeightsNotFoundError

if TYPE_CHECKING:
    from ..audio.frontend import FrontEndConfig


@dataclass(frozen=True)
class EncoderConfig:
    """What a registered encoder takes and gives: square ``image_size`` inputs with
    ``in_channels`` channels made by the ``frontend`` preset, ``feature_dim`` features out."""

    name: str
    feature_dim: int
    image_size: int
    in_channels: int = 3
    frontend: str = "paper"
    description: str = ""

    def __post_init__(self) -> None:
        if self.feature_dim <= 0 or self.image_size <= 0 or self.in_channels <= 0:
            raise InputError(
                f"encoder {self.name!r}: feature_dim, image_size and in_channels must be positive"
            )


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
    """The encoder's front-end preset with the image size set to the encoder's input size."""
    from ..audio.frontend import get_frontend_config

    cfg = get_encoder_config(config) if isinstance(config, str) else config
    preset = get_frontend_config(cfg.frontend)
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
# weights files


def error_summary(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


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
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
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
            f"model {tuple(expected[key].shape)})"
        )
    if problems:
        raise InputError(f"{source}: does not fit the model: " + "; ".join(problems))


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
