"""Paper Table A1 rows: AG-CLIP's test embeddings retrieved from other galleries.

Each ``gallery-*`` row reuses the ``agclip`` row's recording embeddings (same seed) and
retrieves them from the union of its gallery specs
(:meth:`~geoforensics.eval.rows.base.BenchData.index_for`).
"""

from __future__ import annotations

from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import BenchRow, RowContext, register_row

#: Table A1 galleries (each a list of gallery specs, see :meth:`BenchData.gallery_for`).
GALLERIES: tuple[tuple[str, ...], ...] = (
    ("train",),
    ("val",),
    ("train-neighbours",),
    ("grid-1deg",),
    ("land-1deg",),
    ("land-0.5deg",),
    ("train", "land-1deg"),
    ("geoclip-100k",),
)
_GALLERY_ROWS = {"gallery-" + "-".join(specs): specs for specs in GALLERIES}


def _run_gallery(context: RowContext) -> RowResult:
    """Paper Table A1: AG-CLIP's recording embeddings retrieved from another gallery."""
    parent = context.result("agclip")
    specs = _GALLERY_ROWS[context.row.name]
    index = context.data.index_for(specs)
    top = index.search(parent.arrays["embeddings"], k=1)
    return context.make_result(
        top.coords[:, 0, :], {"gallery": "+".join(specs), "size": len(index)}
    )


for name, specs in _GALLERY_ROWS.items():
    register_row(
        BenchRow(
            name=name,
            label=f"AG-CLIP, gallery {' + '.join(specs)}",
            table="A1",
            run=_run_gallery,
            requires=("agclip",),
            description="AG-CLIP's test embeddings retrieved from this gallery",
        ),
    )
