"""Spectrogram encoders: torchvision MobileNetV3 (the paper's) and a tiny CNN for tests.

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

``mobilenet_v3_large`` initialised from torchvision's ImageNet weights (Table 2a) is the same
encoder with ``weights=`` that file (:mod:`geoforensics.core.models.imagenet` finds it).
"""

from __future__ import annotations

import torch
from torch import nn

from geoforensics.core.models.encoders.registry import EncoderConfig, register_encoder


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
