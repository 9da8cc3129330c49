"""Benchmark row of a given model on the XCDC dawn choruses (paper Table 3 left).

``model-xcdc``
    a trained or imported model folder (``geoforensics bench --model DIR``: ``model.json`` +
    weights, as written by ``geoforensics train`` or a weights import) run over every XCDC
    recording, all windows, mean pooling - the path users run
    (:func:`~geoforensics.eval.rows.training.predict_with_model`; AG-CLIP retrieves from the
    bench gallery in GeoCLIP space, other kinds predict directly).
    Nothing trains, so the row runs from an XCDC folder alone (``xcdc_only``); it needs the
    choruses' audio. The SHA-256 of the model folder's files is part of the resume check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geoforensics.core.fileio import sha256_file
from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import BenchData, BenchRow, RowContext, no_xcdc, register_row
from geoforensics.eval.rows.training import predict_with_model

#: Row name.
MODEL_XCDC_ROW = "model-xcdc"


def model_unavailable(data: BenchData) -> str | None:
    """Why ``model-xcdc`` cannot run: no ``--model``, no XCDC data or no chorus audio."""
    if data.model_dir is None:
        return "needs a model folder: give --model DIR (trained by `geoforensics train`)"
    if not data.has_xcdc():
        return no_xcdc(data)
    missing = len(data.xcdc) - data.xcdc.n_with_audio
    if missing:
        return f"{missing} of {len(data.xcdc)} XCDC recordings have no audio (the model needs it)"
    return None


def model_inputs(data: BenchData) -> dict[str, Any]:
    """The model folder's files and their SHA-256 (the resume check)."""
    folder = data.model_dir
    if folder is None:
        return {"model": None}
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return {"model": {p.name: sha256_file(p) for p in files}}


def _run_model_xcdc(context: RowContext) -> RowResult:
    """The given model over the XCDC recordings (all windows, mean pooling)."""
    folder = context.data.model_dir
    assert folder is not None  # unavailable otherwise
    recordings = list(context.data.xcdc)
    predictions, embeddings = predict_with_model(context, folder, recordings)
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    extra = {
        "model_dir": str(Path(folder)),
        "kind": meta.get("config", {}).get("kind"),
        "gallery": context.data.gallery.name,
        "gallery_size": len(context.data.gallery),
    }
    arrays = {} if embeddings is None else {"embeddings": embeddings}
    return context.make_result(predictions, extra, arrays)


register_row(
    BenchRow(
        name=MODEL_XCDC_ROW,
        label="Given model (--model)",
        table="T3",
        split="xcdc",
        run=_run_model_xcdc,
        uses_gallery=True,
        description=(
            "a trained or imported model folder (--model DIR) over the XCDC choruses, all "
            "windows, mean pooling (AG-CLIP: retrieval from the bench gallery)"
        ),
        unavailable=model_unavailable,
        inputs=model_inputs,
        xcdc_only=True,
    ),
)


__all__ = ["MODEL_XCDC_ROW", "model_inputs", "model_unavailable"]
