"""Run a training config end to end: data, task, Lightning trainer, export and summary.

Run folder (``config.out``)::

    config.yaml              the resolved config of the run
    checkpoints/best-eNNN.ckpt   the best checkpoint (lowest validation median error)
    checkpoints/last.ckpt    the latest checkpoint, for --resume (written atomically:
                             :mod:`.checkpoint_io`)
    logs/metrics.csv         CSVLogger: train loss, learning rate, val/... per epoch, test/...
    model/model.safetensors  the best model (save_model: safetensors + JSON config; with a
                             frozen encoder such as birdnet, the head's weights only)
    model/model.json         (config.extra["location_encoder"] names AG-CLIP's location space;
                             config.extra["training_data"] the data set, whether it is a
                             SYNTHETIC world, and its species count: see
                             geoforensics.core.models.provenance)
    model/location_encoder.safetensors (+ .json)   AG-CLIP's frozen location encoder, when it
                             is not GeoCLIP's (retrieval embeds the gallery with it)
    test_predictions.npz     ids, true and predicted lat/lon, errors of the test split
    summary.json             best epoch, val metrics of the best epoch, test metrics, wall time

Checkpoints hold only tensors and primitive values (the tasks' hyper-parameters are plain
dictionaries, the LR schedule's state is numbers, the metric history is a list of dicts of
floats), and every load passes ``weights_only=True`` to Lightning (``trainer.fit(...,
ckpt_path, weights_only=True)``), so resuming never unpickles arbitrary objects.

Under DDP (``strategy: ddp``) Lightning re-launches the command once per extra process; every
process builds the same task and data module, and only process 0 writes the exported model,
the predictions and the summary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write, sha256_file
from geoforensics.core.geo.metrics import geolocation_errors
from geoforensics.core.models import frontend_for, save_model
from geoforensics.core.models.encoders import require_encoder
from geoforensics.core.models.location import GeoCLIPEncoder, LocationEncoder
from geoforensics.core.models.model_space import location_encoder_path, save_model_location_encoder
from geoforensics.core.models.provenance import TRAINING_DATA_KEY, dataset_training_data
from geoforensics.train.checkpoint_io import AtomicCheckpointIO, check_resumable
from geoforensics.train.config import TrainConfig
from geoforensics.train.datamodule import GeoDataModule
from geoforensics.train.methods import get_method
from geoforensics.train.tasks.agclip import create_location_target
from geoforensics.train.tasks.base import GeoTask, LocationTarget, metric_names

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


def build_task(
    config: TrainConfig, datamodule: GeoDataModule, location_target: LocationTarget | None = None
) -> GeoTask:
    """The Lightning task of ``config.method``, built by its registered builder (reads the data
    module's metadata)."""
    datamodule.load_metadata()
    return get_method(config.method).build(config, datamodule, location_target)


def _strategy(config: TrainConfig) -> Any:
    if config.train.strategy == "ddp":
        from lightning.pytorch.strategies import DDPStrategy

        # every parameter takes part in every loss (species and embedding outputs share the
        # head's last layer), so no unused-parameter search (a frozen encoder run outside
        # torch has no parameters at all: only the head is wrapped); Lightning picks gloo on
        # CPU and NCCL on GPUs
        return DDPStrategy(find_unused_parameters=False)
    return "auto"


def build_trainer(
    config: TrainConfig,
    callbacks: Sequence[L.Callback] = (),
    progress: bool = True,
) -> tuple[L.Trainer, L.pytorch.callbacks.ModelCheckpoint]:
    """A Trainer with early stopping, best + last checkpoints, a CSV logger and a progress bar."""
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    train = config.train
    checkpoint = ModelCheckpoint(
        dirpath=config.out / CHECKPOINT_DIR,
        filename="best-e{epoch:03d}",
        monitor=train.monitor,
        mode=train.monitor_mode,
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
    )
    stopping = EarlyStopping(
        monitor=train.monitor, mode=train.monitor_mode, patience=train.patience
    )
    logger = CSVLogger(save_dir=str(config.out), name="logs", version="")
    all_callbacks: list[L.Callback] = [checkpoint, stopping, LearningRateMonitor("epoch")]
    all_callbacks.extend(callbacks)
    trainer = L.Trainer(
        accelerator=train.accelerator,
        devices=train.devices,
        num_nodes=train.num_nodes,
        strategy=_strategy(config),
        precision=train.precision,  # type: ignore[arg-type]
        max_epochs=config.optim.max_epochs,
        max_time=timedelta(minutes=train.max_minutes) if train.max_minutes else None,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],  # last.ckpt survives a kill during its write
        logger=logger,
        enable_progress_bar=progress,
        enable_model_summary=progress,
        check_val_every_n_epoch=train.check_val_every_n_epoch,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        use_distributed_sampler=False,
        deterministic=train.deterministic,
        default_root_dir=str(config.out),
    )
    return trainer, checkpoint


def _quiet_lightning() -> None:
    """Silence Lightning warnings that are expected here (inside ``catch_warnings``)."""
    for message in (
        ".*Experiment logs directory.*",  # resuming appends to the run's own metrics.csv
        ".*exists and is not empty.*",  # resuming writes into the run's own checkpoints/
        ".*does not have many workers.*",  # num_workers is the config's choice
        ".*smaller than the logging interval.*",  # tiny datasets
        ".*LeafSpec.*",  # deprecation inside Lightning itself
    ):
        warnings.filterwarnings("ignore", message=message)


def _load_best_weights(task: GeoTask, path: Path) -> dict[str, Any]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    task.load_state_dict(checkpoint["state_dict"])
    return checkpoint


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path) as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")


def _plain_metrics(prefix: str, values: Sequence[float]) -> dict[str, float]:
    return {
        name.split("/", 1)[1]: float(v)
        for name, v in zip(metric_names(prefix), values, strict=True)
    }


def train(
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
    location_target: LocationTarget | None = None,
) -> dict[str, Any] | None:
    """Train ``config`` (resuming from ``OUT/checkpoints/last.ckpt`` when ``resume``), export
    the best model and return the summary (also written to ``OUT/summary.json``).

    A fresh run refuses an output folder that already holds a run's checkpoints. Under DDP
    only process 0 returns the summary (the other processes return None).
    """
    started = time.perf_counter()
    # a frozen encoder run outside torch (birdnet) needs its optional model: say how to
    # install it before anything is read or written
    encoder = require_encoder(config.model.encoder)
    out = config.out
    last = out / CHECKPOINT_DIR / LAST_CHECKPOINT
    if resume and not last.is_file():
        raise InputError(f"{last}: no checkpoint to resume from (run without --resume first)")
    if resume:
        check_resumable(last)
    if not resume and last.is_file():
        raise InputError(
            f"{out}: already holds a run ({last.name}); pass --resume to continue it or choose "
            "another --out"
        )
    out.mkdir(parents=True, exist_ok=True)

    L.seed_everything(config.train.seed, workers=True, verbose=False)
    datamodule = GeoDataModule(config, frontend_for(encoder), progress=progress)
    target = location_target
    if target is None and config.method == "agclip":
        # resolved here (not only inside build_task) so that the export can save it
        datamodule.load_metadata()
        target = create_location_target(
            config.model.location_encoder,
            range_model=datamodule.range_model,
            checkpoint=config.model.location_encoder_checkpoint,
        )
    task = build_task(config, datamodule, target)
    trainer, checkpoint = build_trainer(config, callbacks, progress)
    if trainer.is_global_zero:
        import yaml

        with atomic_write(out / "config.yaml") as fh:
            yaml.safe_dump(config.to_dict(), fh, sort_keys=False)

    with warnings.catch_warnings():
        _quiet_lightning()
        trainer.fit(
            task,
            datamodule=datamodule,
            ckpt_path=str(last) if resume else None,
            weights_only=True,
        )
    if trainer.interrupted:
        raise InputError(f"{out}: training was interrupted; continue it with --resume")

    best = checkpoint.best_model_path or (str(last) if last.is_file() else "")
    if not best:
        raise InputError(f"{out}: no checkpoint was saved (did validation run?)")
    best_checkpoint = _load_best_weights(task, Path(best))
    best_epoch = int(best_checkpoint.get("epoch", -1))
    history = {int(h["epoch"]): h for h in task.history}
    val_entry = history.get(best_epoch)
    val_metrics = (
        _plain_metrics("val", [val_entry[name] for name in metric_names("val")])
        if val_entry is not None
        else None
    )

    test_metrics = None
    if config.eval.test:
        with warnings.catch_warnings():
            _quiet_lightning()
            trainer.test(
                task, datamodule=datamodule, ckpt_path=best, weights_only=True, verbose=False
            )
        result = task.last_eval.get("test")
        if result is not None:
            test_metrics = result.metrics.as_dict()
            if trainer.is_global_zero:
                split = datamodule.splits["test"]
                errors = geolocation_errors(result.predictions, result.targets)
                _save_predictions(
                    out / "test_predictions.npz",
                    {
                        "ids": split.ids[result.recordings],
                        "true": result.targets,
                        "pred": result.predictions,
                        "errors": errors,
                    },
                )

    # species of the data set (its category list), whether or not the model predicts them
    training_data = dataset_training_data(config.data.root, len(datamodule.species_names))
    summary: dict[str, Any] = {
        "method": config.method,
        "synthetic_data": _is_synthetic(config.data.root),
        "training_data": training_data.as_dict(),
        "best_epoch": best_epoch,
        "best_checkpoint": str(best),
        "epochs_trained": int(trainer.current_epoch),
        "stopped_early": bool(getattr(trainer.early_stopping_callback, "stopped_epoch", 0)),
        "monitor": config.train.monitor,
        "val": val_metrics,
        "test": test_metrics,
        "history": task.history,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "model_dir": str(out / "model"),
        "config": config.to_dict(),
    }
    if trainer.is_global_zero:
        model = task.model
        extra = dict(model.config.extra)
        extra.update(
            {
                "method": config.method,
                "species_names": list(datamodule.species_names) if model.config.n_species else [],
                "best_epoch": best_epoch,
                "val_metrics": val_metrics,
                "gallery": list(config.eval.gallery) if config.method == "agclip" else [],
                TRAINING_DATA_KEY: training_data.as_dict(),
            }
        )
        if config.method == "agclip":
            extra.update(_export_location_encoder(config, target, out / "model"))
        model.config = dataclasses.replace(model.config, extra=extra)
        save_model(model, out / "model")
        _write_json(out / "summary.json", summary)
        return summary
    return None


def _export_location_encoder(
    config: TrainConfig, target: LocationTarget | None, model_dir: Path
) -> dict[str, Any]:
    """Save an AG-CLIP model's frozen location encoder beside it unless it is GeoCLIP's, and
    return the model config's ``extra`` entries naming it (see
    :mod:`geoforensics.core.models.model_space`): retrieval needs the same encoder."""
    stale = location_encoder_path(model_dir)
    for file in (stale, stale.with_suffix(".json")):
        file.unlink(missing_ok=True)  # a GeoCLIP export must not leave another run's encoder
    if target is None:
        return {"location_encoder": "geoclip"}
    if isinstance(target, GeoCLIPEncoder):
        return {"location_encoder": "geoclip", "location_encoder_weights": target.weights}
    if not isinstance(target, LocationEncoder):
        log.warning(
            "%s: the location target %s is not a LocationEncoder and is not saved; retrieval "
            "with this model needs it",
            model_dir,
            type(target).__name__,
        )
        return {"location_encoder": "custom"}
    checkpoint = config.model.location_encoder_checkpoint
    info: dict[str, Any] = {}
    if checkpoint is not None and target.name == config.model.location_encoder:
        info["checkpoint"] = str(checkpoint)
        if Path(checkpoint).is_file():
            info["checkpoint_sha256"] = sha256_file(checkpoint)
    save_model_location_encoder(model_dir, target, info)
    return {"location_encoder": target.name}


def _save_predictions(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_write(path, "wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)


def _is_synthetic(root: Path) -> bool:
    return (root / "world" / "world.json").is_file()
