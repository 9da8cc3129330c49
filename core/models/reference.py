"""The paper's released checkpoints: torchvision MobileNetV3-large state dicts -> our model.

A released checkpoint is a plain state dict of ``torchvision.models.mobilenet_v3_large`` whose
``classifier.3`` was replaced by ``Sequential(Linear(1280, 128), ReLU, Linear(128, D))``. For
AG-CLIP, ``D = n_species + 512``: checklist logits first, the GeoCLIP-space embedding last.
Regression (``D = 2``) and H3 classification (``D`` = 122 / 842 / 5,882 cells) checkpoints of
the same layout load too. A plain torchvision classifier (a single ``Linear`` in
``classifier.3``, e.g. ImageNet weights) is refused rather than misread as a head.

Parameter mapping: ``features.*`` and ``classifier.{0,1,2}.*`` go to the encoder unchanged
(its names are torchvision's), ``classifier.3.*`` to the head. The model gets the
``"reference"`` front-end preset, which reproduces the released preprocessing.

:func:`reference_model` gives the same model with its provenance in the config, and
:func:`geoforensics.core.models.resolve.import_reference_checkpoint` (``geoforensics weights
import agclip FILE.pt --out DIR``) turns such a file into an ordinary model folder
(``model.safetensors`` + ``model.json``) that records what it was trained on
(``extra["training_data"]``: the paper's iNatSounds 2024 release, real recordings) and, given
an iNatSounds categories JSON, the species names.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from geoforensics.core.audio.frontend import get_frontend_config
from geoforensics.core.data.inatsounds import _parse_categories
from geoforensics.core.errors import InputError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.geo.h3cells import CELL_COUNTS
from geoforensics.core.models.encoders import check_state_dict, read_state_dict
from geoforensics.core.models.geolocator import AudioGeolocator, ModelConfig
from geoforensics.core.models.provenance import (
    PAPER_RELEASE_DATASET,
    TrainingData,
    with_training_data,
)

#: Encoder of every released checkpoint.
REFERENCE_ENCODER = "mobilenet_v3_large"
#: Size of the GeoCLIP embedding at the end of an AG-CLIP checkpoint's output.
GEOCLIP_DIM = 512
_HEAD_PREFIX = "classifier.3."


def _head_layout(state: dict[str, torch.Tensor], file: Path) -> tuple[int, int]:
    """(hidden, output width) of the checkpoint's ``classifier.3``."""
    if f"{_HEAD_PREFIX}0.weight" in state and f"{_HEAD_PREFIX}2.weight" in state:
        first, last = state[f"{_HEAD_PREFIX}0.weight"], state[f"{_HEAD_PREFIX}2.weight"]
        if first.ndim != 2 or last.ndim != 2 or last.shape[1] != first.shape[0]:
            raise InputError(
                f"{file}: classifier.3 is not Linear -> ReLU -> Linear (weights "
                f"{tuple(first.shape)} and {tuple(last.shape)})"
            )
        return int(first.shape[0]), int(last.shape[0])
    if f"{_HEAD_PREFIX}weight" in state:
        raise InputError(
            f"{file}: not a reference checkpoint (classifier.3 is a single Linear, as in a plain "
            "torchvision classifier; the released layout is Linear -> ReLU -> Linear)"
        )
    raise InputError(
        f"{file}: not a reference checkpoint (no classifier.3 head of a torchvision "
        "mobilenet_v3_large; expected classifier.3.0.weight and classifier.3.2.weight)"
    )


def _config_for(
    kind: str, width: int, hidden: int, n_species: int | None, file: Path
) -> ModelConfig:

    frontend = get_frontend_config("reference").to_dict()
    extra = {"source": "reference-checkpoint", "checkpoint": file.name}
    if kind == "agclip":
        species = width - GEOCLIP_DIM if n_species is None else n_species
        if species < 0 or species + GEOCLIP_DIM != width:
            raise InputError(
                f"{file}: AG-CLIP output width {width} does not split into "
                f"{'n_species' if n_species is None else n_species} species logits + "
                f"{GEOCLIP_DIM} embedding dims"
            )
        return ModelConfig(
            "agclip",
            REFERENCE_ENCODER,
            n_species=species,
            embed_dim=GEOCLIP_DIM,
            frontend=frontend,
            hidden=hidden,
            extra=extra,
        )
    if kind == "regression":
        if width != 2:
            raise InputError(f"{file}: a regression checkpoint outputs 2 values, this one {width}")
        return ModelConfig(
            "regression", REFERENCE_ENCODER, frontend=frontend, hidden=hidden, extra=extra
        )
    if kind == "classification":
        resolutions = [res for res, count in CELL_COUNTS.items() if count == width]
        if not resolutions:
            raise InputError(
                f"{file}: {width} outputs is not a number of H3 cells at resolution 0, 1 or 2 "
                f"({', '.join(str(c) for c in CELL_COUNTS.values())})"
            )
        return ModelConfig(
            "classification",
            REFERENCE_ENCODER,
            h3_resolution=resolutions[0],
            frontend=frontend,
            hidden=hidden,
            extra=extra,
        )
    raise InputError(f"unknown checkpoint kind {kind!r}: agclip, regression or classification")


def load_reference_checkpoint(
    path: str | os.PathLike[str], n_species: int | None = None, kind: str = "agclip"
) -> AudioGeolocator:
    """Load a released checkpoint (torchvision state dict) as an :class:`AudioGeolocator`.

    The output width (and for AG-CLIP the number of species, ``width - 512``) is read from the
    tensor shapes; ``n_species`` only checks it. Wrapped (``{"state_dict": ...}``) and
    prefixed (``module.``, ``model.``) files are accepted. Returns the model in eval mode.
    """
    file = Path(path)
    state = read_state_dict(file)
    hidden, width = _head_layout(state, file)
    model = AudioGeolocator(_config_for(kind, width, hidden, n_species, file))
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(_HEAD_PREFIX):
            mapped["head." + key[len(_HEAD_PREFIX) :]] = value
        else:
            mapped["encoder." + key] = value
    check_state_dict(model, mapped, file)
    model.load_state_dict(mapped, strict=True)
    return model.eval()


# ---------------------------------------------------------------------------- import


def read_species_names(path: str | os.PathLike[str], n_species: int | None = None) -> list[str]:
    """Species names, in the checkpoint's logit order, from an iNatSounds categories file.

    ``path`` holds a JSON list of ``{"id", "name", ...}`` categories or a whole split file
    (``{"categories": [...], ...}``); names come in order of category id, the order of the
    data set's class indices. With ``n_species``, a split file whose full category list has
    another length falls back on the categories that have annotations in it (the species a
    model trained on that split predicts); any other length mismatch is an InputError.
    """

    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{file}: species categories file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{file}: unreadable ({error.__class__.__name__})") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{file}: invalid JSON ({error.msg}, line {error.lineno})") from None
    entries = data.get("categories") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise InputError(
            f"{file}: expected a JSON list of {{id, name}} categories or an iNatSounds split "
            "file with a 'categories' list"
        )
    categories = _parse_categories(file, entries)
    names = [category.name for category in categories]
    if n_species is None or len(names) == n_species:
        return names
    annotations = data.get("annotations") if isinstance(data, dict) else None
    if isinstance(annotations, list):
        used = {a.get("category_id") for a in annotations if isinstance(a, dict)}
        present = [c.name for c in categories if c.id in used]
        if len(present) == n_species:
            return present
    raise InputError(
        f"{file}: {len(names):,} categories, but the checkpoint has {n_species:,} species "
        "logits (give the categories of the split the model was trained on)"
    )


def reference_model(
    path: str | os.PathLike[str],
    species: str | os.PathLike[str] | None = None,
    training_data: TrainingData | None = None,
    sha256: str | None = None,
) -> AudioGeolocator:
    """A released AG-CLIP checkpoint loaded as an :class:`AudioGeolocator` whose config
    records its provenance: ``training_data`` (default: the paper's iNatSounds 2024 release,
    real recordings, its species count), the checkpoint's file name and SHA-256, GeoCLIP as its
    location space and, with ``species`` (see :func:`read_species_names`), the species names.
    ``sha256`` is the file's digest when the caller already has it.
    """
    file = Path(path)
    model = load_reference_checkpoint(file, kind="agclip")
    n_species = model.config.n_species
    extra: dict[str, Any] = dict(model.config.extra)
    extra.update(
        {
            "method": "agclip",
            "location_encoder": "geoclip",
            "checkpoint_sha256": sha256 or sha256_file(file),
        }
    )
    if species is not None:
        extra["species_names"] = read_species_names(species, n_species)
        extra["species_source"] = Path(species).name
    record = training_data or TrainingData(PAPER_RELEASE_DATASET, False, n_species)
    extra = with_training_data(extra, record)
    model.config = dataclasses.replace(model.config, extra=extra)
    return model
