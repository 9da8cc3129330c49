"""Where a saved model's files are: names and format tag (torch-free, for readers that do not
load the model, such as :mod:`.graph_agclip`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from geoforensics.core.errors import WeightsNotFoundError

#: Format tag written into model.json.
MODEL_FORMAT = "geoforensics-audio-geolocator"
MODEL_FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"


def model_files(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(weights, config) paths for a model folder, a ``.safetensors`` file or a ``.json`` file.

    A folder holds ``model.safetensors`` and ``model.json``; a file path names one of the two
    and the other sits beside it with the same stem.
    """
    target = Path(path)
    if target.suffix in (".safetensors", ".json"):
        return target.with_suffix(".safetensors"), target.with_suffix(".json")
    return target / WEIGHTS_FILE, target / CONFIG_FILE


def existing_weights(path: str | os.PathLike[str]) -> Path:
    """The weights file of the model at ``path`` (:func:`model_files`); a one-line
    :class:`WeightsNotFoundError` naming it and saying what a model folder is when it is
    missing (the same words from ``check``, ``locate`` and ``weights prepare``)."""
    weights, _config = model_files(path)
    if not weights.is_file():
        raise WeightsNotFoundError(
            f"{weights}: AG-CLIP model not found (--model takes a model folder, "
            f"{WEIGHTS_FILE} + {CONFIG_FILE}, written by `geoforensics train` or "
            "`geoforensics weights import agclip`)"
        )
    return weights


def location_encoder_name(extra: dict[str, Any]) -> str:
    """The location encoder a model was trained against, from its config's ``extra``
    (``"geoclip"`` when the key is absent: older exports, the released checkpoints)."""
    return str(extra.get("location_encoder") or "geoclip")


def config_document(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The saved model's config as plain JSON (``model.json``'s ``config`` object), read
    without validating it against the encoder registry (which loads torch); None when the
    file is missing or is not a model config (callers then take the full reader,
    :func:`~.model_space.read_model_config`, which says what is wrong)."""
    _weights, config = model_files(path)
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict) or document.get("format") != MODEL_FORMAT:
        return None
    found = document.get("config")
    return found if isinstance(found, dict) else None


__all__ = [
    "CONFIG_FILE",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "WEIGHTS_FILE",
    "config_document",
    "existing_weights",
    "location_encoder_name",
    "model_files",
]
