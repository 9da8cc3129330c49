"""The :class:`LocationEncoder` base class and the checkpoint helpers its encoders share.

A location encoder is an ``nn.Module`` mapping (B, 2) latitude/longitude in degrees to
(B, ``embed_dim``) embeddings (unnormalised; :meth:`LocationEncoder.embed` gives L2-normalised
numpy arrays). AG-CLIP learns to map audio onto such a frozen embedding; the paper's Table 2
swaps GeoCLIP's encoder for SINR's and SatCLIP's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torch.nn import functional as F

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_arrays
from geoforensics.core.geo.distance import check_coords
from geoforensics.core.load_errors import load_error_summary


class LocationEncoder(nn.Module):
    """(B, 2) lat/lon degrees -> (B, ``embed_dim``) location embeddings (unnormalised).

    Subclasses set ``name`` and ``embed_dim`` and implement :meth:`forward` and
    :meth:`config` (the JSON-able arguments that rebuild the module).
    """

    name: str = "location-encoder"
    embed_dim: int

    def __init__(self) -> None:
        super().__init__()
        #: How the weights were obtained (e.g. range pretraining figures); JSON values.
        self.pretrain_info: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain JSON values."""
        raise NotImplementedError

    @property
    def weights_id(self) -> str:
        """Identity of the architecture and weights (for embedding cache keys)."""
        tensors = [t.detach().cpu().float().numpy() for t in self.state_dict().values()]
        tag = json.dumps({"name": self.name, **self.config()}, sort_keys=True)
        return f"{self.name}-" + sha256_arrays(*tensors, extra=tag)[:16]

    def presence_logits(self, coords: torch.Tensor) -> torch.Tensor:
        """(B, n_species) species logits of a range-model head; encoders without one refuse."""
        raise InputError(f"the {self.name} location encoder has no species head")

    def freeze(self) -> Self:
        """No gradients, eval mode (dropout off); returns self."""
        self.requires_grad_(False)
        return self.eval()

    def embed(self, coords: ArrayLike, batch_size: int = 4096) -> np.ndarray:
        """(N, 2) lat/lon -> (N, embed_dim) float32 L2-normalised embeddings (eval mode)."""
        points = check_coords(coords, "locations")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        device = _device_of(self)
        was_training = self.training
        self.eval()
        out = np.empty((len(points), self.embed_dim), dtype=np.float32)
        try:
            with torch.inference_mode():
                for start in range(0, len(points), batch_size):
                    chunk = torch.from_numpy(points[start : start + batch_size]).to(
                        device, torch.float32
                    )
                    out[start : start + len(chunk)] = (
                        F.normalize(self(chunk).float(), dim=1).cpu().numpy()
                    )
        finally:
            self.train(was_training)
        return out


def _device_of(module: nn.Module) -> torch.device:
    for parameter in module.parameters():
        return parameter.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")


def check_latlon(coords: torch.Tensor) -> None:
    """Refuse anything but a (B, 2) lat/lon tensor (one-line :class:`InputError`)."""
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise InputError(f"location encoder: expected (B, 2) lat/lon, got {tuple(coords.shape)}")


def existing_checkpoint(path: str | os.PathLike[str]) -> Path:
    """``path`` as an existing file, else :class:`WeightsNotFoundError`."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsNotFoundError(f"{file}: checkpoint not found")
    return file


def load_checkpoint(file: Path) -> Any:
    """A torch checkpoint read with ``weights_only=True`` (never arbitrary pickles); a refused
    or damaged file is a one-line :class:`InputError`."""
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or unsafe pickles
        first_line = load_error_summary(exc)
        raise InputError(
            f"{file}: not loadable with weights_only=True ({first_line}); re-save only the "
            "tensors and plain-value dicts (e.g. {'state_dict': ..., 'hyper_parameters': ...})"
        ) from exc


def load_state_strict(module: nn.Module, state: dict[str, Any], file: Path) -> None:
    """Load ``state`` into ``module`` strictly; a mismatch is a one-line :class:`InputError`."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        summary = " ".join(str(exc).split())[:300]
        raise InputError(f"{file}: weights do not fit the model ({summary})") from exc
