"""Audio models: encoder registry, heads, the geolocator, reference checkpoints, pooling, inference.

- :mod:`.encoders`: registered audio encoders (``mobilenet_v3_large``, ``mobilenet_v3_small``,
  ``mobilenet_v3_small_128``, ``test_tiny``, and ``birdnet``: BirdNET's frozen 1,024-d
  embeddings, for head-only training), :func:`create_encoder`, weights files;
- :mod:`.heads`: the paper's 2-layer MLP head;
- :mod:`.geolocator`: :class:`AudioGeolocator` (AG-CLIP, regression, classification) with
  :class:`ModelConfig`, :func:`save_model` / :func:`load_model` (safetensors + JSON);
- :mod:`.reference`: the released AG-CLIP checkpoints (torchvision state dicts);
- :mod:`.pooling`: window outputs -> one vector per recording (mean, max, k-means, transformer);
- :mod:`.inference`: per-window outputs of a file, recording-level predictions.
"""

from __future__ import annotations

from .encoders import (
    EncoderConfig,
    create_encoder,
    frontend_for,
    get_encoder_config,
    list_encoders,
    load_encoder_weights,
    read_state_dict,
    register_encoder,
)
from .geolocator import (
    KINDS,
    AudioGeolocator,
    ModelConfig,
    denormalize_latlon,
    load_model,
    normalize_latlon,
    save_model,
)
from .heads import MLPHead
from .inference import (
    Prediction,
    WindowOutputs,
    iter_pooled_outputs,
    locate_recording,
    predict_recordings,
    window_outputs,
)
from .pooling import POOLING_METHODS, TransformerPooling, pool, pool_outputs
from .reference import load_reference_checkpoint

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
