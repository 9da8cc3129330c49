"""Fuzzing the media decode path with random and mutated bytes (slow: ``pytest -m slow``).

A fixed, seeded set of 200 inputs: pure random bytes, and small valid WAV, FLAC, OGG, MP3 and
MP4 files with bit flips, truncations, splices, zeroed runs and overwritten header bytes. Each
goes through every reader a user's file meets (``load_audio``, ``stream_audio``,
``probe_media``, ``load_media_audio``, ``extract_keyframes``). Every call must either succeed
with well-formed output (finite float32 audio, uint8 RGB frames) or raise a
:class:`GeoforensicsError` subclass with a one-line message naming the file; nothing else may
escape and nothing may hang (a per-case timeout). A damaged file that decodes in part has a
:func:`decode_report` whose one-line message names the file and whose decoded length is the
length of the audio returned.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from geoforensics.core.audio import load_audio, stream_audio
from geoforensics.core.audio.decode import MIN_USABLE_SECONDS, decode_report
from geoforensics.core.errors import GeoforensicsError
from geoforensics.core.media import (
    extract_keyframes,
    load_media_audio,
    make_test_video,
    probe_media,
)

pytestmark = pytest.mark.slow

SEED = 20240
RATE = 16_000
SOURCES = ("wav", "flac", "ogg", "mp3", "mp4")
PER_SOURCE = 36  # 5 sources x 36 mutants + 20 random blobs = 200 inputs
N_RANDOM = 20
MUTATIONS = ("bitflip", "truncate", "splice", "zero_run", "header", "duplicate")


def _tone(seconds: float, channels: int) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    mono = 0.3 * np.sin(2 * np.pi * 880.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t))
    return np.stack([mono * (c + 1) / channels for c in range(channels)], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Small valid files of every source format, as bytes."""
    folder = tmp_path_factory.mktemp("fuzz-originals")
    audio = _tone(1.5, 2)
    sf.write(folder / "a.wav", audio, RATE, subtype="PCM_16")
    sf.write(folder / "a.flac", audio, RATE)
    sf.write(folder / "a.ogg", audio, RATE, format="OGG", subtype="VORBIS")
    sf.write(folder / "a.mp3", audio, RATE, format="MP3", subtype="MPEG_LAYER_III")
    rng = np.random.default_rng(SEED)
    frames = [rng.integers(0, 255, size=(32, 48, 3), dtype=np.uint8) for _ in range(3)]
    make_test_video(folder / "a.mp4", audio=audio[:, 0], sample_rate=RATE, frames=frames, fps=2.0)
    return {suffix: (folder / f"a.{suffix}").read_bytes() for suffix in SOURCES}


def mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """One seeded mutation of ``data``."""
    buf = bytearray(data)
    n = len(buf)
    if kind == "bitflip":
        for pos in rng.integers(0, n, size=int(rng.integers(1, 64))):
            buf[pos] ^= 1 << int(rng.integers(0, 8))
    elif kind == "truncate":
        del buf[int(rng.integers(1, n)) :]
    elif kind == "splice":  # a random block inserted, or a block moved elsewhere
        at = int(rng.integers(0, n))
        if rng.random() < 0.5:
            block = rng.integers(0, 256, size=int(rng.integers(1, 2048)), dtype=np.uint8).tobytes()
        else:
            start = int(rng.integers(0, n))
            block = bytes(buf[start : start + int(rng.integers(1, 4096))])
        buf[at:at] = block
    elif kind == "zero_run":
        start = int(rng.integers(0, n))
        length = int(rng.integers(1, max(2, n // 4)))
        buf[start : start + length] = bytes(len(buf[start : start + length]))
    elif kind == "header":  # the first 64 bytes hold sizes, rates, channel counts, boxes
        for pos in rng.integers(0, min(64, n), size=int(rng.integers(1, 6))):
            buf[pos] = int(rng.choice([0x00, 0xFF, 0x7F, 0x80, int(rng.integers(0, 256))]))
    elif kind == "duplicate":  # the file twice, or its second half dropped after the header
        buf = buf + buf if rng.random() < 0.5 else buf[: min(n, 64)] + buf[n // 2 :]
    return bytes(buf)


def _cases() -> list[tuple[str, str, int]]:
    cases = [("random", "bin", i) for i in range(N_RANDOM)]
    for source in SOURCES:
        cases += [(source, MUTATIONS[i % len(MUTATIONS)], i) for i in range(PER_SOURCE)]
    return cases


def _check_audio(samples: Any) -> None:
    assert isinstance(samples, np.ndarray) and samples.dtype == np.float32 and samples.ndim == 1
    assert np.isfinite(samples).all()


def _streamed(path: Path) -> np.ndarray:
    chunks = list(stream_audio(path, sample_rate=RATE, chunk_seconds=0.5))
    for chunk in chunks:
        _check_audio(chunk)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def _keyframes(path: Path) -> None:
    for frame in extract_keyframes(path, every_s=0.5, max_frames=4, max_side=64):
        assert frame.image.dtype == np.uint8 and frame.image.ndim == 3
        assert frame.image.shape[2] == 3 and np.isfinite(frame.time_s)


READERS: dict[str, Callable[[Path], Any]] = {
    "load_audio": lambda p: _check_audio(load_audio(p, sample_rate=RATE)),
    "load_audio_segment": lambda p: _check_audio(load_audio(p, RATE, offset_s=0.2, duration_s=0.5)),
    "stream_audio": _streamed,
    "probe_media": probe_media,
    "load_media_audio": lambda p: _check_audio(load_media_audio(p, sample_rate=RATE)),
    "extract_keyframes": _keyframes,
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("source", "kind", "index"), _cases())
def test_mutated_media_decodes_or_raises_a_geoforensics_error(
    originals: dict[str, bytes], tmp_path: Path, source: str, kind: str, index: int
) -> None:
    rng = np.random.default_rng([SEED, SOURCES.index(source) if source in SOURCES else 9, index])
    if source == "random":
        data = rng.integers(0, 256, size=int(rng.integers(1, 65_536)), dtype=np.uint8).tobytes()
        suffix = str(rng.choice(SOURCES))  # random bytes behind a media extension
    else:
        data, suffix = mutate(originals[source], kind, rng), source
    path = tmp_path / f"fuzz-{index}.{suffix}"
    path.write_bytes(data)
    outcomes = {}
    for name, reader in READERS.items():
        try:
            reader(path)
        except GeoforensicsError as exc:
            message = str(exc)
            assert "\n" not in message and path.name in message, (name, message)
            outcomes[name] = type(exc).__name__
        else:
            outcomes[name] = "ok"
    # the whole-file and streamed decoders agree on whether the file decodes
    assert (outcomes["load_audio"] == "ok") == (outcomes["stream_audio"] == "ok"), outcomes
    report = decode_report(path)
    if report is not None:  # decoded in part: the audio before the damage, and one line
        assert outcomes["load_audio"] == "ok", (outcomes, report)
        message = report.message()
        assert "\n" not in message and message.startswith(f"{path}: decoding stopped at ")
        assert report.decoded_s >= MIN_USABLE_SECONDS
        decoded = load_audio(path, sample_rate=RATE).size / RATE
        assert decoded == pytest.approx(report.decoded_s, abs=2 / RATE), (decoded, report)
