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
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_path
from geoforensics.core.paths import cache_dir

if TYPE_CHECKING:
    from geoforensics.core.models.geolocator import AudioGeolocator

#: Environment variable choosing the inference backend: ``auto`` (default), ``openvino``,
#: ``onnx``, ``torch``.
BACKEND_ENV = "GEOFORENSICS_INFERENCE_BACKEND"
BACKENDS = ("auto", "openvino", "onnx", "torch")
#: Encoders whose ONNX graph was measured to be faster than torch eager on the CPU.
ONNX_ENCODERS = ("mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v3_small_128")
OPSET = 17


#: Environment variable choosing OpenVINO's precision: ``f32`` (default: outputs equal ONNX
#: Runtime's and torch's to float32 rounding) or ``bf16`` (bfloat16 where the CPU has it
#: natively, AMX or AVX-512 BF16: ~1.6x faster on the model, outputs ~1e-2 relative off;
#: ``geoforensics perf`` sections b7 and g measure both). Ignored by ONNX Runtime and torch.
PRECISION_ENV = "GEOFORENSICS_INFERENCE_PRECISION"
PRECISIONS = ("f32", "bf16")


def inference_precision() -> str:
    """The OpenVINO precision asked for by :data:`PRECISION_ENV` (``f32`` when unset)."""
    value = os.environ.get(PRECISION_ENV, "f32").strip().lower() or "f32"
    if value not in PRECISIONS:
        raise InputError(f"{PRECISION_ENV}={value!r}: choose one of {', '.join(PRECISIONS)}")
    return value


def inference_backend() -> str:
    """The backend asked for by :data:`BACKEND_ENV` (``auto`` when unset)."""
    value = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        raise InputError(f"{BACKEND_ENV}={value!r}: choose one of {', '.join(BACKENDS)}")
    return value


def onnxruntime_available() -> bool:
    """Whether the onnxruntime package imports."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_available() -> bool:
    """Whether the openvino package (the optional ``openvino`` extra) imports."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


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


class _GraphRunnerBase:
    """A compiled graph computing ``(features, head output)`` of a batch of images, run
    ``max_batch`` images at a time (one caller at a time); subclasses run one part."""

    #: The runtime's name, for reports (``geoforensics perf``).
    name: str
    max_batch: int
    path: Path
    _lock: threading.Lock

    def _run(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, C, H, W) float32 images -> features (B, F) and head output (B, O), float32."""
        if isinstance(images, torch.Tensor):
            images = images.detach().cpu().numpy()
        batch = np.ascontiguousarray(images, dtype=np.float32)
        features, heads = [], []
        with self._lock:
            for start in range(0, len(batch), self.max_batch):
                feature, head = self._run(batch[start : start + self.max_batch])
                features.append(feature)
                heads.append(head)
        return np.concatenate(features), np.concatenate(heads)


class OnnxRunner(_GraphRunnerBase):
    """An ONNX Runtime session computing ``(features, head output)`` of a batch of images."""

    name = "ONNX Runtime"

    def __init__(self, path: Path, threads: int | None = None, max_batch: int = 16) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # no memory arena and at most ``max_batch`` images per run: activations are freed
        # after each run, which keeps a long recording's peak memory low (measured: about
        # 100-150 MB less at the same speed as one arena-backed run of 32)
        options.enable_cpu_mem_arena = False
        self.max_batch = int(max_batch)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.path = path
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def _run(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feature, head = self._session.run(None, {"images": part})
        return np.asarray(feature), np.asarray(head)


class OpenVinoRunner(_GraphRunnerBase):
    """The same ONNX graph compiled by OpenVINO for the CPU, in float32 by default (``f32``
    precision hint: no bfloat16 on AMX/AVX-512 machines, so the outputs match ONNX Runtime's
    to float32 rounding), or in bfloat16 when ``precision`` is ``"bf16"`` (see
    :data:`PRECISION_ENV`). Same call as :class:`OnnxRunner`."""

    name = "OpenVINO"

    def __init__(
        self,
        path: Path,
        threads: int | None = None,
        max_batch: int = 16,
        precision: str = "f32",
    ) -> None:
        import openvino as ov

        if precision not in PRECISIONS:
            raise InputError(f"OpenVINO precision {precision!r}: choose one of {PRECISIONS}")
        core = ov.Core()
        config = {
            "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
        }
        self.path = path
        self.max_batch = int(max_batch)
        self._compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        #: The precision OpenVINO runs in (``bf16`` falls back to ``f32`` without native
        #: bfloat16 on the CPU).
        used = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = str(used.to_string() if hasattr(used, "to_string") else used)
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()

    def _run(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._request.infer({0: part})
        outputs = (self._request.get_output_tensor(i).data for i in (0, 1))
        feature, head = (np.array(o) for o in outputs)  # copies: the request reuses its buffers
        return feature, head


GraphRunner = OnnxRunner | OpenVinoRunner

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
    if choice == "openvino":
        return openvino_available()
    return onnxruntime_available() or (choice == "auto" and openvino_available())


def _graph_runner(target: Path, choice: str, precision: str) -> GraphRunner:
    """OpenVINO (in ``precision``) when asked for, or under ``auto`` when installed (faster
    on every CPU measured); ONNX Runtime otherwise, or when OpenVINO fails under ``auto``."""
    if choice == "openvino":
        return OpenVinoRunner(target, precision=precision)
    if choice == "auto" and openvino_available():
        try:
            return OpenVinoRunner(target, precision=precision)
        except Exception as error:  # a compile problem: ONNX Runtime still runs the graph
            warnings.warn(
                f"OpenVINO unavailable ({type(error).__name__}: {error}); using ONNX Runtime",
                RuntimeWarning,
                stacklevel=3,
            )
    return OnnxRunner(target)


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
            target = cache_dir("onnx") / f"{weights_sha256(model)[:40]}.onnx"
            if not target.is_file():
                _export(model, target)
            runner = _graph_runner(target, choice, precision)
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
    "inference_backend",
    "inference_precision",
    "onnx_applicable",
    "onnx_runner",
    "onnxruntime_available",
    "openvino_available",
    "weights_sha256",
]
