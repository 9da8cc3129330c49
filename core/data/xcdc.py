"""Reader for the Xeno-Canto Dawn Chorus (XCDC) layout: one CSV plus WAVs named by audio id.

``ROOT/xcdc_recordings.csv`` has the columns in :data:`COLUMNS`; the species columns are
Python-literal lists (parsed with :func:`ast.literal_eval`, never ``eval``). Audio is looked up
as ``<audio_dir>/<audio_id>.wav``, by default in ``ROOT/audio`` and then ``ROOT``. Rows are
usable without audio (species-only experiments); ``has_audio`` says which have a file.
"""

from __future__ import annotations

import ast
import csv
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, overload

import numpy as np

from geoforensics.core.data.records import date_range, isoformat_or_none
from geoforensics.core.errors import DatasetNotFoundError, InputError

#: The CSV's columns, in the order the released file has them.
COLUMNS: tuple[str, ...] = (
    "audio_id",
    "url",
    "latitude",
    "longitude",
    "length",
    "date",
    "time",
    "recordist",
    "main_scientific",
    "main_common",
    "all_scientific",
    "all_common",
)
CSV_NAME = "xcdc_recordings.csv"
_LIST_COLUMNS = ("main_scientific", "main_common", "all_scientific", "all_common")
_UNKNOWN = {"", "?", "??", "unknown", "n/a", "na", "none", "null", "nan"}
_DATE_RE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$")
_TIME_RE = re.compile(r"^\s*(\d{1,2})[:.h](\d{2})(?::(\d{2}))?\s*$")


@dataclass(frozen=True, slots=True)
class XCDCRecording:
    """One XCDC row. ``path`` is None when no audio file was found for it.

    ``date`` combines the date and time columns (midnight with ``has_time`` False when the time
    is unknown) and is None unless year, month and day are all known; ``month`` survives partial
    dates such as ``2019-05-00``. Species lists are tuples of strings.
    """

    audio_id: str
    url: str
    path: Path | None
    latitude: float
    longitude: float
    duration: float | None
    date: datetime | None
    month: int | None
    has_time: bool
    recordist: str
    main_scientific: tuple[str, ...]
    main_common: tuple[str, ...]
    all_scientific: tuple[str, ...]
    all_common: tuple[str, ...]
    line: int

    @property
    def id(self) -> str:
        """The audio id (the common name for a recording's identifier across readers)."""
        return self.audio_id

    @property
    def has_audio(self) -> bool:
        """Whether an audio file exists for this row."""
        return self.path is not None


def parse_length(text: str) -> float | None:
    """``"M:SS"``, ``"H:MM:SS"`` or plain seconds to seconds; unknown (blank, ``?``) gives None.

    Raises ValueError for anything else.
    """
    value = text.strip()
    if value.lower() in _UNKNOWN:
        return None
    parts = value.split(":")
    if len(parts) > 3 or not all(re.fullmatch(r"\d+(\.\d+)?", part) for part in parts):
        raise ValueError(f"length {text!r} is not M:SS or H:MM:SS")
    if len(parts) > 1 and any(float(part) >= 60 for part in parts[1:]):
        raise ValueError(f"length {text!r} has minutes or seconds of 60 or more")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return seconds


def parse_xcdc_date(date_text: str, time_text: str) -> tuple[datetime | None, int | None, bool]:
    """Lenient date and time: returns ``(datetime or None, month or None, has_time)``."""
    match = _DATE_RE.match(date_text)
    if match is None:
        return None, None, False
    year, month, day = (int(group) for group in match.groups())
    known_month = month if 1 <= month <= 12 else None
    try:
        day_start = datetime(year, month, day)
    except ValueError:
        return None, known_month, False
    time_match = _TIME_RE.match(time_text)
    if time_match is None:
        return day_start, known_month, False
    hour, minute = int(time_match.group(1)), int(time_match.group(2))
    second = int(time_match.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        return day_start, known_month, False
    return day_start.replace(hour=hour, minute=minute, second=second), known_month, True


def _parse_list(text: str) -> tuple[str, ...]:
    """A Python-literal list of strings (blank means empty); ValueError otherwise."""
    if not text.strip():
        return ()
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("not a Python list literal") from None
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError("not a list of strings")
    return tuple(item.strip() for item in value)


def _parse_coordinate(text: str, name: str, limit: float) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise ValueError(f"{name} {text!r} is outside [-{limit:g}, {limit:g}]")
    return value


class XCDC(Sequence[XCDCRecording]):
    """The XCDC recordings of one CSV, with their audio files where present.

    ``root_or_csv`` is the dataset folder or the CSV itself. Raises
    :class:`DatasetNotFoundError` for a missing CSV or audio folder, or (``require_audio``)
    missing audio files, and :class:`InputError` naming the line for a malformed row.
    """

    def __init__(
        self,
        root_or_csv: str | Path,
        audio_dir: str | Path | None = None,
        require_audio: bool = False,
    ) -> None:
        location = Path(root_or_csv).expanduser().resolve()
        if location.is_dir():
            self.root = location
            self.csv_path = location / CSV_NAME
        else:
            self.root = location.parent
            self.csv_path = location
        if not self.csv_path.is_file():
            if not self.root.is_dir():
                raise DatasetNotFoundError(f"XCDC folder {self.root} does not exist")
            raise DatasetNotFoundError(f"XCDC recordings file {self.csv_path} does not exist")
        if audio_dir is not None:
            folder = Path(audio_dir).expanduser().resolve()
            if not folder.is_dir():
                raise DatasetNotFoundError(f"XCDC audio folder {folder} does not exist")
            self.audio_dirs: tuple[Path, ...] = (folder,)
        else:
            self.audio_dirs = (self.root / "audio", self.root)
        self._recordings = self._read()
        if require_audio:
            missing = [r for r in self._recordings if r.path is None]
            if missing:
                first = self.audio_dirs[0] / f"{missing[0].audio_id}.wav"
                raise DatasetNotFoundError(
                    f"{self.csv_path}: {len(missing):,} of {len(self._recordings):,} recordings "
                    f"have no audio file (first: {first})"
                )

    def _find_audio(self, audio_id: str, listings: dict[Path, set[str]]) -> Path | None:
        name = f"{audio_id}.wav"
        for folder in self.audio_dirs:
            if folder not in listings:
                try:
                    listings[folder] = set(os.listdir(folder))
                except OSError:
                    listings[folder] = set()
            if name in listings[folder]:
                return folder / name
        return None

    def _read(self) -> list[XCDCRecording]:
        path = self.csv_path
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                rows = list(self._rows(fh))
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a UTF-8 text file") from None
        except csv.Error as exc:
            raise InputError(f"{path}: malformed CSV ({exc})") from None
        listings: dict[Path, set[str]] = {}
        recordings = []
        seen: dict[str, int] = {}
        for line, row in rows:
            try:
                recording = self._parse_row(row, line, listings)
            except ValueError as exc:
                raise InputError(f"{path}: line {line}: {exc}") from None
            if recording.audio_id in seen:
                raise InputError(
                    f"{path}: line {line}: audio_id {recording.audio_id!r} repeats line "
                    f"{seen[recording.audio_id]}"
                )
            seen[recording.audio_id] = line
            recordings.append(recording)
        return recordings

    def _rows(self, fh: Any) -> Iterator[tuple[int, dict[str, str]]]:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{self.csv_path}: empty file (expected a header line)")
        header = [name.strip() for name in header]
        absent = [name for name in COLUMNS if name not in header]
        if absent:
            raise InputError(
                f"{self.csv_path}: line 1: missing column(s) {', '.join(absent)} "
                f"(expected {', '.join(COLUMNS)})"
            )
        last_line = reader.line_num
        for fields in reader:
            line = last_line + 1
            last_line = reader.line_num
            if not fields or all(not field.strip() for field in fields):
                continue
            if len(fields) != len(header):
                raise InputError(
                    f"{self.csv_path}: line {line}: {len(fields)} fields, expected {len(header)}"
                )
            yield line, dict(zip(header, fields, strict=True))

    def _parse_row(
        self, row: dict[str, str], line: int, listings: dict[Path, set[str]]
    ) -> XCDCRecording:
        audio_id = row["audio_id"].strip()
        if not audio_id:
            raise ValueError("empty audio_id")
        latitude = _parse_coordinate(row["latitude"], "latitude", 90.0)
        longitude = _parse_coordinate(row["longitude"], "longitude", 180.0)
        lists: dict[str, tuple[str, ...]] = {}
        for column in _LIST_COLUMNS:
            try:
                lists[column] = _parse_list(row[column])
            except ValueError as exc:
                raise ValueError(f"column {column}: {exc}: {row[column][:60]!r}") from None
        date, month, has_time = parse_xcdc_date(row["date"], row["time"])
        return XCDCRecording(
            audio_id=audio_id,
            url=row["url"].strip(),
            path=self._find_audio(audio_id, listings),
            latitude=latitude,
            longitude=longitude,
            duration=parse_length(row["length"]),
            date=date,
            month=month,
            has_time=has_time,
            recordist=row["recordist"].strip(),
            main_scientific=lists["main_scientific"],
            main_common=lists["main_common"],
            all_scientific=lists["all_scientific"],
            all_common=lists["all_common"],
            line=line,
        )

    def __len__(self) -> int:
        return len(self._recordings)

    @overload
    def __getitem__(self, index: int) -> XCDCRecording: ...

    @overload
    def __getitem__(self, index: slice) -> list[XCDCRecording]: ...

    def __getitem__(self, index: int | slice) -> XCDCRecording | list[XCDCRecording]:
        return self._recordings[index]

    def __iter__(self) -> Iterator[XCDCRecording]:
        return iter(self._recordings)

    @property
    def recordings(self) -> list[XCDCRecording]:
        """All rows, in CSV order."""
        return list(self._recordings)

    @property
    def n_with_audio(self) -> int:
        """How many rows have an audio file."""
        return sum(r.path is not None for r in self._recordings)

    @property
    def species_names(self) -> list[str]:
        """Sorted scientific names of every species listed in any row (main or all)."""
        names = {n for r in self._recordings for n in (*r.all_scientific, *r.main_scientific)}
        return sorted(names)

    def with_audio(self) -> list[XCDCRecording]:
        """The rows that have an audio file."""
        return [r for r in self._recordings if r.path is not None]

    def coords(self) -> np.ndarray:
        """(N, 2) float64 array of (latitude, longitude) in degrees."""
        return np.array(
            [(r.latitude, r.longitude) for r in self._recordings], dtype=np.float64
        ).reshape(-1, 2)

    def durations(self) -> np.ndarray:
        """(N,) float64 durations in seconds (NaN where the length is unknown)."""
        return np.array(
            [math.nan if r.duration is None else r.duration for r in self._recordings],
            dtype=np.float64,
        )

    def summary(self) -> dict[str, Any]:
        """Counts, audio availability, species, durations and date range."""
        first, last = date_range(r.date for r in self._recordings)
        durations = self.durations()
        known = durations[np.isfinite(durations)]
        per_recording = [len(r.all_scientific) for r in self._recordings]
        species_counts = Counter(n for r in self._recordings for n in set(r.all_scientific))
        most_common = sorted(species_counts.items(), key=lambda item: (-item[1], item[0]))[:5]
        return {
            "dataset": "XCDC",
            "csv": str(self.csv_path),
            "n_recordings": len(self._recordings),
            "n_with_audio": self.n_with_audio,
            "n_without_audio": len(self._recordings) - self.n_with_audio,
            "n_species": len(self.species_names),
            "species_per_recording_min": min(per_recording, default=0),
            "species_per_recording_max": max(per_recording, default=0),
            "species_per_recording_mean": (
                float(np.mean(per_recording)) if per_recording else None
            ),
            "most_common_species": most_common,
            "n_recordists": len({r.recordist for r in self._recordings if r.recordist}),
            "total_duration_s": float(known.sum()),
            "min_duration_s": float(known.min()) if known.size else None,
            "max_duration_s": float(known.max()) if known.size else None,
            "n_missing_duration": int(durations.size - known.size),
            "date_min": isoformat_or_none(first),
            "date_max": isoformat_or_none(last),
            "n_missing_date": sum(r.date is None for r in self._recordings),
        }
