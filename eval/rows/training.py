"""Training and inference shared by the rows that train (or run) an audio model.

:func:`train_row_model` trains (or reuses, or resumes) a row's model with the preset's budget;
:func:`predict_with_model` runs a saved model over recordings the way users run it;
:func:`training_extra` collects a trained row's ``extra``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write, sha256_file
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.models import load_model
from geoforensics.core.models.audio_places import top1_places
from geoforensics.core.models.inference import iter_pooled_outputs, predict_recordings
from geoforensics.eval.presets import eval_batch_size
from geoforensics.eval.rows.base import RowContext
from geoforensics.train.config import config_from_dict

#: The training stamp in a trained row's work folder.
BENCH_TRAIN_STAMP = "bench_train.json"


def training_config_dict(
    context: RowContext,
    method: str,
    h3_res: int | None,
    model_overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The training config (a :func:`geoforensics.train.config.config_from_dict` mapping) of a
    trained row: the preset's budget, this seed, the bench gallery (saved as a file so that
    validation retrieves from exactly the bench's gallery) and no test pass (the bench runs
    inference itself). ``model_overrides`` replace keys of the ``model`` section (e.g.
    ``location_encoder`` for Table 2)."""
    data = context.data
    sections = {name: dict(section) for name, section in context.preset.train.items()}
    data_section = {"root": str(data.root), **sections.pop("data", {})}
    if data.synthetic_range_model_path is None:
        data_section.setdefault("range_model", "none")
    model_section = sections.pop("model", {})
    if h3_res is not None:
        model_section["h3_res"] = h3_res
    model_section.update(model_overrides or {})
    gallery_file = context.work_dir / "gallery.npy"
    if method == "agclip":
        data.gallery.save(gallery_file)
    config: dict[str, Any] = {
        "method": method,
        "data": data_section,
        "model": model_section,
        "optim": sections.pop("optim", {}),
        "loss": sections.pop("loss", {}),
        "train": {**sections.pop("train", {}), "seed": context.seed},
        "eval": {"gallery": [f"file:{gallery_file}"] if method == "agclip" else [], "test": False},
        "out": str(context.work_dir / "run"),
    }
    if sections:
        raise InputError(
            f"bench preset {context.preset.name!r}: unknown sections {sorted(sections)}"
        )
    return config


def train_row_model(
    context: RowContext,
    method: str,
    h3_res: int | None = None,
    model_overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Train (or reuse, or resume) the row's model in ``WORK/run``; returns the model folder.

    ``WORK/bench_train.json`` records the training config (and the SHA-256 of a location-encoder
    checkpoint): a finished run with the same config is reused, an interrupted one resumed from
    its last checkpoint, a different one replaced. ``model_overrides``: see
    :func:`training_config_dict`.
    """
    # Here, not at the top: importing the runner loads Lightning (seconds), which listing the
    # rows, their availability checks and the rows that train nothing never need.
    from geoforensics.train.runner import LAST_CHECKPOINT, train

    context.work_dir.mkdir(parents=True, exist_ok=True)
    raw = training_config_dict(context, method, h3_res, model_overrides)
    config = config_from_dict(raw, source=f"bench row {context.row.name}")
    run_dir, stamp = config.out, context.work_dir / BENCH_TRAIN_STAMP
    wanted = json.loads(json.dumps(config.to_dict()))
    if method == "agclip":  # the gallery file's path stays the same; its content may not
        wanted["bench_gallery_sha256"] = context.data.gallery.coords_sha256()
    if config.model.location_encoder_checkpoint is not None:  # same path, new content: retrain
        checkpoint = config.model.location_encoder_checkpoint
        wanted["location_encoder_checkpoint_sha256"] = (
            sha256_file(checkpoint) if checkpoint.is_file() else "absent"
        )
    same = False
    if stamp.is_file():
        try:
            same = json.loads(stamp.read_text(encoding="utf-8")) == wanted
        except (OSError, ValueError):
            same = False
    model_dir = run_dir / "model"
    if same and (run_dir / "summary.json").is_file() and (model_dir / "model.json").is_file():
        return model_dir
    resume = same and (run_dir / "checkpoints" / LAST_CHECKPOINT).is_file()
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)  # a run of other settings (or none): start afresh
    with atomic_write(stamp) as fh:
        json.dump(wanted, fh, indent=1)
    train(config, resume=resume, progress=context.data.progress)
    return model_dir


def predict_with_model(
    context: RowContext,
    model_dir: Path,
    recordings: Sequence[Any],
    index: RetrievalIndex | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(predictions (N, 2), AG-CLIP recording embeddings (N, D) or None) of a saved model over
    ``recordings``, from all their windows (mean pooling) - the path users run. AG-CLIP
    retrieves from ``index`` (default: the bench gallery in GeoCLIP space; always the bench
    gallery's points) the top place of
    :func:`~geoforensics.core.models.audio_places.top1_places`, the batched form of the one
    audio path (the prior of ``locate`` and ``check``,
    :func:`~geoforensics.core.geo.gallery.gallery_log_prior`)."""
    model = load_model(model_dir)
    batch = eval_batch_size(context.preset)
    if model.kind != "agclip":
        predictions = predict_recordings(
            model, recordings, None, batch_size=batch, progress=context.data.progress
        )
        return predictions, None
    pooled = [p for p in iter_pooled_outputs(model, recordings, batch_size=batch)]
    embeddings = np.stack([p["embedding"] for p in pooled if p is not None]).astype(np.float32)
    embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    gallery = context.data.gallery
    best = top1_places(
        embeddings, gallery, index if index is not None else context.data.retrieval_index
    )
    return gallery.coords[best], embeddings


def training_extra(model_dir: Path, **fields: Any) -> dict[str, Any]:
    """A trained row's ``extra``: its model folder, ``fields``, and from the run's
    ``summary.json`` the best and trained epochs, training seconds and validation metrics."""
    summary = json.loads((model_dir.parent / "summary.json").read_text(encoding="utf-8"))
    return {
        "model_dir": str(model_dir.resolve()),
        **fields,
        "best_epoch": summary.get("best_epoch"),
        "epochs_trained": summary.get("epochs_trained"),
        "train_seconds": summary.get("wall_time_s"),
        "val": summary.get("val"),
    }
