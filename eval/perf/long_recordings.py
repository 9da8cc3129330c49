"""Section c: long recordings (30 min, 1 h, 2 h): peak memory flat, time linear.

Each length is located in a fresh subprocess, as ``geoforensics locate --method agclip`` runs
(AG-CLIP ``mobilenet_v3_large`` with random weights, the default land-1deg gallery, an 8 kHz
FLAC streamed in batches of windows): peak resident memory (VmHWM), peak private memory
(RssAnon sampled every 20 ms) and time. The longest is compared with the shortest: a ratio
near 1 means memory does not grow with the recording and time grows linearly.

Modules that load torch (``core.models``) are imported inside the functions: the measurement
subprocesses import this package (see :mod:`.fixtures`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.fileio import save_npy_atomic
from geoforensics.core.geo.gallery import build_gallery
from geoforensics.eval.perf.children import register_child, run_child
from geoforensics.eval.perf.fixtures import audio_file, random_agclip, retrieval_index, work_dir
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
)
from geoforensics.eval.perf.memory import AnonPeak, peak_rss_mb, rss_mb


@register_child("long")
def _child_long(params: dict[str, Any]) -> dict[str, Any]:
    """Locate one long file as ``geoforensics locate`` does (land-1deg gallery) with the large
    random model; RSS after loading, peak RSS and peak private memory over the whole process."""
    from geoforensics.core.models.inference import locate_recording

    sampler = AnonPeak()
    model = random_agclip(params["encoder"])
    index = retrieval_index(np.load(params["gallery"]))
    locate_recording(model, params["warmup"], index)  # ONNX session, lazy imports
    ready_rss, ready_peak = rss_mb(), peak_rss_mb()
    start = time.perf_counter()
    prediction = locate_recording(model, params["path"], index)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "windows": len(prediction.windows),
        "gallery_size": len(index),
        "ready_rss_mb": ready_rss,
        "ready_peak_mb": ready_peak,
        "peak_mb": peak_rss_mb(),
        "peak_private_mb": sampler.stop(),
    }


def _duration_label(seconds: float) -> str:
    """``5400`` -> ``"1.5 h"``, ``120`` -> ``"2 min"``, ``9`` -> ``"9 s"``."""
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


@register_section("c", "long_recordings", title="long recordings: peak memory flat, time linear")
def measure_long(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section c: peak RSS and time for 30 min, 1 h, 2 h of audio, each in a fresh process;
    ``world`` is not used."""
    from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings  # loads torch

    gallery = build_gallery("land-1deg")  # the coordinates, as a server holds them
    cached_gallery_embeddings(gallery, progress=False)  # embedded once, here
    coords_file = work_dir() / "land-1deg-coords.npy"
    save_npy_atomic(coords_file, np.asarray(gallery.coords, dtype=np.float64))
    results = []
    warmup = audio_file("long-warmup-10s.flac", 10.0, sample_rate=8000, fmt="FLAC")
    for seconds in settings.long_s:
        path = audio_file(f"long-{seconds:g}s.flac", seconds, sample_rate=8000, fmt="FLAC")
        params = {
            "encoder": "mobilenet_v3_large",
            "path": str(path),
            "warmup": str(warmup),
            "gallery": str(coords_file),
        }
        results.append((seconds, run_child("long", params)))
    first_s, first = results[0]
    last_s, last = results[-1]
    scale = last_s / first_s
    label = _duration_label(last_s)
    figures = [
        Figure(
            "c1",
            f"peak RSS, {label} of audio (baseline: {_duration_label(first_s)})",
            last["peak_mb"],
            first["peak_mb"],
            "MB",
            target="< 1536 MB",
            met=last["peak_mb"] < 1536.0,
            note="ratio ~1 = memory flat",
        ),
        Figure(
            "c2",
            f"peak private memory, {label} (baseline: {_duration_label(first_s)})",
            last["peak_private_mb"],
            first["peak_private_mb"],
            "MB",
            note="RssAnon, without shared library pages",
        ),
        Figure(
            "c3",
            f"time, {label} vs {scale:g} x {_duration_label(first_s)}",
            last["seconds"],
            first["seconds"] * scale,
            "s",
            note="ratio ~1 = time linear",
        ),
    ]
    notes = [
        "each length in a fresh process, as `geoforensics locate --method agclip` runs: "
        "AG-CLIP mobilenet_v3_large (random weights) + its default land-1deg gallery "
        f"({last['gallery_size']:,} places, faiss), locate_recording on an 8 kHz FLAC (streamed, "
        "resampled to 22,050 Hz, batches of 32 windows); peak RSS = VmHWM of that process "
        "(Python, torch's shared libraries, ONNX Runtime and the gallery included); private = "
        "peak anonymous memory (RssAnon, sampled every 20 ms: no shared library pages)",
    ]
    for seconds, result in results:
        notes.append(
            f"{_duration_label(seconds)}: {result['seconds']:.1f} s "
            f"({seconds / result['seconds']:.0f}x RT, {result['windows']} windows), peak RSS "
            f"{result['peak_mb']:.0f} MB (after loading and one warm-up call: "
            f"{result['ready_peak_mb']:.0f} MB), peak private {result['peak_private_mb']:.0f} MB"
        )
    return Section("c", section_title("c"), figures, notes)
