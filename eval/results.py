"""Benchmark results: one :class:`RowResult` per (row, seed), saved so that a bench resumes.

A row result keeps everything needed to recompute every number and figure of the benchmark:
the per-recording predictions (N, 2), the true locations (N, 2), the recording ids (the public
scorer's ``audio_id``), the recording dates (ISO strings or None, for temporal grouping),
free-form JSON ``extra`` information (training time, gallery, ...) and optional named arrays
(for example recording embeddings, reused by the aggregation rows of Table 4).

On disk (:meth:`ResultStore.save`) a result is a folder ``OUT/rows/<row>/seed<k>/`` holding
``predictions.npy``, ``truth.npy``, ``array_<name>.npy`` and ``result.json``. The arrays are
written first and ``result.json`` last, each atomically; ``result.json`` records the SHA-256 of
every array and the *fingerprint* of the settings that produced it (data set, preset, gallery,
row version). A folder counts as finished only when ``result.json`` exists, every checksum
matches and the fingerprint equals the current one, so an interrupted or changed run is
recomputed and a finished one is reused.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write, save_npy_atomic, sha256_arrays
from geoforensics.core.geo.metrics import GeoMetrics, geolocation_errors, summarize_errors

log = logging.getLogger(__name__)

RESULT_FORMAT = "geoforensics-bench-row"
RESULT_FORMAT_VERSION = 1
RESULT_FILE = "result.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str, what: str = "row name") -> str:
    """A row or array name usable as a folder/file name (letters, digits, ``._-``)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InputError(f"{what} {name!r}: use letters, digits, '.', '_' or '-' only")
    return name


def json_safe(value: Any) -> Any:
    """A copy of ``value`` fit for strict JSON: non-finite floats become None, numpy scalars
    and arrays become Python numbers and lists, tuples become lists."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, Path):
        return str(value)
    raise InputError(f"value of type {type(value).__name__} cannot be saved as JSON")


@dataclass(eq=False)
class RowResult:
    """Per-recording predictions of one benchmark row for one seed.

    ``predictions`` may contain invalid rows (NaN, out of range): they are scored as misses by
    :func:`~geoforensics.core.geo.metrics.summarize_errors`. ``truth`` must be valid. ``ids``
    are unique strings (the public scorer's ``audio_id``).
    """

    row: str
    method: str
    seed: int
    predictions: np.ndarray
    truth: np.ndarray
    ids: list[str]
    dates: list[str | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.row)
        self.seed = int(self.seed)
        self.predictions = np.array(self.predictions, dtype=np.float64).reshape(-1, 2)
        self.truth = np.array(self.truth, dtype=np.float64).reshape(-1, 2)
        n = len(self.truth)
        where = f"row {self.row!r} seed {self.seed}"
        if n == 0:
            raise InputError(f"{where}: no recordings")
        if len(self.predictions) != n:
            raise InputError(f"{where}: {len(self.predictions)} predictions for {n} recordings")
        self.ids = [str(i) for i in self.ids]
        if len(self.ids) != n:
            raise InputError(f"{where}: {len(self.ids)} ids for {n} recordings")
        if len(set(self.ids)) != n:
            raise InputError(f"{where}: recording ids are not unique")
        if self.dates is not None:
            self.dates = [None if d is None else str(d) for d in self.dates]
            if len(self.dates) != n:
                raise InputError(f"{where}: {len(self.dates)} dates for {n} recordings")
        self.extra = json_safe(dict(self.extra))
        arrays = {}
        for name, array in self.arrays.items():
            check_name(name, "array name")
            value = np.asarray(array)
            if value.dtype == object:
                raise InputError(f"{where}: array {name!r} has dtype object")
            if value.ndim == 0 or len(value) != n:
                raise InputError(f"{where}: array {name!r} must have one row per recording")
            arrays[name] = value
        self.arrays = arrays
        geolocation_errors(self.predictions, self.truth)  # validates the truth

    def __len__(self) -> int:
        return len(self.truth)

    def errors_km(self) -> np.ndarray:
        """(N,) great-circle error in km; ``inf`` for an invalid prediction."""
        return geolocation_errors(self.predictions, self.truth)

    def metrics(self) -> GeoMetrics:
        """Median / mean error and accuracies at the benchmark's thresholds."""
        return summarize_errors(self.errors_km())


def metrics_json(metrics: GeoMetrics) -> dict[str, Any]:
    """GeoMetrics as a JSON-safe flat dict (counts as ints, NaN as None)."""
    flat = metrics.as_dict()
    out: dict[str, Any] = json_safe(flat)
    out["count"] = metrics.count
    out["n_invalid"] = metrics.n_invalid
    return out


class ResultStore:
    """Row results under ``OUT/rows/<row>/seed<k>/`` with resume checks (see module doc)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.root = self.out_dir / "rows"

    def row_dir(self, row: str, seed: int) -> Path:
        """Folder of one row and seed."""
        return self.root / check_name(row) / f"seed{int(seed)}"

    def work_dir(self, row: str, seed: int) -> Path:
        """Scratch folder for a row's own outputs (trained model, logs), kept for inspection."""
        return self.row_dir(row, seed) / "work"

    def save(self, result: RowResult, fingerprint: Mapping[str, Any] | None = None) -> Path:
        """Write a result (arrays first, ``result.json`` last, all atomic); returns its folder."""
        folder = self.row_dir(result.row, result.seed)
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / RESULT_FILE
        if marker.exists():  # the old arrays are about to be replaced: unmark first
            marker.unlink()
        files: dict[str, dict[str, str]] = {}
        named = {"predictions": result.predictions, "truth": result.truth}
        named.update({f"array_{k}": v for k, v in result.arrays.items()})
        for name, array in named.items():
            save_npy_atomic(folder / f"{name}.npy", array)
            files[name] = {"file": f"{name}.npy", "sha256": sha256_arrays(np.asarray(array))}
        payload = {
            "format": RESULT_FORMAT,
            "version": RESULT_FORMAT_VERSION,
            "row": result.row,
            "method": result.method,
            "seed": result.seed,
            "count": len(result),
            "fingerprint": json_safe(dict(fingerprint or {})),
            "metrics": metrics_json(result.metrics()),
            "ids": result.ids,
            "dates": result.dates,
            "extra": result.extra,
            "arrays": sorted(result.arrays),
            "files": files,
        }
        with atomic_write(marker) as fh:
            json.dump(payload, fh, indent=1, allow_nan=False)
        return folder

    def _read_payload(self, row: str, seed: int) -> dict[str, Any]:
        marker = self.row_dir(row, seed) / RESULT_FILE
        if not marker.is_file():
            raise InputError(f"{marker}: no saved result")
        try:
            payload = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{marker}: unreadable result ({exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != RESULT_FORMAT:
            raise InputError(f"{marker}: not a geoforensics bench result")
        if payload.get("version") != RESULT_FORMAT_VERSION:
            raise InputError(f"{marker}: result format version {payload.get('version')}")
        return payload

    def load(self, row: str, seed: int) -> RowResult:
        """Read a saved result, checking every array against its recorded checksum."""
        folder = self.row_dir(row, seed)
        payload = self._read_payload(row, seed)
        arrays: dict[str, np.ndarray] = {}
        for name, info in payload["files"].items():
            path = folder / info["file"]
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                raise InputError(f"{path}: unreadable array ({exc})") from None
            if sha256_arrays(array) != info["sha256"]:
                raise InputError(f"{path}: checksum does not match {folder / RESULT_FILE}")
            arrays[name] = array
        return RowResult(
            row=payload["row"],
            method=payload["method"],
            seed=payload["seed"],
            predictions=arrays.pop("predictions"),
            truth=arrays.pop("truth"),
            ids=payload["ids"],
            dates=payload["dates"],
            extra=payload["extra"],
            arrays={k.removeprefix("array_"): v for k, v in arrays.items()},
        )

    def fingerprint(self, row: str, seed: int) -> dict[str, Any] | None:
        """The fingerprint a saved result was made with, or None when there is none."""
        try:
            return dict(self._read_payload(row, seed).get("fingerprint") or {})
        except InputError:
            return None

    def is_finished(
        self, row: str, seed: int, fingerprint: Mapping[str, Any] | None = None
    ) -> bool:
        """Whether a complete, intact result exists (made with ``fingerprint`` when given)."""
        saved = self.fingerprint(row, seed)
        if saved is None:
            return False
        if fingerprint is not None and saved != json_safe(dict(fingerprint)):
            log.info("%s seed %d: settings changed since the saved result; rerunning", row, seed)
            return False
        try:
            self.load(row, seed)
        except InputError as exc:
            log.warning("%s seed %d: saved result unusable (%s); rerunning", row, seed, exc)
            return False
        return True
