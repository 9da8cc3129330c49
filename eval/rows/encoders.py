"""Paper Table 2a: AG-CLIP with other audio encoders (rows under table ``T2a``).

``encoder-mobilenet``
    the ``agclip`` row's result under this table (its MobileNetV3; iNatSounds-pretrained when
    the training config sets ``model.pretrained``).

``encoder-clap``
    AG-CLIP's head trained (preset budget, as the ``agclip`` row) on LAION CLAP's frozen audio
    embeddings of each 3 s window (encoder ``clap``: 48 kHz, repeat-padded to CLAP's 10 s
    input, CLAP's own mel front-end). Weights: ``$GEOFORENSICS_CLAP`` or the Hugging Face cache.
``encoder-wav2clip``
    the same on Wav2CLIP's frozen embeddings (encoder ``wav2clip``: 16 kHz, ResNet-18 + MLP).
    Weights: ``$GEOFORENSICS_WAV2CLIP`` or torch's hub cache (``Wav2CLIP.pt``).
``encoder-imagenet``
    AG-CLIP with ``mobilenet_v3_large`` initialised from torchvision's ImageNet weights and
    fine-tuned (the paper's encoder and front-end; the preset's budget). Weights:
    ``$GEOFORENSICS_IMAGENET_MOBILENET`` or torch's hub cache.

The iNatSounds-pretrained MobileNetV3 of Table 2a is the ``agclip`` row given iNatSounds
weights (``model.pretrained``). CLAP and Wav2CLIP are frozen here (features computed once and
cached, only the head trains): fine-tuning them is not wired into training, which feeds
spectrogram images to trainable encoders. Each row is unavailable without its weights and
says which command provides them (:data:`WEIGHTS_CHECKS`, used by ``bench --list-rows``); the
weights' SHA-256 is part of the resume check.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from geoforensics.core.errors import WeightsNotFoundError
from geoforensics.core.fileio import atomic_write
from geoforensics.core.models.clap import find_clap_weights
from geoforensics.core.models.imagenet import find_imagenet_mobilenet
from geoforensics.core.models.taxabind import file_sha256
from geoforensics.core.models.wav2clip import find_wav2clip_weights
from geoforensics.eval.presets import train_budget
from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import BenchData, BenchRow, RowContext, register_row
from geoforensics.eval.rows.training import predict_with_model, train_row_model, training_extra

#: Row -> (label, how to make it available).
ENCODER_ROWS: dict[str, tuple[str, str]] = {
    "encoder-clap": (
        "AG-CLIP, CLAP (LAION) audio encoder, frozen",
        "geoforensics weights download clap  (needs internet; or export GEOFORENSICS_CLAP=FOLDER)",
    ),
    "encoder-wav2clip": (
        "AG-CLIP, Wav2CLIP audio encoder, frozen",
        "export GEOFORENSICS_WAV2CLIP=FILE  (Wav2CLIP.pt from the lyrebird-wav2clip v0.1.0-alpha "
        "release)",
    ),
    "encoder-imagenet": (
        "AG-CLIP, MobileNetV3 (ImageNet-pretrained)",
        "geoforensics weights download imagenet-mobilenet  (needs internet; or export "
        "GEOFORENSICS_IMAGENET_MOBILENET=FILE)",
    ),
}


def _weights_file(row: str) -> Path:
    """The weights file a row depends on (raises WeightsNotFoundError when absent)."""
    if row == "encoder-clap":
        return find_clap_weights() / "model.safetensors"
    if row == "encoder-wav2clip":
        return find_wav2clip_weights()
    return find_imagenet_mobilenet()


def _unavailable(data: BenchData | None = None, row: str = "") -> str | None:
    try:
        _weights_file(row)
    except WeightsNotFoundError:
        return f"no weights; run: {ENCODER_ROWS[row][1]}"
    return None


#: Rows whose availability depends only on installed weights (``bench --list-rows``).
WEIGHTS_CHECKS: dict[str, Callable[[], str | None]] = {
    name: partial(_unavailable, None, name) for name in ENCODER_ROWS
}


def _inputs(data: BenchData, row: str) -> dict[str, Any] | None:
    try:
        path = _weights_file(row)
    except WeightsNotFoundError:
        return None
    return {"weights_sha256": file_sha256(path)}


def _overrides(row: str) -> dict[str, Any]:
    if row == "encoder-clap":
        return {"encoder": "clap"}
    if row == "encoder-wav2clip":
        return {"encoder": "wav2clip"}
    return {"encoder": "mobilenet_v3_large", "pretrained": str(_weights_file(row))}


def _forget_run_of_other_weights(context: RowContext, weights: Path) -> None:
    """Delete the row's training run when it was made with other weights at the same path
    (the training stamp records the path only), then record these weights' SHA-256."""
    stamp = context.work_dir / "encoder_weights.json"
    digest = file_sha256(weights)
    recorded = None
    if stamp.is_file():
        try:
            recorded = json.loads(stamp.read_text(encoding="utf-8")).get("sha256")
        except (OSError, ValueError, AttributeError):
            recorded = None
    if recorded != digest:
        shutil.rmtree(context.work_dir / "run", ignore_errors=True)
        context.work_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(stamp) as fh:
            json.dump({"weights": str(weights), "sha256": digest}, fh)


def _run_encoder(context: RowContext) -> RowResult:
    """Train AG-CLIP with the row's audio encoder and retrieve from the bench gallery."""
    name = context.row.name
    overrides = _overrides(name)
    _forget_run_of_other_weights(context, _weights_file(name))
    model_dir = train_row_model(context, "agclip", None, overrides)
    data = context.data
    predictions, embeddings = predict_with_model(context, model_dir, data.split("test"))
    extra = training_extra(
        model_dir,
        encoder=overrides["encoder"],
        weights=str(_weights_file(name)),
        frozen=name != "encoder-imagenet",
    )
    arrays = {} if embeddings is None else {"embeddings": embeddings}
    return context.make_result(predictions, extra, arrays)


def _run_agclip_encoder(context: RowContext) -> RowResult:
    """``encoder-mobilenet``: the ``agclip`` row's result under Table 2a."""
    parent = context.result("agclip")
    extra = {"encoder": "agclip row", "model_dir": parent.extra.get("model_dir")}
    return context.make_result(parent.predictions, extra, dict(parent.arrays))


register_row(
    BenchRow(
        name="encoder-mobilenet",
        label="AG-CLIP, MobileNetV3 (the agclip row)",
        table="T2a",
        run=_run_agclip_encoder,
        requires=("agclip",),
        uses_gallery=True,
        description="the agclip row: AG-CLIP with its MobileNetV3 audio encoder (Table 2a)",
    ),
)
for name, (label, _fix) in ENCODER_ROWS.items():
    register_row(
        BenchRow(
            name=name,
            label=label,
            table="T2a",
            run=_run_encoder,
            trains=True,
            uses_gallery=True,
            budget=train_budget,
            description=f"{label}: AG-CLIP trained with the preset's budget (Table 2a)",
            unavailable=partial(_unavailable, row=name),
            inputs=partial(_inputs, row=name),
        ),
    )
