"""Section j: ``geoforensics check FOLDER`` with ``--workers 2`` vs ``--workers 1``.

48 clips of 10 s cut from the real recordings of ``../shared/realaudio`` (else copies of the
shipped SYNTHETIC demo clip), each command in a fresh process with the caches filled first:
clips per minute (target > 1.3x of one worker on 2 cores), the peak resident memory of each
worker process, and whether both give the same summary table.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from geoforensics.core import cli
from geoforensics.core.audio import load_audio
from geoforensics.core.paths import assets_dir
from geoforensics.eval.perf.children import register_child, run_child
from geoforensics.eval.perf.fixtures import REAL_AUDIO
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
)
from geoforensics.eval.perf.memory import descendants, peak_rss_mb, status_mb


def batch_folder(n_clips: int, seconds: float, folder: Path) -> str:
    """``n_clips`` WAV clips of ``seconds`` cut from the real recordings in
    ``../shared/realaudio`` (in turn, at successive offsets) when they are beside the checkout,
    else copies of the shipped SYNTHETIC demo clip; what the folder holds."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in REAL_AUDIO.glob("*") if p.suffix.lower() in (".mp3", ".wav"))
    if not sources:
        for i in range(n_clips):
            shutil.copy(assets_dir() / "demo" / "demo_clip.mp4", folder / f"clip{i:03d}.mp4")
        return f"{n_clips} copies of the SYNTHETIC demo clip (no real recordings here)"
    decoded = [load_audio(source, sample_rate=48_000) for source in sources]  # once each
    for i in range(n_clips):
        audio = decoded[i % len(sources)]
        start = int((i // len(sources)) * seconds * 48_000) % max(1, audio.size)
        cut = np.resize(np.roll(audio, -start), int(seconds * 48_000))  # short ones loop
        sf.write(folder / f"clip{i:03d}.wav", cut, 48_000)
    return f"{n_clips} clips of {seconds:g} s cut from the {len(sources)} real recordings"


@register_child("batch")
def _child_batch(params: dict[str, Any]) -> dict[str, Any]:
    """``geoforensics check FOLDER --workers N`` as the CLI runs it, timed in this process;
    the peak resident memory of each worker process (sampled every 50 ms) and of this one."""
    peaks: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            for pid in descendants(os.getpid()):
                peaks[pid] = max(peaks.get(pid, 0.0), status_mb("VmRSS", pid) or 0.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    status = cli.main(list(params["argv"]))
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    summary = json.loads((Path(params["out"]) / "summary.json").read_text())
    return {"status": status, "seconds": seconds, "done": summary["done"],
            "failed": summary["failed"], "worker_peak_mb": sorted(peaks.values()),
            "main_peak_mb": peak_rss_mb()}  # fmt: skip


@register_section(
    "j",
    "batch",
    title="batch check of a folder: clips per minute with 2 worker processes vs 1",
)
def measure_batch(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section j: ``check FOLDER`` with ``--workers 2`` vs ``--workers 1`` in the same run,
    fresh processes, caches filled first; clips per minute and memory per worker; ``world``
    is not used."""
    n_clips = 4 if settings.quick else 48
    with tempfile.TemporaryDirectory(prefix="geoforensics-perf-batch-") as tmp:
        clips = Path(tmp) / "clips"
        what = batch_folder(n_clips, 10.0, clips)
        base = ["check", str(clips), "--quiet", "--format", "csv,parquet"]
        warm = Path(tmp) / "warm"
        warm_clips = Path(tmp) / "warm-clips"
        warm_clips.mkdir()
        first = sorted(clips.iterdir())[0]
        (warm_clips / first.name).symlink_to(first)
        run_child("batch", {"argv": ["check", str(warm_clips), "--quiet", "--out", str(warm)],
                            "out": str(warm)})  # fmt: skip
        results, tables = {}, {}
        for workers in (1, 2):
            out = Path(tmp) / f"out{workers}"
            argv = [*base, "--out", str(out), "--workers", str(workers)]
            results[workers] = run_child("batch", {"argv": argv, "out": str(out)})
            tables[workers] = (out / "summary.csv").read_bytes()
    one, two = results[1], results[2]
    per_min = {w: 60.0 * n_clips / r["seconds"] for w, r in results.items()}
    worker_peak = max(two["worker_peak_mb"]) if two["worker_peak_mb"] else float("nan")
    figures = [
        Figure(
            "j1",
            f"check FOLDER --workers 2: {what}",
            per_min[2],
            per_min[1],
            "clips/min",
            higher_is_better=True,
            target="> 1.3x of --workers 1 on 2 cores",
            met=per_min[2] > 1.3 * per_min[1],
            note="baseline: --workers 1 (one process); wall time of the whole command",
        ),
        Figure(
            "j2",
            "check FOLDER --workers 2: peak resident memory per worker process",
            worker_peak,
            one["main_peak_mb"],
            "MB",
            note="baseline: the one process of --workers 1 (models + analysis)",
        ),
    ]
    notes = [
        f"--workers 1: {one['seconds']:.1f} s, --workers 2: {two['seconds']:.1f} s for "
        f"{n_clips} clips ({two['done']} checked, {two['failed']} failed); the main process "
        f"of --workers 2 peaked at {two['main_peak_mb']:.0f} MB; the two summary.csv are "
        + ("identical" if tables[1] == tables[2] else "DIFFERENT"),
    ]
    return Section("j", section_title("j"), figures, notes)
