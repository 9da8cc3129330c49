"""Split-conformal calibration of confidence regions (:mod:`.regions`), saved beside a model.

Raw posterior mass is rarely calibrated: a softmax at a training temperature, or a species
likelihood that treats species as independent, is usually over-confident. The X % region is
therefore grown to a threshold ``t(X)`` chosen on held-out data (the "adaptive prediction
sets" / highest-density recipe):

1. for each calibration item (a distribution over the gallery and its true place), the score
   ``s_i`` is the mass of all gallery points at least as probable as the one owning the true
   place's cell (:meth:`.regions.RegionGrid.scores`; 0 in the top place's cell, which every
   region holds; ``inf`` where the true place is beyond every gallery point's reach);
2. ``t(X)`` is the ``ceil((n + 1) X)``-th smallest score (:func:`conformal_threshold`;
   ``inf`` when that exceeds n, i.e. the region is every covered cell);
3. a new item's region holds the most probable points until their mass reaches ``t(X)``.

On exchangeable data the true place then falls inside with probability >= X (marginal
coverage; not per place or per continent, which the bench reports separately).

A :class:`Calibration` is one setting's thresholds (method kind, the gallery and region grid
it was computed on, range model / likelihood / week for species settings). A calibration
file (``MODEL/calibration.json``, or any file for species settings) holds a list of them:
``{"format": "geoforensics-calibration", "version": 1, "entries": [...]}``, written atomically;
:func:`find_calibration` picks the entry matching a setting. A damaged file raises
:class:`~geoforensics.core.errors.InputError` with one line naming it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write, sha256_arrays
from geoforensics.core.geo.regions import DEFAULT_LEVELS, RegionGrid

#: File name of a model folder's calibration.
CALIBRATION_FILE = "calibration.json"
CALIBRATION_FORMAT = "geoforensics-calibration"
CALIBRATION_VERSION = 1
#: Keys of ``setting`` that must match for a calibration to apply.
_KINDS = ("agclip", "species-range", "fused", "geoclip-image", "geoclip-text")


def conformal_threshold(scores: ArrayLike, level: float) -> float:
    """``t(X)``: the ``ceil((n + 1) X)``-th smallest of the n calibration scores (the
    ``ceil((n + 1) X) / n`` empirical quantile); ``inf`` when that rank exceeds n."""
    values = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    if values.size == 0:
        raise InputError("calibration: no calibration scores")
    if np.isnan(values).any():
        raise InputError("calibration: a conformal score is NaN")
    if not 0.0 < level < 1.0:
        raise InputError(f"calibration level {level}: must be in (0, 1)")
    n = values.size
    rank = math.ceil((n + 1) * level - 1e-9)
    return float(values[rank - 1]) if rank <= n else math.inf


def conformal_scores(
    grid: RegionGrid, probs: ArrayLike, truth: ArrayLike, chunk: int = 1
) -> np.ndarray:
    """(N,) scores of N distributions ``probs`` (N, G) over ``grid`` against true places
    ``truth`` (N, 2) (:meth:`RegionGrid.scores`)."""
    rows = np.asarray(probs, dtype=np.float64)
    places = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    if rows.ndim != 2 or len(rows) != len(places):
        raise InputError(f"calibration: {rows.shape} distributions for {len(places)} true places")
    return np.array([grid.scores(row, place)[0] for row, place in zip(rows, places, strict=True)])


@dataclass(frozen=True)
class Calibration:
    """Conformal thresholds of one setting.

    ``kind``: ``agclip``, ``species-range``, ``fused``, ``geoclip-image`` or ``geoclip-text``;
    ``setting``: what else must match (gallery name and SHA-256 of its coordinates, range
    model, likelihood, week known, fusion weight ...); ``thresholds``: level -> t(X) (``inf``
    allowed); ``n``: calibration items; ``res`` / ``max_km``: the region grid;
    ``data``: where the calibration items came from; ``coverage_at_raw``: the fraction of
    calibration items whose true place is inside the *uncalibrated* X % region (how
    over-confident the raw mass is).
    """

    kind: str
    setting: dict[str, Any]
    thresholds: dict[float, float]
    n: int
    res: int
    max_km: float
    data: str = ""
    coverage_at_raw: dict[float, float] = field(default_factory=dict)

    def threshold(self, level: float) -> float | None:
        """t(X) for ``level`` (None when this calibration has no such level)."""
        for key, value in self.thresholds.items():
            if math.isclose(key, level, abs_tol=1e-9):
                return value
        return None

    def describe(self) -> str:
        """One line: what was calibrated on how many items."""
        parts = [f"gallery {self.setting.get('gallery', '?')}"]
        if "week_known" in self.setting:
            parts.append("week known" if self.setting["week_known"] else "week unknown")
        if "range_model" in self.setting:
            parts.append(f"range model {self.setting['range_model']}")
        where = f"; {self.data}" if self.data else ""
        return f"conformal calibration of {self.kind} on {self.n} items ({', '.join(parts)}{where})"

    def matches(self, kind: str, setting: Mapping[str, Any]) -> bool:
        """Same kind and every key of ``setting`` equal."""
        return self.kind == kind and all(self.setting.get(k) == v for k, v in setting.items())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``inf`` thresholds as the string ``"inf"``)."""
        return {
            "kind": self.kind,
            "setting": dict(self.setting),
            "thresholds": {f"{k:g}": _num(v) for k, v in sorted(self.thresholds.items())},
            "coverage_at_raw": {f"{k:g}": v for k, v in sorted(self.coverage_at_raw.items())},
            "n": self.n,
            "h3_res": self.res,
            "max_km": self.max_km,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> Calibration:
        """Parse :meth:`as_dict`'s form; ``where`` names the file in errors."""
        try:
            kind = str(raw["kind"])
            setting = dict(raw["setting"])
            thresholds = {float(k): _parse_num(v) for k, v in dict(raw["thresholds"]).items()}
            coverage = {float(k): float(v) for k, v in dict(raw.get("coverage_at_raw", {})).items()}
            n, res, max_km = int(raw["n"]), int(raw["h3_res"]), float(raw["max_km"])
            data = str(raw.get("data", ""))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{where}: damaged calibration entry ({exc!r})") from None
        if kind not in _KINDS:
            raise InputError(f"{where}: unknown calibration kind {kind!r}")
        for level, value in thresholds.items():
            if not 0 < level < 1 or not (value == math.inf or 0.0 <= value <= 1.0 + 1e-6):
                raise InputError(f"{where}: bad threshold {value!r} at level {level:g}")
        if n < 1 or not math.isfinite(max_km) or max_km <= 0:
            raise InputError(f"{where}: damaged calibration entry (n={n}, max_km={max_km})")
        return cls(kind, setting, thresholds, n, res, max_km, data, coverage)


def _num(value: float) -> float | str:
    return value if math.isfinite(value) else "inf"


def _parse_num(value: Any) -> float:
    if value == "inf":
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"threshold {value!r} is not a number")
    return float(value)


def calibrate(
    kind: str,
    setting: Mapping[str, Any],
    grid: RegionGrid,
    scores: ArrayLike,
    levels: Sequence[float] = DEFAULT_LEVELS,
    data: str = "",
) -> Calibration:
    """A :class:`Calibration` from conformal ``scores`` (:func:`conformal_scores`) of the
    calibration items over ``grid``."""
    if kind not in _KINDS:
        raise InputError(f"calibration kind {kind!r}: choose one of {', '.join(_KINDS)}")
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    thresholds = {float(x): conformal_threshold(values, float(x)) for x in levels}
    raw = {float(x): float(np.mean(values <= float(x))) for x in levels}
    return Calibration(
        kind=kind,
        setting=dict(setting),
        thresholds=thresholds,
        n=int(values.size),
        res=grid.res,
        max_km=grid.max_km,
        data=data,
        coverage_at_raw=raw,
    )


def load_calibrations(path: str | Path) -> list[Calibration]:
    """Every entry of a calibration file; one-line :class:`InputError` when it is damaged."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such calibration file")
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{source}: damaged calibration file ({reason})") from None
    if not isinstance(raw, dict) or raw.get("format") != CALIBRATION_FORMAT:
        raise InputError(f"{source}: not a geoforensics calibration file")
    if raw.get("version") != CALIBRATION_VERSION:
        raise InputError(f"{source}: calibration format version {raw.get('version')!r}")
    entries = raw.get("entries")
    if not isinstance(entries, list):
        raise InputError(f"{source}: damaged calibration file (no entries list)")
    return [Calibration.from_dict(e if isinstance(e, dict) else {}, str(source)) for e in entries]


def save_calibration(path: str | Path, calibration: Calibration) -> Path:
    """Add ``calibration`` to the file at ``path`` (replacing an entry of the same kind and
    setting; a damaged or absent file is started afresh), written atomically."""
    target = Path(path)
    entries: list[Calibration] = []
    if target.is_file():
        try:
            entries = load_calibrations(target)
        except InputError:
            entries = []
    entries = [
        e for e in entries if not (e.kind == calibration.kind and e.setting == calibration.setting)
    ]
    entries.append(calibration)
    payload = {
        "format": CALIBRATION_FORMAT,
        "version": CALIBRATION_VERSION,
        "entries": [e.as_dict() for e in entries],
    }
    with atomic_write(target) as fh:
        json.dump(payload, fh, indent=1, allow_nan=False)
    return target


def find_calibration(
    path: str | Path | None, kind: str, setting: Mapping[str, Any]
) -> tuple[Calibration | None, str]:
    """The entry of the file at ``path`` for ``kind`` and ``setting``, and a note saying why
    there is none (absent file, no matching setting). A damaged file raises."""
    if path is None:
        return None, "uncalibrated: no calibration file"
    source = Path(path)
    if not source.is_file():
        return None, f"uncalibrated: no {source.name} (run geoforensics calibrate)"
    for entry in load_calibrations(source):
        if entry.matches(kind, setting):
            return entry, entry.describe()
    wanted = ", ".join(f"{k}={v}" for k, v in setting.items() if k != "gallery_sha256")
    return None, f"uncalibrated: {source} has no {kind} calibration for {wanted}"


def gallery_setting(name: str, coords: ArrayLike) -> dict[str, Any]:
    """The gallery part of a setting: its name and the SHA-256 of its coordinates."""

    return {"gallery": name, "gallery_sha256": sha256_arrays(np.asarray(coords, np.float64))}


def agclip_setting(gallery_name: str, coords: ArrayLike) -> dict[str, Any]:
    """Setting of an AG-CLIP calibration (saved in the model folder): the gallery."""
    return gallery_setting(gallery_name, coords)


def species_setting(
    range_model: str,
    likelihood: str,
    week_known: bool,
    gallery_name: str,
    coords: ArrayLike,
    area_prior: bool,
    effort_prior: str | None = None,
) -> dict[str, Any]:
    """Setting of a species-range calibration: range model spec, likelihood, whether the
    week is known, the gallery, whether the area prior is on and the effort prior's name
    (``"none"`` without one): a calibration only applies to the posterior it was made on."""
    return {
        "range_model": str(range_model),
        "likelihood": str(likelihood),
        "week_known": bool(week_known),
        "area_prior": bool(area_prior),
        "effort_prior": "none" if effort_prior is None else str(effort_prior),
        **gallery_setting(gallery_name, coords),
    }


__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "agclip_setting",
    "calibrate",
    "conformal_scores",
    "conformal_threshold",
    "find_calibration",
    "gallery_setting",
    "load_calibrations",
    "save_calibration",
    "species_setting",
]
