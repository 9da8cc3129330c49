"""Pictures of audio: the front-end's log-mel spectrogram as a PNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from geoforensics.core.audio.decode import load_audio
from geoforensics.core.audio.frontend import FrontEndConfig, MelFrontEnd
from geoforensics.core.fileio import atomic_path


def save_spectrogram_png(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: FrontEndConfig | str = "paper",
    seconds: float = 60.0,
) -> Path:
    """Draw the log-mel spectrogram of the first ``seconds`` of ``source``; save it atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    source, out = Path(source), Path(out)
    frontend = MelFrontEnd(config)
    config = frontend.config
    samples = load_audio(source, config.sample_rate, duration_s=seconds)
    spectrogram = frontend.spectrogram(samples)
    duration = samples.size / config.sample_rate

    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = spectrogram.shape[0]
    image = axes.imshow(
        spectrogram,
        aspect="auto",
        origin="upper",
        cmap="magma",
        vmin=0.0,
        vmax=1.0,
        extent=(0.0, duration, rows - 0.5, -0.5),
        interpolation="nearest",
    )
    ticks = np.linspace(0, rows - 1, 6).round().astype(int)
    axes.set_yticks(ticks)
    axes.set_yticklabels([f"{frontend.band_hz[i]:.0f}" for i in ticks])
    axes.set_xlabel("time (s)")
    axes.set_ylabel("mel band centre (Hz)")
    axes.set_title(f"{source.name} ({config.name} front-end)")
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label(f"({config.db_min:g} .. {config.db_max:g} dB) -> 0 .. 1")
    figure.tight_layout()
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format="png")
    return out
