"""BirdNET V2.4's audio model run by OpenVINO: the STFT in scipy, the network in OpenVINO.

Why: the TFLite runtime runs BirdNET at about 50-70x real time on two cores (its threads
barely help), which made BirdNET the slowest step of a long ``check``. OpenVINO (the
``openvino`` extra) runs the network after the spectrograms at ~290x real time, but its
TFLite reader has no ``RFFT2D``, the operator at the heart of BirdNET's two built-in
spectrogram layers. With the STFT in scipy the whole audio path is 1.6-2.3x TFLite's speed
(``geoforensics perf`` b5).

So the model is cut in two where each spectrogram layer turns its complex STFT into float32
(the tensors ``model/MEL_SPEC1/Cast`` and ``model/MEL_SPEC2/Cast``; a complex-to-float cast
keeps the real part):

* the **front** (before the cut) is computed here with numpy and ``scipy.fft``: each window
  is scaled to [-1, 1] by its own minimum and maximum (``(x - min) / (max - min + 1e-6)``,
  minus 0.5, times 2), cut into frames (2,048 samples every 278, and 1,024 every 280, 511
  frames each), multiplied by the model's Hann windows and Fourier-transformed; the real
  parts are the two inputs of the back;
* the **back** (the mel filterbanks, the network and the classifier) is the original
  flatbuffer with the front operators removed and the two cut tensors made its inputs, read
  and compiled by OpenVINO in float32. The embedding (the classifier's input) is a second
  output, as in :mod:`.birdnet_audio`.

Every constant of the front (the scaling, frame lengths and steps, the windows, the FFT
lengths) is read from the model file by tensor name, and the operators the front replaces
are checked to be the ones expected; a model laid out otherwise is refused
(:class:`SplitError`) and the TFLite runtime is used instead. When the split model is first
written to the cache it is also checked against the TFLite runtime on two seeded full
windows (largest logit difference at most :data:`MAX_LOGIT_DIFFERENCE`).

Agreement with TFLite, measured on BirdNET V2.4 FP32: about 1e-4 on logits of magnitude ~20
for windows full of sound, and the same detections on real soundscapes. Windows that are
mostly silence or zero padding differ more (up to ~0.05 on logits, ~1e-3 on probabilities):
BirdNET raises its squared mel values to a small power, which magnifies the last-bit
differences between two float32 FFTs where the spectrum is near zero.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.fileio import atomic_write
from geoforensics.core.paths import cache_dir
from geoforensics.core.species.birdnet_files import BIRDNET_SAMPLE_RATE, BIRDNET_WINDOW_SAMPLES

#: The two tensors where the model is cut (each spectrogram layer's real-valued STFT).
CUT_TENSORS = ("model/MEL_SPEC1/Cast", "model/MEL_SPEC2/Cast")
#: Largest logit difference from the TFLite runtime accepted when a split model is built.
MAX_LOGIT_DIFFERENCE = 0.01
#: Operators the front may contain (the scaling, the framing arithmetic, the STFT).
_FRONT_OPERATORS = {
    "ADD",
    "CAST",
    "CONCATENATION",
    "DIV",
    "EXPAND_DIMS",
    "FLOOR_DIV",
    "GATHER",
    "MAXIMUM",
    "MUL",
    "PACK",
    "RANGE",
    "REDUCE_MAX",
    "REDUCE_MIN",
    "RESHAPE",
    "RFFT2D",
    "SHAPE",
    "SPLIT_V",
    "SQUEEZE",
    "STRIDED_SLICE",
    "SUB",
}
#: Version of the cached split model (bump when the split changes).
_SPLIT_FORMAT = 1


class SplitError(ValueError):
    """The model file is not laid out as BirdNET V2.4 (it cannot be split as described)."""


@dataclass(frozen=True)
class SpectrogramBranch:
    """One of BirdNET's spectrogram layers up to the cut: frames of ``frame_length`` samples
    every ``frame_step``, times ``window``, FFT of ``frame_length`` points, real part."""

    frame_length: int
    frame_step: int
    window: np.ndarray

    def frames_of(self, samples: int) -> int:
        """Frames of a signal of ``samples`` samples (no padding)."""
        return 1 + (samples - self.frame_length) // self.frame_step

    def real_stft(self, signal: np.ndarray, workers: int) -> np.ndarray:
        """(B, samples) scaled signal -> (B, frames, frame_length // 2 + 1) float32."""
        out = np.empty(
            (len(signal), self.frames_of(signal.shape[1]), self.frame_length // 2 + 1),
            dtype=np.float32,
        )
        for row in range(len(signal)):
            self.real_stft_into(signal[row], out[row])
        return out

    def real_stft_into(self, signal: np.ndarray, out: np.ndarray) -> None:
        """The real STFT of one (samples,) signal into ``out`` (frames, bins), in blocks of
        :data:`_FRONT_FRAMES` frames (the windowed block and its spectrum stay in cache)."""
        import scipy.fft

        frames = np.lib.stride_tricks.sliding_window_view(signal, self.frame_length)
        frames = frames[:: self.frame_step]
        for start in range(0, len(frames), _FRONT_FRAMES):
            block = frames[start : start + _FRONT_FRAMES] * self.window
            spectrum = scipy.fft.rfft(block, axis=-1, workers=1)
            out[start : start + len(block)] = spectrum.real


#: Frames per block of the front's STFT (a 2,048-sample block of 128 frames is 1 MB).
_FRONT_FRAMES = 128


@functools.lru_cache(maxsize=4)
def _front_pool(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` threads for the front (numpy and scipy release the GIL in the
    heavy calls), one per size for the process."""
    return ThreadPoolExecutor(threads, thread_name_prefix="birdnet-front")


@dataclass(frozen=True)
class BirdNETFront:
    """The front of the model: the per-window scaling and the two spectrogram branches."""

    epsilon: float
    offset: float
    scale: float
    branches: tuple[SpectrogramBranch, ...]

    def __call__(
        self, windows: np.ndarray, workers: int = 1, outs: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """(B, 144000) float32 windows -> the back's inputs, one array per branch; the
        windows are spread over ``workers`` threads (the same numbers for any count). ``outs``
        (from :meth:`output_buffers`) are written into instead of new arrays."""
        count, samples = windows.shape
        if outs is None:
            outs = self.output_buffers(count, samples)

        def one_window(row: int) -> None:
            window = windows[row]
            low = window.min()
            shifted = window - low
            high = shifted.max()
            scaled = (shifted / (high + np.float32(self.epsilon)) - np.float32(self.offset)) * (
                np.float32(self.scale)
            )
            for branch, out in zip(self.branches, outs, strict=True):
                branch.real_stft_into(scaled, out[row])

        if workers <= 1 or count <= 1:
            for row in range(count):
                one_window(row)
        else:
            for _ in _front_pool(int(workers)).map(one_window, range(count)):
                pass  # re-raises the first error
        return outs

    def output_buffers(self, count: int, samples: int) -> list[np.ndarray]:
        """Empty arrays for the back's inputs of ``count`` windows of ``samples`` samples."""
        return [
            np.empty((count, b.frames_of(samples), b.frame_length // 2 + 1), dtype=np.float32)
            for b in self.branches
        ]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (windows as float lists: float32 -> float64 -> float32 is exact)."""
        return {
            "epsilon": self.epsilon,
            "offset": self.offset,
            "scale": self.scale,
            "branches": [
                {
                    "frame_length": b.frame_length,
                    "frame_step": b.frame_step,
                    "window": [float(v) for v in b.window],
                }
                for b in self.branches
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BirdNETFront:
        """Inverse of :meth:`to_json`."""
        return cls(
            epsilon=float(data["epsilon"]),
            offset=float(data["offset"]),
            scale=float(data["scale"]),
            branches=tuple(
                SpectrogramBranch(
                    int(b["frame_length"]),
                    int(b["frame_step"]),
                    np.asarray(b["window"], dtype=np.float32),
                )
                for b in data["branches"]
            ),
        )


def _operator_name(schema: Any, model: Any, op: Any) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    for name, value in vars(schema.BuiltinOperator).items():
        if not name.startswith("_") and value == builtin:
            return str(name)
    return str(builtin)


def _needed_operators(graph: Any, targets: list[int], stop: set[int]) -> list[int]:
    """Indices (in order) of the operators that compute ``targets`` from ``stop`` tensors,
    constants and the graph's inputs."""
    writer = {int(out): k for k, op in enumerate(graph.operators) for out in op.outputs}
    needed: set[int] = set()
    pending = list(targets)
    seen: set[int] = set()
    while pending:
        tensor = pending.pop()
        if tensor < 0 or tensor in seen or tensor in stop:
            continue
        seen.add(tensor)
        if tensor in writer:
            needed.add(writer[tensor])
            pending.extend(int(i) for i in graph.operators[writer[tensor]].inputs)
    return sorted(needed)


def split_model(content: bytes) -> tuple[bytes, BirdNETFront]:
    """Cut the (two-output) BirdNET audio flatbuffer ``content`` at :data:`CUT_TENSORS`:
    the back as flatbuffer bytes and the front's constants. Raises :class:`SplitError`."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    graph = model.subgraphs[0]
    index = {graph.tensors[i].name.decode(): i for i in range(len(graph.tensors))}

    def constant(name: str) -> np.ndarray:
        if name not in index:
            raise SplitError(f"no tensor {name!r} in the model")
        tensor = graph.tensors[index[name]]
        data = model.buffers[tensor.buffer].data
        if data is None:
            raise SplitError(f"tensor {name!r} is not a constant")
        kinds = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT32: np.int32}
        if tensor.type not in kinds:
            raise SplitError(f"tensor {name!r} has an unexpected type")
        return np.frombuffer(bytes(data), dtype=kinds[tensor.type])

    def scalar(name: str) -> float:
        values = constant(name)
        if values.size != 1:
            raise SplitError(f"tensor {name!r} is not a scalar")
        return float(values[0])

    cuts = []
    for name in CUT_TENSORS:
        if name not in index:
            raise SplitError(f"no tensor {name!r} in the model")
        cuts.append(index[name])
    inputs = [int(i) for i in graph.inputs]
    outputs = [int(i) for i in graph.outputs]
    front_ops = _needed_operators(graph, cuts, set())
    back_ops = _needed_operators(graph, outputs, set(cuts))
    if set(front_ops) & set(back_ops):
        raise SplitError("the network reads the signal other than through the spectrograms")
    kinds = [_operator_name(schema, model, graph.operators[k]) for k in front_ops]
    unexpected = sorted(set(kinds) - _FRONT_OPERATORS)
    if unexpected or kinds.count("RFFT2D") != len(CUT_TENSORS):
        raise SplitError(f"unexpected spectrogram operators {unexpected or kinds}")
    branches = []
    for number in (1, 2):
        prefix = f"model/MEL_SPEC{number}/stft"
        length = int(scalar(f"{prefix}/frame_length"))
        window = constant(f"{prefix}/hann_window/sub_2").astype(np.float32)
        if window.size != length:
            raise SplitError(f"{prefix}: window of {window.size} samples, frames of {length}")
        ffts = [
            constant(graph.tensors[int(graph.operators[k].inputs[1])].name.decode())
            for k in front_ops
            if _operator_name(schema, model, graph.operators[k]) == "RFFT2D"
            and graph.tensors[int(graph.operators[k].outputs[0])].name.decode().startswith(prefix)
        ]
        if len(ffts) != 1 or int(ffts[0][-1]) != length:
            raise SplitError(f"{prefix}: the FFT length is not the frame length")
        branches.append(
            SpectrogramBranch(length, int(scalar(f"{prefix}/frame_step")), window.copy())
        )
    front = BirdNETFront(
        epsilon=scalar("model/MEL_SPEC1/add/y"),
        offset=scalar("model/MEL_SPEC1/Sub_1/y"),
        scale=scalar("model/MEL_SPEC1/Mul/y"),
        branches=tuple(branches),
    )
    if inputs[0] in cuts:
        raise SplitError("the cut tensors are the model's input")
    graph.operators = [graph.operators[k] for k in back_ops]
    graph.inputs = np.array(cuts, dtype=np.int32)
    builder = flatbuffers.Builder(len(content) + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), front


def _check_against_tflite(runner: OpenVinoBirdNET, reference: Any) -> float:
    """Largest logit difference between ``runner`` and a TFLite runner ``reference`` on two
    seeded windows (noise and a chirp)."""
    rng = np.random.default_rng(0)
    t = np.arange(BIRDNET_WINDOW_SAMPLES, dtype=np.float64) / BIRDNET_SAMPLE_RATE
    chirp = 0.3 * np.sin(2 * np.pi * (2_000 + 1_500 * t) * t)
    noise = 0.1 * rng.standard_normal(BIRDNET_WINDOW_SAMPLES)
    windows = np.stack([noise, chirp]).astype(np.float32)
    logits, _ = runner.run(windows)
    expected, _ = reference(windows)
    return float(np.max(np.abs(logits - expected)))


class OpenVinoBirdNET:
    """BirdNET's audio network compiled by OpenVINO for the CPU (float32), fed by
    :class:`BirdNETFront`. ``run`` maps (B, 144000) windows to (logits, embeddings)."""

    name = "OpenVINO"

    def __init__(self, back_file: Path, front: BirdNETFront, num_threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(back_file))
        shapes = {}
        self._order: list[int] = []  # the front's branch that feeds each input
        for port in model.inputs:
            bins = int(port.get_partial_shape()[2].get_length())
            index = next(i for i, b in enumerate(front.branches) if b.frame_length // 2 + 1 == bins)
            branch = front.branches[index]
            frames = 1 + (BIRDNET_WINDOW_SAMPLES - branch.frame_length) // branch.frame_step
            shapes[port] = [-1, frames, bins]
            self._order.append(index)
        model.reshape(shapes)
        config = {
            "INFERENCE_NUM_THREADS": max(1, int(num_threads)),
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self._compiled = core.compile_model(model, "CPU", config)
        #: Number of classes the network outputs (checked against the labels).
        self.n_outputs = int(self._compiled.outputs[0].get_partial_shape()[1].get_length())
        self._request = self._compiled.create_infer_request()
        self.front = front
        self.num_threads = max(1, int(num_threads))
        self._lock = threading.Lock()
        #: The front's output arrays of the last batch shape, written again for the next
        #: batch of that shape and handed to OpenVINO without a copy. (Fresh arrays of
        #: 25 MB per batch of 8 were page-faulted in anew each time: the front took 1.4x as
        #: long.)
        self._buffers: tuple[tuple[int, ...], list[np.ndarray]] | None = None

    def run(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 144000) float32 -> logits (B, 6522) and embeddings (B, 1024), float32."""
        with self._lock:  # the buffers and the request serve one batch at a time
            if self._buffers is None or self._buffers[0] != windows.shape:
                self._buffers = (windows.shape, self.front.output_buffers(*windows.shape))
            specs = self.front(windows, self.num_threads, outs=self._buffers[1])
            inputs = {i: specs[j] for i, j in enumerate(self._order)}
            self._request.infer(inputs, share_inputs=True)
            logits, embeddings = (
                np.array(self._request.get_output_tensor(i).data) for i in (0, 1)
            )  # copies: the request reuses its buffers
        return logits, embeddings


def openvino_birdnet(
    two_output: bytes | Path, key: str, num_threads: int, reference: Any
) -> OpenVinoBirdNET:
    """An :class:`OpenVinoBirdNET` for the two-output model ``two_output`` (bytes or file).

    The split model and its front's constants are cached under ``cache_dir("birdnet")`` by
    ``key``; when they are first built, the result is checked against ``reference`` (a
    callable giving TFLite's ``(logits, embeddings)``) and refused (:class:`SplitError`) if
    the logits differ by more than :data:`MAX_LOGIT_DIFFERENCE`.
    """
    folder = cache_dir("birdnet")
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    back_file = folder / f"audio-openvino-back-{digest}.tflite"
    side = folder / f"audio-openvino-back-{digest}.json"
    meta: Any = None
    if side.is_file() and back_file.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
    if (
        isinstance(meta, dict)
        and meta.get("format") == _SPLIT_FORMAT
        and meta.get("key") == key
        and back_file.stat().st_size == meta.get("size")
    ):
        return OpenVinoBirdNET(back_file, BirdNETFront.from_json(meta["front"]), num_threads)
    content = two_output if isinstance(two_output, bytes) else Path(two_output).read_bytes()
    back, front = split_model(content)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(back_file, "wb") as fh:
        fh.write(back)
    runner = OpenVinoBirdNET(back_file, front, num_threads)
    difference = _check_against_tflite(runner, reference)
    if not difference <= MAX_LOGIT_DIFFERENCE:
        os.unlink(back_file)
        raise SplitError(
            f"OpenVINO's logits differ from TFLite's by {difference:.2g} "
            f"(more than {MAX_LOGIT_DIFFERENCE:g})"
        )
    with atomic_write(side) as fh:
        json.dump(
            {
                "format": _SPLIT_FORMAT,
                "key": key,
                "size": len(back),
                "max_logit_difference": difference,
                "front": front.to_json(),
            },
            fh,
        )
    return runner


__all__ = [
    "CUT_TENSORS",
    "MAX_LOGIT_DIFFERENCE",
    "BirdNETFront",
    "OpenVinoBirdNET",
    "SpectrogramBranch",
    "SplitError",
    "openvino_birdnet",
    "split_model",
]
