"""Section h: species range evidence (BirdNET range model over ``land-1deg``).

Today's path builds (or reads from its 327 MB cache) the week's full 6,522-species range
table, then the likelihood over it; the new path reads only the heard species' columns from
the range model's weights plus per-place totals cached per week. Both run for a lone species
and a chorus, on a week never seen (nothing cached) and on a cached week, with the cache bytes
per week; the target is < 2 s per check, and the two paths must give the same likelihood to
float16 rounding.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import GeoforensicsError
from geoforensics.core.geo.gallery import resolve_gallery
from geoforensics.core.species.likelihood import (
    SpeciesLikelihood,
    columns_log_likelihood,
    draws_of,
)
from geoforensics.core.species.names import match_species
from geoforensics.core.species.range_evidence import (
    _totals_files,
    birdnet_mlp,
    range_evidence,
    range_totals,
)
from geoforensics.core.species.range_table import range_table, range_table_files
from geoforensics.core.species.ranges import BirdNETRangeModel
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
    timed,
)
from geoforensics.eval.perf.memory import MB

#: Species lists of section h: a lone widespread species and a small chorus (BirdNET names).
LONE_SPECIES = ("Zonotrichia capensis",)
CHORUS = ("Junco hyemalis", "Poecile atricapillus", "Turdus migratorius", "Spinus pinus")


def _evidence_today(model: Any, coords: np.ndarray, week: int, idx: np.ndarray, rule: str,
                    cache: bool) -> np.ndarray:  # fmt: skip
    """Today's path: the week's full range table, then the likelihood over it."""
    table = range_table(model, coords, week, cache=cache)
    return SpeciesLikelihood(table, model=rule).log_likelihood(idx)


def _evidence_new(model: Any, coords: np.ndarray, week: int, idx: np.ndarray, rule: str,
                  cache: bool) -> np.ndarray:  # fmt: skip
    """The new path: heard columns from the weights, totals per week (cached)."""
    weights = np.ones(idx.size)
    need = draws_of(weights, rule) > 0
    found = range_evidence(model, coords, week, idx, need_totals=need, cache=cache)
    return columns_log_likelihood(found.columns, weights, rule, found.totals, found.n_species)


@register_section(
    "h",
    "species_evidence",
    title="species evidence: heard columns + cached totals vs full range tables",
)
def measure_species_evidence(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section h: range evidence of a lone species and a chorus, today's path vs the new one
    (same run, same gallery), on a week never seen (nothing cached) and on a cached week;
    ``world`` is not used."""
    notes: list[str] = []
    try:
        model = BirdNETRangeModel()
    except GeoforensicsError as error:
        return Section("h", section_title("h"), [], [f"BirdNET not measured: {error}"])
    start = time.perf_counter()
    mlp = birdnet_mlp(model)
    load_s = time.perf_counter() - start
    if mlp is None:
        return Section("h", section_title("h"), [], ["BirdNET's range graph differs: no fast path"])
    coords = resolve_gallery(settings.species_gallery).coords
    species = list(model.species)
    lists = {
        "lone species (focal)": (match_species(list(LONE_SPECIES), species).indices, "focal"),
        f"chorus of {len(CHORUS)} (focal)": (match_species(list(CHORUS), species).indices, "focal"),
    }
    figures: list[Figure] = []
    worst = 0.0
    where = f"{settings.species_gallery}, {len(coords):,} places x {len(species):,} species"
    new_week, cached_week = 30, 31
    range_table(model, coords, cached_week)  # today's cache for the cached-week figures
    range_totals(model, coords, cached_week)  # the new cache
    for label, (idx, rule) in lists.items():
        for when, week, cache in (
            ("new week", new_week, False),
            ("cached week", cached_week, True),
        ):
            today_s, today = timed(
                functools.partial(_evidence_today, model, coords, week, idx, rule, cache)
            )
            ours_s, ours = timed(
                functools.partial(_evidence_new, model, coords, week, idx, rule, cache)
            )
            worst = max(worst, float(np.max(np.abs(today - ours))))
            key = f"h{len(figures) + 1}"
            name = f"{label}, {when}: {where}"
            met = ours_s < 2.0
            figures.append(Figure(key, name, ours_s, today_s, "s", target="< 2 s", met=met))
    table_file = range_table_files(model, coords, cached_week)[0]
    totals_file = _totals_files(model, coords, cached_week)[0]
    table_mb, totals_mb = table_file.stat().st_size / MB, totals_file.stat().st_size / MB
    figures.append(Figure(f"h{len(figures) + 1}", "cache per week", totals_mb, table_mb, "MB"))
    notes.append(
        f"largest |log-likelihood difference| between the paths {worst:.1e} (float16 "
        "rounding of a few entries); a new week's chorus pays the all-species pass once for "
        "its totals (cached after), a lone focal species needs no totals"
    )
    notes.append(f"weights read and checked against the TFLite interpreter once: {load_s:.2f} s")
    return Section("h", section_title("h"), figures, notes)
