#!/usr/bin/env python3
"""Write tiny seeded test media: a tagged MP4 with scene changes, a silent MP4, audio-only files.

Run it to write the files into a folder (nothing is committed; tests call :func:`write_media`
into a temporary folder)::

    .venv/bin/python tests/data/media/data.py OUT_DIR

Files (see the constants for what each holds):

* ``clip.mp4``: 8 s, 2 fps, 96x64 H.264 + mono AAC at 22,050 Hz; three colour scenes that
  switch at 3 s and 6 s; GPS, creation time, title and comment tags.
* ``silent.mp4``: 3 s, 1 fps, 63x47 pictures (padded to 64x48 by the writer), no audio track.
* ``audio_only.mp4``: 2 s of AAC, no video track.
* ``sound.ogg``: 2 s mono Vorbis with a title comment; ``sound.wav``: 2 s stereo 16-bit PCM.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import soundfile as sf

from geoforensics.core.media import make_test_video

SEED = 6709
SAMPLE_RATE = 22_050
CLIP_FPS = 2.0
CLIP_SIZE = (64, 96)  # (height, width)
#: (start_s, RGB colour) of each scene of clip.mp4; it ends at CLIP_SECONDS.
SCENES: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (20, 30, 110)),  # dark blue
    (3.0, (235, 215, 60)),  # bright yellow
    (6.0, (30, 110, 40)),  # dark green
)
CLIP_SECONDS = 8.0
GPS = (-33.8568, 151.2153)
CREATION_TIME = datetime(2023, 10, 14, 6, 30, 15, tzinfo=UTC)
TAGS = {"title": "Dawn chorus by the harbour", "comment": "geoforensics test clip"}
SILENT_SIZE = (47, 63)  # odd on purpose
OGG_TITLE = "Frogs after rain"


def clip_audio(seconds: float = CLIP_SECONDS, seed: int = SEED) -> np.ndarray:
    """Mono float32: two gliding tones with a slow tremolo and a little seeded noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    glide = 2 * np.pi * (1200.0 * t + 150.0 * t**2)
    tone = 0.25 * np.sin(glide) + 0.12 * np.sin(2 * np.pi * 3100.0 * t)
    tremolo = 0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)
    noise = 0.01 * rng.standard_normal(t.size)
    return (tone * tremolo + noise).astype(np.float32)


def scene_colour(time_s: float) -> tuple[int, int, int]:
    """The colour clip.mp4 shows at ``time_s``."""
    colour = SCENES[0][1]
    for start, scene in SCENES:
        if time_s >= start:
            colour = scene
    return colour


def clip_frames(seed: int = SEED) -> list[np.ndarray]:
    """The pictures of clip.mp4: each scene's colour plus one fixed seeded texture (+-8)."""
    rng = np.random.default_rng(seed)
    height, width = CLIP_SIZE
    texture = rng.integers(-8, 9, size=(height, width, 1))
    frames = []
    for index in range(round(CLIP_SECONDS * CLIP_FPS)):
        colour = np.array(scene_colour(index / CLIP_FPS), dtype=np.int64)
        frames.append(np.clip(colour + texture, 0, 255).astype(np.uint8))
    return frames


def write_media(root: Path) -> dict[str, Path]:
    """Write every file into ``root``; returns {name: path}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["clip"] = make_test_video(
        root / "clip.mp4",
        audio=clip_audio(),
        sample_rate=SAMPLE_RATE,
        frames=clip_frames(),
        fps=CLIP_FPS,
        gps=GPS,
        creation_time=CREATION_TIME,
        tags=TAGS,
    )
    grey = np.full((*SILENT_SIZE, 3), 128, dtype=np.uint8)
    files["silent"] = make_test_video(
        root / "silent.mp4", audio=None, sample_rate=SAMPLE_RATE, frames=[grey] * 3, fps=1.0
    )
    short = clip_audio(2.0, seed=SEED + 1)
    files["audio_only"] = make_test_video(
        root / "audio_only.mp4", audio=short, sample_rate=SAMPLE_RATE, frames=[]
    )
    files["ogg"] = root / "sound.ogg"
    with sf.SoundFile(
        str(files["ogg"]), "w", SAMPLE_RATE, 1, format="OGG", subtype="VORBIS"
    ) as handle:
        handle.title = OGG_TITLE
        handle.write(short)
    files["wav"] = root / "sound.wav"
    stereo = np.stack([short, 0.5 * short], axis=1)
    sf.write(str(files["wav"]), stereo, SAMPLE_RATE, subtype="PCM_16")
    return files


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: data.py OUT_DIR")
    for name, path in write_media(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
