"""Learned pooling: a small transformer over a recording's frozen window embeddings.

See :mod:`.pooling` for the fixed pooling methods and how :class:`TransformerPooling` fits in
(kept apart because it needs torch, which the fixed methods do not).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from geoforensics.core.errors import InputError


def chunk_windows(windows: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut (W, D) window embeddings into consecutive chunks of at most ``seq_len`` windows.

    Returns ``(chunks, padding_mask)``: (C, seq_len, D) zero-padded and (C, seq_len) with True
    at padded positions, C = ceil(W / seq_len).
    """
    if windows.ndim != 2 or windows.shape[0] == 0:
        raise InputError(f"expected window embeddings (W >= 1, D), got {tuple(windows.shape)}")
    return pad_sequences(list(torch.split(windows, seq_len)), seq_len)


def pad_sequences(
    sequences: Sequence[torch.Tensor], seq_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (W_i, D) sequences into (B, L, D) zero-padded and a (B, L) padding mask (True =
    padding); L is ``seq_len`` or the longest sequence. Longer sequences are an error."""
    if not sequences:
        raise InputError("no sequences to pad")
    longest = max(int(s.shape[0]) for s in sequences)
    length = longest if seq_len is None else seq_len
    if longest > length or min(int(s.shape[0]) for s in sequences) == 0:
        raise InputError(f"sequences must have 1..{length} windows (got up to {longest})")
    first = sequences[0]
    batch = first.new_zeros((len(sequences), length, first.shape[1]))
    mask = torch.ones((len(sequences), length), dtype=torch.bool, device=first.device)
    for i, seq in enumerate(sequences):
        batch[i, : seq.shape[0]] = seq
        mask[i, : seq.shape[0]] = False
    return batch, mask


def random_crop(windows: torch.Tensor, seq_len: int, generator: torch.Generator) -> torch.Tensor:
    """A run of at most ``seq_len`` consecutive windows at a random offset (training)."""
    extra = int(windows.shape[0]) - seq_len
    if extra <= 0:
        return windows
    start = int(torch.randint(0, extra + 1, (1,), generator=generator))
    return windows[start : start + seq_len]


class TransformerPooling(nn.Module):
    """Learned pooling over frozen window embeddings: (B, L <= seq_len, in_dim) -> (B, out_dim).

    Windows are projected to ``width``, given a learned positional embedding, prefixed with a
    learned CLS token and passed through a pre-norm transformer encoder; padded positions are
    masked out of attention. ``readout="cls"`` reads the CLS token, ``"mean"`` averages the
    unpadded window tokens. ``input_key`` names which per-window vector the pooler was trained
    on (``"features"`` for the encoder's features or an output name such as ``"embedding"``);
    its output is the model's raw head output (split it with
    :meth:`~geoforensics.core.models.geolocator.AudioGeolocator.split_outputs`).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        seq_len: int = 32,
        layers: int = 6,
        heads: int = 8,
        width: int = 128,
        ff_dim: int = 256,
        dropout: float = 0.1,
        readout: str = "cls",
        input_key: str = "features",
    ) -> None:
        super().__init__()
        if readout not in ("cls", "mean"):
            raise InputError(f"readout {readout!r}: choose 'cls' or 'mean'")
        if width % heads:
            raise InputError(f"width {width} must be divisible by heads {heads}")
        self.seq_len, self.readout, self.input_key = seq_len, readout, input_key
        self.in_dim, self.out_dim = in_dim, out_dim
        self.project = nn.Linear(in_dim, width)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.position = nn.Parameter(torch.zeros(1, seq_len + 1, width))
        nn.init.trunc_normal_(self.cls, std=0.02)
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, ff_dim, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, out_dim)

    def forward(
        self, windows: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``windows`` (B, L, in_dim), ``padding_mask`` (B, L) True at padding -> (B, out_dim)."""
        batch, length, _ = windows.shape
        if length > self.seq_len:
            raise InputError(
                f"{length} windows exceed the pooler's sequence length {self.seq_len}; "
                "use chunk_windows or pool_recording"
            )
        if padding_mask is None:
            padding_mask = torch.zeros(batch, length, dtype=torch.bool, device=windows.device)
        tokens = self.project(windows)
        tokens = torch.cat([self.cls.expand(batch, -1, -1), tokens], dim=1)
        tokens = tokens + self.position[:, : length + 1]
        # padded tokens are zeroed too, so nothing of their content can leak through
        keep = (~padding_mask).to(tokens.dtype)
        tokens = torch.cat([tokens[:, :1], tokens[:, 1:] * keep[..., None]], dim=1)
        cls_mask = torch.zeros(batch, 1, dtype=torch.bool, device=windows.device)
        mask = torch.cat([cls_mask, padding_mask], dim=1)
        hidden = self.norm(self.encoder(tokens, src_key_padding_mask=mask))
        if self.readout == "cls":
            summary = hidden[:, 0]
        else:
            summary = (hidden[:, 1:] * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp(
                min=1.0
            )
        return self.out(summary)

    def pool_recording(self, windows: torch.Tensor) -> torch.Tensor:
        """One recording's (W, in_dim) window embeddings -> (out_dim,), for any W >= 1.

        Chunks of at most ``seq_len`` consecutive windows, averaged weighted by their length.
        """
        chunks, mask = chunk_windows(windows, self.seq_len)
        outputs = self(chunks, mask)
        weights = (~mask).sum(1).to(outputs.dtype)
        return (outputs * weights[:, None]).sum(0) / weights.sum()
