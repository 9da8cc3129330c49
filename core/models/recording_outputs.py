"""A model's outputs for every window of one recording (torch-free, shared by the torch and the
exported-graph inference paths)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowOutputs:
    """The model's outputs for every window of one recording.

    ``start_s``/``end_s`` (W,) give each window's span in seconds; ``outputs`` maps each output
    name to a (W, ·) float32 array (classification adds ``probs``, the softmax of ``logits``;
    ``features`` holds the encoder features when asked for).
    """

    start_s: np.ndarray
    end_s: np.ndarray
    outputs: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.start_s.size)


__all__ = ["WindowOutputs"]
