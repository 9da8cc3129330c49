"""Where geoforensics keeps caches and where the shipped assets live."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache folder (``$GEOFORENSICS_CACHE`` or ``~/.cache/geoforensics``), created."""
    root = os.environ.get("GEOFORENSICS_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "geoforensics"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def assets_dir() -> Path:
    """The folder of shipped assets (demo clip, configs), in a source tree or a wheel."""
    return Path(str(resources.files("geoforensics.assets")))
