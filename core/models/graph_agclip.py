"""An AG-CLIP model run from its exported graph alone: ``check`` without torch.

Why: importing torch costs ~500 MB of resident memory on these machines (the CUDA build maps
its CUDA libraries even without a GPU), a third of a long check's peak. Once a model's graph
has been exported (:func:`~.onnx_backend.exported_graph`, with torch, the first time the model
runs), everything a check does with the model needs no torch: the front-end in numpy/scipy
(:class:`~geoforensics.core.audio.frontend_numpy.NumpyMelFrontEnd`, equal to the torch
front-end to float32 rounding), the graph in OpenVINO or ONNX Runtime (the same runner the
torch path uses), pooling and retrieval in numpy/faiss.

The link from a model folder to its graph is a small record in ``cache_dir("onnx")/models``,
keyed by the SHA-256 of the folder's weights file and its config, holding the graph's file
name and checksum (:func:`record_graph`, written when the torch path exports or finds the
graph). :func:`open_graph_agclip` returns ``None`` whenever the graph path does not apply, and
the caller loads the model in torch as before: the ``torch`` backend is asked for, the encoder
has no exported graph (:data:`~.graph_runners.ONNX_ENCODERS`), the model was trained against a
location encoder other than the wheel's GeoCLIP, no graph runtime is installed, or no valid
record exists yet.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.audio.frontend import FrontEndConfig
from geoforensics.core.audio.frontend_numpy import NumpyMelFrontEnd
from geoforensics.core.audio.windows import iter_window_batches
from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_write, sha256_file_memo
from geoforensics.core.models.graph_runners import (
    ONNX_ENCODERS,
    GraphRunner,
    default_threads,
    fix_malloc_threshold,
    graph_runner,
    inference_backend,
    inference_precision,
    runtime_available,
)
from geoforensics.core.models.model_files import (
    config_document,
    location_encoder_name,
    model_files,
)
from geoforensics.core.models.recording_outputs import WindowOutputs
from geoforensics.core.paths import cache_dir

GRAPH_RECORD_FORMAT = "geoforensics-graph-record-v1"


def model_files_key(model_dir: str | os.PathLike[str]) -> str:
    """SHA-256 of a model folder's weights file and config file (the record's key)."""
    weights, config = model_files(model_dir)
    digest = hashlib.sha256()
    digest.update(sha256_file_memo(weights).encode())
    digest.update(config.read_bytes() if config.is_file() else b"")
    return digest.hexdigest()


def graph_record_path(key: str) -> Path:
    """Where the record of a model whose files hash to ``key`` lives."""
    return cache_dir("onnx") / "models" / f"{key[:40]}.json"


def record_graph(model_dir: str | os.PathLike[str], graph: Path) -> Path:
    """Write the record linking ``model_dir``'s files to its exported ``graph`` (atomic)."""
    key = model_files_key(model_dir)
    path = graph_record_path(key)
    document = {
        "format": GRAPH_RECORD_FORMAT,
        "model_files_sha256": key,
        "graph": graph.name,
        "graph_sha256": sha256_file_memo(graph),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        json.dump(document, handle, indent=2)
    return path


def _recorded_graph(model_dir: Path) -> Path | None:
    """The model's exported graph when a valid record names it and its checksum matches."""
    key = model_files_key(model_dir)
    try:
        document = json.loads(graph_record_path(key).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict) or document.get("format") != GRAPH_RECORD_FORMAT:
        return None
    if document.get("model_files_sha256") != key:
        return None
    graph = cache_dir("onnx") / str(document.get("graph", ""))
    if not graph.is_file() or sha256_file_memo(graph) != document.get("graph_sha256"):
        return None
    return graph


def _graph_config(model_dir: Path) -> dict[str, Any] | None:
    """The model's config when the graph path can serve it (module docstring), else None."""
    config = config_document(model_dir)
    if config is None or config.get("kind") != "agclip":
        return None  # the torch path reads (or reports) it
    if config.get("encoder") not in ONNX_ENCODERS or not isinstance(config.get("frontend"), dict):
        return None
    extra = config.get("extra") or {}
    if (
        location_encoder_name(extra) != "geoclip"
        or extra.get("location_encoder_weights") is not None
    ):
        return None  # retrieval needs that encoder (torch)
    return config


@dataclass
class GraphAGCLIP:
    """An AG-CLIP model served by its exported graph (see the module docstring): what a check
    asks of a model (``kind``, ``config``, window outputs) without torch."""

    model_dir: Path
    config: dict[str, Any]
    runner: GraphRunner
    graph: Path

    kind = "agclip"
    frozen_features = False

    @property
    def frontend_config(self) -> FrontEndConfig:
        """The front-end the model was trained with (from its config)."""
        return FrontEndConfig.from_dict(self.config["frontend"])

    @functools.cached_property
    def frontend(self) -> NumpyMelFrontEnd:
        """The model's front-end in numpy (built once; its threads are this process's share
        of the cores, as the graph runtime's)."""
        return NumpyMelFrontEnd(self.frontend_config, threads=default_threads())

    @property
    def n_species(self) -> int:
        """Checklist logits at the start of the head's output."""
        return int(self.config.get("n_species", 0))

    def iter_window_outputs(
        self, path: str | os.PathLike[str], batch_size: int = 32
    ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
        """(start_s, end_s, outputs) of each batch of windows of the file at ``path``."""
        if batch_size <= 0:
            raise InputError(f"batch_size must be positive, got {batch_size}")
        frontend = self.frontend
        split = self.n_species
        for batch in iter_window_batches(path, frontend, batch_size):
            _features, head = self.runner(np.asarray(batch.images))
            outputs = {
                "species_logits": np.ascontiguousarray(head[:, :split], dtype=np.float32),
                "embedding": np.ascontiguousarray(head[:, split:], dtype=np.float32),
            }
            yield batch.start_s, batch.end_s, outputs

    def window_outputs(self, path: str | os.PathLike[str], batch_size: int = 32) -> WindowOutputs:
        """Outputs for every dense window of the file at ``path``, as
        :func:`~.inference.window_outputs` gives them for the torch model (same names and
        shapes, equal to float32 rounding)."""
        fix_malloc_threshold()
        starts, ends, parts = [], [], []
        for start_s, end_s, outputs in self.iter_window_outputs(path, batch_size):
            starts.append(start_s)
            ends.append(end_s)
            parts.append(outputs)
        if not parts:
            raise InputError(f"{path}: no audio samples, so no window to run the model on")
        merged = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        return WindowOutputs(np.concatenate(starts), np.concatenate(ends), merged)


def open_graph_agclip(model_dir: str | os.PathLike[str]) -> GraphAGCLIP | None:
    """The model in ``model_dir`` served by its exported graph, or None when the torch path
    must load it (module docstring)."""
    choice = inference_backend()
    if not runtime_available(choice):
        return None
    folder = Path(model_dir)
    config = _graph_config(folder)
    if config is None:
        return None
    weights, _config_path = model_files(folder)
    if not weights.is_file():
        return None
    graph = _recorded_graph(folder)
    if graph is None:
        return None
    runner = graph_runner(graph, choice, inference_precision())
    return GraphAGCLIP(model_dir=folder, config=config, runner=runner, graph=graph)


def model_window_outputs(model: Any, path: str | os.PathLike[str]) -> WindowOutputs:
    """Window outputs of ``model`` (a :class:`GraphAGCLIP`, or a torch
    :class:`~.geolocator.AudioGeolocator`, whose path imports torch) for the file at ``path``."""
    if isinstance(model, GraphAGCLIP):
        return model.window_outputs(path)
    from geoforensics.core.models.inference import window_outputs  # loads torch

    return window_outputs(model, path)


__all__ = [
    "GRAPH_RECORD_FORMAT",
    "GraphAGCLIP",
    "graph_record_path",
    "model_files_key",
    "model_window_outputs",
    "open_graph_agclip",
    "record_graph",
]
