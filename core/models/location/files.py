"""Our own location encoders on disk, and cached gallery embeddings.

An encoder is saved as ``NAME.safetensors`` + ``NAME.json`` (format, name, constructor config,
weights checksum, how it was trained); :func:`load_location_encoder_file` rebuilds it through
the registry. :func:`gallery_embeddings` caches an encoder's embeddings of a gallery on disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from safetensors.torch import load_file, save_file

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.fileio import (
    atomic_path,
    atomic_write,
    save_npy_atomic,
    sha256_arrays,
    sha256_file,
)
from geoforensics.core.geo.distance import check_coords
from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings
from geoforensics.core.models.location.base import LocationEncoder, load_state_strict
from geoforensics.core.models.location.geoclip import GeoCLIPEncoder
from geoforensics.core.models.location.registry import saved_encoder_class
from geoforensics.core.paths import cache_dir

#: The ``format`` of a saved encoder's JSON config (also part of embedding cache keys).
LOCATION_ENCODER_FORMAT = "geoforensics-location-encoder-v1"


def save_location_encoder(
    encoder: LocationEncoder, path: str | os.PathLike[str], info: Mapping[str, Any] | None = None
) -> Path:
    """Write ``PATH.safetensors`` and its ``PATH.json`` config atomically; returns the weights
    path. ``info`` (e.g. how it was trained) is stored in the JSON."""
    if isinstance(encoder, GeoCLIPEncoder):
        raise InputError("the GeoCLIP encoder ships with the geoclip wheel; nothing to save")
    weights = Path(path).with_suffix(".safetensors")
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    config = {
        "format": LOCATION_ENCODER_FORMAT,
        "name": encoder.name,
        "embed_dim": encoder.embed_dim,
        "config": encoder.config(),
        "weights_sha256": sha256_file(weights),
        "info": dict(info or {}),
    }
    with atomic_write(weights.with_suffix(".json")) as fh:
        json.dump(config, fh, indent=2)
    return weights


def load_location_encoder_file(path: str | os.PathLike[str]) -> LocationEncoder:
    """An encoder saved by :func:`save_location_encoder` (``.safetensors`` or ``.json``)."""
    weights = Path(path).expanduser().with_suffix(".safetensors")
    side = weights.with_suffix(".json")
    if not weights.is_file() or not side.is_file():
        raise WeightsNotFoundError(f"{weights}: encoder weights or their .json config missing")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{side}: unreadable encoder config ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != LOCATION_ENCODER_FORMAT:
        raise InputError(f"{side}: not a geoforensics location-encoder config")
    if meta.get("weights_sha256") != sha256_file(weights):
        raise InputError(f"{weights}: checksum does not match {side.name} (file changed?)")
    cls = saved_encoder_class(str(meta.get("name")))
    if cls is None:
        raise InputError(f"{side}: unknown encoder {meta.get('name')!r}")
    try:
        encoder: LocationEncoder = cls(**meta.get("config", {}))
    except TypeError as exc:
        raise InputError(f"{side}: config does not fit {cls.__name__} ({exc})") from exc
    load_state_strict(encoder, load_file(str(weights)), weights)
    encoder.pretrain_info = dict(meta.get("info") or {})
    return encoder.freeze()


def gallery_embeddings(
    encoder: LocationEncoder, coords: ArrayLike, cache: bool = True, batch_size: int = 4096
) -> np.ndarray:
    """L2-normalised (N, D) embeddings of gallery coordinates, cached on disk by content hash.

    GeoCLIP uses the shared GeoCLIP cache; other encoders are keyed by ``weights_id``.
    """
    points = check_coords(coords, "gallery coordinates")
    if isinstance(encoder, GeoCLIPEncoder) and encoder.weights is None:
        return cached_gallery_embeddings(points) if cache else encoder.embed(points, batch_size)
    if not cache:
        return encoder.embed(points, batch_size)
    key = sha256_arrays(points, extra=f"{LOCATION_ENCODER_FORMAT}|{encoder.weights_id}")[:40]
    npy = cache_dir("location_encoder_embeddings") / f"{key}.npy"
    side = npy.with_suffix(".json")
    if npy.is_file() and side.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
            if meta.get("npy_sha256") == sha256_file(npy):
                array = np.load(npy, allow_pickle=False)
                if array.shape == (len(points), encoder.embed_dim):
                    return array
        except (OSError, ValueError, json.JSONDecodeError):
            pass  # a damaged entry is recomputed
    embeddings = encoder.embed(points, batch_size)
    save_npy_atomic(npy, embeddings)
    with atomic_write(side) as fh:
        json.dump({"encoder": encoder.weights_id, "npy_sha256": sha256_file(npy)}, fh)
    return embeddings
