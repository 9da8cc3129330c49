"""On-disk cache of whole-recording log-mel spectrograms, so training decodes audio once.

Decoding and resampling audio dominates an epoch, so each recording's whole spectrogram is
computed once with the model's front-end (:class:`~geoforensics.core.audio.MelFrontEnd`),
quantised to uint8 (``round(255 * x)`` of its [0, 1] values) and appended to one flat file:

``CACHE/<key>/frames.u8``
    all recordings' frames, frame-major: an (total_frames, n_mels) uint8 array read through
    ``np.memmap`` (a window is a contiguous block of rows);
``CACHE/<key>/index.npz``
    ``offsets`` (R + 1,): recording r owns rows ``offsets[r]:offsets[r + 1]``; ``n_samples``
    (R,): decoded length at the front-end's sample rate; ``ids`` (R,): recording ids;
``CACHE/<key>/meta.json``
    format, key inputs, counts; written last, so a folder without it is never used.

The key hashes the dataset source (the split file's SHA-256), the recordings' ids and paths, and
every front-end parameter that changes the frames (STFT, mel, dB range, window length for the
padding of short recordings) — not the image size or normalisation, which are applied later
(:func:`images_from_frames`), so encoders of different input sizes share a cache. A cache is
built in a temporary folder and renamed into place, so an interrupted build leaves nothing.

Windows are frame slices: frames are not centred (see :mod:`geoforensics.core.audio.frontend`),
so a window starting at sample ``o * hop_length`` is exactly rows ``o .. o + frames_per_window``.
Training windows start at random whole frames. Dense evaluation windows start at
``window_starts(...) // hop_length``: exact for front-ends whose stride is a whole number of
hops (the reference preset); for the paper preset (stride 33,075 samples = 258.4 hops) a
window starts up to one hop (5.8 ms) earlier than the audio path's. A recording shorter than
one window is zero-padded to one window before its spectrogram is taken, as the audio path does.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from geoforensics.core.audio.decode import stream_audio
from geoforensics.core.audio.frontend import FrontEndConfig, MelFrontEnd
from geoforensics.core.audio.windows import window_starts
from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write, sha256_arrays
from geoforensics.core.paths import cache_dir

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: A cache object that :func:`publish_built_folder` returns.
CacheT = TypeVar("CacheT")

CACHE_FORMAT = "geoforensics-spectrogram-cache-v1"
#: Front-end fields that change the cached frames (image size / normalisation do not).
SPECTROGRAM_FIELDS: tuple[str, ...] = (
    "sample_rate",
    "win_length",
    "n_fft",
    "hop_length",
    "n_mels",
    "f_min",
    "f_max",
    "mel_scale",
    "mel_triangles",
    "high_on_top",
    "amin",
    "db_min",
    "db_max",
    "quantize_uint8",
)
#: Frames per block when computing the spectrogram of a long recording.
BLOCK_FRAMES = 8192


class CacheSource(Protocol):
    """What the cache reads from a recording record (the dataset readers' records fit)."""

    @property
    def id(self) -> int | str: ...

    @property
    def path(self) -> Path | None: ...


def spectrogram_params(config: FrontEndConfig) -> dict[str, Any]:
    """The front-end parameters that determine the cached frames (part of the cache key)."""
    params = {name: getattr(config, name) for name in SPECTROGRAM_FIELDS}
    params["pad_to_samples"] = config.window_samples
    return params


def quantize(scaled: np.ndarray) -> np.ndarray:
    """[0, 1] float values -> uint8 ``round(255 * x)`` (exact for uint8-quantised front-ends)."""
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def recording_frames(path: str | os.PathLike[str], frontend: MelFrontEnd) -> tuple[np.ndarray, int]:
    """(frames, n_mels) uint8 spectrogram of a whole file and its length in samples.

    The file is streamed and transformed in blocks of :data:`BLOCK_FRAMES` frames, so memory
    stays bounded for hours-long recordings; the frames equal those of
    ``frontend.spectrogram(whole signal)`` (transposed, quantised). A recording shorter than one
    window is zero-padded to one window first (the audio path's rule).
    """
    cfg = frontend.config
    hop, win = cfg.hop_length, cfg.win_length
    block_samples = (BLOCK_FRAMES - 1) * hop + win
    parts: list[np.ndarray] = []
    buffer = np.zeros(0, dtype=np.float32)
    total = 0
    for chunk in stream_audio(path, sample_rate=cfg.sample_rate):
        total += chunk.size
        buffer = np.concatenate([buffer, np.asarray(chunk, dtype=np.float32)])
        while buffer.size >= block_samples:
            parts.append(quantize(frontend.spectrogram(buffer[:block_samples])).T)
            buffer = buffer[BLOCK_FRAMES * hop :]
    if total == 0:
        raise InputError(f"{path}: no audio samples")
    if total < cfg.window_samples:
        buffer = np.pad(buffer, (0, cfg.window_samples - buffer.size))
    if buffer.size >= win:
        parts.append(quantize(frontend.spectrogram(buffer)).T)
    return np.ascontiguousarray(np.concatenate(parts, axis=0)), total


def images_from_frames(frames: torch.Tensor, frontend: MelFrontEnd) -> torch.Tensor:
    """(B, n_mels, frames) uint8 spectrogram slices -> (B, channels, H, W) model inputs.

    Runs the front-end's own resize / normalise / channel code
    (:meth:`MelFrontEnd.images_from_scaled`, the last step of :meth:`MelFrontEnd.images`) on the
    de-quantised slices, on whatever device the slices are on, so cached windows give the same
    inputs as the audio path up to uint8 quantisation.
    """
    import torch

    scaled = frames.to(torch.float32).div_(255.0)
    with torch.no_grad():
        return frontend.images_from_scaled(scaled)


@dataclass(frozen=True)
class SpectrogramCache:
    """A built cache: per-recording frames (memory-mapped on first use) and window helpers."""

    folder: Path
    config: FrontEndConfig
    offsets: np.ndarray
    n_samples: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return int(self.n_samples.size)

    @property
    def n_mels(self) -> int:
        """Rows of a spectrogram (mel bands)."""
        return self.config.n_mels

    @property
    def frames_per_window(self) -> int:
        """Frames in one model window."""
        return self.config.frames_per_window

    @property
    def total_frames(self) -> int:
        """Frames of all recordings together."""
        return int(self.offsets[-1])

    def n_frames(self, index: int | np.ndarray | None = None) -> Any:
        """Frames of recording ``index`` (or of all recordings as an array)."""
        counts = np.diff(self.offsets)
        return counts if index is None else counts[index]

    def memmap(self) -> np.ndarray:
        """The (total_frames, n_mels) uint8 frames, memory-mapped read-only."""
        return np.memmap(
            self.folder / "frames.u8",
            dtype=np.uint8,
            mode="r",
            shape=(self.total_frames, self.n_mels),
        )

    def spectrogram(self, index: int, frames: np.ndarray | None = None) -> np.ndarray:
        """(n_mels, frames) uint8 spectrogram of recording ``index`` (rows as the front-end)."""
        data = self.memmap() if frames is None else frames
        return np.asarray(data[self.offsets[index] : self.offsets[index + 1]]).T

    def window(self, index: int, frame: int, frames: np.ndarray | None = None) -> np.ndarray:
        """(n_mels, frames_per_window) uint8 window of recording ``index`` starting at row
        ``frame`` of its spectrogram (zero-padded past its end)."""
        data = self.memmap() if frames is None else frames
        width = self.frames_per_window
        start = int(self.offsets[index]) + int(frame)
        stop = min(start + width, int(self.offsets[index + 1]))
        out = np.zeros((self.n_mels, width), dtype=np.uint8)
        if stop > start:
            out[:, : stop - start] = np.asarray(data[start:stop]).T
        return out

    def dense_frames(self, index: int) -> np.ndarray:
        """First frame of every dense evaluation window of recording ``index`` (int64).

        The windows of :func:`~geoforensics.core.audio.windows.window_starts`, each moved back
        to the previous whole frame (see the module docstring).
        """
        cfg = self.config
        starts = window_starts(int(self.n_samples[index]), cfg.window_samples, cfg.stride_samples)
        return (starts // cfg.hop_length).astype(np.int64)

    def random_frame_room(self) -> np.ndarray:
        """(R,) number of valid random window start frames of each recording (>= 1)."""
        return np.maximum(1, self.n_frames() - self.frames_per_window + 1)


def cache_key(config: FrontEndConfig, source: str, recordings: Sequence[CacheSource]) -> str:
    """Hex key of a cache: dataset source id, recording ids and paths, front-end parameters."""
    listing = "\n".join(f"{r.id}\t{r.path}" for r in recordings)
    params = json.dumps(spectrogram_params(config), sort_keys=True)
    return sha256_arrays(extra=f"{CACHE_FORMAT}|{source}|{params}|{listing}")


def _expected_meta(config: FrontEndConfig, source: str, count: int) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "source": source,
        "frontend": spectrogram_params(config),
        "recordings": count,
    }


def _open(
    folder: Path, config: FrontEndConfig, expected: dict[str, Any]
) -> SpectrogramCache | None:
    meta_path, index_path, frames_path = (
        folder / "meta.json",
        folder / "index.npz",
        folder / "frames.u8",
    )
    if not (meta_path.is_file() and index_path.is_file() and frames_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(index_path, allow_pickle=False) as index:
            offsets, n_samples, ids = index["offsets"], index["n_samples"], index["ids"]
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in expected.items()):
        return None
    if offsets.size != n_samples.size + 1 or ids.size != n_samples.size:
        return None
    if frames_path.stat().st_size != int(offsets[-1]) * config.n_mels:
        log.warning("%s: frames file has the wrong size; rebuilding the cache", frames_path)
        return None
    return SpectrogramCache(folder, config, offsets, n_samples, ids)


def _frames_job(args: tuple[str, dict[str, Any]]) -> tuple[np.ndarray, int]:
    """Worker-process job: one recording's frames (a fresh front-end per process)."""
    path, config_dict = args
    frontend = _worker_frontend(config_dict)
    return recording_frames(path, frontend)


_WORKER_FRONTEND: dict[str, MelFrontEnd] = {}


def _worker_frontend(config_dict: dict[str, Any]) -> MelFrontEnd:
    key = json.dumps(config_dict, sort_keys=True)
    if key not in _WORKER_FRONTEND:
        import torch

        torch.set_num_threads(1)
        _WORKER_FRONTEND[key] = MelFrontEnd(FrontEndConfig.from_dict(config_dict))
    return _WORKER_FRONTEND[key]


def _computed(
    paths: list[str], config: FrontEndConfig, workers: int
) -> Iterator[tuple[np.ndarray, int]]:
    if workers <= 1 or len(paths) < 2:
        frontend = MelFrontEnd(config)
        for path in paths:
            yield recording_frames(path, frontend)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    jobs = [(path, config.to_dict()) for path in paths]
    with context.Pool(workers) as pool:
        yield from pool.imap(_frames_job, jobs, chunksize=1)


def build_spectrogram_cache(
    recordings: Sequence[CacheSource],
    config: FrontEndConfig,
    source: str,
    root: str | os.PathLike[str] | None = None,
    workers: int = 1,
    progress: bool = True,
    description: str = "spectrograms",
) -> SpectrogramCache:
    """The cache of ``recordings`` under ``root`` (default ``cache_dir("spectrograms")``):
    read from disk when a matching cache exists, else computed (in ``workers`` processes) and
    stored. ``source`` identifies the dataset file (e.g. its SHA-256)."""
    missing = [r for r in recordings if r.path is None]
    if missing:
        raise InputError(f"spectrogram cache: recording {missing[0].id} has no audio file")
    base = Path(root) if root is not None else cache_dir("spectrograms")
    key = cache_key(config, source, recordings)
    folder = base / key[:40]
    expected = _expected_meta(config, source, len(recordings))
    cached = _open(folder, config, expected)
    if cached is not None:
        return cached
    base.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{key[:40]}.", suffix=".tmp", dir=base))
    try:
        offsets = [0]
        n_samples: list[int] = []
        paths = [str(r.path) for r in recordings]
        from tqdm import tqdm

        with (
            open(building / "frames.u8", "wb") as fh,
            tqdm(total=len(paths), desc=description, unit="rec", disable=not progress) as bar,
        ):
            for frames, length in _computed(paths, config, workers):
                if frames.shape[1] != config.n_mels:
                    raise InputError(f"spectrogram cache: unexpected frame shape {frames.shape}")
                fh.write(frames.tobytes())
                offsets.append(offsets[-1] + frames.shape[0])
                n_samples.append(length)
                bar.update(1)
        ids = np.array([id_number(r.id) for r in recordings], dtype=np.int64)
        with atomic_write(building / "index.npz", "wb") as fh:
            np.savez(
                fh,
                offsets=np.asarray(offsets, dtype=np.int64),
                n_samples=np.asarray(n_samples, dtype=np.int64),
                ids=ids,
            )
        with atomic_write(building / "meta.json") as fh:
            json.dump(
                {**expected, "total_frames": offsets[-1], "n_mels": config.n_mels}, fh, indent=2
            )
        return publish_built_folder(
            building, folder, lambda: _open(folder, config, expected), "spectrogram cache"
        )
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)


def publish_built_folder(
    building: Path, folder: Path, reopen: Callable[[], CacheT | None], what: str
) -> CacheT:
    """Move a fully built cache folder onto ``folder`` and return it opened with ``reopen``.

    A folder already there (stale, broken, or one another process just finished) is used
    when it opens, else removed; losing the rename race to another process is fine, its copy
    is read instead. The caller removes ``building`` if it is still there.
    """
    if folder.exists():
        again = reopen()
        if again is not None:
            return again
        shutil.rmtree(folder, ignore_errors=True)
    try:
        os.replace(building, folder)
    except OSError:  # another process renamed its build into place first
        pass
    result = reopen()
    if result is None:
        raise InputError(f"{folder}: {what} could not be written")
    return result


def id_number(value: int | str) -> int:
    """A recording id as an integer for the cache index (-1 when it is not numeric)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
