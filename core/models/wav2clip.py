"""Wav2CLIP's audio encoder (Wu et al., ICASSP 2022), frozen, as an AG-CLIP audio encoder.

Architecture (the released ``Wav2CLIP.pt``): 16 kHz mono waveform -> power spectrogram (periodic
Hann window 512, hop 353, centred frames with reflect padding, 257 bins) -> ``log(x + 1e-7)``
-> standardised by its own mean and (unbiased) standard deviation -> ResNet-18 with a
one-channel first convolution, global average pool -> 512-d -> the "transform" MLP
(Linear 512->512, ReLU, Dropout, Linear 512->512) -> 512-d embedding in CLIP's space.

The reference standardises over the whole batch tensor; here each window is standardised on
its own, so features do not depend on which windows share a batch (identical to the reference
for one window per call).

Weights: the released checkpoint is a torch file whose ``state_dict`` holds
``audio_encoder.*`` (the ResNet, including its unused ``fc`` and the spectrogram window) and
``audio_transform.*``; it is read with ``torch.load(weights_only=True)`` (or a safetensors file
with the same keys). Found at ``$GEOFORENSICS_WAV2CLIP`` (a file), else in torch's hub cache
(``$TORCH_HOME/hub/checkpoints/Wav2CLIP.pt``, where ``pip install wav2clip`` and
``wav2clip.get_model()`` put it). Nothing is downloaded here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models.encoders.registry import (
    EncoderConfig,
    PrecomputedFeatures,
    WaveformFeatureExtractor,
    frontend_for,
    register_encoder,
    register_feature_extractor,
)
from geoforensics.core.models.encoders.weights import (
    check_state_dict,
    file_sha256,
    read_state_dict,
)
from geoforensics.core.models.threads import torch_threads

WAV2CLIP_SAMPLE_RATE = 16_000
WAV2CLIP_DIM = 512
WAV2CLIP_FILE = "Wav2CLIP.pt"
WAV2CLIP_ENV = "GEOFORENSICS_WAV2CLIP"
WAV2CLIP_URL = (
    "https://github.com/descriptinc/lyrebird-wav2clip/releases/download/v0.1.0-alpha/Wav2CLIP.pt"
)
WAV2CLIP_HINT = (
    f"download {WAV2CLIP_URL} (needs internet once) into $TORCH_HOME/hub/checkpoints/ or "
    f"export {WAV2CLIP_ENV}=FILE"
)


class PowerSpectrogram(nn.Module):
    """|STFT|² with a periodic Hann window (buffer ``window``), centred, reflect-padded:
    (B, N) -> (B, 1, n_fft // 2 + 1, frames)."""

    window: torch.Tensor

    def __init__(self, n_fft: int = 512, hop_length: int = 353) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            waveform,
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return (spec.abs() ** 2).unsqueeze(1)


class Wav2CLIPResNet(nn.Module):
    """Wav2CLIP's ResNet-18 on log spectrograms (parameter names as in the checkpoint)."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models.resnet import BasicBlock, ResNet

        base = ResNet(BasicBlock, [2, 2, 2, 2])
        self.spectrogram = PowerSpectrogram()
        self.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1, self.relu, self.maxpool = base.bn1, base.relu, base.maxpool
        self.layer1, self.layer2 = base.layer1, base.layer2
        self.layer3, self.layer4 = base.layer3, base.layer4
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, 1000)  # unused; kept so the checkpoint loads strictly

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = torch.log(self.spectrogram(waveform) + 1e-7)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.flatten(1).std(dim=1).view(-1, 1, 1, 1)
        x = (x - mean) / (std + 1e-9)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


class Wav2CLIPTransform(nn.Module):
    """The MLP after the ResNet (``sequential.0`` and ``sequential.3``)."""

    def __init__(self, dim: int = WAV2CLIP_DIM, dropout: float = 0.1) -> None:
        super().__init__()
        self.sequential = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequential(x)


class Wav2CLIPAudio(nn.Module):
    """Waveform (B, N) at 16 kHz -> (B, 512) Wav2CLIP embeddings (unnormalised)."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = Wav2CLIPResNet()
        self.audio_transform = Wav2CLIPTransform()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.audio_transform(self.audio_encoder(waveform))


def find_wav2clip_weights() -> Path:
    """The Wav2CLIP checkpoint: ``$GEOFORENSICS_WAV2CLIP``, else torch's hub cache."""
    env = os.environ.get(WAV2CLIP_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"${WAV2CLIP_ENV} {path}: no such file; {WAV2CLIP_HINT}")
        return path.resolve()
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WAV2CLIP_FILE
    if cached.is_file():
        return cached.resolve()
    raise WeightsNotFoundError(
        f"Wav2CLIP weights not found: ${WAV2CLIP_ENV} unset and no {cached}; {WAV2CLIP_HINT}"
    )


def load_wav2clip(path: str | os.PathLike[str] | None = None) -> Wav2CLIPAudio:
    """Wav2CLIP's audio encoder + transform from a checkpoint, frozen, eval mode."""
    file = Path(path) if path is not None else find_wav2clip_weights()
    state = read_state_dict(file)
    state = {k: v for k, v in state.items() if k.startswith(("audio_encoder.", "audio_transform."))}
    if not state:
        raise InputError(f"{file}: no audio_encoder.* / audio_transform.* weights (not Wav2CLIP?)")
    model = Wav2CLIPAudio()
    check_state_dict(model, state, file)
    model.load_state_dict(state, strict=True)
    model.requires_grad_(False)
    return model.eval()


def wav2clip_identity() -> str:
    """``wav2clip-`` + SHA-256 of the found checkpoint, without loading it."""
    return "wav2clip-" + file_sha256(find_wav2clip_weights())[:16]


class Wav2CLIPFeatures:
    """Wav2CLIP's unit-norm embeddings of 16 kHz waveform windows (a frozen
    ``waveform-features`` extractor)."""

    def __init__(self, num_threads: int, window_samples: int) -> None:
        self.window_samples = window_samples
        self.num_threads = num_threads
        self._identity = ""
        self._refresh()

    def _refresh(self) -> None:
        """(Re)load the model when the weights found now are not the ones loaded (the
        registry keeps one extractor per process)."""
        current = wav2clip_identity()
        if current != self._identity:
            self.model = load_wav2clip()
            self._identity = current

    @property
    def identity(self) -> str:
        return self._identity

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        self._refresh()
        batch = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        with torch_threads(self.num_threads), torch.inference_mode():
            out = self.model(batch)
        return torch.nn.functional.normalize(out.float(), dim=1).numpy()


# ---------------------------------------------------------------------------------------------
# the registered waveform-features encoder ``wav2clip`` (paper Table 2a)


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


@register_feature_extractor("wav2clip", wav2clip_identity)
def _wav2clip_features(num_threads: int) -> WaveformFeatureExtractor:
    return Wav2CLIPFeatures(num_threads, frontend_for("wav2clip").window_samples)
