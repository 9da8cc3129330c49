"""Write small MP4 clips (H.264 + AAC) from pictures and samples: test data and demo assets."""

from __future__ import annotations

import math
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from geoforensics.core.errors import InputError, MediaDecodeError
from geoforensics.core.fileio import atomic_path
from geoforensics.core.media.ffmpeg import StderrLog, ffmpeg_exe
from geoforensics.core.media.probe import format_iso6709


def make_test_video(
    out: Path,
    *,
    audio: np.ndarray | None,
    sample_rate: int,
    frames: Sequence[np.ndarray],
    fps: float = 1.0,
    gps: tuple[float, float] | None = None,
    creation_time: datetime | None = None,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Write an MP4 (H.264 yuv420p, CRF 18 + AAC 128 kb/s) with the imageio-ffmpeg binary.

    ``frames`` are (H, W, 3) uint8 RGB pictures of one size, each shown for ``1/fps`` s (so the
    video lasts ``len(frames) / fps``); odd sizes are padded by one black row/column (H.264
    4:2:0 needs even sizes). ``audio`` is mono (N,) or (N, channels) float samples at
    ``sample_rate`` (values beyond +-1 clip); ``None`` writes a video-only file,
    and no frames with audio writes an audio-only MP4. ``gps`` becomes the ISO 6709
    ``location`` tag, ``creation_time`` (naive = UTC) the container creation time (MP4 keeps
    whole seconds), ``tags`` further container tags (title, comment, description, ... ; the
    MP4 muxer keeps only the keys it knows). Written atomically; returns ``out``.
    """
    out = Path(out)
    pictures = _checked_frames(out, frames)
    samples = _checked_audio(out, audio, sample_rate)
    if pictures is None and samples is None:
        raise InputError(f"{out}: nothing to write: give frames, audio or both")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"{out}: fps must be a positive number, got {fps!r}")
    metadata = _metadata(out, gps, creation_time, tags)

    exe = ffmpeg_exe(out)
    with tempfile.TemporaryDirectory(prefix="geoforensics-video-") as work:
        command = [exe, "-hide_banner", "-nostats", "-v", "error", "-y"]
        inputs = 0
        maps: list[str] = []
        if pictures is not None:
            height, width = pictures[0].shape[:2]
            rate = Fraction(fps).limit_denominator(1001)
            command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
            command += ["-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0"]
            maps += ["-map", f"{inputs}:v:0"]
            inputs += 1
        if samples is not None:
            wav = Path(work) / "audio.wav"
            sf.write(str(wav), samples, int(sample_rate), subtype="FLOAT")
            command += ["-i", str(wav)]
            maps += ["-map", f"{inputs}:a:0"]
            inputs += 1
        command += maps
        if pictures is not None:
            command += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264"]
            command += ["-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
        if samples is not None:
            command += ["-c:a", "aac", "-b:a", "128k"]
        for key, value in metadata.items():
            command += ["-metadata", f"{key}={value}"]
        with atomic_path(out) as tmp:
            command += ["-movflags", "+faststart", "-f", "mp4", str(tmp)]
            _run_writer(out, command, pictures)
    return out


def _checked_frames(out: Path, frames: Sequence[np.ndarray]) -> list[np.ndarray] | None:
    if frames is None or len(frames) == 0:
        return None
    pictures = [np.asarray(frame) for frame in frames]
    first = pictures[0]
    for index, picture in enumerate(pictures):
        if picture.ndim != 3 or picture.shape[2] != 3 or picture.dtype != np.uint8:
            raise InputError(
                f"{out}: frame {index} must be (H, W, 3) uint8 RGB, "
                f"got shape {picture.shape} dtype {picture.dtype}"
            )
        if picture.shape != first.shape:
            raise InputError(
                f"{out}: frame {index} is {picture.shape[1]}x{picture.shape[0]}, "
                f"frame 0 is {first.shape[1]}x{first.shape[0]}: all frames need one size"
            )
        if min(picture.shape[:2]) < 2:
            raise InputError(f"{out}: frames must be at least 2x2 pixels")
    return pictures


def _checked_audio(out: Path, audio: np.ndarray | None, sample_rate: int) -> np.ndarray | None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise InputError(f"{out}: sample_rate must be an integer, got {sample_rate!r}")
    if audio is None:
        return None
    if sample_rate <= 0:
        raise InputError(f"{out}: sample_rate must be positive, got {sample_rate}")
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim not in (1, 2) or samples.shape[0] == 0:
        raise InputError(
            f"{out}: audio must be (N,) or (N, channels) with N > 0, got shape {samples.shape}"
        )
    if not np.isfinite(samples).all():
        raise InputError(f"{out}: audio contains NaN or infinite samples")
    return samples


def _metadata(
    out: Path,
    gps: tuple[float, float] | None,
    creation_time: datetime | None,
    tags: Mapping[str, str] | None,
) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if not key or "=" in key or any(char.isspace() for char in key):
            raise InputError(f"{out}: bad metadata key {key!r} (non-empty, no '=' or spaces)")
        metadata[str(key)] = str(value)
    if gps is not None:
        lat, lon = float(gps[0]), float(gps[1])
        if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
            raise InputError(f"{out}: gps must be (lat, lon) within +-90, +-180, got {gps!r}")
        metadata["location"] = format_iso6709(lat, lon)
    if creation_time is not None:
        moment = creation_time
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        metadata["creation_time"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return metadata


def _run_writer(out: Path, command: list[str], pictures: list[np.ndarray] | None) -> None:
    """Run ffmpeg, feeding the pictures as raw RGB on stdin; raise with ffmpeg's message."""
    stdin = subprocess.PIPE if pictures is not None else subprocess.DEVNULL
    proc = subprocess.Popen(command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    log = StderrLog(proc.stderr)
    try:
        if pictures is not None:
            assert proc.stdin is not None
            try:
                for picture in pictures:
                    proc.stdin.write(np.ascontiguousarray(picture).tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg stopped early: its exit status and log say why
        code = proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        code = -1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
    lines = [line for line in log.lines() if line.strip()]
    proc.stderr.close()
    if code != 0:
        detail = lines[-1] if lines else f"exit status {code}"
        raise MediaDecodeError(f"{out}: ffmpeg could not write the video ({detail})")
