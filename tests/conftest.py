"""Shared test setup: every test session gets its own empty cache folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# hypothesis keeps its example database in the working directory unless told otherwise.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY",
    str(Path(os.environ.get("TMPDIR", "/tmp")) / "geoforensics-hypothesis"),
)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point $GEOFORENSICS_CACHE at a fresh folder so tests never read a user's cache."""
    cache = tmp_path_factory.mktemp("geoforensics-cache")
    previous = os.environ.get("GEOFORENSICS_CACHE")
    os.environ["GEOFORENSICS_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("GEOFORENSICS_CACHE", None)
    else:
        os.environ["GEOFORENSICS_CACHE"] = previous


@pytest.fixture(scope="session")
def train_micro_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SYNTHETIC world (80 recordings, 1 XCDC chorus) shared by the training tests."""
    from geoforensics.core.synth import generate_world, get_config
    from geoforensics.core.synth.world import scaled

    root = tmp_path_factory.getbasetemp() / "train-micro-world-seed0"
    if not (root / "world" / "world.json").is_file():
        micro = scaled(
            get_config("tiny"), name="micro", n_recordings=80, n_xcdc=1, xcdc_minutes=(0.2, 0.3)
        )
        generate_world(root, micro, seed=0, progress=False, force=True)
    return root
