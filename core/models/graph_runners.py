"""Compiled graph runtimes for an exported model (OpenVINO, ONNX Runtime): torch-free.

:mod:`.onnx_backend` exports a model's ONNX graph with torch; the runners here run such a graph
on numpy batches, so that a process that only runs a cached graph (``check`` with a model
whose graph was exported before, :mod:`.graph_agclip`) never imports torch. The environment
variables choosing the runtime and its precision are read here too.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import InputError

#: Environment variable choosing the inference backend: ``auto`` (default), ``openvino``,
#: ``onnx``, ``torch``.
BACKEND_ENV = "GEOFORENSICS_INFERENCE_BACKEND"
BACKENDS = ("auto", "openvino", "onnx", "torch")
#: Encoders whose ONNX graph was measured to be faster than torch eager on the CPU.
ONNX_ENCODERS = ("mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v3_small_128")


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


def runtime_available(choice: str) -> bool:
    """Whether a graph runtime for the backend ``choice`` is installed: OpenVINO for
    ``openvino``, ONNX Runtime for ``onnx``, either for ``auto`` (none for ``torch``)."""
    if choice == "openvino":
        return openvino_available()
    if choice == "onnx":
        return onnxruntime_available()
    return choice == "auto" and (onnxruntime_available() or openvino_available())


def default_threads() -> int:
    """Threads for a graph runtime: torch's setting when torch is loaded (the caller may have
    set it), else ``OMP_NUM_THREADS`` when set (a batch worker's share), else every core."""
    torch_module = sys.modules.get("torch")
    if torch_module is not None:
        return int(torch_module.get_num_threads())
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


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

    def __call__(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """(B, C, H, W) float32 images (numpy, or a torch tensor) -> features (B, F) and head
        output (B, O), float32."""
        if hasattr(images, "detach"):  # a torch tensor
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
        options.intra_op_num_threads = int(threads or default_threads())
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
    :data:`PRECISION_ENV`). Same call as :class:`OnnxRunner`. With ``streams`` > 1 (the
    default with two or more threads) the graph is compiled for throughput and each batch is
    split into one part per stream, run side by side."""

    name = "OpenVINO"

    def __init__(
        self,
        path: Path,
        threads: int | None = None,
        max_batch: int = 16,
        precision: str = "f32",
        streams: int | None = None,
    ) -> None:
        import openvino as ov

        if precision not in PRECISIONS:
            raise InputError(f"OpenVINO precision {precision!r}: choose one of {PRECISIONS}")
        core = ov.Core()
        count = int(threads or default_threads())
        #: Inference streams run side by side (two with two or more threads: measured 6 %
        #: more windows/s than one two-thread stream on 2 cores, outputs identical).
        self.streams = max(1, int(streams)) if streams is not None else min(2, count)
        config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": count,
            "PERFORMANCE_HINT": "LATENCY" if self.streams == 1 else "THROUGHPUT",
            "INFERENCE_PRECISION_HINT": precision,
        }
        if self.streams > 1:
            config["NUM_STREAMS"] = self.streams
        self.path = path
        self.max_batch = int(max_batch)
        self._compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        #: The precision OpenVINO runs in (``bf16`` falls back to ``f32`` without native
        #: bfloat16 on the CPU).
        used = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = str(used.to_string() if hasattr(used, "to_string") else used)
        self._requests = [self._compiled.create_infer_request() for _ in range(self.streams)]
        self._request = self._requests[0]
        self._lock = threading.Lock()

    def __call__(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`_GraphRunnerBase.__call__`; with several streams the batch is split into
        one part per stream, run side by side."""
        if self.streams == 1:
            return super().__call__(images)
        if hasattr(images, "detach"):  # a torch tensor
            images = images.detach().cpu().numpy()
        batch = np.ascontiguousarray(images, dtype=np.float32)
        step = max(1, min(self.max_batch, -(-len(batch) // self.streams)))
        parts = [batch[i : i + step] for i in range(0, len(batch), step)]
        features, heads = [], []
        with self._lock:
            for first in range(0, len(parts), self.streams):
                active = list(
                    zip(self._requests, parts[first : first + self.streams], strict=False)
                )
                for request, part in active:
                    request.start_async({0: part})
                for request, _part in active:
                    request.wait()
                    features.append(np.array(request.get_output_tensor(0).data))
                    heads.append(np.array(request.get_output_tensor(1).data))
        return np.concatenate(features), np.concatenate(heads)

    def _run(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._request.infer({0: part})
        outputs = (self._request.get_output_tensor(i).data for i in (0, 1))
        feature, head = (np.array(o) for o in outputs)  # copies: the request reuses its buffers
        return feature, head


GraphRunner = OnnxRunner | OpenVinoRunner


def graph_runner(target: Path, choice: str, precision: str) -> GraphRunner:
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


#: glibc's ``mallopt`` parameter number of M_MMAP_THRESHOLD.
_M_MMAP_THRESHOLD = -3
#: Blocks at least this large come straight from the kernel and go back when freed: the
#: batch-sized buffers (a batch of 32 images is 19 MB), not the front-ends' per-block scratch
#: (about 1-2 MB, reused from the heap; see :func:`fix_malloc_threshold`).
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def fix_malloc_threshold() -> bool:
    """Pin glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES` (4 MiB) for the process
    (Linux; once).

    Why: glibc raises the threshold each time a large block is freed, after which the
    batch-sized buffers of the front-end and the graph runtimes (tens of MB, allocated and
    freed per batch by several threads) come from the heap and fragment it, so a long
    recording's resident memory crept up by ~40 MB per 30 min of audio. With the threshold
    fixed, those buffers are mapped and unmapped each batch. Why not lower: each mapped block
    is page-faulted in anew when it is touched, and the front-ends' per-block scratch (frames,
    spectra: 1-2 MB, allocated and freed thousands of times a minute of audio) would be too;
    at 128 KiB that cost 160-220 thousand page faults per 300 s of audio and about 10 % of
    perf b1. Memory over a 2-hour check is flat at either threshold (measured, torch, ONNX
    Runtime and OpenVINO). Skipped when the user set ``MALLOC_MMAP_THRESHOLD_``; returns
    whether it was applied.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False


__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "MMAP_THRESHOLD_BYTES",
    "ONNX_ENCODERS",
    "PRECISIONS",
    "PRECISION_ENV",
    "GraphRunner",
    "OnnxRunner",
    "OpenVinoRunner",
    "default_threads",
    "fix_malloc_threshold",
    "graph_runner",
    "inference_backend",
    "inference_precision",
    "onnxruntime_available",
    "openvino_available",
    "runtime_available",
]
