"""The benchmark's rows: one module per table or kind of row, and the public API.

Every row module registers its rows at import time (:func:`~.base.register_row`); importing
this package imports them all, so the registry is complete. :func:`builtin_rows` returns the
registry in :data:`ROW_MODULES` order (the order of ``geoforensics bench --list-rows`` and of
the reports), each module's rows in registration order.

- :mod:`.base`: :class:`BenchRow`, :class:`BenchData`, :class:`RowContext`, the registry;
- :mod:`.training`: training and inference shared by the rows that run an audio model;
- :mod:`.species_common`: range model, species lists and detections of the species rows;
- row modules: :mod:`.baselines` (naive, species oracles), :mod:`.trained` (Table 1 trained
  rows, hierarchical), :mod:`.aggregation` (Table 4), :mod:`.gallery` (Table A1),
  :mod:`.retrieval` (GeoCLAP, TaxaBind), :mod:`.location` (Table 2), :mod:`.encoders`
  (Table 2a), :mod:`.pooling` (Table A2), :mod:`.species` (species range), :mod:`.fusion`
  (AG-CLIP x species range), :mod:`.model` (a given model on XCDC).
"""

from __future__ import annotations

from collections.abc import Callable

from geoforensics.core.errors import InputError
from geoforensics.eval.rows import (
    aggregation,
    baselines,
    encoders,
    fusion,
    gallery,
    location,
    model,
    pooling,
    retrieval,
    species,
    trained,
)
from geoforensics.eval.rows.base import (
    ROW_SPLITS,
    BenchData,
    BenchRow,
    RowContext,
    RowRegistry,
    inatsounds_unavailable,
    register_row,
    registered_modules,
    registered_rows,
    resolve_rows,
)
from geoforensics.eval.rows.training import (
    predict_with_model,
    train_row_model,
    training_config_dict,
    training_extra,
)

#: The row modules (last name part) in the order of :func:`builtin_rows`: the paper's tables,
#: then the rest.
ROW_MODULES: tuple[str, ...] = tuple(
    module.__name__.rpartition(".")[2]
    for module in (
        baselines,
        trained,
        aggregation,
        gallery,
        retrieval,
        location,
        encoders,
        pooling,
        species,
        fusion,
        model,
    )
)

#: Rows whose availability depends only on installed weights (``bench --list-rows`` says
#: which are unavailable and the command that fixes it).
WEIGHTS_CHECKS: dict[str, Callable[[], str | None]] = {
    **retrieval.WEIGHTS_CHECKS,
    **encoders.WEIGHTS_CHECKS,
}


def builtin_rows(module: str | None = None) -> RowRegistry:
    """A fresh registry of every implemented benchmark row, in table order; ``module``: only
    the rows of that row module (``species``, ``fusion`` ...)."""
    missing = sorted(set(registered_modules()) - set(ROW_MODULES))
    if missing:  # a new row module must take its place in ROW_MODULES
        raise InputError(f"bench row module(s) {', '.join(missing)} not in ROW_MODULES")
    if module is not None and module not in ROW_MODULES:
        raise InputError(
            f"unknown bench row module {module!r}; choose one of {', '.join(ROW_MODULES)}"
        )
    return registered_rows(ROW_MODULES if module is None else (module,))


__all__ = [
    "ROW_MODULES",
    "ROW_SPLITS",
    "WEIGHTS_CHECKS",
    "BenchData",
    "BenchRow",
    "RowContext",
    "RowRegistry",
    "builtin_rows",
    "inatsounds_unavailable",
    "predict_with_model",
    "register_row",
    "resolve_rows",
    "train_row_model",
    "training_config_dict",
    "training_extra",
]
