"""`geoforensics audio`: inspect how a media file will be decoded and cut into model inputs."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from geoforensics.core.commands import help_handler
from geoforensics.core.errors import InputError


def register(subparsers: Any) -> None:
    """Add the `audio` subcommand (with its `info` action)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "audio",
        help="inspect audio: decoding, windows, spectrograms",
        description="Inspect how a media file is decoded and cut into model inputs.",
    )
    actions = parser.add_subparsers(dest="audio_action", metavar="ACTION")
    info = actions.add_parser(
        "info",
        help="sample rate, channels, duration, windows and model input shape of a file",
        description=(
            "Print a media file's native sample rate, channels and duration, and how many "
            "model windows it gives under a front-end preset. Any audio or video file "
            "ffmpeg can read is accepted."
        ),
    )
    info.add_argument("file", type=Path, help="audio or video file")
    info.add_argument(
        "--frontend",
        default="paper",
        metavar="NAME",
        help="front-end preset: paper (default) or reference",
    )
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument(
        "--png", type=Path, metavar="OUT.png", help="also write the log-mel spectrogram image"
    )
    info.add_argument(
        "--png-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="length of audio drawn in the PNG, from the start (default 60)",
    )
    info.set_defaults(handler=_info)
    parser.set_defaults(handler=help_handler(parser))


def _info(args: argparse.Namespace) -> int:
    from geoforensics.core.audio import (
        count_windows,
        get_frontend_config,
        probe_audio,
        stream_audio,
    )

    config = get_frontend_config(args.frontend)
    if args.png is not None and not (math.isfinite(args.png_seconds) and args.png_seconds > 0):
        raise InputError(f"--png-seconds must be a positive number, got {args.png_seconds}")
    info = probe_audio(args.file)
    duration = info.duration_s
    duration_source = "header"
    if duration is None:
        # the container does not say: decode once (streaming) and count
        samples = sum(chunk.size for chunk in stream_audio(args.file, config.sample_rate))
        duration = samples / config.sample_rate
        duration_source = "decoded"
    n_windows = count_windows(duration, config)
    report: dict[str, Any] = {
        **info.to_dict(),
        "duration_s": duration,
        "duration_source": duration_source,
        "frontend": config.name,
        "model_sample_rate": config.sample_rate,
        "window_s": config.window_samples / config.sample_rate,
        "stride_s": config.stride_samples / config.sample_rate,
        "n_windows": n_windows,
        "input_shape": [n_windows, *config.input_shape],
    }
    if args.png is not None:
        from geoforensics.core.audio.plots import save_spectrogram_png

        save_spectrogram_png(args.file, args.png, config, args.png_seconds)
        report["png"] = str(args.png)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_as_text(report))
    return 0


def _as_text(report: dict[str, Any]) -> str:
    fmt = " / ".join(str(report[key]) for key in ("container", "codec") if report.get(key))
    shape = " x ".join(str(n) for n in report["input_shape"])
    rows = [
        ("file", report["path"]),
        ("format", fmt or "unknown"),
        ("sample rate", f"{report['sample_rate']} Hz"),
        ("channels", str(report["channels"])),
        ("duration", f"{report['duration_s']:.3f} s ({report['duration_source']})"),
        (
            "front-end",
            f"{report['frontend']}: {report['model_sample_rate']} Hz mono, "
            f"{report['window_s']:.3f} s windows every {report['stride_s']:.3f} s",
        ),
        ("windows", str(report["n_windows"])),
        ("model input", shape),
    ]
    if "png" in report:
        rows.append(("spectrogram", report["png"]))
    return "\n".join(f"{name:<12} {value}" for name, value in rows)
