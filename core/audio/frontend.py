"""Log-mel spectrogram front-end: audio windows -> model input images.

Both presets share one pipeline (vectorised over a batch of windows with torch):

1. frames of ``win_length`` samples every ``hop_length`` samples, **no centring and no
   padding**: frame ``f`` covers samples ``[f * hop, f * hop + win_length)``, so a window of
   ``N`` samples has ``1 + (N - win_length) // hop`` frames and the last partial frame is
   dropped (as ``scipy.signal.stft(boundary=None, padded=False)`` in the reference code);
2. periodic Hann window, FFT of ``n_fft`` points (the frame is zero-padded at the end when
   ``n_fft > win_length``), magnitude ``|X| * 2 / sum(window)`` so that a full-scale sine has
   magnitude 1 in its bin;
3. mel filterbank of triangles with peak 1 (no area normalisation, so 0 dB still means "full
   scale"), then ``20 * log10(max(amin, m))`` clipped to ``[db_min, db_max]`` and mapped to
   [0, 1]; optionally quantised to 256 levels (``floor(x * 255) / 255``, like the reference's
   uint8 images);
4. frequency axis as rows (``high_on_top``: row 0 is the highest band), time as columns;
5. bilinear resize with antialiasing to ``image_height x image_width`` (what
   ``torchvision.transforms.Resize(..., antialias=True)`` does to a tensor), normalised with
   ``(x - mean) / std`` and repeated to ``channels`` identical channels.

Presets (:data:`FRONTENDS`):

``"paper"``
    The paper's parameters: 22,050 Hz, Hann 512, n_fft 512, hop 128, 128 mel bands over
    50-11,025 Hz, [-100, 0] dB -> [0, 1], 3.0 s windows strided by 1.5 s, 224x224x3, no
    normalisation (mean 0, std 1: inputs stay in [0, 1]; BatchNorm in the encoder adapts).
    Mel scale: **Slaney** (linear below 1 kHz, log above) with triangles linear in Hz
    (``librosa.filters.mel``). With n_fft 512 the FFT bins are 43 Hz apart; HTK bands from
    50 Hz start ~16 Hz apart, so several low HTK triangles would contain no FFT bin at all
    (empty, constant -100 dB rows). Slaney bands are >= 25 Hz apart with triangles 51 Hz
    wide, so every band sees at least one bin. High frequencies on top, as in the reference.
    Window lengths are in seconds: 66,150 samples (3 s) strided by 33,075.

``"reference"``
    Bit-for-bit the released checkpoints' preprocessing: Hann 512 zero-padded to n_fft 1024,
    hop 128, HTK mel with triangles linear in mel and the DC bin excluded (as
    ``tf.signal.linear_to_mel_weight_matrix``), 128 bands over 0-11,025 Hz, [-100, 0] dB ->
    uint8 -> /255, high on top, resized to 224x224, normalised with mean 0.3342, std 0.1529.
    Windows are 512 frames strided by 256 frames; in samples (no centring, see 1.) that is
    ``(512 - 1) * 128 + 512 = 65,920`` samples (2.99 s) strided by ``256 * 128 = 32,768``,
    so window ``i`` is exactly frames ``256 i ... 256 i + 511`` of the whole recording's
    spectrogram. (The reference code also zero-pads the whole spectrogram symmetrically before
    cutting windows; our window placement and padding are those of
    :func:`geoforensics.core.audio.windows.window_starts`.)

:meth:`MelFrontEnd.images` takes a batch of windows; :meth:`MelFrontEnd.strided_images` takes
one stretch of signal holding consecutive windows and, where the stride is a whole number of
hops (the reference preset), computes the shared STFT frames once.

How it is computed (the numbers are those of the pipeline above, to float32 rounding): when
``n_fft == win_length`` (the paper preset) the frames of all windows are read through one
strided view and windowed, transformed and reduced to mel bands in blocks that stay in cache,
keeping only the FFT bins some triangle covers and skipping the zero blocks of the banded mel
matrix; otherwise ``torch.stft`` is used. The resize of step 5 is two banded matrix products
whose weights are read off ``F.interpolate`` itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.errors import InputError

if TYPE_CHECKING:
    import torch

    #: (first output row, stop, first input, stop, weights) blocks of a banded matrix product
    _Blocks = list[tuple[int, int, int, int, torch.Tensor]]

_MEL_SCALES = ("slaney", "htk")
_MEL_TRIANGLES = ("hz", "mel")
#: mel rows per block of the banded mel product (fast path)
_MEL_GROUP_ROWS = 16
#: STFT frames per block of the fast path (intermediates of about 2 MB stay in cache, and
#: under the mmap threshold of ``graph_runners.MMAP_THRESHOLD_BYTES``, so they reuse heap
#: memory instead of being page-faulted in anew for every block)
_FRAMES_PER_BLOCK = 1024
#: output rows/columns per block of the banded resize products
_RESIZE_GROUP = 32


@dataclass(frozen=True)
class FrontEndConfig:
    """Every parameter of the audio -> image front-end; saved in each model's config.

    Windows are given either in seconds (``window_s``/``stride_s``) or in STFT frames
    (``window_frames``/``stride_frames``), never both; :attr:`window_samples` and
    :attr:`stride_samples` convert either to samples. ``mel_triangles`` is ``"hz"`` for
    triangles linear in Hz (librosa) or ``"mel"`` for triangles linear in mel with the DC bin
    excluded (TensorFlow, the reference code).
    """

    name: str
    sample_rate: int = 22050
    win_length: int = 512
    n_fft: int = 512
    hop_length: int = 128
    n_mels: int = 128
    f_min: float = 50.0
    f_max: float = 11025.0
    mel_scale: str = "slaney"
    mel_triangles: str = "hz"
    high_on_top: bool = True
    amin: float = 1e-10
    db_min: float = -100.0
    db_max: float = 0.0
    quantize_uint8: bool = False
    window_s: float | None = 3.0
    stride_s: float | None = 1.5
    window_frames: int | None = None
    stride_frames: int | None = None
    channels: int = 3
    image_height: int = 224
    image_width: int = 224
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        for key in ("sample_rate", "win_length", "n_fft", "hop_length", "n_mels", "channels"):
            if int(getattr(self, key)) <= 0:
                problems.append(f"{key} must be positive")
        if self.image_height <= 0 or self.image_width <= 0:
            problems.append("image size must be positive")
        if self.n_fft < self.win_length:
            problems.append("n_fft must be >= win_length")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            problems.append("need 0 <= f_min < f_max <= sample_rate / 2")
        if self.mel_scale not in _MEL_SCALES:
            problems.append(f"mel_scale must be one of {_MEL_SCALES}")
        if self.mel_triangles not in _MEL_TRIANGLES:
            problems.append(f"mel_triangles must be one of {_MEL_TRIANGLES}")
        if not (self.db_min < self.db_max) or self.amin <= 0:
            problems.append("need db_min < db_max and amin > 0")
        if not self.std > 0:
            problems.append("std must be positive")
        in_seconds = self.window_s is not None or self.stride_s is not None
        in_frames = self.window_frames is not None or self.stride_frames is not None
        if in_seconds == in_frames:
            problems.append("give window_s/stride_s or window_frames/stride_frames (not both)")
        elif in_seconds and not (
            self.window_s is not None
            and self.stride_s is not None
            and self.window_s > 0
            and self.stride_s > 0
        ):
            problems.append("window_s and stride_s must both be positive")
        elif in_frames and not (
            self.window_frames is not None
            and self.stride_frames is not None
            and self.window_frames > 0
            and self.stride_frames > 0
        ):
            problems.append("window_frames and stride_frames must both be positive")
        if problems:
            raise InputError(f"front-end config {self.name!r}: " + "; ".join(problems))

    @property
    def window_samples(self) -> int:
        """Samples per window (frames: ``(frames - 1) * hop + win_length``, no centring)."""
        if self.window_frames is not None:
            return (self.window_frames - 1) * self.hop_length + self.win_length
        assert self.window_s is not None
        return round(self.window_s * self.sample_rate)

    @property
    def stride_samples(self) -> int:
        """Samples between window starts (frames: ``stride_frames * hop``)."""
        if self.stride_frames is not None:
            return self.stride_frames * self.hop_length
        assert self.stride_s is not None
        return round(self.stride_s * self.sample_rate)

    @property
    def frames_per_window(self) -> int:
        """STFT frames in one window (before resizing)."""
        return 1 + (self.window_samples - self.win_length) // self.hop_length

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one model input: (channels, height, width)."""
        return (self.channels, self.image_height, self.image_width)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dictionary (round-trips through :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrontEndConfig:
        """Rebuild a config saved by :meth:`to_dict`; unknown keys are an error."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"front-end config: unknown keys {unknown}")
        if "name" not in data:
            raise InputError("front-end config: missing key 'name'")
        return cls(**dict(data))


#: Named presets; see the module docstring for what each one is and why.
FRONTENDS: dict[str, FrontEndConfig] = {
    "paper": FrontEndConfig(name="paper"),
    "reference": FrontEndConfig(
        name="reference",
        n_fft=1024,
        f_min=0.0,
        mel_scale="htk",
        mel_triangles="mel",
        quantize_uint8=True,
        window_s=None,
        stride_s=None,
        window_frames=512,
        stride_frames=256,
        mean=0.3342,
        std=0.1529,
    ),
}


def get_frontend_config(name: str) -> FrontEndConfig:
    """The preset called ``name`` (``"paper"`` or ``"reference"``)."""
    try:
        return FRONTENDS[name]
    except KeyError:
        raise InputError(
            f"unknown front-end {name!r}; choose one of {', '.join(sorted(FRONTENDS))}"
        ) from None


def _hz_to_mel(hz: np.ndarray, scale: str) -> np.ndarray:
    import librosa

    return np.asarray(librosa.hz_to_mel(hz, htk=scale == "htk"), dtype=np.float64)


def _mel_to_hz(mel: np.ndarray, scale: str) -> np.ndarray:
    import librosa

    return np.asarray(librosa.mel_to_hz(mel, htk=scale == "htk"), dtype=np.float64)


def mel_filterbank(config: FrontEndConfig) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangles with peak 1, lowest band first."""
    n_bins = config.n_fft // 2 + 1
    if config.mel_triangles == "hz":
        import librosa

        weights = librosa.filters.mel(
            sr=config.sample_rate,
            n_fft=config.n_fft,
            n_mels=config.n_mels,
            fmin=config.f_min,
            fmax=config.f_max,
            htk=config.mel_scale == "htk",
            norm=None,
            dtype=np.float64,
        )
        return np.asarray(weights, dtype=np.float64)
    # triangles linear in mel; band edges evenly spaced in mel; DC bin gets no weight
    edges = np.linspace(
        _hz_to_mel(np.array(config.f_min), config.mel_scale),
        _hz_to_mel(np.array(config.f_max), config.mel_scale),
        config.n_mels + 2,
    )
    bin_mel = _hz_to_mel(np.linspace(0.0, config.sample_rate / 2, n_bins), config.mel_scale)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bin_mel[None, :] - left) / (centre - left)
    falling = (right - bin_mel[None, :]) / (right - centre)
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    weights[:, 0] = 0.0
    return weights


def band_centres_hz(config: FrontEndConfig) -> np.ndarray:
    """Centre frequency of each mel band, lowest band first."""
    edges = np.linspace(
        _hz_to_mel(np.array(config.f_min), config.mel_scale),
        _hz_to_mel(np.array(config.f_max), config.mel_scale),
        config.n_mels + 2,
    )
    return _mel_to_hz(edges[1:-1], config.mel_scale)


@dataclass(frozen=True)
class BandedMel:
    """The mel matrix as both front-ends use it (:func:`banded_mel`).

    ``weights`` (n_mels, n_fft // 2 + 1) float64, lowest band first, scaled by
    ``2 / sum(window)``; ``bins`` the range of FFT bins some triangle covers; ``groups`` the
    matrix with its rows in image order (``high_on_top``) cut into blocks of
    :data:`_MEL_GROUP_ROWS` rows, each ``(first row, stop, first bin, stop bin, block)`` with
    bins counted from ``bins[0]`` and ``block`` the float32 non-zero columns of those rows.
    """

    weights: np.ndarray
    bins: tuple[int, int]
    groups: list[tuple[int, int, int, int, np.ndarray]]


def banded_mel(config: FrontEndConfig, window_sum: float) -> BandedMel:
    """The mel matrix of ``config`` for a window summing to ``window_sum``, in row blocks
    that each touch only the FFT bins their triangles cover (the products skip the zeros)."""
    weights = mel_filterbank(config) * (2.0 / window_sum)
    rows = weights[::-1] if config.high_on_top else weights
    used = np.flatnonzero(np.any(rows != 0.0, axis=0))
    bins = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 0)
    groups = []
    for start in range(0, config.n_mels, _MEL_GROUP_ROWS):
        stop = min(start + _MEL_GROUP_ROWS, config.n_mels)
        cols = np.flatnonzero(np.any(rows[start:stop] != 0.0, axis=0))
        if cols.size:
            first, last = int(cols[0]), int(cols[-1]) + 1
            block = np.ascontiguousarray(rows[start:stop, first:last], dtype=np.float32)
            groups.append((start, stop, first - bins[0], last - bins[0], block))
    return BandedMel(weights, bins, groups)


class WindowedFrontEnd:
    """What both front-ends (:class:`MelFrontEnd` and the numpy one) share about their input:
    the window grid of their :class:`FrontEndConfig` and how a batch of windows is stacked
    (:func:`stack_windows`: the same padding and the same refusals)."""

    config: FrontEndConfig

    @property
    def window_samples(self) -> int:
        """Samples per model window at ``config.sample_rate``."""
        return self.config.window_samples

    @property
    def stride_samples(self) -> int:
        """Samples between consecutive window starts."""
        return self.config.stride_samples

    def _stack(self, windows: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        return stack_windows(windows, self.window_samples)


class MelFrontEnd(WindowedFrontEnd):
    """Turns windows of mono samples into model inputs, following a :class:`FrontEndConfig`.

    The Hann window and the (scaled) mel matrix are built once. All methods run without
    gradient tracking (``torch.no_grad``; the outputs are ordinary tensors that can feed a
    model being trained) and use torch's CPU threads.
    """

    def __init__(self, config: FrontEndConfig | str = "paper") -> None:
        import torch

        self.config = get_frontend_config(config) if isinstance(config, str) else config
        cfg = self.config
        window = torch.hann_window(cfg.win_length, periodic=True, dtype=torch.float64)
        banded = banded_mel(cfg, float(window.sum()))
        self._window = window.to(torch.float32)
        self._mel = torch.from_numpy(np.ascontiguousarray(banded.weights, dtype=np.float32))
        # fast path (n_fft == win_length): the mel matrix in row blocks (see banded_mel)
        self._fast = cfg.n_fft == cfg.win_length
        self._bins = banded.bins
        self._mel_groups: _Blocks = [
            (start, stop, first, last, torch.from_numpy(block))
            for start, stop, first, last, block in banded.groups
        ]
        self._resize_cache: dict[tuple[int, int, str, str], tuple[_Blocks, _Blocks]] = {}
        centres = band_centres_hz(cfg)
        self.band_hz: np.ndarray = centres[::-1].copy() if cfg.high_on_top else centres
        """Centre frequency (Hz) of each row of :meth:`spectrogram`, in row order."""

    def _scaled(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, N) float32 samples -> (B, n_mels, frames) in [0, 1], rows in image order."""
        import torch
        import torch.nn.functional as F

        cfg = self.config
        if self._fast and batch.shape[-1] >= cfg.win_length:
            return self._scaled_fast(batch)
        # torch.stft centres a short window inside n_fft; shifting the signal by the same
        # amount makes frame f cover samples [f * hop, f * hop + win_length) (magnitudes do not
        # depend on where the zero padding sits inside the FFT buffer)
        left = (cfg.n_fft - cfg.win_length) // 2
        if cfg.n_fft > cfg.win_length:
            batch = F.pad(batch, (left, cfg.n_fft - cfg.win_length - left))
        spectrum = torch.stft(
            batch,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self._window,
            center=False,
            return_complex=True,
        )
        parts = torch.view_as_real(spectrum)
        real, imag = parts[..., 0], parts[..., 1]
        magnitude = torch.mul(real, real).addcmul_(imag, imag).sqrt_()  # (B, bins, frames)
        mel = torch.matmul(self._mel, magnitude)  # (B, n_mels, frames), lowest band first
        # 20 log10(m) in dB, clipped to [db_min, db_max], mapped linearly to [0, 1]
        span = cfg.db_max - cfg.db_min
        scaled = mel.clamp_min_(cfg.amin).log_().mul_(20.0 / (span * math.log(10.0)))
        scaled = scaled.add_(-cfg.db_min / span).clamp_(0.0, 1.0)
        if cfg.quantize_uint8:
            scaled = scaled.mul_(255.0).floor_().div_(255.0)
        if cfg.high_on_top:
            scaled = scaled.flip(1)
        return scaled

    def _scaled_fast(self, batch: torch.Tensor) -> torch.Tensor:
        """:meth:`_scaled` for ``n_fft == win_length``; returns a strided view.

        Same arithmetic as ``torch.stft`` + magnitude + mel, organised for speed: the windows
        are laid end to end (each padded to a whole number of hops) so that one strided view
        holds every frame; frames are windowed and transformed in blocks small enough to stay
        in cache (the few frames straddling two windows are computed and dropped); only the
        FFT bins that some mel triangle covers go on, and the mel product skips the zeros of
        the banded matrix. The result is written as (n_mels, windows, frames).
        """
        import torch

        cfg = self.config
        count, size = batch.shape
        hop, n_fft = cfg.hop_length, cfg.n_fft
        row_hops = -(-size // hop)
        frames = 1 + (size - n_fft) // hop
        # a zero tail of n_fft - hop samples makes exactly count * row_hops frames
        total = count * row_hops
        flat = batch.new_zeros(total * hop + max(n_fft - hop, 0))
        flat[: total * hop].view(count, row_hops * hop)[:, :size] = batch
        frames_view = flat.unfold(0, n_fft, hop)  # frame f of window w: row w * row_hops + f
        lo, hi = self._bins
        mel = torch.empty((cfg.n_mels, total), dtype=batch.dtype)
        covered = 0
        for start, stop, *_ in self._mel_groups:  # rows no triangle reaches stay 0
            mel[covered:start] = 0.0
            covered = stop
        mel[covered:] = 0.0
        for begin in range(0, total if hi > lo else 0, _FRAMES_PER_BLOCK):
            end = min(begin + _FRAMES_PER_BLOCK, total)
            spectrum = torch.fft.rfft(frames_view[begin:end] * self._window)
            parts = torch.view_as_real(spectrum[:, lo:hi])
            real, imag = parts[..., 0], parts[..., 1]
            magnitude = torch.mul(real, real).addcmul_(imag, imag).sqrt_()  # (frames, bins)
            for start, stop, first, last, block in self._mel_groups:
                torch.mm(block, magnitude[:, first:last].T, out=mel[start:stop, begin:end])
        span = cfg.db_max - cfg.db_min
        scaled = mel.clamp_min_(cfg.amin).log_().mul_(20.0 / (span * math.log(10.0)))
        scaled = scaled.add_(-cfg.db_min / span).clamp_(0.0, 1.0)
        if cfg.quantize_uint8:
            scaled = scaled.mul_(255.0).floor_().div_(255.0)
        return scaled.view(cfg.n_mels, count, row_hops)[:, :, :frames].permute(1, 0, 2)

    def spectrogram(self, samples: np.ndarray) -> np.ndarray:
        """(n_mels, frames) float32 in [0, 1] of a mono signal of any length.

        Rows follow ``high_on_top`` (see :attr:`band_hz`); a signal shorter than one frame is
        zero-padded to one frame. Meant for display and checks: memory grows with the length
        (several kB per frame, roughly 60-100 MB per minute of audio), so cut long recordings
        into windows.
        """
        import torch

        signal = _as_signal(samples)
        if signal.size < self.config.win_length:
            signal = np.pad(signal, (0, self.config.win_length - signal.size))
        with torch.no_grad():
            return self._scaled(torch.from_numpy(signal)[None])[0].numpy().copy()

    def images(self, windows: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """(B, channels, H, W) normalised model inputs for B windows of mono samples.

        Each window has at most :attr:`window_samples` samples; shorter ones are zero-padded
        at the end (the padding rule of :func:`~geoforensics.core.audio.windows.window_starts`).
        """
        import torch

        batch = self._stack(windows)
        with torch.no_grad():
            return self.images_from_scaled(self._scaled(torch.from_numpy(batch)))

    def strided_images(self, signal: np.ndarray, count: int) -> torch.Tensor:
        """Model inputs of ``count`` windows starting at ``0, stride, 2 * stride, ...`` of
        ``signal`` (zero-padded at the end if it is too short).

        Equal to :meth:`images` of those slices, but when the stride is a whole number of hops
        (the reference preset) the overlapping windows share one STFT, which halves the work.
        """
        import torch

        if count <= 0:
            raise InputError(f"count must be positive, got {count}")
        cfg = self.config
        size, stride, hop = self.window_samples, self.stride_samples, cfg.hop_length
        need = (count - 1) * stride + size
        samples = _as_signal(signal)[:need]
        if samples.size < need:
            samples = np.pad(samples, (0, need - samples.size))
        with torch.no_grad():
            span = torch.from_numpy(np.ascontiguousarray(samples))
            if stride % hop == 0:
                frames = self._scaled(span[None])[0]  # (n_mels, all frames)
                per_window = cfg.frames_per_window
                scaled = frames.unfold(1, per_window, stride // hop)[:, :count]
                scaled = scaled.permute(1, 0, 2)
            else:
                windows = span.unfold(0, size, stride)[:count]
                scaled = self._scaled(windows if self._fast else windows.contiguous())
            return self.images_from_scaled(scaled)

    def window_image(self, window_samples: np.ndarray) -> torch.Tensor:
        """(channels, H, W) model input for one window (see :meth:`images`)."""
        return self.images([window_samples])[0]

    def images_from_scaled(self, scaled: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) scaled spectrograms in [0, 1] -> model inputs (B, channels, H, W).

        Public so that cached spectrogram slices (training) go through the same resize,
        normalisation and channel code as windows computed from audio.
        """
        import torch

        cfg = self.config
        count, rows, cols = scaled.shape
        height, width = cfg.image_height, cfg.image_width
        dtype = scaled.dtype if scaled.is_floating_point() else torch.float32
        row_blocks, col_blocks = self._resize_blocks(rows, cols, scaled.device, dtype)
        with torch.no_grad():
            # (rows * count, cols) with rows outermost: a view for the fast path's layout
            source = scaled.to(dtype).permute(1, 0, 2).reshape(rows * count, cols)
            across = source.new_empty((rows * count, width))
            for start, stop, first, last, block in col_blocks:
                torch.mm(source[:, first:last], block.T, out=across[:, start:stop])
            resized = source.new_empty((height, count * width))
            across = across.view(rows, count * width)
            for start, stop, first, last, block in row_blocks:
                torch.mm(block, across[first:last], out=resized[start:stop])
            if cfg.mean != 0.0 or cfg.std != 1.0:
                resized = resized.sub_(cfg.mean).div_(cfg.std)
            images = resized.view(height, count, width).permute(1, 0, 2)[:, None]
            return images.expand(-1, cfg.channels, -1, -1).contiguous()

    def _resize_blocks(
        self, rows: int, cols: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[_Blocks, _Blocks]:
        """Banded weights of the antialiased bilinear resize of a ``rows x cols`` image."""
        key = (rows, cols, str(device), str(dtype))
        if key not in self._resize_cache:
            cfg = self.config
            along_rows, along_cols = (
                [
                    (start, stop, first, last, block.to(device=device))
                    for start, stop, first, last, block in _resize_weights(size, out, dtype)
                ]
                for size, out in ((rows, cfg.image_height), (cols, cfg.image_width))
            )
            self._resize_cache[key] = (along_rows, along_cols)
        return self._resize_cache[key]


def _resize_weights(size_in: int, size_out: int, dtype: torch.dtype) -> _Blocks:
    """Row blocks of the (size_out, size_in) matrix of a 1-D antialiased bilinear resize.

    The matrix is read off ``F.interpolate`` itself (resizing the rows of an identity along the
    width, where the separable 2-D resize applies the same 1-D kernel along each axis), so the
    weights are exactly torch's for ``dtype``; only the summation order of the products differs.
    """
    import torch
    import torch.nn.functional as F

    identity = torch.eye(size_in, dtype=dtype)[:, None, None, :]
    weights = F.interpolate(
        identity, size=(1, size_out), mode="bilinear", align_corners=False, antialias=True
    )[:, 0, 0, :].T  # (size_out, size_in)
    blocks: _Blocks = []
    for start in range(0, size_out, _RESIZE_GROUP):
        stop = min(start + _RESIZE_GROUP, size_out)
        used = torch.nonzero(torch.any(weights[start:stop] != 0.0, dim=0)).flatten()
        first, last = int(used[0]), int(used[-1]) + 1
        blocks.append((start, stop, first, last, weights[start:stop, first:last].contiguous()))
    return blocks


def stack_windows(windows: Sequence[np.ndarray] | np.ndarray, size: int) -> np.ndarray:
    """(B, size) float32 batch of windows of at most ``size`` mono samples, each zero-padded
    at the end (the padding rule of :func:`~geoforensics.core.audio.windows.window_starts`);
    shared by the torch and the numpy front-ends so that both take and refuse the same input."""
    if isinstance(windows, np.ndarray):
        if windows.ndim != 2:
            raise InputError(f"windows must be a 2-D array (B, samples), got {windows.shape}")
        rows: Sequence[np.ndarray] | np.ndarray = windows
    else:
        rows = list(windows)
    if len(rows) == 0:
        raise InputError("no windows given")
    batch = np.zeros((len(rows), size), dtype=np.float32)
    for i, row in enumerate(rows):
        signal = _as_signal(row)
        if signal.size > size:
            raise InputError(
                f"window {i} has {signal.size} samples; this front-end takes at most {size}"
            )
        batch[i, : signal.size] = signal
    return batch


def _as_signal(samples: np.ndarray) -> np.ndarray:
    signal = np.asarray(samples, dtype=np.float32)
    if signal.ndim != 1:
        raise InputError(f"expected a 1-D mono signal, got shape {signal.shape}")
    if not math.isfinite(float(signal.sum(dtype=np.float64))):
        signal = np.nan_to_num(signal, nan=0.0, posinf=0.0, neginf=0.0)
    return signal
