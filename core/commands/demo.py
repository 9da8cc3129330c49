"""`geoforensics demo`: `check` the shipped SYNTHETIC demo clip against a false claim, offline."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run `geoforensics check` on the shipped SYNTHETIC demo clip (offline)",
        description=(
            "Check the shipped SYNTHETIC demo clip (assets/demo/demo_clip.mp4: a synthetic "
            "soundscape with drawn frames, a GPS tag at its true place and the title 'Dawn "
            "chorus, Nairobi') against the claim 'Nairobi' with the shipped demo AG-CLIP "
            "checkpoint. Writes OUT/report.json and OUT/report.html and prints the verdict."
        ),
    )
    parser.add_argument("--out", default="demo-out", metavar="DIR", help="default: demo-out")
    parser.add_argument(
        "--clip", "--clip-weights", dest="clip_weights", metavar="FOLDER",
        help="CLIP ViT-L/14 folder for the frames and text (default: $GEOFORENSICS_CLIP or "
        "the Hugging Face cache; without it they are reported as unavailable)",
    )  # fmt: skip
    parser.add_argument("--no-species", action="store_true", help="skip BirdNET species evidence")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``geoforensics demo``."""
    from geoforensics.core.commands.check import progress_bar, summary_lines
    from geoforensics.core.demo import DEMO_CLAIM, demo_clip_path, run_demo
    from geoforensics.core.forensics import default_model_dir

    with progress_bar(args.quiet, "demo") as progress:
        result = run_demo(args.out, progress, args.clip_weights, species=not args.no_species)
    truth = result.truth
    print(
        f"SYNTHETIC demo: geoforensics check {demo_clip_path()} --claimed {DEMO_CLAIM} "
        f"--model {default_model_dir()}\n"
        f"  (true place of the audio: {truth['latitude']:.4f}, {truth['longitude']:.4f}; "
        "the clip's GPS tag says so, its title claims Nairobi)"
    )
    print("\n".join(summary_lines(result.report, result.written)))
    error = result.audio_error_km
    if error is not None:
        print(f"audio top place vs the true place: {error:,.0f} km")
    print("open the app: geoforensics app")
    return 0
