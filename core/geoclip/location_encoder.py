"""GeoCLIP's location encoder, image-feature MLP and logit scale, loaded from the geoclip wheel.

Architecture (GeoCLIP, Vivanco et al. 2023): (lat, lon) -> Equal Earth projection (scaled to
about [-1, 1]) -> for each of three scales σ = 2^0, 2^4, 2^8 a random Fourier feature map
(256 fixed Gaussian frequencies -> cos/sin, 512-d) and an MLP 512 -> 1024 -> 1024 -> 1024 -> 512
-> the three branch outputs are summed into an unnormalised 512-d embedding. Module and buffer
names follow the shipped state dict (``LocEnc{i}.capsule.{0,1,3,5}``, ``LocEnc{i}.head.0``), so
the file loads strictly. Arithmetic is float32 in the same order as the reference, which keeps
our embeddings equal to ``geoclip.LocationEncoder``'s.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from geoforensics.core.errors import WeightsNotFoundError
from geoforensics.core.fileio import sha256_arrays
from geoforensics.core.geoclip import (
    IMAGE_MLP_WEIGHTS,
    LOCATION_ENCODER_WEIGHTS,
    LOGIT_SCALE_WEIGHTS,
)
from geoforensics.core.geoclip.embedding_cache import EMBED_DIM, encoder_id
from geoforensics.core.geoclip.embedding_cache import weights_path as _weights_path
from geoforensics.core.load_errors import load_error_summary

#: Equal Earth polynomial coefficients (Šavrič, Patterson & Jenny 2018).
EE_A1, EE_A2, EE_A3, EE_A4 = 1.340264, -0.081106, 0.000893, 0.003796
#: GeoCLIP's scale factor: projected coordinates are multiplied by SF / 180.
EE_SCALE = 66.50336
#: Random Fourier feature scales of the three branches.
GEOCLIP_SIGMAS: tuple[float, ...] = (2.0**0, 2.0**4, 2.0**8)
RFF_FREQUENCIES = 256
HIDDEN_DIM = 1024
#: Width of CLIP ViT-L/14 image features that GeoCLIP's MLP maps into the location space.
CLIP_FEATURE_DIM = 768


def equal_earth_projection(latlon: torch.Tensor) -> torch.Tensor:
    """(N, 2) lat/lon degrees -> (N, 2) Equal Earth (x, y), scaled as GeoCLIP does (SF / 180)."""
    lat = torch.deg2rad(latlon[:, 0])
    lon = torch.deg2rad(latlon[:, 1])
    root3 = torch.sqrt(torch.tensor(3.0, dtype=latlon.dtype, device=latlon.device))
    theta = torch.asin((root3 / 2) * torch.sin(lat))
    denom = 3 * (9 * EE_A4 * theta**8 + 7 * EE_A3 * theta**6 + 3 * EE_A2 * theta**2 + EE_A1)
    x = (2 * root3 * lon * torch.cos(theta)) / denom
    y = EE_A4 * theta**9 + EE_A3 * theta**7 + EE_A2 * theta**3 + EE_A1 * theta
    return (torch.stack((x, y), dim=1) * EE_SCALE) / 180


class FourierFeatures(nn.Module):
    """Fixed Gaussian random Fourier features: v -> [cos(2π v Bᵀ), sin(2π v Bᵀ)].

    ``b`` is a non-trainable buffer of shape (frequencies, 2), drawn from N(0, σ²) at
    construction and normally overwritten by the loaded weights.
    """

    b: torch.Tensor

    def __init__(self, sigma: float, frequencies: int = RFF_FREQUENCIES) -> None:
        super().__init__()
        self.register_buffer("b", torch.randn(frequencies, 2) * sigma)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        phase = 2 * math.pi * v @ self.b.T
        return torch.cat((torch.cos(phase), torch.sin(phase)), dim=-1)


class ScaleBranch(nn.Module):
    """One scale of the encoder: Fourier features, a 3-layer ReLU MLP and a linear head."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.capsule = nn.Sequential(
            FourierFeatures(sigma),
            nn.Linear(2 * RFF_FREQUENCIES, HIDDEN_DIM),
            nn.ReLU(),
            nn.Linear(HIDDEN_DIM, HIDDEN_DIM),
            nn.ReLU(),
            nn.Linear(HIDDEN_DIM, HIDDEN_DIM),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(HIDDEN_DIM, EMBED_DIM))

    def forward(self, projected: torch.Tensor) -> torch.Tensor:
        return self.head(self.capsule(projected))


class GeoCLIPLocationEncoder(nn.Module):
    """(N, 2) lat/lon degrees -> (N, 512) unnormalised GeoCLIP location embeddings.

    ``weights_id`` identifies the weights for cache keys: the hash of the file it was loaded
    from, or (for weights set in memory) a hash of the state dict computed on demand.
    """

    def __init__(self, sigmas: tuple[float, ...] = GEOCLIP_SIGMAS) -> None:
        super().__init__()
        self.sigmas = tuple(sigmas)
        for i, sigma in enumerate(self.sigmas):
            self.add_module(f"LocEnc{i}", ScaleBranch(sigma))
        self.weights_file_id: str | None = None

    def branches(self) -> list[ScaleBranch]:
        """The per-scale branches, in order."""
        return [getattr(self, f"LocEnc{i}") for i in range(len(self.sigmas))]

    def forward(self, latlon: torch.Tensor) -> torch.Tensor:
        projected = equal_earth_projection(latlon)
        out = torch.zeros(latlon.shape[0], EMBED_DIM, dtype=projected.dtype, device=latlon.device)
        for branch in self.branches():
            out += branch(projected)
        return out

    @property
    def weights_id(self) -> str:
        """Cache-key identity of the current weights."""
        if self.weights_file_id is not None:
            return self.weights_file_id

        tensors = [t.detach().cpu().numpy() for t in self.state_dict().values()]
        return "geoclip-loc-mem-" + sha256_arrays(*tensors, extra="location-encoder")[:16]


class GeoCLIPImageMLP(nn.Sequential):
    """GeoCLIP's head from CLIP ViT-L/14 image features (768-d) into the location space (512-d).

    Outputs are unnormalised; no CLIP model is involved here.
    """

    def __init__(self) -> None:
        super().__init__(
            nn.Linear(CLIP_FEATURE_DIM, CLIP_FEATURE_DIM),
            nn.ReLU(),
            nn.Linear(CLIP_FEATURE_DIM, EMBED_DIM),
        )


def _load_state(path: Path) -> dict[str, torch.Tensor] | torch.Tensor:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise WeightsNotFoundError(  # one line: torch's message spans many, with ANSI codes
            f"{path}: not a torch weights file loadable with weights_only=True "
            f"({load_error_summary(exc)})"
        ) from exc


_Frozen = TypeVar("_Frozen", bound=nn.Module)


def _load_frozen(model: _Frozen, resolved: Path, what: str, device: str | torch.device) -> _Frozen:
    """Fill ``model`` from the state dict at ``resolved``, freeze it and put it in eval mode."""
    state = _load_state(resolved)
    if not isinstance(state, dict):
        raise WeightsNotFoundError(f"{resolved}: expected a state dict of {what}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsNotFoundError(f"{resolved}: state dict does not fit {what} ({exc})") from exc
    model.requires_grad_(False)
    return model.to(device).eval()


def load_location_encoder(
    path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> GeoCLIPLocationEncoder:
    """GeoCLIP's location encoder with the wheel's (or ``path``'s) weights, in eval mode."""
    resolved = _weights_path(path, LOCATION_ENCODER_WEIGHTS)
    model = _load_frozen(GeoCLIPLocationEncoder(), resolved, "GeoCLIP's location encoder", device)
    model.weights_file_id = encoder_id(resolved)
    return model


@functools.cache
def default_location_encoder() -> GeoCLIPLocationEncoder:
    """The wheel's location encoder on the CPU, loaded once per process (treat as read-only)."""
    return load_location_encoder()


def load_image_mlp(
    path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> GeoCLIPImageMLP:
    """GeoCLIP's CLIP-feature MLP (768 -> 768 -> 512) with the wheel's weights, in eval mode."""
    resolved = _weights_path(path, IMAGE_MLP_WEIGHTS)
    return _load_frozen(GeoCLIPImageMLP(), resolved, "GeoCLIP's image MLP", device)


def load_logit_scale(path: str | os.PathLike[str] | None = None) -> float:
    """GeoCLIP's learned log logit scale (≈ 3.681); similarities are multiplied by its exp."""
    resolved = _weights_path(path, LOGIT_SCALE_WEIGHTS)
    value = _load_state(resolved)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise WeightsNotFoundError(f"{resolved}: expected a scalar logit scale tensor")
    return float(value.item())


def geoclip_temperature(path: str | os.PathLike[str] | None = None) -> float:
    """exp(logit_scale) ≈ 39.7: the factor on cosine similarities before the softmax."""
    return math.exp(load_logit_scale(path))
