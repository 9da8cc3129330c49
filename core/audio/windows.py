"""Cutting a recording into fixed-length, overlapping model windows, in one pass.

Placement rule (shared by every front-end, see :func:`window_starts`): windows start at
multiples of the stride while the whole window fits, so a tail shorter than a stride after the
last full window is not covered. A recording shorter than one window (but not empty) gives
exactly one window, zero-padded at the end; zeros are silence, which the front-end maps to its
floor (-100 dB, i.e. 0 before normalisation).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from geoforensics.core.audio.decode import stream_audio
from geoforensics.core.errors import InputError

if TYPE_CHECKING:
    import torch

    from geoforensics.core.audio.frontend import FrontEndConfig, MelFrontEnd
    from geoforensics.core.audio.frontend_numpy import NumpyMelFrontEnd


def _check_sizes(window: int, stride: int) -> None:
    if int(window) <= 0 or int(stride) <= 0:
        raise InputError(f"window and stride must be positive, got {window} and {stride}")


def window_starts(n_samples: int, window: int, stride: int) -> np.ndarray:
    """Start sample of every window of a recording of ``n_samples`` samples (int64).

    ``[0, stride, 2 * stride, ...]`` while ``start + window <= n_samples``; one window at 0
    (to be zero-padded at the end) when ``0 < n_samples < window``; none when empty.
    """
    _check_sizes(window, stride)
    if n_samples <= 0:
        return np.zeros(0, dtype=np.int64)
    if n_samples < window:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, n_samples - window + 1, stride, dtype=np.int64)


def count_windows(duration_s: float, config: FrontEndConfig) -> int:
    """Number of windows :func:`iter_windows` gives for a recording of ``duration_s`` seconds.

    The duration is converted to samples at ``config.sample_rate`` rounding down (as the
    resampler does).
    """
    if not math.isfinite(duration_s) or duration_s < 0:
        raise InputError(f"duration must be a finite number >= 0, got {duration_s!r}")
    n_samples = math.floor(duration_s * config.sample_rate + 1e-6)
    window, stride = config.window_samples, config.stride_samples
    _check_sizes(window, stride)
    if n_samples <= 0:
        return 0
    if n_samples < window:
        return 1
    return 1 + (n_samples - window) // stride


def iter_windows(
    chunks: Iterable[np.ndarray], window: int, stride: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start_sample, samples)`` for each window of a stream of 1-D chunks.

    Gives exactly the windows of slicing the concatenated signal at :func:`window_starts`
    (the short-recording window zero-padded), while holding only about one window plus one
    chunk of samples. Each yielded window is a fresh float32 array of ``window`` samples.
    """
    for start, _count, samples in iter_window_runs(chunks, window, stride, 1):
        yield start, samples


def iter_window_runs(
    chunks: Iterable[np.ndarray], window: int, stride: int, run: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(first_start, count, samples)``: runs of up to ``run`` consecutive windows.

    ``samples`` holds ``(count - 1) * stride + window`` samples starting at ``first_start``,
    i.e. windows ``first_start + k * stride`` for ``k < count``; every run has ``count == run``
    except the last. The windows are those of :func:`window_starts` (the short-recording
    window comes zero-padded). Memory: about one run plus one chunk of samples.
    """
    _check_sizes(window, stride)
    if int(run) <= 0:
        raise InputError(f"run must be positive, got {run}")
    window, stride, run = int(window), int(stride), int(run)
    span = (run - 1) * stride + window
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # sample index of buffer[0]
    pending: list[np.ndarray] = []
    pending_size = 0
    next_start = 0
    total = 0
    emitted = False
    for raw in chunks:
        chunk = np.asarray(raw, dtype=np.float32)
        if chunk.ndim != 1:
            raise InputError(f"audio chunks must be 1-D, got shape {chunk.shape}")
        if chunk.size == 0:
            continue
        total += chunk.size
        pending.append(chunk)
        pending_size += chunk.size
        if buffer_start + buffer.size + pending_size < next_start + span:
            continue  # not enough for the next run yet: defer the copy
        buffer = np.concatenate([buffer, *pending])
        pending, pending_size = [], 0
        while next_start + span <= buffer_start + buffer.size:
            offset = next_start - buffer_start
            yield next_start, run, buffer[offset : offset + span].copy()
            emitted = True
            next_start += run * stride
        # samples before the next start are never needed again (with stride > window the
        # next start can lie beyond the buffer: the gap is dropped from later chunks)
        drop = min(next_start - buffer_start, buffer.size)
        buffer = buffer[drop:]
        buffer_start += drop
    rest = np.concatenate([buffer, *pending])
    if total >= next_start + window:
        count = (total - window - next_start) // stride + 1
        offset = next_start - buffer_start
        yield next_start, count, rest[offset : offset + (count - 1) * stride + window].copy()
    elif not emitted and total > 0:
        padded = np.zeros(window, dtype=np.float32)
        padded[: rest.size] = rest
        yield 0, 1, padded


@dataclass(frozen=True)
class WindowBatch:
    """A batch of consecutive windows of one recording, ready for the audio encoder.

    ``start_s``/``end_s`` give each window's span in the recording (the padded window of a
    short recording ends at the recording's end); ``index`` numbers the windows from 0.
    """

    index: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    images: torch.Tensor | np.ndarray

    def __len__(self) -> int:
        return int(self.index.size)


def iter_window_batches(
    path: str | os.PathLike[str],
    frontend: MelFrontEnd | NumpyMelFrontEnd,
    batch_size: int = 32,
) -> Iterator[WindowBatch]:
    """Decode ``path`` as a stream and yield its windows as model inputs, ``batch_size`` at a time.

    Memory stays bounded by one decode chunk, the samples of one batch of windows and one
    batch of images, whatever the length of the recording. The images equal
    ``frontend.images`` of the windows of :func:`iter_windows`.
    """
    if batch_size <= 0:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    rate = frontend.config.sample_rate
    seen = [0]

    def counted() -> Iterator[np.ndarray]:
        for chunk in stream_audio(path, sample_rate=rate):
            seen[0] += chunk.size
            yield chunk

    index = 0
    for first, count, samples in iter_window_runs(
        counted(), frontend.window_samples, frontend.stride_samples, batch_size
    ):
        start = first + frontend.stride_samples * np.arange(count, dtype=np.int64)
        end = np.minimum(start + frontend.window_samples, seen[0])
        yield WindowBatch(
            index=np.arange(index, index + count, dtype=np.int64),
            start_s=start / rate,
            end_s=end / rate,
            images=frontend.strided_images(samples, count),
        )
        index += count
