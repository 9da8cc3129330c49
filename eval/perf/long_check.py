"""Section k: ``geoforensics check`` of a 2-hour real recording with an AG-CLIP model.

The Seattle soundscape of ``../shared/realaudio`` looped to 2 hours (5 minutes with
``--quick``; generated noise with tone bursts where the recording is absent), 22,050 Hz WAV,
checked as ``check FILE --model DEMO --claimed Seattle --date 2020-03-16 --max-frames 0``
(species on, land-1deg) in fresh processes: the first check of the model on the machine (it
loads the model in torch, and records its exported graph) vs a later check (the recorded graph
in OpenVINO, no torch). The model folder is a fresh copy of the shipped demo model for each
run of the section, so the first check really is the first; every other cache is warm for
both (one unmeasured short check fills them). Figures: times as x real time (target 100x),
peak resident memory (target < 1.5 GB), and whether the two reports agree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from geoforensics.core import cli
from geoforensics.core.paths import assets_dir
from geoforensics.eval.perf.children import register_child, run_child
from geoforensics.eval.perf.fixtures import REAL_AUDIO, audio_file, work_dir
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
)
from geoforensics.eval.perf.memory import peak_rss_mb

#: The real recording looped into the long file.
LONG_RECORDING = "xc563936_seattle_wa_soundscape.mp3"
LONG_SECONDS = 2 * 3600
QUICK_SECONDS = 300
RATE = 22_050


def long_recording(seconds: int) -> tuple[Path, str]:
    """(WAV of ``seconds`` s, what it is): the Seattle soundscape looped, made once."""
    real = REAL_AUDIO / LONG_RECORDING
    if not real.is_file():
        path = audio_file(f"long-check-{seconds}s.wav", seconds, sample_rate=RATE)
        return path, f"{seconds / 60:g} min of generated noise with tone bursts"
    path = work_dir() / f"long-check-seattle-{seconds}s.wav"
    if not path.is_file():
        from geoforensics.core.media.ffmpeg import ffmpeg_exe

        partial = path.with_suffix(".part.wav")
        command = [
            ffmpeg_exe(real), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(real),
            "-t", str(seconds), "-ac", "1", "-ar", str(RATE), str(partial),
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=900)
        partial.replace(path)
    return path, f"{LONG_RECORDING} looped to {seconds / 60:g} min (real birdsong)"


def _argv(clip: Path, model: Path, out: Path) -> list[str]:
    return [
        "check", str(clip), "--model", str(model), "--claimed", "Seattle", "--date",
        "2020-03-16", "--max-frames", "0", "--quiet", "--out", str(out),
    ]  # fmt: skip


@register_child("long_check")
def _child_long_check(params: dict[str, Any]) -> dict[str, Any]:
    """One check as the CLI runs it: its seconds (imports and start included: measured from
    the parent's clock), peak memory, whether torch was imported, and its report's places."""
    import sys

    clip, model, out = Path(params["clip"]), Path(params["model"]), Path(params["out"])
    status = cli.main(_argv(clip, model, out))
    report = json.loads((out / "report.json").read_text())
    audio = report["modalities"]["audio"]
    return {
        "status": status,
        "done": time.time(),
        "peak_mb": peak_rss_mb(),
        "torch": "torch" in sys.modules,
        "runtime": report["models"]["audio"].get("runtime"),
        "verdict": report["verdict"]["label"],
        "top": [audio["top"][0]["latitude"], audio["top"][0]["longitude"]],
        "segments": len(report["timeline"]),
    }


def _fresh_model_copy(folder: Path) -> Path:
    """A copy of the demo model whose config differs by a note: a model never checked here."""
    target = folder / "model"
    shutil.copytree(assets_dir() / "models" / "demo_agclip", target)
    config_path = target / "model.json"
    document = json.loads(config_path.read_text(encoding="utf-8"))
    document["config"]["extra"]["perf_copy"] = time.time_ns()
    config_path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return target


@register_section(
    "k",
    "long_check",
    title="check of a 2-hour real recording with a model: later check (no torch) vs the first",
)
def measure_long_check(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section k (see the module docstring); ``world`` is not used."""
    seconds = QUICK_SECONDS if settings.quick else LONG_SECONDS
    clip, what = long_recording(seconds)
    warmup, _ = long_recording(30)
    with tempfile.TemporaryDirectory(prefix="geoforensics-perf-long-check-") as tmp:
        folder = Path(tmp)
        # fills the shared caches (BirdNET, range totals, place tables, gallery embeddings)
        # with another copy of the model, so that only the model's own path differs below
        run_child("long_check", {"clip": str(warmup), "model": str(_fresh_model_copy(
            folder / "warm")), "out": str(folder / "warm-out")}, timeout=900)  # fmt: skip
        model = _fresh_model_copy(folder)
        runs = {}
        for label in ("first", "later"):
            start = time.time()
            params = {"clip": str(clip), "model": str(model), "out": str(folder / label)}
            result = run_child("long_check", params, timeout=1800)
            runs[label] = (result["done"] - start, result)
    (first_s, first), (later_s, later) = runs["first"], runs["later"]
    first_x, later_x = seconds / first_s, seconds / later_s
    same = first["top"] == later["top"] and first["verdict"] == later["verdict"]
    figures = [
        Figure(
            "k1",
            f"check with --model, a later run (graph, no torch): {what}",
            later_x,
            first_x,
            "x RT",
            higher_is_better=True,
            target=">= 100x real time",
            met=later_x >= 100.0,
            note="baseline: the model's first check (loaded in torch); fresh processes",
        ),
        Figure(
            "k2",
            "check with --model, peak resident memory of the later run",
            later["peak_mb"],
            first["peak_mb"],
            "MB",
            target="< 1536 MB",
            met=later["peak_mb"] < 1536.0,
            note="baseline: the first check's peak",
        ),
    ]
    notes = [
        f"{later_s:.1f} s vs {first_s:.1f} s for {seconds / 60:g} min of audio; torch "
        f"imported: first {first['torch']}, later {later['torch']}; runtimes: "
        f"{first['runtime']!r} / {later['runtime']!r}; verdict {later['verdict']}, "
        f"{later['segments']} timeline points; top AG-CLIP place and verdict "
        + ("the same in both reports" if same else "DIFFER between the reports")
    ]
    return Section("k", section_title("k"), figures, notes)
