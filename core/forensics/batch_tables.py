"""One table per batch: a row per clip (``summary.csv`` / ``summary.parquet``) and a row per
species detection (``species.csv`` and a Raven selection table).

The rows are read from each clip's ``report.json`` (format 3 and up), so a resumed batch
(clips skipped because they were checked before) gives the same table as a fresh one. Every
value is rounded to what it means (coordinates to 1e-5°, distances to 0.1 km, probabilities to
1e-4), so two runs of the same batch — one process, several workers or a Ray cluster — write
identical tables. Timings are left out for the same reason (they are in ``summary.json``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from geoforensics.core.fileio import atomic_path, atomic_write

SUMMARY_CSV = "summary.csv"
SUMMARY_PARQUET = "summary.parquet"
SPECIES_CSV = "species.csv"
SPECIES_RAVEN = "species.selections.txt"

#: Modalities with a place of their own, in the order of the table's column groups.
LOCATED_MODALITIES: tuple[str, ...] = ("audio_species", "audio", "audio_fused", "frames", "text")
#: The region level whose area and calibration the table reports.
TABLE_REGION_LEVEL = 0.9

_FIXED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("file", "string"),
    ("status", "string"),
    ("error", "string"),
    ("sha256", "string"),
    ("report_dir", "string"),
    ("duration_s", "float"),
    ("has_video", "bool"),
    ("has_audio", "bool"),
    ("date", "string"),
    ("week", "int"),
    ("verdict", "string"),
    ("n_mismatch", "int"),
    ("n_consistent", "int"),
    ("claimed_place", "string"),
    ("claimed_lat", "float"),
    ("claimed_lon", "float"),
    ("gps_lat", "float"),
    ("gps_lon", "float"),
    ("gps_km_to_claim", "float"),
)
_MODALITY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("available", "bool"),
    ("evidence", "bool"),
    ("lat", "float"),
    ("lon", "float"),
    ("place", "string"),
    ("p_within_radius", "float"),
    ("km_to_claim", "float"),
    ("km_to_gps", "float"),
    ("region90_km2", "float"),
    ("region90_parts", "int"),
    ("region90_calibrated", "bool"),
)
_TAIL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n_species", "int"),
    ("species_heard", "string"),
)

#: Every column of ``summary.csv`` with its type (``string``, ``float``, ``int``, ``bool``).
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    _FIXED_COLUMNS
    + tuple(
        (f"{modality}_{name}", kind)
        for modality in LOCATED_MODALITIES
        for name, kind in _MODALITY_COLUMNS
    )
    + _TAIL_COLUMNS
)

#: Columns of ``species.csv`` (one row per run of windows a species was detected in).
SPECIES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("file", "string"),
    ("start_s", "float"),
    ("end_s", "float"),
    ("scientific_name", "string"),
    ("common_name", "string"),
    ("confidence", "float"),
    ("mean_confidence", "float"),
    ("n_windows", "int"),
    ("latitude", "float"),
    ("longitude", "float"),
    ("location_source", "string"),
    ("week", "int"),
)

#: BirdNET V2.4's band (Hz): the frequency box of every selection.
BIRDNET_BAND_HZ: tuple[float, float] = (0.0, 15000.0)
RAVEN_COLUMNS: tuple[str, ...] = (
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Begin Path",
    "File Offset (s)",
    "Scientific Name",
    "Common Name",
    "Confidence",
    "Latitude",
    "Longitude",
    "Week",
)


def _r(value: Any, digits: int) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, digits)


def _week(value: Any) -> int | None:
    """The week 1-48 of the species ranges; None when the date was unknown (-1)."""
    return int(value) if isinstance(value, int) and value >= 1 else None


def _distances(document: Mapping[str, Any]) -> dict[frozenset[str], float]:
    out: dict[frozenset[str], float] = {}
    for pair in document.get("discrepancies") or []:
        distance = pair.get("distance_km")
        if distance is not None:
            out[frozenset((pair["first"], pair["second"]))] = float(distance)
    return out


def _shown_region(details: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for region in details.get("regions") or []:
        if abs(float(region.get("level", -1)) - TABLE_REGION_LEVEL) < 1e-9:
            return region
    return None


def summary_row(
    file: str,
    status: str,
    document: Mapping[str, Any] | None,
    *,
    sha256: str | None = None,
    error: str | None = None,
    report_dir: str | None = None,
) -> dict[str, Any]:
    """One clip's row of ``summary.csv`` from its ``report.json`` document (None for a clip
    that failed: the row then holds the file, its status and the one-line error). ``status``
    is ``checked`` or ``failed``: whether this run or an earlier one checked the clip is in
    ``summary.json``, not in the table."""
    row: dict[str, Any] = {name: None for name, _ in SUMMARY_COLUMNS}
    row.update(file=file, status=status, error=error, sha256=sha256, report_dir=report_dir)
    if document is None:
        return row
    media = document.get("media") or {}
    row["sha256"] = sha256 or media.get("sha256")
    row["duration_s"] = _r(media.get("duration_s"), 3)
    row["has_video"] = media.get("has_video")
    row["has_audio"] = media.get("has_audio")
    row["date"] = document.get("date")
    row["week"] = _week(document.get("week"))
    verdict = document.get("verdict") or {}
    row["verdict"] = verdict.get("label")
    reasons = [str(r) for r in verdict.get("reasons") or []]
    row["n_mismatch"] = sum(r.startswith("mismatch") for r in reasons)
    row["n_consistent"] = sum(r.startswith("consistent") for r in reasons)
    modalities = document.get("modalities") or {}
    distances = _distances(document)
    for name, prefix in (("claimed", "claimed"), ("metadata_gps", "gps")):
        modality = modalities.get(name) or {}
        point = modality.get("point") if modality.get("available") else None
        if point is not None:
            row[f"{prefix}_lat"], row[f"{prefix}_lon"] = _r(point[0], 5), _r(point[1], 5)
            if name == "claimed" and modality.get("top"):
                row["claimed_place"] = modality["top"][0].get("label")
    row["gps_km_to_claim"] = _r(distances.get(frozenset(("metadata_gps", "claimed"))), 1)
    for name in LOCATED_MODALITIES:
        modality = modalities.get(name)
        if modality is None:
            continue
        available = bool(modality.get("available"))
        row[f"{name}_available"] = available
        if not available or not modality.get("top"):
            continue
        best = modality["top"][0]
        row[f"{name}_evidence"] = bool(modality.get("evidence", True))
        row[f"{name}_lat"] = _r(best.get("latitude"), 5)
        row[f"{name}_lon"] = _r(best.get("longitude"), 5)
        row[f"{name}_place"] = best.get("label")
        row[f"{name}_p_within_radius"] = _r(best.get("region_probability"), 4)
        row[f"{name}_km_to_claim"] = _r(distances.get(frozenset((name, "claimed"))), 1)
        row[f"{name}_km_to_gps"] = _r(distances.get(frozenset((name, "metadata_gps"))), 1)
        region = _shown_region(modality.get("details") or {})
        if region is not None:
            row[f"{name}_region90_km2"] = _r(region.get("area_km2"), 0)
            row[f"{name}_region90_parts"] = region.get("n_parts")
            row[f"{name}_region90_calibrated"] = bool(region.get("calibrated"))
    species = document.get("species") or {}
    heard = [str(h["scientific"]) for h in species.get("heard") or []]
    if species:
        row["n_species"] = len(heard)
        row["species_heard"] = "; ".join(heard)
    return row


def species_rows(file: str, document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per run of consecutive BirdNET windows in which a species was heard (start and
    end in seconds, its highest and mean window confidence), with the place the clip's
    species were judged at: the GPS tag when the clip has one, else the claimed place."""
    species = document.get("species") or {}
    modalities = document.get("modalities") or {}
    lat = lon = source = None
    for name in ("metadata_gps", "claimed"):
        modality = modalities.get(name) or {}
        if modality.get("available") and modality.get("point") is not None:
            lat, lon = _r(modality["point"][0], 5), _r(modality["point"][1], 5)
            source = name
            break
    rows = []
    for heard in species.get("heard") or []:
        for run in heard.get("detections") or []:
            rows.append(
                {
                    "file": file,
                    "start_s": _r(run.get("start_s"), 3),
                    "end_s": _r(run.get("end_s"), 3),
                    "scientific_name": heard.get("scientific"),
                    "common_name": heard.get("common"),
                    "confidence": _r(run.get("max_conf"), 4),
                    "mean_confidence": _r(run.get("mean_conf"), 4),
                    "n_windows": run.get("n_windows"),
                    "latitude": lat,
                    "longitude": lon,
                    "location_source": source,
                    "week": _week(species.get("week", document.get("week"))),
                }
            )
    rows.sort(key=lambda r: (r["start_s"] or 0.0, r["scientific_name"] or ""))
    return rows


def _csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _cell(row[c]) for c in columns])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(
    path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
) -> Path:
    """Write ``rows`` as CSV (header, empty cell for a missing value), atomically."""
    target = Path(path)
    with atomic_write(target) as fh:
        fh.write(_csv_text(rows, [name for name, _ in columns]))
    return target


def write_parquet(
    path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
) -> Path:
    """Write ``rows`` as Parquet with a typed schema (pyarrow), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"string": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
    schema = pa.schema([(name, types[kind]) for name, kind in columns])
    table = pa.table({name: [row.get(name) for row in rows] for name, _ in columns}, schema=schema)
    target = Path(path)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)
    return target


def raven_text(rows: Sequence[Mapping[str, Any]], durations: Mapping[str, float]) -> str:
    """A Raven selection table (tab-separated) of species rows from one or more files.

    Several files are laid end to end, as Raven shows a file sequence: ``Begin Time (s)``
    counts from the start of the first file, ``Begin Path`` and ``File Offset (s)`` say which
    file and where in it. ``durations`` gives each file's length (s) in that order."""
    offsets: dict[str, float] = {}
    total = 0.0
    for file, duration in durations.items():
        offsets[file] = total
        total += float(duration)
    lines = ["\t".join(RAVEN_COLUMNS)]
    low, high = BIRDNET_BAND_HZ
    for number, row in enumerate(rows, start=1):
        offset = offsets.get(str(row["file"]), 0.0)
        start, end = float(row["start_s"] or 0.0), float(row["end_s"] or 0.0)
        values = [
            str(number),
            "Spectrogram 1",
            "1",
            f"{offset + start:.3f}",
            f"{offset + end:.3f}",
            f"{low:.1f}",
            f"{high:.1f}",
            str(row["file"]),
            f"{start:.3f}",
            str(row["scientific_name"] or ""),
            str(row["common_name"] or ""),
            f"{float(row['confidence'] or 0.0):.4f}",
            "" if row["latitude"] is None else f"{row['latitude']}",
            "" if row["longitude"] is None else f"{row['longitude']}",
            "" if row["week"] is None else str(row["week"]),
        ]
        lines.append("\t".join(v.replace("\t", " ") for v in values))
    return "\n".join(lines) + "\n"


def write_raven(
    path: str | Path, rows: Sequence[Mapping[str, Any]], durations: Mapping[str, float]
) -> Path:
    """Write :func:`raven_text` atomically."""
    target = Path(path)
    with atomic_write(target) as fh:
        fh.write(raven_text(rows, durations))
    return target


def read_report(path: str | Path) -> dict[str, Any] | None:
    """A ``report.json`` document, or None when it is missing or unreadable."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def species_table(
    documents: Iterable[tuple[str, Mapping[str, Any]]],
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Species rows of every (file, report document) and each file's duration."""
    rows: list[dict[str, Any]] = []
    durations: dict[str, float] = {}
    for file, document in documents:
        durations[file] = float((document.get("media") or {}).get("duration_s") or 0.0)
        rows.extend(species_rows(file, document))
    return rows, durations


__all__ = [
    "LOCATED_MODALITIES",
    "RAVEN_COLUMNS",
    "SPECIES_COLUMNS",
    "SPECIES_CSV",
    "SPECIES_RAVEN",
    "SUMMARY_COLUMNS",
    "SUMMARY_CSV",
    "SUMMARY_PARQUET",
    "raven_text",
    "read_report",
    "species_rows",
    "species_table",
    "summary_row",
    "write_csv",
    "write_parquet",
    "write_raven",
]
