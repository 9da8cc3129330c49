"""Make the shipped demo soundscape: one SYNTHETIC recording of the tiny world (seed 0).

Run ``python -m geoforensics.assets.demo.make_demo`` to regenerate ``demo_soundscape.ogg`` and
its ground truth ``demo_soundscape.json`` beside this file. The clip is the longest
multi-species test recording of the tiny world, so the demo is reproducible from the generator.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from geoforensics.core.fileio import atomic_path, atomic_write
from geoforensics.core.synth import SAMPLE_RATE, build_world, render_recording

HERE = Path(__file__).resolve().parent
CLIP_SECONDS = 20.0


def make_demo(out_dir: Path = HERE, seed: int = 0) -> Path:
    """Write the demo clip and its ground truth into ``out_dir``; returns the clip path."""
    world = build_world("tiny", seed=seed)
    candidates = [p for p in world.split("test") if p.duration >= CLIP_SECONDS]
    plan = max(candidates, key=lambda p: (len(p.voices), p.duration, -p.index))
    audio = render_recording(plan, [s.call for s in world.species], seed)
    audio = audio[: int(CLIP_SECONDS * SAMPLE_RATE)]
    clip = out_dir / "demo_soundscape.ogg"
    with atomic_path(clip) as tmp:
        sf.write(tmp, audio.astype(np.float32), SAMPLE_RATE, format="OGG", subtype="VORBIS")
    names = [world.species[v.species].scientific_name for v in plan.voices]
    truth = {
        "synthetic": True,
        "note": "SYNTHETIC recording from `geoforensics data synth --preset tiny --seed 0`",
        "world": {"preset": "tiny", "seed": seed, "split": plan.split, "audio_id": plan.audio_id},
        "latitude": plan.latitude,
        "longitude": plan.longitude,
        "local_time": plan.local_time.isoformat(),
        "week": plan.week,
        "focal_species": names[0],
        "background_species": names[1:],
        "duration_s": CLIP_SECONDS,
    }
    with atomic_write(out_dir / "demo_soundscape.json") as fh:
        json.dump(truth, fh, indent=2)
        fh.write("\n")
    return clip


if __name__ == "__main__":
    print(make_demo())
