"""`geoforensics data info`: summarise an iNatSounds-format root or an XCDC folder/CSV."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any


def register_info(data_subparsers: Any) -> None:
    """Add ``info`` under ``geoforensics data``."""
    parser: argparse.ArgumentParser = data_subparsers.add_parser(
        "info",
        help="summarise a dataset: counts, species, missing locations, duration, dates",
        description=(
            "Summarise an iNatSounds-format root (train/val/test JSON + audio) or, with "
            "--xcdc, an XCDC folder or xcdc_recordings.csv."
        ),
    )
    parser.add_argument("root", help="dataset root folder (or the XCDC CSV with --xcdc)")
    parser.add_argument(
        "--split",
        choices=("train", "val", "test", "all"),
        default="all",
        help="iNatSounds split to summarise (default: every split present)",
    )
    parser.add_argument("--xcdc", action="store_true", help="read ROOT as an XCDC dataset")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run_info)


def run_info(args: argparse.Namespace) -> int:
    """Print the summary of ``args.root``; errors propagate as GeoforensicsError."""
    # The readers' warnings (skipped recordings, unparsed dates) repeat what the summary
    # prints, so they are silenced here.
    readers_logger = logging.getLogger("geoforensics.core.data")
    previous = readers_logger.level
    readers_logger.setLevel(logging.ERROR)
    try:
        summary, text = _summarise(args)
    finally:
        readers_logger.setLevel(previous)
    print(json.dumps(summary, indent=2) if args.json else text)
    return 0


def _summarise(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    if args.xcdc:
        from geoforensics.core.data.xcdc import XCDC

        summary = XCDC(args.root).summary()
        text = _format_xcdc(summary)
    else:
        from geoforensics.core.data.inatsounds import summarize_inatsounds

        splits = None if args.split == "all" else [args.split]
        summary = summarize_inatsounds(args.root, splits, check_audio=True)
        text = _format_inatsounds(summary)
    return summary, text


def _hours(seconds: float) -> str:
    """A duration in the largest fitting unit (s, min, h)."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:,.1f} h"


def _dates(summary: dict[str, Any]) -> str:
    first, last = summary.get("date_min"), summary.get("date_max")
    return f"{first[:10]} .. {last[:10]}" if first and last else "none"


def _format_inatsounds(summary: dict[str, Any]) -> str:
    lines = [f"iNatSounds dataset at {summary['root']}"]
    for split, s in summary["splits"].items():
        lines += [
            f"[{split}] {s['annotation_file']}",
            f"  recordings        {s['n_recordings']:,} of {s['n_entries']:,} entries",
            f"  missing location  {s['n_missing_location']:,} ({s['missing_location_policy']})",
            f"  species           {s['n_species_present']:,} present of "
            f"{s['n_species']:,} categories",
            "  by supercategory  "
            + ", ".join(f"{k or '?'} {v:,}" for k, v in s["recordings_per_supercategory"].items()),
            f"  duration          {_hours(s['total_duration_s'])} "
            f"(mean {s['mean_duration_s'] or 0:.1f} s)",
            f"  dates             {_dates(s)} "
            f"({s['n_missing_date']:,} missing, {s['n_unparsed_date']:,} unparseable)",
        ]
        if "n_missing_audio" in s:
            lines.append(f"  audio files       {s['n_missing_audio']:,} missing")
    if len(summary["splits"]) > 1:
        t = summary["total"]
        lines.append(
            f"[total] {t['n_recordings']:,} recordings, {t['n_missing_location']:,} without "
            f"location, {_hours(t['total_duration_s'])}, dates {_dates(t)}"
        )
    return "\n".join(lines)


def _format_xcdc(s: dict[str, Any]) -> str:
    common = ", ".join(f"{name} ({count})" for name, count in s["most_common_species"])
    return "\n".join(
        [
            f"XCDC dataset {s['csv']}",
            f"  recordings        {s['n_recordings']:,} ({s['n_with_audio']:,} with audio, "
            f"{s['n_without_audio']:,} without)",
            f"  species           {s['n_species']:,} (per recording "
            f"{s['species_per_recording_min']}-{s['species_per_recording_max']}, "
            f"mean {s['species_per_recording_mean'] or 0:.1f})",
            f"  most common       {common or 'none'}",
            f"  recordists        {s['n_recordists']:,}",
            f"  duration          {_hours(s['total_duration_s'])}",
            f"  dates             {_dates(s)} ({s['n_missing_date']:,} unknown)",
        ]
    )
