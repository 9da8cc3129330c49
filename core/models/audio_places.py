"""One path from audio to places: an AG-CLIP model turns a recording into a distribution
over a gallery and its top-k places.

Every AG-CLIP consumer calls :func:`audio_places` (``geoforensics locate --method
agclip|fused``, ``check``'s audio modality and each timeline segment, the app's Locate page)
or, for many recordings at once, its batched form :func:`top1_places` (the bench's AG-CLIP
rows), so they agree to the last digit on the same file, model and settings:

1. every 3 s window of the recording through the model (or given
   :class:`~geoforensics.core.models.inference.WindowOutputs`), pooled
   (``options.pooling``: mean by default) and L2-normalised;
2. cosine similarity with every gallery point's location embedding (the index of
   ``retrieval_index_for_model``), clipped to [-1, 1];
3. ``log p(x) = log_softmax(T · cosine + log prior)`` (:func:`place_log_probs`): ``T`` the
   model's training temperature (GeoCLIP's ≈ 39.7), the prior the one rule of
   :func:`~geoforensics.core.geo.gallery.gallery_log_prior` (cell area on ``grid-*`` /
   ``land-*`` galleries, uniform otherwise);
4. ``method="fused"``: times the species likelihood raised to the fusion weight
   (:func:`~geoforensics.core.species.fusion.fuse`, then the same prior); the species term is
   given by the caller (``check`` has it already) or computed from BirdNET's detections
   (:func:`birdnet_species_loglik`);
5. places ranked by the mass within ``options.radius_km`` and kept that far apart, listed in
   the one place-row schema of :mod:`geoforensics.core.geo.gazetteer`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.geo.gallery import gallery_log_prior, gallery_prior_name
from geoforensics.core.geo.gazetteer import place_rows
from geoforensics.core.geo.ranking import distinct_top_k, region_probability
from geoforensics.core.models.pooling import POOLING_METHODS, pool_outputs
from geoforensics.core.models.recording_outputs import WindowOutputs
from geoforensics.core.species.birdnet_audio import BirdNETAudio
from geoforensics.core.species.checklists import YEAR_ROUND, date_to_week
from geoforensics.core.species.evidence import heard_species
from geoforensics.core.species.fusion import (
    DEFAULT_FUSION_WEIGHT,
    agclip_log_probs,
    agclip_temperature,
    fuse,
    log_normalise,
)
from geoforensics.core.species.likelihood import locate_species
from geoforensics.core.species.names import match_species
from geoforensics.core.species.ranges import load_range_model

if TYPE_CHECKING:
    from geoforensics.core.geo.gallery import Gallery
    from geoforensics.core.geoclip.retrieval import RetrievalIndex
    from geoforensics.core.models.geolocator import AudioGeolocator
    from geoforensics.core.models.graph_agclip import GraphAGCLIP

#: Methods of :class:`AudioPlaceOptions`.
AUDIO_PLACE_METHODS: tuple[str, ...] = ("agclip", "fused")
#: Default radius of the region mass that ranks places, km (``locate``'s and ``check``'s).
DEFAULT_PLACE_RADIUS_KM = 500.0
#: Query rows scored at once by :func:`top1_places` (bounded memory on large galleries).
_CHUNK_ENTRIES = 1 << 22


@dataclass(frozen=True)
class AudioPlaceOptions:
    """Settings of :func:`audio_places`.

    ``method`` ``agclip`` or ``fused`` (AG-CLIP x species likelihood); ``top_k`` places listed,
    ranked by the mass within ``radius_km`` (0: single points) and at least that far apart;
    ``fusion_weight`` the species term's weight (None: 1, the plain product; callers pass
    the model folder's weight, :func:`~geoforensics.core.species.fusion.fusion_weight_for_model`);
    ``date`` or ``week`` the week of the species ranges (neither: year-round); ``pooling``
    over windows (``mean``, ``max``, ``kmeans``); ``temperature`` None: GeoCLIP's; ``place_names``
    False leaves labels empty. The species settings (``range_model``, ``likelihood``,
    ``week_weight``, ``species_weights``, ``min_prob``, ``threads``) are used only when
    ``fused`` computes the species term itself from BirdNET.
    """

    method: str = "agclip"
    top_k: int = 5
    radius_km: float = DEFAULT_PLACE_RADIUS_KM
    fusion_weight: float | None = None
    date: dt.date | None = None
    week: int | None = None
    pooling: str = "mean"
    temperature: float | None = None
    place_names: bool = True
    range_model: str = "birdnet"
    likelihood: str = "focal"
    week_weight: float = 1.0
    species_weights: str = "weighted"
    min_prob: float = 0.1
    threads: int = 2

    def validate(self) -> None:
        """Raise a one-line :class:`InputError` for an unusable value."""

        if self.method not in AUDIO_PLACE_METHODS:
            raise InputError(f"method {self.method!r}: choose {' or '.join(AUDIO_PLACE_METHODS)}")
        if self.top_k < 1:
            raise InputError(f"--top-k must be >= 1, got {self.top_k}")
        if not (math.isfinite(self.radius_km) and self.radius_km >= 0):
            raise InputError(f"--radius-km must be a number >= 0, got {self.radius_km}")
        if self.fusion_weight is not None and not self.fusion_weight >= 0:
            raise InputError(f"--fusion-weight must be >= 0, got {self.fusion_weight}")
        if self.pooling not in POOLING_METHODS:
            raise InputError(
                f"pooling {self.pooling!r}: choose one of {', '.join(POOLING_METHODS)}"
            )

    @property
    def weight(self) -> float:
        """The fusion weight used (``fusion_weight`` or the default, 1)."""

        return DEFAULT_FUSION_WEIGHT if self.fusion_weight is None else float(self.fusion_weight)

    def resolved_week(self) -> int:
        """``week``, else the week of ``date``, else year-round."""

        if self.week is not None:
            return int(self.week)
        return YEAR_ROUND if self.date is None else date_to_week(self.date)


@dataclass(frozen=True)
class AudioPlaces:
    """A recording's place distribution over a gallery (see the module docstring).

    ``probs``/``log_probs`` (G,) the final distribution (``method``); ``cosine`` (G,) the
    AG-CLIP similarities; ``agclip_log_probs`` AG-CLIP's own distribution with the prior;
    ``species_log_probs`` the normalised species likelihood (fused with a species term, else
    None); ``log_prior`` (G,); ``region`` (G,) mass within ``radius_km`` of each point;
    ``top`` the listed places (the :mod:`~geoforensics.core.geo.gazetteer` row schema plus
    ``cosine``, ``agclip_probability`` and, fused, ``species_probability``); ``windows`` the
    window outputs the recording gave and ``embedding`` their pooled unit vector.
    """

    method: str
    coords: np.ndarray
    probs: np.ndarray
    log_probs: np.ndarray
    cosine: np.ndarray
    agclip_log_probs: np.ndarray
    species_log_probs: np.ndarray | None
    log_prior: np.ndarray
    region: np.ndarray
    top: list[dict[str, Any]]
    radius_km: float
    temperature: float
    fusion_weight: float | None
    week: int
    prior: str
    embedding: np.ndarray
    windows: WindowOutputs
    pooling: str = "mean"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_windows(self) -> int:
        """Windows the recording gave."""
        return len(self.windows)

    @property
    def scores(self) -> np.ndarray:
        """The cosine similarities (the name :class:`~geoforensics.core.multimodal.LocationMap`
        uses)."""
        return self.cosine

    def summary(self) -> dict[str, Any]:
        """JSON-ready settings and the top places (no per-gallery arrays)."""
        return {
            "method": self.method,
            "n_windows": self.n_windows,
            "pooling": self.pooling,
            "temperature": self.temperature,
            "fusion_weight": self.fusion_weight,
            "week": self.week,
            "prior": self.prior,
            "radius_km": self.radius_km,
            "places": [dict(row) for row in self.top],
            **self.info,
        }


def place_log_probs(
    cosine: ArrayLike, log_prior: ArrayLike | float = 0.0, temperature: float | None = None
) -> np.ndarray:
    """``log_softmax(T · cosine + log prior)`` over the last axis ((G,) or (N, G)): the AG-CLIP
    distribution every consumer uses (``T`` None: GeoCLIP's ≈ 39.7)."""

    log_agclip = agclip_log_probs(cosine, temperature)
    return log_normalise(log_agclip + np.asarray(log_prior, dtype=np.float64), "AG-CLIP scores")


def _check_gallery(gallery: Gallery, index: RetrievalIndex) -> np.ndarray:
    coords = np.asarray(gallery.coords, dtype=np.float64)
    if len(index) != len(coords):
        raise InputError(
            f"gallery {gallery.name!r}: {len(coords)} locations but the index holds {len(index)}"
        )
    return coords


def _windows_of(model: AudioGeolocator | GraphAGCLIP, audio: Any) -> WindowOutputs:

    if isinstance(audio, WindowOutputs):
        if len(audio) == 0:
            raise InputError("no windows to locate")
        return audio
    path = Path(os.fspath(audio))
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    from geoforensics.core.models.graph_agclip import model_window_outputs

    return model_window_outputs(model, path)


def pooled_embedding(
    windows: WindowOutputs, kind: str = "agclip", pooling: str = "mean"
) -> np.ndarray:
    """(D,) float64 unit vector: the windows' AG-CLIP embeddings pooled (``pooling``)."""

    embeddings = np.asarray(windows.outputs["embedding"], dtype=np.float64)
    pooled = pool_outputs(kind, {"embedding": embeddings}, pooling)["embedding"]
    norm = float(np.linalg.norm(pooled))
    if not math.isfinite(norm) or norm == 0.0:
        raise InputError("the audio embedding is zero or not finite; cannot retrieve")
    return np.asarray(pooled / norm, dtype=np.float64)


def gallery_cosine(index: RetrievalIndex, embedding: ArrayLike) -> np.ndarray:
    """(G,) or (N, G) float64 cosine of unit embeddings with every gallery point, in [-1, 1]."""
    query = np.asarray(embedding, dtype=np.float32)
    scores = index.scores(query.reshape(-1, query.shape[-1]))
    out = np.clip(scores.astype(np.float64), -1.0, 1.0)
    return out[0] if query.ndim == 1 else out


def audio_places(
    model: AudioGeolocator | GraphAGCLIP,
    audio: str | os.PathLike[str] | WindowOutputs,
    gallery: Gallery,
    index: RetrievalIndex,
    options: AudioPlaceOptions | None = None,
    species_loglik: ArrayLike | None = None,
    species_info: dict[str, Any] | None = None,
) -> AudioPlaces:
    """Where the recording ``audio`` (a file, or its window outputs) was made, by the AG-CLIP
    ``model`` over ``gallery`` (``index``: the gallery in the model's location space,
    ``retrieval_index_for_model``): see the module docstring.

    ``species_loglik`` (G,) is the species log-likelihood of ``fused`` (any constant per
    gallery); None with ``fused`` runs BirdNET on the file (:func:`birdnet_species_loglik`),
    and no species heard leaves AG-CLIP alone (``info["species"]["note"]`` says so).
    """

    options = options or AudioPlaceOptions()
    options.validate()
    if model.kind != "agclip":
        raise InputError(f"a {model.kind} model; locating audio over a gallery needs AG-CLIP")
    coords = _check_gallery(gallery, index)
    windows = _windows_of(model, audio)
    embedding = pooled_embedding(windows, model.kind, options.pooling)
    cosine = gallery_cosine(index, embedding)
    temperature = agclip_temperature() if options.temperature is None else options.temperature
    log_prior = gallery_log_prior(gallery)
    log_agclip = place_log_probs(cosine, log_prior, temperature)
    week = options.resolved_week()
    log_final, log_species, info = log_agclip, None, dict(species_info or {})
    if options.method == "fused":
        if species_loglik is None:
            if not isinstance(audio, (str, os.PathLike)):
                raise InputError("fused: give the species log-likelihood or an audio file")
            species_loglik, info = birdnet_species_loglik(Path(audio), gallery, options)
        if species_loglik is not None:
            term = np.asarray(species_loglik, dtype=np.float64)
            if term.shape != cosine.shape:
                raise InputError(
                    f"fused: species log-likelihood {term.shape} for {len(coords)} locations"
                )
            log_species = log_normalise(term, "species log-likelihood")
            fused = fuse(cosine, term, options.weight, temperature)
            log_final = log_normalise(fused + log_prior, "fused scores")
    probs = np.exp(log_final)
    region = region_probability(probs, coords, options.radius_km)
    k = min(options.top_k, len(coords))
    top = distinct_top_k(region, coords, k, options.radius_km)

    extras: dict[str, ArrayLike | None] = {
        "cosine": cosine,
        "agclip_probability": np.exp(log_agclip),
    }
    if options.method == "fused":
        extras["species_probability"] = None if log_species is None else np.exp(log_species)
    rows = place_rows(coords, top, region, probs, options.radius_km, extras, options.place_names)
    return AudioPlaces(
        method=options.method,
        coords=coords,
        probs=probs,
        log_probs=log_final,
        cosine=cosine,
        agclip_log_probs=log_agclip,
        species_log_probs=log_species,
        log_prior=log_prior,
        region=region,
        top=rows,
        radius_km=float(options.radius_km),
        temperature=float(temperature),
        fusion_weight=options.weight if options.method == "fused" else None,
        week=week,
        prior=gallery_prior_name(gallery),
        embedding=embedding,
        windows=windows,
        pooling=options.pooling,
        info={"species": info} if options.method == "fused" else {},
    )


def agclip_segment_probs(
    model: AudioGeolocator | GraphAGCLIP,
    windows: WindowOutputs,
    groups: Sequence[ArrayLike],
    gallery: Gallery,
    index: RetrievalIndex,
    options: AudioPlaceOptions | None = None,
) -> np.ndarray:
    """(S, G) AG-CLIP place distributions of ``groups`` of windows (the row indices of each
    timeline segment): for each, the ``probs`` :func:`audio_places` gives for those windows
    with ``method="agclip"``, computed for all groups in one pass (the gallery scores of all
    the pooled embeddings at once)."""

    options = options or AudioPlaceOptions()
    options.validate()
    if options.method != "agclip":
        raise InputError(f"segment distributions are AG-CLIP's, not {options.method!r}")
    if model.kind != "agclip":
        raise InputError(f"a {model.kind} model; locating audio over a gallery needs AG-CLIP")
    _check_gallery(gallery, index)
    if len(groups) == 0:
        return np.zeros((0, len(index)), dtype=np.float64)
    embeddings = np.stack(
        [
            pooled_embedding(segment_windows(windows, rows), model.kind, options.pooling)
            for rows in groups
        ]
    )
    temperature = agclip_temperature() if options.temperature is None else options.temperature
    log_probs = place_log_probs(
        gallery_cosine(index, embeddings), gallery_log_prior(gallery), temperature
    )
    return np.exp(log_probs)


def segment_windows(windows: WindowOutputs, rows: ArrayLike) -> WindowOutputs:
    """The window outputs of the windows ``rows`` (a timeline segment of a recording)."""

    picks = np.asarray(rows, dtype=np.int64)
    return WindowOutputs(
        windows.start_s[picks],
        windows.end_s[picks],
        {name: value[picks] for name, value in windows.outputs.items()},
    )


def birdnet_species_loglik(
    path: Path, gallery: Gallery, options: AudioPlaceOptions
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """BirdNET's species log-likelihood over the gallery for ``fused`` (the species heard in
    ``path``, ``options.species_weights`` / ``min_prob``, sound classes ignored, scored by
    ``locate_species`` in the options' week without a prior) and what was heard.

    None (a flat species term: AG-CLIP alone decides) when BirdNET hears no species above
    ``min_prob`` or none of them is in the range model; ``info["note"]`` says which.
    """

    windows = BirdNETAudio(num_threads=options.threads).windows(path)
    if len(windows) == 0:
        raise InputError(f"{path}: no audio to analyse")
    heard = heard_species(
        windows.probs, windows.labels, options.species_weights, options.min_prob, True
    )
    info: dict[str, Any] = {
        "heard": list(heard.names),
        "weights": [float(w) for w in heard.weights],
        "matched": [],
        "unmatched": [],
        "range_model": options.range_model,
        "note": None,
    }
    if not heard.names:
        info["note"] = (
            f"BirdNET heard no species with probability >= {options.min_prob:g} (highest "
            f"{heard.best:.3f}): the species term is flat and AG-CLIP alone decides"
        )
        return None, info
    range_model = load_range_model(options.range_model)
    match = match_species(
        list(heard.names), list(range_model.species), getattr(range_model, "common_names", None)
    )
    info["matched"], info["unmatched"] = match.matched, match.unmatched
    if not match.matched:
        info["note"] = (
            f"none of the heard species is in the range model {options.range_model}: the "
            "species term is flat and AG-CLIP alone decides"
        )
        return None, info
    result = locate_species(
        list(heard.names),
        range_model,
        gallery,
        week=options.resolved_week(),
        week_weight=options.week_weight,
        model=options.likelihood,
        radius_km=0.0,
        k=1,
        weights=heard.weights,
        area_prior=False,
        progress=False,
    )
    return result.log_likelihood, info


def top1_places(
    embeddings: ArrayLike,
    gallery: Gallery,
    index: RetrievalIndex,
    temperature: float | None = None,
) -> np.ndarray:
    """(N,) gallery index of each recording's most probable place: the argmax of
    :func:`audio_places`' distribution for N pooled embeddings at once (the bench), scored
    in chunks of bounded memory (ties: the first point)."""

    _check_gallery(gallery, index)
    rows = np.asarray(embeddings, dtype=np.float64)
    if rows.ndim != 2:
        raise InputError(f"embeddings: expected (N, D), got shape {rows.shape}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.isfinite(norms).all() or (norms == 0).any():
        raise InputError("an audio embedding is zero or not finite; cannot retrieve")
    rows = rows / norms
    log_prior = gallery_log_prior(gallery)
    out = np.empty(len(rows), dtype=np.int64)
    step = max(1, _CHUNK_ENTRIES // max(len(index), 1))
    for start in range(0, len(rows), step):
        cosine = gallery_cosine(index, rows[start : start + step])
        out[start : start + step] = np.argmax(place_log_probs(cosine, log_prior, temperature), 1)
    return out


__all__ = [
    "AUDIO_PLACE_METHODS",
    "DEFAULT_PLACE_RADIUS_KM",
    "AudioPlaceOptions",
    "AudioPlaces",
    "agclip_segment_probs",
    "audio_places",
    "birdnet_species_loglik",
    "gallery_cosine",
    "place_log_probs",
    "pooled_embedding",
    "segment_windows",
    "top1_places",
]
