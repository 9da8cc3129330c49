"""The paper's learning-rate schedule, stepped once per optimiser step.

Linear warm-up from ``lr_start`` (1e-3) to ``lr_peak`` (1e-2) over ``warmup_epochs`` (5)
epochs, then a half cosine from ``lr_peak`` back down to ``lr_end`` (1e-3), reached at the last
optimiser step of the last epoch::

    step s < W:   lr = lr_start + (lr_peak - lr_start) * s / W
    step s >= W:  lr = lr_end + (lr_peak - lr_end) * (1 + cos(pi * p)) / 2,
                  p = min(1, (s - W) / (T - 1 - W))

with ``W = round(warmup_epochs * steps_per_epoch)`` and ``T = max_epochs * steps_per_epoch``.
When the run is shorter than the warm-up (``W >= T``) the rate only rises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from geoforensics.core.errors import InputError


@dataclass(frozen=True)
class PaperSchedule:
    """Warm-up + cosine schedule over ``max_epochs`` epochs of ``steps_per_epoch`` steps."""

    steps_per_epoch: int
    max_epochs: int
    warmup_epochs: float = 5.0
    lr_start: float = 1e-3
    lr_peak: float = 1e-2
    lr_end: float = 1e-3

    def __post_init__(self) -> None:
        if self.steps_per_epoch < 1 or self.max_epochs < 1:
            raise InputError(
                f"LR schedule: need steps_per_epoch >= 1 and max_epochs >= 1, got "
                f"{self.steps_per_epoch} and {self.max_epochs}"
            )
        if self.warmup_epochs < 0 or min(self.lr_start, self.lr_peak, self.lr_end) <= 0:
            raise InputError("LR schedule: warm-up must be >= 0 and learning rates positive")

    @property
    def warmup_steps(self) -> int:
        """Optimiser steps of the linear warm-up."""
        return round(self.warmup_epochs * self.steps_per_epoch)

    @property
    def total_steps(self) -> int:
        """Optimiser steps of the whole run."""
        return self.max_epochs * self.steps_per_epoch

    def lr_at(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based)."""
        warmup, total = self.warmup_steps, self.total_steps
        if step < warmup:
            return self.lr_start + (self.lr_peak - self.lr_start) * step / warmup
        span = max(1, total - 1 - warmup)
        progress = min(1.0, (step - warmup) / span)
        return self.lr_end + (self.lr_peak - self.lr_end) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )


class _Multiplier:
    """``lr_at(step) / lr_peak`` as a LambdaLR factor.

    A plain object holding numbers only, so ``LambdaLR.state_dict()`` (which stores a callable
    object's ``__dict__``) contains primitives and a checkpoint loads with
    ``torch.load(weights_only=True)``.
    """

    def __init__(self, schedule: PaperSchedule) -> None:
        self.steps_per_epoch = schedule.steps_per_epoch
        self.max_epochs = schedule.max_epochs
        self.warmup_epochs = float(schedule.warmup_epochs)
        self.lr_start = float(schedule.lr_start)
        self.lr_peak = float(schedule.lr_peak)
        self.lr_end = float(schedule.lr_end)

    def __call__(self, step: int) -> float:
        schedule = PaperSchedule(
            self.steps_per_epoch,
            self.max_epochs,
            self.warmup_epochs,
            self.lr_start,
            self.lr_peak,
            self.lr_end,
        )
        return schedule.lr_at(step) / self.lr_peak


def paper_scheduler(
    optimizer: torch.optim.Optimizer, schedule: PaperSchedule
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR following ``schedule``; sets the optimiser's base rate to lr_peak."""
    for group in optimizer.param_groups:
        group["lr"] = schedule.lr_peak
        group["initial_lr"] = schedule.lr_peak
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _Multiplier(schedule))
