"""Window-feature cache: frozen-encoder features of every window of a split, computed once.

For a ``waveform-features`` encoder (BirdNET; see :mod:`geoforensics.core.models.encoders`) the
encoder never changes during training, so each window's features are computed once with the
encoder's extractor and training reads them from disk, as the spectrogram path reads cached
spectrogram frames (:mod:`.spec_cache`). Windows are the paper's grid (3 s, stride 1.5 s, placed
by :func:`~geoforensics.core.audio.windows.window_starts`) on audio decoded at the extractor's
rate (48 kHz for BirdNET): one extractor window per paper window, exactly the windows that
inference (:mod:`geoforensics.core.models.inference`) computes from the audio.

``CACHE/<key>/features.f32``
    all cached windows' features, window-major: a (total_windows, feature_dim) little-endian
    float32 array read through ``np.memmap``;
``CACHE/<key>/index.npz``
    ``offsets`` (R + 1,): recording r owns rows ``offsets[r]:offsets[r + 1]``; ``starts``
    (total_windows,): each row's window start in samples at the extractor's rate;
    ``dense_windows`` (R,): windows of each recording's full grid; ``ids`` (R,): recording ids;
``CACHE/<key>/meta.json``
    format, key inputs, counts; written last, so a folder without it is never used.

The key hashes the dataset source (the split file's SHA-256), each recording's id, path, size and
modification time (a changed audio file rebuilds the cache), the encoder's name and extractor
identity (for BirdNET the SHA-256 of its model file), the window grid and ``max_windows``. A
cache is built in a temporary folder and renamed into place, so an interrupted build leaves
nothing. Windows of consecutive recordings share extractor batches (short recordings run as fast
as long ones).

``max_windows`` (training only, 0 = all) keeps at most that many evenly spaced windows of a
recording (its first and last among them): a cheaper cache when a recording's windows are
near-duplicates or the extractor is slow. Training then samples among the cached windows;
validation and test caches always hold every window (mean pooling over all of them).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from geoforensics.core.audio.decode import stream_audio
from geoforensics.core.audio.frontend import FrontEndConfig
from geoforensics.core.audio.windows import window_starts
from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write, sha256_arrays
from geoforensics.core.models.encoders import (
    feature_extractor_identity,
    get_encoder_config,
    iter_waveform_windows,
    waveform_features,
)
from geoforensics.core.paths import cache_dir
from geoforensics.train.spec_cache import CacheSource, id_number, publish_built_folder

log = logging.getLogger(__name__)

CACHE_FORMAT = "geoforensics-window-feature-cache-v1"
#: Windows per extractor call while building a cache.
BUILD_BATCH = 32


def window_params(config: FrontEndConfig) -> dict[str, Any]:
    """The window grid the features are computed on (part of the cache key)."""
    return {
        "sample_rate": config.sample_rate,
        "window_samples": config.window_samples,
        "stride_samples": config.stride_samples,
    }


def evenly_spaced(count: int, keep: int) -> np.ndarray:
    """Indices of at most ``keep`` evenly spaced items of ``count`` (first and last included;
    all of them when ``keep`` is 0 or at least ``count``)."""
    if keep <= 0 or keep >= count:
        return np.arange(count, dtype=np.int64)
    if keep == 1:
        return np.array([(count - 1) // 2], dtype=np.int64)
    return np.unique(np.round(np.linspace(0, count - 1, keep)).astype(np.int64))


@dataclass(frozen=True)
class FeatureCache:
    """A built cache: per-recording window features (memory-mapped) and window helpers with the
    same interface as :class:`~.spec_cache.SpectrogramCache` (``dense_frames``,
    ``random_frame_room``, ``window``), where a "frame" is a cached window's number."""

    folder: Path
    encoder: str
    feature_dim: int
    offsets: np.ndarray
    starts: np.ndarray
    dense_windows: np.ndarray
    ids: np.ndarray

    #: Batch key the data set puts a window under (features already are model inputs).
    input_key: ClassVar[str] = "image"

    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def total_windows(self) -> int:
        """Cached windows of all recordings together."""
        return int(self.offsets[-1])

    def n_windows(self, index: int | np.ndarray | None = None) -> Any:
        """Cached windows of recording ``index`` (or of all recordings as an array)."""
        counts = np.diff(self.offsets)
        return counts if index is None else counts[index]

    def memmap(self) -> np.ndarray:
        """The (total_windows, feature_dim) float32 features, memory-mapped read-only."""
        return np.memmap(
            self.folder / "features.f32",
            dtype="<f4",
            mode="r",
            shape=(self.total_windows, self.feature_dim),
        )

    def features(self, index: int, data: np.ndarray | None = None) -> np.ndarray:
        """(W, feature_dim) float32 features of recording ``index``'s cached windows."""
        rows = self.memmap() if data is None else data
        return np.array(rows[self.offsets[index] : self.offsets[index + 1]], dtype=np.float32)

    def window(self, index: int, frame: int, data: np.ndarray | None = None) -> np.ndarray:
        """(feature_dim,) float32 features of cached window ``frame`` of recording ``index``."""
        if not 0 <= int(frame) < int(self.n_windows(index)):
            raise InputError(
                f"feature cache: recording {index} has {self.n_windows(index)} windows, "
                f"asked for {frame}"
            )
        rows = self.memmap() if data is None else data
        return np.array(rows[int(self.offsets[index]) + int(frame)], dtype=np.float32)

    def start_samples(self, index: int) -> np.ndarray:
        """Start (samples at the extractor's rate) of recording ``index``'s cached windows."""
        return self.starts[self.offsets[index] : self.offsets[index + 1]]

    def dense_frames(self, index: int) -> np.ndarray:
        """Every cached window of recording ``index`` (evaluation uses all of them)."""
        return np.arange(int(self.n_windows(index)), dtype=np.int64)

    def random_frame_room(self) -> np.ndarray:
        """(R,) cached windows per recording: training draws one of them at random (>= 1)."""
        return np.maximum(1, self.n_windows())


def _listing(recordings: Sequence[CacheSource]) -> str:
    rows = []
    for r in recordings:
        path = Path(str(r.path))
        try:
            stat = path.stat()
            size, mtime = stat.st_size, stat.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        rows.append(f"{r.id}\t{path}\t{size}\t{mtime}")
    return "\n".join(rows)


def _expected_meta(
    encoder: str,
    identity: str,
    config: FrontEndConfig,
    source: str,
    recordings: Sequence[CacheSource],
    max_windows: int,
) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "source": source,
        "encoder": encoder,
        "extractor": identity,
        "windows": window_params(config),
        "max_windows": int(max_windows),
        "recordings": len(recordings),
        "listing_sha256": sha256_arrays(extra=_listing(recordings)),
    }


def cache_key(expected: dict[str, Any]) -> str:
    """Hex key of a cache from its expected metadata (see the module docstring)."""
    return sha256_arrays(extra=json.dumps(expected, sort_keys=True))


def _open(folder: Path, expected: dict[str, Any], feature_dim: int) -> FeatureCache | None:
    meta_path, index_path, data_path = (
        folder / "meta.json",
        folder / "index.npz",
        folder / "features.f32",
    )
    if not (meta_path.is_file() and index_path.is_file() and data_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(index_path, allow_pickle=False) as index:
            offsets, starts = index["offsets"], index["starts"]
            dense, ids = index["dense_windows"], index["ids"]
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in expected.items()):
        return None
    if offsets.size != ids.size + 1 or dense.size != ids.size or starts.size != offsets[-1]:
        return None
    if data_path.stat().st_size != int(offsets[-1]) * feature_dim * 4:
        log.warning("%s: features file has the wrong size; rebuilding the cache", data_path)
        return None
    encoder = str(expected["encoder"])
    return FeatureCache(folder, encoder, feature_dim, offsets, starts, dense, ids)


def _count_samples(path: str | os.PathLike[str], sample_rate: int) -> int:
    return sum(chunk.size for chunk in stream_audio(path, sample_rate=sample_rate))


def build_feature_cache(
    recordings: Sequence[CacheSource],
    encoder: str,
    config: FrontEndConfig,
    source: str,
    root: str | os.PathLike[str] | None = None,
    max_windows: int = 0,
    progress: bool = True,
    description: str = "window features",
    batch_size: int = BUILD_BATCH,
) -> FeatureCache:
    """The feature cache of ``recordings`` for the waveform-features ``encoder`` under ``root``
    (default ``cache_dir("window_features")``): read from disk when a matching cache exists,
    else computed with the encoder's extractor (a progress bar per recording) and stored.

    ``config`` is the encoder's front-end (:func:`~geoforensics.core.models.frontend_for`: the
    window grid and sample rate), ``source`` identifies the dataset file (e.g. its SHA-256),
    ``max_windows`` caps the windows kept per recording (0 = all). Raises the extractor's
    one-line install message when its model is missing.
    """
    encoder_config = get_encoder_config(encoder)
    if not encoder_config.frozen_features:
        raise InputError(f"feature cache: encoder {encoder!r} is not a waveform-features encoder")
    if max_windows < 0:
        raise InputError(f"feature cache: max_windows must be >= 0, got {max_windows}")
    missing = [r for r in recordings if r.path is None]
    if missing:
        raise InputError(f"feature cache: recording {missing[0].id} has no audio file")
    identity = feature_extractor_identity(encoder)
    dim = encoder_config.feature_dim
    expected = _expected_meta(encoder, identity, config, source, recordings, max_windows)
    key = cache_key(expected)
    base = Path(root) if root is not None else cache_dir("window_features")
    folder = base / key[:40]
    cached = _open(folder, expected, dim)
    if cached is not None:
        return cached
    base.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{key[:40]}.", suffix=".tmp", dir=base))
    try:
        offsets, dense, starts = _compute(
            recordings, encoder, config, building / "features.f32", max_windows, progress,
            description, batch_size,
        )  # fmt: skip
        ids = np.array([id_number(r.id) for r in recordings], dtype=np.int64)
        with atomic_write(building / "index.npz", "wb") as fh:
            np.savez(fh, offsets=offsets, starts=starts, dense_windows=dense, ids=ids)
        with atomic_write(building / "meta.json") as fh:
            json.dump(
                {**expected, "total_windows": int(offsets[-1]), "feature_dim": dim}, fh, indent=2
            )
        return publish_built_folder(
            building, folder, lambda: _open(folder, expected, dim), "window-feature cache"
        )
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)


def _compute(
    recordings: Sequence[CacheSource],
    encoder: str,
    config: FrontEndConfig,
    target: Path,
    max_windows: int,
    progress: bool,
    description: str,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write every recording's (selected) window features to ``target`` in order; returns
    (offsets, dense window counts, window starts)."""
    from tqdm import tqdm

    window, stride = config.window_samples, config.stride_samples
    pending: list[np.ndarray] = []
    counts: list[int] = []
    dense: list[int] = []
    starts: list[np.ndarray] = []
    with (
        open(target, "wb") as fh,
        tqdm(total=len(recordings), desc=description, unit="rec", disable=not progress) as bar,
    ):

        def flush() -> None:
            if pending:
                features = waveform_features(encoder, np.concatenate(pending))
                fh.write(np.ascontiguousarray(features, dtype="<f4").tobytes())
                pending.clear()

        for recording in recordings:
            path = str(recording.path)
            select, n_all = None, -1
            if max_windows > 0:
                n_samples = _count_samples(path, config.sample_rate)
                n_all = int(window_starts(n_samples, window, stride).size)
                select = evenly_spaced(n_all, max_windows)
            count = 0
            for part in iter_waveform_windows(path, config, batch_size, select):
                pending.append(part.windows)
                starts.append(part.start)
                count += len(part)
                if sum(len(p) for p in pending) >= batch_size:
                    flush()
            if count == 0:
                raise InputError(f"{path}: no audio samples")
            counts.append(count)
            dense.append(n_all if n_all >= 0 else count)
            bar.update(1)
        flush()
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    all_starts = np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)
    return offsets, np.asarray(dense, dtype=np.int64), all_starts
