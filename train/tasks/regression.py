"""Regression baselines: latitude and longitude straight from the head.

The head outputs normalised coordinates (lat / 90, lon / 180) (``latlon_norm``). Losses:

``mse``
    mean squared error against the normalised true coordinates (both axes averaged);
``haversine``
    great-circle distance between the head's raw output read as degrees and the truth
    (:func:`~geoforensics.core.geo.distance.haversine_torch` with a small ``eps`` so the
    gradient stays finite at zero distance), divided by the Earth's radius (radians) to keep
    the loss's scale near 1 for SGD.

At inference the outputs are clamped (latitude) and wrapped (longitude) into valid ranges
(:func:`~geoforensics.core.models.denormalize_latlon`). Window predictions of a recording are
averaged as unit vectors on the sphere (not as raw numbers, which would put the mean of
179° and -179° at 0°), then turned back into latitude and longitude.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import EARTH_RADIUS_KM, haversine_torch
from geoforensics.core.models import ModelConfig, denormalize_latlon, normalize_latlon
from geoforensics.train.config import LossConfig, OptimConfig, TrainConfig
from geoforensics.train.datamodule import GeoDataModule
from geoforensics.train.methods import register_method
from geoforensics.train.tasks.base import (
    GeoTask,
    LocationTarget,
    model_config_for,
    pretrained_weights,
)

#: Loss names of the regression task.
REGRESSION_LOSSES: tuple[str, ...] = ("mse", "haversine")


def latlon_to_unit(latlon: torch.Tensor) -> torch.Tensor:
    """(..., 2) degrees -> (..., 3) unit vectors (x, y, z)."""
    lat, lon = torch.deg2rad(latlon[..., 0]), torch.deg2rad(latlon[..., 1])
    return torch.stack(
        [torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], dim=-1
    )


def unit_to_latlon(vectors: torch.Tensor) -> torch.Tensor:
    """(..., 3) vectors (any length > 0) -> (..., 2) degrees."""
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    lat = torch.rad2deg(torch.atan2(z, torch.sqrt(x * x + y * y)))
    lon = torch.rad2deg(torch.atan2(y, x))
    return torch.stack([lat, lon], dim=-1)


class RegressionTask(GeoTask):
    """Direct lat/lon regression with an MSE or haversine loss."""

    def __init__(
        self,
        model_config: ModelConfig,
        loss_name: str = "haversine",
        optim: OptimConfig | None = None,
        loss: LossConfig | None = None,
        encoder_weights: str | None = None,
    ) -> None:
        if model_config.kind != "regression":
            raise InputError(
                f"RegressionTask needs a regression model config, got {model_config.kind!r}"
            )
        if loss_name not in REGRESSION_LOSSES:
            raise InputError(
                f"regression loss {loss_name!r}: choose {', '.join(REGRESSION_LOSSES)}"
            )
        super().__init__(model_config, optim, loss, encoder_weights)
        self.loss_name = loss_name
        self.hparams["regression_loss"] = loss_name

    def compute_losses(
        self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        raw = outputs["latlon_norm"]
        true = batch["latlon"].to(raw.dtype)
        if self.loss_name == "mse":
            loss = F.mse_loss(raw, normalize_latlon(true))
        else:
            degrees = raw * torch.tensor([90.0, 180.0], dtype=raw.dtype, device=raw.device)
            distance = haversine_torch(degrees, true, eps=self.loss_config.haversine_eps)
            loss = (distance / EARTH_RADIUS_KM).mean()
        return {"loss": loss}

    def window_outputs(self, outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return latlon_to_unit(outputs["latlon"])

    def output_width(self) -> int:
        return 3

    def predict_pooled(self, pooled: torch.Tensor) -> np.ndarray:
        latlon = unit_to_latlon(pooled.detach().cpu().to(torch.float64))
        return denormalize_latlon(latlon / torch.tensor([90.0, 180.0], dtype=latlon.dtype)).numpy()


# decorators apply bottom-up: regression_mse is registered (and listed) first
@register_method("regression_haversine", model_kind="regression")
@register_method("regression_mse", model_kind="regression")
def build_regression_task(
    config: TrainConfig, datamodule: GeoDataModule, location_target: LocationTarget | None = None
) -> RegressionTask:
    """The regression task of ``regression_<loss>`` (``location_target`` is not used)."""
    return RegressionTask(
        model_config_for(config, 0),
        loss_name=config.method[len("regression_") :],
        optim=config.optim,
        loss=config.loss,
        encoder_weights=pretrained_weights(config),
    )
