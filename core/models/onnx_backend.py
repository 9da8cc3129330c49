"""ONNX Runtime for a spectrogram model's encoder + head on the CPU (the fast inference path).

Why: on the 2-core development machine torch's eager CPU kernels run MobileNetV3-large at
about 15-20 windows per second, ONNX Runtime's fused graph (convolution + BatchNorm + activation
folded, depthwise kernels tuned) at 65-110, with outputs equal to float32 rounding (max
difference ~1e-8; ``geoforensics perf`` measures both and the accuracy on the synthetic bench).
int8 static quantisation and bfloat16 autocast were measured too and did not pay (see the
README's performance section), so the graph stays float32.

:func:`onnx_runner` returns a runner for a model (or ``None`` when the torch path must be
used: a waveform-features model, a model not on the CPU, no graph runtime installed, an
encoder not in :data:`ONNX_ENCODERS`, or ``GEOFORENSICS_INFERENCE_BACKEND=torch``). The same
graph runs in Intel's OpenVINO (:class:`OpenVinoRunner`, float32) when the ``openvino`` extra
is installed — ``auto`` prefers it: 1.2-1.3x ONNX Runtime on the model alone and 1.1-1.3x end
to end on the Xeon this was measured on, outputs equal to float32 rounding — and in ONNX
Runtime (:class:`OnnxRunner`) otherwise (``GEOFORENSICS_INFERENCE_BACKEND=onnx`` or
``openvino`` force one). The exported graph is
cached on disk under ``cache_dir("onnx")``, keyed by the SHA-256 of the model's config and
weights (so a retrained or edited model gets a new graph), and the session is kept in memory
per model object until its weights change (parameters are compared by tensor version). If
the export or the session fails, ``auto`` warns once per model and falls back to torch.

The runners and the environment variables live in :mod:`.graph_runners` (torch-free, re-exported
here); :mod:`.graph_agclip` runs a recorded graph in a process that never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from geoforensics.core.fileio import atomic_path
from geoforensics.core.models.graph_runners import (
    BACKEND_ENV,
    BACKENDS,
    ONNX_ENCODERS,
    PRECISION_ENV,
    PRECISIONS,
    GraphRunner,
    OnnxRunner,
    OpenVinoRunner,
    graph_runner,
    inference_backend,
    inference_precision,
    onnxruntime_available,
    openvino_available,
    runtime_available,
)
from geoforensics.core.paths import cache_dir

if TYPE_CHECKING:
    from geoforensics.core.models.geolocator import AudioGeolocator

#: ONNX opset of the exported graphs.
OPSET = 17


class _EncoderAndHead(nn.Module):
    """images -> (features, raw head output): what the exported graph computes."""

    def __init__(self, model: AudioGeolocator) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.head = model.head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(images)
        return features, self.head(features)


def _fingerprint(model: nn.Module) -> tuple[tuple[int, int], ...]:
    """Cheap identity of the current weights: storage pointer and version of every tensor."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def weights_sha256(model: AudioGeolocator) -> str:
    """SHA-256 of the model's config, its weights and the torch version (the graph's key)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    digest.update(f"torch={torch.__version__};opset={OPSET}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
    return digest.hexdigest()


def _export(model: AudioGeolocator, target: Path) -> None:
    """Write the float32 ONNX graph of encoder + head (dynamic batch) atomically."""

    wrapper = _EncoderAndHead(model).eval()
    shape = model.frontend_config.input_shape
    example = torch.zeros((2, *shape), dtype=torch.float32)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            str(tmp),
            input_names=["images"],
            output_names=["features", "head"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}, "head": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


_RUNNERS: weakref.WeakKeyDictionary[nn.Module, tuple[Any, GraphRunner | None]] = (
    weakref.WeakKeyDictionary()
)
_RUNNERS_LOCK = threading.Lock()


def onnx_applicable(model: AudioGeolocator, backend: str | None = None) -> bool:
    """Whether :func:`onnx_runner` would run ``model`` with ONNX Runtime (see module doc)."""
    choice = inference_backend() if backend is None else backend
    if choice == "torch" or model.frozen_features:
        return False
    if next(model.parameters()).device.type != "cpu":
        return False
    if choice == "auto" and model.config.encoder not in ONNX_ENCODERS:
        return False
    return runtime_available(choice)


def exported_graph(model: AudioGeolocator) -> Path:
    """The cached ONNX graph of ``model``'s encoder + head, exported on first use (keyed by
    :func:`weights_sha256`)."""
    target = cache_dir("onnx") / f"{weights_sha256(model)[:40]}.onnx"
    if not target.is_file():
        _export(model, target)
    return target


def onnx_runner(model: AudioGeolocator, backend: str | None = None) -> GraphRunner | None:
    """The graph runner of ``model`` (the ONNX graph exported and cached on first use, run by
    OpenVINO or ONNX Runtime), or ``None`` when inference should stay in torch (see the
    module docstring)."""
    choice = inference_backend() if backend is None else backend
    if not onnx_applicable(model, choice):
        return None

    precision = inference_precision()
    fingerprint = (_fingerprint(model), choice, precision)
    with _RUNNERS_LOCK:
        held = _RUNNERS.get(model)
        if held is not None and held[0] == fingerprint:
            return held[1]
        runner: GraphRunner | None
        try:
            runner = graph_runner(exported_graph(model), choice, precision)
        except Exception as error:  # an export or runtime problem must not stop inference
            if choice in ("onnx", "openvino"):
                raise
            warnings.warn(
                f"ONNX Runtime path unavailable ({type(error).__name__}: {error}); "
                "running the model in torch",
                RuntimeWarning,
                stacklevel=2,
            )
            runner = None
        _RUNNERS[model] = (fingerprint, runner)
        return runner


__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "ONNX_ENCODERS",
    "PRECISIONS",
    "PRECISION_ENV",
    "GraphRunner",
    "OnnxRunner",
    "OpenVinoRunner",
    "exported_graph",
    "inference_backend",
    "inference_precision",
    "onnx_applicable",
    "onnx_runner",
    "onnxruntime_available",
    "openvino_available",
    "weights_sha256",
]
