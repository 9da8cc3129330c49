"""Shared parts of the geolocation tasks (LightningModules, torchgeo style).

A task builds its parts in :meth:`GeoTask.configure_models`, :meth:`configure_losses` and
:meth:`configure_metrics`, and defines three method-specific pieces:

* :meth:`compute_losses` (model outputs + batch -> named losses, ``"loss"`` is optimised);
* :meth:`window_outputs` (model outputs -> the (B, D) per-window vectors that are averaged per
  recording: an embedding, softmax probabilities, ...);
* :meth:`predict_pooled` (averaged (R, D) vectors -> (R, 2) predicted lat/lon).

The base class provides the optimiser (SGD with Nesterov momentum) and the paper's schedule
(:mod:`geoforensics.train.schedule`), and the evaluation: window outputs are summed per
recording (``recording`` key of the batch) while the split streams by, summed across processes
under DDP, averaged (mean pooling over all windows of a recording), turned into predictions and
scored with :func:`~geoforensics.core.geo.metrics.geolocation_metrics`. Metrics are logged as
``val/median_km``, ``val/mean_km``, ``val/acc@25km``, ... (``test/...`` for the test split), and
the pooled outputs of the last evaluation are kept in :attr:`GeoTask.last_eval`.

Batches are dictionaries (see :mod:`geoforensics.train.datamodule`); tasks that do not use
audio (species oracles) may override :meth:`forward` and the ``image`` key as they need.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch

from geoforensics.core.geo.metrics import ACCURACY_THRESHOLDS_KM, GeoMetrics, geolocation_metrics
from geoforensics.core.models import AudioGeolocator, ModelConfig, frontend_for, get_encoder_config
from geoforensics.train.config import LossConfig, OptimConfig, TrainConfig
from geoforensics.train.schedule import PaperSchedule, paper_scheduler

#: AG-CLIP's frozen location encoder, an argument of every task builder: (B, 2) lat/lon degrees
#: -> (B, D) embeddings.
LocationTarget = Callable[[torch.Tensor], torch.Tensor]

#: Checkpoint key holding the per-validation metric history (plain floats).
HISTORY_KEY = "geoforensics_history"


@dataclass(frozen=True)
class EvalResult:
    """Pooled evaluation of one split: ``recordings`` (R,) positions in the split of the
    recordings that had windows, ``pooled`` (R, D) mean window outputs, ``predictions`` and
    ``targets`` (R, 2) lat/lon, ``windows`` (R,) windows per recording, and the metrics."""

    recordings: np.ndarray
    pooled: np.ndarray
    predictions: np.ndarray
    targets: np.ndarray
    windows: np.ndarray
    metrics: GeoMetrics


def model_config_for(config: TrainConfig, n_species: int, embed_dim: int = 512) -> ModelConfig:
    """The :class:`ModelConfig` a training config trains (front-end = the encoder's preset at
    its image size)."""
    encoder = get_encoder_config(config.model.encoder)
    return ModelConfig(
        kind=config.model_kind,
        encoder=config.model.encoder,
        n_species=n_species if config.model_kind == "agclip" else 0,
        embed_dim=embed_dim,
        h3_resolution=config.model.h3_res,
        frontend=frontend_for(encoder).to_dict(),
        hidden=config.model.hidden,
        extra={"method": config.method},
    )


def pretrained_weights(config: TrainConfig) -> str | None:
    """The encoder weights file a run starts from (``model.pretrained``), as a string."""
    return str(config.model.pretrained) if config.model.pretrained is not None else None


def metric_names(prefix: str) -> list[str]:
    """Logged metric names of an evaluation under ``prefix`` (``val`` / ``test``)."""
    names = ["median_km", "mean_km"] + [f"acc@{t:g}km" for t in ACCURACY_THRESHOLDS_KM]
    return [f"{prefix}/{name}" for name in names]


class GeoTask(L.LightningModule):
    """Base task: an :class:`AudioGeolocator`, SGD + the paper schedule, pooled evaluation."""

    def __init__(
        self,
        model_config: ModelConfig,
        optim: OptimConfig | None = None,
        loss: LossConfig | None = None,
        encoder_weights: str | None = None,
    ) -> None:
        super().__init__()
        self.model_config = model_config
        self.optim_config = optim or OptimConfig()
        self.loss_config = loss or LossConfig()
        self.encoder_weights = encoder_weights
        # plain dictionaries only, so checkpoints load with weights_only=True (and not through
        # save_hyperparameters, which inspects the callers' arguments, arrays included)
        self.hparams.update(
            {
                "model": model_config.to_dict(),
                "optim": dataclasses.asdict(self.optim_config),
                "loss": dataclasses.asdict(self.loss_config),
            }
        )
        self.last_eval: dict[str, EvalResult] = {}
        self.history: list[dict[str, float]] = []
        self._eval_state: dict[str, torch.Tensor] | None = None
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    # ------------------------------------------------------------------ parts

    def configure_models(self) -> None:
        """Build :attr:`model` (encoder + head) from the model config."""
        self.model = AudioGeolocator(self.model_config, encoder_weights=self.encoder_weights)

    def configure_losses(self) -> None:
        """Set up the loss functions (method-specific)."""

    def configure_metrics(self) -> None:
        """Accuracy thresholds of the benchmark (km)."""
        self.thresholds_km: tuple[float, ...] = ACCURACY_THRESHOLDS_KM

    def configure_optimizers(self) -> Any:
        """SGD (Nesterov momentum, weight decay) with the per-step paper schedule."""
        cfg = self.optim_config
        optimizer = torch.optim.SGD(
            self.trainable_parameters(),
            lr=cfg.lr_peak,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
        schedule = PaperSchedule(
            steps_per_epoch=self.steps_per_epoch(),
            max_epochs=self.schedule_epochs(),
            warmup_epochs=cfg.warmup_epochs,
            lr_start=cfg.lr_start,
            lr_peak=cfg.lr_peak,
            lr_end=cfg.lr_end,
        )
        scheduler = paper_scheduler(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def trainable_parameters(self) -> Iterable[torch.nn.Parameter]:
        """Parameters the optimiser updates (all that require gradients)."""
        return [p for p in self.parameters() if p.requires_grad]

    def schedule_epochs(self) -> int:
        """Epochs the schedule spans: the trainer's max_epochs, else the config's."""
        trainer = self._trainer
        if trainer is not None and trainer.max_epochs is not None and trainer.max_epochs > 0:
            return int(trainer.max_epochs)
        return self.optim_config.max_epochs

    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch, from the trainer's estimate."""
        trainer = self._trainer
        if trainer is None:
            return 1
        total = trainer.estimated_stepping_batches
        if not math.isfinite(total):
            return 1
        return max(1, math.ceil(int(total) / self.schedule_epochs()))

    # ------------------------------------------------------------------ method-specific

    def compute_losses(
        self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Named losses of a batch; ``"loss"`` is the one optimised."""
        raise NotImplementedError

    def window_outputs(self, outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, D) per-window vectors to average per recording."""
        raise NotImplementedError

    def predict_pooled(self, pooled: torch.Tensor) -> np.ndarray:
        """(R, D) averaged window vectors -> (R, 2) float64 predicted lat/lon."""
        raise NotImplementedError

    # ------------------------------------------------------------------ steps

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(images)

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        outputs = self(batch["image"])
        losses = self.compute_losses(outputs, batch)
        size = int(batch["latlon"].shape[0])
        for name, value in losses.items():
            key = "train/loss" if name == "loss" else f"train/{name}"
            self.log(
                key,
                value.detach(),
                on_step=True,
                on_epoch=True,
                batch_size=size,
                prog_bar=name == "loss",
                sync_dist=True,
            )
        return losses["loss"]

    def _eval_begin(self) -> None:
        self._eval_state = None

    def _eval_step(self, batch: Mapping[str, torch.Tensor], n_recordings: int) -> None:
        outputs = self(batch["image"])
        vectors = self.window_outputs(outputs).detach().to(torch.float64)
        index = batch["recording"].to(vectors.device)
        if self._eval_state is None:
            device = vectors.device
            self._eval_state = {
                "sums": torch.zeros(
                    n_recordings, vectors.shape[1], dtype=torch.float64, device=device
                ),
                "counts": torch.zeros(n_recordings, dtype=torch.float64, device=device),
                "coords": torch.zeros(n_recordings, 2, dtype=torch.float64, device=device),
            }
        state = self._eval_state
        state["sums"].index_add_(0, index, vectors)
        state["counts"].index_add_(0, index, torch.ones_like(index, dtype=torch.float64))
        state["coords"].index_add_(0, index, batch["latlon"].to(torch.float64))

    def _eval_end(self, prefix: str, n_recordings: int, width: int) -> EvalResult | None:
        state = self._eval_state
        if state is None:  # this process saw no window: contribute zeros
            state = {
                "sums": torch.zeros(n_recordings, width, dtype=torch.float64, device=self.device),
                "counts": torch.zeros(n_recordings, dtype=torch.float64, device=self.device),
                "coords": torch.zeros(n_recordings, 2, dtype=torch.float64, device=self.device),
            }
        if self._trainer is not None and self.trainer.world_size > 1:
            state = {
                key: self.trainer.strategy.reduce(value, reduce_op="sum")
                for key, value in state.items()
            }
        self._eval_state = None
        counts = state["counts"]
        seen = torch.nonzero(counts > 0).flatten()
        if seen.numel() == 0:
            return None
        pooled = state["sums"][seen] / counts[seen, None]
        targets = (state["coords"][seen] / counts[seen, None]).cpu().numpy()
        predictions = self.predict_pooled(pooled.to(torch.float32))
        metrics = geolocation_metrics(predictions, targets, self.thresholds_km)
        result = EvalResult(
            recordings=seen.cpu().numpy(),
            pooled=pooled.to(torch.float32).cpu().numpy(),
            predictions=predictions,
            targets=targets,
            windows=counts[seen].cpu().numpy().astype(np.int64),
            metrics=metrics,
        )
        self.last_eval[prefix] = result
        values = dict(zip(metric_names(prefix), self.metric_values(metrics), strict=True))
        if self._trainer is not None:
            # the values are already identical on every process (the sums were reduced first)
            median = f"{prefix}/median_km"
            self.log(median, values.pop(median), prog_bar=True, sync_dist=True)
            self.log_dict(values, sync_dist=True)
        return result

    def metric_values(self, metrics: GeoMetrics) -> list[float]:
        """Median, mean and accuracies (fractions) in :func:`metric_names` order."""
        return [metrics.median_km, metrics.mean_km] + [
            metrics.accuracy[float(t)] for t in self.thresholds_km
        ]

    def _n_recordings(self, stage: str) -> int:
        loaders = self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
        if loader is None:
            raise ValueError(f"no {stage} dataloader attached")
        return len(loader.dataset)

    def _width(self) -> int:
        return int(self.output_width())

    def output_width(self) -> int:
        """Width D of :meth:`window_outputs` (for processes that saw no window)."""
        raise NotImplementedError

    def on_validation_epoch_start(self) -> None:
        self._eval_begin()

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self._n_recordings("val"))

    def on_validation_epoch_end(self) -> None:
        result = self._eval_end("val", self._n_recordings("val"), self._width())
        if result is not None and not self.trainer.sanity_checking:
            entry = {"epoch": float(self.current_epoch)}
            entry.update(
                {
                    k: float(v)
                    for k, v in zip(
                        metric_names("val"), self.metric_values(result.metrics), strict=True
                    )
                }
            )
            self.history = [h for h in self.history if h["epoch"] != entry["epoch"]] + [entry]

    def on_test_epoch_start(self) -> None:
        self._eval_begin()

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self._n_recordings("test"))

    def on_test_epoch_end(self) -> None:
        self._eval_end("test", self._n_recordings("test"), self._width())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[HISTORY_KEY] = [dict(h) for h in self.history]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # restore the history when resuming a fit; testing an older (best) checkpoint must not
        # roll back the history of the run that just finished
        trainer = self._trainer
        if trainer is None or trainer.state.fn == "fit":
            self.history = [dict(h) for h in checkpoint.get(HISTORY_KEY, [])]

    # ------------------------------------------------------------------ without a trainer

    @torch.no_grad()
    def evaluate(
        self,
        loader: Iterable[Mapping[str, torch.Tensor]],
        n_recordings: int,
        prefix: str = "eval",
        transfer: Any = None,
    ) -> EvalResult:
        """Pooled evaluation over a dataloader in this process (no trainer, no DDP).

        ``transfer`` is applied to each batch after moving it to the task's device (pass the
        data module's ``on_after_batch_transfer`` to build images from cached windows).
        """
        was_training = self.training
        self.eval()
        self._eval_begin()
        try:
            for batch in loader:
                moved = {
                    k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()
                }
                if transfer is not None:
                    moved = transfer(moved, 0)
                self._eval_step(moved, n_recordings)
            trainer, self._trainer = self._trainer, None
            try:
                result = self._eval_end(prefix, n_recordings, self._width())
            finally:
                self._trainer = trainer
        finally:
            self.train(was_training)
        if result is None:
            raise ValueError("evaluate: the loader gave no windows")
        return result
