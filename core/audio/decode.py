"""Decode audio files and the audio track of videos to mono float32 at one sample rate.

Two decoders sit behind one interface:

* **libsndfile** (via ``soundfile``) for what it reads natively (WAV, FLAC, OGG/Vorbis/Opus,
  AIFF, ...): block reads, cheap seeks.
* **ffmpeg** (the binary shipped by ``imageio-ffmpeg``) for everything else (MP3, MP4/MOV/MKV/
  WebM, AAC, ...) and as a fall-back when libsndfile cannot open a file. It runs as a child
  process that writes 32-bit float WAV at the native rate and channel count to a pipe; the WAV
  header on the pipe tells us the channels and rate. MP3 goes to ffmpeg on purpose
  (libsndfile's MP3 length and seeks are estimates), and so do files whose header gives no
  length (e.g. a FLAC written to a pipe), which libsndfile cannot seek.

Every path then does the same three things, block by block, so memory does not grow with the
length of the file:

1. non-finite samples (NaN, +-inf) become 0 (one bad sample would otherwise spread through the
   resampling filter and the spectrogram);
2. channels are averaged with equal weights (not ffmpeg's downmix matrix, which weights them);
3. the mono signal is resampled with ``soxr.ResampleStream`` (quality "HQ"), whose output over
   any chunking is identical to resampling the whole signal at once.

Values are not clipped: float files may exceed +-1. Integer PCM is scaled to [-1, 1).

Errors are :class:`MediaDecodeError` with one line that names the file and the problem: missing,
empty, not media, no audio track, no samples, or damaged with nothing usable before the damage.

Damaged files (truncated or corrupt data: a cut download, a broken last MP3 frame as Xeno-canto
files often have) decode up to the damage. Decoding stops at the first broken packet (ffmpeg
runs with ``-xerror``: a corrupt packet stops it rather than leaving a silent gap; libsndfile
re-reads the failed block in small steps to keep the good part), the audio before it is
returned, and a :class:`DecodeReport` says how much was lost: it is logged once per file as one
warning line (``FILE: decoding stopped at 8.28 of 8.30 s (corrupt or truncated data): 0.02 s
lost``) and :func:`decode_report` returns it to callers. Only a damaged file with less than
:data:`MIN_USABLE_SECONDS` of audio before the damage is refused. Damage is found where the
container states its length (WAV data-chunk size, FLAC/OGG sample counts, MP4/MOV index) or
where the decoder reports broken data; self-delimiting streams such as MP3 decode up to a cut.
ffmpeg runs with stdin closed, stderr drained by a thread, and it is killed when the reader
stops early or fails.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf
import soxr

from geoforensics.core.errors import InputError, MediaDecodeError
from geoforensics.core.media.ffmpeg import (
    FFMPEG_LOG_PREFIX,
    StderrLog,
    checked_path,
    ffmpeg_exe,
    ffmpeg_problem,
)

#: The sample rate every model in this project consumes.
TARGET_SAMPLE_RATE = 22050
#: Default length of the chunks :func:`stream_audio` yields.
DEFAULT_CHUNK_SECONDS = 10.0
#: Quality preset of the soxr resampler (20-bit precision, fast).
RESAMPLE_QUALITY = "HQ"
#: A damaged file with less audio than this before the damage is refused as unusable.
MIN_USABLE_SECONDS = 0.1

logger = logging.getLogger(__name__)

# Suffixes that go straight to ffmpeg (video containers, and formats libsndfile mishandles).
_FFMPEG_SUFFIXES = frozenset(
    {
        ".mp4",
        ".m4a",
        ".m4v",
        ".m4b",
        ".mov",
        ".qt",
        ".mkv",
        ".mka",
        ".webm",
        ".avi",
        ".wmv",
        ".wma",
        ".flv",
        ".3gp",
        ".3g2",
        ".ts",
        ".mts",
        ".m2ts",
        ".mpg",
        ".mpeg",
        ".aac",
        ".ac3",
        ".amr",
        ".mp3",
        ".mp2",
    }
)
# Native samples read before a segment so the resampler settles (50 ms; 1e-6 agreement needs 10).
_RESAMPLE_MARGIN_S = 0.05
# At most this many native samples (all channels) per block, whatever the rate and channel count.
_MAX_BLOCK_SAMPLES = 1 << 22
# libsndfile reports SF_COUNT_MAX frames when the header has no length; it cannot seek those.
_UNKNOWN_LENGTH = 1 << 62
_WAV_FLOAT = 3
_WAV_EXTENSIBLE = 0xFFFE
# Native frames per read when libsndfile re-reads a block that failed, to keep its good part.
_SALVAGE_FRAMES = 1024
# Partial-decode reports kept per process (most recent files).
_MAX_REPORTS = 1024


@dataclass(frozen=True)
class DecodeReport:
    """A file whose audio decoded only in part: decoding stopped at truncated or corrupt data.

    ``decoded_s`` is the audio decoded before the damage (what :func:`load_audio` returns),
    ``expected_s`` the length the file declares (WAV/FLAC header, MP4 index, or the audio
    packets' timestamps; ``None`` if unknown), ``reason`` a short phrase and ``detail`` the
    decoder's own message.
    """

    path: Path
    decoded_s: float
    expected_s: float | None
    reason: str
    detail: str

    @property
    def lost_s(self) -> float | None:
        """Seconds the file declares beyond what decoded (``None`` if its length is unknown)."""
        if self.expected_s is None:
            return None
        return max(0.0, self.expected_s - self.decoded_s)

    def message(self) -> str:
        """One line: ``FILE: decoding stopped at 8.28 of 8.30 s (reason): 0.02 s lost``."""
        head = f"{self.path}: decoding stopped at {self.decoded_s:.2f}"
        lost = self.lost_s
        if self.expected_s is None or lost is None or lost <= 0:
            return f"{head} s ({self.reason}): the rest of the file could not be decoded"
        amount = f"{lost:.2f} s" if lost >= 0.005 else "less than 0.01 s"
        return f"{head} of {self.expected_s:.2f} s ({self.reason}): {amount} lost"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the path as a string, the one-line message included)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["lost_s"] = self.lost_s
        data["message"] = self.message()
        return data


_REPORTS: OrderedDict[tuple[str, int, int], DecodeReport] = OrderedDict()
_REPORTS_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
        return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        return None


def decode_report(path: str | os.PathLike[str]) -> DecodeReport | None:
    """How much of ``path`` was lost to damage when this process last decoded it.

    ``None`` when the file decoded whole, or has not been decoded (or probed, for a truncated
    WAV) since it last changed. Reports are kept for the :data:`_MAX_REPORTS` latest files.
    """
    key = _file_key(Path(path))
    if key is None:
        return None
    with _REPORTS_LOCK:
        return _REPORTS.get(key)


def _record(report: DecodeReport) -> None:
    """Keep ``report`` for :func:`decode_report`; log its line the first time for this file."""
    key = _file_key(report.path)
    if key is None:
        return
    with _REPORTS_LOCK:
        known = _REPORTS.pop(key, None)
        _REPORTS[key] = report
        while len(_REPORTS) > _MAX_REPORTS:
            _REPORTS.popitem(last=False)
    if known is None:
        logger.warning("%s", report.message())


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds before decoding: native rate, channels, length, format.

    For files libsndfile reads, ``frames`` and ``duration_s`` come from the header. For files
    read through ffmpeg, ``frames`` is ``None`` and ``duration_s`` is the audio track's length
    from its packet timestamps (within one codec frame of the decoded length; not the
    container's duration, which a longer video track sets), or the container's if that fails.
    """

    path: Path
    sample_rate: int
    channels: int
    duration_s: float | None
    frames: int | None
    container: str | None
    codec: str | None
    #: Known damage: a truncated WAV (from its header: ``frames``/``duration_s`` are then what
    #: decodes), or the report of an earlier decode of this file in this process.
    damage: DecodeReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the path as a string)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["damage"] = None if self.damage is None else self.damage.to_dict()
        return data


# --------------------------------------------------------------------------------------------
# public API


def probe_audio(path: str | os.PathLike[str]) -> AudioInfo:
    """Native sample rate, channel count, duration and format of a media file's first audio track.

    Raises :class:`MediaDecodeError` for files that cannot be decoded (same rules as decoding).
    """
    source = _open_source(checked_path(path))
    try:
        return source.info()
    finally:
        source.close()


def stream_audio(
    path: str | os.PathLike[str],
    sample_rate: int = TARGET_SAMPLE_RATE,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
) -> Iterator[np.ndarray]:
    """Yield the file as consecutive mono float32 chunks at ``sample_rate`` (about
    ``chunk_seconds`` each), holding only a few chunks in memory at a time.

    Concatenating the chunks gives exactly what :func:`load_audio` returns. The path is
    checked now; decoding (and any decode error) happens while iterating. Closing the
    iterator early stops the decoder (an ffmpeg child process is killed). A damaged file
    yields the audio before the damage; once the iterator is exhausted, :func:`decode_report`
    says how much was lost.
    """
    checked = checked_path(path)
    _check_rate(sample_rate)
    if not (math.isfinite(chunk_seconds) and chunk_seconds > 0):
        raise InputError(f"chunk_seconds must be a positive number, got {chunk_seconds!r}")
    return _stream(checked, int(sample_rate), float(chunk_seconds))


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int = TARGET_SAMPLE_RATE,
    offset_s: float = 0.0,
    duration_s: float | None = None,
) -> np.ndarray:
    """The whole file, or the segment ``[offset_s, offset_s + duration_s)``, as mono float32.

    Segments of files libsndfile reads are cheap: it seeks to the segment, and when the file
    is already at ``sample_rate`` the samples are read directly; otherwise a 50 ms margin is
    decoded on both sides, aligned so that the resampled segment equals the same slice of the
    resampled whole file (to ~1e-6). Files read through ffmpeg are decoded from their start
    and cut (exact; container timestamps such as Matroska's milliseconds are too coarse for a
    sample-exact ``-ss`` seek), so there the cost grows with the offset. A segment running past
    the end is cut at the end; an offset at or past the end raises :class:`InputError`. A
    damaged file gives the audio before the damage; :func:`decode_report` then says how much
    was lost (and a warning line was logged once for the file).
    """
    checked = checked_path(path)
    _check_rate(sample_rate)
    if not (math.isfinite(offset_s) and offset_s >= 0):
        raise InputError(f"offset_s must be a finite number >= 0, got {offset_s!r}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise InputError(f"duration_s must be a positive number or None, got {duration_s!r}")
    if offset_s == 0 and duration_s is None:
        return _concatenate(list(_stream(checked, int(sample_rate), DEFAULT_CHUNK_SECONDS)))
    source = _open_source(checked)
    try:
        if isinstance(source, _FfmpegSource):
            segment = _cut_stream(source, int(sample_rate), offset_s, duration_s)
        else:
            segment = _read_segment(source, int(sample_rate), offset_s, duration_s)
        _settle_damage(source)
    finally:
        source.close()
    if segment.size == 0:
        end = "the audio" if source.damage is None else "the audio that decodes"
        raise InputError(f"{checked}: offset {offset_s:g} s is at or past the end of {end}")
    return segment


# --------------------------------------------------------------------------------------------
# shared helpers


def _check_rate(sample_rate: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise InputError(f"sample_rate must be an integer, got {sample_rate!r}")
    if sample_rate <= 0:
        raise InputError(f"sample_rate must be positive, got {sample_rate}")


def _concatenate(chunks: list[np.ndarray]) -> np.ndarray:
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _to_mono(block: np.ndarray) -> np.ndarray:
    """(frames, channels) float32 -> (frames,) float32: non-finite to 0, equal-weight mean."""
    if not math.isfinite(float(block.sum(dtype=np.float64))):
        block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
    mono = np.array(block[:, 0], dtype=np.float32)
    if block.shape[1] > 1:
        # column adds: ~10x faster than block.mean(axis=1) on (frames, channels) data
        for channel in range(1, block.shape[1]):
            mono += block[:, channel]
        mono *= np.float32(1.0 / block.shape[1])
    return mono


def _block_frames(rate: int, channels: int, block_seconds: float) -> int:
    frames = int(block_seconds * rate)
    return max(1024, min(frames, _MAX_BLOCK_SAMPLES // max(1, channels)))


def _open_source(path: Path) -> _SoundfileSource | _FfmpegSource:
    """libsndfile when it can open the file and knows its length (and the suffix is not
    ffmpeg-only), else ffmpeg."""
    if path.suffix.lower() not in _FFMPEG_SUFFIXES:
        try:
            handle = sf.SoundFile(str(path))
        except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
            pass
        else:
            if 0 <= handle.frames < _UNKNOWN_LENGTH:
                try:
                    return _SoundfileSource(path, handle)
                except BaseException:
                    handle.close()
                    raise
            handle.close()  # length not in the header (e.g. a FLAC written to a pipe)
    return _FfmpegSource(path)


def _settle_damage(source: _SoundfileSource | _FfmpegSource) -> None:
    """Refuse a damaged file with nothing usable; record (and log once) a partial decode."""
    report = source.damage
    if report is None:
        return
    if report.decoded_s < MIN_USABLE_SECONDS:
        raise MediaDecodeError(f"{source.path}: {report.detail}")
    _record(report)


def _stream(path: Path, sample_rate: int, chunk_seconds: float) -> Iterator[np.ndarray]:
    source = _open_source(path)
    try:
        produced = 0
        blocks = source.stream_blocks(chunk_seconds)
        for chunk in _resampled(source, blocks, sample_rate):
            produced += chunk.size
            yield chunk
        _settle_damage(source)
        if produced == 0:
            raise MediaDecodeError(f"{path}: contains no audio samples (zero-length audio)")
    finally:
        source.close()


def _resampled(
    source: _SoundfileSource | _FfmpegSource, blocks: Iterator[np.ndarray], sample_rate: int
) -> Iterator[np.ndarray]:
    """Resample native mono blocks to ``sample_rate`` with one streaming soxr state."""
    resampler: soxr.ResampleStream | None = None
    passthrough = False
    for block in blocks:
        if resampler is None and not passthrough:
            # the native rate is known once the first block exists (ffmpeg: from its header)
            if source.sample_rate == sample_rate:
                passthrough = True
            else:
                resampler = soxr.ResampleStream(
                    source.sample_rate, sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
                )
        out = block if resampler is None else resampler.resample_chunk(block)
        if out.size:
            yield out
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if tail.size:
            yield tail


def _cut_stream(
    source: _FfmpegSource, sample_rate: int, offset_s: float, duration_s: float | None
) -> np.ndarray:
    """A segment cut from the decoded stream (exact; decoding time grows with the offset)."""
    start = round(offset_s * sample_rate)
    stop = None if duration_s is None else start + max(1, round(duration_s * sample_rate))
    kept: list[np.ndarray] = []
    position = 0
    for chunk in _resampled(source, source.stream_blocks(DEFAULT_CHUNK_SECONDS), sample_rate):
        end = position + chunk.size
        if end > start:
            kept.append(chunk[max(0, start - position) : None if stop is None else stop - position])
        position = end
        if stop is not None and position >= stop:
            break
    return _concatenate(kept)


def _read_segment(
    source: _SoundfileSource,
    sample_rate: int,
    offset_s: float,
    duration_s: float | None,
) -> np.ndarray:
    start = round(offset_s * sample_rate)
    count = None if duration_s is None else max(1, round(duration_s * sample_rate))
    rate = source.sample_rate
    if rate == sample_rate:
        return _concatenate(list(source.blocks(start, count, DEFAULT_CHUNK_SECONDS)))
    # Start the native read on a sample whose time is also on the output grid, a margin early,
    # so the resampled output lines up with the whole-file resampling sample for sample.
    common = math.gcd(rate, sample_rate)
    step_in, step_out = rate // common, sample_rate // common
    margin = math.ceil(_RESAMPLE_MARGIN_S * rate)
    first_in = max(0, (start * rate // sample_rate - margin) // step_in * step_in)
    first_out = first_in // step_in * step_out
    n_in = None
    if count is not None:
        n_in = math.ceil((start + count) * rate / sample_rate) + margin - first_in
    blocks = source.blocks(first_in, n_in, DEFAULT_CHUNK_SECONDS)
    out = _concatenate(list(_resampled(source, blocks, sample_rate)))
    skip = start - first_out
    return out[skip:] if count is None else out[skip : skip + count]


# --------------------------------------------------------------------------------------------
# libsndfile


class _SoundfileSource:
    """Blocks of a file libsndfile can read; checks a WAV's data length against its header.

    ``frames`` is what libsndfile will read (for a cut WAV: the frames present). ``damage`` is
    set once a read stops early, or at once for a WAV shorter than its header says.
    """

    def __init__(self, path: Path, handle: sf.SoundFile) -> None:
        self.path = path
        self._handle = handle
        self.sample_rate = int(handle.samplerate)
        self.channels = int(handle.channels)
        self.frames = int(handle.frames)
        self.damage: DecodeReport | None = None
        self._wav_cut: DecodeReport | None = None
        if handle.format in ("WAV", "WAVEX"):
            self._wav_cut = _wav_truncation(path, self.frames, self.sample_rate)
            if self._wav_cut is not None and self._wav_cut.decoded_s < MIN_USABLE_SECONDS:
                raise MediaDecodeError(f"{path}: {self._wav_cut.detail}")
        if self.frames == 0:
            raise MediaDecodeError(f"{path}: contains no audio samples (zero-length audio)")

    def info(self) -> AudioInfo:
        if self._wav_cut is not None:
            _record(self._wav_cut)  # known from the header alone: say so when probed
        return AudioInfo(
            path=self.path,
            sample_rate=self.sample_rate,
            channels=self.channels,
            duration_s=self.frames / self.sample_rate,
            frames=self.frames,
            container=str(self._handle.format),
            codec=str(self._handle.subtype),
            damage=self._wav_cut or decode_report(self.path),
        )

    def stream_blocks(self, block_seconds: float) -> Iterator[np.ndarray]:
        """Mono float32 blocks of the whole file."""
        return self.blocks(0, None, block_seconds)

    def blocks(
        self, start_frame: int, n_frames: int | None, block_seconds: float
    ) -> Iterator[np.ndarray]:
        """Mono float32 blocks of native frames ``[start_frame, start_frame + n_frames)``.

        Stops at damaged data (setting :attr:`damage`). Where libsndfile cannot seek to
        ``start_frame`` (damage on the way), the file is decoded from its start instead, so a
        segment never claims audio that a whole-file decode would not give.
        """
        if start_frame >= self.frames:
            if self._wav_cut is not None:
                self.damage = self._wav_cut
            return
        step = _block_frames(self.sample_rate, self.channels, block_seconds)
        end = None if n_frames is None else start_frame + n_frames
        position = start_frame  # the handle's frame
        try:
            if start_frame or self._handle.tell():
                self._handle.seek(start_frame)
        except (sf.SoundFileError, RuntimeError):
            try:
                self._reopen()
            except (sf.SoundFileError, RuntimeError) as exc:
                self._stop(0, exc)
                return
            position = 0
        while end is None or position < end:
            want = step if end is None else min(step, end - position)
            try:
                data = self._handle.read(want, dtype="float32", always_2d=True)
            except (sf.SoundFileError, RuntimeError) as exc:
                # the block holds damage: keep its good part, read again in small steps
                for part in self._salvage(position, want):
                    position += len(part)
                    if position > start_frame:
                        yield _to_mono(part[max(0, len(part) - (position - start_frame)) :])
                self._stop(position, exc)
                return
            position += len(data)
            if position > start_frame and len(data):
                yield _to_mono(data[max(0, len(data) - (position - start_frame)) :])
            if len(data) < want:
                break
        if position >= self.frames and self._wav_cut is not None:
            self.damage = self._wav_cut
        elif position < (self.frames if end is None else min(end, self.frames)):
            stopped = position / self.sample_rate
            self.damage = DecodeReport(
                path=self.path,
                decoded_s=stopped,
                expected_s=self.frames / self.sample_rate,
                reason="corrupt or truncated data",
                detail=(
                    f"truncated or corrupt: the header declares "
                    f"{self.frames / self.sample_rate:.3f} s of audio but decoding stopped at "
                    f"{stopped:.3f} s"
                ),
            )

    def _reopen(self) -> None:
        """A fresh libsndfile handle at frame 0 (the old one is unusable after an error)."""
        handle = sf.SoundFile(str(self.path))
        self._handle.close()
        self._handle = handle

    def _salvage(self, start_frame: int, n_frames: int) -> Iterator[np.ndarray]:
        """Frames ``[start_frame, start_frame + n_frames)`` read again from a fresh handle in
        small aligned steps, up to the first that fails (libsndfile's handle is unusable after
        an error, and a failed read returns nothing)."""
        try:
            handle = sf.SoundFile(str(self.path))
        except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
            return
        try:
            if start_frame:
                handle.seek(start_frame)
            done = 0
            while done < n_frames:
                # steps end on multiples of _SALVAGE_FRAMES: where decoding stops does not
                # depend on the block size the failed read used
                step = _SALVAGE_FRAMES - (start_frame + done) % _SALVAGE_FRAMES
                data = handle.read(min(step, n_frames - done), dtype="float32", always_2d=True)
                if len(data) == 0:
                    return
                done += len(data)
                yield data
        except (sf.SoundFileError, RuntimeError):
            return
        finally:
            handle.close()

    def _stop(self, frame: int, exc: BaseException) -> None:
        """Decoding stopped at native frame ``frame`` on a libsndfile error."""
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        self.damage = DecodeReport(
            path=self.path,
            decoded_s=frame / self.sample_rate,
            expected_s=self.frames / self.sample_rate,
            reason="corrupt or truncated data",
            detail=(
                f"truncated or corrupt audio data near {frame / self.sample_rate:.3f} s ({detail})"
            ),
        )

    def close(self) -> None:
        self._handle.close()


def _wav_truncation(path: Path, frames: int, sample_rate: int) -> DecodeReport | None:
    """The damage report of a RIFF/WAVE file whose data chunk is shorter than its header says
    (a cut file), or ``None``.

    libsndfile silently shortens such files to the ``frames`` present; streaming writers'
    placeholder sizes (0 or 0xFFFFFFFF) are accepted as "until the end of the file".
    """
    size = path.stat().st_size
    block_align = 0
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        position = 12
        while position + 8 <= size:
            fh.seek(position)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"fmt " and chunk_size >= 14:
                block_align = struct.unpack("<H", fh.read(14)[12:14])[0]
            if chunk_id == b"data":
                available = size - position - 8
                if chunk_size in (0, 0xFFFFFFFF) or available >= chunk_size:
                    return None
                declared = chunk_size / block_align / sample_rate if block_align else None
                return DecodeReport(
                    path=path,
                    decoded_s=frames / sample_rate,
                    expected_s=declared,
                    reason="truncated WAV",
                    detail=(
                        f"truncated WAV: the header declares {chunk_size} bytes of audio data "
                        f"but only {available} are present"
                    ),
                )
            position += 8 + chunk_size + (chunk_size & 1)
    return None


# --------------------------------------------------------------------------------------------
# ffmpeg


class _FfmpegProcess:
    """One ffmpeg child decoding the first audio track to float32 WAV on its stdout."""

    def __init__(self, path: Path, loglevel: str = "error") -> None:
        self.path = path
        command = [ffmpeg_exe(path), "-nostdin", "-hide_banner", "-nostats", "-v", loglevel]
        command += ["-xerror", "-i", str(path), "-map", "0:a:0"]
        command += ["-f", "wav", "-acodec", "pcm_f32le", "-"]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._stdout: IO[bytes] = self._proc.stdout
        self._log = StderrLog(self._proc.stderr)
        self.channels = 0
        self.sample_rate = 0
        #: frames decoded so far, and (after a failure part-way) ffmpeg's problem in one phrase
        self.frames_read = 0
        self.stopped: str | None = None

    def read_header(self) -> tuple[int, int]:
        """Parse the WAV header on the pipe; returns (channels, sample_rate)."""
        riff = self._read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            raise self.failure(nothing_decoded=True)
        while True:
            chunk = self._read(8)
            if len(chunk) < 8:
                raise self.failure(nothing_decoded=True)
            chunk_id, chunk_size = struct.unpack("<4sI", chunk)
            if chunk_id == b"data":
                break
            body = self._read(chunk_size + (chunk_size & 1))
            if chunk_id == b"fmt ":
                tag, channels, rate = struct.unpack("<HHI", body[:8])
                bits = struct.unpack("<H", body[14:16])[0]
                if tag == _WAV_EXTENSIBLE and len(body) >= 26:
                    tag = struct.unpack("<H", body[24:26])[0]
                if tag != _WAV_FLOAT or bits != 32 or channels < 1 or rate < 1:
                    raise MediaDecodeError(
                        f"{self.path}: unexpected ffmpeg output format "
                        f"(tag {tag}, {bits} bit, {channels} channels, {rate} Hz)"
                    )
                self.channels, self.sample_rate = int(channels), int(rate)
        if not self.channels:
            raise MediaDecodeError(f"{self.path}: ffmpeg output has no format chunk")
        return self.channels, self.sample_rate

    def frames(self, block_frames: int) -> Iterator[np.ndarray]:
        """(frames, channels) float32 blocks until the end of the stream; checks the exit code.

        A failure before any frame raises; one after some frames ends the blocks and sets
        :attr:`stopped` (everything ffmpeg wrote before the broken packet has been yielded).
        """
        frame_bytes = 4 * self.channels
        while True:
            data = self._read(block_frames * frame_bytes)
            usable = len(data) - len(data) % frame_bytes
            if usable:
                self.frames_read += usable // frame_bytes
                yield np.frombuffer(data[:usable], dtype="<f4").reshape(-1, self.channels)
            if len(data) < block_frames * frame_bytes:
                break
        try:
            code = self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.close()
            code = -1
        if code != 0:
            if self.frames_read == 0:
                raise self.failure(nothing_decoded=False)
            self.stopped = self.problem(nothing_decoded=False)

    def _read(self, n_bytes: int) -> bytes:
        parts: list[bytes] = []
        remaining = n_bytes
        while remaining > 0:
            part = self._stdout.read(remaining)
            if not part:
                break
            parts.append(part)
            remaining -= len(part)
        return b"".join(parts)

    def problem(self, nothing_decoded: bool) -> str:
        """A failed run's problem in one phrase, worded from ffmpeg's own messages."""
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.close()
        return ffmpeg_problem(self._log.lines(), self._proc.returncode, nothing_decoded)

    def failure(self, nothing_decoded: bool) -> MediaDecodeError:
        """The error for a failed run, naming the file."""
        return MediaDecodeError(f"{self.path}: {self.problem(nothing_decoded)}")

    def log_lines(self) -> list[str]:
        """stderr lines (waits for the process to end; close() first to stop it)."""
        return self._log.lines()

    def close(self) -> None:
        """Kill the child if it still runs, reap it and close its pipes."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._stdout.close()
        self._log.lines()
        assert self._proc.stderr is not None
        self._proc.stderr.close()


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_CONTAINER = re.compile(r"^Input #0, (.+?), from ")
_AUDIO_CODEC = re.compile(r"Stream #0:\d+.*?: Audio: ([^\s,]+)")
_OUT_TIME = re.compile(r"^out_time_us=(\d+)\s*$", re.MULTILINE)


_LEVELLED_ERROR = re.compile(r"\[(?:error|fatal|panic)\]")


def _demux_audio(path: Path, verbosity: str) -> subprocess.CompletedProcess[bytes] | None:
    """ffmpeg copying the first audio track to nowhere (demux only, no decoding), with its
    packet times on stdout (``-progress``) and its log at ``verbosity`` on stderr; None if it
    ran past 300 s."""
    command = [ffmpeg_exe(path), "-nostdin", "-hide_banner", "-nostats", "-v", verbosity]
    command += ["-progress", "pipe:1", "-i", str(path)]
    command += ["-map", "0:a:0", "-c", "copy", "-f", "null", "-"]
    try:
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        return None


def _declared_seconds(path: Path) -> float | None:
    """The length a damaged file's audio should have had (demux only, no decoding).

    The audio packets' timestamps when every packet is there (an MP3 whose last frame is
    broken inside); the container's duration when the container itself is cut or broken (an
    MP4 whose index lists packets beyond the cut); ``None`` if neither is known.
    """
    result = _demux_audio(path, "level+info")
    if result is None:
        return None
    log = result.stderr.decode("utf-8", "replace")
    found = _DURATION.search(log)
    container = None
    if found is not None:
        hours, minutes, seconds = found.groups()
        container = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    packets = _OUT_TIME.findall(result.stdout.decode("ascii", "replace"))
    track = int(packets[-1]) / 1e6 if packets else None
    if result.returncode != 0 or _LEVELLED_ERROR.search(log) or track is None:
        return container if container is not None else track
    return track


def _audio_track_seconds(path: Path) -> float | None:
    """Length of the first audio track from its packet timestamps (demux only, no decoding).

    The container's duration is the longest track's (a video may run on past its audio); this
    is the audio's own, within one codec frame of the decoded length. ``None`` if unavailable.
    """
    result = _demux_audio(path, "error")
    if result is None:
        return None
    found = _OUT_TIME.findall(result.stdout.decode("ascii", "replace"))
    if result.returncode != 0 or not found:
        return None
    return int(found[-1]) / 1e6


class _FfmpegSource:
    """Blocks of any file ffmpeg can read; each pass over the file is its own child process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sample_rate = 0
        self.channels = 0
        self.damage: DecodeReport | None = None
        self._running: list[_FfmpegProcess] = []

    def info(self) -> AudioInfo:
        """Read ffmpeg's input description and the output header, then stop the decoder."""
        process = _FfmpegProcess(self.path, loglevel="info")
        try:
            self.channels, self.sample_rate = process.read_header()
        finally:
            process.close()
        lines = [FFMPEG_LOG_PREFIX.sub("", line).strip() for line in process.log_lines()]
        container = codec = None
        duration: float | None = None
        for line in lines:
            if container is None and (found := _CONTAINER.match(line)):
                container = found.group(1)
            if duration is None and (found := _DURATION.search(line)):
                hours, minutes, seconds = found.groups()
                duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            if codec is None and (found := _AUDIO_CODEC.search(line)):
                codec = found.group(1)
        track = _audio_track_seconds(self.path)
        return AudioInfo(
            path=self.path,
            sample_rate=self.sample_rate,
            channels=self.channels,
            duration_s=track if track is not None else duration,
            frames=None,
            container=container,
            codec=codec,
            damage=decode_report(self.path),
        )

    def stream_blocks(self, block_seconds: float) -> Iterator[np.ndarray]:
        """Mono float32 blocks of the whole track, decoded from its start."""
        process = _FfmpegProcess(self.path)
        self._running.append(process)
        try:
            channels, rate = process.read_header()
            if self.sample_rate and rate != self.sample_rate:
                raise MediaDecodeError(f"{self.path}: ffmpeg changed sample rate between runs")
            self.channels, self.sample_rate = channels, rate
            for data in process.frames(_block_frames(rate, channels, block_seconds)):
                yield _to_mono(data)
            if process.stopped is not None:
                decoded = process.frames_read / rate
                truncated = any(w in process.stopped for w in ("partial file", "end of file"))
                self.damage = DecodeReport(
                    path=self.path,
                    decoded_s=decoded,
                    expected_s=(
                        _declared_seconds(self.path) if decoded >= MIN_USABLE_SECONDS else None
                    ),
                    reason="truncated data" if truncated else "corrupt or truncated data",
                    detail=process.stopped,
                )
        finally:
            process.close()
            if process in self._running:
                self._running.remove(process)

    def close(self) -> None:
        for process in list(self._running):
            process.close()
        self._running.clear()
