"""The audio track of any media file (video or audio) as mono float32 at one sample rate."""

from __future__ import annotations

import os

import numpy as np

from geoforensics.core.audio.decode import TARGET_SAMPLE_RATE, load_audio
from geoforensics.core.errors import MediaDecodeError
from geoforensics.core.media.ffmpeg import checked_path
from geoforensics.core.media.probe import probe_streams


def load_media_audio(
    path: str | os.PathLike[str], sample_rate: int = TARGET_SAMPLE_RATE
) -> np.ndarray:
    """The first audio track, channels averaged, resampled to ``sample_rate`` (mono float32).

    Decoding is :func:`geoforensics.core.audio.load_audio` (libsndfile or ffmpeg, bounded
    memory while decoding); the file is probed first so that a video without sound fails with
    ``has no audio track`` (:class:`MediaDecodeError`). A truncated or corrupt file gives the
    audio before the damage (see :func:`geoforensics.core.audio.decode.decode_report`).
    """
    checked = checked_path(path)
    parsed = probe_streams(checked)
    if parsed.audio is None:
        kind = "video" if parsed.video is not None else "file"
        raise MediaDecodeError(f"{checked}: has no audio track (a {kind} without sound)")
    return load_audio(checked, sample_rate=sample_rate)
