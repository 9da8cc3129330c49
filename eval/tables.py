"""Markdown tables in the paper's format, with a caption naming the data set.

Every benchmark table has one row per method and the paper's columns: median error (km) and
accuracy within 25 / 200 / 750 / 2,500 km (%), as ``mean ± std`` over seeds when there is more
than one seed (sample std, ddof = 1). :func:`metrics_table` renders that layout (paper Tables
1, 2, 3 left, 4 and A1); :func:`grid_table` renders one metric over a grid of rows and columns
(Table 3 right: geolocation from subsets of 1 / 2 / 5 / 10 species).

Each table carries a caption line saying which data set it was computed on, and
``SYNTHETIC`` when the data came from ``geoforensics data synth`` (detected from
``ROOT/world/world.json``, or for an XCDC folder copied out of a world, from its
``synthetic://`` recording URLs), so numbers on the stand-in world are never mistaken for real
ones.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoforensics.core.errors import InputError
from geoforensics.core.geo.metrics import GeoMetrics, MeanStd, aggregate_over_seeds

#: (metric key, column header) of the paper's Table 1 layout.
METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("median_km", "Median error (km) ↓"),
    ("acc@25km", "25 km (%) ↑"),
    ("acc@200km", "200 km (%) ↑"),
    ("acc@750km", "750 km (%) ↑"),
    ("acc@2500km", "2,500 km (%) ↑"),
)


@dataclass(frozen=True)
class TableInfo:
    """A benchmark table: its id (``T1`` ...), title, and whether it is a grid table."""

    id: str
    title: str
    grid: bool = False


#: The benchmark's tables, in the order ``tables.md`` lists them.
TABLES: dict[str, TableInfo] = {
    t.id: t
    for t in (
        TableInfo("T1", "Table 1: geolocation methods on the test split"),
        TableInfo("T2", "Table 2: location-encoder ablation (retrieval)"),
        TableInfo(
            "T2a",
            "Table 2a: audio-encoder ablation (AG-CLIP retrieval; MobileNetV3 is the agclip row)",
        ),
        TableInfo("T3", "Table 3 (left): geolocation on XCDC dawn choruses"),
        TableInfo(
            "T3-species",
            "Table 3 (right): XCDC geolocation from subsets of k species",
            grid=True,
        ),
        TableInfo(
            "T4",
            "Table 4: spatiotemporal aggregation (AG-CLIP embeddings averaged per H3 cell of "
            "the true location, optionally per month or week; scored per recording)",
        ),
        TableInfo("A1", "Table A1: retrieval galleries"),
        TableInfo(
            "A2",
            "Table A2: pooling AG-CLIP's window outputs over a recording (mean, max, k-means "
            "k = 5 largest cluster, transformer over frozen window features)",
        ),
    )
}


# ----------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class DatasetInfo:
    """What a table was computed on: a short name, whether it is synthetic, the world's info."""

    root: Path
    name: str
    synthetic: bool
    world: dict[str, Any]

    def caption(self, split: str, count: int | None = None) -> str:
        """One caption line: data set, split and count; SYNTHETIC data say so first."""
        n = f", {count:,} recordings" if count is not None else ""
        if self.synthetic:
            return (
                f"Data: **SYNTHETIC** — geoforensics synthetic world ({self._origin()}) at "
                f"`{self.root}`, {split}{n}; invented species and sounds, not real recordings."
            )
        return f"Data: {self.name} at `{self.root}`, {split}{n}."

    def _origin(self) -> str:
        """``preset P, seed S`` of the world; an XCDC folder copied out of one says so."""
        if not self.world:
            return "an XCDC folder of one: synthetic:// recording URLs"
        return f"preset {self.world.get('preset', '?')}, seed {self.world.get('seed', '?')}"

    def short_caption(self, split: str) -> str:
        """A plain one-line caption for figures (no path, no Markdown)."""
        if self.synthetic:
            return (
                f"SYNTHETIC data (geoforensics synthetic world, {self._origin()}), "
                f"{split}; not real recordings"
            )
        return f"{self.name} ({self.root.name}), {split}"


def _world_json(root: Path) -> dict[str, Any] | None:
    for folder in (root, root.parent):
        marker = folder / "world" / "world.json"
        if marker.is_file():
            try:
                data = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            return data if isinstance(data, dict) else None
    return None


#: URL prefix of the XCDC-format rows of ``geoforensics data synth``.
SYNTHETIC_URL = "synthetic://"


def _synthetic_xcdc(root: Path) -> bool:
    """Whether ``root`` (or ``root/xcdc``) holds an XCDC CSV whose first row is synthetic."""
    for csv_path in (root / "xcdc_recordings.csv", root / "xcdc" / "xcdc_recordings.csv"):
        if not csv_path.is_file():
            continue
        try:
            with open(csv_path, newline="", encoding="utf-8-sig") as fh:
                first = next(csv.DictReader(fh), None)
        except (OSError, UnicodeDecodeError, csv.Error):
            return False
        return bool(first and str(first.get("url") or "").startswith(SYNTHETIC_URL))
    return False


def describe_dataset(root: str | Path, name: str = "iNatSounds 2024") -> DatasetInfo:
    """Describe a data root; a synthetic world (``world/world.json`` with ``synthetic``) is
    recognised at ``root`` or its parent (the XCDC folder of a world), an XCDC folder copied
    out of one (no ``test.json``) by its ``synthetic://`` URLs."""
    base = Path(root).expanduser().resolve()
    world = _world_json(base)
    synthetic = bool(world and world.get("synthetic")) or (
        world is None and not (base / "test.json").is_file() and _synthetic_xcdc(base)
    )
    return DatasetInfo(
        root=base,
        name=f"SYNTHETIC {name}-format world" if synthetic else name,
        synthetic=synthetic,
        world=world or {},
    )


# ------------------------------------------------------------------------ formatting


def _format_number(key: str, value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if key.startswith("acc@"):
        return f"{100.0 * value:.1f}"
    if abs(value) < 10:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def format_stat(key: str, stat: MeanStd) -> str:
    """``mean ± std`` (or ``mean`` for one seed); accuracies in percent, errors in km."""
    mean = _format_number(key, stat.mean)
    if stat.n <= 1:
        return mean
    return f"{mean} ± {_format_number(key, stat.std)}"


def seeds_note(n_seeds: int) -> str:
    """Caption note on how values over seeds are shown."""
    if n_seeds <= 1:
        return "One seed."
    return f"Mean ± std (sample, ddof 1) over {n_seeds} seeds."


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def metrics_table(
    title: str,
    caption: str,
    rows: Sequence[tuple[str, Sequence[GeoMetrics]]],
    columns: Sequence[tuple[str, str]] = METRIC_COLUMNS,
) -> str:
    """Markdown table: one row per (label, per-seed metrics), one column per metric."""
    lines = [f"### {title}", "", caption, ""]
    lines.append("| Method | " + " | ".join(header for _, header in columns) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in columns) + " |")
    for label, per_seed in rows:
        if not per_seed:
            raise InputError(f"table {title!r}: row {label!r} has no results")
        stats = aggregate_over_seeds(list(per_seed))
        cells = [format_stat(key, stats[key]) for key, _ in columns]
        lines.append(f"| {_escape(label)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def grid_table(
    title: str,
    caption: str,
    cells: Mapping[str, Mapping[str, Sequence[GeoMetrics]]],
    columns: Sequence[str],
    metric: str = "median_km",
    metric_label: str | None = None,
) -> str:
    """Markdown grid: rows are the keys of ``cells``, columns the given column keys, each
    cell one metric (``mean ± std`` over seeds); a missing cell shows ``–``."""
    label = metric_label or dict(METRIC_COLUMNS).get(metric, metric)
    lines = [f"### {title}", "", caption, "", f"Cells: {label}.", ""]
    lines.append("| Method | " + " | ".join(_escape(c) for c in columns) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in columns) + " |")
    for row_label, row_cells in cells.items():
        values = []
        for column in columns:
            per_seed = row_cells.get(column)
            if not per_seed:
                values.append("–")
                continue
            stats = aggregate_over_seeds(list(per_seed))
            if metric not in stats:
                raise InputError(f"table {title!r}: unknown metric {metric!r}")
            values.append(format_stat(metric, stats[metric]))
        lines.append(f"| {_escape(row_label)} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"
