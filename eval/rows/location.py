"""Paper Table 2: AG-CLIP trained against other location encoders (GeoCLIP, SINR, SatCLIP).

Rows (table ``T2``):

``location-encoder-geoclip``
    the ``agclip`` row itself (GeoCLIP's location encoder, the paper's default): its
    predictions and embeddings are reused, nothing is trained again.
``location-encoder-sinr``, ``location-encoder-satclip``
    AG-CLIP trained with the preset's budget (as the ``agclip`` row) but with
    ``model.location_encoder`` set, so the audio head learns that encoder's embedding space
    (256-d); test recordings are predicted from all windows (mean pooling) and retrieved from
    the bench gallery embedded by the *same* encoder, read back from the model folder
    (:func:`~geoforensics.core.models.model_space.retrieval_index_for_model`) - the path a user
    of the saved model runs. The encoder comes from the user's checkpoint (``geoforensics bench
    --sinr-checkpoint PATH`` / ``--satclip-checkpoint PATH``; its SHA-256 is part of the
    resume check) or, without one, is pretrained as a range model on the synthetic world's true
    range model (:func:`~geoforensics.train.range_pretraining.pretrain_range_encoder`,
    cached). With neither the rows are unavailable.

With XCDC data, ``location-encoder-sinr-xcdc`` and ``location-encoder-satclip-xcdc`` (table
``T3``) run those models on the XCDC dawn choruses (GeoCLIP's is the ``agclip-xcdc`` row).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from geoforensics.core.fileio import sha256_file
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.models.model_space import model_location_encoder, retrieval_index_for_model
from geoforensics.eval.presets import train_budget
from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import BenchData, BenchRow, RowContext, no_xcdc, register_row
from geoforensics.eval.rows.training import predict_with_model, train_row_model, training_extra

#: Table 2's encoders and their display names, in the paper's order.
LOCATION_ENCODER_LABELS: dict[str, str] = {
    "geoclip": "GeoCLIP",
    "sinr": "SINR",
    "satclip": "SatCLIP",
}
#: Encoders whose rows train their own AG-CLIP model.
TRAINED_ENCODERS: tuple[str, ...] = ("sinr", "satclip")
#: Pretraining figures copied from the encoder's saved info into a row's ``extra``.
_PRETRAIN_KEYS = ("val_macro_auc", "val_bce", "val_bce_constant", "n_points", "epochs", "seconds")


def row_name(encoder: str, split: str = "test") -> str:
    """``location-encoder-NAME`` (``-xcdc`` for the XCDC split)."""
    return f"location-encoder-{encoder}" + ("-xcdc" if split == "xcdc" else "")


def _label(encoder: str) -> str:
    return f"AG-CLIP, {LOCATION_ENCODER_LABELS[encoder]} location encoder"


def _encoder_of(row: BenchRow) -> str:
    return row.name.removeprefix("location-encoder-").removesuffix("-xcdc")


def _file_sha256(data: BenchData, path: Path) -> str:
    digest: str = data.memo(("sha256", str(path)), lambda: sha256_file(path))
    return digest


def _inputs(data: BenchData, encoder: str) -> dict[str, Any] | None:
    """Identity of a trained row's encoder (part of the resume check): the user checkpoint's
    SHA-256, else that of the synthetic range model it is pretrained on; None when neither."""
    checkpoint = data.location_encoder_checkpoints.get(encoder)
    if checkpoint is not None:
        return {"checkpoint_sha256": _file_sha256(data, checkpoint)}
    range_model = data.synthetic_range_model_path
    if range_model is not None:
        return {"pretrained_on_range_model_sha256": _file_sha256(data, range_model)}
    return None


def _unavailable(data: BenchData, encoder: str) -> str | None:
    if encoder in data.location_encoder_checkpoints or data.synthetic_range_model_path:
        return None
    return (
        f"no {encoder} location encoder: give --{encoder}-checkpoint PATH (without one it is "
        "pretrained on a synthetic world's range model, and this data set has none)"
    )


def _model_index(context: RowContext, model_dir: Path) -> RetrievalIndex:
    """The bench gallery embedded by the model's own location encoder (memoised per run)."""
    data = context.data
    key = ("model-space-index", str(model_dir.resolve()), *data.gallery_specs)
    index: RetrievalIndex = data.memo(
        key, lambda: retrieval_index_for_model(model_dir, data.gallery.coords)
    )
    return index


def _run_geoclip(context: RowContext) -> RowResult:
    """GeoCLIP's row: the ``agclip`` row's result under this table."""
    parent = context.result("agclip")
    extra = {"location_encoder": "geoclip", "model_dir": parent.extra.get("model_dir")}
    return context.make_result(parent.predictions, extra, dict(parent.arrays))


def _run_trained(context: RowContext) -> RowResult:
    """Train AG-CLIP against the row's encoder and retrieve in that encoder's space."""
    encoder = _encoder_of(context.row)
    data = context.data
    overrides: dict[str, Any] = {"location_encoder": encoder}
    checkpoint = data.location_encoder_checkpoints.get(encoder)
    if checkpoint is not None:
        overrides["location_encoder_checkpoint"] = str(checkpoint)
    model_dir = train_row_model(context, "agclip", None, overrides)
    index = _model_index(context, model_dir)
    predictions, embeddings = predict_with_model(context, model_dir, data.split("test"), index)
    saved = model_location_encoder(model_dir)
    info = {} if saved is None else saved.pretrain_info
    extra = training_extra(
        model_dir,
        location_encoder=encoder,
        embed_dim=index.dim,
        encoder_source="checkpoint" if checkpoint is not None else "range-model pretraining",
        checkpoint=None if checkpoint is None else str(checkpoint),
        pretraining={k: info[k] for k in _PRETRAIN_KEYS if k in info} or None,
    )
    arrays = {} if embeddings is None else {"embeddings": embeddings}
    return context.make_result(predictions, extra, arrays)


def _run_on_xcdc(context: RowContext) -> RowResult:
    """A trained row's model on the XCDC dawn choruses, retrieved in its own space."""
    parent = context.result(context.row.requires[0])
    model_dir = Path(parent.extra["model_dir"])
    index = _model_index(context, model_dir)
    predictions, embeddings = predict_with_model(context, model_dir, list(context.data.xcdc), index)
    arrays = {} if embeddings is None else {"embeddings": embeddings}
    extra = {"model_dir": str(model_dir), "location_encoder": _encoder_of(context.row)}
    return context.make_result(predictions, extra, arrays)


def _xcdc_unavailable(data: BenchData, encoder: str) -> str | None:
    return no_xcdc(data) or _unavailable(data, encoder)


register_row(
    BenchRow(
        name=row_name("geoclip"),
        label=_label("geoclip"),
        table="T2",
        run=_run_geoclip,
        requires=("agclip",),
        uses_gallery=True,
        description="the agclip row: AG-CLIP against GeoCLIP's frozen location encoder",
    ),
)
for encoder in TRAINED_ENCODERS:
    register_row(
        BenchRow(
            name=row_name(encoder),
            label=_label(encoder),
            table="T2",
            run=_run_trained,
            trains=True,
            uses_gallery=True,
            budget=train_budget,
            description=(
                f"AG-CLIP trained against a frozen {LOCATION_ENCODER_LABELS[encoder]} "
                "location encoder (user checkpoint, else pretrained on the synthetic range "
                "model); gallery embedded by that encoder"
            ),
            unavailable=partial(_unavailable, encoder=encoder),
            inputs=partial(_inputs, encoder=encoder),
        ),
    )
    register_row(
        BenchRow(
            name=row_name(encoder, "xcdc"),
            label=_label(encoder),
            table="T3",
            split="xcdc",
            run=_run_on_xcdc,
            requires=(row_name(encoder),),
            uses_gallery=True,
            description=f"the {row_name(encoder)} model on the XCDC dawn choruses",
            unavailable=partial(_xcdc_unavailable, encoder=encoder),
        ),
    )
