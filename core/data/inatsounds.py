"""Reader for the iNatSounds 2024 dataset layout (COCO-like JSON per split, WAV files).

``ROOT/<split>.json`` lists ``audio``, ``categories`` and ``annotations``; audio paths in it are
relative to ROOT. Recordings without a usable location are counted, reported once through
:mod:`logging` and skipped (geolocation needs a label), unless ``keep_missing_location``.
Category indices are contiguous (0..C-1) in the order of sorted category ids over the full
category list, which every split repeats, so indices agree across splits.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, overload

import numpy as np

from geoforensics.core.data.records import (
    as_float,
    date_range,
    is_valid_location,
    isoformat_or_none,
    missing_files,
    parse_date_parts,
)
from geoforensics.core.errors import DatasetNotFoundError, InputError

logger = logging.getLogger(__name__)

#: The split files of the released dataset, in reading order.
SPLITS: tuple[str, ...] = ("train", "val", "test")

_REQUIRED_KEYS = ("audio", "categories", "annotations")


@dataclass(frozen=True, slots=True)
class Category:
    """One species of the category list; ``index`` is its contiguous position (0..C-1)."""

    id: int
    index: int
    name: str
    common_name: str
    supercategory: str
    kingdom: str
    phylum: str
    taxon_class: str
    order: str
    family: str
    genus: str
    specific_epithet: str


@dataclass(frozen=True, slots=True)
class Recording:
    """One audio entry with its location, date and species label.

    ``date`` is the wall-clock time as written (offset dropped) or None when absent or
    unparseable; ``has_time`` says whether the string carried a time of day. Latitude and
    longitude are NaN only for recordings kept with ``keep_missing_location=True``.
    """

    id: int
    file_name: str
    root: Path = field(repr=False)
    duration: float
    date: datetime | None
    has_time: bool
    latitude: float
    longitude: float
    location_uncertainty: int | None
    category_id: int
    category_index: int
    species: str

    @property
    def path(self) -> Path:
        """Absolute path of the audio file (``root / file_name``)."""
        return self.root / self.file_name


def _str(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return "" if value is None else str(value)


def _int_or_none(value: object) -> int | None:
    number = as_float(value)
    return int(number) if math.isfinite(number) else None


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid JSON (not UTF-8 text)") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object at the top level")
    absent = [key for key in _REQUIRED_KEYS if not isinstance(data.get(key), list)]
    if absent:
        raise InputError(f"{path}: missing or non-list top-level key(s): {', '.join(absent)}")
    return data


def _parse_categories(path: Path, entries: list[Any]) -> list[Category]:
    ids: list[int] = []
    by_id: dict[int, dict[str, Any]] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int):
            raise InputError(f"{path}: category entry {position} has no integer 'id'")
        if not entry.get("name"):
            raise InputError(f"{path}: category entry {position} (id {entry['id']}) has no 'name'")
        if entry["id"] in by_id:
            raise InputError(f"{path}: category id {entry['id']} appears twice")
        by_id[entry["id"]] = entry
        ids.append(entry["id"])
    categories = []
    for index, category_id in enumerate(sorted(ids)):
        entry = by_id[category_id]
        categories.append(
            Category(
                id=category_id,
                index=index,
                name=_str(entry, "name"),
                common_name=_str(entry, "common_name"),
                supercategory=_str(entry, "supercategory"),
                kingdom=_str(entry, "kingdom"),
                phylum=_str(entry, "phylum"),
                taxon_class=_str(entry, "class"),
                order=_str(entry, "order"),
                family=_str(entry, "family"),
                genus=_str(entry, "genus"),
                specific_epithet=_str(entry, "specific_epithet"),
            )
        )
    return categories


def _parse_annotations(
    path: Path, entries: list[Any], audio_ids: set[int], category_ids: set[int]
) -> dict[int, int]:
    """audio id -> category id, checking every reference."""
    labels: dict[int, int] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"{path}: annotation entry {position} is not an object")
        audio_id = entry.get("audio_id")
        category_id = entry.get("category_id")
        where = f"annotation entry {position} (id {entry.get('id')})"
        if not isinstance(audio_id, int) or not isinstance(category_id, int):
            raise InputError(f"{path}: {where} needs integer 'audio_id' and 'category_id'")
        if audio_id not in audio_ids:
            raise InputError(f"{path}: {where} points to unknown audio id {audio_id}")
        if category_id not in category_ids:
            raise InputError(f"{path}: {where} points to unknown category id {category_id}")
        if audio_id in labels:
            raise InputError(f"{path}: {where}: audio id {audio_id} has a second annotation")
        labels[audio_id] = category_id
    return labels


class INatSounds(Sequence[Recording]):
    """Recording-level view of one iNatSounds split.

    Raises :class:`DatasetNotFoundError` when the root, the split JSON or (with
    ``require_audio``) audio files are missing, and :class:`InputError` for a malformed JSON.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        require_audio: bool = True,
        keep_missing_location: bool = False,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.split = split
        self.json_path = self.root / f"{split}.json"
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"iNatSounds root {self.root} does not exist")
        if not self.json_path.is_file():
            present = sorted(p.name for p in self.root.glob("*.json"))
            found = f"found: {', '.join(present)}" if present else "no JSON files there"
            raise DatasetNotFoundError(
                f"{self.root}: no annotation file {self.json_path.name} for split '{split}' "
                f"({found})"
            )
        data = _load_json(self.json_path)
        self.info: dict[str, Any] = data.get("info") or {}
        self.categories: list[Category] = _parse_categories(self.json_path, data["categories"])
        self.keep_missing_location = keep_missing_location
        self._recordings = self._parse_audio(data)
        if require_audio:
            self._check_audio()
        self._coords = np.array(
            [(r.latitude, r.longitude) for r in self._recordings], dtype=np.float64
        ).reshape(-1, 2)
        self._labels = np.array([r.category_index for r in self._recordings], dtype=np.int64)

    def _parse_audio(self, data: dict[str, Any]) -> list[Recording]:
        path = self.json_path
        by_category_id = {category.id: category for category in self.categories}
        audio_entries: list[Any] = data["audio"]
        audio_ids: set[int] = set()
        for position, entry in enumerate(audio_entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), int):
                raise InputError(f"{path}: audio entry {position} has no integer 'id'")
            if not isinstance(entry.get("file_name"), str) or not entry["file_name"]:
                raise InputError(
                    f"{path}: audio entry {position} (id {entry['id']}) has no 'file_name'"
                )
            if entry["id"] in audio_ids:
                raise InputError(f"{path}: audio id {entry['id']} appears twice")
            audio_ids.add(entry["id"])
        labels = _parse_annotations(path, data["annotations"], audio_ids, set(by_category_id))

        recordings: list[Recording] = []
        self.n_entries = len(audio_entries)
        self.n_missing_location = 0
        self.n_missing_date = 0
        self.n_unparsed_date = 0
        for position, entry in enumerate(audio_entries):
            audio_id = entry["id"]
            if audio_id not in labels:
                raise InputError(
                    f"{path}: audio entry {position} (id {audio_id}) has no annotation"
                )
            latitude = as_float(entry.get("latitude"))
            longitude = as_float(entry.get("longitude"))
            if not is_valid_location(latitude, longitude):
                self.n_missing_location += 1
                if not self.keep_missing_location:
                    continue
                latitude = longitude = math.nan
            raw_date = entry.get("date")
            date, has_time = parse_date_parts(raw_date)
            if date is None:
                if raw_date is None or (isinstance(raw_date, str) and not raw_date.strip()):
                    self.n_missing_date += 1
                else:
                    self.n_unparsed_date += 1
            category = by_category_id[labels[audio_id]]
            recordings.append(
                Recording(
                    id=audio_id,
                    file_name=entry["file_name"],
                    root=self.root,
                    duration=as_float(entry.get("duration")),
                    date=date,
                    has_time=has_time,
                    latitude=latitude,
                    longitude=longitude,
                    location_uncertainty=_int_or_none(entry.get("location_uncertainty")),
                    category_id=category.id,
                    category_index=category.index,
                    species=category.name,
                )
            )
        self._report(len(recordings))
        return recordings

    def _report(self, n_kept: int) -> None:
        name = self.json_path.name
        if self.n_missing_location:
            counts = f"{self.n_missing_location:,} of {self.n_entries:,}"
            if self.keep_missing_location:
                logger.warning(
                    "%s: %s recordings have no valid location (kept with NaN coordinates)",
                    name,
                    counts,
                )
            else:
                logger.warning("%s: skipped %s recordings without a valid location", name, counts)
        if self.n_unparsed_date:
            logger.warning(
                "%s: %s of %s recording dates could not be parsed (set to None)",
                name,
                f"{self.n_unparsed_date:,}",
                f"{n_kept:,}",
            )

    def _check_audio(self) -> None:
        missing = missing_files(recording.path for recording in self._recordings)
        if missing:
            raise DatasetNotFoundError(
                f"{self.json_path}: {len(missing):,} of {len(self._recordings):,} audio files "
                f"are missing under {self.root} (first: {missing[0]}); pass "
                "require_audio=False to read the annotations only"
            )

    def __len__(self) -> int:
        return len(self._recordings)

    @overload
    def __getitem__(self, index: int) -> Recording: ...

    @overload
    def __getitem__(self, index: slice) -> list[Recording]: ...

    def __getitem__(self, index: int | slice) -> Recording | list[Recording]:
        return self._recordings[index]

    def __iter__(self) -> Iterator[Recording]:
        return iter(self._recordings)

    @property
    def recordings(self) -> list[Recording]:
        """All kept recordings, in JSON order."""
        return list(self._recordings)

    @property
    def species_names(self) -> list[str]:
        """Scientific names indexed by category index."""
        return [category.name for category in self.categories]

    @property
    def num_classes(self) -> int:
        """Number of categories C (the full list, including species absent from this split)."""
        return len(self.categories)

    def coords(self) -> np.ndarray:
        """(N, 2) float64 array of (latitude, longitude) in degrees."""
        return self._coords.copy()

    def labels(self) -> np.ndarray:
        """(N,) int64 array of category indices."""
        return self._labels.copy()

    def durations(self) -> np.ndarray:
        """(N,) float64 array of durations in seconds (NaN where the JSON has none)."""
        return np.array([r.duration for r in self._recordings], dtype=np.float64)

    def summary(self, check_audio: bool = False) -> dict[str, Any]:
        """Counts, species, missing locations, total duration and date range of this split.

        With ``check_audio`` the number of audio files missing on disk is added.
        """
        first, last = date_range(r.date for r in self._recordings)
        durations = self.durations()
        known = durations[np.isfinite(durations)]
        supercategories = Counter(self.categories[i].supercategory for i in self._labels)
        result: dict[str, Any] = {
            "split": self.split,
            "annotation_file": str(self.json_path),
            "n_entries": self.n_entries,
            "n_recordings": len(self._recordings),
            "n_missing_location": self.n_missing_location,
            "missing_location_policy": "kept" if self.keep_missing_location else "skipped",
            "n_species": len(self.categories),
            "n_species_present": len(set(self._labels.tolist())),
            "recordings_per_supercategory": dict(sorted(supercategories.items())),
            "total_duration_s": float(known.sum()),
            "mean_duration_s": float(known.mean()) if known.size else None,
            "n_missing_duration": int(durations.size - known.size),
            "date_min": isoformat_or_none(first),
            "date_max": isoformat_or_none(last),
            "n_missing_date": self.n_missing_date,
            "n_unparsed_date": self.n_unparsed_date,
        }
        if check_audio:
            result["n_missing_audio"] = len(missing_files(r.path for r in self._recordings))
        return result


def available_splits(root: str | Path) -> list[str]:
    """The standard splits (train, val, test) whose JSON exists under ``root``."""
    base = Path(root)
    return [split for split in SPLITS if (base / f"{split}.json").is_file()]


def summarize_inatsounds(
    root: str | Path, splits: Sequence[str] | None = None, check_audio: bool = True
) -> dict[str, Any]:
    """Summaries of several splits plus totals; ``splits=None`` reads every split present."""
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DatasetNotFoundError(f"iNatSounds root {base} does not exist")
    chosen = list(splits) if splits is not None else available_splits(base)
    if not chosen:
        expected = ", ".join(f"{split}.json" for split in SPLITS)
        raise DatasetNotFoundError(f"{base}: no annotation files (expected one of {expected})")
    per_split = {
        split: INatSounds(base, split, require_audio=False).summary(check_audio=check_audio)
        for split in chosen
    }
    total_keys = (
        "n_entries",
        "n_recordings",
        "n_missing_location",
        "n_missing_date",
        "n_unparsed_date",
        "n_missing_audio",
    )
    totals: dict[str, Any] = {
        key: sum(s[key] for s in per_split.values())
        for key in total_keys
        if all(key in s for s in per_split.values())
    }
    totals["total_duration_s"] = sum(s["total_duration_s"] for s in per_split.values())
    firsts = [s["date_min"] for s in per_split.values() if s["date_min"]]
    lasts = [s["date_max"] for s in per_split.values() if s["date_max"]]
    totals["date_min"] = min(firsts) if firsts else None
    totals["date_max"] = max(lasts) if lasts else None
    return {"dataset": "iNatSounds", "root": str(base), "splits": per_split, "total": totals}
