"""The optimised front-end against the pipeline written out plainly (``torch.stft`` + ``abs`` +
dense mel matrix + dB scaling + ``F.interpolate``), for both presets, to float32 rounding."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geoforensics.core.audio.frontend import (
    FrontEndConfig,
    MelFrontEnd,
    get_frontend_config,
    mel_filterbank,
)

RATE = 22050
TOLERANCE = 1e-5


def plain_scaled(config: FrontEndConfig, batch: np.ndarray) -> torch.Tensor:
    """(B, N) samples -> (B, n_mels, frames) in [0, 1], rows in image order, written plainly."""
    signal = torch.from_numpy(np.asarray(batch, dtype=np.float32))
    left = (config.n_fft - config.win_length) // 2
    signal = F.pad(signal, (left, config.n_fft - config.win_length - left))
    window = torch.hann_window(config.win_length, periodic=True, dtype=torch.float64)
    spectrum = torch.stft(
        signal,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=window.to(torch.float32),
        center=False,
        return_complex=True,
    )
    weights = mel_filterbank(config) * (2.0 / float(window.sum()))
    mel = torch.from_numpy(weights.astype(np.float32)) @ spectrum.abs()
    db = 20.0 * torch.log10(mel.clamp_min(config.amin))
    scaled = ((db - config.db_min) / (config.db_max - config.db_min)).clamp(0.0, 1.0)
    if config.quantize_uint8:
        scaled = torch.floor(scaled * 255.0) / 255.0
    return scaled.flip(1) if config.high_on_top else scaled


def plain_images_from_scaled(config: FrontEndConfig, scaled: torch.Tensor) -> torch.Tensor:
    resized = F.interpolate(
        scaled[:, None],
        size=(config.image_height, config.image_width),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    resized = (resized - config.mean) / config.std
    return resized.expand(-1, config.channels, -1, -1)


def plain_images(config: FrontEndConfig, windows: list[np.ndarray]) -> torch.Tensor:
    batch = np.zeros((len(windows), config.window_samples), dtype=np.float32)
    for i, window in enumerate(windows):
        batch[i, : window.size] = window
    return plain_images_from_scaled(config, plain_scaled(config, batch))


def tone(freq: float, n: int, amplitude: float = 1.0, phase: float = 0.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / RATE + phase)).astype(np.float32)


def signals(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    t = np.arange(n) / RATE
    chirp = 0.3 * np.sin(2 * np.pi * (100.0 * t + 400.0 * t**2))
    return {
        "noise": (0.1 * rng.standard_normal(n)).astype(np.float32),
        "tone": tone(1000.0, n, 0.5),
        "quiet_tone": tone(3321.7, n, 1e-3, phase=0.4),
        "tones_and_noise": (
            tone(60.0, n, 0.2) + tone(8000.0, n, 0.3) + 1e-3 * rng.standard_normal(n)
        ).astype(np.float32),
        "chirp": chirp.astype(np.float32),
        "silence": np.zeros(n, dtype=np.float32),
    }


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype == torch.float32
    diff = float((actual - expected).abs().max())
    assert diff <= TOLERANCE, diff


# the reference preset quantises to uint8 before resizing, so a rounding difference of one ulp
# can move a value across a level; it is compared here without quantisation (strict) and as
# shipped below (strict everywhere but at such level crossings)
CONFIGS = {
    "paper": get_frontend_config("paper"),
    "reference_unquantised": dataclasses.replace(
        get_frontend_config("reference"), quantize_uint8=False
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("kind", sorted(signals(8)))
def test_strided_images_match_plain_pipeline(name: str, kind: str) -> None:
    config = CONFIGS[name]
    frontend = MelFrontEnd(config)
    count = 5
    size, stride = config.window_samples, config.stride_samples
    signal = signals((count - 1) * stride + size)[kind]
    expected = plain_images(config, [signal[i * stride : i * stride + size] for i in range(count)])
    assert_close(frontend.strided_images(signal, count), expected)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_images_batch_with_short_and_padded_windows_match_plain_pipeline(name: str) -> None:
    config = CONFIGS[name]
    frontend = MelFrontEnd(config)
    size = config.window_samples
    pool = signals(size)
    windows = [
        pool["noise"],
        pool["tone"][: size // 3],  # zero-padded at the end
        pool["tones_and_noise"],
        pool["chirp"][: config.win_length + 7],  # barely one frame of signal
        pool["quiet_tone"][:100],  # shorter than one frame
        np.zeros(0, dtype=np.float32),
        pool["silence"],
    ]
    expected = plain_images(config, windows)
    assert_close(frontend.images(windows), expected)
    assert_close(frontend.window_image(windows[1])[None], expected[1:2])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_strided_images_short_signal_is_zero_padded(name: str) -> None:
    config = CONFIGS[name]
    frontend = MelFrontEnd(config)
    signal = signals(config.window_samples + config.stride_samples // 2)["tones_and_noise"]
    padded = np.zeros((2 - 1) * config.stride_samples + config.window_samples, np.float32)
    padded[: signal.size] = signal
    stride, size = config.stride_samples, config.window_samples
    expected = plain_images(config, [padded[:size], padded[stride : stride + size]])
    assert_close(frontend.strided_images(signal, 2), expected)


def test_paper_spectrogram_matches_plain_pipeline() -> None:
    config = get_frontend_config("paper")
    for kind, signal in signals(3 * RATE + 1234).items():
        expected = plain_scaled(config, signal[None])[0].numpy()
        actual = MelFrontEnd(config).spectrogram(signal)
        assert actual.shape == expected.shape and actual.dtype == np.float32
        assert float(np.abs(actual - expected).max()) <= TOLERANCE, kind


def test_reference_preset_as_shipped_matches_plain_pipeline() -> None:
    config = get_frontend_config("reference")
    frontend = MelFrontEnd(config)
    count, size, stride = 4, config.window_samples, config.stride_samples
    for kind, signal in signals((count - 1) * stride + size).items():
        windows = [signal[i * stride : i * stride + size] for i in range(count)]
        batch = np.stack(windows)
        scaled = plain_scaled(config, batch)
        with torch.no_grad():
            ours = frontend._scaled(torch.from_numpy(batch))
        levels = (ours - scaled).abs() * 255.0
        # equal, or one uint8 level apart where float rounding crossed a level boundary
        assert float((levels - levels.round()).abs().max()) < 1e-3, kind
        assert float(levels.max()) <= 1.0 + 1e-3, kind
        assert float((levels > 0.5).float().mean()) < 1e-4, kind
        # the resize of identical spectrograms agrees to rounding
        assert_close(frontend.images_from_scaled(ours), plain_images_from_scaled(config, ours))
        assert_close(frontend.strided_images(signal, count), frontend.images(windows))


@pytest.mark.parametrize(
    "changes",
    [
        {"win_length": 400, "n_fft": 400, "hop_length": 160, "n_mels": 40},  # odd bins
        {"hop_length": 600, "high_on_top": False},  # frames with gaps, low rows on top
        {"mel_scale": "htk", "mel_triangles": "mel", "f_min": 0.0, "n_mels": 64},  # DC excluded
        {"n_fft": 1024, "win_length": 1024, "hop_length": 256, "mean": 0.3, "std": 0.2},
        {"window_s": 0.1, "stride_s": 0.07, "image_height": 48, "image_width": 40},
    ],
)
def test_other_configs_match_plain_pipeline(changes: dict[str, Any]) -> None:
    config = FrontEndConfig.from_dict({**get_frontend_config("paper").to_dict(), **changes})
    frontend = MelFrontEnd(config)
    count, size, stride = 3, config.window_samples, config.stride_samples
    signal = signals((count - 1) * stride + size)["tones_and_noise"]
    windows = [signal[i * stride : i * stride + size] for i in range(count)]
    assert_close(frontend.strided_images(signal, count), plain_images(config, windows))
    assert_close(frontend.images(windows[1:]), plain_images(config, windows[1:]))


@pytest.mark.parametrize(
    ("rows", "cols", "height", "width"),
    [(128, 513, 224, 224), (128, 512, 224, 224), (40, 300, 64, 96), (7, 5, 32, 3), (1, 1, 4, 4)],
)
def test_images_from_scaled_matches_interpolate(
    rows: int, cols: int, height: int, width: int
) -> None:
    config = dataclasses.replace(
        get_frontend_config("paper"), n_mels=rows, image_height=height, image_width=width
    )
    frontend = MelFrontEnd(config)
    rng = np.random.default_rng(rows * cols)
    scaled = torch.from_numpy(rng.random((3, rows, cols), dtype=np.float32))
    expected = plain_images_from_scaled(config, scaled)
    assert_close(frontend.images_from_scaled(scaled), expected)
    # strided input (as the fast path and cache slices produce) gives the same result
    wide = torch.from_numpy(rng.random((rows, 3, cols + 4), dtype=np.float32))
    strided = wide[:, :, 2 : cols + 2].permute(1, 0, 2)
    assert_close(
        frontend.images_from_scaled(strided), plain_images_from_scaled(config, strided.contiguous())
    )


def test_images_from_scaled_keeps_float64_and_normalises() -> None:
    config = get_frontend_config("reference")
    frontend = MelFrontEnd(config)
    scaled = torch.rand(2, 128, 512, dtype=torch.float64)
    images = frontend.images_from_scaled(scaled)
    assert images.dtype == torch.float64 and images.shape == (2, 3, 224, 224)
    expected = plain_images_from_scaled(config, scaled)
    assert float((images - expected).abs().max()) <= 1e-9
    assert math.isclose(float(images[:, 0].mean()), float(images[:, 2].mean()))
