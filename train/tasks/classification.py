"""Geocell classification: every H3 cell of one resolution is a class.

Resolutions 0 / 1 / 2 have 122 / 842 / 5,882 cells (all of them, in
:func:`geoforensics.core.geo.h3cells.cells` order). The target of a window is the cell holding
its recording's true location; the loss is cross-entropy. A recording's prediction is the
centre of the cell with the highest mean softmax probability over its windows.

For hierarchical (0 -> 1 -> 2) composition at evaluation time, the per-window logits are the
model's ``logits`` output, and the per-recording mean probabilities of the last evaluation are
``task.last_eval[prefix].pooled`` ((R, C), rows in ``last_eval[prefix].recordings`` order);
:meth:`ClassificationTask.recording_probabilities` computes them for any loader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from geoforensics.core.errors import InputError
from geoforensics.core.geo.h3cells import cell_centers, latlng_to_cell_index, num_cells
from geoforensics.core.models import ModelConfig
from geoforensics.train.config import LossConfig, OptimConfig, TrainConfig
from geoforensics.train.datamodule import GeoDataModule
from geoforensics.train.methods import register_method
from geoforensics.train.tasks.base import (
    GeoTask,
    LocationTarget,
    model_config_for,
    pretrained_weights,
)


class ClassificationTask(GeoTask):
    """Cross-entropy over all H3 cells at ``model_config.h3_resolution``."""

    def __init__(
        self,
        model_config: ModelConfig,
        optim: OptimConfig | None = None,
        loss: LossConfig | None = None,
        encoder_weights: str | None = None,
    ) -> None:
        if model_config.kind != "classification":
            raise InputError(
                f"ClassificationTask needs a classification model config, got {model_config.kind!r}"
            )
        super().__init__(model_config, optim, loss, encoder_weights)
        self.resolution = model_config.h3_resolution
        self.centers = cell_centers(self.resolution)

    def configure_losses(self) -> None:
        self.criterion = torch.nn.CrossEntropyLoss()

    def cell_targets(self, latlon: torch.Tensor) -> torch.Tensor:
        """(B,) class index of each true location's H3 cell."""
        cells = latlng_to_cell_index(latlon.detach().cpu().numpy(), self.model_config.h3_resolution)
        if (cells < 0).any():
            raise InputError("classification: a true location is invalid")
        return torch.from_numpy(cells).to(latlon.device)

    def compute_losses(
        self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        return {"loss": self.criterion(outputs["logits"], self.cell_targets(batch["latlon"]))}

    def window_outputs(self, outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return F.softmax(outputs["logits"].float(), dim=1)

    def output_width(self) -> int:
        return num_cells(self.model_config.h3_resolution)

    def predict_pooled(self, pooled: torch.Tensor) -> np.ndarray:
        return self.centers[pooled.argmax(dim=1).cpu().numpy()]

    def recording_probabilities(
        self, loader: Iterable[Mapping[str, Any]], n_recordings: int, transfer: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """((R,) recording positions, (R, C) mean window probabilities) over a loader."""
        result = self.evaluate(loader, n_recordings, prefix="probabilities", transfer=transfer)
        return result.recordings, result.pooled


@register_method("classification", model_kind="classification")
def build_classification_task(
    config: TrainConfig, datamodule: GeoDataModule, location_target: LocationTarget | None = None
) -> ClassificationTask:
    """H3 geocell classification at ``model.h3_res`` (``location_target`` is not used)."""
    return ClassificationTask(
        model_config_for(config, 0),
        optim=config.optim,
        loss=config.loss,
        encoder_weights=pretrained_weights(config),
    )
