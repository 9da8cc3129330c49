"""Bench presets: the training budgets of the rows that train a model.

:data:`PRESETS` is the one place they are defined; rows that need no training ignore them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geoforensics.core.errors import InputError


@dataclass(frozen=True)
class BenchPreset:
    """A training budget for the rows that train a model.

    ``train`` holds overrides of the training config's sections (``model``, ``optim``,
    ``train``, ``data``; see :mod:`geoforensics.train.config`), merged over the paper's
    defaults. ``error_map_res`` is the H3 resolution of the error map.
    """

    name: str
    description: str
    train: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    oracle_epochs: int = 200
    error_map_res: int = 1
    #: Epochs of the transformer pooler of Table A2 (over frozen AG-CLIP window features).
    pooling_epochs: int = 50


#: The bench presets. ``tiny``: under a minute per trained row on the tiny synthetic world (the
#: ``test_tiny`` encoder, 10 epochs of 4 random windows per recording, as
#: ``assets/configs/agclip.yaml``): enough for AG-CLIP to beat the naive row clearly.
#: ``small``: a CPU-sized encoder (MobileNetV3-small at 128 × 128 inputs, BatchNorm momentum
#: 0.1), 8 epochs of 3 random windows per recording (about 1,100 SGD steps: with 1 window and 5
#: epochs, 230 steps, BatchNorm statistics had not settled and AG-CLIP stayed near naive),
#: validated after epochs 4 and 8 only (a dense validation pass costs about 40 s here).
#: Sized for one seed of the whole bench on the ``small`` world on 2 CPU cores within 90
#: minutes; the measured time per trained row is in the README. ``paper``:
#: the paper's settings (MobileNetV3-large, batch 128, 50 epochs, warm-up 5, early stopping
#: patience 10) - a GPU job.
PRESETS: dict[str, BenchPreset] = {
    p.name: p
    for p in (
        BenchPreset(
            name="tiny",
            description="tiny world: test_tiny encoder, 10 epochs x 4 windows, batch 32",
            train={
                "model": {"encoder": "test_tiny"},
                "optim": {"batch_size": 32, "max_epochs": 10, "warmup_epochs": 1.0},
                "train": {"patience": 10, "eval_batch_size": 64, "windows_per_recording": 4},
            },
            oracle_epochs=10,
            pooling_epochs=5,
            error_map_res=1,
        ),
        BenchPreset(
            name="small",
            description=(
                "CPU: mobilenet_v3_small_128, 8 epochs x 3 windows, batch 64, validation "
                "every 4 epochs"
            ),
            train={
                "model": {"encoder": "mobilenet_v3_small_128"},
                "optim": {"batch_size": 64, "max_epochs": 8, "warmup_epochs": 1.0},
                "train": {
                    "patience": 2,
                    "eval_batch_size": 128,
                    "windows_per_recording": 3,
                    "check_val_every_n_epoch": 4,
                },
            },
            oracle_epochs=60,
            pooling_epochs=20,
            error_map_res=1,
        ),
        BenchPreset(
            name="paper",
            description="paper: mobilenet_v3_large, batch 128, 50 epochs (GPU)",
            train={},
            error_map_res=2,
            pooling_epochs=50,
        ),
    )
}


def get_preset(preset: str | BenchPreset) -> BenchPreset:
    """A preset by name (or the preset itself)."""
    if isinstance(preset, BenchPreset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise InputError(
            f"unknown bench preset {preset!r}; choose one of {', '.join(PRESETS)}"
        ) from None


def eval_batch_size(preset: BenchPreset) -> int:
    """The inference batch size of the preset's training budget (default 64)."""
    return int(preset.train.get("train", {}).get("eval_batch_size", 64))


def train_budget(preset: BenchPreset) -> dict[str, Any]:
    """A trained row's budget: the preset's training sections (part of the resume check)."""
    return {name: dict(section) for name, section in preset.train.items()}
