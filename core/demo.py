"""The foundation demo: every piece of the pipeline run once on shipped and generated data.

``geoforensics demo`` calls :func:`run_demo`. It decodes the shipped SYNTHETIC demo clip into
model inputs, generates the tiny synthetic world and reads it back through the iNatSounds and
XCDC readers, embeds a land gallery in the GeoCLIP location space (cached on disk), checks that
the location space retrieves the clip's true place, and scores the naive baseline on the tiny
world's test split. Until trained models land, this is the product's end-to-end smoke run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_write
from .paths import assets_dir

DEMO_CLIP = "demo/demo_soundscape.ogg"
DEMO_TRUTH = "demo/demo_soundscape.json"
DEMO_GALLERY = "land-1deg"
DEMO_SEED = 0


@dataclass
class DemoReport:
    """What the demo found; ``as_dict`` is what ``report.json`` holds."""

    out_dir: Path
    clip: dict[str, Any] = field(default_factory=dict)
    world: dict[str, Any] = field(default_factory=dict)
    gallery: dict[str, Any] = field(default_factory=dict)
    location_space: dict[str, Any] = field(default_factory=dict)
    naive_baseline: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "synthetic": True,
            "note": "SYNTHETIC data: the demo clip and world come from geoforensics' generator",
            "clip": self.clip,
            "world": self.world,
            "gallery": self.gallery,
            "location_space": self.location_space,
            "naive_baseline": self.naive_baseline,
        }


def _demo_clip() -> tuple[Path, dict[str, Any]]:
    root = assets_dir()
    truth = json.loads((root / DEMO_TRUTH).read_text())
    return root / DEMO_CLIP, truth


def _clip_section(clip: Path, truth: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    from .audio import MelFrontEnd, iter_window_batches, probe_audio
    from .audio.plots import save_spectrogram_png

    info = probe_audio(clip)
    frontend = MelFrontEnd("paper")
    n_windows, shape = 0, None
    for batch in iter_window_batches(clip, frontend, batch_size=16):
        n_windows += len(batch)
        shape = tuple(batch.images.shape[1:])
    png = save_spectrogram_png(clip, out_dir / "demo_spectrogram.png", frontend.config)
    return {
        "path": str(clip),
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "duration_s": info.duration_s,
        "windows": n_windows,
        "model_input_shape": list(shape or ()),
        "frontend": frontend.config.name,
        "spectrogram_png": str(png),
        "true_location": [truth["latitude"], truth["longitude"]],
        "species": [truth["focal_species"], *truth["background_species"]],
    }


def _world_section(world_dir: Path, progress: bool) -> tuple[dict[str, Any], np.ndarray, Any]:
    from .data import XCDC, INatSounds
    from .synth import generate_world

    marker = world_dir / "world" / "world.json"
    reused = marker.exists() and json.loads(marker.read_text()).get("seed") == DEMO_SEED
    started = time.perf_counter()
    if not reused:
        generate_world(world_dir, preset="tiny", seed=DEMO_SEED, force=True, progress=progress)
    seconds = time.perf_counter() - started
    splits = {name: INatSounds(world_dir, split=name) for name in ("train", "val", "test")}
    xcdc = XCDC(world_dir / "xcdc", require_audio=True)
    section = {
        "root": str(world_dir),
        "preset": "tiny",
        "seed": DEMO_SEED,
        "reused": reused,
        "generation_s": round(seconds, 2),
        "recordings": {name: len(ds) for name, ds in splits.items()},
        "missing_location_skipped": {n: ds.n_missing_location for n, ds in splits.items()},
        "species": splits["train"].num_classes,
        "xcdc_recordings": len(xcdc),
    }
    return section, splits["train"].coords(), splits["test"]


def run_demo(
    out_dir: str | Path, progress: bool = True, log: Callable[[str], None] = print
) -> DemoReport:
    """Run the foundation pipeline into ``out_dir`` and write ``report.json`` there."""
    from geoforensics.eval.baselines import naive_random_train_location

    from .geo.distance import haversine_np
    from .geo.gallery import build_gallery
    from .geo.metrics import geolocation_metrics
    from .geoclip import embeddings as geo_embeddings
    from .geoclip.retrieval import RetrievalIndex

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = DemoReport(out_dir=out)

    log("1/4 audio front-end: decoding the shipped demo clip into model inputs")
    clip, truth = _demo_clip()
    report.clip = _clip_section(clip, truth, out)

    log("2/4 synthetic world: generating the tiny preset and reading it back")
    report.world, train_coords, test_split = _world_section(out / "world-tiny", progress)

    log(f"3/4 GeoCLIP location space: embedding the {DEMO_GALLERY} gallery (cached)")
    gallery = build_gallery(DEMO_GALLERY)
    started = time.perf_counter()
    embeddings = geo_embeddings.cached_gallery_embeddings(gallery, progress=progress)
    embed_s = time.perf_counter() - started
    index = RetrievalIndex(gallery.coords, embeddings)
    report.gallery = {"name": gallery.name, "locations": len(gallery), "seconds": round(embed_s, 2)}
    true = np.array([report.clip["true_location"]], dtype=np.float64)
    top = index.search(geo_embeddings.embed_locations(true, progress=False), k=5)
    top_km = haversine_np(top.coords[0], true)
    report.location_space = {
        "query": "GeoCLIP embedding of the demo clip's true location",
        "top5": [
            {"latitude": float(c[0]), "longitude": float(c[1]), "score": float(s), "km": float(d)}
            for c, s, d in zip(top.coords[0], top.scores[0], top_km, strict=True)
        ],
    }

    log("4/4 naive baseline (random training location) on the tiny world's test split")
    pred = naive_random_train_location(train_coords, len(test_split), seed=DEMO_SEED)
    metrics = geolocation_metrics(pred, test_split.coords())
    report.naive_baseline = {"test_recordings": len(test_split), **metrics.as_dict()}

    with atomic_write(out / "report.json") as fh:
        json.dump(report.as_dict(), fh, indent=2)
        fh.write("\n")
    return report
