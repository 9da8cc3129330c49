"""`geoforensics perf`: speed and memory figures beside same-run baselines (eval/perf/).

geoforensics perf [--only a,b,...|NAME,...] [--quick] [--json] [--out FILE.json] [--world DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _run(args: argparse.Namespace) -> int:
    # here, not at the top: the CLI imports every command module to register it
    from geoforensics.core.errors import InputError
    from geoforensics.core.fileio import atomic_write
    from geoforensics.eval.perf import format_report, parse_only, run_perf

    letters = parse_only(args.only)
    world = Path(args.world) if args.world else None
    if world is not None and not (world / "world" / "world.json").is_file():
        raise InputError(f"{world}: not a synthetic world (no world/world.json)")
    command = "geoforensics perf" + "".join(
        part
        for part in (
            f" --only {','.join(letters)}" if args.only else "",
            " --quick" if args.quick else "",
        )
    )
    report = run_perf(
        letters, quick=args.quick, world=world, progress=not args.no_progress, command=command
    )
    document = report.to_dict()
    if args.out:
        with atomic_write(args.out) as fh:
            json.dump(document, fh, indent=2)
    if args.json:
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        print(format_report(report))
        if args.out:
            print(f"\nJSON: {args.out}")
    return 0


def register(subparsers: Any) -> None:
    """Add the `perf` subcommand."""
    parser = subparsers.add_parser(
        "perf",
        help="measure speed and memory beside same-run baselines (ratios, targets)",
        description=(
            "Sections: a) one clip end to end vs GeoCLIP's predict, b) audio throughput, "
            "c) 30 min / 1 h / 2 h recordings (memory, time), d) faiss vs torch top-k, "
            "e) range tables batched vs per call, f) training samples/s cached vs decoding, "
            "g) accuracy of the fast path vs plain torch, h) species range evidence, "
            "i) check of a 10 s clip (first run, later run, warm, memory), j) check FOLDER "
            "with 2 workers vs 1, k) check of a 2-hour recording with a model (a later "
            "check without torch vs the model's first). The full run takes about 8 min on 2 "
            "quiet cores (15-20 min under load) and needs ~4 GB of "
            "free memory (section d holds a 1M x 512 gallery and a 250 x 1M score block)."
        ),
    )
    parser.add_argument(
        "--only",
        help="comma-separated sections to run, by letter or name, e.g. a,d or clip,topk "
        "(default all)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a fast look, tests)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", help="also write the JSON report to this file")
    parser.add_argument(
        "--world", help="a synthetic world for e/f/g (default: the tiny world, made once)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(handler=_run)
