"""Media containers: probe (hash, streams, tags, GPS, time), keyframes, audio track, writer.

All of it runs the ffmpeg binary shipped by ``imageio-ffmpeg`` (no system ffmpeg/ffprobe):

* :func:`probe_media` -> :class:`MediaInfo` (SHA-256, container, duration, streams, tags,
  ``creation_time``, ``gps`` from ISO 6709 ``location`` tags); :func:`parse_ffmpeg_info` is
  the pure parser of ffmpeg's input description;
* :func:`extract_keyframes` -> :class:`Keyframe` list (first frame, scene changes, interval
  fallback; capped and spread over the clip; RGB uint8, long side <= ``max_side``);
* :func:`load_media_audio` -> mono float32 of the audio track;
* :func:`make_test_video` writes an H.264 + AAC MP4 with optional GPS/time/tags.

Failures are :class:`~geoforensics.core.errors.MediaDecodeError` (an ``InputError``) with one
line naming the file and the problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geoforensics.core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from geoforensics.core.media.audio import load_media_audio
    from geoforensics.core.media.keyframes import Keyframe, extract_keyframes
    from geoforensics.core.media.probe import (
        GPS_KEYS,
        TIME_KEYS,
        MediaInfo,
        ProbeResult,
        StreamInfo,
        creation_time_from_tags,
        format_iso6709,
        gps_from_tags,
        parse_creation_time,
        parse_ffmpeg_info,
        parse_iso6709,
        probe_media,
    )
    from geoforensics.core.media.write import make_test_video

_EXPORTS = {
    "GPS_KEYS": "probe",
    "TIME_KEYS": "probe",
    "Keyframe": "keyframes",
    "MediaInfo": "probe",
    "ProbeResult": "probe",
    "StreamInfo": "probe",
    "creation_time_from_tags": "probe",
    "extract_keyframes": "keyframes",
    "format_iso6709": "probe",
    "gps_from_tags": "probe",
    "load_media_audio": "audio",
    "make_test_video": "write",
    "parse_creation_time": "probe",
    "parse_ffmpeg_info": "probe",
    "parse_iso6709": "probe",
    "probe_media": "probe",
}

__all__ = [
    "GPS_KEYS",
    "TIME_KEYS",
    "Keyframe",
    "MediaInfo",
    "ProbeResult",
    "StreamInfo",
    "creation_time_from_tags",
    "extract_keyframes",
    "format_iso6709",
    "gps_from_tags",
    "load_media_audio",
    "make_test_video",
    "parse_creation_time",
    "parse_ffmpeg_info",
    "parse_iso6709",
    "probe_media",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
