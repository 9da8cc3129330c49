"""Lightning tasks, one per method of the benchmark.

- :class:`~.base.GeoTask`: shared optimiser, schedule and pooled evaluation;
- :class:`~.agclip.AGCLIPTask`: AG-CLIP (contrastive to frozen location embeddings + checklists);
- :class:`~.regression.RegressionTask`: lat/lon regression (MSE or haversine loss);
- :class:`~.classification.ClassificationTask`: H3 geocell classification.
"""

from __future__ import annotations

from .agclip import AGCLIPTask, LocationTarget, contrastive_loss, location_embeddings
from .base import EvalResult, GeoTask, metric_names
from .classification import ClassificationTask
from .regression import RegressionTask

__all__ = [
    "AGCLIPTask",
    "ClassificationTask",
    "EvalResult",
    "GeoTask",
    "LocationTarget",
    "RegressionTask",
    "contrastive_loss",
    "location_embeddings",
    "metric_names",
]
