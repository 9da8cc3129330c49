"""Audio models: encoder registry, heads, the geolocator, reference checkpoints, pooling, inference.

- :mod:`.encoders`: the audio encoder registry (:func:`create_encoder`, weights files) and the
  registered encoders (``mobilenet_v3_large``, ``mobilenet_v3_small``,
  ``mobilenet_v3_small_128``, ``test_tiny``; ``birdnet``: BirdNET's frozen 1,024-d embeddings,
  for head-only training; ``clap`` and ``wav2clip`` from :mod:`.clap` and :mod:`.wav2clip`);
- :mod:`.location`: the location encoders of Table 2 (GeoCLIP, SINR, SatCLIP) by name;
- :mod:`.heads`: the paper's 2-layer MLP head;
- :mod:`.geolocator`: :class:`AudioGeolocator` (AG-CLIP, regression, classification) with
  :class:`ModelConfig`, :func:`save_model` / :func:`load_model` (safetensors + JSON);
- :mod:`.reference`: the released AG-CLIP checkpoints (torchvision state dicts);
- :mod:`.pooling`: window outputs -> one vector per recording (mean, max, k-means, transformer);
- :mod:`.inference`: per-window outputs of a file, recording-level predictions.
"""

from __future__ import annotations

# Every audio encoder module, imported here once: importing one registers its encoders, and this
# package runs before any use of the registry (geoforensics.core.models.encoders.registry).
from geoforensics.core.models import clap, wav2clip  # noqa: F401
from geoforensics.core.models.encoders import (  # noqa: F401
    EncoderConfig,
    birdnet,
    create_encoder,
    frontend_for,
    get_encoder_config,
    list_encoders,
    load_encoder_weights,
    read_state_dict,
    register_encoder,
    spectrogram,
)
from geoforensics.core.models.geolocator import (
    KINDS,
    AudioGeolocator,
    ModelConfig,
    denormalize_latlon,
    load_model,
    normalize_latlon,
    save_model,
)
from geoforensics.core.models.heads import MLPHead
from geoforensics.core.models.inference import (
    Prediction,
    WindowOutputs,
    iter_pooled_outputs,
    locate_recording,
    predict_recordings,
    window_outputs,
)
from geoforensics.core.models.pooling import POOLING_METHODS, TransformerPooling, pool, pool_outputs
from geoforensics.core.models.reference import load_reference_checkpoint

__all__ = [
    "KINDS",
    "POOLING_METHODS",
    "AudioGeolocator",
    "EncoderConfig",
    "MLPHead",
    "ModelConfig",
    "Prediction",
    "TransformerPooling",
    "WindowOutputs",
    "create_encoder",
    "denormalize_latlon",
    "frontend_for",
    "get_encoder_config",
    "iter_pooled_outputs",
    "list_encoders",
    "load_encoder_weights",
    "load_model",
    "load_reference_checkpoint",
    "locate_recording",
    "normalize_latlon",
    "pool",
    "pool_outputs",
    "predict_recordings",
    "read_state_dict",
    "register_encoder",
    "save_model",
    "window_outputs",
]
