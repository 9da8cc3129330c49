"""Training checkpoints written atomically and read back without unpickling code.

Lightning's own writer (``_atomic_save``) stages the file in the system temporary folder and
then ``shutil.move``\\ s it onto ``checkpoints/last.ckpt``; when that folder is on another file
system (a tmpfs ``/tmp``, a mounted run folder) the move is a copy, so a kill during it leaves
a truncated ``last.ckpt`` and ``--resume`` has nothing to resume from. Here the checkpoint is
written to a temporary file beside its final name and renamed onto it
(:func:`geoforensics.core.fileio.atomic_path`): a kill at any moment leaves either the previous
checkpoint or the new one. Loads keep Lightning's reader with ``weights_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from geoforensics.core.errors import InputError
from geoforensics.core.fileio import atomic_path
from geoforensics.core.models.encoders import error_summary


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves are a temporary file + rename in the same folder."""

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike[str],
        storage_options: Any | None = None,
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically (see the module docstring)."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())


def check_resumable(path: str | os.PathLike[str]) -> None:
    """InputError (one line, naming the file) unless ``path`` is a checkpoint that loads with
    ``weights_only=True`` and holds a training state; run before Lightning reads it so a
    damaged or foreign ``last.ckpt`` is a clear error, never an unpickled object."""
    file = Path(path)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or unsafe files
        raise InputError(
            f"{file}: cannot resume: not a checkpoint loadable with weights_only=True "
            f"({error_summary(error)})"
        ) from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise InputError(f"{file}: cannot resume: not a training checkpoint (no state_dict)")


__all__ = ["AtomicCheckpointIO", "check_resumable"]
