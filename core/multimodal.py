"""Cross-modal retrieval and map helpers in the shared GeoCLIP space (the app's Locate and
Retrieve pages call these; nothing here imports Streamlit).

AG-CLIP maps audio onto GeoCLIP's location embeddings, and GeoCLIP's image MLP maps CLIP
image and text features into the same 512-d space (paper appendix A.10), so one cosine
similarity compares any two of audio, images, text and places:

- :func:`rank_by_similarity`: candidates (texts, images) ranked by cosine to a query
  embedding, with softmax probabilities at GeoCLIP's temperature (exp(logit_scale) ≈ 39.7);
- :func:`country_prompts` / :func:`rank_countries`: "a sound recorded in {country}" prompts
  over ISO 3166 country names (``pycountry``) through CLIP's text tower;
- :func:`audio_embedding`: the pooled, L2-normalised AG-CLIP embedding of one audio file;
- :func:`species_soundscape`: the paper's A.11 species soundscape map: the mean AG-CLIP
  embedding of one species' recordings against every gallery location's embedding;
- :func:`locate_audio` / :func:`location_map`: a probability map over a gallery with top-k
  places (region mass within ``radius_km``, as ``geoforensics locate`` ranks them; audio
  through :func:`geoforensics.core.models.audio_places.audio_places`, the one audio path);
- :func:`aggregate_to_cells`: gallery values summed (or averaged) into H3 cells, the
  hexagons the app draws.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.data.inatsounds import INatSounds, available_splits
from geoforensics.core.errors import DatasetNotFoundError, InputError
from geoforensics.core.geo.gallery import from_coords
from geoforensics.core.geo.gazetteer import place_rows
from geoforensics.core.geo.h3cells import latlng_to_cells
from geoforensics.core.geo.ranking import distinct_top_k, region_probability, softmax
from geoforensics.core.geoclip.location_encoder import geoclip_temperature
from geoforensics.core.models.audio_places import (
    DEFAULT_PLACE_RADIUS_KM,
    AudioPlaceOptions,
    audio_places,
)
from geoforensics.core.models.inference import iter_pooled_outputs
from geoforensics.core.models.model_space import model_location_encoder_name
from geoforensics.core.species.fusion import log_normalise
from geoforensics.core.species.likelihood import DEFAULT_RADIUS_KM

if TYPE_CHECKING:
    from geoforensics.core.data.inatsounds import Recording
    from geoforensics.core.geo.gallery import Gallery
    from geoforensics.core.geoclip.retrieval import RetrievalIndex
    from geoforensics.core.models.geolocator import AudioGeolocator

#: The text prompt of :func:`country_prompts` (``{country}`` is replaced by the name).
DEFAULT_COUNTRY_TEMPLATE = "a sound recorded in {country}"
#: The data splits a species soundscape map reads recordings from by default.
DEFAULT_SOUNDSCAPE_SPLITS: tuple[str, ...] = ("train", "val", "test")


class TextEncoder(Protocol):
    """What :func:`rank_countries` needs of an encoder (``GeoImageTextEncoder`` has it)."""

    def embed_texts(self, texts: Sequence[str], batch_size: int = ...) -> np.ndarray: ...


# ---------------------------------------------------------------------------- ranking


@dataclass(frozen=True)
class Ranked:
    """One ranked candidate: its ``label``, ``key`` (e.g. ISO code, file name), cosine
    ``score`` with the query and ``probability`` (softmax over all candidates)."""

    rank: int
    key: str
    label: str
    score: float
    probability: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "rank": self.rank,
            "key": self.key,
            "label": self.label,
            "score": self.score,
            "probability": self.probability,
        }


def _temperature(temperature: float | None) -> float:
    if temperature is None:
        return float(geoclip_temperature())
    value = float(temperature)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"temperature {temperature}: must be a positive number")
    return value


def unit_vectors(embeddings: ArrayLike, name: str = "embeddings") -> np.ndarray:
    """(N, D) float64 rows scaled to unit length; zero, NaN or infinite rows are an error."""
    array = np.asarray(embeddings, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] == 0:
        raise InputError(f"{name}: expected (N, D) embeddings, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: contains NaN or infinite values")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InputError(f"{name}: a zero vector has no direction")
    return array / norms


def rank_by_similarity(
    query: ArrayLike,
    candidates: ArrayLike,
    labels: Sequence[str],
    keys: Sequence[str] | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
) -> list[Ranked]:
    """Candidates (N, D) ranked by cosine similarity to ``query`` (D,), best first.

    Probabilities are softmax(temperature × cosine) over all N candidates (GeoCLIP's
    temperature when None); ties keep the candidates' order. ``top_k`` keeps the best k.
    """
    q = unit_vectors(query, "query embedding")
    c = unit_vectors(candidates, "candidate embeddings")
    if q.shape != (1, c.shape[1]):
        raise InputError(
            f"query embedding: shape {np.asarray(query).shape} does not match the "
            f"{c.shape[1]}-d candidates"
        )
    if len(labels) != len(c) or (keys is not None and len(keys) != len(c)):
        raise InputError(f"ranking: {len(c)} candidates but {len(labels)} labels")
    scores = (c @ q[0]).astype(np.float64)
    probs = softmax(scores * _temperature(temperature))
    order = np.argsort(-scores, kind="stable")
    if top_k is not None:
        if top_k < 1:
            raise InputError(f"top-k: k must be >= 1, got {top_k}")
        order = order[:top_k]
    names = list(labels) if keys is None else list(keys)
    return [
        Ranked(rank, str(names[i]), str(labels[i]), float(scores[i]), float(probs[i]))
        for rank, i in enumerate(order, start=1)
    ]


# ---------------------------------------------------------------------------- countries


@functools.cache
def country_names() -> tuple[tuple[str, str], ...]:
    """(ISO 3166-1 alpha-2 code, name) of every country ``pycountry`` knows, by code.

    The common name is preferred where ISO's official short name is unwieldy
    ("Bolivia" rather than "Bolivia, Plurinational State of").
    """
    import pycountry

    out = []
    for country in pycountry.countries:
        name = getattr(country, "common_name", None) or country.name
        out.append((str(country.alpha_2), str(name)))
    return tuple(sorted(out))


def country_prompts(
    template: str = DEFAULT_COUNTRY_TEMPLATE,
) -> tuple[list[str], list[str], list[str]]:
    """(codes, names, prompts): one text prompt per country from ``template``."""
    if "{country}" not in template:
        raise InputError(f"prompt template {template!r}: must contain {{country}}")
    codes, names = zip(*country_names(), strict=True)
    return list(codes), list(names), [template.replace("{country}", n) for n in names]


def country_text_embeddings(
    encoder: TextEncoder, template: str = DEFAULT_COUNTRY_TEMPLATE
) -> np.ndarray:
    """(C, 512) GeoCLIP-space embeddings of the country prompts (CLIP text tower + MLP)."""
    _codes, _names, prompts = country_prompts(template)
    return np.asarray(encoder.embed_texts(prompts), dtype=np.float32)


def rank_countries(
    query: ArrayLike,
    encoder: TextEncoder | None = None,
    template: str = DEFAULT_COUNTRY_TEMPLATE,
    text_embeddings: ArrayLike | None = None,
    top_k: int | None = 10,
) -> list[Ranked]:
    """Countries ranked by how well "a sound recorded in {country}" matches ``query`` (an
    AG-CLIP audio embedding); pass ``text_embeddings`` (from :func:`country_text_embeddings`)
    to skip the text tower."""
    codes, names, _prompts = country_prompts(template)
    if text_embeddings is None:
        if encoder is None:
            raise InputError("rank_countries: give a text encoder or the prompts' embeddings")
        text_embeddings = country_text_embeddings(encoder, template)
    return rank_by_similarity(query, text_embeddings, names, keys=codes, top_k=top_k)


# ------------------------------------------------------------------------------ audio


def _check_agclip(model: AudioGeolocator, source: str) -> None:
    if model.kind != "agclip":
        raise InputError(f"{source}: a {model.kind} model; audio retrieval needs an AG-CLIP model")


def audio_embedding(model: AudioGeolocator, path: str | os.PathLike[str]) -> np.ndarray:
    """(D,) float32 unit-norm AG-CLIP embedding of the audio file at ``path`` (mean pooling
    of its windows, as the model locates recordings)."""

    _check_agclip(model, str(path))
    (pooled,) = list(iter_pooled_outputs(model, [Path(path)], pooling="mean"))
    assert pooled is not None  # on_error="raise"
    return unit_vectors(pooled["embedding"], f"{path}: AG-CLIP embedding")[0].astype(np.float32)


def mean_embedding(embeddings: ArrayLike) -> np.ndarray:
    """(D,) unit-norm mean of unit-normalised embeddings (the direction they share)."""
    rows = unit_vectors(embeddings, "embeddings to average")
    return unit_vectors(rows.mean(axis=0), "mean embedding")[0]


def check_geoclip_space(model_dir: str | os.PathLike[str]) -> None:
    """InputError unless the model retrieves in GeoCLIP's location space (CLIP's image and
    text embeddings live there; a SINR- or SatCLIP-space model cannot be compared)."""

    name = model_location_encoder_name(model_dir)
    if name != "geoclip":
        raise InputError(
            f"{model_dir}: trained against the {name} location encoder; audio-to-text and "
            "audio-to-image retrieval need a GeoCLIP-space AG-CLIP model"
        )


# ------------------------------------------------------------------------------- maps


@dataclass(frozen=True)
class LocationMap:
    """A probability map over gallery points and its top-k places.

    ``coords`` (G, 2), ``probs`` (G,) summing to 1, ``top`` rows in the one place-row schema
    of :mod:`geoforensics.core.geo.gazetteer` (rank, gallery_index, latitude, longitude,
    region_probability, point_probability, radius_km, label, place, and for audio cosine
    and agclip_probability), ``scores`` (G,) the raw cosine similarities when the map came
    from them.
    """

    coords: np.ndarray
    probs: np.ndarray
    top: list[dict[str, Any]]
    radius_km: float
    scores: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def location_map(
    log_probs: ArrayLike,
    coords: ArrayLike,
    top_k: int = 5,
    radius_km: float | None = None,
    scores: ArrayLike | None = None,
    place_names: bool = True,
) -> LocationMap:
    """:class:`LocationMap` from (G,) log-probabilities (normalised here) over ``coords``
    (images and text; audio goes through :func:`locate_audio`).

    Places are ranked by the probability mass within ``radius_km`` (500 km by default, as
    ``geoforensics locate``) and kept at least that far apart; labels name the nearest
    place of the offline gazetteer.
    """

    points = np.asarray(coords, dtype=np.float64)
    values = np.asarray(log_probs, dtype=np.float64)
    if values.shape != (len(points),):
        raise InputError(f"location map: {values.shape} scores for {len(points)} locations")
    radius = DEFAULT_RADIUS_KM if radius_km is None else float(radius_km)
    probs = np.exp(log_normalise(values, "location scores"))
    region = region_probability(probs, points, radius)
    top = distinct_top_k(region, points, min(top_k, len(points)), radius)
    rows = place_rows(points, top, region, probs, radius, place_names=place_names)
    raw = None if scores is None else np.asarray(scores, dtype=np.float64)
    return LocationMap(points, probs, rows, radius, raw)


def locate_audio(
    model: AudioGeolocator,
    path: str | os.PathLike[str],
    index: RetrievalIndex,
    top_k: int = 5,
    radius_km: float | None = None,
    gallery: Gallery | None = None,
) -> LocationMap:
    """Where the audio at ``path`` was recorded, by an AG-CLIP ``model`` over the gallery of
    ``index`` (built by ``retrieval_index_for_model``).

    The one audio path (:func:`geoforensics.core.models.audio_places.audio_places`,
    softmax(T × cosine + log prior), T ≈ 39.7) that ``geoforensics locate --method agclip``
    and ``check`` take. ``gallery`` decides the prior (cell area on ``grid-*``/``land-*``
    galleries); None: uniform over ``index``'s points.
    """

    _check_agclip(model, str(path))
    radius = DEFAULT_PLACE_RADIUS_KM if radius_km is None else float(radius_km)
    where = from_coords(index.coords, name="index") if gallery is None else gallery
    options = AudioPlaceOptions(method="agclip", top_k=top_k, radius_km=radius)
    result = audio_places(model, path, where, index, options)
    info = {
        "source": str(path),
        "windows_pooling": result.pooling,
        "n_windows": result.n_windows,
        "temperature": result.temperature,
        "prior": result.prior,
    }
    return LocationMap(result.coords, result.probs, result.top, radius, result.cosine, info)


def affinity_map(
    embedding: ArrayLike, index: RetrievalIndex, temperature: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(cosine (G,), probability (G,)) of one embedding against every gallery location:
    softmax(temperature × cosine), GeoCLIP's temperature when None."""
    query = unit_vectors(embedding, "affinity embedding").astype(np.float32)
    cosine = index.scores(query)[0].astype(np.float64)
    return cosine, softmax(cosine * _temperature(temperature))


# ----------------------------------------------------------------------- H3 hexagons


@functools.lru_cache(maxsize=8)
def _cells_of(coords_bytes: bytes, digest: str, res: int) -> tuple[str | None, ...]:
    del digest  # part of the cache key only

    coords = np.frombuffer(coords_bytes, dtype=np.float64).reshape(-1, 2)
    return tuple(latlng_to_cells(coords, res))


def cells_of(coords: ArrayLike, res: int) -> list[str | None]:
    """H3 cell of each (lat, lon) row at ``res`` (cached per coordinate array)."""
    if not 0 <= int(res) <= 15:
        raise InputError(f"H3 resolution {res}: must be 0..15")
    points = np.ascontiguousarray(np.asarray(coords, dtype=np.float64).reshape(-1, 2))
    raw = points.tobytes()
    return list(_cells_of(raw, hashlib.sha256(raw).hexdigest(), int(res)))


def aggregate_to_cells(
    coords: ArrayLike, values: ArrayLike, res: int = 2, reduce: str = "sum"
) -> tuple[list[str], np.ndarray]:
    """(cells, values): gallery ``values`` (G,) summed (probabilities) or averaged (scores)
    into the H3 cells at ``res`` that hold gallery points, cells sorted by value, largest
    first."""
    if reduce not in ("sum", "mean", "max"):
        raise InputError(f"reduce {reduce!r}: 'sum', 'mean' or 'max'")
    data = np.asarray(values, dtype=np.float64)
    cells = cells_of(coords, res)
    if data.shape != (len(cells),):
        raise InputError(f"aggregate: {data.shape} values for {len(cells)} locations")
    keep = [i for i, cell in enumerate(cells) if cell is not None and np.isfinite(data[i])]
    kept_cells = [str(cells[i]) for i in keep]
    names = sorted(set(kept_cells))
    position = {name: j for j, name in enumerate(names)}
    slots = np.array([position[cell] for cell in kept_cells], dtype=np.int64)
    kept = data[keep]
    if reduce == "max":
        out = np.full(len(names), -np.inf)
        np.maximum.at(out, slots, kept)
    else:
        out = np.bincount(slots, weights=kept, minlength=len(names))
        if reduce == "mean":
            out = out / np.bincount(slots, minlength=len(names))
    order = np.argsort(-out, kind="stable")
    return [str(names[j]) for j in order], out[order]


# -------------------------------------------------------------- species soundscapes


def species_counts(
    root: str | os.PathLike[str], splits: Sequence[str] = DEFAULT_SOUNDSCAPE_SPLITS
) -> list[tuple[str, int]]:
    """(species, recordings) of an iNatSounds-format folder over ``splits`` (those present),
    most recorded first."""
    counts: Counter[str] = Counter()
    for recording in _recordings(root, splits):
        counts[recording.species] += 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _recordings(root: str | os.PathLike[str], splits: Sequence[str]) -> list[Recording]:

    folder = Path(root)
    present = set(available_splits(folder)) if folder.is_dir() else set()
    chosen = [s for s in splits if s in present]
    if not chosen:
        raise DatasetNotFoundError(
            f"{root}: no iNatSounds split among {', '.join(splits)} (need e.g. train.json)"
        )
    out: list[Recording] = []
    for split in chosen:
        out.extend(INatSounds(folder, split=split).recordings)
    return out


@dataclass(frozen=True)
class SpeciesSoundscape:
    """A species soundscape map (paper A.11): ``embedding`` is the unit-norm mean AG-CLIP
    embedding of ``n_recordings`` recordings of ``species``; ``cosine``/``probs`` (G,) its
    affinity with each gallery location; ``recording_coords`` where they were made."""

    species: str
    n_recordings: int
    embedding: np.ndarray
    coords: np.ndarray
    cosine: np.ndarray
    probs: np.ndarray
    recording_coords: np.ndarray

    @property
    def peak(self) -> tuple[float, float]:
        """The gallery location of highest affinity."""
        lat, lon = self.coords[int(np.argmax(self.cosine))]
        return float(lat), float(lon)


def species_soundscape(
    model: AudioGeolocator,
    index: RetrievalIndex,
    root: str | os.PathLike[str],
    species: str,
    splits: Sequence[str] = DEFAULT_SOUNDSCAPE_SPLITS,
    max_recordings: int | None = 64,
    progress: Callable[[float, str], None] | None = None,
) -> SpeciesSoundscape:
    """The soundscape map of ``species`` over the gallery of ``index`` (see
    :class:`SpeciesSoundscape`), from at most ``max_recordings`` of its recordings in the
    iNatSounds-format folder ``root`` (evenly spaced through them when there are more)."""

    _check_agclip(model, "species soundscape")
    chosen = [r for r in _recordings(root, splits) if r.species == species]
    if not chosen:
        raise InputError(f"{root}: no recording of species {species!r} in {', '.join(splits)}")
    if max_recordings is not None and len(chosen) > max_recordings:
        picks = np.linspace(0, len(chosen) - 1, max_recordings).round().astype(int)
        chosen = [chosen[i] for i in picks]
    rows = []
    for i, pooled in enumerate(iter_pooled_outputs(model, chosen, on_error="skip")):
        if pooled is not None:
            rows.append(pooled["embedding"])
        if progress is not None:
            progress((i + 1) / len(chosen), f"embedded {i + 1}/{len(chosen)} recordings")
    if not rows:
        raise InputError(f"{root}: none of the recordings of {species!r} could be read")
    embedding = mean_embedding(np.stack(rows))
    cosine, probs = affinity_map(embedding, index)
    where = np.array([(r.latitude, r.longitude) for r in chosen], dtype=np.float64)
    return SpeciesSoundscape(
        species, len(rows), embedding.astype(np.float32), index.coords, cosine, probs, where
    )
