"""`geoforensics data synth`: write a seeded SYNTHETIC soundscape world in the real formats."""

from __future__ import annotations

import argparse
from typing import Any

_PRESET_NAMES = ("tiny", "small", "medium")


def register_synth(data_subparsers: Any) -> None:
    """Add the `synth` subcommand under `geoforensics data`."""
    parser: argparse.ArgumentParser = data_subparsers.add_parser(
        "synth",
        help="generate a SYNTHETIC iNatSounds/XCDC-format world with its true range model",
        description=(
            "Generate a seeded synthetic natural-sound world (species with procedural calls, "
            "ranges on real land, seasonal presence, place-dependent ambience) written in the "
            "iNatSounds 2024 and XCDC formats, with the ground truth and the true range model "
            "under OUT/world/. The same seed gives byte-identical files."
        ),
    )
    parser.add_argument(
        "--preset",
        choices=_PRESET_NAMES,
        default="tiny",
        help="tiny: 30 species, 300 recordings (seconds); small: 180 species, 5,000 "
        "recordings; medium: 500 species, 50,000 recordings (default: tiny)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (empty)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes rendering audio (default: 1)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty folder (a previous synthetic world there is replaced)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(handler=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    """Handler of `geoforensics data synth`."""
    from geoforensics.core.errors import InputError
    from geoforensics.core.synth import generate_world

    if args.seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    report = generate_world(
        args.out,
        preset=args.preset,
        seed=args.seed,
        workers=args.workers,
        force=args.force,
        progress=not args.quiet,
    )
    if not args.quiet:
        stats = report.statistics
        splits = stats["recordings_by_split"]
        print(
            f"SYNTHETIC world '{report.preset}' (seed {report.seed}) written to {report.out_dir}\n"
            f"  species: {stats['species']}  recordings: train {splits['train']}, "
            f"val {splits['val']}, test {splits['test']}, xcdc {splits['xcdc']}\n"
            f"  audio: {report.audio_seconds / 3600:.2f} h in {report.wall_seconds:.1f} s "
            f"({report.realtime_factor:.0f}x real time)\n"
            f"  test recordings with a train recording within 25 km: "
            f"{stats['test_with_train_within_25km']:.0%}"
        )
    return 0
