"""Waveform windows of a recording, for the frozen ``waveform-features`` encoders.

:func:`iter_waveform_windows` decodes a file at the extractor's sample rate and cuts it into
the paper's window grid (the same windows as the spectrogram path), a batch at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from geoforensics.core.audio.decode import stream_audio
from geoforensics.core.audio.frontend import FrontEndConfig
from geoforensics.core.audio.windows import iter_window_runs
from geoforensics.core.errors import InputError


@dataclass(frozen=True)
class WaveformWindows:
    """A batch of consecutive waveform windows of one recording: ``index`` (n,) window numbers,
    ``start``/``end`` (n,) sample spans in the recording (a zero-padded window ends at the
    recording's end) and ``windows`` (n, window_samples) float32."""

    index: np.ndarray
    start: np.ndarray
    end: np.ndarray
    windows: np.ndarray

    def __len__(self) -> int:
        return int(self.index.size)


def iter_waveform_windows(
    path: str | os.PathLike[str],
    frontend: FrontEndConfig,
    batch_size: int = 32,
    select: np.ndarray | None = None,
) -> Iterator[WaveformWindows]:
    """Decode ``path`` at ``frontend.sample_rate`` as a stream and yield its windows,
    ``batch_size`` at a time, as :class:`WaveformWindows`.

    The windows are those of :func:`geoforensics.core.audio.windows.window_starts` (a
    recording shorter than one window gives one zero-padded window), i.e. the same grid as the
    spectrogram path at the front-end's window and stride in seconds. ``select`` (window
    indices) keeps only those windows. Memory: one decode chunk and one batch of windows.
    """
    if batch_size <= 0:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    window, stride = frontend.window_samples, frontend.stride_samples
    wanted = None if select is None else np.asarray(select, dtype=np.int64)
    seen = [0]

    def counted() -> Iterator[np.ndarray]:
        for chunk in stream_audio(path, sample_rate=frontend.sample_rate):
            seen[0] += chunk.size
            yield chunk

    index = 0
    for first, count, samples in iter_window_runs(counted(), window, stride, batch_size):
        numbers = np.arange(index, index + count, dtype=np.int64)
        index += count
        keep = np.arange(count) if wanted is None else np.flatnonzero(np.isin(numbers, wanted))
        if keep.size == 0:
            continue
        views = np.lib.stride_tricks.sliding_window_view(samples, window)[::stride]
        start = first + stride * keep.astype(np.int64)
        yield WaveformWindows(
            index=numbers[keep],
            start=start,
            end=np.minimum(start + window, seen[0]),
            windows=np.ascontiguousarray(views[keep], dtype=np.float32),
        )
