"""Window-level dataset: (recording, window) pairs as model inputs with location targets.

Built on a recording-level reader (:class:`~geoforensics.core.data.inatsounds.INatSounds`,
:class:`~geoforensics.core.data.xcdc.XCDC`, or any sequence of objects with ``id``, ``path``,
``duration``, ``latitude``, ``longitude`` and optionally ``category_index``) and an audio
front-end. Two modes:

``"dense"``
    every window of every recording, placed by
    :func:`~geoforensics.core.audio.windows.window_starts`. The index comes from the recordings'
    durations without decoding any audio (``duration_source="probe"`` reads file headers
    instead). Windows are stored recording by recording; :meth:`WindowDataset.window_offsets`
    gives each recording's range, for averaging window outputs per recording.
``"random"``
    one window per recording, at a uniformly random sample offset. The offset depends only on
    ``(seed, epoch, recording)``, so it is reproducible and the same in any DataLoader
    worker; call :meth:`WindowDataset.set_epoch` before each epoch to draw new offsets.

Only the window's segment is decoded. A window that the metadata places past the real end of
a file is zero-padded (silence), the same rule as for recordings shorter than one window.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from geoforensics.core.audio.decode import load_audio, probe_audio
from geoforensics.core.audio.frontend import FrontEndConfig, MelFrontEnd
from geoforensics.core.audio.windows import window_starts
from geoforensics.core.errors import InputError, MediaDecodeError

logger = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("dense", "random")
DURATION_SOURCES: tuple[str, ...] = ("metadata", "probe")


class WindowSource(Protocol):
    """What the window dataset reads from a recording record (both readers' records fit)."""

    @property
    def id(self) -> int | str: ...

    @property
    def path(self) -> Path | None: ...

    @property
    def duration(self) -> float | None: ...

    @property
    def latitude(self) -> float: ...

    @property
    def longitude(self) -> float: ...


def duration_to_samples(duration_s: float, sample_rate: int) -> int:
    """Samples in ``duration_s`` seconds, rounded down as the resampler does."""
    return math.floor(duration_s * sample_rate + 1e-6)


class WindowDataset(Dataset[tuple[torch.Tensor, dict[str, Any]]]):
    """Model-input windows of a set of recordings, with per-window targets.

    Items are ``(image, target)``: ``image`` is the front-end's (channels, H, W) float tensor;
    ``target`` holds ``latitude`` and ``longitude`` (float32 tensors, degrees), ``category``
    (int64 tensor, the recording's category index or -1 when it has none), ``recording_index``
    (int64 tensor, position in ``recordings``), ``recording_id`` (the record's id) and
    ``start_s`` (float32 tensor, window start in seconds). Recordings without an audio file
    are left out (with a warning); their positions are still those of the input sequence.
    """

    def __init__(
        self,
        recordings: Sequence[WindowSource],
        frontend: MelFrontEnd | FrontEndConfig | str = "paper",
        mode: str = "dense",
        seed: int = 0,
        duration_source: str = "metadata",
    ) -> None:
        if mode not in MODES:
            raise InputError(f"window mode must be one of {', '.join(MODES)}, got {mode!r}")
        if duration_source not in DURATION_SOURCES:
            raise InputError(
                f"duration_source must be one of {', '.join(DURATION_SOURCES)}, "
                f"got {duration_source!r}"
            )
        self.frontend = frontend if isinstance(frontend, MelFrontEnd) else MelFrontEnd(frontend)
        self.recordings = recordings
        self.mode = mode
        self.seed = int(seed)
        self.epoch = 0
        self.sample_rate = self.frontend.config.sample_rate
        self.window = self.frontend.window_samples
        self.stride = self.frontend.stride_samples
        self._padded_past_end = False

        usable: list[int] = []
        n_samples: list[int] = []
        skipped = 0
        for position, recording in enumerate(recordings):
            if recording.path is None:
                skipped += 1
                continue
            usable.append(position)
            n_samples.append(self._samples_of(recording, duration_source))
        if skipped:
            logger.warning("window dataset: left out %d recordings without audio", skipped)
        self._recording_index = np.asarray(usable, dtype=np.int64)
        self._n_samples = np.asarray(n_samples, dtype=np.int64)

        counts = np.array(
            [window_starts(int(n), self.window, self.stride).size for n in self._n_samples],
            dtype=np.int64,
        )
        self._counts = counts
        if mode == "dense":
            starts = [window_starts(int(n), self.window, self.stride) for n in self._n_samples]
            self._item_recording = np.repeat(np.arange(len(usable), dtype=np.int64), counts)
            self._item_start = (
                np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)
            )
        else:
            self._item_recording = np.flatnonzero(counts > 0).astype(np.int64)
            self._item_start = np.zeros(0, dtype=np.int64)

    def _samples_of(self, recording: WindowSource, duration_source: str) -> int:
        duration = recording.duration
        if duration_source == "metadata" and duration is not None and math.isfinite(duration):
            return duration_to_samples(duration, self.sample_rate)
        assert recording.path is not None
        info = probe_audio(recording.path)
        if info.frames is not None and info.sample_rate > 0:
            return duration_to_samples(info.frames / info.sample_rate, self.sample_rate)
        if info.duration_s is not None:
            return duration_to_samples(info.duration_s, self.sample_rate)
        raise InputError(f"{recording.path}: length unknown (no duration in metadata or header)")

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random offsets ``"random"`` mode draws."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self._item_recording.size)

    @property
    def windows_per_recording(self) -> np.ndarray:
        """(R,) number of dense windows of each usable recording (input order)."""
        return self._counts.copy()

    @property
    def recording_indices(self) -> np.ndarray:
        """(R,) positions in ``recordings`` of the recordings this dataset uses."""
        return self._recording_index.copy()

    def window_offsets(self) -> np.ndarray:
        """(R + 1,) dense mode: items ``offsets[r]:offsets[r + 1]`` are recording ``r``'s."""
        if self.mode != "dense":
            raise InputError("window_offsets() is defined for mode 'dense' only")
        return np.concatenate([[0], np.cumsum(self._counts)]).astype(np.int64)

    def start_sample(self, index: int) -> tuple[int, int]:
        """``(position in recordings, start sample)`` of item ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"window index {index} out of range for {len(self)} windows")
        index %= len(self)
        local = int(self._item_recording[index])
        if self.mode == "dense":
            start = int(self._item_start[index])
        else:
            start = self._random_start(local)
        return int(self._recording_index[local]), start

    def _random_start(self, local: int) -> int:
        room = int(self._n_samples[local]) - self.window
        if room <= 0:
            return 0
        position = int(self._recording_index[local])
        rng = np.random.default_rng([self.seed, self.epoch, position])
        return int(rng.integers(0, room + 1))

    def _samples(self, path: Path, start: int) -> np.ndarray:
        try:
            samples = load_audio(
                path,
                sample_rate=self.sample_rate,
                offset_s=start / self.sample_rate,
                duration_s=self.window / self.sample_rate,
            )
        except MediaDecodeError:
            raise
        except InputError:
            # The metadata put this window at or past the file's real end: silence.
            samples = np.zeros(0, dtype=np.float32)
        if samples.size < self.window and not self._padded_past_end and start > 0:
            self._padded_past_end = True
            logger.warning(
                "%s: audio ends before a window the metadata duration implies; "
                "padding with silence (further cases are not reported)",
                path,
            )
        return samples[: self.window]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        position, start = self.start_sample(index)
        recording = self.recordings[position]
        assert recording.path is not None
        image = self.frontend.window_image(self._samples(recording.path, start))
        target = {
            "latitude": torch.tensor(recording.latitude, dtype=torch.float32),
            "longitude": torch.tensor(recording.longitude, dtype=torch.float32),
            "category": torch.tensor(getattr(recording, "category_index", -1), dtype=torch.int64),
            "recording_index": torch.tensor(position, dtype=torch.int64),
            "recording_id": recording.id,
            "start_s": torch.tensor(start / self.sample_rate, dtype=torch.float32),
        }
        return image, target
