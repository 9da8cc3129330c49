"""What a saved audio model was trained on, and so what it may speak for.

A model trained on the SYNTHETIC world knows 30 made-up species on real land; applied to a
real recording it still returns a confident place, which is not evidence. Every model folder
therefore records its training data in ``model.json`` as
``config.extra["training_data"] = {"dataset": ..., "synthetic": true|false, "n_species": N}``
(written by ``geoforensics train`` and ``geoforensics weights import``). Older folders without
the key fall back on ``training.json``'s ``"synthetic"`` flag beside the weights; a model whose
training data is recorded nowhere is *unknown* and treated like a SYNTHETIC one: labelled and
never deciding a verdict on real media.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Key of the record inside ``ModelConfig.extra``.
TRAINING_DATA_KEY = "training_data"
#: What the CLI, report and app print beside a model that does not know real sound.
SYNTHETIC_LABEL = "trained on a SYNTHETIC world: not evidence for real recordings"
UNKNOWN_LABEL = "training data not recorded in model.json: not evidence for real recordings"
#: The data set of the paper's released AG-CLIP checkpoints (``geoforensics weights import``).
PAPER_RELEASE_DATASET = "iNatSounds 2024 (paper release)"


@dataclass(frozen=True)
class TrainingData:
    """The data set a model was trained on: its name, whether it is SYNTHETIC, its species."""

    dataset: str | None = None
    synthetic: bool | None = None
    n_species: int | None = None

    @property
    def knows_real_sound(self) -> bool:
        """True only for a model recorded as trained on real recordings."""
        return self.synthetic is False

    def label(self) -> str | None:
        """The warning to show on the model's modality line, or None for a real-trained model."""
        if self.synthetic is True:
            return SYNTHETIC_LABEL
        if self.synthetic is None:
            return UNKNOWN_LABEL
        return None

    def describe(self) -> str:
        """One phrase, e.g. ``iNatSounds 2024 (real, 5,547 species)``."""
        kind = {True: "SYNTHETIC", False: "real", None: "unknown"}[self.synthetic]
        species = f", {self.n_species:,} species" if self.n_species else ""
        return f"{self.dataset or 'unknown data'} ({kind}{species})"

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "synthetic": self.synthetic, "n_species": self.n_species}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrainingData:
        """Read the record; missing or ill-typed fields become unknown (None)."""
        data = data if isinstance(data, dict) else {}
        dataset = data.get("dataset")
        synthetic = data.get("synthetic")
        n_species = data.get("n_species")
        return cls(
            dataset=str(dataset) if dataset is not None else None,
            synthetic=synthetic if isinstance(synthetic, bool) else None,
            n_species=int(n_species)
            if isinstance(n_species, int) and not isinstance(n_species, bool)
            else None,
        )


def training_data_of(extra: dict[str, Any], folder: Path | None = None) -> TrainingData:
    """The record in a config's ``extra``; else ``training.json``'s flag in ``folder``."""
    if isinstance(extra.get(TRAINING_DATA_KEY), dict):
        return TrainingData.from_dict(extra[TRAINING_DATA_KEY])
    n_species = extra.get("species_names")
    count = len(n_species) if isinstance(n_species, list) else None
    if folder is not None:
        sidecar = folder / "training.json"
        try:
            record = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        if isinstance(record, dict) and isinstance(record.get("synthetic"), bool):
            name = "SYNTHETIC world" if record["synthetic"] else None
            return TrainingData(name, record["synthetic"], count)
    return TrainingData(None, None, count)


def _world_json(root: Path) -> dict[str, Any] | None:
    """``ROOT/world/world.json`` of a synthetic world at ``root`` or its parent (an XCDC
    folder inside a world); ``{}`` when the marker is there but unreadable, None when absent."""
    for folder in (root, root.parent):
        marker = folder / "world" / "world.json"
        if marker.is_file():
            try:
                data = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            return data if isinstance(data, dict) else {}
    return None


def dataset_training_data(
    root: str | os.PathLike[str], n_species: int | None = None
) -> TrainingData:
    """The record for a model trained on the iNatSounds-format data set at ``root``.

    A synthetic world (``world/world.json``, written by ``geoforensics data synth``) gives
    ``SYNTHETIC world 'PRESET' (seed S)``, ``synthetic=True``; any other folder
    ``iNatSounds-format data 'NAME'`` (its folder name), ``synthetic=False``. A world marker
    that cannot be read still counts as SYNTHETIC (never mistaken for real data).
    """
    base = Path(root).expanduser().resolve()
    world = _world_json(base)
    count = int(n_species) if n_species is not None else None
    if world is not None:
        preset, seed = world.get("preset"), world.get("seed")
        name = "SYNTHETIC world"
        if preset is not None:
            name += f" '{preset}'"
        if seed is not None:
            name += f" (seed {seed})"
        return TrainingData(name, True, count)
    return TrainingData(f"iNatSounds-format data '{base.name}'", False, count)


def with_training_data(extra: dict[str, Any], record: TrainingData) -> dict[str, Any]:
    """A copy of a config's ``extra`` carrying ``record`` under :data:`TRAINING_DATA_KEY`."""
    return {**extra, TRAINING_DATA_KEY: record.as_dict()}


def model_training_data(model_dir: str | os.PathLike[str]) -> TrainingData:
    """What the model saved at ``model_dir`` (folder or file) was trained on."""
    from geoforensics.core.models.model_files import config_document, model_files

    folder = model_files(model_dir)[0].parent
    document = config_document(model_dir)  # plain JSON: no torch for a readable model.json
    if document is not None and isinstance(document.get("extra", {}), dict):
        return training_data_of(document.get("extra") or {}, folder)
    from geoforensics.core.models.model_space import read_model_config  # loads torch

    return training_data_of(read_model_config(model_dir).extra, folder)


__all__ = [
    "PAPER_RELEASE_DATASET",
    "SYNTHETIC_LABEL",
    "TRAINING_DATA_KEY",
    "UNKNOWN_LABEL",
    "TrainingData",
    "dataset_training_data",
    "model_training_data",
    "training_data_of",
    "with_training_data",
]
