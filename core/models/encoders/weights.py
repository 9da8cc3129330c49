"""Weights files of audio encoders: safe reading (never arbitrary pickles) and fit checks.

Weights files are read with :func:`read_state_dict` (safetensors, or ``torch.load`` with
``weights_only=True``); :func:`check_state_dict` and :func:`state_dict_problems` say in one
line why a state dict does not fit a module; :func:`file_sha256` identifies a weights file
(memoised, for the identities of the frozen encoders and cache keys).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.load_errors import load_error_summary


def error_summary(error: BaseException) -> str:
    """One line: ``Type: first line``, or the global a refused pickle wanted to run."""
    return load_error_summary(error)


_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_PREFIXES = ("module.", "model.", "_orig_mod.")


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a weights file: ``.safetensors``, or a torch file read with
    ``weights_only=True``.

    Accepts a plain state dict, one wrapped as ``{"state_dict": ...}`` (Lightning),
    ``{"model_state_dict": ...}`` or ``{"model": ...}``, and strips prefixes shared by every
    key (``module.`` from DataParallel, ``model.``, ``_orig_mod.`` from torch.compile).
    Raises :class:`WeightsNotFoundError` for a missing file and :class:`InputError` (one line,
    naming the file) for anything unreadable.
    """
    file = Path(path)
    if not file.is_file():
        raise WeightsNotFoundError(f"{file}: weights file not found")
    try:
        if file.suffix == ".safetensors":
            raw: Any = load_file(str(file), device="cpu")
        else:
            raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # any decoding failure is the file's problem
        raise InputError(
            f"{file}: not a readable weights file (safetensors, or torch.save of a state dict "
            f"loadable with weights_only=True): {error_summary(error)}"
        ) from None
    if isinstance(raw, Mapping):
        for key in _WRAPPER_KEYS:
            inner = raw.get(key)
            if isinstance(inner, Mapping) and inner:
                raw = inner
                break
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(f"{file}: expected a state dict (parameter name -> tensor)")
    bad = [str(k) for k, v in raw.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise InputError(f"{file}: entries that are not tensors: {', '.join(bad[:3])}")
    state = {str(k): v for k, v in raw.items()}
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix) :]: value for key, value in state.items()}
                stripped = True
    return state


def check_state_dict(
    module: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike[str]
) -> None:
    """Raise a one-line :class:`InputError` naming ``source`` unless ``state`` has exactly
    ``module``'s keys with matching shapes."""
    problems = state_dict_problems(module.state_dict(), state)
    if problems:
        raise InputError(f"{source}: does not fit the model: " + "; ".join(problems))


def state_dict_problems(
    expected: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    required: set[str] | None = None,
    against: str = "model",
) -> list[str]:
    """What keeps ``state`` from loading into a module whose state dict is ``expected``:
    missing keys (of ``required`` only, when given), unexpected keys, shape mismatches."""
    needed = set(expected) if required is None else set(expected) & required
    missing = sorted(needed - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        key
        for key in set(expected) & set(state)
        if tuple(expected[key].shape) != tuple(state[key].shape)
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        key = wrong[0]
        problems.append(
            f"{len(wrong)} shape mismatches (e.g. {key}: file {tuple(state[key].shape)}, "
            f"{against} {tuple(expected[key].shape)})"
        )
    return problems


def load_encoder_weights(module: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load an encoder's parameters from a weights file (see :func:`read_state_dict`).

    Keys listed in the module's ``ignored_weight_prefixes`` (for MobileNetV3 the original
    task head ``classifier.3.``) are dropped. A full saved :class:`AudioGeolocator` (keys
    ``encoder.*`` and ``head.*``) also works: its ``encoder.*`` part is used.
    """
    state = read_state_dict(path)
    own = set(module.state_dict())
    if not own & set(state) and any(key.startswith("encoder.") for key in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    ignored = tuple(getattr(module, "ignored_weight_prefixes", ()))
    if ignored:
        state = {k: v for k, v in state.items() if k in own or not k.startswith(ignored)}
    check_state_dict(module, state, path)
    module.load_state_dict(state, strict=True)
    return module


@functools.cache
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, memoised per (path, size, mtime)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _file_sha256(str(resolved), stat.st_size, stat.st_mtime_ns)
