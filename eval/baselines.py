"""Baselines that need no model: the paper's naive row (a random training location)."""

from __future__ import annotations

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import validate_coords


def naive_random_train_location(
    train_coords: np.ndarray, n_queries: int, seed: int = 0
) -> np.ndarray:
    """Predict, for each of ``n_queries`` recordings, a training location drawn at random.

    This is the naive row of the benchmark's Table 1: it knows where recordings tend to be made
    (the training distribution) and nothing about the audio. Invalid training rows are ignored.
    """
    coords = np.asarray(train_coords, dtype=np.float64).reshape(-1, 2)
    coords = coords[validate_coords(coords)]
    if len(coords) == 0:
        raise InputError("naive baseline: the training split has no valid location")
    rng = np.random.default_rng(seed)
    return coords[rng.integers(0, len(coords), size=n_queries)]
