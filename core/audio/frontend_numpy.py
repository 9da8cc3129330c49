"""The log-mel front-end of :mod:`geoforensics.core.audio.frontend` without torch.

:class:`NumpyMelFrontEnd` computes the same model inputs as
:class:`~geoforensics.core.audio.frontend.MelFrontEnd` (same presets, same pipeline, equal to
float32 rounding) with numpy and ``scipy.fft`` only, so that inference back-ends that do not
need torch (ONNX Runtime, OpenVINO) can turn audio into images without importing it. torch is
never imported here, not even lazily.

How it is organised: the STFT frames are strided views of the signal (no copy); frames are
windowed, transformed (``scipy.fft.rfft``, which keeps float32 and is several times faster
than ``numpy.fft`` here) and reduced to mel bands in blocks of about a thousand frames, keeping
only the FFT bins some mel triangle covers and skipping the zero blocks of the banded mel
matrix. The blocks run on a small thread pool (numpy and scipy release the GIL in the heavy
calls): this uses the cores for the element-wise steps too, where ``rfft(workers=...)`` alone
gained nothing on blocks of this size. Spectrograms are held
as (windows, frames, mel rows); the antialiased bilinear resize is two banded matrix products
whose weights reproduce torch's ``F.interpolate(..., mode="bilinear", antialias=True)``.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import as_strided

from geoforensics.core.audio.frontend import (
    FrontEndConfig,
    WindowedFrontEnd,
    _as_signal,
    banded_mel,
    get_frontend_config,
)
from geoforensics.core.errors import InputError

#: (first output index, stop, first input index, stop, weights) blocks of a banded product
_Blocks = list[tuple[int, int, int, int, np.ndarray]]

#: STFT frames transformed together (the FFT buffer of a block stays a few MB)
_FRAMES_PER_BLOCK = 1024
#: windows resized together (the intermediate of the first resize pass stays about 1 MB)
_RESIZE_WINDOWS = 8
#: output rows/columns per block of the banded resize products
_RESIZE_GROUP = 32


class NumpyMelFrontEnd(WindowedFrontEnd):
    """Windows of mono samples -> model inputs, with numpy and scipy only.

    Mirrors :class:`~geoforensics.core.audio.frontend.MelFrontEnd` (``strided_images``,
    ``images``, ``images_from_scaled``) but returns float32 numpy arrays. ``threads`` (default:
    every CPU) is the size of the thread pool that blocks of frames and windows run on; the
    results do not depend on it. Matrix products also use numpy's BLAS threads.
    """

    def __init__(self, config: FrontEndConfig | str = "paper", threads: int | None = None) -> None:
        self.config = get_frontend_config(config) if isinstance(config, str) else config
        self.threads = int(threads) if threads is not None else (os.cpu_count() or 1)
        if self.threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        cfg = self.config
        n = np.arange(cfg.win_length, dtype=np.float64)
        window = 0.5 - 0.5 * np.cos(2.0 * math.pi * n / cfg.win_length)  # periodic Hann
        self._window = window.astype(np.float32)
        banded = banded_mel(cfg, float(window.sum()))
        self._bins = banded.bins
        # the row blocks of the mel matrix, each stored transposed (bins, rows): frames @ block
        self._mel_groups: _Blocks = [
            (start, stop, first, last, np.ascontiguousarray(block.T))
            for start, stop, first, last, block in banded.groups
        ]
        self._resize_cache: dict[tuple[int, int], tuple[_Blocks, _Blocks]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def strided_images(self, signal: np.ndarray, count: int) -> np.ndarray:
        """(count, channels, H, W) inputs of the windows starting at ``0, stride, ...``.

        The signal is zero-padded at the end when it is too short. When the stride is a whole
        number of hops (the reference preset) the windows share one STFT of the whole stretch;
        otherwise each window's frames are read through a strided view of the signal.
        """
        if count <= 0:
            raise InputError(f"count must be positive, got {count}")
        cfg = self.config
        size, stride, hop = self.window_samples, self.stride_samples, cfg.hop_length
        per_window = self._frames_per_window()
        need = (count - 1) * stride + size
        samples = _as_signal(signal)[:need]
        if samples.size < need:
            samples = np.pad(samples, (0, need - samples.size))
        samples = np.ascontiguousarray(samples)
        item = samples.itemsize
        images = self._new_images(count)
        if stride % hop == 0:
            total = 1 + (need - cfg.win_length) // hop
            frames = as_strided(
                samples, (1, total, cfg.win_length), (0, hop * item, item), writeable=False
            )
            scaled = self._scaled(frames)[0]  # (all frames, n_mels)
            step = (stride // hop) * scaled.strides[0]
            windows = as_strided(
                scaled,
                (count, per_window, cfg.n_mels),
                (step, *scaled.strides),
                writeable=False,
            )
            self._resize_blocks(cfg.n_mels, per_window)  # fill the cache before the threads

            def task(begin: int) -> None:
                end = min(begin + _RESIZE_WINDOWS, count)
                self._resize_into(windows[begin:end], images[begin:end])

            self._map(task, range(0, count, _RESIZE_WINDOWS))
        else:
            frames = as_strided(
                samples,
                (count, per_window, cfg.win_length),
                (stride * item, hop * item, item),
                writeable=False,
            )
            self._images_of_frames(frames, images)
        return images

    def images(self, windows: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(B, channels, H, W) inputs for B windows of at most :attr:`window_samples` samples.

        Shorter windows are zero-padded at the end, as in ``MelFrontEnd.images``.
        """
        batch = self._stack(windows)
        per_window = self._frames_per_window()
        count, size = batch.shape
        item = batch.itemsize
        frames = as_strided(
            batch,
            (count, per_window, self.config.win_length),
            (size * item, self.config.hop_length * item, item),
            writeable=False,
        )
        images = self._new_images(count)
        self._images_of_frames(frames, images)
        return images

    def images_from_scaled(self, scaled: np.ndarray) -> np.ndarray:
        """(B, rows, frames) scaled spectrograms in [0, 1] -> (B, channels, H, W) inputs.

        For cached spectrogram slices; any number of rows and frames is resized.
        """
        array = np.asarray(scaled)
        if array.ndim != 3:
            raise InputError(f"scaled must be 3-D (B, rows, frames), got shape {array.shape}")
        array = array.astype(np.float32, copy=False)
        images = self._new_images(array.shape[0])
        count, rows, cols = array.shape
        by_frames = array.transpose(0, 2, 1)  # (B, frames, rows), a view
        self._resize_blocks(rows, cols)  # fill the cache before the threads

        def task(begin: int) -> None:
            end = min(begin + _RESIZE_WINDOWS, count)
            self._resize_into(by_frames[begin:end], images[begin:end])

        self._map(task, range(0, count, _RESIZE_WINDOWS))
        return images

    # -- internals -------------------------------------------------------------------------

    def _frames_per_window(self) -> int:
        frames = self.config.frames_per_window
        if self.window_samples < self.config.win_length or frames <= 0:
            raise InputError(
                f"windows of {self.window_samples} samples are shorter than one STFT frame "
                f"({self.config.win_length} samples)"
            )
        return frames

    def _new_images(self, count: int) -> np.ndarray:
        cfg = self.config
        return np.empty((count, cfg.channels, cfg.image_height, cfg.image_width), np.float32)

    def _images_of_frames(self, frames: np.ndarray, images: np.ndarray) -> None:
        """Spectrograms and resize of (windows, frames, win_length) views, a few windows per
        task (so that the intermediates stay small), the tasks spread over the threads."""
        count, per_window = frames.shape[:2]
        chunk = max(1, min(_RESIZE_WINDOWS, _FRAMES_PER_BLOCK // per_window))
        self._resize_blocks(self.config.n_mels, per_window)  # fill the cache before the threads

        def task(begin: int) -> None:
            end = min(begin + chunk, count)
            self._resize_into(self._scaled(frames[begin:end], parallel=False), images[begin:end])

        self._map(task, range(0, count, chunk))

    def _map(self, task: Callable[[int], None], items: Sequence[int]) -> None:
        """Run ``task`` on each item, on the thread pool when there is more than one thread
        (numpy and scipy release the GIL in the heavy calls)."""
        if self.threads == 1 or len(items) <= 1:
            for item in items:
                task(item)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mel-frontend")
            weakref.finalize(self, self._pool.shutdown, wait=False)
        for _ in self._pool.map(task, items):  # re-raises the first error
            pass

    def _scaled(self, frames: np.ndarray, parallel: bool = True) -> np.ndarray:
        """(W, F, win_length) frames -> (W, F, n_mels) scaled to [0, 1], rows in image order.

        Frames go through window, FFT, magnitude, mel and dB mapping in blocks of about
        :data:`_FRAMES_PER_BLOCK` frames (whole windows, or part of one long window).
        """
        cfg = self.config
        count, per_window = frames.shape[:2]
        out = np.zeros((count, per_window, cfg.n_mels), dtype=np.float32)
        lo, hi = self._bins
        if hi <= lo:  # no FFT bin under any triangle: every band is at the floor
            self._to_unit(out)
            return out
        if per_window >= _FRAMES_PER_BLOCK:
            pieces = [
                (w, w + 1, f, min(f + _FRAMES_PER_BLOCK, per_window))
                for w in range(count)
                for f in range(0, per_window, _FRAMES_PER_BLOCK)
            ]
        else:
            step = _FRAMES_PER_BLOCK // per_window
            pieces = [(w, min(w + step, count), 0, per_window) for w in range(0, count, step)]

        def task(index: int) -> None:
            w0, w1, f0, f1 = pieces[index]
            windowed = np.multiply(frames[w0:w1, f0:f1], self._window)
            spectrum = scipy.fft.rfft(
                windowed.reshape(-1, cfg.win_length), n=cfg.n_fft, axis=-1, workers=1
            )
            magnitude = np.abs(spectrum[:, lo:hi])  # (frames, bins) float32
            target = out[w0:w1, f0:f1].reshape(-1, cfg.n_mels, copy=False)
            for start, stop, first, last, block in self._mel_groups:
                np.matmul(magnitude[:, first:last], block, out=target[:, start:stop])
            self._to_unit(target)

        if parallel:
            self._map(task, range(len(pieces)))
        else:
            for index in range(len(pieces)):
                task(index)
        return out

    def _to_unit(self, mel: np.ndarray) -> None:
        """Mel magnitudes -> dB -> [0, 1] (optionally 256 levels), in place."""
        cfg = self.config
        span = cfg.db_max - cfg.db_min
        np.maximum(mel, np.float32(cfg.amin), out=mel)
        np.log(mel, out=mel)
        np.multiply(mel, np.float32(20.0 / (span * math.log(10.0))), out=mel)
        np.add(mel, np.float32(-cfg.db_min / span), out=mel)
        np.clip(mel, np.float32(0.0), np.float32(1.0), out=mel)
        if cfg.quantize_uint8:
            np.multiply(mel, np.float32(255.0), out=mel)
            np.floor(mel, out=mel)
            np.divide(mel, np.float32(255.0), out=mel)

    def _resize_into(self, scaled: np.ndarray, images: np.ndarray) -> None:
        """Resize (k, frames, rows) spectrograms into ``images`` (k, channels, H, W) in place,
        normalise and repeat the channels."""
        cfg = self.config
        count, cols, rows = scaled.shape
        row_blocks, col_blocks = self._resize_blocks(rows, cols)
        across = np.empty((count, cfg.image_width, rows), dtype=np.float32)
        for start, stop, first, last, block in col_blocks:  # time -> image columns
            np.matmul(block, scaled[:, first:last, :], out=across[:, start:stop, :])
        target = images[:, 0]
        for start, stop, first, last, block in row_blocks:  # mel rows -> image rows
            np.matmul(
                block, across[:, :, first:last].transpose(0, 2, 1), out=target[:, start:stop, :]
            )
        if cfg.mean != 0.0 or cfg.std != 1.0:
            np.subtract(target, np.float32(cfg.mean), out=target)
            np.divide(target, np.float32(cfg.std), out=target)
        if cfg.channels > 1:
            images[:, 1:] = images[:, :1]

    def _resize_blocks(self, rows: int, cols: int) -> tuple[_Blocks, _Blocks]:
        key = (rows, cols)
        if key not in self._resize_cache:
            cfg = self.config
            self._resize_cache[key] = (
                _banded(resize_weights(rows, cfg.image_height)),
                _banded(resize_weights(cols, cfg.image_width)),
            )
        return self._resize_cache[key]


def resize_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) float32 matrix of torch's 1-D antialiased bilinear resize.

    Follows ``F.interpolate(..., mode="bilinear", align_corners=False, antialias=True)`` on
    the CPU (a triangle filter stretched by the scale when shrinking, as in PIL), including its
    float32 arithmetic, so that the weights agree with torch's to rounding.
    """
    f32 = np.float32
    scale = f32(size_in) / f32(size_out)
    shrinking = scale >= 1.0
    support = f32(scale) if shrinking else f32(1.0)
    invscale = f32(1.0 / float(scale)) if shrinking else f32(1.0)
    max_size = math.ceil(float(support)) * 2 + 1
    weights = np.zeros((size_out, size_in), dtype=np.float32)
    for i in range(size_out):
        centre = f32(float(scale) * (i + 0.5))
        xmin = max(int(float(centre - support) + 0.5), 0)
        xsize = min(int(float(centre + support) + 0.5), size_in) - xmin
        xsize = min(max(xsize, 0), max_size)
        j = np.arange(xmin, xmin + xsize)
        offset = (j.astype(np.float32) - centre).astype(np.float64) + 0.5
        x = np.abs((offset * float(invscale)).astype(np.float32))
        w = np.where(x < 1.0, f32(1.0) - x, f32(0.0)).astype(np.float32)
        total = f32(0.0)
        for value in w:  # sequential float32 sum, as torch
            total = f32(total + value)
        if total != 0.0:
            w = w / total
        weights[i, xmin : xmin + xsize] = w
    return weights


def _banded(weights: np.ndarray) -> _Blocks:
    """Blocks of :data:`_RESIZE_GROUP` output rows with the input span they touch."""
    blocks: _Blocks = []
    size_out = weights.shape[0]
    for start in range(0, size_out, _RESIZE_GROUP):
        stop = min(start + _RESIZE_GROUP, size_out)
        used = np.flatnonzero(np.any(weights[start:stop] != 0.0, axis=0))
        first, last = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
        blocks.append(
            (start, stop, first, last, np.ascontiguousarray(weights[start:stop, first:last]))
        )
    return blocks
