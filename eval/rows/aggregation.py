"""Paper Table 4 rows: AG-CLIP's recording embeddings averaged per group of the true location.

Each ``aggregation-*`` row reuses the ``agclip`` row's test embeddings (same seed), groups the
recordings by the H3 cell (res 5 or 6) of their true location, optionally also by month or
week (:class:`~geoforensics.eval.aggregation.Grouping`), and retrieves once per group; scored
per recording. ``aggregation-none`` is the ``agclip`` row itself.
"""

from __future__ import annotations

from geoforensics.eval.aggregation import Grouping, aggregate_and_retrieve
from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import BenchRow, RowContext, register_row

#: Table 4 groupings: (H3 resolution, time period or None); None = each recording alone.
AGGREGATIONS: tuple[tuple[int, str | None] | None, ...] = (
    None,
    (5, None),
    (6, None),
    (5, "month"),
    (6, "month"),
    (5, "week"),
    (6, "week"),
)


def _aggregation_name(spec: tuple[int, str | None] | None) -> str:
    if spec is None:
        return "aggregation-none"
    return f"aggregation-{Grouping(*spec).name}"


_AGGREGATION_SPECS = {_aggregation_name(spec): spec for spec in AGGREGATIONS}


def _run_aggregation(context: RowContext) -> RowResult:
    """Paper Table 4: average AG-CLIP recording embeddings per H3 cell (and period) of the
    true location, retrieve once per group; scored per recording."""
    parent = context.result("agclip")
    spec = _AGGREGATION_SPECS[context.row.name]
    if spec is None:
        return context.make_result(parent.predictions, {"grouping": None})
    grouping = Grouping(*spec)
    grouped = aggregate_and_retrieve(
        parent.arrays["embeddings"],
        parent.truth,
        context.data.retrieval_index,
        grouping,
        parent.dates,
    )
    sizes = grouped.group_sizes
    return context.make_result(
        grouped.predictions,
        {
            "grouping": grouping.name,
            "groups": grouped.n_groups,
            "mean_group_size": float(sizes.mean()),
            "recordings_in_groups_of_2_or_more": int(sizes[sizes > 1].sum()),
        },
    )


def _aggregation_label(spec: tuple[int, str | None] | None) -> str:
    if spec is None:
        return "AG-CLIP, each recording alone"
    return f"AG-CLIP, grouped by {Grouping(*spec).label}"


for spec in AGGREGATIONS:
    register_row(
        BenchRow(
            name=_aggregation_name(spec),
            label=_aggregation_label(spec),
            table="T4",
            run=_run_aggregation,
            requires=("agclip",),
            uses_gallery=True,
            description="AG-CLIP embeddings averaged per group of the true location",
        ),
    )
