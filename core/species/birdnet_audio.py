"""BirdNET V2.4's audio model: per-window species probabilities and 1,024-d embeddings.

Needs the optional ``birdnet`` extra (see :mod:`.birdnet_files`; CC BY-NC-SA 4.0).

Windows
    A file is decoded as a stream with our decoder (:func:`~geoforensics.core.audio.decode.
    stream_audio`: channels averaged, resampled to 48 kHz with soxr) and cut into 3 s windows
    (BirdNET's input is float32 ``[N, 144000]``) starting every ``3 - overlap_s`` seconds, as
    BirdNET-Analyzer's ``split_signal`` does: windows start at ``0, step, 2 step, ...`` while
    the start lies inside the recording; a window running past the end is **zero-padded**,
    and a tail shorter than ``min_tail_s`` (default 1.0 s, BirdNET-Analyzer's ``SIG_MINLEN``)
    is dropped, except that a recording shorter than that still gives one padded window. So
    a 10 s recording gives 4 windows (0, 3, 6, 9 s; the last holds 1 s of audio and 2 s of
    zeros). ``end_s`` of a padded window is the recording's end. Memory is bounded: only a
    decode chunk plus one batch of windows is held, whatever the length of the file.

Model outputs
    The model's output is logits (``Identity``, ``[N, 6522]``); probabilities are BirdNET's
    ``flat_sigmoid``: ``1 / (1 + exp(-sensitivity * clip(x, -15, 15)))`` with sensitivity
    1.0. The embedding is the input of the classifier layer (``model/CLASS_DENSE_LAYER``, a
    FULLY_CONNECTED op 1024 -> 6522): tensor ``model/GLOBAL_AVG_POOL/Mean`` (``[N, 1024]``,
    index 545 of 547 in V2.4 FP32, the global average pool after the last ReLU, so
    non-negative). It is found from the graph: the first input of the operator that writes
    the model's output, checked to be float32 ``[N, 1024]``.

    To read it cheaply, the model's flatbuffer is patched in memory (with the schema module
    that ships in ``ai-edge-litert`` and its ``flatbuffers`` dependency) so that the
    embedding is a second model output; this costs ~0.5 s once per process, gives outputs
    identical to the original model, and keeps memory small. The alternative,
    ``interpreter("audio", preserve_all_tensors=True)``, keeps every intermediate tensor
    (~200 MB per window in a batch) and is used only as a fall-back when patching fails; the
    embedding is then the last float32 ``[N, 1024]`` tensor before the output.

Runtime
    With the ``openvino`` extra installed, the network runs in OpenVINO with the spectrogram
    computed by scipy (:mod:`.birdnet_openvino`: 1.6-2.3x the TFLite runtime's speed on two
    cores end to end, ``geoforensics perf`` b5; logits equal to ~1e-4); otherwise, or with
    ``GEOFORENSICS_BIRDNET_BACKEND=tflite``, in the TFLite runtime (``ai-edge-litert``).
    ``auto`` (the default) falls back to TFLite with a warning when OpenVINO cannot take the
    model. :attr:`BirdNETAudio.backend` says which one runs.

Batching
    Windows go through the interpreter ``batch_size`` at a time (its input resized to the
    batch, allocated once; a short last batch resizes it). Results equal one-window calls to
    ~1e-5.

:func:`birdnet_embeddings_for_recordings` caches per-recording embeddings on disk (keyed by
the file's SHA-256 and the settings) for training AG-CLIP heads on BirdNET features.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.audio.decode import stream_audio
from geoforensics.core.errors import InputError, MediaDecodeError, WeightsNotFoundError
from geoforensics.core.fileio import atomic_path, atomic_write, sha256_arrays, sha256_file
from geoforensics.core.paths import cache_dir
from geoforensics.core.species.birdnet_files import (
    BIRDNET_SAMPLE_RATE,
    BIRDNET_WINDOW_S,
    BIRDNET_WINDOW_SAMPLES,
    INSTALL_HINT,
    birdnet_file,
    birdnet_labels,
    interpreter,
    native_stderr_silenced,
)
from geoforensics.core.species.birdnet_openvino import OpenVinoBirdNET, openvino_birdnet
from geoforensics.core.species.detections import DEFAULT_MIN_CONFIDENCE, detect_species
from geoforensics.core.species.ranges import file_identity

if TYPE_CHECKING:
    from geoforensics.core.species.detections import Detection

#: Samples in one BirdNET window (3 s at 48 kHz).
WINDOW_SAMPLES = BIRDNET_WINDOW_SAMPLES
#: Size of BirdNET's embedding (the classifier layer's input).
EMBEDDING_DIM = 1024
#: Name of the embedding tensor in BirdNET V2.4 (documentation; it is found from the graph).
EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"
#: BirdNET-Analyzer's default sigmoid sensitivity.
DEFAULT_SENSITIVITY = 1.0
#: Shortest tail (seconds) that still gets its own padded window (BirdNET-Analyzer SIG_MINLEN).
DEFAULT_MIN_TAIL_S = 1.0
#: Windows per interpreter call.
DEFAULT_BATCH_SIZE = 8
#: Name under which BirdNET is known as a frozen audio encoder (cache keys, model metadata).
ENCODER_NAME = "birdnet_v2.4"
#: Bumped when anything changing the cached embeddings changes.
_CACHE_VERSION = 1
#: Environment variable choosing the runtime of BirdNET's audio network: ``auto`` (default:
#: OpenVINO when the ``openvino`` extra is installed, else TFLite), ``openvino`` or ``tflite``.
BIRDNET_BACKEND_ENV = "GEOFORENSICS_BIRDNET_BACKEND"
BIRDNET_BACKENDS = ("auto", "openvino", "tflite")


def birdnet_backend() -> str:
    """The runtime asked for in :data:`BIRDNET_BACKEND_ENV` (``auto`` when unset)."""
    choice = os.environ.get(BIRDNET_BACKEND_ENV, "auto").strip().lower() or "auto"
    if choice not in BIRDNET_BACKENDS:
        raise InputError(
            f"{BIRDNET_BACKEND_ENV}={choice!r}: choose one of {', '.join(BIRDNET_BACKENDS)}"
        )
    return choice


def flat_sigmoid(logits: np.ndarray, sensitivity: float = DEFAULT_SENSITIVITY) -> np.ndarray:
    """BirdNET's output activation: ``1 / (1 + exp(-sensitivity * clip(x, -15, 15)))``."""
    x = np.clip(np.asarray(logits, dtype=np.float32), -15.0, 15.0)
    return (1.0 / (1.0 + np.exp(-np.float32(sensitivity) * x))).astype(np.float32)


@dataclass(frozen=True)
class BirdNETWindows:
    """BirdNET's results for the windows of one recording (or one batch of them).

    ``start_s``/``end_s`` (W,) give each window's span in the recording (a padded window
    ends at the recording's end), ``probs`` (W, 6522) float32 the sigmoid species
    probabilities in :func:`~.birdnet_files.birdnet_labels` order and ``embeddings``
    (W, 1024) float32 the classifier's input.
    """

    start_s: np.ndarray
    end_s: np.ndarray
    probs: np.ndarray
    embeddings: np.ndarray
    overlap_s: float = 0.0
    path: Path | None = None

    def __len__(self) -> int:
        return int(self.start_s.size)

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        """(scientific, common) name of each probability column."""
        return birdnet_labels()

    def detections(
        self, threshold: float | None = None, allowed: Sequence[str] | None = None
    ) -> list[Detection]:
        """Species detections with time spans (see :func:`.detections.detect_species`)."""

        return detect_species(
            self.probs,
            self.start_s,
            self.end_s,
            self.labels,
            threshold=DEFAULT_MIN_CONFIDENCE if threshold is None else threshold,
            allowed=allowed,
        )


def _concat(parts: Sequence[BirdNETWindows], overlap_s: float, path: Path | None) -> BirdNETWindows:
    if not parts:
        return BirdNETWindows(
            start_s=np.zeros(0),
            end_s=np.zeros(0),
            probs=np.zeros((0, len(birdnet_labels())), dtype=np.float32),
            embeddings=np.zeros((0, EMBEDDING_DIM), dtype=np.float32),
            overlap_s=overlap_s,
            path=path,
        )
    return BirdNETWindows(
        start_s=np.concatenate([p.start_s for p in parts]),
        end_s=np.concatenate([p.end_s for p in parts]),
        probs=np.concatenate([p.probs for p in parts]),
        embeddings=np.concatenate([p.embeddings for p in parts]),
        overlap_s=overlap_s,
        path=path,
    )


# ------------------------------------------------------------------------------ windowing


def window_step(overlap_s: float) -> int:
    """Samples between window starts for ``overlap_s`` seconds of overlap (0 <= overlap < 3)."""
    if not (math.isfinite(overlap_s) and 0.0 <= overlap_s < BIRDNET_WINDOW_S):
        raise InputError(
            f"overlap must be at least 0 and below {BIRDNET_WINDOW_S:g} s, got {overlap_s!r}"
        )
    step = round((BIRDNET_WINDOW_S - overlap_s) * BIRDNET_SAMPLE_RATE)
    if step <= 0:
        raise InputError(f"overlap {overlap_s!r} s leaves no step between windows")
    return step


def _min_tail_samples(min_tail_s: float) -> int:
    if not (math.isfinite(min_tail_s) and 0.0 <= min_tail_s <= BIRDNET_WINDOW_S):
        raise InputError(
            f"min_tail_s must lie in [0, {BIRDNET_WINDOW_S:g}] seconds, got {min_tail_s!r}"
        )
    return round(min_tail_s * BIRDNET_SAMPLE_RATE)


def window_starts(
    n_samples: int, overlap_s: float = 0.0, min_tail_s: float = DEFAULT_MIN_TAIL_S
) -> np.ndarray:
    """Start sample (int64) of every window of a 48 kHz recording of ``n_samples`` samples.

    BirdNET-Analyzer's rule: starts ``0, step, 2 step, ...`` below ``n_samples``; a window
    with fewer than ``min_tail_s`` seconds of audio is dropped unless it is the first.
    """
    step, min_tail = window_step(overlap_s), _min_tail_samples(min_tail_s)
    if n_samples <= 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, n_samples, step, dtype=np.int64)
    keep = (n_samples - starts >= min(min_tail, WINDOW_SAMPLES)) | (starts == 0)
    return starts[keep]


def count_windows(
    duration_s: float, overlap_s: float = 0.0, min_tail_s: float = DEFAULT_MIN_TAIL_S
) -> int:
    """Number of windows of a recording lasting ``duration_s`` seconds (samples rounded down)."""
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise InputError(f"duration must be a finite number >= 0, got {duration_s!r}")
    n_samples = math.floor(duration_s * BIRDNET_SAMPLE_RATE + 1e-6)
    return int(window_starts(n_samples, overlap_s, min_tail_s).size)


def iter_windows(
    chunks: Iterable[np.ndarray], overlap_s: float = 0.0, min_tail_s: float = DEFAULT_MIN_TAIL_S
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start_sample, audio_samples, window)`` for a stream of 48 kHz mono chunks.

    ``window`` is a fresh float32 array of 144,000 samples (zero-padded past the end),
    ``audio_samples`` how many of them are audio. The windows are those of
    :func:`window_starts`; memory holds about one window plus one chunk.
    """
    step, min_tail = window_step(overlap_s), _min_tail_samples(min_tail_s)
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # sample index of buffer[0]
    next_start = 0
    total = 0
    for raw in chunks:
        chunk = np.asarray(raw, dtype=np.float32)
        if chunk.ndim != 1:
            raise InputError(f"audio chunks must be 1-D, got shape {chunk.shape}")
        if chunk.size == 0:
            continue
        total += chunk.size
        buffer = np.concatenate([buffer, chunk])
        while next_start + WINDOW_SAMPLES <= buffer_start + buffer.size:
            offset = next_start - buffer_start
            yield next_start, WINDOW_SAMPLES, buffer[offset : offset + WINDOW_SAMPLES].copy()
            next_start += step
        drop = min(next_start - buffer_start, buffer.size)
        buffer = buffer[drop:]
        buffer_start += drop
    # windows running past the end: zero-padded, short tails dropped (except a first window)
    while next_start < total:
        valid = total - next_start
        if valid < min(min_tail, WINDOW_SAMPLES) and next_start > 0:
            break
        padded = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        offset = next_start - buffer_start
        padded[:valid] = buffer[offset : offset + valid]
        yield next_start, valid, padded
        next_start += step


# ------------------------------------------------------------------------------ the model


@lru_cache(maxsize=1)
def _two_output_model(path: str) -> tuple[bytes, int]:
    """The audio model's flatbuffer with the embedding added as a second output.

    Returns the patched bytes and the embedding tensor's index. The embedding tensor is the
    first input of the FULLY_CONNECTED operator that writes the model's (only) output.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    graph = model.subgraphs[0]
    outputs = [int(i) for i in graph.outputs]
    if len(outputs) != 1:
        raise ValueError(f"expected one model output, found {len(outputs)}")
    writer = next(op for op in graph.operators if outputs[0] in [int(i) for i in op.outputs])
    code = model.operatorCodes[writer.opcodeIndex]
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    if builtin != schema.BuiltinOperator.FULLY_CONNECTED:
        raise ValueError(f"the output is written by operator {builtin}, not FULLY_CONNECTED")
    index = int(writer.inputs[0])
    tensor = graph.tensors[index]
    shape = [int(s) for s in tensor.shape]
    if tensor.type != schema.TensorType.FLOAT32 or len(shape) != 2 or shape[1] != EMBEDDING_DIM:
        raise ValueError(f"classifier input {tensor.name!r} has shape {shape}, not [N, 1024]")
    graph.outputs = np.array([*outputs, index], dtype=np.int32)
    builder = flatbuffers.Builder(Path(path).stat().st_size + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), index


#: Version of the patched model file in the cache (bump when the patch changes).
_PATCH_FORMAT = 1


def _two_output_file(path: str) -> tuple[str | None, bytes | None, int]:
    """The two-output model as a cached file (``(file, None, index)``; patching the 50 MB
    flatbuffer costs ~1 s per process, reading the cached file none), or in memory
    (``(None, bytes, index)``) when the cache folder is not writable."""
    import hashlib

    source = Path(path).resolve()
    stat = source.stat()
    key = f"{_PATCH_FORMAT}|{source}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    model_file = side = None
    try:
        folder = cache_dir("birdnet")
        model_file = folder / f"audio-two-outputs-{digest}.tflite"
        side = folder / f"audio-two-outputs-{digest}.json"
        meta = json.loads(side.read_text(encoding="utf-8")) if side.is_file() else None
        if (
            isinstance(meta, dict)
            and meta.get("key") == key
            and model_file.is_file()
            and model_file.stat().st_size == meta.get("size")
        ):
            return str(model_file), None, int(meta["embedding_index"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    content, index = _two_output_model(path)
    if model_file is None or side is None:  # no cache folder: keep the bytes in memory
        return None, content, index
    try:
        with atomic_write(model_file, "wb") as fh:
            fh.write(content)
        with atomic_write(side) as fh:
            json.dump({"key": key, "size": len(content), "embedding_index": index}, fh)
    except OSError:  # no writable cache: keep the bytes in memory
        return None, content, index
    return str(model_file), None, index


def _embedding_by_shape(details: Sequence[dict[str, Any]], output_index: int, rows: int) -> int:
    """Fall-back lookup: the last float32 ``[rows, 1024]`` tensor before the output."""
    candidates = [
        int(d["index"])
        for d in details
        if int(d["index"]) < output_index
        and d["dtype"] == np.float32
        and [int(s) for s in d["shape"]] == [rows, EMBEDDING_DIM]
    ]
    if not candidates:
        raise WeightsNotFoundError(
            f"{birdnet_file('audio')}: no [N, {EMBEDDING_DIM}] embedding tensor found "
            f"(unexpected BirdNET model; {INSTALL_HINT})"
        )
    return max(candidates)


class BirdNETAudio:
    """BirdNET V2.4's audio classifier: files or signals -> :class:`BirdNETWindows`.

    ``num_threads`` are the TFLite CPU threads, ``batch_size`` the windows per interpreter
    call, ``sensitivity`` BirdNET's sigmoid sensitivity (1.0: plain sigmoid of the clipped
    logits), ``min_tail_s`` the shortest tail that gets its own padded window. Raises
    :class:`WeightsNotFoundError` with the install hint when the ``birdnet`` extra is missing.
    One instance may be shared by threads (calls are serialised).
    """

    def __init__(
        self,
        num_threads: int = 2,
        batch_size: int = DEFAULT_BATCH_SIZE,
        sensitivity: float = DEFAULT_SENSITIVITY,
        min_tail_s: float = DEFAULT_MIN_TAIL_S,
        backend: str | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or int(batch_size) <= 0:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not (math.isfinite(sensitivity) and sensitivity > 0):
            raise InputError(f"sensitivity must be a positive number, got {sensitivity!r}")
        _min_tail_samples(min_tail_s)
        self.path = birdnet_file("audio")
        self.labels = birdnet_labels()
        self.batch_size = int(batch_size)
        self.sensitivity = float(sensitivity)
        self.min_tail_s = float(min_tail_s)
        self.num_threads = int(num_threads)
        self._lock = threading.Lock()
        choice = birdnet_backend() if backend is None else backend
        if choice not in BIRDNET_BACKENDS:
            raise InputError(f"BirdNET backend {choice!r}: choose one of {BIRDNET_BACKENDS}")
        self._openvino = self._load_openvino(choice)
        #: The runtime that runs the network: ``"openvino"`` or ``"tflite"``.
        self.backend = "tflite" if self._openvino is None else "openvino"
        if self._openvino is not None:
            self._runner: Any = None
            self._embedding: int | None = None
            self.embedding_source = "openvino-split"
            n_out = self._openvino.n_outputs
        else:
            self._runner, self._embedding, self.embedding_source = self._load()
            details = self._runner.get_input_details()[0]
            self._input = int(details["index"])
            self._rows = int(details["shape"][0])
            self._output = int(self._runner.get_output_details()[0]["index"])
            n_out = int(self._runner.get_output_details()[0]["shape"][1])
        if n_out != len(self.labels):
            raise WeightsNotFoundError(
                f"{self.path}: audio model has {n_out} outputs but the labels list "
                f"{len(self.labels)} species (mismatched BirdNET files; {INSTALL_HINT})"
            )

    def _load_openvino(self, choice: str) -> OpenVinoBirdNET | None:
        """The OpenVINO runner (see :mod:`.birdnet_openvino`), or None for TFLite: under
        ``auto`` when OpenVINO is not installed or the model cannot be split (with a warning)."""
        installed = importlib.util.find_spec("openvino") is not None
        if choice == "tflite" or (choice == "auto" and not installed):
            return None
        try:
            model_file, content, _index = _two_output_file(str(self.path))
            key = f"{_PATCH_FORMAT}|{file_identity(self.path)}"

            def reference(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                runner, index, _how = self._load()
                slot = int(runner.get_input_details()[0]["index"])
                runner.resize_tensor_input(slot, list(windows.shape), strict=False)
                runner.allocate_tensors()
                runner.set_tensor(slot, windows)
                runner.invoke()
                output = runner.get_output_details()[0]["index"]
                return runner.get_tensor(output), runner.get_tensor(index)

            source = content if content is not None else Path(str(model_file))
            return openvino_birdnet(source, key, self.num_threads, reference)
        except Exception as error:  # no OpenVINO, or a model it cannot take: TFLite runs it
            if choice == "openvino":
                raise WeightsNotFoundError(
                    f"{self.path}: OpenVINO cannot run this BirdNET model "
                    f"({type(error).__name__}: {error})"
                ) from None
            warnings.warn(
                f"BirdNET on OpenVINO unavailable ({type(error).__name__}: {error}); "
                "using the TFLite runtime",
                RuntimeWarning,
                stacklevel=3,
            )
            return None

    def _load(self) -> tuple[Any, int | None, str]:
        """(interpreter, embedding tensor index or None = find by shape, how it was found)."""
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise WeightsNotFoundError(f"the TFLite runtime is missing: {INSTALL_HINT}") from None
        try:
            model_file, content, index = _two_output_file(str(self.path))
        except Exception as error:  # schema module moved, unexpected graph: keep working
            warnings.warn(
                f"BirdNET: could not add the embedding as a model output ({error}); "
                "reading it from preserved intermediate tensors (more memory)",
                RuntimeWarning,
                stacklevel=3,
            )
            runner = interpreter("audio", num_threads=self.num_threads, preserve_all_tensors=True)
            return runner, None, "preserved-tensors"
        with native_stderr_silenced():  # TFLite's C++ "INFO: Created ... XNNPACK delegate"
            runner = (
                Interpreter(model_path=model_file, num_threads=self.num_threads)
                if model_file is not None
                else Interpreter(model_content=content, num_threads=self.num_threads)
            )
            runner.allocate_tensors()
        return runner, index, "model-output"

    @property
    def identity(self) -> str:
        """``birdnet-audio-`` + SHA-256 of the .tflite file (hashed once per process)."""

        return "birdnet-audio-" + file_identity(self.path)

    @property
    def embedding_tensor(self) -> str:
        """Name of the tensor read as the embedding (``model/GLOBAL_AVG_POOL/Mean`` in V2.4)."""
        if self._runner is None:
            return EMBEDDING_TENSOR
        index = self._embedding_index(self._rows)
        for detail in self._runner.get_tensor_details():
            if int(detail["index"]) == index:
                return str(detail["name"])
        return str(index)

    def _embedding_index(self, rows: int) -> int:
        if self._embedding is not None:
            return self._embedding
        return _embedding_by_shape(self._runner.get_tensor_details(), self._output, rows)

    def logits_and_embeddings(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run (B, 144000) float32 windows: logits (B, 6522) and embeddings (B, 1024)."""
        batch = np.ascontiguousarray(windows, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != WINDOW_SAMPLES:
            raise InputError(f"BirdNET windows must be (B, {WINDOW_SAMPLES}), got {batch.shape}")
        logits = np.empty((batch.shape[0], len(self.labels)), dtype=np.float32)
        embeddings = np.empty((batch.shape[0], EMBEDDING_DIM), dtype=np.float32)
        if self._openvino is not None:
            for start in range(0, batch.shape[0], self.batch_size):
                stop = start + self.batch_size
                logits[start:stop], embeddings[start:stop] = self._openvino.run(batch[start:stop])
            return logits, embeddings
        with self._lock:
            for start in range(0, batch.shape[0], self.batch_size):
                part = batch[start : start + self.batch_size]
                if part.shape[0] != self._rows:
                    self._runner.resize_tensor_input(self._input, list(part.shape), strict=False)
                    self._runner.allocate_tensors()
                    self._rows = part.shape[0]
                self._runner.set_tensor(self._input, part)
                self._runner.invoke()
                logits[start : start + part.shape[0]] = self._runner.get_tensor(self._output)
                index = self._embedding_index(part.shape[0])
                embeddings[start : start + part.shape[0]] = self._runner.get_tensor(index)
        return logits, embeddings

    def predict(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 144000) windows -> probabilities (B, 6522) (flat sigmoid) and embeddings."""
        logits, embeddings = self.logits_and_embeddings(windows)
        return flat_sigmoid(logits, self.sensitivity), embeddings

    def iter_chunks(
        self, chunks: Iterable[np.ndarray], overlap_s: float = 0.0, path: Path | None = None
    ) -> Iterator[BirdNETWindows]:
        """Results for a stream of 48 kHz mono chunks, one :class:`BirdNETWindows` per batch.

        Memory: one chunk, one batch of windows and that batch's outputs.
        """
        window_step(overlap_s)
        batch = np.zeros((self.batch_size, WINDOW_SAMPLES), dtype=np.float32)
        starts: list[int] = []
        valids: list[int] = []

        def flush() -> BirdNETWindows:
            probs, embeddings = self.predict(batch[: len(starts)])
            start = np.asarray(starts, dtype=np.int64)
            result = BirdNETWindows(
                start_s=start / BIRDNET_SAMPLE_RATE,
                end_s=(start + np.asarray(valids, dtype=np.int64)) / BIRDNET_SAMPLE_RATE,
                probs=probs,
                embeddings=embeddings,
                overlap_s=float(overlap_s),
                path=path,
            )
            starts.clear()
            valids.clear()
            return result

        for start, valid, window in iter_windows(chunks, overlap_s, self.min_tail_s):
            batch[len(starts)] = window
            starts.append(start)
            valids.append(valid)
            if len(starts) == self.batch_size:
                yield flush()
        if starts:
            yield flush()

    def iter_windows(
        self, path: str | os.PathLike[str], overlap_s: float = 0.0
    ) -> Iterator[BirdNETWindows]:
        """Decode ``path`` as a stream (48 kHz mono) and yield results batch by batch."""

        file = Path(path)
        window_step(overlap_s)
        yield from self.iter_chunks(
            stream_audio(file, sample_rate=BIRDNET_SAMPLE_RATE), overlap_s, path=file
        )

    def windows(self, path: str | os.PathLike[str], overlap_s: float = 0.0) -> BirdNETWindows:
        """All windows of the audio (or video soundtrack) file ``path``.

        Decoding errors are :class:`~geoforensics.core.errors.MediaDecodeError` naming the file.
        """
        return _concat(list(self.iter_windows(path, overlap_s)), float(overlap_s), Path(path))

    def signal_windows(self, signal: np.ndarray, overlap_s: float = 0.0) -> BirdNETWindows:
        """All windows of a 1-D 48 kHz mono signal already in memory."""
        samples = np.asarray(signal, dtype=np.float32)
        if samples.ndim != 1 or samples.size == 0:
            raise InputError(f"expected a non-empty 1-D 48 kHz signal, got shape {samples.shape}")
        return _concat(list(self.iter_chunks([samples], overlap_s)), float(overlap_s), None)


def audio_model_identity() -> str:
    """``birdnet-audio-`` + SHA-256 of the installed audio model, without loading it (what
    :attr:`BirdNETAudio.identity` gives); raises :class:`WeightsNotFoundError` with the install
    hint when the model file or the TFLite runtime is missing."""
    path = birdnet_file("audio")
    if importlib.util.find_spec("ai_edge_litert") is None:
        raise WeightsNotFoundError(f"the TFLite runtime is missing: {INSTALL_HINT}")
    return "birdnet-audio-" + file_identity(path)


# ------------------------------------------------------------------------ embeddings cache


@lru_cache(maxsize=2)
def _shared_model(num_threads: int, batch_size: int) -> BirdNETAudio:
    return BirdNETAudio(num_threads=num_threads, batch_size=batch_size)


def _cache_key(file_sha256: str, model: BirdNETAudio, overlap_s: float) -> str:

    settings = {
        "version": _CACHE_VERSION,
        "model": model.identity,
        "runtime": model.backend,
        "file": file_sha256,
        "overlap_s": float(overlap_s),
        "min_tail_s": model.min_tail_s,
        "sample_rate": BIRDNET_SAMPLE_RATE,
    }
    return sha256_arrays(extra=json.dumps(settings, sort_keys=True))[:32]


def _read_cached(file: Path) -> np.ndarray | None:
    """The cached (W, 1024) embeddings, or None when missing or damaged (checksum)."""

    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as data:
            embeddings = np.asarray(data["embeddings"], dtype=np.float32)
            checksum = str(data["checksum"])
    except Exception:  # truncated or foreign file: rebuild it
        return None
    if embeddings.ndim != 2 or embeddings.shape[1] != EMBEDDING_DIM:
        return None
    if sha256_arrays(embeddings) != checksum:
        return None
    return embeddings


def birdnet_embeddings_for_recordings(
    recordings: Sequence[str | os.PathLike[str]],
    overlap_s: float = 0.0,
    model: BirdNETAudio | None = None,
    num_threads: int = 2,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache: bool = True,
    progress: bool = False,
) -> list[np.ndarray]:
    """Per-window BirdNET embeddings ``(W_i, 1024)`` float32 of each recording, in order.

    The features an AG-CLIP head trains on when BirdNET is the (frozen) audio encoder.
    Results are cached under ``cache_dir("birdnet_embeddings")``, one ``.npz`` per recording
    keyed by the file's SHA-256 and the settings (model file hash, overlap, tail rule), with
    a checksum: a damaged cache file is recomputed. ``model`` defaults to a shared
    :class:`BirdNETAudio` built with ``num_threads``/``batch_size``.
    """

    window_step(overlap_s)
    if model is None:
        birdnet_file("audio")  # the install hint now, even when a shared model is cached
    runner = model
    folder = cache_dir("birdnet_embeddings") if cache else None
    out: list[np.ndarray] = []
    items: Iterable[str | os.PathLike[str]] = recordings
    if progress:
        from tqdm import tqdm

        items = tqdm(recordings, desc="BirdNET embeddings", unit="file")
    for recording in items:
        file = Path(recording)
        if runner is None:
            runner = _shared_model(int(num_threads), int(batch_size))
        target: Path | None = None
        if folder is not None:
            if not file.is_file():
                raise MediaDecodeError(f"{file}: file not found")
            key = _cache_key(sha256_file(file), runner, overlap_s)
            target = folder / key[:2] / f"{key}.npz"
            cached = _read_cached(target)
            if cached is not None:
                out.append(cached)
                continue
        embeddings = runner.windows(file, overlap_s).embeddings
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(
                        fh,
                        embeddings=embeddings,
                        checksum=np.array(sha256_arrays(embeddings)),
                    )
        out.append(embeddings)
    return out
