"""The naive baseline predicts training locations, reproducibly, ignoring invalid rows."""

from __future__ import annotations

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.eval.baselines import naive_random_train_location


def test_predictions_are_valid_training_locations_and_seeded() -> None:
    train = np.array([[10.0, 20.0], [-30.0, 140.0], [np.nan, 5.0], [95.0, 0.0], [51.5, -0.1]])
    pred = naive_random_train_location(train, 500, seed=3)
    assert pred.shape == (500, 2)
    valid_rows = {(10.0, 20.0), (-30.0, 140.0), (51.5, -0.1)}
    assert {tuple(row) for row in pred} == valid_rows  # all three drawn, never an invalid row
    np.testing.assert_array_equal(pred, naive_random_train_location(train, 500, seed=3))
    assert not np.array_equal(pred, naive_random_train_location(train, 500, seed=4))


def test_no_valid_training_location_is_an_error() -> None:
    with pytest.raises(InputError, match="no valid location"):
        naive_random_train_location(np.full((3, 2), np.nan), 4)
