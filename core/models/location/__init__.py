"""Location encoders for the paper's Table 2 ablation: GeoCLIP, SINR and SatCLIP.

AG-CLIP learns to map audio onto a frozen location embedding ``encoder(coords)``; Table 2
swaps GeoCLIP's encoder for others. Every encoder is a :class:`LocationEncoder` (:mod:`.base`)
registered by name (:mod:`.registry`, :func:`register_location_encoder`):

- :mod:`.geoclip`: ``geoclip``, GeoCLIP's encoder with the weights shipped in its wheel (512-d);
- :mod:`.sinr`: ``sinr``, SINR's ``ResidualFCNet`` (256-d), from a public SINR checkpoint;
- :mod:`.satclip`: ``satclip``, SatCLIP's spherical harmonics + SIREN (256-d);
- :mod:`.files`: our own encoders saved as ``NAME.safetensors`` + ``NAME.json``, and cached
  gallery embeddings;
- :mod:`.factory`: :func:`create_location_encoder` by name.

Importing this package imports every encoder module, so all registry entries exist. Without a
checkpoint, ``sinr`` and ``satclip`` are trained as range models by
:mod:`geoforensics.train.range_pretraining` (training, not this library).
"""

from __future__ import annotations

# The encoder modules in the order of LOCATION_ENCODERS (the paper's): importing one registers it.
# isort: off
from geoforensics.core.models.location import geoclip, sinr, satclip  # noqa: F401

# isort: on
from geoforensics.core.models.location.base import LocationEncoder, check_latlon
from geoforensics.core.models.location.factory import create_location_encoder
from geoforensics.core.models.location.files import (
    LOCATION_ENCODER_FORMAT,
    gallery_embeddings,
    load_location_encoder_file,
    save_location_encoder,
)
from geoforensics.core.models.location.geoclip import GeoCLIPEncoder
from geoforensics.core.models.location.registry import (
    LocationEncoderEntry,
    location_encoder_entry,
    location_encoder_names,
    register_location_encoder,
)
from geoforensics.core.models.location.satclip import (
    SH_CONVENTIONS,
    SatCLIPEncoder,
    SirenLayer,
    SirenNet,
    SphericalHarmonics,
    load_satclip_checkpoint,
)
from geoforensics.core.models.location.sinr import (
    SINREncoder,
    SINRResLayer,
    load_sinr_checkpoint,
    sinr_input_encoding,
)

#: Names accepted by :func:`create_location_encoder`.
LOCATION_ENCODERS: tuple[str, ...] = location_encoder_names()

__all__ = [
    "LOCATION_ENCODERS",
    "LOCATION_ENCODER_FORMAT",
    "SH_CONVENTIONS",
    "GeoCLIPEncoder",
    "LocationEncoder",
    "LocationEncoderEntry",
    "SINREncoder",
    "SINRResLayer",
    "SatCLIPEncoder",
    "SirenLayer",
    "SirenNet",
    "SphericalHarmonics",
    "check_latlon",
    "create_location_encoder",
    "gallery_embeddings",
    "load_location_encoder_file",
    "load_satclip_checkpoint",
    "load_sinr_checkpoint",
    "location_encoder_entry",
    "location_encoder_names",
    "register_location_encoder",
    "save_location_encoder",
    "sinr_input_encoding",
]
