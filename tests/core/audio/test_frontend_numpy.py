"""The torch-free front-end (:class:`NumpyMelFrontEnd`) against :class:`MelFrontEnd`: same images
to float32 rounding for both presets and an odd config, same padding and errors, and no torch
import."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geoforensics.core.audio.frontend import FrontEndConfig, MelFrontEnd, get_frontend_config
from geoforensics.core.audio.frontend_numpy import NumpyMelFrontEnd, resize_weights
from geoforensics.core.errors import InputError

RATE = 22050
TOLERANCE = 2e-5

ODD = FrontEndConfig.from_dict(
    {
        **get_frontend_config("paper").to_dict(),
        "n_mels": 64,
        "image_height": 96,
        "image_width": 128,
        "hop_length": 160,
        "window_s": 2.0,
        "stride_s": 1.0,
        "mean": 0.4,
        "std": 0.2,
    }
)
CONFIGS = {
    "paper": get_frontend_config("paper"),
    "reference": get_frontend_config("reference"),
    "reference_unquantised": dataclasses.replace(
        get_frontend_config("reference"), quantize_uint8=False
    ),
    "odd": ODD,
}


def noisy_sine(n: int, seed: int = 1234) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sine = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(n) / RATE)
    return (0.1 * rng.standard_normal(n) + sine).astype(np.float32)


def assert_matches(actual: np.ndarray, expected: torch.Tensor, config: FrontEndConfig) -> None:
    """Equal to float32 rounding; with uint8 quantisation a rounding difference can move a
    spectrogram value across a level, which shows as a sparse step of at most one level."""
    reference = expected.numpy()
    assert isinstance(actual, np.ndarray) and actual.dtype == np.float32
    assert actual.shape == reference.shape
    diff = np.abs(actual - reference)
    if not config.quantize_uint8:
        assert float(diff.max()) <= TOLERANCE, float(diff.max())
        return
    assert float(diff.max()) <= 1.0 / 255.0 / config.std + TOLERANCE, float(diff.max())
    assert float((diff > TOLERANCE).mean()) < 1e-3


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_strided_images_match_torch(name: str) -> None:
    config = CONFIGS[name]
    count, size, stride = 3, config.window_samples, config.stride_samples
    signal = noisy_sine((count - 1) * stride + size)
    expected = MelFrontEnd(config).strided_images(signal, count)
    assert_matches(
        NumpyMelFrontEnd(config, threads=2).strided_images(signal, count), expected, config
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_images_with_short_windows_match_torch(name: str) -> None:
    config = CONFIGS[name]
    size = config.window_samples
    signal = noisy_sine(size + 999, seed=7)
    windows = [
        signal[:size],
        signal[999 : 999 + size // 3],  # shorter than a window: zero-padded at the end
        signal[: config.win_length - 1],  # shorter than one frame
        np.zeros(0, dtype=np.float32),
    ]
    expected = MelFrontEnd(config).images(windows)
    assert_matches(NumpyMelFrontEnd(config).images(windows), expected, config)
    assert_matches(NumpyMelFrontEnd(config).images(np.stack([signal[:size]])), expected[:1], config)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("length", ["under_a_window", "under_a_frame", "empty"])
def test_short_signals_are_padded_like_torch(name: str, length: str) -> None:
    config = CONFIGS[name]
    sizes = {
        "under_a_window": config.window_samples + config.stride_samples // 2,
        "under_a_frame": config.win_length // 2,
        "empty": 0,
    }
    signal = noisy_sine(sizes[length], seed=3)
    expected = MelFrontEnd(config).strided_images(signal, 2)
    assert_matches(NumpyMelFrontEnd(config).strided_images(signal, 2), expected, config)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_images_from_scaled_matches_torch(name: str) -> None:
    config = CONFIGS[name]
    rng = np.random.default_rng(5)
    for rows, cols in [(config.n_mels, config.frames_per_window), (7, 5), (1, 1)]:
        scaled = rng.random((2, rows, cols), dtype=np.float32)
        expected = MelFrontEnd(config).images_from_scaled(torch.from_numpy(scaled))
        actual = NumpyMelFrontEnd(config).images_from_scaled(scaled)
        assert actual.dtype == np.float32
        assert float(np.abs(actual - expected.numpy()).max()) <= TOLERANCE


@pytest.mark.parametrize(
    ("size_in", "size_out"), [(513, 224), (512, 224), (128, 224), (64, 96), (5, 3), (1, 4), (9, 9)]
)
def test_resize_weights_equal_interpolate(size_in: int, size_out: int) -> None:
    identity = torch.eye(size_in)[:, None, None, :]
    expected = F.interpolate(
        identity, size=(1, size_out), mode="bilinear", align_corners=False, antialias=True
    )[:, 0, 0, :].T
    np.testing.assert_allclose(resize_weights(size_in, size_out), expected.numpy(), atol=1e-7)


def test_thread_count_does_not_change_results() -> None:
    config = get_frontend_config("paper")
    signal = noisy_sine(3 * config.stride_samples + config.window_samples)
    one = NumpyMelFrontEnd(config, threads=1).strided_images(signal, 4)
    two = NumpyMelFrontEnd(config, threads=2).strided_images(signal, 4)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("name", ["paper", "reference"])
def test_bad_input_errors_match_torch(name: str) -> None:
    config = CONFIGS[name]
    ours, theirs = NumpyMelFrontEnd(config), MelFrontEnd(config)
    size = config.window_samples
    bad_calls = [
        lambda fe: fe.images([np.zeros((2, 100), np.float32)]),  # a 2-D window
        lambda fe: fe.images([np.zeros(size + 1, np.float32)]),  # too many samples
        lambda fe: fe.images(np.zeros((2, 3, 4), np.float32)),  # not (B, samples)
        lambda fe: fe.images([]),
        lambda fe: fe.strided_images(np.zeros(size, np.float32), 0),
        lambda fe: fe.strided_images(np.zeros(size, np.float32), -1),
        lambda fe: fe.strided_images(np.zeros((2, size), np.float32), 1),
    ]
    for call in bad_calls:
        with pytest.raises(InputError) as expected:
            call(theirs)
        with pytest.raises(InputError) as actual:
            call(ours)
        assert str(actual.value) == str(expected.value)
    with pytest.raises(InputError):
        ours.images_from_scaled(np.zeros((3, 4), np.float32))
    with pytest.raises(InputError):
        NumpyMelFrontEnd(config, threads=0)


def test_window_samples_and_stride_match_torch() -> None:
    for config in CONFIGS.values():
        ours, theirs = NumpyMelFrontEnd(config), MelFrontEnd(config)
        assert ours.config == theirs.config
        assert (ours.window_samples, ours.stride_samples) == (
            theirs.window_samples,
            theirs.stride_samples,
        )
    assert NumpyMelFrontEnd("reference").config == get_frontend_config("reference")


def test_running_does_not_import_torch() -> None:
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from geoforensics.core.audio.frontend_numpy import NumpyMelFrontEnd
        for name in ("paper", "reference"):
            frontend = NumpyMelFrontEnd(name, threads=2)
            signal = np.ones(frontend.window_samples + frontend.stride_samples, np.float32)
            images = frontend.strided_images(signal, 2)
            frontend.images([signal[:1000]])
            frontend.images_from_scaled(np.zeros((1, 8, 9), np.float32))
            assert images.shape == (2, 3, 224, 224), images.shape
        print("torch" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
