"""Spectrogram cache: cached windows equal the audio path's model inputs; builds are reused."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from geoforensics.core.audio import MelFrontEnd, count_windows, get_frontend_config, load_audio
from geoforensics.train import spec_cache
from geoforensics.train.spec_cache import (
    build_spectrogram_cache,
    cache_key,
    images_from_frames,
    recording_frames,
)


@dataclass(frozen=True)
class Rec:
    id: int
    path: Path


def _tone(seconds: float, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    sweep = np.sin(2 * np.pi * (800 + 600 * t) * t) * (0.3 + 0.2 * np.sin(2 * np.pi * 0.7 * t))
    return (sweep + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Rec]:
    """Four files: shorter than a window, a few windows, 44.1 kHz stereo, 22.05 kHz mono."""
    folder = tmp_path_factory.mktemp("cache-audio")
    specs = [(1.2, 22050, 1), (7.3, 22050, 1), (9.0, 44100, 2), (4.0, 16000, 1)]
    out = []
    for i, (seconds, rate, channels) in enumerate(specs):
        signal = _tone(seconds, rate, i)
        data = np.stack([signal, 0.5 * signal], axis=1) if channels == 2 else signal
        path = folder / f"rec{i}.wav"
        sf.write(path, data, rate)
        out.append(Rec(id=1000 + i, path=path))
    return out


def _config(name: str, size: int = 64):  # type: ignore[no-untyped-def]
    return dataclasses.replace(get_frontend_config(name), image_height=size, image_width=size)


@pytest.mark.parametrize("preset", ["paper", "reference"])
def test_cached_windows_equal_audio_path(
    recordings: list[Rec], tmp_path: Path, preset: str
) -> None:
    config = _config(preset)
    frontend = MelFrontEnd(config)
    cache = build_spectrogram_cache(recordings, config, "src", root=tmp_path, progress=False)
    # up to uint8 quantisation: |x - round(255 x) / 255| <= 1/510 before normalisation
    tolerance = (0.5 / 255 + 1e-6) / config.std
    for index, rec in enumerate(recordings):
        signal = load_audio(rec.path, sample_rate=config.sample_rate)
        assert cache.n_samples[index] == signal.size
        rng = np.random.default_rng(index)
        room = int(cache.random_frame_room()[index])
        frames = sorted({0, room - 1, *rng.integers(0, room, size=3).tolist()})
        expected = []
        for frame in frames:  # random training windows start at whole frames
            start = frame * config.hop_length
            expected.append(signal[start : start + config.window_samples])
        audio_images = frontend.images(expected)
        slices = torch.from_numpy(np.stack([cache.window(index, f) for f in frames]))
        cached_images = images_from_frames(slices, frontend)
        assert cached_images.shape == audio_images.shape == (len(frames), 3, 64, 64)
        diff = float((cached_images - audio_images).abs().max())
        assert diff <= tolerance
        if preset == "reference":  # a uint8 front-end is reproduced exactly
            assert diff < 1e-5


def test_dense_windows_follow_window_starts(recordings: list[Rec], tmp_path: Path) -> None:
    for preset in ("paper", "reference"):
        config = _config(preset)
        frontend = MelFrontEnd(config)
        cache = build_spectrogram_cache(recordings, config, "src", root=tmp_path, progress=False)
        for index, rec in enumerate(recordings):
            frames = cache.dense_frames(index)
            duration = cache.n_samples[index] / config.sample_rate
            assert frames.size == count_windows(duration, config)
            if preset == "reference":  # stride = 256 hops: windows are exact frame slices
                np.testing.assert_array_equal(frames, 256 * np.arange(frames.size))
                signal = load_audio(rec.path, sample_rate=config.sample_rate)
                audio = frontend.strided_images(signal, frames.size)
                cached = images_from_frames(
                    torch.from_numpy(np.stack([cache.window(index, f) for f in frames])), frontend
                )
                assert float((audio - cached).abs().max()) < 1e-5
            else:  # 1.5 s stride: each start moved back to the previous whole frame
                starts = np.round(np.arange(frames.size) * 1.5 * config.sample_rate)
                assert np.all(starts - frames * config.hop_length >= 0)
                assert np.all(starts - frames * config.hop_length < config.hop_length)


def test_short_recording_is_padded_to_one_window(recordings: list[Rec], tmp_path: Path) -> None:
    config = _config("paper")
    cache = build_spectrogram_cache(recordings[:1], config, "src", root=tmp_path, progress=False)
    assert cache.n_samples[0] < config.window_samples
    assert cache.n_frames(0) == config.frames_per_window
    np.testing.assert_array_equal(cache.dense_frames(0), [0])
    frontend = MelFrontEnd(config)
    signal = load_audio(recordings[0].path, sample_rate=config.sample_rate)
    audio = frontend.images([signal])  # zero-padded at the end by the front-end
    cached = images_from_frames(torch.from_numpy(cache.window(0, 0))[None], frontend)
    assert float((audio - cached).abs().max()) <= 0.5 / 255 + 1e-6
    # the padding is silence: the last columns are the floor (0)
    assert cache.spectrogram(0)[:, -50:].max() == 0


def test_second_build_reads_instead_of_recomputing(
    recordings: list[Rec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config("paper")
    calls = []
    original = spec_cache.recording_frames

    def counting(path, frontend):  # type: ignore[no-untyped-def]
        calls.append(path)
        return original(path, frontend)

    monkeypatch.setattr(spec_cache, "recording_frames", counting)
    first = build_spectrogram_cache(recordings, config, "src", root=tmp_path, progress=False)
    assert len(calls) == len(recordings)
    second = build_spectrogram_cache(recordings, config, "src", root=tmp_path, progress=False)
    assert len(calls) == len(recordings)  # nothing recomputed
    assert second.folder == first.folder
    np.testing.assert_array_equal(np.asarray(second.memmap()), np.asarray(first.memmap()))
    # another image size shares the cache (resizing happens after the cache) ...
    resized = dataclasses.replace(config, image_height=128, image_width=128)
    assert (
        build_spectrogram_cache(recordings, resized, "src", root=tmp_path, progress=False).folder
        == first.folder
    )
    assert len(calls) == len(recordings)
    # ... while other spectrogram parameters, another source or other recordings do not
    assert cache_key(_config("reference"), "src", recordings) != cache_key(
        config, "src", recordings
    )
    assert cache_key(config, "other", recordings) != cache_key(config, "src", recordings)
    assert cache_key(config, "src", recordings[:2]) != cache_key(config, "src", recordings)
    # no temporary build folders are left behind
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_damaged_cache_is_rebuilt(recordings: list[Rec], tmp_path: Path) -> None:
    config = _config("paper")
    cache = build_spectrogram_cache(recordings, config, "src", root=tmp_path, progress=False)
    reference = np.asarray(cache.memmap()).copy()
    frames_file = cache.folder / "frames.u8"
    frames_file.write_bytes(frames_file.read_bytes()[:-128])  # truncated
    rebuilt = build_spectrogram_cache(recordings, config, "src", root=tmp_path, progress=False)
    np.testing.assert_array_equal(np.asarray(rebuilt.memmap()), reference)


def test_blockwise_frames_equal_whole_spectrogram(
    recordings: list[Rec], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config("paper")
    frontend = MelFrontEnd(config)
    monkeypatch.setattr(spec_cache, "BLOCK_FRAMES", 97)  # many blocks per recording
    frames, n_samples = recording_frames(recordings[2].path, frontend)
    signal = load_audio(recordings[2].path, sample_rate=config.sample_rate)
    assert n_samples == signal.size
    whole = spec_cache.quantize(frontend.spectrogram(signal)).T
    assert frames.shape == whole.shape
    assert np.abs(frames.astype(int) - whole.astype(int)).max() <= 1  # float rounding only


@pytest.mark.slow
def test_parallel_build_is_identical(recordings: list[Rec], tmp_path: Path) -> None:
    config = _config("paper")
    one = build_spectrogram_cache(recordings, config, "a", root=tmp_path / "1", progress=False)
    two = build_spectrogram_cache(
        recordings, config, "a", root=tmp_path / "2", workers=2, progress=False
    )
    np.testing.assert_array_equal(np.asarray(one.memmap()), np.asarray(two.memmap()))
    np.testing.assert_array_equal(one.offsets, two.offsets)
