"""Section f: training throughput (samples/s of data loading + forward, backward and an SGD
step), with cached spectrograms vs decoding the audio of every window each epoch.

The trainer reads log-mel frames from a uint8 memory-mapped cache built once
(:mod:`geoforensics.train.spec_cache`); the baseline decodes each window's audio segment and
runs the front-end every epoch (:class:`geoforensics.core.data.WindowDataset`, random mode).
The ratio is what the cache buys per epoch on the tiny SYNTHETIC world's train split.

torch, ``core.models``, ``core.data.WindowDataset`` and ``train.datamodule`` (lightning) are
imported inside the functions: the measurement subprocesses import this package (see
:mod:`.fixtures`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.audio.frontend import MelFrontEnd
from geoforensics.core.data import INatSounds
from geoforensics.core.fileio import sha256_file
from geoforensics.eval.perf.fixtures import random_agclip, tiny_world
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
    timed,
)
from geoforensics.train.spec_cache import build_spectrogram_cache, images_from_frames

if TYPE_CHECKING:
    from geoforensics.core.models.geolocator import AudioGeolocator


def _train_step_fn(model: AudioGeolocator) -> Callable[[Any], None]:
    import torch

    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()

    def step(images: Any) -> None:
        out = model(images)["embedding"]
        target = torch.nn.functional.normalize(torch.ones_like(out), dim=1)
        loss = 1.0 - torch.nn.functional.cosine_similarity(out, target).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return step


@register_section(
    "f",
    "training",
    title="training throughput: cached spectrograms vs decoding audio every epoch",
)
def measure_training(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section f: samples/s of loading + a training step, cached spectrograms vs decoding
    (``world``: the synthetic world to train on; None: the tiny world)."""
    import torch
    from torch.utils.data import DataLoader

    from geoforensics.core.data.windows import WindowDataset as AudioWindows
    from geoforensics.train.datamodule import CachedWindowDataset, RandomWindowSampler, SplitData

    root = tiny_world() if world is None else world
    dataset = INatSounds(root, "train")
    recordings = list(dataset)
    model = random_agclip(settings.train_encoder)
    frontend = MelFrontEnd(model.frontend_config)
    batch_size = 32
    torch.manual_seed(0)

    build_s, cache = timed(
        lambda: build_spectrogram_cache(
            recordings,
            frontend.config,
            sha256_file(root / "train.json"),
            progress=False,
        )
    )
    coords = np.array([[r.latitude, r.longitude] for r in recordings], dtype=np.float64)
    split = SplitData(
        "train", dataset, coords, np.zeros(len(recordings), dtype=np.int64), None, "perf"
    )
    cached_loader = DataLoader(
        CachedWindowDataset(cache, split),
        batch_size=batch_size,
        sampler=RandomWindowSampler(cache.random_frame_room(), seed=0),
    )
    step = _train_step_fn(model)

    def cached_epoch() -> int:
        count = 0
        for batch in cached_loader:
            step(images_from_frames(batch["spec"], frontend))
            count += len(batch["spec"])
        return count

    audio = AudioWindows(recordings, frontend, mode="random", seed=0)
    audio_loader = DataLoader(audio, batch_size=batch_size, shuffle=False)

    def decoding_epoch() -> int:
        count = 0
        for images, _target in audio_loader:
            step(images)
            count += len(images)
        return count

    cached_epoch()  # warm-up (first-touch of the memory map, allocator)
    cached_s, cached_n = timed(cached_epoch)
    decode_s, decode_n = timed(decoding_epoch)
    figures = [
        Figure(
            "f1",
            f"training samples/s, {settings.train_encoder}: cached spectrograms vs decoding",
            cached_n / cached_s,
            decode_n / decode_s,
            "samples/s",
            higher_is_better=True,
        )
    ]
    notes = [
        f"one epoch of one random 3 s window per recording ({len(recordings)} recordings of "
        f"the tiny SYNTHETIC world's train split), batch {batch_size}, DataLoader in the main "
        "process, forward + backward + SGD step; cached = train.spec_cache uint8 memory map -> "
        "resize (the trainer's path), decoding = core.data.WindowDataset random mode (decode "
        "the window's segment + front-end every epoch)",
        f"building the spectrogram cache once: {build_s:.1f} s (or a cache hit)",
    ]
    model.eval()
    return Section("f", section_title("f"), figures, notes)
