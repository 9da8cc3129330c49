"""Training learns: brief runs on the tiny SYNTHETIC world beat the naive baseline on test.

The naive baseline predicts a random training location for every test recording (the paper's
naive row), scored with the same metrics on the same held-out test recordings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geoforensics.core.data import INatSounds
from geoforensics.core.geo.metrics import geolocation_metrics
from geoforensics.eval.baselines import naive_random_train_location
from geoforensics.train.config import config_from_dict
from geoforensics.train.runner import train


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> Path:
    return tiny_world


@pytest.fixture(scope="module")
def naive(world: Path) -> dict[str, float]:
    train_coords = INatSounds(world, "train").coords()
    test_coords = INatSounds(world, "test").coords()
    guesses = naive_random_train_location(train_coords, len(test_coords), seed=0)
    return geolocation_metrics(guesses, test_coords).as_dict()


def _run(world: Path, out: Path, method: str, **model: Any) -> dict[str, Any]:
    """Train ``method`` with the fast test encoder: the paper's optimiser and schedule
    (1e-3 -> 1e-2 -> 1e-3; warm-up shortened to 1 epoch), 10 epochs of 4 random windows per
    recording, batch 32, the train locations as AG-CLIP's gallery."""
    config = config_from_dict(
        {
            "method": method,
            "data": {"root": str(world)},
            "model": {"encoder": "test_tiny", **model},
            "optim": {"batch_size": 32, "max_epochs": 10, "warmup_epochs": 1},
            "train": {"patience": 10, "windows_per_recording": 4, "max_minutes": 3},
            "eval": {"gallery": ["train"]},
            "out": str(out),
        }
    )
    started = time.perf_counter()
    summary = train(config, progress=False)
    assert summary is not None
    summary["measured_s"] = time.perf_counter() - started
    return summary


def _check_beats_naive(summary: dict[str, Any], naive: dict[str, float], label: str) -> None:
    test = summary["test"]
    print(
        f"\n{label} (SYNTHETIC tiny world, test split, {int(test['count'])} recordings, "
        f"{summary['measured_s']:.0f} s): median {test['median_km']:.0f} km, "
        f"acc@200km {test['acc@200km']:.3f}, acc@2500km {test['acc@2500km']:.3f} | naive: "
        f"median {naive['median_km']:.0f} km, acc@200km {naive['acc@200km']:.3f}, "
        f"acc@2500km {naive['acc@2500km']:.3f}"
    )
    assert test["count"] == naive["count"]  # the same test recordings
    assert test["n_invalid"] == 0
    assert test["median_km"] <= 0.6 * naive["median_km"]
    assert test["acc@2500km"] > naive["acc@2500km"]
    assert np.isfinite(test["mean_km"]) and test["mean_km"] < naive["mean_km"]


@pytest.mark.learning
def test_agclip_learns(world: Path, naive: dict[str, float], tmp_path: Path) -> None:
    summary = _run(world, tmp_path / "agclip", "agclip")
    _check_beats_naive(summary, naive, "AG-CLIP")
    assert summary["test"]["acc@200km"] > naive["acc@200km"]


@pytest.mark.slow
def test_haversine_regression_learns(world: Path, naive: dict[str, float], tmp_path: Path) -> None:
    summary = _run(world, tmp_path / "regression", "regression_haversine")
    _check_beats_naive(summary, naive, "regression (haversine)")


@pytest.mark.slow
def test_classification_res1_learns(world: Path, naive: dict[str, float], tmp_path: Path) -> None:
    summary = _run(world, tmp_path / "classification", "classification", h3_res=1)
    _check_beats_naive(summary, naive, "classification (H3 res 1)")
