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
from geoforensics.core.forensics import CheckOptions, load_check_models
from geoforensics.core.geo.gallery import resolve_gallery
from geoforensics.core.geoclip.embeddings import geoclip_gallery_index
from geoforensics.core.models import load_model
from geoforensics.core.models.model_space import retrieval_index_for_model
from geoforensics.core.models.resolve import resolve_audio_model
from geoforensics.core.multimodal import country_text_embeddings
from geoforensics.core.synth import generate_world
from geoforensics.core.vision import clip_weights_status, load_geo_image_text_encoder
from geoforensics.forensics_app.maps import MapPoint, build_deck, heat_cells
from geoforensics.forensics_app.settings import (  # re-exported: the pages read them from here
    AUDIO_TYPES as AUDIO_TYPES,
)
from geoforensics.forensics_app.settings import (
    DEFAULT_GALLERY as DEFAULT_GALLERY,
)
from geoforensics.forensics_app.settings import (
    HEX_RES as HEX_RES,
)
from geoforensics.forensics_app.settings import (
    IMAGE_TYPES as IMAGE_TYPES,
)
from geoforensics.forensics_app.settings import (
    MAX_UPLOAD_MB as MAX_UPLOAD_MB,
)
from geoforensics.forensics_app.settings import (
    MEDIA_TYPES as MEDIA_TYPES,
)
from geoforensics.forensics_app.settings import (
    default_batch_dir as default_batch_dir,
)
from geoforensics.forensics_app.settings import (
    default_bench_dir as default_bench_dir,
)
from geoforensics.forensics_app.settings import (
    default_gallery as default_gallery,
)
from geoforensics.forensics_app.settings import (
    default_model_dir as default_model_dir,
)
from geoforensics.forensics_app.settings import (
    default_world_dir as default_world_dir,
)
from geoforensics.forensics_app.settings import (
    demo_audio_path as demo_audio_path,
)
from geoforensics.forensics_app.settings import (
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

    return resolve_gallery(spec)


@st.cache_resource(show_spinner="Loading the AG-CLIP model ...")
def agclip_model(model_dir: str) -> AudioGeolocator:
    """An AG-CLIP model folder, loaded once per process (eval mode, CPU)."""

    model = load_model(resolve_audio_model(model_dir))  # a released .pt: imported once
    if model.kind != "agclip":
        raise InputError(f"{model_dir}: a {model.kind} model; this page needs an AG-CLIP model")
    return model


@st.cache_resource(show_spinner="Embedding the gallery in the model's location space ...")
def model_index(model_dir: str, gallery_spec: str) -> RetrievalIndex:
    """The gallery embedded in an AG-CLIP model's own location space."""

    return retrieval_index_for_model(resolve_audio_model(model_dir), gallery(gallery_spec))


@st.cache_resource(show_spinner="Embedding the gallery in GeoCLIP's location space ...")
def geoclip_index(gallery_spec: str) -> RetrievalIndex:
    """The gallery embedded by GeoCLIP's location encoder (for images and text)."""

    return geoclip_gallery_index(gallery(gallery_spec))


def clip_folder(off_message: str = "") -> str | None:
    """Where CLIP ViT-L/14 is, or None after a warning that says how to get it (the message
    is ``geoforensics.core.vision``'s: `geoforensics weights download clip` or a folder)."""

    status = clip_weights_status()
    if status.found:
        st.caption(f"CLIP ViT-L/14: `{status.location}`")
        return status.location
    st.warning(f"CLIP ViT-L/14 weights not found{off_message}: {status.detail}")
    return None


@st.cache_resource(show_spinner="Loading CLIP ViT-L/14 + GeoCLIP's image MLP ...")
def clip_encoder(clip: str) -> GeoImageTextEncoder:
    """CLIP's towers (from the folder ``clip``) + GeoCLIP's MLP, once per folder."""

    return load_geo_image_text_encoder(clip)


@st.cache_resource(show_spinner="Embedding the country prompts with CLIP's text tower ...")
def country_embeddings(clip: str, template: str) -> np.ndarray:
    """(C, 512) embeddings of the country prompts, computed once per template."""

    return country_text_embeddings(clip_encoder(clip), template)


@st.cache_resource(show_spinner=False)
def check_models(model_dir: str | None, gallery_spec: str, clip: str | None, species: bool) -> Any:
    """``load_check_models`` for these settings, once per process."""

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

    if not (Path(root) / "world" / "world.json").is_file():
        generate_world(root, preset="tiny", seed=0, progress=False, force=True)
    return root


# ---------------------------------------------------------------------------- uploads

#: What an upload may be: ``media`` (a video or audio container: the Check page), ``audio``
#: (the same containers: the audio track is read), ``image`` (the image pages).
UPLOAD_KINDS: dict[str, frozenset[str]] = {
    "media": frozenset({"media"}),
    "audio": frozenset({"media"}),
    "image": frozenset({"image"}),
}
#: Bytes read from the start of a file to tell its format (an MPEG-TS sync byte repeats at 188).
SNIFF_BYTES = 189
_ISO_IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1")
_MOV_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
#: Formats that are not media, named in the refusal so the user sees what they uploaded.
_NOT_MEDIA: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
)


def sniff_format(head: bytes) -> str | None:
    """The container or image format of a file from its first bytes (magic numbers), or None.

    Never trusts the name: a page decides what a file is from this, so an HTML page or a ZIP
    renamed ``clip.mp4`` is refused and a real MP4 named ``clip.wav`` is accepted."""
    box = head[4:8]
    if box == b"ftyp":
        return "heif" if head[8:12] in _ISO_IMAGE_BRANDS else "mp4"
    if box in _MOV_ATOMS:
        return "mov"
    riff = head[8:12]
    if head[:4] in (b"RIFF", b"RF64"):
        return {b"WAVE": "wav", b"AVI ": "avi", b"WEBP": "webp"}.get(riff)
    if head[:4] == b"FORM" and riff in (b"AIFF", b"AIFC"):
        return "aiff"
    signatures: tuple[tuple[bytes, str], ...] = (
        (b"OggS", "ogg"),
        (b"fLaC", "flac"),
        (b"ID3", "mp3"),
        (b"\x1aE\xdf\xa3", "matroska"),  # mkv and webm
        (b"0&\xb2u\x8ef\xcf\x11", "asf"),  # wma and wmv
        (b"FLV\x01", "flv"),
        (b"caff", "caf"),
        (b"#!AMR", "amr"),
        (b"\x00\x00\x01\xba", "mpeg-ps"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff", "jpeg"),
        (b"GIF87a", "gif"),
        (b"GIF89a", "gif"),
        (b"BM", "bmp"),
    )
    for magic, name in signatures:
        if head.startswith(magic):
            return name
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mpeg-audio"  # an MP3 or ADTS AAC frame header without an ID3 tag
    if head[:1] == b"G" and head[188:189] == b"G":
        return "mpeg-ts"
    return None


_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "bmp", "webp", "heif"})
_WANTED = {
    "image": "an image (PNG, JPEG, WebP, BMP, GIF)",
    "media": "audio or video (MP4/MOV, MKV/WebM, AVI, WAV, FLAC, Ogg, MP3, AAC ...)",
}


def sniff_media_kind(path: str | Path) -> str | None:
    """``"media"`` (audio or video container), ``"image"`` or None, from the file's bytes."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    return _kind_of(sniff_format(head))


def _kind_of(found: str | None) -> str | None:
    if found is None:
        return None
    return "image" if found in _IMAGE_FORMATS else "media"


def _describe_unknown(head: bytes) -> str:
    for magic, what in _NOT_MEDIA:
        if head.startswith(magic):
            return what
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg")):
        return "HTML/XML text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "an unknown format"
    return "plain text"


def check_upload_kind(path: str | Path, name: str, expect: str) -> str:
    """The sniffed format of an upload; InputError (naming the upload) when its bytes are not
    what ``expect`` (a key of :data:`UPLOAD_KINDS`) allows, whatever its extension says."""
    if expect not in UPLOAD_KINDS:
        raise ValueError(f"expect must be one of {', '.join(UPLOAD_KINDS)}, got {expect!r}")
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    found = sniff_format(head)
    if _kind_of(found) not in UPLOAD_KINDS[expect]:
        wanted = _WANTED["image" if expect == "image" else "media"]
        seen = found if found is not None else _describe_unknown(head)
        raise InputError(f"{name}: the file's content is {seen}, not {wanted}; refused")
    assert found is not None
    return found


def safe_name(name: str, default: str = "upload") -> str:
    """A file name without folders or odd characters (keeps the extension ffmpeg needs)."""
    base = Path(name.replace("\\", "/").replace("\x00", "")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")
    return cleaned[-120:].lstrip("._") or default


def shown_name(name: str, limit: int = 120) -> str:
    """An upload's name for messages: one line (control characters become spaces), at most
    ``limit`` characters."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in name).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def check_upload_size(size_bytes: int, name: str, limit_mb: int | None = None) -> None:
    """InputError when an upload is larger than ``limit_mb`` (default :data:`MAX_UPLOAD_MB`,
    read at call time) or empty."""
    limit = MAX_UPLOAD_MB if limit_mb is None else limit_mb
    if size_bytes <= 0:
        raise InputError(f"{name}: the uploaded file is empty")
    if size_bytes > limit * 1024 * 1024:
        raise InputError(
            f"{name}: {size_bytes / 1e6:,.0f} MB is over the app's {limit} MB upload limit "
            "(run `geoforensics check` on the command line for larger files)"
        )


@contextlib.contextmanager
def private_copies(uploads: Sequence[Any], expect: str | None = None) -> Iterator[list[Path]]:
    """Write uploaded files (Streamlit ``UploadedFile``s) into a private temporary folder,
    yield their paths, and delete the folder afterwards whatever happens.

    The folder is ``tempfile.mkdtemp`` (mode 0700); each file is named ``NN-<safe name>``
    inside it, so no upload name can reach outside. The size limit is checked before the
    bytes are read (``upload.size``) and again on the bytes; with ``expect`` (``media``,
    ``audio`` or ``image``) the content is sniffed and anything else is refused."""
    folder = Path(tempfile.mkdtemp(prefix="geoforensics-app-"))
    try:
        paths = []
        for i, upload in enumerate(uploads):
            shown = shown_name(upload.name)
            declared = getattr(upload, "size", None)
            if isinstance(declared, int):
                check_upload_size(declared, shown)
            data = upload.getvalue()
            check_upload_size(len(data), shown)
            path = folder / f"{i:02d}-{safe_name(upload.name)}"
            path.write_bytes(data)
            if expect is not None:
                check_upload_kind(path, shown, expect)
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
            "P(point)": float(f"{row['point_probability']:.3g}"),
        }
        for row in location.top
    ]
    return pd.DataFrame(rows)


def location_deck(location: LocationMap, modality: str = "audio") -> Any:
    """The offline deck of one location map: heat hexagons and the top-k markers."""

    heat = heat_cells(location.coords, location.probs, HEX_RES)
    points = [
        MapPoint(
            modality,
            row["latitude"],
            row["longitude"],
            row["label"],
            row["rank"],
            row["region_probability"],
        )
        for row in location.top
    ]
    return build_deck(heat, points)
