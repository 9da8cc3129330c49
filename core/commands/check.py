"""`geoforensics check`: does a clip's audio belong where its frames, metadata and claim say?

geoforensics check CLIP|FOLDER [--claimed PLACE|LAT,LON] [--date YYYY-MM-DD] [--text TEXT]
                   [--out DIR] [--model MODEL_DIR] [--gallery SPEC] [--top-k K]
                   [--segment-s S] [--frame-every-s S] [--max-frames N] [--clip FOLDER]
                   [--no-species] [--workers N] [--ray [ADDRESS]] [--claims CSV]
                   [--format csv,parquet,geojson,kml] [--json] [--quiet]

Writes OUT/report.json, OUT/report.html (self-contained) and PNG maps; a FOLDER gets one
report folder per media file plus OUT/summary.json, summary.csv and summary.parquet (one row
per clip), the species tables and the GIS exports asked for, skipping clips already checked
with the same options; --workers and --ray spread the clips over processes or a Ray cluster.
The library behind it is :mod:`geoforensics.core.forensics`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geoforensics.core.commands import parse_date_option
from geoforensics.core.errors import InputError

if TYPE_CHECKING:
    from geoforensics.core.forensics import CheckOptions, CheckReport


def options_from_args(args: argparse.Namespace) -> CheckOptions:
    """:class:`CheckOptions` from the parsed command line."""
    from geoforensics.core.forensics import CheckOptions

    if args.claimed is not None and not args.claimed.strip():
        raise InputError("--claimed '': give a place name or LAT,LON (or leave --claimed out)")
    options = CheckOptions(
        model_dir=None if args.model is None else Path(args.model),
        gallery=args.gallery,
        claimed=args.claimed,
        date=parse_date_option(args.date),
        text=args.text,
        top_k=args.top_k,
        segment_s=args.segment_s,
        frame_every_s=args.frame_every_s,
        max_frames=args.max_frames,
        clip_weights=args.clip_weights,
        species=not args.no_species,
        calibration=args.calibration,
    )
    options.validate()
    return options


@contextmanager
def progress_bar(quiet: bool, label: str = "check") -> Iterator[Callable[[float, str], None]]:
    """A ``progress(fraction, message)`` callback drawing a tqdm bar on stderr (a terminal
    only: piped output stays clean)."""
    from tqdm.auto import tqdm

    bar = tqdm(
        total=100,
        disable=quiet or not sys.stderr.isatty(),
        desc=label,
        unit="%",
        leave=False,
        file=sys.stderr,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
    )

    def update(fraction: float, message: str) -> None:
        target = round(100 * max(0.0, min(1.0, fraction)))
        if target > bar.n:
            bar.update(target - bar.n)
        bar.set_postfix_str(message[:60], refresh=True)

    try:
        yield update
    finally:
        bar.close()


def summary_lines(report: CheckReport, written: dict[str, Path] | None = None) -> list[str]:
    """The verdict, the reasons, one line per modality (and its 90 % region) and where the
    report is."""
    from geoforensics.core.forensics.regions_check import region_line

    verdict = report.verdict
    lines = [f"verdict: {verdict.label.upper()}"]
    counted = [r for r in verdict.reasons if not r.startswith("not counted")]
    lines += [f"  - {reason}" for reason in counted]
    if len(counted) < len(verdict.reasons):
        lines.append(
            f"  ({len(verdict.reasons) - len(counted)} more pairs not counted: two estimates of "
            "the same audio track, or a modality that is not evidence; see report.json)"
        )
    lines.append("modalities:")
    for modality in report.modalities.values():
        if modality.available and modality.top:
            best = modality.top[0]
            score = (
                f"P(<{best['radius_km']:g} km) {100 * best['region_probability']:.1f}%"
                if modality.kind == "distribution"
                else "point"
            )
            lines.append(
                f"  {modality.label:<32} {best['latitude']:8.3f} {best['longitude']:9.3f}  "
                f"{score:<20} {best['label']}"
            )
            region = region_line(modality)
            if region is not None:
                lines.append(f"  {'':<32} {region}")
            if not modality.evidence and modality.evidence_note:
                lines.append(f"  {'':<32} NOT EVIDENCE: {modality.evidence_note}")
            elif modality.evidence_note:
                lines.append(f"  {'':<32} note: {modality.evidence_note}")
        else:
            lines.append(f"  {modality.label:<32} unavailable: {modality.reason}")
    if report.species is not None:
        from geoforensics.core.forensics.discrepancy import MODALITY_LABELS

        heard = [h["scientific"] for h in report.species.get("heard", [])]
        threshold = report.species.get("threshold")
        lines.append(
            f"species (BirdNET, detections >= {threshold}): "
            f"{', '.join(heard) if heard else 'none heard'}"
        )
        used = report.species.get("used") or {}
        if used.get("names"):
            lines.append(
                f"  located with (>= {used['min_prob']:g}, weighted by confidence): "
                + ", ".join(used["names"])
            )
        for name, judged in (report.species.get("judgements") or {}).items():
            lines.append(f"  at the {MODALITY_LABELS.get(name, name)}: {judged['summary']}")
    elif report.species_note:
        lines.append(f"species: not run ({report.species_note})")
    if written:
        lines.append(f"report: {written['html']}")
        lines.append(f"        {written['json']}")
    return lines


def _run_clip(path: Path, args: argparse.Namespace, options: CheckOptions) -> int:
    from geoforensics.core.forensics import run_check, write_report
    from geoforensics.core.forensics.report import report_json_text

    out = Path(args.out) if args.out else Path(f"check-{path.stem}")
    with progress_bar(args.quiet) as progress:
        report = run_check(path, options, progress=progress)
        written = write_report(report, out)
    if args.json:
        sys.stdout.write(report_json_text(report))
        return 0
    print("\n".join(summary_lines(report, written)))
    return 0


def _run_folder(folder: Path, args: argparse.Namespace, options: CheckOptions) -> int:
    from geoforensics.core.forensics import check_folder
    from geoforensics.core.forensics.folder import batch_file_names

    out = Path(args.out) if args.out else Path(f"check-{folder.name}")
    with progress_bar(args.quiet, "folder") as progress:
        summary = check_folder(
            folder,
            options,
            out,
            progress,
            workers=args.workers,
            use_ray=args.ray is not None,
            ray_address=args.ray or None,
            formats=args.format,
            claims=args.claims,
        )
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
        return 0
    for entry in summary.entries:
        detail = entry.verdict if entry.error is None else entry.error
        print(f"{entry.status:<8} {entry.clip}  {detail}")
    print(
        f"{len(summary.entries)} clips: {summary.count('done')} checked, "
        f"{summary.count('skipped')} skipped (already checked), {summary.count('failed')} failed"
    )
    print(f"summary: {out / 'summary.json'}")
    tables = [out / name for name in batch_file_names() if (out / name).is_file()]
    if tables:
        print(f"tables:  {', '.join(str(t) for t in tables)}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Handler of ``geoforensics check``."""
    path = Path(args.path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    options = options_from_args(args)
    if not path.is_dir() and (args.workers != 1 or args.ray is not None or args.claims):
        raise InputError(
            f"{path}: --workers, --ray and --claims apply to a FOLDER of clips, not one clip"
        )
    if path.is_dir():
        return _run_folder(path, args, options)
    return _run_clip(path, args, options)


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="check a clip (or a folder of clips): where do audio, frames, text, GPS tag and "
        "claim point, and do they agree?",
        description=(
            "Geolocate a clip's audio (BirdNET species x range model, and AG-CLIP with "
            "--model), keyframes and text hint (CLIP + GeoCLIP), "
            "read its GPS tag, compare them with each other and with the claimed place "
            "(great-circle distances, probability mass within 200/750/2,500 km), give a "
            "verdict (consistent / mismatch / inconclusive) and write OUT/report.json and a "
            "self-contained OUT/report.html. Works offline; without CLIP weights the frames "
            "and text are reported as unavailable with the fix."
        ),
    )
    parser.add_argument("path", metavar="CLIP|FOLDER", help="a video or audio file, or a folder")
    parser.add_argument(
        "--claimed",
        metavar="PLACE|LAT,LON",
        help='the place the clip is claimed to show: a city or country ("Nairobi", '
        '"Paris, US", "Kenya") from the offline gazetteer, or decimal "LAT,LON"',
    )
    parser.add_argument(
        "--date",
        metavar="YYYY-MM-DD",
        help="recording date for the species ranges (default: the container's creation date)",
    )
    parser.add_argument(
        "--text",
        metavar="TEXT",
        help="a text hint to geolocate (default: the container's title/description/comment)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="report folder (default: check-<clip name> or check-<folder name>)",
    )
    parser.add_argument(
        "--model",
        metavar="MODEL_DIR",
        help="AG-CLIP model folder or released .pt checkpoint (default: none; the audio is "
        "located by the species BirdNET hears). A model trained on a SYNTHETIC world (the "
        "demo's) is shown but never decides the verdict on a real clip",
    )
    parser.add_argument(
        "--gallery",
        default="land-1deg",
        metavar="SPEC",
        help="candidate locations: land-1deg (default), land-0.5deg, grid-1deg, geoclip-100k, "
        "file:PATH",
    )
    parser.add_argument(
        "--top-k", type=int, default=5, metavar="K", help="places listed per modality (default 5)"
    )
    parser.add_argument(
        "--segment-s",
        type=float,
        default=10.0,
        metavar="S",
        help="length of the timeline's audio segments (default 10 s)",
    )
    parser.add_argument(
        "--frame-every-s",
        type=float,
        default=5.0,
        metavar="S",
        help="a keyframe at least every S seconds (default 5)",
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        default=12,
        metavar="N",
        help="at most N keyframes (default 12; 0: no frames)",
    )
    parser.add_argument(
        "--clip",
        "--clip-weights",
        dest="clip_weights",
        metavar="FOLDER",
        help="CLIP ViT-L/14 folder (default: $GEOFORENSICS_CLIP or the Hugging Face cache)",
    )
    parser.add_argument("--no-species", action="store_true", help="skip BirdNET species evidence")
    parser.add_argument(
        "--calibration",
        metavar="FILE",
        help="species-range calibration file (geoforensics calibrate --species) for the audio "
        "species modality's regions; the AG-CLIP model's own calibration.json is read from "
        "--model",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="FOLDER: check N clips at a time in N processes, each loading the models once "
        "(default 1)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="FOLDER: run the clips as Ray tasks, on the cluster at ADDRESS (HOST:6379 or "
        "ray://HOST:10001; clips and --out on storage every node sees) or, without ADDRESS, on "
        "a local Ray instance with --workers CPUs; needs geoforensics[cluster]",
    )
    parser.add_argument(
        "--claims",
        metavar="CSV",
        help="FOLDER: per-clip claims, a CSV with a 'file' column (path under FOLDER or bare "
        "name) and 'claimed' (place or LAT,LON) or 'latitude'/'longitude', optional 'date' "
        "(YYYY-MM-DD) and 'text'; empty cells keep --claimed/--date/--text",
    )
    parser.add_argument(
        "--format",
        default="csv,parquet",
        metavar="LIST",
        help="FOLDER: batch tables and GIS exports to write, any of csv,parquet,geojson,kml "
        "(default csv,parquet: summary.csv and summary.parquet; geojson: places.geojson and "
        "regions.geojson; kml: batch.kml). species.csv and the Raven table species.selections.txt "
        "are always written when BirdNET ran",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print report.json (folder: summary.json) on standard output",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)
