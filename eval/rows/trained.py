"""Rows of paper Tables 1 and 3 that train an audio model with the preset's budget.

AG-CLIP, regression (MSE, haversine) and classification (H3 res 0/1/2) are trained on the
train split (:func:`~geoforensics.eval.rows.training.train_row_model`) and predict each test
recording from all its windows (mean pooling); their ``-xcdc`` twins run the same model on the
XCDC dawn choruses. ``hierarchical`` composes the three classifiers top-down over H3 children.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.models import load_model
from geoforensics.core.models.inference import iter_pooled_outputs
from geoforensics.eval.presets import eval_batch_size, train_budget
from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import ROW_SPLITS, BenchRow, RowContext, no_xcdc, register_row
from geoforensics.eval.rows.training import predict_with_model, train_row_model, training_extra
from geoforensics.train.hierarchical import hierarchical_predict

#: Table 1 rows that train an audio model: (row, label, training method, H3 resolution).
TRAINED_ROWS: tuple[tuple[str, str, str, int | None], ...] = (
    ("agclip", "Retrieval (AG-CLIP)", "agclip", None),
    ("regression-mse", "Regression (MSE)", "regression_mse", None),
    ("regression-haversine", "Regression (haversine)", "regression_haversine", None),
    ("classification-r0", "Classification (H3 res 0)", "classification", 0),
    ("classification-r1", "Classification (H3 res 1)", "classification", 1),
    ("classification-r2", "Classification (H3 res 2)", "classification", 2),
)
_TRAINED = {name: (label, method, res) for name, label, method, res in TRAINED_ROWS}


def _run_trained(context: RowContext) -> RowResult:
    _, method, h3_res = _TRAINED[context.row.name]
    model_dir = train_row_model(context, method, h3_res)
    predictions, embeddings = predict_with_model(context, model_dir, context.data.split("test"))
    extra = training_extra(model_dir, method=method)
    arrays = {} if embeddings is None else {"embeddings": embeddings}
    return context.make_result(predictions, extra, arrays)


def _run_trained_on_xcdc(context: RowContext) -> RowResult:
    parent = context.result(context.row.requires[0])
    model_dir = Path(parent.extra["model_dir"])
    recordings = list(context.data.xcdc)
    predictions, embeddings = predict_with_model(context, model_dir, recordings)
    arrays = {} if embeddings is None else {"embeddings": embeddings}
    return context.make_result(predictions, {"model_dir": str(model_dir)}, arrays)


#: The classifier rows the hierarchical row composes, coarse to fine (H3 res 0, 1, 2).
HIERARCHY_ROWS: tuple[str, ...] = ("classification-r0", "classification-r1", "classification-r2")


def _run_hierarchical(context: RowContext) -> RowResult:
    """Paper Table 1 hierarchical row: the three trained classifiers composed 0 -> 1 -> 2
    (argmax among the children of the previous level's argmax), from each recording's
    window-averaged cell probabilities."""
    recordings: Sequence[Any] = (
        list(context.data.xcdc) if context.row.split == "xcdc" else context.data.split("test")
    )
    batch = eval_batch_size(context.preset)
    scores = []
    for name in HIERARCHY_ROWS:
        model = load_model(Path(context.result(name).extra["model_dir"]))
        pooled = iter_pooled_outputs(model, recordings, batch_size=batch)
        scores.append(np.stack([p["probs"] for p in pooled if p is not None]))
    prediction = hierarchical_predict(*scores)
    return context.make_result(
        prediction.coords,
        {"levels": list(HIERARCHY_ROWS), "invalid": int((~prediction.valid).sum())},
    )


for name, label, _method, _res in TRAINED_ROWS:
    register_row(
        BenchRow(
            name=name,
            label=label,
            table="T1",
            run=_run_trained,
            trains=True,
            uses_gallery=name == "agclip",
            budget=train_budget,
            description=f"{label}: trained with the preset's budget, all windows, mean pooling",
        ),
    )
    register_row(
        BenchRow(
            name=f"{name}-xcdc",
            label=label,
            table="T3",
            split="xcdc",
            run=_run_trained_on_xcdc,
            requires=(name,),
            uses_gallery=name == "agclip",
            description=f"the {name} model on the XCDC dawn choruses",
            unavailable=no_xcdc,
        ),
    )
for split in ROW_SPLITS:
    register_row(
        BenchRow(
            name="hierarchical" if split == "test" else "hierarchical-xcdc",
            label="Classification (hierarchical, H3 res 0 -> 1 -> 2)",
            table="T1" if split == "test" else "T3",
            split=split,
            run=_run_hierarchical,
            requires=HIERARCHY_ROWS,
            description="the res 0/1/2 classifiers composed top-down over H3 children",
            unavailable=no_xcdc if split == "xcdc" else None,
        ),
    )
