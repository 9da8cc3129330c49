"""L2-normalised GeoCLIP location embeddings, and an on-disk cache for gallery embeddings.

Embedding a large gallery takes tens of seconds (GeoCLIP's 100k points: ~30 s on 2 cores), so
:func:`cached_gallery_embeddings` stores the result under ``cache_dir("gallery_embeddings")``,
keyed by the SHA-256 of the coordinates and the encoder's weights id. Each ``KEY.npy`` has a
``KEY.json`` sidecar holding the key's inputs and the SHA-256 of the .npy; a cache entry whose
sidecar is missing or does not match is rebuilt.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write, save_npy_atomic, sha256_file
from geoforensics.core.geo.distance import check_coords
from geoforensics.core.geo.gallery import Gallery
from geoforensics.core.geoclip.embedding_cache import (
    cache_file,
    encoder_id,
    expected_entry,
    load_if_valid,
)
from geoforensics.core.geoclip.location_encoder import (
    EMBED_DIM,
    GeoCLIPLocationEncoder,
    default_location_encoder,
)
from geoforensics.core.geoclip.retrieval import RetrievalIndex

log = logging.getLogger(__name__)

#: Default number of locations per forward pass (about 0.3 GB of activations in float32).
DEFAULT_BATCH_SIZE = 4096
#: ``progress=None`` shows a progress bar from this many locations on.
PROGRESS_MIN_LOCATIONS = 20_000


def embed_locations(
    coords: ArrayLike,
    batch_size: int = DEFAULT_BATCH_SIZE,
    encoder: GeoCLIPLocationEncoder | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """(N, 2) lat/lon degrees -> (N, 512) float32 L2-normalised GeoCLIP embeddings.

    ``encoder`` defaults to the wheel's weights (loaded once). ``progress``: True/False forces
    the tqdm bar on/off; None shows it for N >= PROGRESS_MIN_LOCATIONS.
    """
    array = check_coords(coords, "locations")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    model = default_location_encoder() if encoder is None else encoder
    device = next(model.parameters()).device
    out = np.empty((len(array), EMBED_DIM), dtype=np.float32)
    show = len(array) >= PROGRESS_MIN_LOCATIONS if progress is None else progress
    from tqdm import tqdm

    with (
        torch.inference_mode(),
        tqdm(total=len(array), desc="GeoCLIP embeddings", unit="loc", disable=not show) as bar,
    ):
        for start in range(0, len(array), batch_size):
            chunk = torch.from_numpy(array[start : start + batch_size]).to(device, torch.float32)
            emb = torch.nn.functional.normalize(model(chunk), dim=1)
            out[start : start + len(chunk)] = emb.cpu().numpy()
            bar.update(len(chunk))
    return out


def _coords_of(gallery_or_coords: Gallery | ArrayLike) -> np.ndarray:
    if isinstance(gallery_or_coords, Gallery):
        return gallery_or_coords.coords
    return check_coords(gallery_or_coords, "gallery coordinates")


def embeddings_cache_path(
    gallery_or_coords: Gallery | ArrayLike, encoder: GeoCLIPLocationEncoder | None = None
) -> Path:
    """Where :func:`cached_gallery_embeddings` keeps (or would keep) this gallery's embeddings."""
    weights_id = encoder_id() if encoder is None else encoder.weights_id
    return cache_file(_coords_of(gallery_or_coords), weights_id)


def cached_gallery_embeddings(
    gallery_or_coords: Gallery | ArrayLike,
    encoder: GeoCLIPLocationEncoder | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
) -> np.ndarray:
    """Embeddings of a gallery (:func:`embed_locations`), computed once and then read from disk.

    The cache entry is verified against its sidecar checksum on every load and rebuilt if it
    does not match (truncated or edited file).
    """
    coords = _coords_of(gallery_or_coords)
    # Without an explicit encoder the key needs only the weights file's hash: a cache hit
    # then never loads the 38 MB model.
    weights_id = encoder_id() if encoder is None else encoder.weights_id
    npy = cache_file(coords, weights_id)
    expected = expected_entry(coords, weights_id)
    cached = load_if_valid(npy, expected)
    if cached is not None:
        return cached
    started = time.perf_counter()
    model = default_location_encoder() if encoder is None else encoder
    embeddings = embed_locations(coords, batch_size=batch_size, encoder=model, progress=progress)
    save_npy_atomic(npy, embeddings)
    sidecar = {**expected, "npy_sha256": sha256_file(npy), "dim": EMBED_DIM}
    with atomic_write(npy.with_suffix(".json")) as fh:
        json.dump(sidecar, fh, indent=2)
    log.info(
        "embedded %d locations in %.1f s -> %s", len(coords), time.perf_counter() - started, npy
    )
    return embeddings


def geoclip_gallery_index(
    gallery_or_coords: Gallery | ArrayLike, progress: bool | None = False
) -> RetrievalIndex:
    """A retrieval index over a gallery in GeoCLIP's own location space: the one builder for
    CLIP image and text queries, ``check``'s frames and text, the bench and pooling. The
    embeddings are cached on disk (:func:`cached_gallery_embeddings`)."""
    coords = _coords_of(gallery_or_coords)
    return RetrievalIndex(coords, cached_gallery_embeddings(gallery_or_coords, progress=progress))
