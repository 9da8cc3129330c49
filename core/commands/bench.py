"""`geoforensics bench` (run the benchmark's rows, write the paper's tables and figures) and
`geoforensics score` (score a prediction CSV in the public benchmark's format).

geoforensics bench --data DIR [--preset tiny|small|paper] [--seeds N] [--rows a,b,c]
                   [--out DIR] [--gallery SPEC[,SPEC...]] [--xcdc DIR]
                   [--range-model SPEC] [--model DIR]
                   [--sinr-checkpoint PATH] [--satclip-checkpoint PATH] [--list-rows] [--quiet]
geoforensics bench --xcdc DIR ...   (XCDC alone: the rows that need no training)
geoforensics score CSV --data DIR [--split test|val|train|xcdc] [--json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from geoforensics.core.errors import InputError


def _list_rows() -> int:
    from geoforensics.eval.rows import WEIGHTS_CHECKS, builtin_rows
    from geoforensics.eval.tables import TABLES

    for row in builtin_rows().values():
        where = TABLES[row.table].title.split(":")[0]
        column = f" [{row.column}]" if row.column else ""
        trains = " (trains a model)" if row.trains else ""
        trains += " (runs on XCDC alone)" if row.xcdc_only else ""
        print(f"{row.name:<26} {where:<16} {row.label}{column}{trains}")
        check = WEIGHTS_CHECKS.get(row.name)
        reason = check() if check is not None else None
        if reason is not None:
            print(f"{'':<26} {'':<16} UNAVAILABLE: {reason}")
    return 0


def _percent(value: float) -> str:
    return f"{100 * value:5.1f}%"


def run_bench_command(args: argparse.Namespace) -> int:
    """Handler of ``geoforensics bench``."""
    if args.list_rows:
        return _list_rows()
    if not args.data and not args.xcdc:
        raise InputError(
            "bench: --data DIR is required (an iNatSounds-format data set), or --xcdc DIR "
            "for the rows that run on XCDC alone"
        )
    from geoforensics.eval.bench import run_bench

    report = run_bench(
        args.data,
        preset=args.preset,
        seeds=args.seeds,
        rows=args.rows,
        out=args.out,
        gallery=args.gallery,
        xcdc=args.xcdc,
        progress=not args.quiet,
        range_model=args.range_model,
        model=args.model,
        location_encoder_checkpoints={
            name: path
            for name, path in (("sinr", args.sinr_checkpoint), ("satclip", args.satclip_checkpoint))
            if path
        },
    )
    print(
        f"\nbench finished in {report.seconds:.1f} s: {len(report.ran)} row runs computed, "
        f"{len(report.reused)} reused, {len(report.failed)} failed (seeds "
        f"{', '.join(map(str, report.seeds))})"
    )
    if report.included:
        print(f"  also in the reports (finished earlier): {', '.join(report.included)}")
    for name, summary in report.summary.items():
        print(
            f"  {name:<24} median {summary['median_km']['mean']:>8,.0f} km  "
            f"acc@25km {_percent(summary['acc@25km']['mean'])}  "
            f"acc@200km {_percent(summary['acc@200km']['mean'])}  "
            f"acc@2500km {_percent(summary['acc@2500km']['mean'])}"
        )
    for name, reason in report.skipped.items():
        print(f"  skipped {name}: {reason}")
    for (name, seed), message in report.failed.items():
        print(f"  FAILED {name} seed {seed}: {message}")
    for key, path in sorted(report.files.items()):
        if not key.startswith("predictions/"):
            print(f"  {key}: {path}")
    print(f"  predictions: {report.out_dir / 'predictions'}")
    return 1 if report.failed else 0


def run_score_command(args: argparse.Namespace) -> int:
    """Handler of ``geoforensics score``."""
    from geoforensics.eval.predictions_csv import score_predictions_csv
    from geoforensics.eval.results import metrics_json

    score = score_predictions_csv(args.csv, args.data, args.split)
    metrics = score.metrics
    if args.json:
        print(json.dumps({"csv": str(score.csv), "truth": score.truth, **metrics_json(metrics)}))
        return 0
    print(f"{score.csv} against {score.truth} ({metrics.count:,} recordings)")
    print(f"  median error {metrics.median_km:,.1f} km, mean {metrics.mean_km:,.1f} km")
    for threshold, value in metrics.accuracy.items():
        print(f"  within {threshold:>6,.0f} km: {_percent(value)}")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``bench`` and ``score`` subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="run the benchmark rows over seeds and write the paper's tables and figures",
        description=(
            "Run the chosen benchmark rows for seeds 0..N-1 (finished rows are reused), then "
            "write OUT/tables.md, OUT/results.json, OUT/cdf.png, OUT/error_map.png and "
            "OUT/predictions/<row>.csv. Presets set the training budget of rows that train: "
            "tiny (seconds, test_tiny encoder), small (CPU, mobilenet_v3_small_128, a few "
            "epochs), paper (the paper's settings)."
        ),
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="iNatSounds-format data set (test.json ...), or an XCDC folder alone "
        "(xcdc_recordings.csv: only the rows that need no training run)",
    )
    parser.add_argument(
        "--preset", default="tiny", choices=("tiny", "small", "paper"), help="default: tiny"
    )
    parser.add_argument(
        "--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1 (default 1)"
    )
    parser.add_argument(
        "--rows", metavar="A,B,C", help="rows to run (default: all; see --list-rows)"
    )
    parser.add_argument("--out", metavar="DIR", help="output folder (default: bench-PRESET)")
    parser.add_argument(
        "--gallery",
        metavar="SPEC[,SPEC...]",
        help="retrieval gallery, the union of the specs: train, val, land-1deg, land-0.5deg, "
        "grid-1deg, geoclip-100k, file:PATH (default: train; land-1deg on XCDC alone)",
    )
    parser.add_argument(
        "--xcdc",
        metavar="DIR",
        help="XCDC folder for the Table 3 rows (default: DATA/xcdc, or DATA itself)",
    )
    parser.add_argument(
        "--range-model",
        metavar="SPEC",
        help="range model of the species rows: birdnet, sinr:PATH[,NAMES.txt] or world:DIR "
        "(default: the synthetic world's own, else BirdNET's when installed)",
    )
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="a trained or imported model folder (model.json + weights) for the model-xcdc row",
    )
    parser.add_argument(
        "--sinr-checkpoint",
        metavar="PATH",
        help="SINR checkpoint (public ResidualFCNet sin_cos layout) for the Table 2 SINR rows "
        "(default: a SINR pretrained on the synthetic world's range model)",
    )
    parser.add_argument(
        "--satclip-checkpoint",
        metavar="PATH",
        help="SatCLIP checkpoint for the Table 2 SatCLIP rows (default: a SatCLIP-style encoder "
        "pretrained on the synthetic world's range model)",
    )
    parser.add_argument("--list-rows", action="store_true", help="list the rows and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run_bench_command)

    score = subparsers.add_parser(
        "score",
        help="score a prediction CSV (audio_id,latitude,longitude) against a data set",
        description=(
            "Score a prediction CSV in the public benchmark's format (header "
            "audio_id,latitude,longitude; one row per recording; audio_id is the audio file's "
            "base name, or the XCDC audio_id) against a local data set."
        ),
    )
    score.add_argument("csv", metavar="CSV", help="the predictions")
    score.add_argument("--data", required=True, metavar="DIR", help="the data set's root")
    score.add_argument(
        "--split", default="test", choices=("test", "val", "train", "xcdc"), help="default: test"
    )
    score.add_argument("--json", action="store_true", help="print the metrics as JSON")
    score.set_defaults(handler=run_score_command)
