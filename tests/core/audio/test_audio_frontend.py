"""Log-mel front-end: presets, tone placement and level, padding, reference compatibility."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.signal
import torch

from geoforensics.core.audio.frontend import (
    FRONTENDS,
    FrontEndConfig,
    MelFrontEnd,
    get_frontend_config,
)
from geoforensics.core.errors import InputError

RATE = 22050


def tone(freq: float, n: int, amplitude: float = 1.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / RATE)).astype(np.float32)


# the mel scales, written out from their definitions (independent of librosa)
def slaney_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    linear = 3.0 * hz / 200.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / log_step
    return np.where(hz < 1000.0, linear, logarithmic)


def slaney_hz(mel: np.ndarray) -> np.ndarray:
    log_step = math.log(6.4) / 27.0
    return np.where(mel < 15.0, 200.0 * mel / 3.0, 1000.0 * np.exp(log_step * (mel - 15.0)))


def htk_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def htk_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def centres(low: float, high: float, n: int, scale: str) -> np.ndarray:
    to_mel, to_hz = (slaney_mel, slaney_hz) if scale == "slaney" else (htk_mel, htk_hz)
    return to_hz(np.linspace(to_mel(low), to_mel(high), n + 2)[1:-1])


# --------------------------------------------------------------------------------------------
# presets and config


def test_paper_preset_parameters_and_window_lengths() -> None:
    config = get_frontend_config("paper")
    assert (config.sample_rate, config.win_length, config.n_fft, config.hop_length) == (
        22050,
        512,
        512,
        128,
    )
    assert (config.n_mels, config.f_min, config.f_max) == (128, 50.0, 11025.0)
    assert (config.db_min, config.db_max, config.mean, config.std) == (-100.0, 0.0, 0.0, 1.0)
    assert config.window_samples == 66150 and config.stride_samples == 33075
    assert config.frames_per_window == 1 + (66150 - 512) // 128 == 513
    assert config.input_shape == (3, 224, 224)


def test_reference_preset_windows_are_512_frames_strided_256() -> None:
    config = get_frontend_config("reference")
    assert (config.n_fft, config.f_min, config.mel_scale, config.quantize_uint8) == (
        1024,
        0.0,
        "htk",
        True,
    )
    assert (config.mean, config.std) == (0.3342, 0.1529)
    assert config.window_samples == 511 * 128 + 512 == 65920
    assert config.stride_samples == 256 * 128 == 32768
    assert config.frames_per_window == 512


def test_config_round_trips_through_json_and_rejects_bad_input() -> None:
    for config in FRONTENDS.values():
        restored = FrontEndConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        assert restored == config
    with pytest.raises(InputError, match="unknown keys"):
        FrontEndConfig.from_dict({**FRONTENDS["paper"].to_dict(), "hop": 64})
    with pytest.raises(InputError, match="not both"):
        FrontEndConfig(name="x", window_frames=512, stride_frames=256)
    with pytest.raises(InputError, match="f_max"):
        FrontEndConfig(name="x", f_max=20000.0)
    with pytest.raises(InputError, match="unknown front-end"):
        get_frontend_config("nope")


# --------------------------------------------------------------------------------------------
# spectrogram values


@pytest.mark.parametrize("preset", ["paper", "reference"])
@pytest.mark.parametrize("freq", [1000.0, 4000.0])
def test_full_scale_tone_peaks_in_nearest_band_at_0_db(preset: str, freq: float) -> None:
    frontend = MelFrontEnd(preset)
    config = frontend.config
    spectrogram = frontend.spectrogram(tone(freq, frontend.window_samples))
    assert spectrogram.shape == (128, config.frames_per_window)
    assert spectrogram.dtype == np.float32
    band_centres = centres(config.f_min, config.f_max, 128, config.mel_scale)
    expected_row = 127 - int(np.argmin(np.abs(band_centres - freq)))  # high bands on top
    profile = spectrogram.mean(axis=1)
    assert int(np.argmax(profile)) == expected_row
    np.testing.assert_allclose(frontend.band_hz[expected_row], band_centres[127 - expected_row])
    peak_db = profile[expected_row] * 100.0 - 100.0
    assert peak_db > -0.5, f"full-scale sine at {peak_db:.2f} dB"


@pytest.mark.parametrize("preset", ["paper", "reference"])
def test_level_is_20_log10_of_amplitude(preset: str) -> None:
    frontend = MelFrontEnd(preset)
    loud = frontend.spectrogram(tone(1000.0, frontend.window_samples, amplitude=0.1))
    quiet = frontend.spectrogram(tone(1000.0, frontend.window_samples, amplitude=0.01))
    row = int(np.argmax(loud.mean(axis=1)))
    # a tenth of the amplitude is 20 dB lower: 0.2 on the [-100, 0] dB -> [0, 1] scale
    step = 1.0 / 255.0 if frontend.config.quantize_uint8 else 1e-4
    assert float(np.median(loud[row] - quiet[row])) == pytest.approx(0.2, abs=step)
    assert float(np.median(loud[row])) == pytest.approx(0.8, abs=0.05)  # about -20 dB


def test_silence_is_zero_and_short_clips_are_zero_padded() -> None:
    frontend = MelFrontEnd("paper")
    assert frontend.spectrogram(np.zeros(frontend.window_samples, np.float32)).max() == 0.0
    clip = tone(2000.0, 2 * RATE, amplitude=0.5)  # 2 s: shorter than the 3 s window
    padded = np.zeros(frontend.window_samples, np.float32)
    padded[: clip.size] = clip
    torch.testing.assert_close(frontend.window_image(clip), frontend.window_image(padded))
    spectrogram = frontend.spectrogram(padded)
    first_silent_frame = math.ceil(clip.size / 128)  # frame f starts at 128 f
    assert spectrogram[:, first_silent_frame:].max() == 0.0
    assert spectrogram[:, : (clip.size - 512) // 128].max() > 0.9


def test_non_finite_samples_are_treated_as_silence() -> None:
    frontend = MelFrontEnd("paper")
    window = np.zeros(frontend.window_samples, np.float32)
    window[100] = np.nan
    window[5000] = np.inf
    assert frontend.spectrogram(window).max() == 0.0


# --------------------------------------------------------------------------------------------
# model inputs


def test_images_batch_shape_and_agrees_with_single_windows() -> None:
    frontend = MelFrontEnd("paper")
    rng = np.random.default_rng(0)
    windows = (0.1 * rng.standard_normal((3, frontend.window_samples))).astype(np.float32)
    images = frontend.images(windows)
    assert images.shape == (3, 3, 224, 224) and images.dtype == torch.float32
    assert not images.requires_grad and images.is_contiguous()
    torch.testing.assert_close(images[1], frontend.window_image(windows[1]))
    torch.testing.assert_close(images[:, 0], images[:, 2])  # three identical channels
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    with pytest.raises(InputError, match="at most"):
        frontend.images([np.zeros(frontend.window_samples + 1, np.float32)])
    with pytest.raises(InputError, match="1-D"):
        frontend.window_image(np.zeros((2, 10), np.float32))


@pytest.mark.parametrize("preset", ["paper", "reference"])
def test_strided_images_equal_images_of_slices(preset: str) -> None:
    frontend = MelFrontEnd(preset)
    rng = np.random.default_rng(1)
    signal = (0.1 * rng.standard_normal(5 * frontend.stride_samples + 999)).astype(np.float32)
    count = 5
    slices = [
        signal[k * frontend.stride_samples : k * frontend.stride_samples + frontend.window_samples]
        for k in range(count)
    ]
    torch.testing.assert_close(frontend.strided_images(signal, count), frontend.images(slices))


def _reference_uint8(window: np.ndarray) -> np.ndarray:
    """The reference preprocessing written out with scipy: (128, 512) uint8, high on top."""
    hann = scipy.signal.windows.hann(512, sym=False)
    _, _, spectrum = scipy.signal.stft(
        window.astype(np.float64),
        window=hann,
        nperseg=512,
        noverlap=512 - 128,
        nfft=1024,
        boundary=None,
        padded=False,
        detrend=False,
        scaling="spectrum",
    )
    magnitude = np.abs(spectrum * hann.sum()) * 2.0 / hann.sum()  # undo scipy's 1/sum(w)
    bins_mel = htk_mel(np.linspace(0.0, RATE / 2, 513))[1:, None]
    edges = np.linspace(htk_mel(0.0), htk_mel(RATE / 2), 130)
    lower = (bins_mel - edges[:-2]) / (edges[1:-1] - edges[:-2])
    upper = (edges[2:] - bins_mel) / (edges[2:] - edges[1:-1])
    weights = np.vstack([np.zeros((1, 128)), np.maximum(0.0, np.minimum(lower, upper))])
    mel = weights.T @ magnitude
    db = np.clip(20.0 * np.log10(np.maximum(1e-10, mel)), -100.0, 0.0)
    return np.flipud(((db + 100.0) / 100.0 * 255.0).astype(np.uint8))


def test_reference_preset_matches_the_reference_pipeline() -> None:
    from torchvision.transforms import Normalize, Resize

    frontend = MelFrontEnd("reference")
    rng = np.random.default_rng(2)
    t = np.arange(frontend.window_samples) / RATE
    window = (0.3 * np.sin(2 * np.pi * 3000 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )
    expected = _reference_uint8(window)
    assert expected.shape == (128, 512)
    ours = frontend.spectrogram(window) * 255.0
    # float32 vs float64 arithmetic may move a value across a uint8 step, rarely
    differs = np.abs(np.round(ours) - expected.astype(np.float64))
    assert differs.max() <= 1 and (differs > 0).mean() < 0.002
    image = torch.from_numpy(np.stack([expected] * 3).astype(np.float32) / 255.0)
    transform = Normalize((0.3342,) * 3, (0.1529,) * 3)
    reference = transform(Resize((224, 224), antialias=True)(image))
    ours_image = frontend.window_image(window)
    assert ours_image.shape == reference.shape
    assert float((ours_image - reference).abs().mean()) < 1e-3
    assert float((ours_image - reference).abs().max()) < 2.0 / 255.0 / 0.1529
