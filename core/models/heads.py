"""Output heads on top of the audio encoder's features."""

from __future__ import annotations

from torch import nn

from geoforensics.core.errors import InputError


class MLPHead(nn.Sequential):
    """The paper's 2-layer head: Linear(in_dim, hidden) -> ReLU -> Linear(hidden, out_dim).

    ``hidden=0`` gives a single linear layer instead. As an ``nn.Sequential`` its parameters
    are named ``0.*`` and ``2.*``, the layout of the released checkpoints' ``classifier.3``.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128) -> None:
        if in_dim <= 0 or out_dim <= 0 or hidden < 0:
            raise InputError(
                f"MLPHead: need in_dim, out_dim > 0 and hidden >= 0, got {in_dim}, {out_dim}, "
                f"{hidden}"
            )
        if hidden == 0:
            super().__init__(nn.Linear(in_dim, out_dim))
        else:
            super().__init__(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.hidden = hidden
