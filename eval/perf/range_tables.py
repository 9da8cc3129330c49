"""Section e: species range tables, batched vs one model call per location.

A range table (presence of every species at every gallery place) is what species evidence
reads; it is built once per gallery and week. This section times the batched build against
one call per place for the synthetic world's true ranges and for BirdNET's range model, and
checks they agree (``max |batched - per call|`` in each figure's note).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import GeoforensicsError
from geoforensics.core.geo.gallery import land_gallery
from geoforensics.core.species.range_table import compare_speed
from geoforensics.core.species.ranges import BirdNETRangeModel
from geoforensics.core.synth.ranges import SyntheticRangeModel
from geoforensics.eval.perf.fixtures import tiny_world
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
)


@register_section("e", "range_tables", title="range tables: batched vs one call per location")
def measure_range_tables(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section e: batched range tables vs one model call per location (``world``: the
    synthetic world whose true ranges are timed; None: the tiny world)."""
    land = land_gallery(1.0).coords
    rng = np.random.default_rng(0)
    figures: list[Figure] = []
    notes: list[str] = []
    root = tiny_world() if world is None else world
    models: list[tuple[str, Any, int]] = [
        ("synthetic world's true ranges", SyntheticRangeModel.load(root), settings.range_locations)
    ]
    try:
        models.append(("BirdNET V2.4 range model", BirdNETRangeModel(), 0))
    except GeoforensicsError as error:
        notes.append(f"BirdNET range model not measured: {error}")
    for label, model, count in models:
        count = count or settings.birdnet_range_locations
        coords = land[np.sort(rng.choice(len(land), count, replace=False))]
        result = compare_speed(model, coords, week=None)
        n_species = len(model.species)
        figures.append(
            Figure(
                f"e{len(figures) + 1}",
                f"{label}: {count:,} land places x {n_species:,} species",
                result["batched_s"],
                result["unbatched_s"],
                "s",
                note=f"max |batched - per call| {result['max_abs_diff']:.1e}",
            )
        )
    notes.append(
        "core.species.range_table.compare_speed: the cached-table code path (cache off), "
        "batched vs one call per location, year-round presence"
    )
    return Section("e", section_title("e"), figures, notes)
