"""``geoforensics bench``: run benchmark rows over seeds, resume, and write the paper's reports.

:func:`run_bench` runs the chosen rows (:mod:`geoforensics.eval.rows`) for seeds
``0..N-1``, skipping every (row, seed) whose saved result is complete and was made with the
same settings (:class:`~geoforensics.eval.results.ResultStore`), then writes into ``OUT``
(covering the rows run now and the rows that earlier runs into the same ``OUT`` finished with
the same settings and seeds):

- ``tables.md``: the paper's tables (Markdown, captioned with the data set, SYNTHETIC when it
  is the synthetic world), mean ± std over seeds;
- ``results.json``: every number (per seed and summarised), the settings and the files;
- ``cdf.png``: the error CDF of the Table 1 rows (paper Fig. 3 left);
- ``error_map.png``: median error per H3 cell of the main method (paper Fig. 3 right);
- ``coverage.md`` / ``coverage.json`` / ``reliability.png``: coverage of the calibrated
  confidence regions of the AG-CLIP, species-range and fused rows
  (:mod:`geoforensics.eval.coverage`);
- ``predictions/<row>.csv``: the public scorer's format, first seed (other seeds as
  ``<row>.seed<k>.csv``);
- ``rows/<row>/seed<k>/``: the saved row results (and each row's ``work/`` folder).

Presets (:mod:`geoforensics.eval.presets`) set the training budget of the rows that train a
model; rows that need no training ignore them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from geoforensics.core.errors import DatasetNotFoundError, GeoforensicsError, InputError
from geoforensics.core.fileio import atomic_write
from geoforensics.core.geo.metrics import aggregate_over_seeds
from geoforensics.eval.coverage import write_coverage
from geoforensics.eval.plots import plot_error_cdf, plot_error_map, pooled_errors
from geoforensics.eval.predictions_csv import write_predictions_csv
from geoforensics.eval.presets import BenchPreset, get_preset
from geoforensics.eval.results import ResultStore, RowResult, json_safe, metrics_json
from geoforensics.eval.rows import (
    BenchData,
    BenchRow,
    RowContext,
    builtin_rows,
    inatsounds_unavailable,
    resolve_rows,
)
from geoforensics.eval.rows.species_common import user_range_model
from geoforensics.eval.tables import TABLES, describe_dataset, grid_table, metrics_table, seeds_note

log = logging.getLogger(__name__)

BENCH_FORMAT = "geoforensics-bench"


def parse_list(text: str | Sequence[str] | None) -> list[str]:
    """``"a,b, c"`` (or a list) -> ``["a", "b", "c"]``; None -> []."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    return [item.strip() for item in items if item.strip()]


@dataclass
class BenchReport:
    """What a bench run did and wrote."""

    out_dir: Path
    rows: list[str]
    seeds: list[int]
    ran: list[tuple[str, int]] = field(default_factory=list)
    reused: list[tuple[str, int]] = field(default_factory=list)
    failed: dict[tuple[str, int], str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    included: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def _fingerprint(
    data: BenchData,
    row: BenchRow,
    digests: dict[str, str],
    registry: Mapping[str, BenchRow],
) -> dict[str, Any]:
    """The settings a row's result depends on, including those of the rows it requires; a
    saved result is reused only if they match."""
    fingerprint: dict[str, Any] = {
        "row": row.name,
        "version": row.version,
        "data": str(data.root),
        "split": row.split,
        "split_sha256": digests.setdefault(row.split, data.split_digest(row.split)),
        "train_sha256": digests.setdefault("train", data.split_digest("train")),
        "budget": None if row.budget is None else json_safe(row.budget(data.preset)),
        "gallery": list(data.gallery_specs) if row.uses_gallery else None,
        "requires": {
            name: _fingerprint(data, registry[name], digests, registry) for name in row.requires
        },
    }
    if row.inputs is not None:  # only then, so that other rows' saved fingerprints still match
        fingerprint["inputs"] = json_safe(row.inputs(data))
    return fingerprint


def run_bench(
    data: str | Path | None,
    preset: str | BenchPreset = "tiny",
    seeds: int = 1,
    rows: Sequence[str] | str | None = None,
    out: str | Path | None = None,
    gallery: Sequence[str] | str | None = None,
    xcdc: str | Path | None = None,
    progress: bool = True,
    registry: Mapping[str, BenchRow] | None = None,
    location_encoder_checkpoints: Mapping[str, str | Path] | None = None,
    range_model: str | None = None,
    model: str | Path | None = None,
) -> BenchReport:
    """Run benchmark rows for seeds ``0..seeds-1`` (resuming finished ones) and write the
    reports (see the module docstring). Expected failures of single rows are collected in the
    report (the other rows still run); a bad ``data`` folder raises DatasetNotFoundError.
    ``location_encoder_checkpoints`` (``{"sinr": PATH, "satclip": PATH}``) are user checkpoints
    for the Table 2 rows (otherwise those encoders are pretrained on the synthetic world's
    range model).

    ``data`` may be an XCDC folder alone (or None with ``xcdc``): then only the rows that need
    no iNatSounds-format split run (species range on the true lists, k-species draws, a given
    ``model``, TaxaBind; :attr:`~geoforensics.eval.rows.BenchRow.xcdc_only`), the gallery
    defaults to ``land-1deg``, and every other row is skipped with the reason (also when
    named in ``rows``).
    ``range_model``: the species rows' range model (``birdnet``, ``sinr:PATH``, ``world:DIR``);
    ``model``: a model folder for the ``model-xcdc`` row."""
    started = time.perf_counter()
    chosen_preset = get_preset(preset)
    if seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {seeds}")
    bench_data = BenchData(
        data,
        chosen_preset,
        parse_list(gallery) or None,
        xcdc,
        progress,
        location_encoder_checkpoints=location_encoder_checkpoints,
        range_model=range_model,
        model_dir=model,
    )
    if bench_data.range_model_spec is not None:  # a bad --range-model fails at once
        user_range_model(bench_data.range_model_spec)
    known = dict(registry) if registry is not None else builtin_rows()
    out_dir = Path(out if out is not None else f"bench-{chosen_preset.name}").expanduser()
    seed_list = list(range(seeds))
    requested = parse_list(rows)
    skipped: dict[str, str] = {}
    if not requested:
        requested = []
        for name, row in known.items():
            reason = inatsounds_unavailable(bench_data, row)
            if reason is None and row.unavailable is not None:
                reason = row.unavailable(bench_data)
            if reason is None:
                requested.append(name)
            else:
                skipped[name] = reason
    elif not bench_data.has_inat:  # XCDC alone: named rows that need iNatSounds are skipped
        resolve_rows(requested, known)  # unknown names are still an error
        for name in list(requested):
            reason = inatsounds_unavailable(bench_data, known[name])
            if reason is not None:
                skipped[name] = reason
                requested.remove(name)
    order = {name: i for i, name in enumerate(known)}
    plan = resolve_rows(requested, known)  # requirements first, for running
    if any(row.split == "xcdc" for row in plan) and not bench_data.has_xcdc():
        where = bench_data.xcdc_root or bench_data.root / "xcdc"
        raise DatasetNotFoundError(
            f"{where}: no xcdc_recordings.csv for the XCDC rows "
            f"({', '.join(r.name for r in plan if r.split == 'xcdc')}); give --xcdc DIR"
        )

    store = ResultStore(out_dir)
    report = BenchReport(out_dir, [r.name for r in plan], seed_list, skipped=skipped)
    digests: dict[str, str] = {}
    tasks = [(row, seed) for seed in seed_list for row in plan]
    bar = tqdm(tasks, desc="bench", unit="row", disable=not progress, dynamic_ncols=True)
    for row, seed in bar:
        bar.set_description(f"{row.name} seed {seed}")
        fingerprint = _fingerprint(bench_data, row, digests, known)
        if store.is_finished(row.name, seed, fingerprint):
            report.reused.append((row.name, seed))
            continue
        failed_deps = [d for d in row.requires if (d, seed) in report.failed]
        if failed_deps:
            report.failed[(row.name, seed)] = f"requires {', '.join(failed_deps)}, which failed"
            continue
        context = RowContext(
            data=bench_data,
            row=row,
            seed=seed,
            work_dir=store.work_dir(row.name, seed),
            dependencies={d: store.load(d, seed) for d in row.requires},
        )
        row_started = time.perf_counter()
        try:
            result = row.run(context)
        except GeoforensicsError as exc:
            report.failed[(row.name, seed)] = str(exc)
            bar.write(f"{row.name} seed {seed}: failed: {exc}")
            continue
        if result.row != row.name or result.seed != seed:
            raise InputError(
                f"row {row.name!r} seed {seed} returned a result for {result.row!r} "
                f"seed {result.seed}"
            )
        result.extra.setdefault("seconds", round(time.perf_counter() - row_started, 3))
        store.save(result, fingerprint)
        report.ran.append((row.name, seed))
    bar.close()

    # Rows finished by earlier runs with the same settings join the reports, so a bench can
    # be built up row by row (``--rows a`` then ``--rows b``).
    planned = {r.name for r in plan}
    for row in known.values():
        if row.name in planned or not (store.root / row.name).is_dir():
            continue
        fingerprint = _fingerprint(bench_data, row, digests, known)
        if all(store.is_finished(row.name, s, fingerprint) for s in seed_list):
            report.included.append(row.name)
    listed = sorted(
        [*plan, *(known[n] for n in report.included)], key=lambda r: order[r.name]
    )  # registry order, for the reports
    finished = {*report.ran, *report.reused, *((n, s) for n in report.included for s in seed_list)}
    results: dict[str, list[RowResult]] = {}
    for row in listed:  # only results made with the current settings (never a stale one)
        found = [store.load(row.name, s) for s in seed_list if (row.name, s) in finished]
        if found:
            results[row.name] = found
    write_reports(out_dir, bench_data, listed, seed_list, results, report)
    report.seconds = time.perf_counter() - started
    return report


# ------------------------------------------------------------------------------- reports


def _caption(data: BenchData, split: str, count: int, n_seeds: int) -> str:
    if split == "xcdc":
        assert data.xcdc_root is not None
        info = describe_dataset(data.xcdc_root, "XCDC")
        base = info.caption("XCDC dawn choruses", count)
    else:
        base = data.dataset.caption("test split", count)
    return f"{base} {seeds_note(n_seeds)} Preset `{data.preset.name}`."


def render_tables(
    data: BenchData,
    plan: Sequence[BenchRow],
    seeds: Sequence[int],
    results: Mapping[str, list[RowResult]],
) -> str:
    """``tables.md``: every table that has finished rows, in the paper's order."""
    splits = "iNatSounds-format splits" if data.has_inat else "XCDC only (no iNatSounds splits)"
    parts = [
        "# geoforensics bench",
        "",
        data.dataset.caption(splits)
        + f" Preset `{data.preset.name}` ({data.preset.description}); seeds "
        + f"{', '.join(map(str, seeds))}; gallery `{'+'.join(data.gallery_specs)}`.",
        "",
    ]
    for table in TABLES.values():
        members = [r for r in plan if r.table == table.id and r.name in results]
        if not members:
            continue
        first = results[members[0].name][0]
        n_seeds = max(len(results[r.name]) for r in members)
        caption = _caption(data, members[0].split, len(first), n_seeds)
        if table.grid:
            columns: list[str] = []
            cells: dict[str, dict[str, list[Any]]] = {}
            for row in members:
                assert row.column is not None
                if row.column not in columns:
                    columns.append(row.column)
                cells.setdefault(row.label, {})[row.column] = [
                    r.metrics() for r in results[row.name]
                ]
            parts.append(grid_table(table.title, caption, cells, columns))
        else:
            lines = [(r.label, [res.metrics() for res in results[r.name]]) for r in members]
            parts.append(metrics_table(table.title, caption, lines))
    if len(parts) == 4:
        parts.append("No finished rows.\n")
    return "\n".join(parts)


def _main_row(plan: Sequence[BenchRow], results: Mapping[str, list[RowResult]]) -> BenchRow | None:
    """The error map's method: AG-CLIP when it ran, else the Table 1 row with the lowest mean
    median error."""
    candidates = [r for r in plan if r.table == "T1" and r.split == "test" and r.name in results]
    if not candidates:
        return None
    for row in candidates:
        if row.name == "agclip":
            return row

    def mean_median(row: BenchRow) -> float:
        values = [res.metrics().median_km for res in results[row.name]]
        return sum(values) / len(values)

    return min(candidates, key=mean_median)


def write_reports(
    out_dir: Path,
    data: BenchData,
    plan: Sequence[BenchRow],
    seeds: Sequence[int],
    results: Mapping[str, list[RowResult]],
    report: BenchReport,
) -> None:
    """Write tables.md, results.json, cdf.png, error_map.png and predictions/*.csv."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = report.files
    tables_md = out_dir / "tables.md"
    with atomic_write(tables_md) as fh:
        fh.write(render_tables(data, plan, seeds, results))
    files["tables"] = tables_md

    for row in plan:
        for result in results.get(row.name, []):
            suffix = "" if result.seed == min(seeds) else f".seed{result.seed}"
            path = out_dir / "predictions" / f"{row.name}{suffix}.csv"
            write_predictions_csv(path, result.ids, result.predictions)
            if not suffix:
                files[f"predictions/{row.name}"] = path

    cdf_rows = [r for r in plan if r.table == "T1" and r.split == "test" and r.name in results]
    caption = data.dataset.short_caption("test split")
    if cdf_rows:
        errors = {
            r.label: pooled_errors([x.errors_km() for x in results[r.name]]) for r in cdf_rows
        }
        files["cdf"] = plot_error_cdf(errors, out_dir / "cdf.png", caption=caption)
    main = _main_row(plan, results)
    if main is not None:
        first = results[main.name][0]
        plot_error_map(
            first.truth,
            first.errors_km(),
            out_dir / "error_map.png",
            res=data.preset.error_map_res,
            title=f"Median error per cell: {main.label}, seed {first.seed}",
            caption=caption,
        )
        files["error_map"] = out_dir / "error_map.png"
    # Confidence-region coverage: coverage.json / coverage.md / reliability.png.
    files.update(write_coverage(out_dir, data, results, {r.name: r.label for r in plan}))

    rows_json: dict[str, Any] = {}
    for row in plan:
        per_seed = results.get(row.name, [])
        entry: dict[str, Any] = {
            "label": row.label,
            "table": row.table,
            "column": row.column,
            "split": row.split,
            "description": row.description,
            "seeds": {str(r.seed): metrics_json(r.metrics()) for r in per_seed},
            "extra": {str(r.seed): r.extra for r in per_seed},
        }
        if per_seed:
            stats = aggregate_over_seeds([r.metrics() for r in per_seed])
            entry["summary"] = {
                key: {"mean": s.mean, "std": s.std, "n": s.n} for key, s in stats.items()
            }
            report.summary[row.name] = entry["summary"]
        failures = {str(s): msg for (name, s), msg in report.failed.items() if name == row.name}
        if failures:
            entry["failed"] = failures
        rows_json[row.name] = entry
    payload = {
        "format": BENCH_FORMAT,
        "dataset": {
            "root": str(data.root),
            "name": data.dataset.name,
            "synthetic": data.dataset.synthetic,
            "world": data.dataset.world,
            "xcdc_root": None if data.xcdc_root is None else str(data.xcdc_root),
            "inatsounds": data.has_inat,
            "range_model": data.range_model_spec,
            "model": None if data.model_dir is None else str(data.model_dir),
        },
        "preset": {
            "name": data.preset.name,
            "description": data.preset.description,
            "train": data.preset.train,
        },
        "seeds": list(seeds),
        "gallery": list(data.gallery_specs),
        "metrics_note": (
            "median_km/mean_km in km; acc@X are fractions; invalid predictions count as misses "
            "and as the largest possible error (pi*R km)"
        ),
        "tables": {
            t.id: {"title": t.title, "rows": [r.name for r in plan if r.table == t.id]}
            for t in TABLES.values()
        },
        "rows": rows_json,
        "skipped_rows": report.skipped,
        "included_from_earlier_runs": report.included,
        "run": {
            "ran": [list(x) for x in report.ran],
            "reused": [list(x) for x in report.reused],
        },
        "files": {k: str(v.relative_to(out_dir)) for k, v in sorted(files.items())},
    }
    results_json = out_dir / "results.json"
    with atomic_write(results_json) as fh:
        json.dump(json_safe(payload), fh, indent=1, allow_nan=False)
    files["results"] = results_json
