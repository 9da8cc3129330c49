"""Prediction CSVs in the public benchmark scorer's format, and a scorer for them.

The benchmark (``cvl-umass/nat-sound2loc-benchmark``) scores a CSV with the header
``audio_id,latitude,longitude`` and one row per test recording; ``audio_id`` is the audio
file's base name without extension (iNatSounds) or the XCDC ``audio_id``. Its ids must be
exactly the ground truth's. :func:`write_predictions_csv` writes that format atomically,
:func:`read_predictions_csv` reads and validates any such file (errors name the file and line),
and :func:`score_predictions_csv` scores a CSV made by anyone against a local data set with
the benchmark's metrics.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.data import XCDC, INatSounds
from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write
from geoforensics.core.geo.metrics import GeoMetrics, geolocation_metrics

HEADER: tuple[str, str, str] = ("audio_id", "latitude", "longitude")
#: Splits :func:`score_predictions_csv` knows: the iNatSounds splits and XCDC.
SCORABLE_SPLITS: tuple[str, ...] = ("train", "val", "test", "xcdc")


def write_predictions_csv(path: str | Path, ids: Sequence[str], predictions: ArrayLike) -> Path:
    """Write ``audio_id,latitude,longitude`` rows atomically (7 decimals, ~1 cm).

    Invalid predictions are written as ``nan`` rather than hidden; the reader refuses them.
    """
    coords = np.asarray(predictions, dtype=np.float64).reshape(-1, 2)
    if len(ids) != len(coords):
        raise InputError(f"{path}: {len(ids)} ids for {len(coords)} predictions")
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: audio ids are not unique")
    out = Path(path)
    with atomic_write(out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        for audio_id, (lat, lon) in zip(ids, coords, strict=True):
            writer.writerow([audio_id, _number(lat), _number(lon)])
    return out


def _number(value: float) -> str:
    return f"{value:.7f}" if math.isfinite(value) else "nan"


@dataclass(frozen=True)
class PredictionsTable:
    """A read prediction CSV: ``ids`` in file order and ``coords`` (N, 2) lat/lon."""

    path: Path
    ids: list[str]
    coords: np.ndarray
    lines: list[int]

    def by_id(self) -> dict[str, int]:
        """audio id -> row index."""
        return {audio_id: i for i, audio_id in enumerate(self.ids)}


def read_predictions_csv(path: str | Path) -> PredictionsTable:
    """Read and validate a prediction CSV: the three columns (any order, extra columns ignored),
    unique non-empty ids, finite latitude in [-90, 90] and longitude in [-180, 180]."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such predictions file")
    ids: list[str] = []
    values: list[tuple[float, float]] = []
    lines: list[int] = []
    seen: dict[str, int] = {}
    try:
        with open(source, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise InputError(f"{source}: empty file (expected header {','.join(HEADER)})")
            names = [h.strip().lower() for h in header]
            missing = [h for h in HEADER if h not in names]
            if missing:
                raise InputError(
                    f"{source}: line 1: header {','.join(header)!r} lacks {', '.join(missing)} "
                    f"(expected {','.join(HEADER)})"
                )
            col = {h: names.index(h) for h in HEADER}
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) <= max(col.values()):
                    raise InputError(f"{source}: line {line}: too few columns")
                audio_id = row[col["audio_id"]].strip()
                if not audio_id:
                    raise InputError(f"{source}: line {line}: empty audio_id")
                if audio_id in seen:
                    first = seen[audio_id]
                    raise InputError(
                        f"{source}: line {line}: audio_id {audio_id!r} repeats line {first}"
                    )
                lat = _parse_coordinate(source, line, row[col["latitude"]], "latitude", 90.0)
                lon = _parse_coordinate(source, line, row[col["longitude"]], "longitude", 180.0)
                seen[audio_id] = line
                ids.append(audio_id)
                values.append((lat, lon))
                lines.append(line)
    except UnicodeDecodeError:
        raise InputError(f"{source}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise InputError(f"{source}: malformed CSV ({exc})") from None
    if not ids:
        raise InputError(f"{source}: no predictions (header only)")
    coords = np.array(values, dtype=np.float64).reshape(-1, 2)
    return PredictionsTable(source, ids, coords, lines)


def _parse_coordinate(source: Path, line: int, text: str, name: str, limit: float) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise InputError(f"{source}: line {line}: {name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{source}: line {line}: {name} is {text.strip()!r} (not a location)")
    if abs(value) > limit:
        raise InputError(f"{source}: line {line}: {name} {value} outside [-{limit:g}, {limit:g}]")
    return value


@dataclass(frozen=True)
class GroundTruth:
    """Ids and true locations of a split, as the benchmark scorer sees them."""

    name: str
    ids: list[str]
    coords: np.ndarray


def load_ground_truth(dataset_root: str | Path, split: str = "test") -> GroundTruth:
    """Audio ids and true locations of an iNatSounds split (ids are the audio files' base
    names) or of XCDC (``split="xcdc"``; ``dataset_root`` is the XCDC folder, or a root with an
    ``xcdc`` subfolder as the synthetic world has)."""
    if split not in SCORABLE_SPLITS:
        raise InputError(f"split {split!r}: choose one of {', '.join(SCORABLE_SPLITS)}")
    root = Path(dataset_root).expanduser()
    if split == "xcdc":
        folder = root / "xcdc" if (root / "xcdc" / "xcdc_recordings.csv").is_file() else root
        xcdc = XCDC(folder)
        return GroundTruth("XCDC", [r.audio_id for r in xcdc], xcdc.coords())

    data = INatSounds(root, split, require_audio=False)
    return GroundTruth(f"iNatSounds {split}", recording_ids(data), data.coords())


def recording_ids(recordings: Sequence[object]) -> list[str]:
    """The scorer's ``audio_id`` of each recording: ``audio_id`` of XCDC rows, else the audio
    file's base name without extension (iNatSounds)."""
    out = []
    for recording in recordings:
        audio_id = getattr(recording, "audio_id", None)
        if audio_id is None:
            audio_id = Path(str(getattr(recording, "file_name"))).stem  # noqa: B009
        out.append(str(audio_id))
    return out


@dataclass(frozen=True)
class CsvScore:
    """Metrics of a prediction CSV against a ground truth."""

    csv: Path
    truth: str
    metrics: GeoMetrics


def score_predictions(table: PredictionsTable, truth: GroundTruth) -> GeoMetrics:
    """Metrics of read predictions; their ids must be exactly the ground truth's."""
    position = table.by_id()
    missing = [audio_id for audio_id in truth.ids if audio_id not in position]
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise InputError(
            f"{table.path}: {len(missing):,} of {len(truth.ids):,} {truth.name} recordings have "
            f"no prediction (missing audio_id: {shown})"
        )
    known = set(truth.ids)
    for audio_id, line in zip(table.ids, table.lines, strict=True):
        if audio_id not in known:
            raise InputError(
                f"{table.path}: line {line}: audio_id {audio_id!r} is not in {truth.name}"
            )
    order = np.array([position[audio_id] for audio_id in truth.ids], dtype=np.int64)
    return geolocation_metrics(table.coords[order], truth.coords)


def score_predictions_csv(
    csv_path: str | Path, dataset_root: str | Path, split: str = "test"
) -> CsvScore:
    """Score a prediction CSV (anyone's) against ``split`` of the data set at
    ``dataset_root``: median / mean error and accuracy at 1 / 25 / 200 / 750 / 2,500 km."""
    truth = load_ground_truth(dataset_root, split)
    table = read_predictions_csv(csv_path)
    return CsvScore(Path(csv_path), truth.name, score_predictions(table, truth))
