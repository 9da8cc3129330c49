"""What a media file holds: container, streams, duration, metadata tags, GPS, creation time.

Everything comes from one run of the ``imageio-ffmpeg`` binary (there is no ffprobe here)::

    ffmpeg -hide_banner -v level+info -i FILE -map 0:v? -map 0:a? -c copy -f null -

Its stderr starts with the usual ``Input #0`` description (container, ``Duration``, ``Stream``
lines, ``Metadata`` blocks), which :func:`parse_ffmpeg_info` turns into a
:class:`ProbeResult` (a pure function, tested on captured text). The ``-c copy -f null`` part
then reads every packet without decoding, so a file cut short after its header (an MP4 whose
index sits in front of the media data) is described with its ``damage`` (ffmpeg's message), not
as whole; the audio and frames before the damage stay usable (the decoders stop there).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geoforensics.core.errors import MediaDecodeError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.media.ffmpeg import checked_path, ffmpeg_exe, ffmpeg_problem

#: Metadata keys that may hold an ISO 6709 location string, in order of preference.
GPS_KEYS = ("location", "location-eng", "com.apple.quicktime.location.iso6709")
#: Metadata keys that may hold the recording time, in order of preference.
TIME_KEYS = ("creation_time", "com.apple.quicktime.creationdate", "date")
# Stream-level keys that describe the encoding, not the content: not copied into MediaInfo.tags.
_TECHNICAL_STREAM_KEYS = frozenset(
    {"handler_name", "vendor_id", "encoder", "language", "duration", "_statistics_tags"}
)
# ffmpeg runs longer than this (per probe) are stopped.
_PROBE_TIMEOUT_S = 600


@dataclass(frozen=True)
class StreamInfo:
    """One stream of the input as ffmpeg describes it (``Stream #0:N: Kind: ...``)."""

    index: int
    kind: str  # "video", "audio", "subtitle", "data", "attachment"
    codec: str | None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    rotation_deg: float = 0.0
    attached_pic: bool = False  # cover art: a "video" stream that is one still image
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    """The parsed ``Input #0`` section of ffmpeg's stderr (no file access)."""

    container: str | None
    duration_s: float | None
    start_s: float | None
    tags: dict[str, str]
    streams: tuple[StreamInfo, ...]
    errors: tuple[str, ...] = ()  # error/fatal-level log lines (with ``-v level+...``)

    @property
    def damage(self) -> str | None:
        """The first error line saying the data is truncated or corrupt, or ``None``."""
        return next((line for line in self.errors if _TRUNCATION.search(line)), None)

    @property
    def video(self) -> StreamInfo | None:
        """The first real video stream (cover art does not count)."""
        return next((s for s in self.streams if s.kind == "video" and not s.attached_pic), None)

    @property
    def audio(self) -> StreamInfo | None:
        """The first audio stream."""
        return next((s for s in self.streams if s.kind == "audio"), None)


@dataclass(frozen=True)
class MediaInfo:
    """A media file's identity (SHA-256), streams and container metadata.

    ``width``/``height``/``fps``/``video_codec`` describe the first video stream that is not
    cover art, the ``audio_*`` fields the first audio stream. ``width``/``height`` are the
    stored picture size; ``rotation_deg`` is the display rotation (degrees counter-clockwise,
    as ffmpeg reports the display matrix) a phone recorded (frames from
    :func:`~geoforensics.core.media.extract_keyframes` are already turned upright).
    ``tags`` holds the container-level tags plus content tags found only on a stream (Ogg
    keeps its Vorbis comments there), without per-stream technical keys (handler_name, ...);
    keys are lower-cased (``TITLE`` -> ``title``), values kept as written (multi-line values
    joined with newlines).
    ``creation_time`` and ``gps`` are read from those tags (see :data:`TIME_KEYS`,
    :data:`GPS_KEYS`); MP4 stores creation_time to the second and location to 1e-4 degrees.
    ``damage`` is ffmpeg's message when the demux pass met truncated or corrupt data (the
    audio and frames before it still decode), else ``None``.
    """

    path: Path
    sha256: str
    size_bytes: int
    container: str
    duration_s: float | None
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str | None
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    creation_time: datetime | None
    gps: tuple[float, float] | None
    tags: dict[str, str]
    rotation_deg: float = 0.0
    start_s: float | None = None
    streams: tuple[StreamInfo, ...] = ()
    damage: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (path as a string, times in ISO 8601, GPS as [lat, lon])."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "container": self.container,
            "duration_s": self.duration_s,
            "has_video": self.has_video,
            "has_audio": self.has_audio,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "audio_sample_rate": self.audio_sample_rate,
            "audio_channels": self.audio_channels,
            "creation_time": None if self.creation_time is None else self.creation_time.isoformat(),
            "gps": None if self.gps is None else [self.gps[0], self.gps[1]],
            "tags": dict(self.tags),
            "rotation_deg": self.rotation_deg,
            "start_s": self.start_s,
            "streams": [asdict(stream) for stream in self.streams],
            "damage": self.damage,
        }


# --------------------------------------------------------------------------------------------
# public API


def probe_media(path: str | os.PathLike[str]) -> MediaInfo:
    """Describe a media file (audio or video): hash, size, streams, duration, tags, GPS, time.

    Raises :class:`MediaDecodeError` (one line naming the file) when the file is missing,
    empty, not media, or cut before any stream can be read (an MP4 without its index); a file
    damaged further on is described, with ``damage`` set.
    """
    checked = checked_path(path)
    parsed = probe_streams(checked)
    return media_info_from(parsed, checked, sha256_file(checked), checked.stat().st_size)


def probe_streams(path: Path) -> ProbeResult:
    """Run ffmpeg over ``path`` (header + a demux pass) and parse it; raise on unusable files.

    ``path`` must already be checked (exists, non-empty). No hashing: the cheap part of
    :func:`probe_media`, shared by the keyframe and audio readers. Truncated or corrupt data
    after the header is not an error here (see :attr:`ProbeResult.damage`), unless the file
    holds no stream at all.
    """
    command = [ffmpeg_exe(path), "-nostdin", "-hide_banner", "-nostats", "-v", "level+info"]
    command += ["-i", str(path), "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "null", "-"]
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise MediaDecodeError(
            f"{path}: ffmpeg did not finish reading the file in {_PROBE_TIMEOUT_S} s"
        ) from exc
    text = result.stderr.decode("utf-8", "replace")
    parsed = parse_ffmpeg_info(text)
    if parsed.container is None:
        lines = [line for line in text.splitlines() if line.strip()]
        raise MediaDecodeError(f"{path}: {ffmpeg_problem(lines, result.returncode, True)}")
    if parsed.damage is not None and not parsed.streams:
        raise MediaDecodeError(f"{path}: truncated or corrupt media data (ffmpeg: {parsed.damage})")
    return parsed


def media_info_from(parsed: ProbeResult, path: Path, sha256: str, size_bytes: int) -> MediaInfo:
    """Assemble a :class:`MediaInfo` from a parsed probe and the file's hash and size."""
    video, audio = parsed.video, parsed.audio
    tags = merged_tags(parsed)
    return MediaInfo(
        path=path,
        sha256=sha256,
        size_bytes=size_bytes,
        container=parsed.container or "",
        duration_s=parsed.duration_s,
        has_video=video is not None,
        has_audio=audio is not None,
        width=None if video is None else video.width,
        height=None if video is None else video.height,
        fps=None if video is None else video.fps,
        video_codec=None if video is None else video.codec,
        audio_codec=None if audio is None else audio.codec,
        audio_sample_rate=None if audio is None else audio.sample_rate,
        audio_channels=None if audio is None else audio.channels,
        creation_time=creation_time_from_tags(tags),
        gps=gps_from_tags(tags),
        tags=tags,
        rotation_deg=0.0 if video is None else video.rotation_deg,
        start_s=parsed.start_s,
        streams=parsed.streams,
        damage=parsed.damage,
    )


def merged_tags(parsed: ProbeResult) -> dict[str, str]:
    """Container tags, plus content tags that only a stream carries (first stream wins), with
    lower-case keys (Ogg and Matroska write ``TITLE``; MP4 writes ``title``)."""
    tags: dict[str, str] = {}
    for key, value in parsed.tags.items():
        tags.setdefault(key.lower(), value)
    for stream in parsed.streams:
        for key, value in stream.tags.items():
            if key.lower() not in _TECHNICAL_STREAM_KEYS:
                tags.setdefault(key.lower(), value)
    return tags


# --------------------------------------------------------------------------------------------
# tag interpretation


_ISO6709 = re.compile(
    r"^\s*(?P<lat>[+-]\d+(?:\.\d*)?)\s*(?P<lon>[+-]\d+(?:\.\d*)?)"
    r"\s*(?P<alt>[+-]\d+(?:\.\d*)?)?\s*(?:CRS[^/]*)?/?\s*$"
)


def _iso6709_angle(text: str, degree_digits: int) -> float:
    """``+DD.D``, ``+DDMM.M`` or ``+DDMMSS.S`` (``DDD`` for longitude) to decimal degrees."""
    sign = -1.0 if text[0] == "-" else 1.0
    body = text[1:]
    integer, _, fraction = body.partition(".")
    frac = float("0." + fraction) if fraction else 0.0
    digits = len(integer)
    if digits <= degree_digits:
        value = int(integer) + frac
    elif digits == degree_digits + 2:
        value = int(integer[:-2]) + (int(integer[-2:]) + frac) / 60.0
    elif digits == degree_digits + 4:
        value = int(integer[:-4]) + int(integer[-4:-2]) / 60.0 + (int(integer[-2:]) + frac) / 3600
    else:
        raise ValueError(f"unexpected ISO 6709 angle {text!r}")
    return sign * value


def parse_iso6709(text: str) -> tuple[float, float] | None:
    """(lat, lon) from an ISO 6709 point such as ``+42.6354-083.2868/`` (altitude ignored).

    Degrees, degrees-minutes (``+4238.12-08317.21/``) and degrees-minutes-seconds forms are
    read; anything else, or coordinates out of range, gives ``None``.
    """
    found = _ISO6709.match(text)
    if found is None:
        return None
    try:
        lat = _iso6709_angle(found.group("lat"), 2)
        lon = _iso6709_angle(found.group("lon"), 3)
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return None
    return (lat, lon)


def format_iso6709(lat: float, lon: float) -> str:
    """``+DD.DDDDDD+DDD.DDDDDD/``: the form QuickTime/MP4 ``location`` tags use."""
    return f"{lat:+010.6f}{lon:+011.6f}/"


def _lookup(tags: Mapping[str, str], keys: Iterable[str]) -> list[str]:
    lowered: dict[str, str] = {}
    for key, value in tags.items():
        lowered.setdefault(key.lower(), value)
    return [lowered[key] for key in keys if key in lowered]


def gps_from_tags(tags: Mapping[str, str]) -> tuple[float, float] | None:
    """The first parseable ISO 6709 location among :data:`GPS_KEYS` (and other
    ``location-<lang>`` keys), case-insensitively."""
    keys = list(GPS_KEYS)
    keys += sorted(k.lower() for k in tags if k.lower().startswith("location-"))
    for value in _lookup(tags, keys):
        point = parse_iso6709(value)
        if point is not None:
            return point
    return None


def parse_creation_time(text: str) -> datetime | None:
    """An ISO 8601 date/time tag as an aware UTC datetime (naive values are taken as UTC).

    ``A;B`` (duplicated tags) uses the first parseable part; a bare year, garbage, or a clock
    at its epoch (1904/1970, what writers store when no time is known) gives ``None``.
    """
    for part in text.split(";"):
        try:
            value = datetime.fromisoformat(part.strip())
        except ValueError:
            continue
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if value.year <= 1970:
            continue
        return value
    return None


def creation_time_from_tags(tags: Mapping[str, str]) -> datetime | None:
    """The first parseable time among :data:`TIME_KEYS`, case-insensitively."""
    for value in _lookup(tags, TIME_KEYS):
        parsed = parse_creation_time(value)
        if parsed is not None:
            return parsed
    return None


# --------------------------------------------------------------------------------------------
# the pure parser


# log prefixes: "[info] ", "[in#0/mov,mp4 @ 0x5] [error] "; exactly one space after each so
# that the indentation of "  Metadata:" blocks survives.
_PREFIX = re.compile(r"^(?:\[[^\]\n]*\] )+")
_LEVEL = re.compile(r"\[(trace|debug|verbose|info|warning|error|fatal|panic)\] ")
_INPUT = re.compile(r"^Input #0, (.+?), from ")
_DURATION = re.compile(r"Duration: (?:(\d+):(\d+):(\d+(?:\.\d+)?)|N/A)")
_START = re.compile(r"start: (-?\d+(?:\.\d+)?)")
_STREAM = re.compile(r"^Stream #0:(\d+)\S*: (\w+): (.*)$")
_KEY_VALUE = re.compile(r"^([^:]*?)\s*:(?: (.*))?$")
_SIZE = re.compile(r"^(\d+)x(\d+)(?:\s|$)")
_FPS = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)$")
_RATE = re.compile(r"^(\d+) Hz$")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_TRUNCATION = re.compile(
    r"partial file|truncat|end of file|moov atom not found|invalid data", re.IGNORECASE
)
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "downmix": 2,
    "quad": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "hexadecagonal": 16,
    "22.2": 24,
}


def _split_top(text: str) -> list[str]:
    """Split at ", " outside parentheses/brackets: ``yuv420p(tv, bt709)`` stays one part."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _channels(layout: str) -> int | None:
    layout = layout.strip()
    base = layout.split("(")[0].strip()
    if base in _LAYOUT_CHANNELS:
        return _LAYOUT_CHANNELS[base]
    if found := re.fullmatch(r"(\d+) channels?", base):
        return int(found.group(1))
    if found := re.fullmatch(r"(\d+)\.(\d+)", base):
        return int(found.group(1)) + int(found.group(2))
    return None


def _parse_stream(index: int, kind: str, description: str) -> dict[str, Any]:
    parts = _split_top(description)
    codec = parts[0].split()[0] if parts and parts[0].split() else None
    info: dict[str, Any] = {"index": index, "kind": kind.lower(), "codec": codec}
    info["attached_pic"] = "(attached pic)" in description
    if info["kind"] == "video":
        tbr: float | None = None
        for part in parts[1:]:
            if (size := _SIZE.match(part)) and "width" not in info:
                info["width"], info["height"] = int(size.group(1)), int(size.group(2))
            if fps := _FPS.match(part.split(" (")[0]):
                value = float(fps.group(1)) * (1000.0 if fps.group(2) else 1.0)
                if fps.group(3) == "fps":
                    info["fps"] = value
                else:
                    tbr = value
        if "fps" not in info and tbr is not None:
            info["fps"] = tbr
    elif info["kind"] == "audio":
        for position, part in enumerate(parts[1:], start=1):
            if rate := _RATE.match(part):
                info["sample_rate"] = int(rate.group(1))
                if position + 1 < len(parts):
                    info["channels"] = _channels(parts[position + 1])
                break
    return info


def parse_ffmpeg_info(text: str) -> ProbeResult:
    """Parse the ``Input #0`` part of ``ffmpeg -i FILE`` stderr.

    Reads the container name, ``Duration``/``start``, container ``Metadata`` (multi-line
    values joined with newlines), each ``Stream`` line (codec, size, fps, sample rate,
    channels, cover art) with its own ``Metadata`` and display-matrix rotation. Chapters,
    programs and the output section are skipped. Lines may carry ffmpeg's ``[context @ 0x..]``
    and ``[level]`` prefixes; error/fatal-level lines are collected in ``errors``. Text without
    an ``Input #0`` line gives ``container=None``.
    """
    container: str | None = None
    duration: float | None = None
    start: float | None = None
    tags: dict[str, str] = {}
    streams: list[dict[str, Any]] = []
    errors: list[str] = []
    # where Metadata lines go: ("container"|"stream"|"skip", indent of the block's entries)
    block: tuple[str, int] | None = None
    last_key: str | None = None
    in_input = False
    for raw in text.splitlines():
        prefix = _PREFIX.match(raw)
        line = raw[prefix.end() :] if prefix else raw
        level = _LEVEL.search(prefix.group(0)) if prefix else None
        if level and level.group(1) in ("error", "fatal", "panic"):
            errors.append(line.strip())
            continue
        if not line.strip() or (prefix and " @ " in prefix.group(0)):
            continue  # blank, or a component's log line (not part of the input description)
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if not in_input:
            if container is None and (found := _INPUT.match(body)) and indent == 0:
                container, in_input = found.group(1), True
            continue
        if indent == 0:  # "Output #0", "Stream mapping:", "Input #1", "Press [q]"...
            in_input = False
            block = None
            continue
        if block is not None and indent >= block[1]:
            if block[0] == "skip":
                continue
            target = tags if block[0] == "container" else streams[-1]["tags"]
            if body.startswith(":") and last_key is not None:
                target[last_key] += "\n" + body[1:].strip()
                continue
            if found := _KEY_VALUE.match(body):
                last_key = found.group(1).strip()
                target[last_key] = (found.group(2) or "").strip()
            continue
        block = None
        if body == "Metadata:":
            if indent == 2:
                block = ("container", indent + 2)
            elif streams and indent == 4 and streams[-1]["_open"]:
                block = ("stream", indent + 2)
            else:
                block = ("skip", indent + 1)
            last_key = None
            continue
        if body.startswith("Duration:"):
            if (found := _DURATION.search(body)) and found.group(1) is not None:
                hours, minutes, seconds = found.groups()
                duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            if found := _START.search(body):
                start = float(found.group(1))
            continue
        if found := _STREAM.match(body):
            for stream in streams:
                stream["_open"] = False
            stream = _parse_stream(int(found.group(1)), found.group(2), found.group(3))
            stream["tags"], stream["_open"] = {}, True
            streams.append(stream)
            continue
        if indent <= 2:  # "Chapters:", "Program 1", ...: their blocks are not the container's
            for stream in streams:
                stream["_open"] = False
            block = ("skip", indent + 1)
            continue
        if streams and streams[-1]["_open"] and (found := _ROTATION.search(body)):
            # the display matrix's counter-clockwise rotation in degrees, as ffmpeg prints it
            streams[-1]["rotation_deg"] = float(found.group(1))
    result_streams = tuple(
        StreamInfo(**{key: value for key, value in stream.items() if key != "_open"})
        for stream in streams
    )
    return ProbeResult(
        container=container,
        duration_s=duration,
        start_s=start,
        tags=tags,
        streams=result_streams,
        errors=tuple(errors),
    )
