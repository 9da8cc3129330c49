"""Checklists for AG-CLIP's auxiliary loss from any range model spec (issue 4, item 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.models.encoders import frontend_for
from geoforensics.train.config import config_from_dict
from geoforensics.train.datamodule import GeoDataModule


def _datamodule(world: Path, range_model: str) -> GeoDataModule:
    config = config_from_dict(
        {
            "method": "agclip",
            "data": {"root": str(world), "range_model": range_model},
            "model": {"encoder": "test_tiny"},
            "out": str(world.parent / "unused-run"),
        }
    )
    dm = GeoDataModule(config, frontend_for("test_tiny"), progress=False)
    dm.load_metadata()
    return dm


def test_world_spec_gives_the_same_checklists_as_the_synthetic_default(
    train_micro_world: Path,
) -> None:
    default = _datamodule(train_micro_world, "synthetic")
    by_spec = _datamodule(train_micro_world, f"world:{train_micro_world}")
    for role in ("train", "val"):
        expected = default.splits[role].checklists
        got = by_spec.splits[role].checklists
        assert expected is not None and got is not None
        assert got.shape == expected.shape and expected.sum() > 0
        np.testing.assert_array_equal(got, expected)
    assert _datamodule(train_micro_world, "none").splits["train"].checklists is None


def test_unknown_range_model_spec_is_a_one_line_error(train_micro_world: Path) -> None:
    with pytest.raises(InputError, match=r"data\.range_model") as error:
        _datamodule(train_micro_world, "gbif")
    assert "\n" not in str(error.value)
