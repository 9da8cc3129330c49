"""Species detections with time spans from per-window probabilities (BirdNET's or any model's).

A species is *detected* in a window when its probability is at least ``threshold`` (default
0.25, BirdNET-Analyzer's and birdnetlib's default ``min_conf``). Runs of consecutive windows
(adjacent in window order; with overlapping windows they overlap in time) in which a species
is detected merge into one :class:`Detection` spanning from the first window's start to the
last window's end, with the maximum and mean probability over the run and its window count.
A window below the threshold ends a run, so a species calling twice with silence between
gives two detections. The table is sorted by maximum confidence (highest first), then start
time. An optional ``allowed`` list keeps only those species (matched by scientific name via
:func:`~.names.match_species`, BirdNET common names accepted too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.species.names import SpeciesMatch, match_species

#: Default detection threshold (BirdNET-Analyzer's ``--min_conf`` default).
DEFAULT_MIN_CONFIDENCE = 0.25


@dataclass(frozen=True)
class Detection:
    """One species heard over one span of consecutive windows."""

    scientific: str
    common: str
    species_index: int
    start_s: float
    end_s: float
    max_conf: float
    mean_conf: float
    n_windows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


def match_allowed(allowed: Sequence[str], labels: Sequence[tuple[str, str]]) -> SpeciesMatch:
    """Match a user's species list onto ``labels`` ((scientific, common) rows).

    ``.unmatched`` lists names with no partner, for the caller to report.
    """
    return match_species(list(allowed), [s for s, _ in labels], common_names=[c for _, c in labels])


def _check_inputs(
    probs: np.ndarray, start_s: np.ndarray, end_s: np.ndarray, n_labels: int, threshold: float
) -> None:
    if probs.ndim != 2:
        raise InputError(f"probabilities must be a (windows, species) matrix, got {probs.shape}")
    if start_s.shape != (probs.shape[0],) or end_s.shape != (probs.shape[0],):
        raise InputError(
            f"{probs.shape[0]} windows but {start_s.size} start and {end_s.size} end times"
        )
    if n_labels != probs.shape[1]:
        raise InputError(f"{probs.shape[1]} species columns but {n_labels} labels")
    if not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
        raise InputError(f"threshold must lie in (0, 1], got {threshold!r}")


def detect_species(
    probs: np.ndarray,
    start_s: np.ndarray,
    end_s: np.ndarray,
    labels: Sequence[tuple[str, str]],
    threshold: float = DEFAULT_MIN_CONFIDENCE,
    allowed: Sequence[str] | None = None,
) -> list[Detection]:
    """Detections (species x time span) from ``probs`` (W, S) over windows in time order.

    ``start_s``/``end_s`` (W,) are the windows' spans and ``labels`` the (scientific, common)
    name of each column. Windows with probability ``>= threshold`` are detections; runs of
    consecutive ones merge. ``allowed`` (scientific or common names) restricts the species;
    names it lists that match no label are ignored here (see :func:`match_allowed`).
    """
    matrix = np.asarray(probs, dtype=np.float32)
    starts = np.asarray(start_s, dtype=np.float64)
    ends = np.asarray(end_s, dtype=np.float64)
    _check_inputs(matrix, starts, ends, len(labels), float(threshold))
    above = matrix >= np.float32(threshold)  # NaN compares False: never a detection
    columns = np.flatnonzero(above.any(axis=0))
    if allowed is not None:
        keep = np.unique(match_allowed(allowed, labels).matched_indices)
        columns = np.intersect1d(columns, keep)
    found: list[Detection] = []
    for column in columns:
        flags = np.concatenate([[False], above[:, column], [False]]).astype(np.int8)
        edges = np.diff(flags)
        run_starts = np.flatnonzero(edges == 1)
        run_stops = np.flatnonzero(edges == -1)  # exclusive
        scientific, common = labels[int(column)]
        for first, stop in zip(run_starts, run_stops, strict=True):
            values = matrix[first:stop, column]
            found.append(
                Detection(
                    scientific=str(scientific),
                    common=str(common),
                    species_index=int(column),
                    start_s=float(starts[first]),
                    end_s=float(ends[first:stop].max()),
                    max_conf=float(values.max()),
                    mean_conf=float(values.mean(dtype=np.float64)),
                    n_windows=int(stop - first),
                )
            )
    found.sort(key=lambda d: (-d.max_conf, d.start_s, d.species_index))
    return found


def best_per_species(detections: Sequence[Detection]) -> list[Detection]:
    """The strongest detection of each species, sorted by confidence (one row per species)."""
    best: dict[int, Detection] = {}
    for detection in detections:
        current = best.get(detection.species_index)
        if current is None or detection.max_conf > current.max_conf:
            best[detection.species_index] = detection
    return sorted(best.values(), key=lambda d: (-d.max_conf, d.start_s, d.species_index))


def format_detections(detections: Sequence[Detection]) -> str:
    """A plain-text table: scientific, common, start, end, max and mean confidence, windows."""
    header = ("scientific", "common", "start_s", "end_s", "max_conf", "mean_conf", "windows")
    rows = [
        (
            d.scientific,
            d.common,
            f"{d.start_s:.1f}",
            f"{d.end_s:.1f}",
            f"{d.max_conf:.3f}",
            f"{d.mean_conf:.3f}",
            str(d.n_windows),
        )
        for d in detections
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6}
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
