"""Range evidence without full range tables: the heard species' columns and per-place totals.

The draw and focal likelihoods (:mod:`.likelihood`) need only two things from a range model's
(G, S) table over a gallery: the columns of the species heard, and the per-place total
``T(x) = Σ_s presence(x, s)`` (for the draws; a lone focal species needs none). A full
BirdNET table over ``land-1deg`` is 25,051 × 6,522 float16 (327 MB per week, 16 GB for all
48) and takes the whole range model to build.

:class:`BirdNETRangeMLP` runs BirdNET V2.4's range model in numpy/torch from the weights in
its .tflite file (sin/cos encoding of latitude, longitude and week, three ReLU layers of 256,
512 and 1,024 units, a 6,522-way sigmoid). The 1,024-d hidden layer costs a tenth of the
model; a species' column is then one dot product per place, so the heard species' columns
cost milliseconds. On load it is checked against the TFLite interpreter at probe points
(largest difference ~2e-6); a model whose graph does not match is refused and the caller
falls back to full tables.

:func:`range_evidence` returns the heard columns (rounded to float16 exactly like a cached
table, so likelihoods equal those from :func:`~.range_table.range_table`) and, when asked,
the totals, cached compactly per (model, gallery, week): one float64 per place (200 KB per
week over ``land-1deg``), checksummed like the tables. Range models other than BirdNET take
their full (small) tables.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.fileio import load_keyed_npy, save_keyed_npy, sha256_arrays
from geoforensics.core.geo.distance import check_coords
from geoforensics.core.paths import cache_dir
from geoforensics.core.species.birdnet_files import native_stderr_silenced
from geoforensics.core.species.checklists import YEAR_ROUND, RangeModel
from geoforensics.core.species.range_table import (
    location_totals,
    model_identity,
    range_table,
    to_table_dtype,
)
from geoforensics.core.species.ranges import BirdNETRangeModel

_TOTALS_FORMAT = "geoforensics-range-totals-v1"
#: Places per chunk of the all-species pass (6,522 float32 outputs each: ~27 MB a chunk).
_CHUNK = 1024
#: Points per block of the hidden layer's computation (16 MB of float32).
_POINT_CHUNK = 4096
#: Largest difference from the TFLite interpreter accepted when the weights are loaded.
_MATCH_TOLERANCE = 1e-4
_CACHE: dict[str, BirdNETRangeMLP | None] = {}
_LOCK = threading.Lock()


class BirdNETRangeMLP:
    """BirdNET V2.4's range model evaluated from its weights (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        constants, weights, biases = _read_weights(self.path)
        self._c = constants
        self._w = weights
        self._hidden_lock = threading.Lock()
        self._hidden_key: tuple[str, int] | None = None
        self._hidden: np.ndarray | None = None
        self._b = biases
        self.n_species = int(weights[3].shape[0])

    def _features(self, lat: np.ndarray, lon: np.ndarray, week: np.ndarray) -> np.ndarray:
        f32 = np.float32
        c = self._c
        offsets, two_pi, root = c["offsets"], c["two_pi"], c["sqrt"]
        a = ((lat + c["lat_add"]) * c["lat_scale"])[:, None] * two_pi + offsets
        b = ((lon + c["lon_add"]) * c["lon_scale"])[:, None] * two_pi + offsets
        w = ((week - c["week_sub"]) * c["week_scale"])[:, None] * two_pi + offsets
        mask = ((week > c["week_low"]).astype(f32) * (week < c["week_high"]).astype(f32))[:, None]
        parts = [np.sin(a) * root, np.sin(b) * root, np.sin(w) * root * mask]
        return np.concatenate(parts, axis=1).astype(f32)

    def hidden(self, coords: np.ndarray, week: int) -> np.ndarray:
        """(G, 1024) float32 last hidden layer at ``coords`` (G, 2) for one week (-1: year).

        Plain numpy (float32 BLAS): a check that only needs the heard species' columns does
        not pay torch's import."""
        points = np.asarray(coords, dtype=np.float32)
        weeks = np.full(len(points), float(week), dtype=np.float32)
        h = self._features(points[:, 0], points[:, 1], weeks)
        for layer in range(3):
            h = h @ self._w[layer].T
            h += self._b[layer]
            np.maximum(h, 0.0, out=h)
        return h

    def columns(self, hidden: np.ndarray, species_idx: np.ndarray) -> np.ndarray:
        """(G, n) float32 presence of the given species from :meth:`hidden`."""
        idx = np.asarray(species_idx, dtype=np.int64)
        logits = hidden @ self._w[3][idx].T
        logits += self._b[3][idx]
        # sigmoid without overflow warnings: 1 / (1 + exp(-x)) with exp clipped
        np.negative(logits, out=logits)
        np.clip(logits, -80.0, 80.0, out=logits)
        np.exp(logits, out=logits)
        logits += 1.0
        return np.reciprocal(logits, out=logits)

    def week_hidden(self, coords: np.ndarray, week: int) -> np.ndarray:
        """(G, 1024) float32 :meth:`hidden` at ``coords`` for ``week``, kept for the last
        (places, week) asked (100 MB at G = 25k): the species of every later clip of that
        week, and the second look of the same check, cost one small product each."""
        points = np.ascontiguousarray(coords, dtype=np.float32)
        key = (hashlib.sha1(points.tobytes()).hexdigest(), int(week))
        with self._hidden_lock:
            if self._hidden_key == key and self._hidden is not None:
                return self._hidden
        hidden = np.empty((len(points), self._w[2].shape[0]), dtype=np.float32)
        for start in range(0, len(points), _POINT_CHUNK):
            chunk = points[start : start + _POINT_CHUNK]
            hidden[start : start + len(chunk)] = self.hidden(chunk, week)
        with self._hidden_lock:
            self._hidden_key, self._hidden = key, hidden
        return hidden

    def columns_at(self, coords: np.ndarray, week: int, species_idx: np.ndarray) -> np.ndarray:
        """(G, n) float32 presence of the given species at ``coords`` in ``week``."""
        hidden = self.week_hidden(coords, week)
        idx = np.asarray(species_idx, dtype=np.int64)
        out = np.empty((len(hidden), len(idx)), dtype=np.float32)
        for start in range(0, len(hidden), _POINT_CHUNK):
            block = hidden[start : start + _POINT_CHUNK]
            out[start : start + len(block)] = self.columns(block, idx)
        return out

    def totals_at(self, coords: np.ndarray, week: int) -> np.ndarray:
        """(G,) :meth:`totals` at ``coords`` in ``week``."""
        return self.totals(self.week_hidden(coords, week))

    def presence(self, coords: np.ndarray, week: int) -> np.ndarray:
        """(G, S) float32 presence of every species (the TFLite model's output)."""
        hidden = self.hidden(coords, week)
        return self.columns(hidden, np.arange(self.n_species))

    def totals(self, hidden: np.ndarray) -> np.ndarray:
        """(G,) float64 ``Σ_s presence`` with each value rounded to float16 and clipped to
        [0, 1] first, as a cached range table stores it (summing float32 values instead is
        no faster here and differs ten times more from the table's sums)."""
        import torch

        w = torch.from_numpy(self._w[3])
        b = torch.from_numpy(self._b[3])
        out = np.empty(len(hidden), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, len(hidden), _CHUNK):
                h = torch.from_numpy(hidden[start : start + _CHUNK])
                p = torch.sigmoid(torch.addmm(b, h, w.T)).half().clamp_(0.0, 1.0)
                out[start : start + len(h)] = p.double().sum(dim=1).numpy()
        return out


def _read_weights(path: Path) -> tuple[dict[str, Any], list[np.ndarray], list[np.ndarray]]:
    """Constants and dense layers of the range model's graph, by tensor name."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise WeightsNotFoundError("the TFLite runtime (ai-edge-litert) is missing") from None

    with native_stderr_silenced():
        runner = Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        runner.allocate_tensors()
    index = {d["name"]: d["index"] for d in runner.get_tensor_details()}

    def tensor(name: str) -> np.ndarray:
        if name not in index:
            raise InputError(f"{path}: no tensor {name!r} (not BirdNET V2.4's range model)")
        return np.ascontiguousarray(runner.get_tensor(index[name]), dtype=np.float32)

    p = "BirdNET/MNET_CONVERT/"
    constants = {
        "offsets": tensor(p + "truediv_1"),
        "two_pi": tensor(p + "mul_1/x"),
        "sqrt": tensor(p + "Sqrt"),
        "lat_add": tensor(p + "add/y"),
        "lat_scale": tensor(p + "truediv;BirdNET/MNET_CONVERT/add_2/y"),
        "lon_add": tensor(p + "add_2/y"),
        "lon_scale": tensor(p + "truediv_2;BirdNET/MNET_CONVERT/truediv_2/y"),
        "week_sub": tensor(p + "SelectV2/t"),
        "week_scale": tensor(p + "truediv_4;BirdNET/MNET_CONVERT/range/limit"),
        "week_low": tensor(p + "Greater/y"),
        "week_high": tensor(p + "Less/y"),
    }
    names = [f"BirdNET/MNET_BLOCK_{i}_DENSE_1" for i in (1, 2, 3)]
    names.append("BirdNET/MNET_CLASS_ACTIVATIONS")
    weights = [tensor(f"{n}/MatMul") for n in names]
    biases = [tensor(f"{n}/BiasAdd/ReadVariableOp") for n in names]
    return constants, weights, biases


def _probe_matches(mlp: BirdNETRangeMLP, model: Any) -> bool:
    rng = np.random.default_rng(7)
    lat = rng.uniform(-80, 80, 24)
    lon = rng.uniform(-180, 180, 24)
    coords = np.stack([lat, lon], axis=1)
    for week in (YEAR_ROUND, 1, 23, 48):
        want = np.asarray(model.presence(lat, lon, week if week != YEAR_ROUND else None))
        got = mlp.presence(coords, week)
        if got.shape != want.shape or float(np.abs(got - want).max()) > _MATCH_TOLERANCE:
            return False
    return True


def birdnet_mlp(model: RangeModel) -> BirdNETRangeMLP | None:
    """The weight-level evaluator of a :class:`~.ranges.BirdNETRangeModel` (checked against
    its interpreter once per process), or None for any other model or a graph that differs."""

    if not isinstance(model, BirdNETRangeModel):
        return None
    key = model.identity
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    try:
        mlp: BirdNETRangeMLP | None = BirdNETRangeMLP(model.path)
        if mlp is not None and not _probe_matches(mlp, model):
            mlp = None
    except (InputError, WeightsNotFoundError, ValueError, KeyError):
        mlp = None
    with _LOCK:
        _CACHE[key] = mlp
    return mlp


# ---------------------------------------------------------------------- evidence + cache


@dataclass(frozen=True)
class RangeEvidence:
    """The heard species' columns (G, n) float16 and, when asked, the totals (G,) float64."""

    columns: np.ndarray
    totals: np.ndarray | None
    n_species: int


def _totals_files(model: RangeModel, points: np.ndarray, week: int) -> tuple[Path, Path, dict]:
    info = {
        "format": _TOTALS_FORMAT,
        "model": model_identity(model),
        "n_species": len(model.species),
        "coords_sha256": sha256_arrays(np.ascontiguousarray(points, dtype=np.float64)),
        "n_coords": len(points),
        "week": "year" if week == YEAR_ROUND else f"week{int(week)}",
    }
    key = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:32]
    folder = cache_dir("range_totals")
    return folder / f"{key}.npy", folder / f"{key}.json", info


def _read_totals(npy: Path, side: Path, info: dict, n: int) -> np.ndarray | None:
    totals = load_keyed_npy(npy, side, info)
    if totals is None or totals.shape != (n,) or totals.dtype != np.float64:
        return None
    return totals if np.all(np.isfinite(totals)) else None


def range_totals(
    model: RangeModel, coords: ArrayLike, week: int = YEAR_ROUND, cache: bool = True
) -> np.ndarray:
    """(G,) float64 summed presence per place for one week, cached compactly by content."""
    points = check_coords(coords, "range totals coordinates")
    week = int(week)
    npy, side, info = _totals_files(model, points, week)
    if cache:
        found = _read_totals(npy, side, info, len(points))
        if found is not None:
            return found
    mlp = birdnet_mlp(model)
    if mlp is not None:
        totals = mlp.totals_at(points, week)
    else:
        table = range_table(model, points, None if week == YEAR_ROUND else week, cache=cache)
        totals = location_totals(table)
    if cache:
        save_keyed_npy(npy, side, totals, info)
    return totals


def range_evidence(
    model: RangeModel,
    coords: ArrayLike,
    week: int,
    species_idx: ArrayLike,
    need_totals: bool = True,
    cache: bool = True,
) -> RangeEvidence:
    """Columns of ``species_idx`` (float16, as a cached table holds them) and the totals.

    BirdNET: from the weights (:class:`BirdNETRangeMLP`), no full table; other models: from
    their cached full table.
    """
    points = check_coords(coords, "range evidence coordinates")
    idx = np.asarray(species_idx, dtype=np.int64).reshape(-1)
    week = int(week)
    mlp = birdnet_mlp(model)
    if mlp is None:
        table = range_table(model, points, None if week == YEAR_ROUND else week, cache=cache)
        columns = table[:, idx]
    else:
        columns = to_table_dtype(mlp.columns_at(points, week, idx))
    totals = range_totals(model, points, week, cache=cache) if need_totals else None
    return RangeEvidence(columns=columns, totals=totals, n_species=len(model.species))


def prepare_range_totals(
    model: RangeModel,
    coords: ArrayLike,
    weeks: Sequence[int] | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Compute and cache the per-place totals of ``weeks`` (default: 1-48 and year-round)
    so that any later week's range evidence reads them (a week's all-species pass costs
    ~2 s on 2 cores; 49 weeks of ``land-1deg`` take ~2 min and ~10 MB). Weeks already
    cached are skipped. Returns counts of ``computed`` and ``cached`` weeks."""
    from tqdm.auto import tqdm

    points = check_coords(coords, "range totals coordinates")
    wanted = [YEAR_ROUND, *range(1, 49)] if weeks is None else [int(w) for w in weeks]
    counts = {"computed": 0, "cached": 0}
    bar = tqdm(wanted, desc="range totals", unit="week", disable=not progress)
    for week in bar:
        npy, side, info = _totals_files(model, points, week)
        if _read_totals(npy, side, info, len(points)) is not None:
            counts["cached"] += 1
            continue
        range_totals(model, points, week, cache=True)
        counts["computed"] += 1
    return counts


__all__ = [
    "BirdNETRangeMLP",
    "RangeEvidence",
    "birdnet_mlp",
    "prepare_range_totals",
    "range_evidence",
    "range_totals",
]
