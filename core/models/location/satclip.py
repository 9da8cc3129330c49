"""SatCLIP's location encoder (Klemmer et al. 2023) as a :class:`LocationEncoder`, registered
as ``satclip``.

Real spherical harmonics up to degree L - 1 (L = ``legendre_polys``, L² features) -> SIREN
(sine layers, first w0 = 30) -> 256-d. Accepted checkpoints (all read with
``weights_only=True``): a SatCLIP Lightning checkpoint (``{'hyper_parameters': {...},
'state_dict': {'model.location.nnet.…': …}}``), the same with only the location keys, or a
bare ``nnet.*`` state dict; sizes come from the weight shapes. A Lightning checkpoint holding
objects other than tensors and plain values is refused by ``weights_only=True``: re-save its
``state_dict`` and ``hyper_parameters``. Without a checkpoint,
:mod:`geoforensics.train.range_pretraining` trains one as a range model.

Spherical-harmonic conventions (see :class:`SphericalHarmonics`): ``orthonormal`` is the
real orthonormal basis without the Condon-Shortley phase (what SatCLIP's code computes
today); ``satclip-2023`` multiplies the m = 0 functions by π, reproducing SatCLIP's earlier
sympy-generated table (dated 2023-07-26, before the model release; its m = 0 constant is
sqrt((2l+1)/4·π) instead of sqrt((2l+1)/(4π)), fixed in a table regenerated in 2024). That
the released checkpoints were trained on the earlier table is inferred from those dates, so
loading a SatCLIP checkpoint uses ``satclip-2023`` unless ``convention`` says otherwise.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from geoforensics.core.errors import InputError
from geoforensics.core.models.location.base import (
    LocationEncoder,
    check_latlon,
    existing_checkpoint,
    load_checkpoint,
    load_state_strict,
)
from geoforensics.core.models.location.registry import register_location_encoder

SH_CONVENTIONS: tuple[str, ...] = ("orthonormal", "satclip-2023")


def _legendre_normalised(x: torch.Tensor, degrees: int) -> dict[tuple[int, int], torch.Tensor]:
    """Orthonormalised associated Legendre functions P̄_l^m(x), 0 <= m <= l < degrees.

    P̄_l^m = sqrt((2l+1)/(4π) · (l-m)!/(l+m)!) · P_l^m, without the Condon-Shortley phase,
    by the standard stable recurrences in float64.
    """
    s = torch.sqrt(torch.clamp(1.0 - x * x, min=0.0))
    p: dict[tuple[int, int], torch.Tensor] = {
        (0, 0): torch.full_like(x, 1.0 / math.sqrt(4 * math.pi))
    }
    for m in range(1, degrees):
        p[(m, m)] = math.sqrt((2 * m + 1) / (2 * m)) * s * p[(m - 1, m - 1)]
    for m in range(degrees - 1):
        p[(m + 1, m)] = math.sqrt(2 * m + 3) * x * p[(m, m)]
        for ell in range(m + 2, degrees):
            a = math.sqrt((4 * ell * ell - 1) / (ell * ell - m * m))
            b = math.sqrt(((ell - 1) ** 2 - m * m) / (4 * (ell - 1) ** 2 - 1))
            p[(ell, m)] = a * (x * p[(ell - 1, m)] - b * p[(ell - 2, m)])
    return p


class SphericalHarmonics(nn.Module):
    """Real spherical harmonics Y_l^m, l < ``legendre_polys``, as (B, L²) location features.

    Angles follow SatCLIP: θ = latitude + 90° (0 at the south pole), φ = longitude + 180°.
    Features are ordered l = 0, 1, ... and m = -l..l; for m > 0 the function is
    √2·P̄_l^m(cos θ)·cos(mφ), for m < 0 √2·P̄_l^|m|(cos θ)·sin(|m|φ), for m = 0 P̄_l^0(cos θ),
    orthonormal over the sphere. ``convention='satclip-2023'`` scales m = 0 by π (see the
    module docstring).
    """

    def __init__(self, legendre_polys: int = 10, convention: str = "orthonormal") -> None:
        super().__init__()
        if legendre_polys < 1:
            raise InputError(
                f"spherical harmonics: legendre_polys must be >= 1, got {legendre_polys}"
            )
        if convention not in SH_CONVENTIONS:
            raise InputError(
                f"spherical harmonics convention {convention!r}: use one of {SH_CONVENTIONS}"
            )
        self.legendre_polys = legendre_polys
        self.convention = convention
        self.embedding_dim = legendre_polys**2

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        check_latlon(coords)
        latlon = coords.to(torch.float64)
        theta = torch.deg2rad(latlon[:, 0] + 90.0)
        phi = torch.deg2rad(latlon[:, 1] + 180.0)
        p = _legendre_normalised(torch.cos(theta), self.legendre_polys)
        m0_scale = math.pi if self.convention == "satclip-2023" else 1.0
        features = []
        for ell in range(self.legendre_polys):
            for m in range(-ell, ell + 1):
                if m < 0:
                    features.append(math.sqrt(2.0) * p[(ell, -m)] * torch.sin(-m * phi))
                elif m == 0:
                    features.append(m0_scale * p[(ell, 0)])
                else:
                    features.append(math.sqrt(2.0) * p[(ell, m)] * torch.cos(m * phi))
        return torch.stack(features, dim=1).to(coords.dtype)


class SirenLayer(nn.Module):
    """A SIREN layer: sin(w0 · dropout(x Wᵀ + b)); the last layer of a net is linear."""

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        w0: float = 1.0,
        is_first: bool = False,
        dropout: float = 0.0,
        linear: bool = False,
        c: float = 6.0,
    ) -> None:
        super().__init__()
        bound = (1.0 / dim_in) if is_first else math.sqrt(c / dim_in) / w0
        self.weight = nn.Parameter(torch.empty(dim_out, dim_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(dim_out).uniform_(-bound, bound))
        self.w0, self.dropout, self.linear = w0, dropout, linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        if self.dropout > 0:
            out = F.dropout(out, self.dropout, training=self.training)
        return out if self.linear else torch.sin(self.w0 * out)


class SirenNet(nn.Module):
    """SatCLIP's SIREN: ``num_layers`` sine layers (first w0 = 30, then 1) and a linear layer.

    Parameter names (``layers.{i}.weight``, ``last_layer.bias``, ...) are SatCLIP's.
    """

    def __init__(
        self,
        dim_in: int,
        dim_hidden: int = 256,
        dim_out: int = 256,
        num_layers: int = 2,
        w0: float = 1.0,
        w0_initial: float = 30.0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            SirenLayer(
                dim_in if i == 0 else dim_hidden,
                dim_hidden,
                w0=w0_initial if i == 0 else w0,
                is_first=i == 0,
                dropout=dropout,
            )
            for i in range(num_layers)
        )
        self.last_layer = SirenLayer(dim_hidden, dim_out, w0=w0, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.last_layer(x)


class SatCLIPEncoder(LocationEncoder):
    """SatCLIP-style encoder: spherical harmonics (L² features) -> SIREN -> ``embed_dim``.

    ``num_classes`` > 0 adds a species head ``class_emb`` (Linear with bias) for range
    pretraining, as in SINR. ``dropout`` acts on the SIREN's hidden pre-activations in
    training only; SatCLIP used 0.5, the default here is 0 because range pretraining on the
    tiny synthetic world reached a validation AUC of 0.97 without and 0.82-0.88 with it.
    """

    name = "satclip"

    def __init__(
        self,
        legendre_polys: int = 10,
        embed_dim: int = 256,
        capacity: int = 256,
        num_hidden_layers: int = 2,
        dropout: float = 0.0,
        convention: str = "orthonormal",
        num_classes: int = 0,
        species: list[str] | None = None,
    ) -> None:
        super().__init__()
        if embed_dim < 1 or capacity < 1 or num_hidden_layers < 1 or num_classes < 0:
            raise InputError(
                "SatCLIP: need embed_dim, capacity, num_hidden_layers >= 1 and num_classes >= 0"
            )
        self.legendre_polys, self.capacity = legendre_polys, capacity
        self.num_hidden_layers, self.dropout = num_hidden_layers, dropout
        self.num_classes = num_classes
        self.species = list(species) if species is not None else None
        self.embed_dim = embed_dim
        self.posenc = SphericalHarmonics(legendre_polys, convention)
        self.nnet = SirenNet(
            self.posenc.embedding_dim, capacity, embed_dim, num_hidden_layers, dropout=dropout
        )
        self.class_emb = nn.Linear(embed_dim, num_classes) if num_classes else None

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.nnet(self.posenc(coords))

    def presence_logits(self, coords: torch.Tensor) -> torch.Tensor:
        """(B, num_classes) species logits of the range-pretraining head."""
        if self.class_emb is None:
            raise InputError("SatCLIP encoder has no species head (num_classes = 0)")
        return self.class_emb(self(coords))

    def config(self) -> dict[str, Any]:
        return {
            "legendre_polys": self.legendre_polys,
            "embed_dim": self.embed_dim,
            "capacity": self.capacity,
            "num_hidden_layers": self.num_hidden_layers,
            "dropout": self.dropout,
            "convention": self.posenc.convention,
            "num_classes": self.num_classes,
            "species": self.species,
        }


_SATCLIP_PREFIXES = ("model.location.nnet.", "location.nnet.", "nnet.")


def load_satclip_checkpoint(
    path: str | os.PathLike[str],
    convention: str | None = None,
    legendre_polys: int | None = None,
) -> SatCLIPEncoder:
    """A SatCLIP location encoder from a checkpoint (layouts in the module docstring), frozen.

    Sizes come from ``hyper_parameters`` when present, else from the weight shapes
    (``legendre_polys`` from the first layer's input width L²). ``convention`` defaults to
    ``satclip-2023`` for SatCLIP checkpoints (the basis the released models were trained on).
    """
    file = existing_checkpoint(path)
    raw = load_checkpoint(file)
    if not isinstance(raw, Mapping):
        raise InputError(f"{file}: expected a SatCLIP checkpoint dict")
    hparams = raw.get("hyper_parameters") or {}
    state = raw.get("state_dict", raw)
    if not isinstance(state, Mapping) or not isinstance(hparams, Mapping):
        raise InputError(f"{file}: 'state_dict' and 'hyper_parameters' must be dicts")
    nnet: dict[str, torch.Tensor] = {}
    for prefix in _SATCLIP_PREFIXES:
        nnet = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if nnet:
            break
    if "layers.0.weight" not in nnet or "last_layer.weight" not in nnet:
        raise InputError(
            f"{file}: no SatCLIP SIREN weights (expected keys like "
            "'model.location.nnet.layers.0.weight' and '...last_layer.weight')"
        )
    for key, value in hparams.items():
        if key in ("le_type", "pe_type") and value not in ("sphericalharmonics", "siren"):
            raise InputError(
                f"{file}: SatCLIP {key}={value!r} is not supported (only spherical harmonics "
                "with a SIREN)"
            )
    first = nnet["layers.0.weight"]
    width = int(first.shape[1])
    polys = legendre_polys or int(hparams.get("legendre_polys", round(math.sqrt(width))))
    if polys * polys != width:
        raise InputError(
            f"{file}: first layer takes {width} inputs, not L² for legendre_polys={polys}"
        )
    n_hidden = len({k.split(".")[1] for k in nnet if k.startswith("layers.")})
    encoder = SatCLIPEncoder(
        legendre_polys=polys,
        embed_dim=int(nnet["last_layer.weight"].shape[0]),
        capacity=int(first.shape[0]),
        num_hidden_layers=n_hidden,
        convention=convention or "satclip-2023",
    )
    load_state_strict(encoder.nnet, {k: v.float() for k, v in nnet.items()}, file)
    return encoder.freeze()


@register_location_encoder("satclip", SatCLIPEncoder)
def create_satclip_encoder(checkpoint: str | os.PathLike[str], **kwargs: Any) -> SatCLIPEncoder:
    """A SatCLIP checkpoint's encoder; ``kwargs`` go to :func:`load_satclip_checkpoint`."""
    return load_satclip_checkpoint(checkpoint, **kwargs)
