"""Lightning tasks, one module per method of the benchmark, each registering its methods.

- :class:`~.base.GeoTask`: shared optimiser, schedule and pooled evaluation;
- :mod:`.agclip`: ``agclip``, AG-CLIP (contrastive to frozen location embeddings + checklists);
- :mod:`.regression`: ``regression_mse`` and ``regression_haversine``, lat/lon regression;
- :mod:`.classification`: ``classification``, H3 geocell classification.

Importing this package imports every task module, so every method is in the registry
(:mod:`geoforensics.train.methods`, whose lookups import this package). The species oracle
(:mod:`.species_oracle`, a bench baseline, not a training method) is imported on demand.
"""

from __future__ import annotations

# The task modules in the order of the methods (the config's documented order): importing one
# registers its methods.
# isort: off
from geoforensics.train.tasks import agclip, regression, classification  # noqa: F401

# isort: on
from geoforensics.train.tasks.agclip import (
    AGCLIPTask,
    build_agclip_task,
    contrastive_loss,
    location_embeddings,
)
from geoforensics.train.tasks.base import (
    EvalResult,
    GeoTask,
    LocationTarget,
    metric_names,
    model_config_for,
)
from geoforensics.train.tasks.classification import (
    ClassificationTask,
    build_classification_task,
)
from geoforensics.train.tasks.regression import RegressionTask, build_regression_task

__all__ = [
    "AGCLIPTask",
    "ClassificationTask",
    "EvalResult",
    "GeoTask",
    "LocationTarget",
    "RegressionTask",
    "build_agclip_task",
    "build_classification_task",
    "build_regression_task",
    "contrastive_loss",
    "location_embeddings",
    "metric_names",
    "model_config_for",
]
