"""Window placement, streaming windows and window batches from files."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geoforensics.core.audio import (
    MelFrontEnd,
    count_windows,
    get_frontend_config,
    iter_window_batches,
    iter_window_runs,
    iter_windows,
    load_audio,
    window_starts,
)
from geoforensics.core.errors import InputError

RATE = 22050


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(10.0, 5), (2.0, 1), (3.0, 1), (4.49, 1), (4.5, 2), (60.0, 39), (0.01, 1), (0.0, 0)],
)
def test_paper_window_counts(seconds: float, expected: int) -> None:
    # 3 s windows every 1.5 s while the window fits: 1 + floor((d - 3) / 1.5) for d >= 3
    assert count_windows(seconds, get_frontend_config("paper")) == expected
    n = round(seconds * RATE)
    assert window_starts(n, 66150, 33075).size == expected


def test_reference_window_counts() -> None:
    config = get_frontend_config("reference")
    # 10 s = 220,500 samples; windows of 65,920 every 32,768: 1 + 154,580 // 32,768 = 5
    assert count_windows(10.0, config) == 5
    assert count_windows(65920 / RATE, config) == 1
    assert count_windows((65920 + 32768) / RATE, config) == 2


def test_window_starts_values_and_padding_rule() -> None:
    np.testing.assert_array_equal(window_starts(10, 4, 3), [0, 3, 6])
    np.testing.assert_array_equal(window_starts(9, 4, 3), [0, 3])
    np.testing.assert_array_equal(window_starts(3, 4, 3), [0])  # short: one padded window
    assert window_starts(0, 4, 3).size == 0
    with pytest.raises(InputError):
        window_starts(10, 0, 3)


def _sliced(signal: np.ndarray, window: int, stride: int) -> list[tuple[int, np.ndarray]]:
    out = []
    for start in window_starts(signal.size, window, stride):
        piece = np.zeros(window, np.float32)
        chunk = signal[start : start + window]
        piece[: chunk.size] = chunk
        out.append((int(start), piece))
    return out


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 400),
    window=st.integers(1, 60),
    stride=st.integers(1, 80),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_streaming_windows_equal_slicing(n: int, window: int, stride: int, cuts: list[int]) -> None:
    signal = np.arange(1, n + 1, dtype=np.float32)
    chunks = np.split(signal, sorted(c for c in cuts if c <= n))
    got = list(iter_windows(chunks, window, stride))
    expected = _sliced(signal, window, stride)
    assert [s for s, _ in got] == [s for s, _ in expected]
    for (_, a), (_, b) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    for run in (2, 3):
        flattened = [
            (first + k * stride, samples[k * stride : k * stride + window])
            for first, count, samples in iter_window_runs(chunks, window, stride, run)
            for k in range(count)
        ]
        assert [s for s, _ in flattened] == [s for s, _ in expected]
        for (_, a), (_, b) in zip(flattened, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_short_recording_gives_one_window_padded_with_silence() -> None:
    signal = np.ones(2 * RATE, np.float32)
    [(start, window)] = list(iter_windows([signal[:1000], signal[1000:]], 66150, 33075))
    assert start == 0 and window.size == 66150
    assert window[: 2 * RATE].min() == 1.0 and window[2 * RATE :].max() == 0.0


def test_streaming_windows_hold_bounded_memory() -> None:
    chunk = np.ones(RATE, np.float32)

    def twenty_minutes() -> Iterator[np.ndarray]:
        for _ in range(20 * 60):
            yield chunk.copy()

    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_windows(twenty_minutes(), 66150, 33075))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == count_windows(1200.0, get_frontend_config("paper"))
    assert peak < 5e6, f"peak {peak / 1e6:.1f} MB for 106 MB of audio"


@pytest.mark.parametrize("preset", ["paper", "reference"])
def test_window_batches_from_a_file(tmp_path: Path, preset: str) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "clip.wav"
    sf.write(path, (0.1 * rng.standard_normal(int(11.3 * 44100), dtype=np.float32)), 44100)
    frontend = MelFrontEnd(preset)
    batches = list(iter_window_batches(path, frontend, batch_size=2))
    whole = load_audio(path)
    starts = window_starts(whole.size, frontend.window_samples, frontend.stride_samples)
    assert [len(b) for b in batches] == [2] * (starts.size // 2) + [1] * (starts.size % 2)
    index = np.concatenate([b.index for b in batches])
    np.testing.assert_array_equal(index, np.arange(starts.size))
    np.testing.assert_allclose(np.concatenate([b.start_s for b in batches]), starts / RATE)
    np.testing.assert_allclose(
        np.concatenate([b.end_s for b in batches]), (starts + frontend.window_samples) / RATE
    )
    images = torch.cat([b.images for b in batches])
    expected = frontend.images([whole[s : s + frontend.window_samples] for s in starts])
    torch.testing.assert_close(images, expected)


def test_window_batch_of_a_short_file_ends_at_the_recording_end(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, np.full(RATE, 0.1, np.float32), RATE)
    frontend = MelFrontEnd("paper")
    [batch] = list(iter_window_batches(path, frontend))
    assert len(batch) == 1
    assert batch.start_s.tolist() == [0.0] and batch.end_s.tolist() == [1.0]
    assert batch.images.shape == (1, 3, 224, 224)
    # columns right of the audio are silence: value 0 in the paper preset
    assert float(batch.images[0, 0, :, 100:].max()) == 0.0
    with pytest.raises(InputError):
        next(iter_window_batches(path, frontend, batch_size=0))
