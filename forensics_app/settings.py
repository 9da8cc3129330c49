"""The app's settings and limits (no Streamlit import: the CLI reads them too).

Defaults come from the environment so that ``geoforensics app --model ... --gallery ...``
(and tests) can set them: ``GEOFORENSICS_APP_MODEL`` (AG-CLIP model folder; default the
shipped demo checkpoint), ``GEOFORENSICS_APP_GALLERY`` (default ``land-1deg``),
``GEOFORENSICS_APP_WORLD`` (data folder of the species soundscape map; default the tiny demo
world generated into the cache), ``GEOFORENSICS_APP_BENCH`` (default bench output folder),
``GEOFORENSICS_APP_BATCH`` (default batch folder of the Batch page).
CLIP ViT-L/14 weights are found by ``geoforensics.core.vision`` (``$GEOFORENSICS_CLIP`` or
the Hugging Face cache).
"""

from __future__ import annotations

import os
from pathlib import Path

from geoforensics.core.models.resolve import resolve_audio_model
from geoforensics.core.paths import assets_dir, cache_dir

#: Largest upload the app accepts, MB (also passed to ``streamlit run`` as
#: ``--server.maxUploadSize`` by ``geoforensics app``).
MAX_UPLOAD_MB = 500
#: Media the Check page takes (video and audio containers ffmpeg reads).
MEDIA_TYPES: tuple[str, ...] = (
    "mp4",
    "mov",
    "m4v",
    "mkv",
    "webm",
    "avi",
    "mp3",
    "m4a",
    "wav",
    "ogg",
    "oga",
    "opus",
    "flac",
    "aac",
)
#: Audio the Locate and Retrieve pages take.
AUDIO_TYPES: tuple[str, ...] = (
    "wav",
    "ogg",
    "oga",
    "opus",
    "flac",
    "mp3",
    "m4a",
    "aac",
    "mp4",
    "webm",
)
IMAGE_TYPES: tuple[str, ...] = ("png", "jpg", "jpeg", "webp", "bmp")
DEFAULT_GALLERY = "land-1deg"
#: Shipped files the pages offer as defaults.
DEMO_CLIP = ("demo", "demo_clip.mp4")
DEMO_AUDIO = ("demo", "demo_soundscape.ogg")
DEMO_MODEL = ("models", "demo_agclip")
#: H3 resolution of the heatmap hexagons (res 2: ~86,700 km² cells, a few 1° points each).
HEX_RES = 2


# ------------------------------------------------------------------------------ settings


def demo_clip_path() -> Path:
    """The shipped demo clip (SYNTHETIC audio with drawn frames)."""
    return assets_dir().joinpath(*DEMO_CLIP)


def demo_audio_path() -> Path:
    """The shipped demo soundscape (audio only)."""
    return assets_dir().joinpath(*DEMO_AUDIO)


def default_model_dir() -> Path:
    """The AG-CLIP model the pages use unless told otherwise (a released checkpoint ``.pt``
    in ``$GEOFORENSICS_APP_MODEL`` is imported once into the cache and its folder used)."""

    env = os.environ.get("GEOFORENSICS_APP_MODEL")
    return resolve_audio_model(env) if env else assets_dir().joinpath(*DEMO_MODEL)


def default_gallery() -> str:
    """The gallery of candidate locations (``$GEOFORENSICS_APP_GALLERY`` or land-1deg)."""
    return os.environ.get("GEOFORENSICS_APP_GALLERY") or DEFAULT_GALLERY


def default_world_dir() -> Path:
    """The data folder of the species soundscape map: ``$GEOFORENSICS_APP_WORLD`` or the tiny
    SYNTHETIC demo world (seed 0) in the cache (generated on request)."""
    env = os.environ.get("GEOFORENSICS_APP_WORLD")
    return Path(env) if env else cache_dir("app") / "world-tiny-seed0"


def default_bench_dir() -> str:
    """The bench output folder the Benchmark page opens first."""
    return os.environ.get("GEOFORENSICS_APP_BENCH") or "bench-out"


def default_batch_dir() -> str:
    """The ``check FOLDER --out`` folder the Batch page opens first."""
    return os.environ.get("GEOFORENSICS_APP_BATCH") or "check-batch"
