"""Where is this image or text from? Retrieval over a gallery in the GeoCLIP location space.

An embedding from :class:`~.encoder.GeoImageTextEncoder` is compared with the GeoCLIP location
embeddings of every gallery point (cosine similarity); GeoCLIP's learned temperature
``exp(logit_scale)`` ≈ 39.7 (from the geoclip wheel) turns the similarities into a
distribution over the gallery with a softmax, exactly as GeoCLIP's ``predict`` does.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.geo.gallery import Gallery, resolve_gallery
from geoforensics.core.geoclip.embeddings import geoclip_gallery_index
from geoforensics.core.geoclip.location_encoder import geoclip_temperature

if TYPE_CHECKING:
    from geoforensics.core.geoclip.retrieval import RetrievalIndex
    from geoforensics.core.vision.encoder import GeoImageTextEncoder

#: Gallery of :func:`locate_image` / :func:`locate_text` unless told otherwise.
DEFAULT_GALLERY = "land-1deg"


@functools.lru_cache(maxsize=1)
def geoclip_image_temperature() -> float:
    """exp(logit_scale) of GeoCLIP (≈ 39.7), read from the geoclip wheel once per process."""

    return float(geoclip_temperature())


def geolocate_embeddings(
    embeddings: np.ndarray, index: RetrievalIndex, temperature: float | None = None
) -> np.ndarray:
    """(N, G) float64 log-probabilities over the gallery of ``index``:
    ``log_softmax(temperature × cosine)``, GeoCLIP's way (temperature: GeoCLIP's by default)."""
    scale = geoclip_image_temperature() if temperature is None else float(temperature)
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(f"temperature {temperature}: must be a positive number")
    logits = index.scores(embeddings).astype(np.float64) * scale
    peak = logits.max(axis=1, keepdims=True)
    log_z = peak + np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    return logits - log_z


class TopPlace(NamedTuple):
    """One of the most probable gallery points: latitude, longitude (degrees), probability."""

    latitude: float
    longitude: float
    probability: float


@dataclass(frozen=True)
class MediaLocation:
    """Where one image or text points: the full distribution over the gallery and its top-k.

    ``kind`` is "image" or "text"; ``source`` the file path (or "<array>") or the text;
    ``coords`` (G, 2) the gallery points, ``log_probs`` (G,) their log-probabilities,
    ``top_indices`` (k,) the best gallery indices, best first, and ``top`` the same places as
    (latitude, longitude, probability); ``embedding`` (512,) the query in the location space;
    ``clip_source`` the folder of the CLIP weights.
    """

    kind: str
    source: str
    gallery: str
    coords: np.ndarray
    log_probs: np.ndarray
    top_indices: np.ndarray
    top: tuple[TopPlace, ...]
    embedding: np.ndarray
    clip_source: str

    @property
    def probs(self) -> np.ndarray:
        """(G,) probabilities over the gallery (sum to 1)."""
        return np.exp(self.log_probs)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the top-k, not the full map)."""
        return {
            "kind": self.kind,
            "source": self.source,
            "gallery": {"name": self.gallery, "size": len(self.coords)},
            "clip": self.clip_source,
            "places": [
                {
                    "rank": rank,
                    "gallery_index": int(index),
                    "latitude": place.latitude,
                    "longitude": place.longitude,
                    "probability": place.probability,
                }
                for rank, (index, place) in enumerate(
                    zip(self.top_indices, self.top, strict=True), start=1
                )
            ],
        }


@functools.lru_cache(maxsize=4)
def _index_for_spec(spec: str) -> tuple[Gallery, RetrievalIndex]:

    return _index_for_gallery(resolve_gallery(spec))


def _index_for_gallery(gallery: Gallery) -> tuple[Gallery, RetrievalIndex]:

    return gallery, geoclip_gallery_index(gallery, progress=None)


def gallery_index(gallery: str | Gallery = DEFAULT_GALLERY) -> tuple[Gallery, RetrievalIndex]:
    """A gallery (spec, file or object) and its GeoCLIP retrieval index; indices of specs are
    kept per process, embeddings are cached on disk."""
    if isinstance(gallery, Gallery):
        return _index_for_gallery(gallery)
    return _index_for_spec(str(gallery))


@functools.lru_cache(maxsize=2)
def _shared_encoder(folder: str, device: str) -> GeoImageTextEncoder:
    from geoforensics.core.vision.encoder import load_geo_image_text_encoder

    return load_geo_image_text_encoder(folder, device=device)


def shared_encoder(
    clip: str | os.PathLike[str] | None = None, device: str = "cpu"
) -> GeoImageTextEncoder:
    """The encoder for the CLIP folder :func:`~.weights.find_clip_weights` picks, loaded once per
    process and folder (the app and repeated CLI calls share it; treat it as read-only)."""
    from geoforensics.core.vision.weights import find_clip_weights

    return _shared_encoder(str(find_clip_weights(clip)), device)


def _locate_many(
    embeddings: np.ndarray,
    kind: str,
    sources: Sequence[str],
    gallery: str | Gallery,
    k: int,
    clip_source: str,
) -> list[MediaLocation]:
    """One :class:`MediaLocation` per embedding row, all over the same gallery index."""
    if k < 1:
        raise InputError(f"top-k must be >= 1, got {k}")
    chosen, index = gallery_index(gallery)
    coords = chosen.coords
    results = []
    for embedding, source in zip(embeddings, sources, strict=True):
        log_probs = geolocate_embeddings(embedding[None, :], index)[0]
        top = np.argsort(-log_probs, kind="stable")[: min(k, len(log_probs))]
        places = tuple(
            TopPlace(float(coords[i, 0]), float(coords[i, 1]), float(np.exp(log_probs[i])))
            for i in top
        )
        results.append(
            MediaLocation(
                kind=kind,
                source=source,
                gallery=chosen.name,
                coords=coords,
                log_probs=log_probs,
                top_indices=top.astype(np.int64),
                top=places,
                embedding=embedding,
                clip_source=clip_source,
            )
        )
    return results


def locate_image(
    image: str | os.PathLike[str] | np.ndarray | Any,
    k: int = 5,
    gallery: str | Gallery = DEFAULT_GALLERY,
    clip: str | os.PathLike[str] | None = None,
    encoder: GeoImageTextEncoder | None = None,
    device: str = "cpu",
) -> MediaLocation:
    """Top-k places (latitude, longitude, probability) for an image file, array or PIL image.

    ``encoder`` defaults to :func:`shared_encoder` (``clip`` picks its weights); ``gallery`` is
    a spec such as "land-1deg", a gallery file or a :class:`Gallery`.
    """
    from geoforensics.core.vision.encoder import load_image

    picture: Any = image
    source = "<array>"
    if isinstance(image, str | os.PathLike):
        source, picture = str(image), load_image(image)
    model = shared_encoder(clip, device) if encoder is None else encoder
    embeddings = model.embed_images([picture])
    return _locate_many(embeddings, "image", [source], gallery, k, model.source)[0]


def locate_text(
    text: str,
    k: int = 5,
    gallery: str | Gallery = DEFAULT_GALLERY,
    clip: str | os.PathLike[str] | None = None,
    encoder: GeoImageTextEncoder | None = None,
    device: str = "cpu",
) -> MediaLocation:
    """Top-k places (latitude, longitude, probability) for a text such as "a street in Lagos"
    (CLIP's text tower through GeoCLIP's image MLP, as in the AG-CLIP paper's A.10)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("text: give a non-empty text to geolocate")
    model = shared_encoder(clip, device) if encoder is None else encoder
    embeddings = model.embed_texts([text])
    return _locate_many(embeddings, "text", [text], gallery, k, model.source)[0]


def locate_images(
    paths: Sequence[str | os.PathLike[str]],
    k: int = 5,
    gallery: str | Gallery = DEFAULT_GALLERY,
    clip: str | os.PathLike[str] | None = None,
    encoder: GeoImageTextEncoder | None = None,
    device: str = "cpu",
    batch_size: int = 8,
) -> list[MediaLocation]:
    """:func:`locate_image` for many image files (e.g. a clip's keyframes), embedded in batches."""
    from geoforensics.core.vision.encoder import load_image

    model = shared_encoder(clip, device) if encoder is None else encoder
    pictures = [load_image(path) for path in paths]
    embeddings = model.embed_images(pictures, batch_size=batch_size)
    sources = [str(Path(path)) for path in paths]
    return _locate_many(embeddings, "image", sources, gallery, k, model.source)
