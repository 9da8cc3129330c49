"""Turn a recording plan into audio: place-dependent ambience plus the species' calls.

Each recording has its own random stream, ``SeedSequence(seed, spawn_key=(kind, index))``, so
its audio is the same whatever order or process renders it. One phrase template is rendered
per species and recording (an individual's variation), then copies of it are added along the
recording: the focal species at the planned SNR over the ambience, background species quieter
(and sometimes low-passed, as distant singers are).
"""

from __future__ import annotations

import numpy as np

from geoforensics.core.synth.places import render_ambience
from geoforensics.core.synth.recordings import SAMPLE_RATE, RecordingPlan
from geoforensics.core.synth.species import CallParams, lowpass_template, render_phrase

_KIND_KEYS = {"inat": 1, "xcdc": 2}
_AUDIO_STREAM = 7


def recording_rng(seed: int, plan: RecordingPlan) -> np.random.Generator:
    """The random stream of one recording's audio (independent of order and workers)."""
    key = (_AUDIO_STREAM, _KIND_KEYS[plan.kind], plan.index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _onsets(
    rng: np.random.Generator,
    n_samples: int,
    phrase_s: float,
    gap_s: float,
    bouts: bool,
    at_least_one: bool,
) -> np.ndarray:
    """Phrase start times in samples: repeated phrases with jittered gaps, optionally in bouts.

    With ``at_least_one`` (the focal species) a recording never lacks its annotated species.
    """
    total_s = n_samples / SAMPLE_RATE
    mean_interval = phrase_s + gap_s
    count = int(total_s / max(mean_interval * 0.5, 1e-3)) + 4
    intervals = phrase_s + gap_s * np.exp(rng.normal(0.0, 0.3, count))
    starts = rng.uniform(0.0, mean_interval) + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    starts = starts[starts < total_s]
    if bouts and starts.size:
        # Alternate singing bouts (20-120 s) and pauses (5-60 s).
        edges = np.cumsum(
            np.stack([rng.uniform(20.0, 120.0, 128), rng.uniform(5.0, 60.0, 128)], axis=1).ravel()
        ) - rng.uniform(0.0, 60.0)
        phase = np.searchsorted(edges, starts, side="right")
        starts = starts[phase % 2 == 0]
    if at_least_one and starts.size == 0:
        starts = np.array([rng.uniform(0.0, max(0.0, total_s - phrase_s))])
    return (starts * SAMPLE_RATE).astype(np.int64)


def _place(out: np.ndarray, template: np.ndarray, onsets: np.ndarray, gains: np.ndarray) -> None:
    n = out.shape[0]
    length = template.shape[0]
    for start, gain in zip(onsets.tolist(), gains.tolist(), strict=True):
        stop = min(n, start + length)
        out[start:stop] += np.float32(gain) * template[: stop - start]


def render_recording(plan: RecordingPlan, calls: list[CallParams], seed: int) -> np.ndarray:
    """The audio of one planned recording: float32 mono at 22,050 Hz, peak ``plan.out_peak``."""
    rng = recording_rng(seed, plan)
    n = plan.n_samples
    mix = render_ambience(rng, n, SAMPLE_RATE, plan.ambience)
    focal_rms = float(10.0 ** (plan.snr_db / 20.0))
    for position, voice in enumerate(plan.voices):
        call = calls[voice.species]
        template = render_phrase(call, SAMPLE_RATE, rng)
        if voice.lowpass_hz > 0:
            template = lowpass_template(template, voice.lowpass_hz, SAMPLE_RATE)
        rms = float(np.sqrt(np.mean(template.astype(np.float64) ** 2)))
        gain = focal_rms * 10.0 ** (voice.level_db / 20.0) / max(rms, 1e-9)
        onsets = _onsets(
            rng,
            n,
            template.shape[0] / SAMPLE_RATE,
            call.phrase_gap_s * voice.spacing,
            voice.bouts,
            at_least_one=position == 0,
        )
        gains = gain * np.exp(rng.normal(0.0, 0.15, onsets.shape[0]))
        _place(mix, template, onsets, gains)
    peak = float(np.max(np.abs(mix)))
    return mix * np.float32(plan.out_peak / max(peak, 1e-9))
