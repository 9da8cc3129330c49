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
- :mod:`.inference`: per-window outputs of a file, recording-level predictions;
- :mod:`.graph_agclip`: an AG-CLIP model run from its exported graph alone (no torch), with
  :mod:`.graph_runners` (OpenVINO, ONNX Runtime) and :mod:`.onnx_backend` (the export).

Importing this package loads no torch: names are imported from their submodules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geoforensics.core.lazy_exports import lazy_exports

# Names are imported from their submodules on first use, so that the torch-free modules of this
# package (the exported-graph path of ``check``: ``graph_agclip``, ``graph_runners``,
# ``audio_places``, ``provenance``) load without torch. The encoder registry imports the
# built-in encoder modules on its first lookup (:mod:`.encoders.registry`).
if TYPE_CHECKING:
    from geoforensics.core.models.encoders import (
        EncoderConfig,
        create_encoder,
        frontend_for,
        get_encoder_config,
        list_encoders,
        load_encoder_weights,
        read_state_dict,
        register_encoder,
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
        iter_pooled_outputs,
        locate_recording,
        predict_recordings,
        window_outputs,
    )
    from geoforensics.core.models.pooling import POOLING_METHODS, pool, pool_outputs
    from geoforensics.core.models.recording_outputs import WindowOutputs
    from geoforensics.core.models.reference import load_reference_checkpoint
    from geoforensics.core.models.transformer_pooling import TransformerPooling

_EXPORTS = {
    "EncoderConfig": "encoders",
    "create_encoder": "encoders",
    "frontend_for": "encoders",
    "get_encoder_config": "encoders",
    "list_encoders": "encoders",
    "load_encoder_weights": "encoders",
    "read_state_dict": "encoders",
    "register_encoder": "encoders",
    "KINDS": "geolocator",
    "AudioGeolocator": "geolocator",
    "ModelConfig": "geolocator",
    "denormalize_latlon": "geolocator",
    "load_model": "geolocator",
    "normalize_latlon": "geolocator",
    "save_model": "geolocator",
    "MLPHead": "heads",
    "Prediction": "inference",
    "iter_pooled_outputs": "inference",
    "locate_recording": "inference",
    "predict_recordings": "inference",
    "window_outputs": "inference",
    "POOLING_METHODS": "pooling",
    "pool": "pooling",
    "pool_outputs": "pooling",
    "load_reference_checkpoint": "reference",
    "TransformerPooling": "transformer_pooling",
    "WindowOutputs": "recording_outputs",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
