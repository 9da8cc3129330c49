"""Running a trained model on audio files: per-window outputs, recording-level predictions.

A recording is cut into the dense windows of the model's own front-end (streamed, so a
two-hour file never sits in memory as audio; a model on a frozen ``waveform-features`` encoder
such as BirdNET gets raw waveform windows on the same 3 s / 1.5 s grid at its extractor's
sample rate, and the extractor computes their features before the head), every window goes
through the model under ``torch.inference_mode`` in eval mode (the caller's train/eval mode is
restored afterwards), and the window outputs are pooled (:mod:`.pooling`) into one prediction:

- AG-CLIP: the pooled embedding, L2-normalised, is matched against a gallery
  (:class:`~geoforensics.core.geoclip.retrieval.RetrievalIndex`): top-k places, their cosine
  scores, and the full score vector over the gallery (heatmaps);
- regression: the pooled latitude/longitude (spherical mean of the windows);
- classification: the centre of the H3 cell with the highest mean window probability, with
  the probability vector over all cells (and the top-k cells).

:func:`predict_recordings` runs many recordings, packing the windows of short recordings
together into full batches, and returns an (N, 2) array of predicted coordinates.

Speed: windows go through the model in batches (``batch_size``, default 32), the front-end
is vectorised over each batch (one STFT call, the mel bands as one matmul), and on the CPU a
MobileNetV3 model runs as an exported graph (:mod:`.onnx_backend`: OpenVINO when the
``openvino`` extra is installed, else ONNX Runtime; about 4-5x torch eager here, same outputs
to float32 rounding; ``GEOFORENSICS_INFERENCE_BACKEND=torch`` turns it off); glibc's mmap
threshold is pinned (:func:`fix_malloc_threshold`) so that memory stays flat over hours of
audio. ``geoforensics perf`` measures all of this.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geoforensics.core.audio.frontend import MelFrontEnd
from geoforensics.core.audio.windows import WindowBatch, iter_window_batches
from geoforensics.core.errors import GeoforensicsError, InputError
from geoforensics.core.geo.h3cells import cell_centers
from geoforensics.core.geo.ranking import softmax
from geoforensics.core.models.geolocator import AudioGeolocator
from geoforensics.core.models.graph_runners import fix_malloc_threshold
from geoforensics.core.models.pooling import POOLING_METHODS, pool_outputs
from geoforensics.core.models.recording_outputs import WindowOutputs
from geoforensics.core.models.transformer_pooling import TransformerPooling

if TYPE_CHECKING:
    from geoforensics.core.audio.frontend import MelFrontEnd
    from geoforensics.core.audio.windows import WindowBatch
    from geoforensics.core.geoclip.retrieval import RetrievalIndex

Pooling = str | TransformerPooling
#: Most raw waveform windows per batch for waveform-features models (3 s at 48 kHz each).
WAVEFORM_BATCH_SIZE = 64


@dataclass(frozen=True)
class Prediction:
    """A recording-level prediction.

    ``coords`` (k, 2) lat/lon best first (regression: one row) with ``scores`` (k,) (cosine
    similarity for AG-CLIP, probability for classification, NaN for regression) and
    ``indices`` (k,) into the gallery or the H3 cell list (-1 for regression).
    ``score_vector`` is the full score over the gallery (AG-CLIP) or the probability over all
    cells (classification); ``None`` for regression. ``pooled`` holds the pooled outputs,
    ``windows`` the per-window outputs they came from.
    """

    kind: str
    coords: np.ndarray
    scores: np.ndarray
    indices: np.ndarray
    score_vector: np.ndarray | None
    pooled: dict[str, np.ndarray]
    windows: WindowOutputs

    @property
    def latlon(self) -> np.ndarray:
        """(2,) the top-1 prediction."""
        return self.coords[0]


@contextlib.contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and inference mode for the block; the previous mode comes back after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _frontend(model: AudioGeolocator) -> MelFrontEnd | None:
    """The model's mel front-end (None for a waveform-features model, which reads waveforms)."""

    return None if model.frozen_features else MelFrontEnd(model.frontend_config)


def _batch_size(model: AudioGeolocator, batch_size: int) -> int:
    """Windows per batch: raw 3 s waveform windows at 48 kHz are large and the extractor runs
    a few at a time anyway, so waveform-features models use at most
    :data:`WAVEFORM_BATCH_SIZE`."""
    if batch_size <= 0:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    return min(batch_size, WAVEFORM_BATCH_SIZE) if model.frozen_features else batch_size


def _window_batches(
    model: AudioGeolocator,
    path: str | os.PathLike[str],
    batch_size: int,
    frontend: MelFrontEnd | None,
) -> Iterator[WindowBatch]:
    """The model's input windows of a file: spectrogram images, or raw waveform windows (at the
    extractor's rate, on the same window grid) for a waveform-features model."""

    if not model.frozen_features:
        yield from iter_window_batches(path, frontend or _mel(model), batch_size)
        return
    from geoforensics.core.models.encoders import iter_waveform_windows

    config = model.frontend_config
    for part in iter_waveform_windows(path, config, batch_size):
        yield WindowBatch(
            index=part.index,
            start_s=part.start / config.sample_rate,
            end_s=part.end / config.sample_rate,
            images=torch.from_numpy(part.windows),
        )


def _mel(model: AudioGeolocator) -> MelFrontEnd:

    return MelFrontEnd(model.frontend_config)


def _run_batch(
    model: AudioGeolocator, images: torch.Tensor, with_features: bool
) -> dict[str, np.ndarray]:
    """Model outputs (and optionally features) of one batch of model inputs (images, or raw
    waveform windows for a waveform-features model), as float32 numpy."""
    from geoforensics.core.models.onnx_backend import onnx_runner

    runner = onnx_runner(model)
    if runner is not None:  # the fast CPU path: ONNX Runtime, same outputs (module doc)
        feature_array, head = runner(images)
        features = torch.from_numpy(feature_array)
        raw = model.split_outputs(torch.from_numpy(head))
    else:
        if model.frozen_features:
            inputs = model.features_from_waveforms(images)
        else:
            inputs = images.to(_device_of(model))
        features = model.features(inputs)
        raw = model.outputs_from_features(features)
    result = {name: value.float().cpu().numpy() for name, value in raw.items()}
    if model.kind == "classification":
        result["probs"] = torch.softmax(raw["logits"].float(), dim=-1).cpu().numpy()
    if with_features:
        result["features"] = features.float().cpu().numpy()
    return result


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _needs_features(pooling: Pooling) -> bool:
    return isinstance(pooling, TransformerPooling) and pooling.input_key == "features"


def window_outputs(
    model: AudioGeolocator,
    path: str | os.PathLike[str],
    batch_size: int = 32,
    with_features: bool = False,
    frontend: MelFrontEnd | None = None,
) -> WindowOutputs:
    """Outputs of ``model`` for every dense window of the file at ``path`` (a
    waveform-features model computes its encoder's features from the audio first)."""
    frontend = _frontend(model) if frontend is None else frontend
    batch_size = _batch_size(model, batch_size)
    fix_malloc_threshold()
    starts, ends, parts = [], [], []
    with _evaluating(model):
        for batch in _window_batches(model, path, batch_size, frontend):
            starts.append(batch.start_s)
            ends.append(batch.end_s)
            parts.append(_run_batch(model, torch.as_tensor(batch.images), with_features))
    if not parts:
        raise InputError(f"{path}: no audio samples, so no window to run the model on")
    return WindowOutputs(np.concatenate(starts), np.concatenate(ends), _concat(parts))


def _pool(
    model: AudioGeolocator, outputs: dict[str, np.ndarray], pooling: Pooling
) -> dict[str, np.ndarray]:
    if isinstance(pooling, str):
        if pooling not in POOLING_METHODS:
            raise InputError(f"pooling {pooling!r}: choose one of {', '.join(POOLING_METHODS)}")
        return pool_outputs(model.kind, outputs, pooling)
    key = pooling.input_key
    if key not in outputs:
        raise InputError(f"transformer pooling reads {key!r}, not among {sorted(outputs)}")
    if pooling.out_dim != model.config.output_dim:
        raise InputError(
            f"transformer pooling outputs {pooling.out_dim} values, the model's head "
            f"{model.config.output_dim}"
        )
    with _evaluating(pooling):
        windows = torch.from_numpy(outputs[key]).to(_device_of(pooling))
        raw = pooling.pool_recording(windows)[None]
        pooled = {
            name: value[0].float().cpu().numpy() for name, value in model.split_outputs(raw).items()
        }
    if model.kind == "classification":
        pooled["probs"] = softmax(pooled["logits"]).astype(np.float32)
    return pooled


def _topk_desc(values: np.ndarray, k: int) -> np.ndarray:
    k = min(k, values.size)
    part = np.argpartition(-values, k - 1)[:k]
    return part[np.lexsort((part, -values[part]))]


def _predict_from_pooled(
    model: AudioGeolocator,
    pooled: dict[str, np.ndarray],
    gallery_index: RetrievalIndex | None,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(coords (k,2), scores (k,), indices (k,), score vector or None) of one recording."""
    if k < 1:
        raise InputError(f"top-k: k must be >= 1, got {k}")
    if model.kind == "agclip":
        if gallery_index is None:
            raise InputError("an AG-CLIP model needs a gallery (RetrievalIndex) to locate audio")
        query = pooled["embedding"].astype(np.float32)[None]
        norm = float(np.linalg.norm(query))
        if not np.isfinite(norm) or norm == 0.0:
            raise InputError("the pooled embedding is zero or not finite; cannot retrieve")
        query = query / norm
        score_vector = gallery_index.scores(query)[0]
        top = gallery_index.search(query, min(k, len(gallery_index)))
        return top.coords[0], top.scores[0], top.indices[0], score_vector
    if model.kind == "regression":
        latlon = np.asarray(pooled["latlon"], dtype=np.float64)[None]
        return latlon, np.full(1, np.nan), np.full(1, -1, dtype=np.int64), None

    probs = np.asarray(pooled["probs"], dtype=np.float32)
    order = _topk_desc(probs, k)
    centres = cell_centers(model.config.h3_resolution)
    return centres[order], probs[order], order.astype(np.int64), probs


def locate_recording(
    model: AudioGeolocator,
    path: str | os.PathLike[str],
    gallery_index: RetrievalIndex | None = None,
    k: int = 5,
    pooling: Pooling = "mean",
    batch_size: int = 32,
) -> Prediction:
    """Predict where the recording at ``path`` was made (see the module docstring).

    ``pooling`` is a method name (``mean``, ``max``, ``kmeans``) or a trained
    :class:`TransformerPooling`; AG-CLIP models need ``gallery_index``.
    """
    windows = window_outputs(model, path, batch_size, with_features=_needs_features(pooling))
    pooled = _pool(model, windows.outputs, pooling)
    coords, scores, indices, vector = _predict_from_pooled(model, pooled, gallery_index, k)
    return Prediction(model.kind, coords, scores, indices, vector, pooled, windows)


# ---------------------------------------------------------------------------------------------
# many recordings


def _path_of(recording: Any) -> Path:
    path = getattr(recording, "path", recording)
    if path is None:
        name = getattr(recording, "id", recording)
        raise InputError(f"recording {name}: no audio file")
    return Path(path)


@dataclass
class _Pending:
    """A recording whose windows are still being read or waiting in a model batch."""

    path: Path | None
    parts: list[dict[str, np.ndarray]]
    outstanding: int = 0  # image chunks buffered but not yet run
    finished: bool = False  # all windows read (or the recording failed)
    failed: bool = False


def iter_window_outputs(
    model: AudioGeolocator,
    recordings: Iterable[Any],
    batch_size: int = 32,
    with_features: bool = False,
    on_error: str = "raise",
    keys: Sequence[str] | None = None,
) -> Iterator[dict[str, np.ndarray] | None]:
    """Unpooled window outputs of each recording (``Recording`` objects or paths), in order:
    one dict of (W, ·) float32 arrays per recording (``features`` too with ``with_features``).

    Windows of consecutive recordings share model batches (``batch_size`` windows or a few
    more), so many short recordings run as fast as one long one; each recording's window
    outputs are held until it is complete. ``keys`` keeps only those outputs (less memory when
    collecting, e.g., the features of a whole split). With ``on_error="skip"`` a recording that
    cannot be read (missing, corrupt, empty) yields ``None`` instead of raising.
    """
    if on_error not in ("raise", "skip"):
        raise InputError(f"on_error {on_error!r}: 'raise' or 'skip'")
    frontend = _frontend(model)
    batch_size = _batch_size(model, batch_size)
    fix_malloc_threshold()
    wanted = None if keys is None else tuple(keys)
    if wanted is not None:
        with_features = with_features or "features" in wanted
        known = {*model.split_outputs(torch.zeros(1, model.config.output_dim))}
        known |= {"features"} | ({"probs"} if model.kind == "classification" else set())
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise InputError(f"window outputs {unknown}: the model gives {sorted(known)}")
    waiting: deque[_Pending] = deque()
    images: list[torch.Tensor] = []
    owners: list[_Pending] = []

    def flush() -> None:
        if not images:
            return
        with _evaluating(model):
            outputs = _run_batch(model, torch.cat(images), with_features)
        if wanted is not None:
            outputs = {name: outputs[name] for name in wanted}
        offsets = np.cumsum([0, *(len(chunk) for chunk in images)])
        for owner, start, stop in zip(owners, offsets[:-1], offsets[1:], strict=True):
            owner.parts.append({name: value[start:stop] for name, value in outputs.items()})
            owner.outstanding -= 1
        images.clear()
        owners.clear()

    def ready() -> Iterator[dict[str, np.ndarray] | None]:
        while waiting and waiting[0].finished and waiting[0].outstanding == 0:
            done = waiting.popleft()
            yield None if done.failed else _concat(done.parts)

    for recording in recordings:
        entry = _Pending(None, [])
        waiting.append(entry)
        try:
            entry.path = _path_of(recording)
            for batch in _window_batches(model, entry.path, batch_size, frontend):
                images.append(torch.as_tensor(batch.images))
                owners.append(entry)
                entry.outstanding += 1
                if sum(len(chunk) for chunk in images) >= batch_size:
                    flush()
            if not entry.parts and not entry.outstanding:
                raise InputError(f"{entry.path}: no audio samples")
        except GeoforensicsError:
            if on_error == "raise":
                raise
            keep = [i for i, owner in enumerate(owners) if owner is not entry]
            images[:] = [images[i] for i in keep]
            owners[:] = [owners[i] for i in keep]
            entry.outstanding, entry.failed = 0, True
        entry.finished = True
        yield from ready()
    flush()
    yield from ready()


def iter_pooled_outputs(
    model: AudioGeolocator,
    recordings: Iterable[Any],
    batch_size: int = 32,
    pooling: Pooling = "mean",
    on_error: str = "raise",
) -> Iterator[dict[str, np.ndarray] | None]:
    """Pooled outputs of each recording (``Recording`` objects or paths), in order.

    The window outputs come from :func:`iter_window_outputs` (windows of consecutive
    recordings share model batches) and are pooled as each recording completes. With
    ``on_error="skip"`` a recording that cannot be read yields ``None`` instead of raising.
    """
    stream = iter_window_outputs(
        model, recordings, batch_size, with_features=_needs_features(pooling), on_error=on_error
    )
    for outputs in stream:
        yield None if outputs is None else _pool(model, outputs, pooling)


def predict_recordings(
    model: AudioGeolocator,
    recordings: Sequence[Any],
    gallery_index: RetrievalIndex | None = None,
    batch_size: int = 32,
    pooling: Pooling = "mean",
    on_error: str = "raise",
    progress: bool = True,
) -> np.ndarray:
    """(N, 2) top-1 lat/lon of each recording (``Recording`` objects or paths).

    With ``on_error="skip"`` unreadable recordings get NaN rows (a miss in the metrics).
    """
    from tqdm.auto import tqdm

    if model.kind == "agclip" and gallery_index is None:
        raise InputError("an AG-CLIP model needs a gallery (RetrievalIndex) to locate audio")
    predictions = np.full((len(recordings), 2), np.nan)
    queries: list[np.ndarray] = []
    query_rows: list[int] = []
    stream = iter_pooled_outputs(model, recordings, batch_size, pooling, on_error)
    bar = tqdm(stream, total=len(recordings), disable=not progress, desc="recordings")
    for row, pooled in enumerate(bar):
        if pooled is None:
            continue
        if model.kind == "agclip":
            embedding = pooled["embedding"].astype(np.float32)
            if np.isfinite(embedding).all() and np.any(embedding):
                queries.append(embedding)
                query_rows.append(row)
        else:
            coords, _, _, _ = _predict_from_pooled(model, pooled, None, 1)
            predictions[row] = coords[0]
    if queries:
        assert gallery_index is not None
        top = gallery_index.search(np.stack(queries), 1)
        predictions[np.asarray(query_rows)] = top.coords[:, 0]
    return predictions
