"""Decoding media files to 22,050 Hz mono float32: formats, channels, rates, segments, errors."""

from __future__ import annotations

import logging
import math
import subprocess
import tracemalloc
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
import soxr
from repo_paths import REPO

from geoforensics.core.audio import decode
from geoforensics.core.audio.decode import (
    MIN_USABLE_SECONDS,
    decode_report,
    load_audio,
    probe_audio,
    stream_audio,
)
from geoforensics.core.errors import InputError, MediaDecodeError

OUT = 22050
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
#: Real recordings beside the repository (CC BY-NC Xeno-canto audio: read, never copied).
REALAUDIO = REPO.parent / "shared" / "realaudio"
QUAIL = REALAUDIO / "xc589950_gambels_quail_arizona.mp3"


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
        # a video as long as the audio: -shortest alone overshoots by a varying amount (the
        # muxer's queue), which made the container's duration differ from run to run
        seconds = sf.info(str(wav)).duration
        args = ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10:duration={seconds}", *args]
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


def _loss_warnings(caplog: pytest.LogCaptureFixture, path: Path) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == decode.logger.name and r.levelno == logging.WARNING and str(path) in r.message
    ]


def _stopped_at(message: str) -> tuple[float, float]:
    """(decoded, declared) seconds from ``FILE: decoding stopped at X of Y s (...): Z s lost``."""
    words = message.split("decoding stopped at ", 1)[1].split()
    assert words[1] == "of" and words[3] == "s", message
    return float(words[0]), float(words[2])


def test_truncated_files_decode_what_they_hold(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=decode.logger.name)
    wav = tmp_path / "full.wav"
    signal = tone(1000, 44100, 2.0)
    sf.write(wav, signal, 44100)
    flac = tmp_path / "full.flac"
    sf.write(flac, signal, 44100)
    faststart = encode(
        wav, tmp_path / "faststart.mov", ["-c:a", "aac", "-movflags", "+faststart"], "libx264"
    )  # index first: decoding starts, then stops at the cut
    whole = {source: load_audio(source) for source in (wav, flac, faststart)}
    for source in (wav, flac, faststart):
        cut = tmp_path / f"cut{source.suffix}"
        data = source.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        samples = load_audio(cut)
        assert 0.5 < samples.size / OUT < 1.1, (cut, samples.size / OUT)
        # what decodes is the start of the whole file (the resampler's last 50 ms aside)
        keep = samples.size - OUT // 20
        np.testing.assert_allclose(samples[:keep], whole[source][:keep], atol=1e-6)
        report = decode_report(cut)
        assert report is not None and report.expected_s == pytest.approx(2.0, abs=0.05)
        assert report.decoded_s == pytest.approx(samples.size / OUT, abs=0.01)
        message = report.message()
        assert "\n" not in message and message.startswith(f"{cut}: decoding stopped at ")
        decoded, declared = _stopped_at(message)
        assert decoded == pytest.approx(samples.size / OUT, abs=0.01) and declared == 2.0
        assert message.endswith(f"): {declared - decoded:.2f} s lost")
        # one warning line per file, however often it is decoded
        streamed = np.concatenate(list(stream_audio(cut, chunk_seconds=0.25)))
        np.testing.assert_array_equal(streamed, samples)
        assert _loss_warnings(caplog, cut) == [message]
    # a WAV's cut is known from its header: probing reports it without decoding
    info = probe_audio(tmp_path / "cut.wav")
    assert info.damage is not None and info.damage.reason == "truncated WAV"
    assert info.duration_s == pytest.approx(info.damage.decoded_s)
    assert info.to_dict()["damage"]["lost_s"] == pytest.approx(info.damage.lost_s)


def test_segments_of_a_truncated_file(tmp_path: Path) -> None:
    flac = tmp_path / "full.flac"
    sf.write(flac, tone(1000, 44100, 2.0), 44100)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    whole = load_audio(cut)
    before = load_audio(cut, offset_s=0.1, duration_s=0.3)  # ends before the damage
    np.testing.assert_allclose(before, whole[round(0.1 * OUT) : round(0.4 * OUT)], atol=1e-5)
    across = load_audio(cut, offset_s=0.5)  # runs into the damage: cut there
    assert across.size == pytest.approx(whole.size - round(0.5 * OUT), abs=2)
    with pytest.raises(InputError, match="past the end of the audio that decodes"):
        load_audio(cut, offset_s=1.5)  # libsndfile cannot seek there: decoded from the start
    report = decode_report(cut)
    assert report is not None and report.decoded_s == pytest.approx(whole.size / OUT, abs=1e-3)


def test_damaged_files_with_nothing_usable_are_refused(tmp_path: Path) -> None:
    wav = tmp_path / "full.wav"
    sf.write(wav, tone(1000, 44100, 2.0), 44100)
    mp4 = encode(wav, tmp_path / "full.mp4", ["-c:a", "aac"], video="libx264")  # index at end
    flac = tmp_path / "full.flac"
    sf.write(flac, tone(1000, 44100, 2.0), 44100)
    flipped = bytearray(flac.read_bytes())
    for position in range(200, len(flipped), 97):  # every frame broken, the first included
        flipped[position] ^= 0xFF
    cases = {
        "header_only.wav": (wav.read_bytes()[:200], "truncated WAV"),  # < 0.1 s of samples
        "no_index.mp4": (mp4.read_bytes()[: mp4.stat().st_size // 2], "truncated"),
        "flipped.flac": (bytes(flipped), "truncated or corrupt audio data near 0.000 s"),
    }
    for name, (data, problem) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        for read in (load_audio, lambda p: np.concatenate(list(stream_audio(p)))):
            with pytest.raises(MediaDecodeError, match=problem) as error:
                read(path)
            _assert_one_line_naming(error, path)
        assert decode_report(path) is None
    assert MIN_USABLE_SECONDS == 0.1


def _garble_last_mp3_frame(clean: Path, damaged: Path) -> None:
    """Replace the last MPEG audio frame with the tail of a broken text tag, as in damaged
    Xeno-canto downloads (the demuxer still takes those bytes for one more frame)."""
    data = clean.read_bytes()
    last = data.rfind(b"\xff\xfb")  # MPEG-1 layer III sync word of the last frame
    assert last > len(data) - 2000
    tag = b"/  / playback-used:no\x13\x00\x00\x00COPYRIGHT\x00//xeno-canto.org/1APETAGEX"
    damaged.write_bytes(data[:last] + (tag * 4)[:204])


def test_mp3_with_a_garbled_last_frame_decodes_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=decode.logger.name)
    clean = tmp_path / "clean.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=4",
           "-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0", str(clean))  # fmt: skip
    damaged = tmp_path / "damaged.mp3"
    _garble_last_mp3_frame(clean, damaged)
    whole = load_audio(clean)
    samples = load_audio(damaged)
    # one 1,152-sample frame (24 ms at 48 kHz) is lost, the rest is the clean file's audio
    assert (whole.size - samples.size) / OUT == pytest.approx(0.024, abs=0.002)
    keep = samples.size - OUT // 20
    np.testing.assert_allclose(samples[:keep], whole[:keep], atol=1e-6)
    report = decode_report(damaged)
    assert report is not None and report.decoded_s == pytest.approx(samples.size / OUT, abs=1e-3)
    assert report.reason == "corrupt or truncated data"
    assert report.lost_s == pytest.approx(0.024, abs=0.002)
    assert report.message() == (
        f"{damaged}: decoding stopped at {report.decoded_s:.2f} of {report.expected_s:.2f} s "
        "(corrupt or truncated data): 0.02 s lost"
    )
    assert _loss_warnings(caplog, damaged) == [report.message()]
    assert probe_audio(damaged).damage == report  # known once decoded


@pytest.mark.skipif(not QUAIL.is_file(), reason=f"real recordings not present: {REALAUDIO}")
def test_real_xeno_canto_mp3_with_a_damaged_last_frame(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=decode.logger.name)
    samples = load_audio(QUAIL)
    assert samples.size == round(8.28 * OUT)  # 345 whole frames of 1,152 samples at 48 kHz
    report = decode_report(QUAIL)
    assert report is not None and report.decoded_s == pytest.approx(8.28)
    assert report.expected_s == pytest.approx(8.304)  # 346 packets: the last one is broken
    assert report.message() == (
        f"{QUAIL}: decoding stopped at 8.28 of 8.30 s (corrupt or truncated data): 0.02 s lost"
    )
    # logged the first time this process decoded the file (perhaps in another test)
    assert _loss_warnings(caplog, QUAIL) in ([], [report.message()])


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
