"""Registry of training methods: the config's ``method`` -> model kind and task builder.

Each task module under :mod:`geoforensics.train.tasks` registers its methods with
:func:`register_method` (timm style); ``train/tasks/__init__.py`` imports every task module.
The lookups here import that package on first use, so all entries exist whenever the
registry is consulted (config validation included).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from geoforensics.core.errors import InputError

if TYPE_CHECKING:
    from geoforensics.train.config import TrainConfig
    from geoforensics.train.datamodule import GeoDataModule
    from geoforensics.train.tasks.base import GeoTask, LocationTarget

#: ``build(config, datamodule, location_target) -> task``: the Lightning task of a run (the data
#: module's metadata is loaded; ``location_target`` is AG-CLIP's frozen location encoder).
TaskBuilder = Callable[["TrainConfig", "GeoDataModule", "LocationTarget | None"], "GeoTask"]

#: The package whose import registers every method.
TASKS_PACKAGE = "geoforensics.train.tasks"


@dataclass(frozen=True)
class TrainingMethod:
    """A registered method: the :class:`~geoforensics.core.models.ModelConfig` kind it trains
    and the builder of its task."""

    name: str
    model_kind: str
    build: TaskBuilder


_METHODS: dict[str, TrainingMethod] = {}


def register_method(name: str, model_kind: str) -> Callable[[TaskBuilder], TaskBuilder]:
    """Decorator registering ``build(config, datamodule, location_target)`` as method ``name``
    training a ``model_kind`` model. Registering a name twice is an error."""

    def decorator(build: TaskBuilder) -> TaskBuilder:
        if name in _METHODS:
            raise InputError(f"training method {name!r} is already registered")
        _METHODS[name] = TrainingMethod(name, model_kind, build)
        return build

    return decorator


def _registered() -> dict[str, TrainingMethod]:
    # imported here, not at the top: the task modules import train.config, which imports this
    importlib.import_module(TASKS_PACKAGE)
    return _METHODS


def method_names() -> tuple[str, ...]:
    """Names of the training methods, in registration order."""
    return tuple(_registered())


def get_method(name: str) -> TrainingMethod:
    """The method registered as ``name`` (one-line :class:`InputError` naming the others)."""
    methods = _registered()
    if name not in methods:
        raise InputError(f"method {name!r} must be one of {', '.join(methods)}")
    return methods[name]
