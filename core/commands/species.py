"""`geoforensics species`: which species are in this recording, and do they belong at a place?

geoforensics species AUDIO [--at PLACE|LAT,LON] [--date YYYY-MM-DD] [--threshold 0.25]
                     [--range-model SPEC] [--unexpected-below 0.03] [--top N] [--json]

BirdNET's audio model (the optional ``birdnet`` extra) names the species heard, with the time
spans and confidence of each detection; with ``--at`` each species' range probability at that
place (in the week of ``--date``; year-round without one) is looked up in a range model and
species the model does not expect there are flagged (:mod:`geoforensics.core.species.evidence`).
Negative coordinates need the ``=`` form: ``--at=-33.92,18.42``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from geoforensics.core.errors import InputError, WeightsNotFoundError

_RANGE_HELP = (
    "range model for --at: birdnet (default), sinr:CHECKPOINT[,NAMES.txt] or world:DIR "
    "(a synthetic world's true ranges)"
)


def _check_birdnet() -> None:
    from geoforensics.core.species import birdnet_files

    if not birdnet_files.birdnet_available():
        raise WeightsNotFoundError(
            f"species needs BirdNET's audio model, which is not installed: "
            f"{birdnet_files.INSTALL_HINT}"
        )


def _print_text(
    evidence: Any, recording: Path, duration_s: float, n_windows: int, info: dict[str, Any]
) -> None:
    from geoforensics.core.species.evidence import format_evidence

    print(
        f"recording: {recording} ({duration_s:.1f} s, {n_windows} BirdNET windows of 3 s); "
        f"detection threshold {evidence.threshold:g}"
    )
    if evidence.place is not None:
        when = "year-round (no date)"
        if info["date"] is not None:
            when = f"{info['date']} -> week {evidence.week}"
        print(
            f"at: {evidence.place.label()}; {when}; range model {evidence.range_model}; "
            f"unexpected below P = {evidence.unexpected_below:g}"
        )
    if not evidence.findings:
        best = info["best"]
        print(
            f"no species detected at confidence >= {evidence.threshold:g} "
            f"(highest: {best[0]} {best[1]:.3f}); lower --threshold to see weaker calls"
        )
        return
    print(format_evidence(evidence))
    shown = len(evidence.findings)
    summary = f"{evidence.n_species_total} species detected"
    if shown < evidence.n_species_total:
        summary += f" ({shown} most confident shown; --top)"
    if evidence.range_model is not None:
        summary += f"; {evidence.n_unexpected} unexpected at the place"
    print(summary)
    if evidence.unmatched:
        print(f"not in the range model (no range check): {', '.join(evidence.unmatched)}")


def run_species(args: argparse.Namespace) -> int:
    """Handler of ``geoforensics species``."""
    from geoforensics.core.commands import parse_date_option
    from geoforensics.core.species.checklists import YEAR_ROUND, date_to_week

    path = Path(args.audio)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    if not (math.isfinite(args.threshold) and 0.0 < args.threshold <= 1.0):
        raise InputError(f"--threshold must lie in (0, 1], got {args.threshold}")
    if args.top is not None and args.top < 1:
        raise InputError(f"--top must be >= 1, got {args.top}")
    when = parse_date_option(args.date)
    place = None
    if args.at is not None:
        from geoforensics.core.geo.gazetteer import resolve_place

        place = resolve_place(args.at)
    _check_birdnet()
    from geoforensics.core.species.birdnet_audio import BirdNETAudio
    from geoforensics.core.species.evidence import evidence_payload, species_evidence

    windows = BirdNETAudio(num_threads=args.threads).windows(path, overlap_s=args.overlap)
    if len(windows) == 0:
        raise InputError(f"{path}: no audio to analyse")
    range_model = None
    if place is not None:
        from geoforensics.core.species.ranges import load_range_model

        range_model = load_range_model(args.range_model)
    week = YEAR_ROUND if when is None else date_to_week(when)
    detections = windows.detections(threshold=args.threshold)
    evidence = species_evidence(
        detections,
        threshold=args.threshold,
        place=place,
        week=week,
        range_model=range_model,
        range_model_name=args.range_model,
        unexpected_below=args.unexpected_below,
        limit=args.top,
    )
    duration = float(windows.end_s.max())
    if args.json:
        payload = evidence_payload(evidence, str(path), duration, len(windows), when)
        print(json.dumps(payload, indent=2))
        return 0
    column = int(windows.probs.max(axis=0).argmax())
    info = {
        "date": None if when is None else when.isoformat(),
        "best": (windows.labels[column][0], float(windows.probs[:, column].max())),
    }
    _print_text(evidence, path, duration, len(windows), info)
    return 0


def register(subparsers: Any) -> None:
    """Add the `species` subcommand."""
    from geoforensics.core.species.detections import DEFAULT_MIN_CONFIDENCE
    from geoforensics.core.species.evidence import UNEXPECTED_BELOW

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "species",
        help="species heard in a recording (BirdNET), and whether they live at a place",
        description=(
            "List the species BirdNET detects in AUDIO with time spans and confidence; with "
            "--at, look up each species' range probability at that place (and week, with "
            "--date) and flag species not expected there. Needs the birdnet extra."
        ),
    )
    parser.add_argument("audio", metavar="AUDIO", help="audio (or video) file to analyse")
    parser.add_argument(
        "--at", metavar="PLACE",
        help="claimed place: LAT,LON (use --at=-33.9,18.4 for negative values), a city "
        "('Paris', 'Paris, US') or a country ('Kenya': its capital); offline gazetteer",
    )  # fmt: skip
    parser.add_argument(
        "--date", metavar="YYYY-MM-DD",
        help="recording date: range probabilities for that week (default: year-round)",
    )  # fmt: skip
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_MIN_CONFIDENCE, metavar="P",
        help=f"lowest BirdNET confidence of a detection (default {DEFAULT_MIN_CONFIDENCE:g})",
    )  # fmt: skip
    parser.add_argument("--range-model", default="birdnet", metavar="SPEC", help=_RANGE_HELP)
    parser.add_argument(
        "--unexpected-below", type=float, default=UNEXPECTED_BELOW, metavar="P",
        help="flag a species whose range probability at the place is below P (default "
        f"{UNEXPECTED_BELOW:g}, BirdNET's own location-filter threshold)",
    )  # fmt: skip
    parser.add_argument(
        "--top", type=int, default=None, metavar="N", help="list only the N most confident"
    )
    parser.add_argument(
        "--overlap", type=float, default=0.0, metavar="S",
        help="overlap of BirdNET's 3 s windows in seconds (default 0)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="BirdNET CPU threads")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(handler=run_species)
