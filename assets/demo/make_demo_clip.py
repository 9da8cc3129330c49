"""Make the shipped demo video ``demo_clip.mp4``: SYNTHETIC audio + drawn frames + a false claim.

Run ``python -m geoforensics.assets.demo.make_demo_clip`` to regenerate it beside this file.

- audio: the tiny synthetic world's demo soundscape (``demo_soundscape.ogg``, 20 s, made by
  :mod:`.make_demo`; its true place and date are in ``demo_soundscape.json``);
- frames: four pictures drawn here (a "SYNTHETIC DEMO" title card, two simple synthetic
  landscapes, a closing card), each held for a few seconds, H.264 at 480x272;
- container metadata: GPS tag = the recording's true place, creation time = its local date
  and time (the synthetic world has no time zones; written as UTC), title
  ``"Dawn chorus, Nairobi"`` (a claim that does not match the audio), and a comment saying
  that the clip is SYNTHETIC.

``geoforensics demo`` checks this clip with ``--claimed Nairobi``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CLIP_NAME = "demo_clip.mp4"
WIDTH, HEIGHT = 480, 272
TITLE = "Dawn chorus, Nairobi"
COMMENT = "SYNTHETIC demo clip made by geoforensics (assets/demo/make_demo_clip.py)"
#: (seconds on screen, scene) of the video, 20 s in all like the audio.
SCENES: tuple[tuple[int, str], ...] = (
    (4, "title"),
    (6, "dawn"),
    (6, "lake"),
    (4, "end"),
)


def _font(size: int) -> object:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    t = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
    colours = (1 - t) * np.array(top, dtype=np.float64) + t * np.array(bottom, dtype=np.float64)
    return np.repeat(colours, WIDTH, axis=1).astype(np.uint8)


def _card(lines: list[tuple[str, int, tuple[int, int, int]]]) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.fromarray(_gradient((18, 24, 38), (40, 52, 80)))
    draw = ImageDraw.Draw(image)
    y = 60
    for text, size, colour in lines:
        font = _font(size)
        box = draw.textbbox((0, 0), text, font=font)  # type: ignore[arg-type]
        draw.text(((WIDTH - (box[2] - box[0])) / 2, y), text, fill=colour, font=font)  # type: ignore[arg-type]
        y += (box[3] - box[1]) + 18
    return np.asarray(image)


def _landscape(kind: str, seed: int) -> np.ndarray:
    """A simple drawn landscape: sky gradient, sun, layered hills, trees or a lake."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    sky = (
        ((250, 180, 120), (255, 230, 190)) if kind == "dawn" else ((120, 170, 230), (210, 230, 245))
    )
    image = Image.fromarray(_gradient(*sky))
    draw = ImageDraw.Draw(image)
    sun = (WIDTH * 0.72, HEIGHT * 0.32) if kind == "dawn" else (WIDTH * 0.2, HEIGHT * 0.18)
    draw.ellipse([sun[0] - 26, sun[1] - 26, sun[0] + 26, sun[1] + 26], fill=(255, 240, 170))
    x = np.arange(0, WIDTH + 8, 8)
    layers = [((92, 120, 90), 0.55), ((60, 95, 62), 0.68), ((38, 70, 44), 0.8)]
    for depth, (colour, base) in enumerate(layers):
        phase, amp = rng.uniform(0, 2 * np.pi), 10 + 8 * depth
        y = HEIGHT * base + amp * np.sin(x / (60 + 20 * depth) + phase)
        draw.polygon(
            [(0, HEIGHT), *zip(x.tolist(), y.tolist(), strict=True), (WIDTH, HEIGHT)], fill=colour
        )
    if kind == "lake":
        draw.rectangle([0, HEIGHT * 0.82, WIDTH, HEIGHT], fill=(70, 120, 170))
        for i in range(6):
            y0 = HEIGHT * 0.85 + i * 6
            draw.line([(40 + 60 * i, y0), (90 + 60 * i, y0)], fill=(150, 190, 220), width=2)
    for tx in rng.uniform(10, WIDTH - 10, 14 if kind == "dawn" else 8):
        ty = HEIGHT * (0.83 if kind == "dawn" else 0.8) + rng.uniform(-6, 6)
        height = rng.uniform(26, 44)
        draw.polygon([(tx - 9, ty), (tx + 9, ty), (tx, ty - height)], fill=(24, 48, 30))
    draw.text((8, 6), "SYNTHETIC DEMO", fill=(255, 255, 255), font=_font(16))  # type: ignore[arg-type]
    return np.asarray(image)


def demo_frames() -> list[np.ndarray]:
    """The video's pictures at 1 frame per second (each scene repeated for its length)."""
    scenes = {
        "title": _card(
            [
                ("SYNTHETIC DEMO", 40, (255, 210, 80)),
                ("geoforensics check", 22, (235, 235, 235)),
                (f"“{TITLE}”", 20, (200, 215, 235)),
            ]
        ),
        "dawn": _landscape("dawn", 1),
        "lake": _landscape("lake", 2),
        "end": _card(
            [
                ("SYNTHETIC DEMO", 40, (255, 210, 80)),
                ("audio: a synthetic soundscape", 18, (235, 235, 235)),
                ("frames: drawn by make_demo_clip.py", 18, (235, 235, 235)),
            ]
        ),
    }
    frames: list[np.ndarray] = []
    for seconds, name in SCENES:
        frames += [scenes[name]] * seconds
    return frames


def make_demo_clip(out_dir: Path = HERE) -> Path:
    """Write ``demo_clip.mp4`` into ``out_dir`` (atomically); returns its path."""
    from geoforensics.core.audio import load_audio
    from geoforensics.core.media import make_test_video

    truth = json.loads((HERE / "demo_soundscape.json").read_text())
    rate = 22_050
    audio = load_audio(HERE / "demo_soundscape.ogg", sample_rate=rate)
    when = datetime.fromisoformat(truth["local_time"])
    return make_test_video(
        out_dir / CLIP_NAME,
        audio=np.asarray(audio, dtype=np.float32),
        sample_rate=rate,
        frames=demo_frames(),
        fps=1.0,
        gps=(float(truth["latitude"]), float(truth["longitude"])),
        creation_time=when,
        tags={"title": TITLE, "comment": COMMENT},
    )


if __name__ == "__main__":
    print(make_demo_clip())
