"""What every page of the app shares: settings, models loaded once per process, uploads.

Models and galleries are ``st.cache_resource`` entries: loaded on first use and kept for the
life of the Streamlit process (every session and page shares them). Uploaded files are
written to a private temporary folder (``tempfile.mkdtemp``: mode 0700) that is removed as
soon as the analysis ends. Settings and limits live in :mod:`.settings` (re-exported here).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import streamlit as st

from geoforensics.core.errors import GeoforensicsError, InputError

from .settings import (  # re-exported: the pages read them from here
    AUDIO_TYPES as AUDIO_TYPES,
)
from .settings import (
    DEFAULT_GALLERY as DEFAULT_GALLERY,
)
from .settings import (
    HEX_RES as HEX_RES,
)
from .settings import (
    IMAGE_TYPES as IMAGE_TYPES,
)
from .settings import (
    MAX_UPLOAD_MB as MAX_UPLOAD_MB,
)
from .settings import (
    MEDIA_TYPES as MEDIA_TYPES,
)
from .settings import (
    default_bench_dir as default_bench_dir,
)
from .settings import (
    default_gallery as default_gallery,
)
from .settings import (
    default_model_dir as default_model_dir,
)
from .settings import (
    default_world_dir as default_world_dir,
)
from .settings import (
    demo_audio_path as demo_audio_path,
)
from .settings import (
    demo_clip_path as demo_clip_path,
)

if TYPE_CHECKING:
    from geoforensics.core.geo.gallery import Gallery
    from geoforensics.core.geoclip.retrieval import RetrievalIndex
    from geoforensics.core.models.geolocator import AudioGeolocator
    from geoforensics.core.multimodal import LocationMap
    from geoforensics.core.vision import GeoImageTextEncoder

# ------------------------------------------------------------------ cached resources


@st.cache_resource(show_spinner="Loading the gallery ...")
def gallery(spec: str) -> Gallery:
    """A gallery of candidate locations, built once per process."""
    from geoforensics.core.geo.gallery import resolve_gallery

    return resolve_gallery(spec)


@st.cache_resource(show_spinner="Loading the AG-CLIP model ...")
def agclip_model(model_dir: str) -> AudioGeolocator:
    """An AG-CLIP model folder, loaded once per process (eval mode, CPU)."""
    from geoforensics.core.models import load_model

    model = load_model(model_dir)
    if model.kind != "agclip":
        raise InputError(f"{model_dir}: a {model.kind} model; this page needs an AG-CLIP model")
    return model


@st.cache_resource(show_spinner="Embedding the gallery in the model's location space ...")
def model_index(model_dir: str, gallery_spec: str) -> RetrievalIndex:
    """The gallery embedded in an AG-CLIP model's own location space."""
    from geoforensics.core.models.model_space import retrieval_index_for_model

    return retrieval_index_for_model(model_dir, gallery(gallery_spec))


@st.cache_resource(show_spinner="Embedding the gallery in GeoCLIP's location space ...")
def geoclip_index(gallery_spec: str) -> RetrievalIndex:
    """The gallery embedded by GeoCLIP's location encoder (for images and text)."""
    from geoforensics.core.multimodal import geoclip_index as build

    return build(gallery(gallery_spec))


def clip_folder(off_message: str = "") -> str | None:
    """Where CLIP ViT-L/14 is, or None after a warning that says how to get it (the message
    is ``geoforensics.core.vision``'s: `geoforensics weights download clip` or a folder)."""
    from geoforensics.core.vision import clip_weights_status

    status = clip_weights_status()
    if status.found:
        st.caption(f"CLIP ViT-L/14: `{status.location}`")
        return status.location
    st.warning(f"CLIP ViT-L/14 weights not found{off_message}: {status.detail}")
    return None


@st.cache_resource(show_spinner="Loading CLIP ViT-L/14 + GeoCLIP's image MLP ...")
def clip_encoder(clip: str) -> GeoImageTextEncoder:
    """CLIP's towers (from the folder ``clip``) + GeoCLIP's MLP, once per folder."""
    from geoforensics.core.vision import load_geo_image_text_encoder

    return load_geo_image_text_encoder(clip)


@st.cache_resource(show_spinner="Embedding the country prompts with CLIP's text tower ...")
def country_embeddings(clip: str, template: str) -> np.ndarray:
    """(C, 512) embeddings of the country prompts, computed once per template."""
    from geoforensics.core.multimodal import country_text_embeddings

    return country_text_embeddings(clip_encoder(clip), template)


@st.cache_resource(show_spinner=False)
def check_models(model_dir: str | None, gallery_spec: str, clip: str | None, species: bool) -> Any:
    """``load_check_models`` for these settings, once per process."""
    from geoforensics.core.forensics import CheckOptions, load_check_models

    options = CheckOptions(
        model_dir=None if model_dir is None else Path(model_dir),
        gallery=gallery_spec,
        clip_weights=clip,
        species=species,
    )
    return load_check_models(options)


@st.cache_resource(show_spinner="Generating the tiny SYNTHETIC demo world (seed 0) ...")
def demo_world(root: str) -> str:
    """Generate the tiny synthetic world (seed 0) at ``root`` unless it is there already."""
    from geoforensics.core.synth import generate_world

    if not (Path(root) / "world" / "world.json").is_file():
        generate_world(root, preset="tiny", seed=0, progress=False, force=True)
    return root


# ---------------------------------------------------------------------------- uploads


def safe_name(name: str, default: str = "upload") -> str:
    """A file name without folders or odd characters (keeps the extension ffmpeg needs)."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")
    return cleaned[:120] or default


def check_upload_size(size_bytes: int, name: str, limit_mb: int = MAX_UPLOAD_MB) -> None:
    """InputError when an upload is larger than ``limit_mb`` or empty."""
    if size_bytes <= 0:
        raise InputError(f"{name}: the uploaded file is empty")
    if size_bytes > limit_mb * 1024 * 1024:
        raise InputError(
            f"{name}: {size_bytes / 1e6:,.0f} MB is over the app's {limit_mb} MB upload limit "
            "(run `geoforensics check` on the command line for larger files)"
        )


@contextlib.contextmanager
def private_copies(uploads: Sequence[Any]) -> Iterator[list[Path]]:
    """Write uploaded files (Streamlit ``UploadedFile``s) into a private temporary folder,
    yield their paths, and delete the folder afterwards whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix="geoforensics-app-"))
    try:
        paths = []
        for i, upload in enumerate(uploads):
            data = upload.getvalue()
            check_upload_size(len(data), upload.name)
            path = folder / f"{i:02d}-{safe_name(upload.name)}"
            path.write_bytes(data)
            paths.append(path)
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------- display


def show_error(exc: BaseException) -> None:
    """One line, as the CLI prints it."""
    if isinstance(exc, GeoforensicsError):
        st.error(f"{type(exc).__name__}: {exc}")
    else:  # pragma: no cover - unexpected failures still show, with their type
        st.exception(exc)


def top_table(location: LocationMap) -> pd.DataFrame:
    """The top-k places of a location map as a table."""
    rows = [
        {
            "rank": row["rank"],
            "place": row["label"],
            "latitude": round(row["latitude"], 3),
            "longitude": round(row["longitude"], 3),
            f"P(within {location.radius_km:g} km)": round(row["region_probability"], 4),
            "P(point)": float(f"{row['probability']:.3g}"),
        }
        for row in location.top
    ]
    return pd.DataFrame(rows)


def location_deck(location: LocationMap, modality: str = "audio") -> Any:
    """The offline deck of one location map: heat hexagons and the top-k markers."""
    from .maps import MapPoint, build_deck, heat_cells

    heat = heat_cells(location.coords, location.probs, HEX_RES)
    points = [
        MapPoint(
            modality,
            row["latitude"],
            row["longitude"],
            row["label"],
            row["rank"],
            row["probability"],
        )
        for row in location.top
    ]
    return build_deck(heat, points)
