""":func:`create_location_encoder`: a frozen location encoder by registered name.

Loading only: a checkpoint (a public one, or a file saved by
:func:`~.files.save_location_encoder`) or weights that ship with the encoder. Training a
``sinr`` or ``satclip`` encoder as a range model belongs to training
(:mod:`geoforensics.train.range_pretraining`), which the core library never imports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models.location.base import LocationEncoder
from geoforensics.core.models.location.files import load_location_encoder_file
from geoforensics.core.models.location.registry import location_encoder_entry


def create_location_encoder(
    name: str, checkpoint: str | os.PathLike[str] | None = None, **kwargs: Any
) -> LocationEncoder:
    """A frozen location encoder by name (``geoclip``, ``sinr``, ``satclip``).

    ``checkpoint``: for ``geoclip`` a GeoCLIP location-encoder weights file (default: the
    wheel's); for ``sinr`` a SINR checkpoint; for ``satclip`` a SatCLIP checkpoint (``kwargs``
    go to :func:`~.satclip.load_satclip_checkpoint`); for either, a file saved by
    :func:`~.files.save_location_encoder`. ``sinr`` and ``satclip`` need a checkpoint.
    """
    entry = location_encoder_entry(name)
    if checkpoint is None:
        if entry.needs_checkpoint:
            raise WeightsNotFoundError(
                f"{name}: no checkpoint given; pass checkpoint=PATH (the public {name.upper()} "
                "weights or a file saved by save_location_encoder), or pretrain one on a range "
                "model (geoforensics.train.range_pretraining, range_model=...)"
            )
        return entry.factory(None, **kwargs)
    file = Path(checkpoint).expanduser()
    if entry.saved_files and file.suffix in (".safetensors", ".json"):
        encoder = load_location_encoder_file(file)
        if encoder.name != name:
            raise InputError(f"{file}: holds a {encoder.name!r} encoder, not {name!r}")
        return encoder
    return entry.factory(checkpoint, **kwargs)
