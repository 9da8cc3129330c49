"""GeoCLIP's location encoder (512-d) as a :class:`LocationEncoder`, registered as ``geoclip``.

The weights ship in the ``geoclip`` wheel (or come from a GeoCLIP location-encoder weights
file); embeddings of the wheel's encoder are cached by :mod:`geoforensics.core.geoclip`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from geoforensics.core.errors import InputError
from geoforensics.core.geoclip.location_encoder import EMBED_DIM, load_location_encoder
from geoforensics.core.models.location.base import LocationEncoder, check_latlon
from geoforensics.core.models.location.registry import register_location_encoder


class GeoCLIPEncoder(LocationEncoder):
    """GeoCLIP's location encoder (512-d), from the geoclip wheel or a weights file."""

    name = "geoclip"

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.weights = None if weights is None else str(weights)
        self.model = load_location_encoder(weights)
        self.embed_dim = EMBED_DIM
        self.freeze()

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        check_latlon(coords)
        return self.model(coords)

    def config(self) -> dict[str, Any]:
        return {"weights": self.weights}

    @property
    def weights_id(self) -> str:
        return self.model.weights_id


@register_location_encoder("geoclip", GeoCLIPEncoder, saved_files=False, needs_checkpoint=False)
def create_geoclip_encoder(
    checkpoint: str | os.PathLike[str] | None = None, **kwargs: Any
) -> GeoCLIPEncoder:
    """The GeoCLIP encoder of ``checkpoint`` (default: the wheel's weights); no options."""
    if kwargs:
        raise InputError("the geoclip location encoder takes only a weights file")
    return GeoCLIPEncoder(checkpoint)
