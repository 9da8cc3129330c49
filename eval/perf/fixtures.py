"""Inputs the sections share, made the same way on every run: generated test audio (seeded
noise with tone bursts), AG-CLIP models (random weights with a fixed seed, or the shipped demo
model), the geoclip-100k gallery and its retrieval index, the tiny SYNTHETIC world, the work
folder under the cache, and the inference backend switch.

Modules that load torch or faiss (``core.models``, ``core.geoclip.retrieval``) are imported
inside the functions that use them: the measurement subprocesses import this package, and
section d's torch process must not load faiss, section i's check must not load torch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from geoforensics.core.geo.gallery import geoclip_100k_gallery
from geoforensics.core.paths import assets_dir, cache_dir
from geoforensics.core.synth import generate_world

if TYPE_CHECKING:
    from geoforensics.core.geoclip.retrieval import RetrievalIndex
    from geoforensics.core.models.geolocator import AudioGeolocator

#: Real recordings beside the checkout (``../shared/realaudio``; CC non-commercial test
#: fixtures, absent on most machines): sections i and j use them when present.
REAL_AUDIO = Path(__file__).resolve().parents[3] / "shared" / "realaudio"


@contextlib.contextmanager
def environment_variable(name: str, value: str) -> Iterator[None]:
    """Run the block with the environment variable ``name`` set to ``value``, then restore."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def inference_backend(name: str) -> contextlib.AbstractContextManager[None]:
    """Run a block with ``GEOFORENSICS_INFERENCE_BACKEND`` set to ``name``."""
    from geoforensics.core.models.onnx_backend import BACKEND_ENV  # loads torch

    return environment_variable(BACKEND_ENV, name)


def inference_precision(name: str) -> contextlib.AbstractContextManager[None]:
    """Run a block with ``GEOFORENSICS_INFERENCE_PRECISION`` set to ``name``."""
    from geoforensics.core.models.onnx_backend import PRECISION_ENV  # loads torch

    return environment_variable(PRECISION_ENV, name)


def write_test_audio(
    path: Path, seconds: float, sample_rate: int = 22050, seed: int = 0, fmt: str = "WAV"
) -> Path:
    """Seeded noise with tone bursts (written in 60 s blocks, so hours need little memory)."""
    rng = np.random.default_rng(seed)
    total = round(seconds * sample_rate)
    block = 60 * sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(
        str(path), "w", samplerate=sample_rate, channels=1, format=fmt, subtype="PCM_16"
    ) as out:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / sample_rate
            freq = 800.0 + 600.0 * np.sin(2 * np.pi * 0.05 * t)
            bursts = (np.sin(2 * np.pi * 0.7 * t) > 0.3) * 0.2
            signal = bursts * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(n)
            out.write(signal.astype(np.float32))
    return path


def random_agclip(encoder: str = "mobilenet_v3_large", n_species: int = 30) -> AudioGeolocator:
    """A randomly initialised AG-CLIP model (seed 0, eval mode): speed does not depend on
    the weights, and a fixed seed keeps the cached ONNX graph reusable across runs."""
    import torch

    from geoforensics.core.models.geolocator import AudioGeolocator, ModelConfig

    torch.manual_seed(0)
    return AudioGeolocator(ModelConfig(kind="agclip", encoder=encoder, n_species=n_species)).eval()


def demo_model() -> AudioGeolocator:
    """The shipped demo AG-CLIP model (mobilenet_v3_small_128, trained on the tiny world)."""
    from geoforensics.core.models.geolocator import load_model  # loads torch

    return load_model(assets_dir() / "models" / "demo_agclip")


def gallery_coords(size: int | None) -> np.ndarray:
    """The geoclip-100k gallery's coordinates, or a seeded sample of ``size`` of them."""
    coords = geoclip_100k_gallery().coords
    if size is not None and size < len(coords):
        pick = np.random.default_rng(0).choice(len(coords), size, replace=False)
        coords = coords[np.sort(pick)]
    return np.asarray(coords, dtype=np.float64)


def retrieval_index(coords: np.ndarray) -> RetrievalIndex:
    """A faiss index over the cached GeoCLIP embeddings of ``coords`` (embedded once)."""
    from geoforensics.core.geoclip.embeddings import geoclip_gallery_index  # torch, faiss

    return geoclip_gallery_index(coords)


def work_dir() -> Path:
    """The folder of perf's generated inputs (under the cache; kept between runs)."""
    return cache_dir("perf")


def audio_file(name: str, seconds: float, **kwargs: Any) -> Path:
    """A generated test file under the cache (made once, reused)."""
    path = work_dir() / name
    if not path.is_file():
        write_test_audio(path, seconds, **kwargs)
    return path


def tiny_world(root: Path | None = None) -> Path:
    """The tiny SYNTHETIC world (seed 0, the demo model's training world), generated once."""
    target = root if root is not None else work_dir() / "world-tiny-seed0"
    if not (target / "world" / "world.json").is_file():
        generate_world(target, "tiny", seed=0, progress=False, force=True)
    return target
