"""`geoforensics train`: train a geolocation model from a YAML config.

geoforensics train CONFIG.yaml [--out DIR] [--data ROOT] [--resume] [--max-epochs N] [--devices N]
                   [--num-nodes N] [--strategy auto|ddp] [--accelerator auto|cpu|gpu]
                   [--no-progress]
"""

from __future__ import annotations

import argparse
from typing import Any


def _format_metrics(metrics: dict[str, float] | None) -> str:
    if not metrics:
        return "n/a"
    return (
        f"median {metrics['median_km']:.0f} km, acc@25km {100 * metrics['acc@25km']:.1f}%, "
        f"acc@200km {100 * metrics['acc@200km']:.1f}%, "
        f"acc@2500km {100 * metrics['acc@2500km']:.1f}%"
    )


def _train(args: argparse.Namespace) -> int:
    from geoforensics.train.config import load_config, with_overrides
    from geoforensics.train.runner import train

    config = with_overrides(
        load_config(args.config),
        out=args.out,
        data_root=args.data,
        max_epochs=args.max_epochs,
        devices=args.devices,
        strategy=args.strategy,
        accelerator=args.accelerator,
        num_nodes=args.num_nodes,
    )
    summary = train(config, resume=args.resume, progress=not args.no_progress)
    if summary is None:  # a DDP worker process: process 0 reports
        return 0
    label = "SYNTHETIC data: " if summary.get("synthetic_data") else ""
    print(
        f"{label}{config.method} trained for {summary['epochs_trained']} epochs "
        f"in {summary['wall_time_s']:.0f} s; best epoch {summary['best_epoch']}"
    )
    print(f"  val  (best epoch): {_format_metrics(summary['val'])}")
    if config.eval.test:
        print(f"  test (best model): {_format_metrics(summary['test'])}")
    print(f"  model: {summary['model_dir']}")
    print(f"  summary: {config.out / 'summary.json'}")
    return 0


def register(subparsers: Any) -> None:
    """Add the `train` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train AG-CLIP or a baseline from a YAML config",
        description=(
            "Train a geolocation model (agclip, regression_mse, regression_haversine, "
            "classification) on an iNatSounds-format dataset, following a YAML config (see "
            "the examples in geoforensics/assets/configs). Keeps the best checkpoint by "
            "validation median error, exports it as OUT/model/ and writes OUT/summary.json."
        ),
    )
    parser.add_argument("config", metavar="CONFIG.yaml", help="training config file")
    parser.add_argument("--out", metavar="DIR", help="run folder (default: the config's 'out')")
    parser.add_argument(
        "--data", metavar="ROOT", help="dataset root (default: the config's 'data.root')"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt"
    )
    parser.add_argument("--max-epochs", type=int, metavar="N", help="override optim.max_epochs")
    parser.add_argument("--devices", type=int, metavar="N", help="override train.devices")
    parser.add_argument(
        "--num-nodes",
        type=int,
        metavar="N",
        help="override train.num_nodes: machines taking part (with --strategy ddp; start the "
        "same command on each with MASTER_ADDR, MASTER_PORT and NODE_RANK set)",
    )
    parser.add_argument(
        "--strategy",
        choices=("auto", "ddp"),
        help="override train.strategy (ddp: one process per device; on CPU with the gloo backend)",
    )
    parser.add_argument(
        "--accelerator", choices=("auto", "cpu", "gpu"), help="override train.accelerator"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_train)
