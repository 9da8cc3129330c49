"""The GeoCLIP location space: our encoder for GeoCLIP's shipped weights, embeddings, retrieval.

The weights and the 100k gallery ship inside the ``geoclip`` wheel. This module only *locates*
those files (without importing ``geoclip``, which pulls in transformers); the torch code lives
in :mod:`.location_encoder`, :mod:`.embeddings` and :mod:`.retrieval`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from geoforensics.core.errors import WeightsNotFoundError

#: Files inside the geoclip package folder.
LOCATION_ENCODER_WEIGHTS = "model/weights/location_encoder_weights.pth"
IMAGE_MLP_WEIGHTS = "model/weights/image_encoder_mlp_weights.pth"
LOGIT_SCALE_WEIGHTS = "model/weights/logit_scale_weights.pth"
GALLERY_100K_CSV = "model/gps_gallery/coordinates_100K.csv"


def geoclip_package_dir() -> Path:
    """Folder of the installed ``geoclip`` package, found without importing it."""
    spec = importlib.util.find_spec("geoclip")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise WeightsNotFoundError(
            "geoclip package not installed: run `pip install geoclip==1.2.3` "
            "(its wheel ships the location encoder weights and the 100k gallery)"
        )
    return Path(locations[0])


def geoclip_file(relative: str) -> Path:
    """Path of a file shipped in the geoclip wheel; raises WeightsNotFoundError if absent."""
    path = geoclip_package_dir() / relative
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{path}: missing from the installed geoclip package; reinstall geoclip==1.2.3"
        )
    return path
