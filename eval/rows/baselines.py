"""Baseline rows of paper Tables 1 and 3: naive and the species oracles.

``naive`` / ``naive-xcdc``
    a random training location per recording
    (:func:`~geoforensics.eval.baselines.naive_random_train_location`);
``species-oracle-VARIANT`` / ``species-oracle-VARIANT-xcdc``
    the synthetic world's true checklist at the true place (``full``, half the present species
    dropped, 10 kept), mapped linearly into GeoCLIP space and retrieved from the bench gallery
    (:func:`~geoforensics.train.tasks.species_oracle.run_species_oracle`; one oracle per seed
    scores every variant).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.eval.baselines import naive_random_train_location
from geoforensics.eval.presets import BenchPreset
from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import BenchData, BenchRow, RowContext, no_xcdc, register_row

#: Species-oracle variants (paper Table 1): full checklists, half the present species dropped,
#: 10 random present species kept.
ORACLE_VARIANTS: tuple[str, ...] = ("full", "drop50", "keep10")
_ORACLE_LABELS = {
    "full": "Species oracle (true checklist)",
    "drop50": "Species oracle (50% of species dropped)",
    "keep10": "Species oracle (10 random species kept)",
}


def _run_naive(context: RowContext) -> RowResult:
    """Paper Table 1 / 3 naive row: a random training location per recording."""
    train = context.data.split("train").coords()
    n = len(context.data.xcdc) if context.row.split == "xcdc" else len(context.data.split("test"))
    predictions = naive_random_train_location(train, n, seed=context.seed)
    return context.make_result(predictions, {"train_locations": len(train)})


def _no_true_ranges(data: BenchData) -> str | None:
    if data.synthetic_range_model_path is not None:
        return None
    return "needs a range model: only the synthetic world's true range model is wired in"


def _no_xcdc_or_true_ranges(data: BenchData) -> str | None:
    return no_xcdc(data) or _no_true_ranges(data)


def _oracle_results(context: RowContext) -> dict[str, Any]:
    """All species-oracle variants of one seed, computed once (one oracle trained on full
    checklists scores every variant, as in the paper)."""
    # Here, not at the top: the oracle's module loads Lightning (seconds; see training.py).
    from geoforensics.train.tasks.species_oracle import run_species_oracle

    data = context.data

    def compute() -> dict[str, Any]:
        extra = {}
        if data.has_xcdc():
            recordings = list(data.xcdc)
            extra["xcdc"] = (data.xcdc.coords(), [r.date for r in recordings])
        return run_species_oracle(
            data.root,
            range_model=data.synthetic_range_model_path,
            gallery=data.gallery,
            variants=ORACLE_VARIANTS,
            seed=context.seed,
            max_epochs=data.preset.oracle_epochs,
            extra_sets=extra,
        )

    results: dict[str, Any] = data.memo(("species-oracle", context.seed), compute)
    return results


def _oracle_budget(preset: BenchPreset) -> dict[str, Any]:
    return {"epochs": preset.oracle_epochs}


def _run_species_oracle(context: RowContext) -> RowResult:
    """Species-oracle rows: ``species-oracle-VARIANT`` on the test split,
    ``species-oracle-VARIANT-xcdc`` the same oracle on the XCDC recordings' true places."""
    variant = context.row.name.removeprefix("species-oracle-").removesuffix("-xcdc")
    key = f"xcdc:{variant}" if context.row.split == "xcdc" else variant
    oracle = _oracle_results(context)[key]
    result = context.make_result(
        oracle.predictions,
        {
            "variant": variant,
            "checklist_sizes": oracle.checklist_sizes,
            "training": oracle.training,
            "gallery": context.data.gallery.name,
        },
    )
    if not np.allclose(result.errors_km(), oracle.errors_km, rtol=1e-9, atol=1e-6):
        raise InputError(
            f"{context.row.name}: the oracle's recordings are not the bench's {context.row.split} "
            "split"
        )
    return result


register_row(
    BenchRow(
        name="naive",
        label="Naive (random train location)",
        table="T1",
        run=_run_naive,
        description="a random training location for each test recording",
    ),
)
register_row(
    BenchRow(
        name="naive-xcdc",
        label="Naive (random train location)",
        table="T3",
        split="xcdc",
        run=_run_naive,
        description="a random iNatSounds-format training location for each XCDC recording",
        unavailable=no_xcdc,
    ),
)
for variant in ORACLE_VARIANTS:
    register_row(
        BenchRow(
            name=f"species-oracle-{variant}",
            label=_ORACLE_LABELS[variant],
            table="T1",
            run=_run_species_oracle,
            uses_gallery=True,
            trains=True,
            budget=_oracle_budget,
            description=(
                f"checklist ({variant}) from the true range model at the true location -> "
                "linear map into GeoCLIP space -> retrieval"
            ),
            unavailable=_no_true_ranges,
        ),
    )
    register_row(
        BenchRow(
            name=f"species-oracle-{variant}-xcdc",
            label=_ORACLE_LABELS[variant],
            table="T3",
            split="xcdc",
            run=_run_species_oracle,
            uses_gallery=True,
            trains=True,
            budget=_oracle_budget,
            description=(
                f"the {variant} species oracle on the range model's checklists at the XCDC "
                "recordings' true places"
            ),
            unavailable=_no_xcdc_or_true_ranges,
        ),
    )
