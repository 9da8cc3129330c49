"""Section i: ``geoforensics check`` of a 10 s clip of real birdsong.

A 10 s MP4 of the Seattle soundscape of ``../shared/realaudio`` (else the shipped SYNTHETIC
demo clip) claimed to be Sydney: the first run on a machine (empty cache folder) vs a later
run, both fresh processes timed from outside as a user sees them (target < 6 s); warm calls in
a process that already checked a clip, as the app and folder checks run (target < 1 s); and
the peak resident memory (target < 1 GB). It measures what a user waits for, start-up and
imports included, so the check runs in a subprocess (:mod:`.children`).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core import cli
from geoforensics.core.audio import load_audio
from geoforensics.core.forensics.check_options import CheckOptions
from geoforensics.core.forensics.report import write_report
from geoforensics.core.media import make_test_video
from geoforensics.core.paths import assets_dir
from geoforensics.eval.perf.children import register_child, run_child
from geoforensics.eval.perf.fixtures import REAL_AUDIO, work_dir
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
)
from geoforensics.eval.perf.memory import peak_rss_mb

#: The real recording section i checks (from ``../shared/realaudio`` beside the checkout).
CHECK_RECORDING = "xc563936_seattle_wa_soundscape.mp3"


def check_clip(seconds: float = 10.0) -> tuple[Path, dict[str, str], str]:
    """(clip, claim, what it is): a ``seconds`` MP4 of the Seattle soundscape titled and
    claimed "Sydney" (``claim``: check's ``claimed`` and ``date``) when ``../shared/realaudio``
    is beside the checkout, else the shipped SYNTHETIC demo clip with no claim (as the demo
    runs it)."""
    real = REAL_AUDIO / CHECK_RECORDING
    if real.is_file():
        clip = work_dir() / f"check-seattle-{seconds:g}s.mp4"
        if not clip.is_file():
            audio = load_audio(real, sample_rate=48_000, duration_s=seconds)
            frames = [np.full((64, 96, 3), 60 + 20 * i, np.uint8) for i in range(4)]
            title = {"title": "Morning birds, Sydney"}
            make_test_video(clip, audio=audio, sample_rate=48_000, frames=frames,
                            fps=len(frames) / seconds, tags=title)  # fmt: skip
        claim = {"claimed": "Sydney", "date": "2020-03-16"}
        return clip, claim, f"{seconds:g} s of {CHECK_RECORDING} (real), claimed Sydney"
    clip = assets_dir() / "demo" / "demo_clip.mp4"
    return clip, {}, "the shipped SYNTHETIC demo clip (no real recording here)"


def check_argv(clip: Path, claim: dict[str, str]) -> list[str]:
    """``geoforensics check`` arguments for ``clip`` and its ``claim`` (check_clip's)."""
    flags = [part for name, value in claim.items() for part in (f"--{name}", value)]
    return ["check", str(clip), *flags]


def check_options(claim: dict[str, str]) -> CheckOptions:
    """The :class:`CheckOptions` that :func:`check_argv`'s command line runs with (every other
    option at its default, which ``geoforensics check`` takes from :class:`CheckOptions`)."""
    date = claim.get("date")
    options = CheckOptions(
        claimed=claim.get("claimed"), date=None if date is None else dt.date.fromisoformat(date)
    )
    options.validate()
    return options


@register_child("check")
def _child_check(params: dict[str, Any]) -> dict[str, Any]:
    """``geoforensics check`` as the CLI runs it, then ``warm`` more checks of the same clip in
    this process, as the app and folder checks run them (analysis and report writing timed
    apart; each report into its own folder): when the first ended (epoch seconds), the warm
    seconds, and the process's peak resident memory."""
    clip, claim = Path(params["clip"]), dict(params["claim"])
    out = Path(params["out"])
    status = cli.main([*check_argv(clip, claim), "--out", str(out / "run0"), "--quiet"])
    first_done = time.time()
    # loaded by the check above; imported here so that importing this package (every perf
    # child does) loads no model library: section j's batch parent must stay small
    from geoforensics.core.forensics.pipeline import run_check

    options = check_options(claim)
    analysis, writing = [], []
    for i in range(int(params.get("warm", 0))):
        start = time.perf_counter()
        report = run_check(clip, options)
        middle = time.perf_counter()
        write_report(report, out / f"run{i + 1}")
        analysis.append(middle - start)
        writing.append(time.perf_counter() - middle)
    verdict = json.loads((out / "run0" / "report.json").read_text())["verdict"]["label"]
    return {"status": status, "first_done": first_done, "analysis_s": analysis,
            "writing_s": writing, "peak_mb": peak_rss_mb(), "verdict": verdict}  # fmt: skip


@register_section(
    "i",
    "check",
    title="check of a 10 s clip of real birdsong: a later CLI run vs the first, warm vs cold",
)
def measure_check(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section i: the first check on a machine (empty cache) vs a later one, both fresh
    processes timed from the outside as a user sees them; warm calls; peak memory; ``world``
    is not used."""
    clip, claim, what = check_clip(10.0)
    warm_repeats = 1 if settings.quick else 3
    with tempfile.TemporaryDirectory(prefix="geoforensics-perf-check-") as tmp:
        env = {"GEOFORENSICS_CACHE": str(Path(tmp) / "cache")}
        runs = []
        for label, warm in (("first", 0), ("later", warm_repeats)):
            start = time.time()
            params = {"clip": str(clip), "claim": claim, "out": str(Path(tmp) / label),
                      "warm": warm}  # fmt: skip
            result = run_child("check", params, env=env)
            runs.append((result["first_done"] - start, result))
    (first_s, first), (later_s, later) = runs
    analysis_s = statistics.median(later["analysis_s"])
    total_s = analysis_s + statistics.median(later["writing_s"])
    repeats = len(later["analysis_s"])
    figures = [
        Figure(
            "i1",
            f"check, a later run (fresh process, caches filled): {what}",
            later_s,
            first_s,
            "s",
            target="< 6 s",
            met=later_s < 6.0,
            note="baseline: the first run on a machine, empty cache folder",
        ),
        Figure(
            "i2",
            "check, warm analysis (models loaded in the process, as the app)",
            analysis_s,
            later_s,
            "s",
            target="< 1 s",
            met=analysis_s < 1.0,
            note=f"median of {repeats}; baseline: the later cold run",
        ),
        Figure(
            "i3",
            "check, warm analysis + report (JSON, HTML, PNG maps), as a folder check",
            total_s,
            later_s,
            "s",
            target="< 1 s",
            met=total_s < 1.0,
            note=f"median of {repeats}; baseline: the later cold run",
        ),
        Figure(
            "i4",
            "check, peak resident memory of the process",
            later["peak_mb"],
            first["peak_mb"],
            "MB",
            target="< 1 GB",
            met=later["peak_mb"] < 1024.0,
            note="baseline: the first run's peak",
        ),
    ]
    notes = [
        f"verdict {later['verdict']}; times include the Python start and imports; the cache "
        "of the first run holds the BirdNET two-output model, the slim city table, the "
        "effort prior and the week's range totals"
    ]
    return Section("i", section_title("i"), figures, notes)
