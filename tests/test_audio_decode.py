"""Decoding media files to 22,050 Hz mono float32: formats, channels, rates, segments, errors."""

from __future__ import annotations

import math
import subprocess
import tracemalloc
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
import soxr

from geoforensics.core.audio import decode
from geoforensics.core.audio.decode import load_audio, probe_audio, stream_audio
from geoforensics.core.errors import InputError, MediaDecodeError

OUT = 22050
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    """Peak of the Hann-windowed spectrum, refined by a parabola through the top 3 bins."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + shift) * rate / x.size)


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y", *args],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )


def encode(wav: Path, out: Path, audio_codec: list[str], video: str | None = None) -> Path:
    """Encode a WAV's audio into ``out`` with the shipped ffmpeg, optionally with a video track."""
    args = ["-i", str(wav)]
    if video is not None:
        args = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", *args]
        args += ["-map", "0:v", "-map", "1:a", "-c:v", video, "-shortest"]
    ffmpeg(*args, *audio_codec, str(out))
    return out


# --------------------------------------------------------------------------------------------
# formats


@pytest.mark.parametrize(
    ("suffix", "subtype"), [(".wav", "PCM_16"), (".flac", "PCM_24"), (".ogg", "VORBIS")]
)
def test_soundfile_formats_decode_to_22050_mono_with_tone_and_duration(
    tmp_path: Path, suffix: str, subtype: str
) -> None:
    stereo = np.stack([tone(1000, 44100, 1.5), tone(1000, 44100, 1.5)], axis=1)
    path = tmp_path / f"clip{suffix}"
    sf.write(path, stereo, 44100, subtype=subtype)
    samples = load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert samples.size == pytest.approx(1.5 * OUT, abs=2)
    assert dominant_hz(samples, OUT) == pytest.approx(1000, abs=1.0)
    assert np.sqrt(np.mean(samples[1000:-1000] ** 2)) == pytest.approx(0.5 / math.sqrt(2), rel=0.02)
    info = probe_audio(path)
    assert (info.sample_rate, info.channels, info.frames) == (44100, 2, 66150)
    assert info.duration_s == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("suffix", "audio_codec", "video"),
    [
        (".mp3", ["-c:a", "libmp3lame", "-b:a", "128k"], None),
        (".mp4", ["-c:a", "aac", "-b:a", "128k"], "libx264"),
        (".mov", ["-c:a", "aac", "-b:a", "128k"], "libx264"),
        (".mkv", ["-c:a", "libvorbis"], "libx264"),
        (".webm", ["-c:a", "libopus", "-b:a", "96k"], "libvpx"),
    ],
)
def test_ffmpeg_formats_decode_audio_track(
    tmp_path: Path, suffix: str, audio_codec: list[str], video: str | None
) -> None:
    wav = tmp_path / "source.wav"
    sf.write(wav, tone(4000, 48000, 1.6), 48000)
    path = encode(wav, tmp_path / f"clip{suffix}", audio_codec, video)
    samples = load_audio(path)
    assert samples.size / OUT == pytest.approx(1.6, abs=0.03)
    assert dominant_hz(samples, OUT) == pytest.approx(4000, abs=2.0)
    info = probe_audio(path)
    assert info.channels == 1 and info.sample_rate == 48000
    assert info.duration_s == pytest.approx(1.6, abs=0.1)
    assert info.codec is not None and info.frames is None


def test_flac_without_length_in_its_header_decodes_fully(tmp_path: Path) -> None:
    wav = tmp_path / "source.wav"
    sf.write(wav, tone(1000, 44100, 1.2), 44100)
    piped = tmp_path / "piped.flac"
    with open(piped, "wb") as out:  # written to a pipe: STREAMINFO has no sample count
        subprocess.run(
            [FFMPEG, "-nostdin", "-v", "error", "-i", str(wav), "-f", "flac", "-"],
            stdout=out,
            check=True,
        )
    samples = load_audio(piped)
    assert samples.size == round(1.2 * OUT)
    assert dominant_hz(samples, OUT) == pytest.approx(1000, abs=1.0)
    assert probe_audio(piped).duration_s == pytest.approx(1.2, abs=0.01)


# --------------------------------------------------------------------------------------------
# channels and rates


def test_opposite_channels_cancel_and_one_sided_channel_halves(tmp_path: Path) -> None:
    a = tone(700, OUT, 1.0)
    cancel = tmp_path / "cancel.wav"
    sf.write(cancel, np.stack([a, -a], axis=1), OUT, subtype="FLOAT")
    assert np.max(np.abs(load_audio(cancel))) < 1e-7
    half = tmp_path / "half.wav"
    sf.write(half, np.stack([a, np.zeros_like(a)], axis=1), OUT, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(half), a / 2, atol=1e-7)


@pytest.mark.parametrize("channels", range(1, 9))
def test_any_channel_count_is_the_equal_weight_mean(tmp_path: Path, channels: int) -> None:
    rng = np.random.default_rng(channels)
    data = (rng.uniform(-0.5, 0.5, size=(OUT, channels))).astype(np.float32)
    path = tmp_path / "multi.wav"
    sf.write(path, data, OUT, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), data.sum(axis=1) / channels, atol=1e-6)


@pytest.mark.parametrize("channels", [2, 6, 8])
def test_ffmpeg_path_averages_native_channels_without_a_downmix_matrix(
    tmp_path: Path, channels: int
) -> None:
    # one loud channel: ffmpeg's default downmix would weight it by its layout position
    data = np.zeros((OUT, channels), dtype=np.float32)
    data[:, channels - 1] = tone(900, OUT, 1.0, amplitude=0.8)
    wav = tmp_path / "multi.wav"
    sf.write(wav, data, OUT, subtype="PCM_24")
    mka = encode(wav, tmp_path / "multi.mka", ["-c:a", "flac"])
    assert probe_audio(mka).channels == channels
    np.testing.assert_allclose(load_audio(mka), data[:, -1] / channels, atol=1e-5)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000, 192000])
def test_sample_rates_resample_preserving_tone_level_and_duration(
    tmp_path: Path, rate: int
) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(1000, rate, 2.0), rate, subtype="FLOAT")
    samples = load_audio(path)
    assert abs(samples.size - 2.0 * OUT) <= 1
    assert dominant_hz(samples, OUT) == pytest.approx(1000, abs=0.5)
    middle = samples[2000:-2000]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)


def test_streamed_chunks_equal_one_shot_resampling(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = (0.2 * rng.standard_normal((3 * 44100 + 17, 2))).astype(np.float32)
    path = tmp_path / "noise.wav"
    sf.write(path, data, 44100, subtype="FLOAT")
    chunks = list(stream_audio(path, chunk_seconds=0.37))
    assert len(chunks) > 5
    streamed = np.concatenate(chunks)
    one_shot = soxr.resample(data.mean(axis=1), 44100, OUT, quality="HQ")
    assert streamed.size == one_shot.size
    np.testing.assert_allclose(streamed, one_shot, atol=1e-6)
    np.testing.assert_array_equal(load_audio(path), streamed)


def test_non_finite_samples_become_zero(tmp_path: Path) -> None:
    data = np.full(OUT, 0.25, dtype=np.float32)
    data[[10, 500, 9000]] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "bad_values.wav"
    sf.write(path, data, OUT, subtype="FLOAT")
    samples = load_audio(path)
    assert np.isfinite(samples).all()
    assert samples[[10, 500, 9000]].tolist() == [0.0, 0.0, 0.0]
    assert samples[11] == pytest.approx(0.25)
    resampled = load_audio(path, sample_rate=16000)
    assert np.isfinite(resampled).all()


# --------------------------------------------------------------------------------------------
# segments


@pytest.mark.parametrize("rate", [OUT, 44100, 48000])
def test_segment_equals_slice_of_whole_file(tmp_path: Path, rate: int) -> None:
    rng = np.random.default_rng(rate)
    path = tmp_path / "long.wav"
    sf.write(path, (0.3 * rng.standard_normal(8 * rate)).astype(np.float32), rate, "FLOAT")
    whole = load_audio(path)
    for offset, duration in [(0.0, 3.0), (1.5, 3.0), (4.25, 3.0), (6.5, 3.0)]:
        segment = load_audio(path, offset_s=offset, duration_s=duration)
        start = round(offset * OUT)
        expected = whole[start : start + round(duration * OUT)]
        assert segment.size == expected.size
        np.testing.assert_allclose(segment, expected, atol=1e-5 if rate != OUT else 0)
    tail = load_audio(path, offset_s=7.0)
    np.testing.assert_allclose(tail, whole[7 * OUT :], atol=1e-5 if rate != OUT else 0)


def test_segment_through_ffmpeg_matches_whole_decode(tmp_path: Path) -> None:
    wav = tmp_path / "long.wav"
    rng = np.random.default_rng(5)
    sf.write(wav, (0.3 * rng.standard_normal(6 * 44100)).astype(np.float32), 44100, "PCM_24")
    mka = encode(wav, tmp_path / "long.mka", ["-c:a", "flac"])
    whole = load_audio(mka)
    segment = load_audio(mka, offset_s=2.5, duration_s=1.5)
    start = round(2.5 * OUT)
    np.testing.assert_allclose(segment, whole[start : start + segment.size], atol=1e-4)
    assert segment.size == round(1.5 * OUT)


def test_offset_past_the_end_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, tone(440, OUT, 1.0), OUT)
    with pytest.raises(InputError, match="past the end"):
        load_audio(path, offset_s=2.0, duration_s=1.0)
    with pytest.raises(InputError, match="offset_s"):
        load_audio(path, offset_s=-1.0)


# --------------------------------------------------------------------------------------------
# errors


def _assert_one_line_naming(error: pytest.ExceptionInfo[MediaDecodeError], path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message


def test_missing_and_empty_files(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.wav"
    with pytest.raises(MediaDecodeError, match="not found") as error:
        load_audio(missing)
    _assert_one_line_naming(error, missing)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(MediaDecodeError, match="empty") as error:
        probe_audio(empty)
    _assert_one_line_naming(error, empty)


@pytest.mark.parametrize("name", ["noise.wav", "noise.mp4"])
def test_random_bytes_are_not_media(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(42).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaDecodeError) as error:
        load_audio(path)
    _assert_one_line_naming(error, path)


def test_truncated_files_are_reported(tmp_path: Path) -> None:
    wav = tmp_path / "full.wav"
    sf.write(wav, tone(1000, 44100, 2.0), 44100)
    flac = tmp_path / "full.flac"
    sf.write(flac, tone(1000, 44100, 2.0), 44100)
    mp4 = encode(wav, tmp_path / "full.mp4", ["-c:a", "aac"], video="libx264")  # index at end
    faststart = encode(
        wav, tmp_path / "faststart.mov", ["-c:a", "aac", "-movflags", "+faststart"], "libx264"
    )  # index first: decoding starts, then fails part-way
    for source in (wav, flac, mp4, faststart):
        cut = tmp_path / f"cut{source.suffix}"
        data = source.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(MediaDecodeError, match="truncated") as error:
            load_audio(cut)
        _assert_one_line_naming(error, cut)


def test_video_without_audio_track(tmp_path: Path) -> None:
    path = tmp_path / "silent_film.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx264", str(path)
    )
    for read in (load_audio, probe_audio):
        with pytest.raises(MediaDecodeError, match="no audio track") as error:
            read(path)
        _assert_one_line_naming(error, path)


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), OUT)
    for read in (load_audio, probe_audio, lambda p: load_audio(p, offset_s=1.0)):
        with pytest.raises(MediaDecodeError, match="no audio samples") as error:
            read(path)
        _assert_one_line_naming(error, path)


def test_closing_a_stream_early_stops_ffmpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = tmp_path / "long.wav"
    sf.write(wav, tone(500, OUT, 30.0), OUT)
    mka = encode(wav, tmp_path / "long.mka", ["-c:a", "flac"])
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(process)
        return process

    monkeypatch.setattr(decode.subprocess, "Popen", recording_popen)
    stream = stream_audio(mka, chunk_seconds=1.0)
    first = next(stream)
    assert first.size > 0 and len(started) == 1
    assert started[0].stdin is None  # stdin is /dev/null, never a pipe ffmpeg could wait on
    stream.close()
    assert started[0].poll() is not None


# --------------------------------------------------------------------------------------------
# memory


def _write_long_wav(path: Path, seconds: int, rate: int) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as out:
        for _ in range(seconds // 10):
            out.write((0.1 * rng.standard_normal(10 * rate)).astype(np.float32))


def test_streaming_a_20_minute_file_keeps_memory_bounded(tmp_path: Path) -> None:
    path = tmp_path / "twenty_minutes.wav"
    _write_long_wav(path, 20 * 60, 44100)  # 106 MB of PCM; 106 MB as float32 at 22.05 kHz
    tracemalloc.start()
    try:
        total = 0
        for chunk in stream_audio(path):
            total += chunk.size
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 20 * 60 * OUT
    assert peak < 50e6, f"peak Python allocations {peak / 1e6:.1f} MB"
