"""SINR's location encoder (Cole et al. 2023) as a :class:`LocationEncoder`, registered as ``sinr``.

SINR's ``ResidualFCNet``: input ``sin_cos`` encoding of (lon, lat) as
[sin(π·lon/180), sin(π·lat/90), cos(π·lon/180), cos(π·lat/90)] -> Linear(4, 256) -> ReLU
-> 4 residual layers (Linear, ReLU, Dropout 0.5, Linear, ReLU, + skip) -> ``class_emb``
Linear(256, n_species, no bias). The embedding is the 256-d penultimate feature. Parameter
names are SINR's (``feats.0``, ``feats.2.w1``, ..., ``class_emb``), so the public checkpoint
(``{'params': {...}, 'state_dict': {...}}``, read with ``weights_only=True``) loads strictly.
Without a checkpoint, :mod:`geoforensics.train.range_pretraining` trains one as a range model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from geoforensics.core.errors import InputError
from geoforensics.core.models.location.base import (
    LocationEncoder,
    check_latlon,
    existing_checkpoint,
    load_checkpoint,
    load_state_strict,
)
from geoforensics.core.models.location.registry import register_location_encoder


def sinr_input_encoding(coords: torch.Tensor) -> torch.Tensor:
    """SINR's ``sin_cos`` input: (lat, lon) degrees -> [sin πx, sin πy, cos πx, cos πy] with
    x = lon/180 and y = lat/90 (SINR normalises (lon, lat) to [-1, 1] first)."""
    check_latlon(coords)
    normalised = torch.stack((coords[:, 1] / 180.0, coords[:, 0] / 90.0), dim=1)
    return torch.cat((torch.sin(math.pi * normalised), torch.cos(math.pi * normalised)), dim=1)


class SINRResLayer(nn.Module):
    """SINR's residual layer: x + ReLU(w2(Dropout(ReLU(w1(x)))))."""

    def __init__(self, width: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.w1 = nn.Linear(width, width)
        self.w2 = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.w2(self.dropout(F.relu(self.w1(x)))))


class SINREncoder(LocationEncoder):
    """SINR ``ResidualFCNet`` with the ``sin_cos`` input; embedding = penultimate features.

    ``num_classes`` > 0 adds SINR's species head ``class_emb`` (Linear, no bias), used by
    :meth:`presence_logits` and by range pretraining.
    """

    name = "sinr"
    input_dim = 4

    def __init__(
        self,
        num_classes: int = 0,
        num_filts: int = 256,
        depth: int = 4,
        dropout: float = 0.5,
        species: list[str] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 0 or num_filts < 1 or depth < 0 or not 0.0 <= dropout < 1.0:
            raise InputError(
                f"SINR: need num_classes >= 0, num_filts >= 1, depth >= 0, 0 <= dropout < 1; got "
                f"{num_classes}, {num_filts}, {depth}, {dropout}"
            )
        self.num_classes, self.num_filts, self.depth = num_classes, num_filts, depth
        self.dropout = dropout
        self.species = list(species) if species is not None else None
        self.embed_dim = num_filts
        layers: list[nn.Module] = [nn.Linear(self.input_dim, num_filts), nn.ReLU()]
        layers += [SINRResLayer(num_filts, dropout) for _ in range(depth)]
        self.feats = nn.Sequential(*layers)
        self.class_emb = nn.Linear(num_filts, num_classes, bias=False) if num_classes else None

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.feats(sinr_input_encoding(coords))

    def presence_logits(self, coords: torch.Tensor) -> torch.Tensor:
        """(B, num_classes) species logits (sigmoid -> presence probability)."""
        if self.class_emb is None:
            raise InputError("SINR encoder has no species head (num_classes = 0)")
        return self.class_emb(self(coords))

    def config(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "num_filts": self.num_filts,
            "depth": self.depth,
            "dropout": self.dropout,
            "species": self.species,
        }


def load_sinr_checkpoint(path: str | os.PathLike[str]) -> SINREncoder:
    """A public SINR checkpoint (``{'params': ..., 'state_dict': ...}``), frozen.

    Only the ``ResidualFCNet`` model with the ``sin_cos`` input encoding is supported (the
    ``env`` encodings need SINR's bioclimatic rasters).
    """
    file = existing_checkpoint(path)
    raw = load_checkpoint(file)
    if not isinstance(raw, Mapping) or "state_dict" not in raw:
        raise InputError(f"{file}: expected a SINR checkpoint dict with 'params' and 'state_dict'")
    params = raw.get("params") or {}
    state = raw["state_dict"]
    if not isinstance(params, Mapping) or not isinstance(state, Mapping):
        raise InputError(f"{file}: 'params' and 'state_dict' must be dicts")
    model = params.get("model", "ResidualFCNet")
    encoding = params.get("input_enc", "sin_cos")
    if model != "ResidualFCNet" or encoding != "sin_cos":
        raise InputError(
            f"{file}: SINR model {model!r} with input encoding {encoding!r} is not supported "
            "(only ResidualFCNet with 'sin_cos')"
        )
    first = state.get("feats.0.weight")
    if not isinstance(first, torch.Tensor) or first.ndim != 2:
        raise InputError(f"{file}: state_dict lacks SINR's 'feats.0.weight'")
    if first.shape[1] != SINREncoder.input_dim:
        raise InputError(
            f"{file}: input dimension {first.shape[1]}, expected {SINREncoder.input_dim} "
            "(sin_cos encoding)"
        )
    head = state.get("class_emb.weight")
    depth = len({k.split(".")[1] for k in state if k.startswith("feats.") and ".w1." in k})
    encoder = SINREncoder(
        num_classes=int(head.shape[0]) if isinstance(head, torch.Tensor) else 0,
        num_filts=int(params.get("num_filts", first.shape[0])),
        depth=int(params.get("depth", depth)),
    )
    load_state_strict(encoder, dict(state), file)
    return encoder.freeze()


@register_location_encoder("sinr", SINREncoder)
def create_sinr_encoder(checkpoint: str | os.PathLike[str], **kwargs: Any) -> SINREncoder:
    """A SINR checkpoint's encoder (:func:`load_sinr_checkpoint`); options are not used."""
    return load_sinr_checkpoint(checkpoint)
