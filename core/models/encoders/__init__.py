"""Audio encoders: model inputs -> feature vectors, registered by name.

- :mod:`.registry`: :class:`EncoderConfig`, :func:`register_encoder`, the lookups
  (:func:`get_encoder_config`, :func:`list_encoders`, :func:`create_encoder`,
  :func:`frontend_for`) and the feature extractors of frozen ``waveform-features`` encoders;
- :mod:`.weights`: weights files (:func:`read_state_dict`, :func:`load_encoder_weights`);
- :mod:`.waveform`: a recording's waveform windows for those extractors;
- the encoder modules, each registering its own entries: :mod:`.spectrogram`
  (``mobilenet_v3_large``, ``mobilenet_v3_small``, ``mobilenet_v3_small_128``, ``test_tiny``),
  :mod:`.birdnet` (``birdnet``), :mod:`geoforensics.core.models.clap` (``clap``) and
  :mod:`geoforensics.core.models.wav2clip` (``wav2clip``).

The encoder modules are imported in one place, :mod:`geoforensics.core.models` (this
package's parent, so it runs before any use of the registry); this package imports none.
"""

from __future__ import annotations

from geoforensics.core.models.encoders.registry import (
    INPUT_KINDS,
    EncoderConfig,
    EncoderFactory,
    PrecomputedFeatures,
    WaveformFeatureExtractor,
    create_encoder,
    feature_extractor,
    feature_extractor_identity,
    frontend_for,
    get_encoder_config,
    list_encoders,
    register_encoder,
    register_feature_extractor,
    require_encoder,
    waveform_features,
)
from geoforensics.core.models.encoders.waveform import WaveformWindows, iter_waveform_windows
from geoforensics.core.models.encoders.weights import (
    check_state_dict,
    error_summary,
    file_sha256,
    load_encoder_weights,
    read_state_dict,
    state_dict_problems,
)

__all__ = [
    "INPUT_KINDS",
    "EncoderConfig",
    "EncoderFactory",
    "PrecomputedFeatures",
    "WaveformFeatureExtractor",
    "WaveformWindows",
    "check_state_dict",
    "create_encoder",
    "error_summary",
    "feature_extractor",
    "feature_extractor_identity",
    "file_sha256",
    "frontend_for",
    "get_encoder_config",
    "iter_waveform_windows",
    "list_encoders",
    "load_encoder_weights",
    "read_state_dict",
    "register_encoder",
    "register_feature_extractor",
    "require_encoder",
    "state_dict_problems",
    "waveform_features",
]
