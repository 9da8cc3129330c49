"""`geoforensics pooling`: learned pooling of an AG-CLIP model's window outputs (Table A2).

geoforensics pooling train MODEL_DIR --data DIR [--out FILE.safetensors] [--epochs N] [--seed S]
                           [--gallery SPEC] [--batch-size N] [--lr LR] [--no-progress]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from geoforensics.core.commands import help_handler

DEFAULT_OUT_NAME = "transformer_pooling.safetensors"


def _km(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} km"


def _train(args: argparse.Namespace) -> int:
    from geoforensics.core.data import INatSounds
    from geoforensics.core.errors import InputError
    from geoforensics.core.models import load_model
    from geoforensics.core.models.geolocator import model_files
    from geoforensics.train.pooling import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_EPOCHS,
        DEFAULT_LR,
        save_transformer_pooling,
        train_transformer_pooling,
    )
    from geoforensics.train.tasks.agclip import gallery_coords

    weights, _ = model_files(args.model_dir)
    out = Path(args.out) if args.out else weights.parent / DEFAULT_OUT_NAME
    if out.suffix != ".safetensors":
        raise InputError(f"--out {out}: give a file name ending in .safetensors")
    if args.epochs is not None and args.epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {args.epochs}")
    model = load_model(args.model_dir)
    if model.kind != "agclip":
        raise InputError(
            f"{args.model_dir}: a {model.kind!r} model; transformer pooling needs an AG-CLIP model"
        )
    train_split = INatSounds(args.data, "train")
    val_split = INatSounds(args.data, "val")
    specs = [s.strip() for s in args.gallery.split(",") if s.strip()]
    gallery = gallery_coords(specs, train_split.coords())
    pooler, info = train_transformer_pooling(
        model,
        train_split,
        val_split,
        gallery,
        epochs=DEFAULT_EPOCHS if args.epochs is None else args.epochs,
        batch_size=DEFAULT_BATCH_SIZE if args.batch_size is None else args.batch_size,
        lr=DEFAULT_LR if args.lr is None else args.lr,
        seed=args.seed,
        progress=not args.no_progress,
    )
    info.update(
        {
            "model_dir": str(weights.parent.resolve()),
            "data": str(train_split.root),
            "gallery": "+".join(specs),
        }
    )
    path = save_transformer_pooling(pooler, out, info)
    synthetic = (train_split.root / "world" / "world.json").is_file()
    label = "SYNTHETIC data: " if synthetic else ""
    print(
        f"{label}transformer pooling trained on {info['train_recordings']} recordings for "
        f"{info['epochs']} epochs in {info['seconds']:.0f} s; best epoch {info['best_epoch']}"
    )
    print(
        f"  val median ({info['val_recordings']} recordings, gallery {'+'.join(specs)} of "
        f"{info['gallery_size']} locations): mean pooling {_km(info['val_median_km_mean'])}, "
        f"transformer before training {_km(info['val_median_km_before'])}, after "
        f"{_km(info['val_median_km'])}"
    )
    print(f"  pooler: {path} (+ {path.with_suffix('.json').name})")
    return 0


def register(subparsers: Any) -> None:
    """Add the `pooling` subcommand with its `train` action."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pooling",
        help="learned pooling of an AG-CLIP model's window outputs (transformer, Table A2)",
        description=(
            "Learned pooling over a recording's windows: a small transformer over a frozen "
            "AG-CLIP model's window features, trained with AG-CLIP's contrastive loss."
        ),
    )
    actions = parser.add_subparsers(dest="pooling_action", metavar="ACTION")
    parser.set_defaults(handler=help_handler(parser))

    train = actions.add_parser(
        "train",
        help="train a transformer pooler for a trained AG-CLIP model",
        description=(
            "Train a transformer pooler (sequences of up to 32 windows, 6 layers, 8 heads, "
            "width 128) on the frozen window features of the AG-CLIP model in MODEL_DIR, using "
            "the train split of an iNatSounds-format data set; keeps the epoch with the lowest "
            "validation median error and prints it next to plain mean pooling."
        ),
    )
    train.add_argument("model_dir", metavar="MODEL_DIR", help="trained AG-CLIP model folder")
    train.add_argument(
        "--data", required=True, metavar="DIR", help="iNatSounds-format data (train/val splits)"
    )
    train.add_argument(
        "--out",
        metavar="FILE.safetensors",
        help=f"where to save the pooler (default: MODEL_DIR/{DEFAULT_OUT_NAME}, + .json)",
    )
    train.add_argument("--epochs", type=int, metavar="N", help="training epochs (default 20)")
    train.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    train.add_argument(
        "--gallery",
        default="train",
        metavar="SPEC",
        help=(
            "validation retrieval gallery: train (the train locations), land-1deg, "
            "file:PATH ... or several joined by commas (default: train)"
        ),
    )
    train.add_argument("--batch-size", type=int, metavar="N", help="recordings per step (64)")
    train.add_argument("--lr", type=float, metavar="LR", help="AdamW learning rate (3e-4)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(handler=_train)
