"""Benchmark rows of paper Table A2: pooling AG-CLIP's window outputs over a recording.

Every row reuses the bench's trained AG-CLIP model (the ``agclip`` row, same seed):

``pooling-mean``
    the ``agclip`` row itself (mean of the window embeddings: the paper's inference);
``pooling-max`` / ``pooling-kmeans``
    the saved model re-run over the test recordings, the window embeddings pooled by their
    element-wise maximum / the centroid of the largest of k = 5 k-means clusters
    (:func:`~geoforensics.core.models.pooling.pool_outputs`), retrieved from the bench gallery;
``pooling-transformer``
    a :class:`~geoforensics.core.models.pooling.TransformerPooling` trained on the frozen
    model's window features of the train split (``preset.pooling_epochs`` epochs, validated on
    the val split against the bench gallery, best epoch kept;
    :func:`~geoforensics.train.pooling.fit_transformer_pooling`), saved as
    ``WORK/transformer_pooling.safetensors`` and reused while the model, data, gallery, seed
    and budget are unchanged.

The test split's window outputs (embeddings and features) are computed once per seed and
pooled every way; the train/val features once per seed (:meth:`BenchData.memo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.models import AudioGeolocator, load_model
from geoforensics.core.models.pooling import KMEANS_K, pool_outputs
from geoforensics.core.models.transformer_pooling import TransformerPooling
from geoforensics.eval.presets import BenchPreset, eval_batch_size
from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import BenchRow, RowContext, register_row
from geoforensics.train.pooling import (
    collect_outputs,
    fit_transformer_pooling,
    load_pooling_info,
    load_transformer_pooling,
    pool_recordings,
    retrieval_median_km,
    retrieve_top1,
    save_transformer_pooling,
)

#: The Table A2 rows, in table order.
POOLING_ROWS: tuple[str, ...] = (
    "pooling-mean",
    "pooling-max",
    "pooling-kmeans",
    "pooling-transformer",
)
#: The transformer row's saved pooler, inside the row's work folder.
POOLER_FILE = "transformer_pooling.safetensors"
_LABELS = {
    "pooling-mean": "AG-CLIP, mean pooling (paper)",
    "pooling-max": "AG-CLIP, max pooling",
    "pooling-kmeans": "AG-CLIP, k-means pooling (k = 5, largest cluster)",
    "pooling-transformer": "AG-CLIP, transformer pooling (frozen window features)",
}
_DESCRIPTIONS = {
    "pooling-mean": "the agclip row: mean of the window embeddings",
    "pooling-max": "the agclip model's window embeddings, element-wise maximum",
    "pooling-kmeans": "the agclip model's window embeddings, largest of 5 k-means clusters",
    "pooling-transformer": (
        "transformer over the agclip model's frozen window features, trained on train, best "
        "epoch on val"
    ),
}


def _model_dir(context: RowContext) -> Path:
    return Path(context.result("agclip").extra["model_dir"])


def _model(context: RowContext) -> AudioGeolocator:
    """The agclip row's saved model (loaded once per seed)."""
    model_dir = _model_dir(context)
    model: AudioGeolocator = context.data.memo(
        ("pooling-model", context.seed, str(model_dir)), lambda: load_model(model_dir)
    )
    if model.kind != "agclip":
        raise InputError(f"{model_dir}: the agclip row's model is a {model.kind!r} model")
    return model


def _windows(context: RowContext, split: str, keys: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """Per-recording window arrays ``keys`` of the agclip model over ``split`` (once per seed)."""
    data = context.data
    model_dir = _model_dir(context)

    def compute() -> dict[str, list[np.ndarray]]:
        return collect_outputs(
            _model(context),
            data.split(split),
            tuple(keys),
            batch_size=eval_batch_size(data.preset),
            progress=data.progress,
        )

    key = ("pooling-windows", context.seed, str(model_dir), split, tuple(keys))
    windows: dict[str, list[np.ndarray]] = data.memo(key, compute)
    return windows


#: The test split's window outputs every pooling row reads (one pass over the audio).
_TEST_KEYS = ("embedding", "features")


def _unit(embeddings: np.ndarray) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def _result(context: RowContext, embeddings: np.ndarray, extra: dict[str, Any]) -> RowResult:
    unit = _unit(embeddings)
    predictions = retrieve_top1(unit, context.data.retrieval_index)
    info = {"pooling": context.row.name.removeprefix("pooling-"), **extra}
    info["model_dir"] = str(_model_dir(context))
    return context.make_result(predictions, info, {"embeddings": unit})


def _run_mean(context: RowContext) -> RowResult:
    """Mean pooling is the agclip row's own inference: its predictions as they are."""
    parent = context.result("agclip")
    return context.make_result(
        parent.predictions, {"pooling": "mean", "model_dir": parent.extra["model_dir"]}
    )


def _run_fixed(context: RowContext) -> RowResult:
    """Max or k-means pooling of the agclip model's test window embeddings."""
    method = context.row.name.removeprefix("pooling-")
    test = _windows(context, "test", _TEST_KEYS)
    pooled = [
        pool_outputs("agclip", {"embedding": windows}, method)["embedding"]
        for windows in test["embedding"]
    ]
    extra: dict[str, Any] = {"k": KMEANS_K} if method == "kmeans" else {}
    return _result(context, np.stack(pooled), extra)


def _pooling_budget(preset: BenchPreset) -> dict[str, Any]:
    return {"pooling_epochs": preset.pooling_epochs}


def _pooler_settings(context: RowContext) -> dict[str, Any]:
    """What the saved pooler depends on (it is reused only when all match)."""
    data = context.data
    model_dir = _model_dir(context)
    return {
        "version": context.row.version,
        "model_sha256": sha256_file(model_dir / "model.safetensors"),
        "train_sha256": data.split_digest("train"),
        "val_sha256": data.split_digest("val"),
        "gallery_sha256": data.gallery.coords_sha256(),
        "epochs": data.preset.pooling_epochs,
        "seed": context.seed,
    }


def _trained_pooler(context: RowContext) -> tuple[TransformerPooling, dict[str, Any], bool]:
    """(pooler, its training info, whether it was reused from the work folder)."""
    data = context.data
    model = _model(context)  # a missing model fails here, with a clear message
    path = context.work_dir / POOLER_FILE
    wanted = _pooler_settings(context)
    if path.is_file():
        try:
            info = load_pooling_info(path)
            if info.get("bench_settings") == wanted:
                return load_transformer_pooling(path), info, True
        except InputError:
            pass  # a damaged or foreign file: train afresh and replace it
    train = _windows(context, "train", ("features",))
    val = _windows(context, "val", ("features", "embedding"))
    val_coords = data.split("val").coords()
    pooler, info = fit_transformer_pooling(
        model,
        train["features"],
        data.split("train").coords(),
        val["features"],
        val_coords,
        data.retrieval_index,
        epochs=data.preset.pooling_epochs,
        seed=context.seed,
        progress=data.progress,
    )
    if val["embedding"]:
        means = np.stack([windows.mean(axis=0) for windows in val["embedding"]])
        info["val_median_km_mean"] = retrieval_median_km(means, val_coords, data.retrieval_index)
    info["bench_settings"] = wanted
    save_transformer_pooling(pooler, path, info)
    return pooler, info, False


def _run_transformer(context: RowContext) -> RowResult:
    """Transformer pooling: train (or reuse) the pooler, pool the test window features."""
    pooler, info, reused = _trained_pooler(context)
    model = _model(context)
    test = _windows(context, "test", _TEST_KEYS)
    raw = torch.from_numpy(pool_recordings(pooler, test["features"]))
    embeddings = model.split_outputs(raw)["embedding"].numpy()
    extra = {
        key: info.get(key)
        for key in (
            "epochs",
            "best_epoch",
            "val_median_km",
            "val_median_km_before",
            "val_median_km_mean",
            "train_recordings",
            "seconds",
        )
    }
    extra.update({"pooler": str((context.work_dir / POOLER_FILE).resolve()), "reused": reused})
    return _result(context, embeddings, extra)


_RUNS = {
    "pooling-mean": _run_mean,
    "pooling-max": _run_fixed,
    "pooling-kmeans": _run_fixed,
    "pooling-transformer": _run_transformer,
}
for name in POOLING_ROWS:
    transformer = name == "pooling-transformer"
    register_row(
        BenchRow(
            name=name,
            label=_LABELS[name],
            table="A2",
            run=_RUNS[name],
            requires=("agclip",),
            uses_gallery=True,
            trains=transformer,
            budget=_pooling_budget if transformer else None,
            description=_DESCRIPTIONS[name],
        ),
    )
