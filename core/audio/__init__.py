"""Audio front-end: decoding any media file to 22,050 Hz mono, windows, log-mel images.

``decode`` reads files (streaming, bounded memory), ``frontend`` turns windows of samples into
model inputs following a named :class:`FrontEndConfig` preset, ``windows`` cuts a stream into
overlapping windows and batches them. torch is imported only when a :class:`MelFrontEnd` is
built, so importing this package stays light.
"""

from __future__ import annotations

from geoforensics.core.audio.decode import (
    DEFAULT_CHUNK_SECONDS,
    TARGET_SAMPLE_RATE,
    AudioInfo,
    load_audio,
    probe_audio,
    stream_audio,
)
from geoforensics.core.audio.frontend import (
    FRONTENDS,
    FrontEndConfig,
    MelFrontEnd,
    band_centres_hz,
    get_frontend_config,
    mel_filterbank,
)
from geoforensics.core.audio.windows import (
    WindowBatch,
    count_windows,
    iter_window_batches,
    iter_window_runs,
    iter_windows,
    window_starts,
)

__all__ = [
    "DEFAULT_CHUNK_SECONDS",
    "FRONTENDS",
    "TARGET_SAMPLE_RATE",
    "AudioInfo",
    "FrontEndConfig",
    "MelFrontEnd",
    "WindowBatch",
    "band_centres_hz",
    "count_windows",
    "get_frontend_config",
    "iter_window_batches",
    "iter_window_runs",
    "iter_windows",
    "load_audio",
    "mel_filterbank",
    "probe_audio",
    "stream_audio",
    "window_starts",
]
