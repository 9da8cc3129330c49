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
