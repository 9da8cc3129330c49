"""Location encoders for the paper's Table 2 ablation: GeoCLIP, SINR and SatCLIP.

AG-CLIP learns to map audio onto a frozen location embedding ``encoder(coords)``; Table 2
swaps GeoCLIP's encoder for others. Every encoder here is a :class:`LocationEncoder`: an
``nn.Module`` mapping (B, 2) latitude/longitude in degrees to (B, ``embed_dim``) embeddings
(unnormalised; :meth:`LocationEncoder.embed` gives L2-normalised numpy arrays).

``geoclip``
    GeoCLIP's location encoder with the weights shipped in the ``geoclip`` wheel (512-d).
``sinr``
    SINR's ``ResidualFCNet`` (Cole et al. 2023): input ``sin_cos`` encoding of (lon, lat) as
    [sin(π·lon/180), sin(π·lat/90), cos(π·lon/180), cos(π·lat/90)] -> Linear(4, 256) -> ReLU
    -> 4 residual layers (Linear, ReLU, Dropout 0.5, Linear, ReLU, + skip) -> ``class_emb``
    Linear(256, n_species, no bias). The embedding is the 256-d penultimate feature. Parameter
    names are SINR's (``feats.0``, ``feats.2.w1``, ..., ``class_emb``), so the public
    checkpoint (``{'params': {...}, 'state_dict': {...}}``, read with ``weights_only=True``)
    loads strictly.
``satclip``
    SatCLIP's location encoder (Klemmer et al. 2023): real spherical harmonics up to degree
    L - 1 (L = ``legendre_polys``, L² features) -> SIREN (sine layers, first w0 = 30) -> 256-d.
    Accepted checkpoints (all read with ``weights_only=True``): a SatCLIP Lightning checkpoint
    (``{'hyper_parameters': {...}, 'state_dict': {'model.location.nnet.…': …}}``), the same
    with only the location keys, or a bare ``nnet.*`` state dict; sizes come from the weight
    shapes. A Lightning checkpoint holding objects other than tensors and plain values is
    refused by ``weights_only=True``: re-save its ``state_dict`` and ``hyper_parameters``.

Without a checkpoint, ``sinr`` and ``satclip`` can be trained here as range models on a
range model's presence/absence (:func:`pretrain_range_encoder`: BCE on species presence at
random points, as SINR is trained), which is how the synthetic world gets its own SINR and
SatCLIP.
Our own encoders are saved as ``NAME.safetensors`` + ``NAME.json`` (config).

Spherical-harmonic conventions (see :class:`SphericalHarmonics`): ``orthonormal`` is the
real orthonormal basis without the Condon-Shortley phase (what SatCLIP's code computes
today); ``satclip-2023`` multiplies the m = 0 functions by π, reproducing SatCLIP's earlier
sympy-generated table (dated 2023-07-26, before the model release; its m = 0 constant is
sqrt((2l+1)/4·π) instead of sqrt((2l+1)/(4π)), fixed in a table regenerated in 2024). That
the released checkpoints were trained on the earlier table is inferred from those dates, so
loading a SatCLIP checkpoint uses ``satclip-2023`` unless ``convention`` says otherwise.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torch.nn import functional as F

from ..errors import InputError, WeightsNotFoundError
from ..fileio import atomic_path, atomic_write, save_npy_atomic, sha256_arrays, sha256_file
from ..geo.distance import check_coords

#: Names accepted by :func:`create_location_encoder`.
LOCATION_ENCODERS: tuple[str, ...] = ("geoclip", "sinr", "satclip")
SH_CONVENTIONS: tuple[str, ...] = ("orthonormal", "satclip-2023")
_FORMAT = "geoforensics-location-encoder-v1"


class LocationEncoder(nn.Module):
    """(B, 2) lat/lon degrees -> (B, ``embed_dim``) location embeddings (unnormalised).

    Subclasses set ``name`` and ``embed_dim`` and implement :meth:`forward` and
    :meth:`config` (the JSON-able arguments that rebuild the module).
    """

    name: str = "location-encoder"
    embed_dim: int

    def __init__(self) -> None:
        super().__init__()
        #: How the weights were obtained (e.g. range pretraining figures); JSON values.
        self.pretrain_info: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain JSON values."""
        raise NotImplementedError

    @property
    def weights_id(self) -> str:
        """Identity of the architecture and weights (for embedding cache keys)."""
        tensors = [t.detach().cpu().float().numpy() for t in self.state_dict().values()]
        tag = json.dumps({"name": self.name, **self.config()}, sort_keys=True)
        return f"{self.name}-" + sha256_arrays(*tensors, extra=tag)[:16]

    def presence_logits(self, coords: torch.Tensor) -> torch.Tensor:
        """(B, n_species) species logits of a range-model head; encoders without one refuse."""
        raise InputError(f"the {self.name} location encoder has no species head")

    def freeze(self) -> Self:
        """No gradients, eval mode (dropout off); returns self."""
        self.requires_grad_(False)
        return self.eval()

    def embed(self, coords: ArrayLike, batch_size: int = 4096) -> np.ndarray:
        """(N, 2) lat/lon -> (N, embed_dim) float32 L2-normalised embeddings (eval mode)."""
        points = check_coords(coords, "locations")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        device = _device_of(self)
        was_training = self.training
        self.eval()
        out = np.empty((len(points), self.embed_dim), dtype=np.float32)
        try:
            with torch.inference_mode():
                for start in range(0, len(points), batch_size):
                    chunk = torch.from_numpy(points[start : start + batch_size]).to(
                        device, torch.float32
                    )
                    out[start : start + len(chunk)] = (
                        F.normalize(self(chunk).float(), dim=1).cpu().numpy()
                    )
        finally:
            self.train(was_training)
        return out


def _device_of(module: nn.Module) -> torch.device:
    for parameter in module.parameters():
        return parameter.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")


def _check_latlon(coords: torch.Tensor) -> None:
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise InputError(f"location encoder: expected (B, 2) lat/lon, got {tuple(coords.shape)}")


# ----------------------------------------------------------------------------- GeoCLIP


class GeoCLIPEncoder(LocationEncoder):
    """GeoCLIP's location encoder (512-d), from the geoclip wheel or a weights file."""

    name = "geoclip"

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        from ..geoclip.location_encoder import EMBED_DIM, load_location_encoder

        self.weights = None if weights is None else str(weights)
        self.model = load_location_encoder(weights)
        self.embed_dim = EMBED_DIM
        self.freeze()

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        _check_latlon(coords)
        return self.model(coords)

    def config(self) -> dict[str, Any]:
        return {"weights": self.weights}

    @property
    def weights_id(self) -> str:
        return self.model.weights_id


# -------------------------------------------------------------------------------- SINR


def sinr_input_encoding(coords: torch.Tensor) -> torch.Tensor:
    """SINR's ``sin_cos`` input: (lat, lon) degrees -> [sin πx, sin πy, cos πx, cos πy] with
    x = lon/180 and y = lat/90 (SINR normalises (lon, lat) to [-1, 1] first)."""
    _check_latlon(coords)
    normalised = torch.stack((coords[:, 1] / 180.0, coords[:, 0] / 90.0), dim=1)
    return torch.cat((torch.sin(math.pi * normalised), torch.cos(math.pi * normalised)), dim=1)


class SINRResLayer(nn.Module):
    """SINR's residual layer: x + ReLU(w2(Dropout(ReLU(w1(x)))))."""

    def __init__(self, width: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.w1 = nn.Linear(width, width)
        self.w2 = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.w2(self.dropout(F.relu(self.w1(x)))))


class SINREncoder(LocationEncoder):
    """SINR ``ResidualFCNet`` with the ``sin_cos`` input; embedding = penultimate features.

    ``num_classes`` > 0 adds SINR's species head ``class_emb`` (Linear, no bias), used by
    :meth:`presence_logits` and by range pretraining.
    """

    name = "sinr"
    input_dim = 4

    def __init__(
        self,
        num_classes: int = 0,
        num_filts: int = 256,
        depth: int = 4,
        dropout: float = 0.5,
        species: list[str] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 0 or num_filts < 1 or depth < 0 or not 0.0 <= dropout < 1.0:
            raise InputError(
                f"SINR: need num_classes >= 0, num_filts >= 1, depth >= 0, 0 <= dropout < 1; got "
                f"{num_classes}, {num_filts}, {depth}, {dropout}"
            )
        self.num_classes, self.num_filts, self.depth = num_classes, num_filts, depth
        self.dropout = dropout
        self.species = list(species) if species is not None else None
        self.embed_dim = num_filts
        layers: list[nn.Module] = [nn.Linear(self.input_dim, num_filts), nn.ReLU()]
        layers += [SINRResLayer(num_filts, dropout) for _ in range(depth)]
        self.feats = nn.Sequential(*layers)
        self.class_emb = nn.Linear(num_filts, num_classes, bias=False) if num_classes else None

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.feats(sinr_input_encoding(coords))

    def presence_logits(self, coords: torch.Tensor) -> torch.Tensor:
        """(B, num_classes) species logits (sigmoid -> presence probability)."""
        if self.class_emb is None:
            raise InputError("SINR encoder has no species head (num_classes = 0)")
        return self.class_emb(self(coords))

    def config(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "num_filts": self.num_filts,
            "depth": self.depth,
            "dropout": self.dropout,
            "species": self.species,
        }


def load_sinr_checkpoint(path: str | os.PathLike[str]) -> SINREncoder:
    """A public SINR checkpoint (``{'params': ..., 'state_dict': ...}``), frozen.

    Only the ``ResidualFCNet`` model with the ``sin_cos`` input encoding is supported (the
    ``env`` encodings need SINR's bioclimatic rasters).
    """
    file = _existing(path)
    raw = _torch_load(file)
    if not isinstance(raw, Mapping) or "state_dict" not in raw:
        raise InputError(f"{file}: expected a SINR checkpoint dict with 'params' and 'state_dict'")
    params = raw.get("params") or {}
    state = raw["state_dict"]
    if not isinstance(params, Mapping) or not isinstance(state, Mapping):
        raise InputError(f"{file}: 'params' and 'state_dict' must be dicts")
    model = params.get("model", "ResidualFCNet")
    encoding = params.get("input_enc", "sin_cos")
    if model != "ResidualFCNet" or encoding != "sin_cos":
        raise InputError(
            f"{file}: SINR model {model!r} with input encoding {encoding!r} is not supported "
            "(only ResidualFCNet with 'sin_cos')"
        )
    first = state.get("feats.0.weight")
    if not isinstance(first, torch.Tensor) or first.ndim != 2:
        raise InputError(f"{file}: state_dict lacks SINR's 'feats.0.weight'")
    if first.shape[1] != SINREncoder.input_dim:
        raise InputError(
            f"{file}: input dimension {first.shape[1]}, expected {SINREncoder.input_dim} "
            "(sin_cos encoding)"
        )
    head = state.get("class_emb.weight")
    depth = len({k.split(".")[1] for k in state if k.startswith("feats.") and ".w1." in k})
    encoder = SINREncoder(
        num_classes=int(head.shape[0]) if isinstance(head, torch.Tensor) else 0,
        num_filts=int(params.get("num_filts", first.shape[0])),
        depth=int(params.get("depth", depth)),
    )
    _load_strict(encoder, dict(state), file)
    return encoder.freeze()


# ----------------------------------------------------------------------------- SatCLIP


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
        _check_latlon(coords)
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
    file = _existing(path)
    raw = _torch_load(file)
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
    _load_strict(encoder.nnet, {k: v.float() for k, v in nnet.items()}, file)
    return encoder.freeze()


# --------------------------------------------------------------------- files, registry


def _existing(path: str | os.PathLike[str]) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsNotFoundError(f"{file}: checkpoint not found")
    return file


def _torch_load(file: Path) -> Any:
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or unsafe pickles
        from ..load_errors import load_error_summary

        first_line = load_error_summary(exc)
        raise InputError(
            f"{file}: not loadable with weights_only=True ({first_line}); re-save only the "
            "tensors and plain-value dicts (e.g. {'state_dict': ..., 'hyper_parameters': ...})"
        ) from exc


def _load_strict(module: nn.Module, state: dict[str, Any], file: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        summary = " ".join(str(exc).split())[:300]
        raise InputError(f"{file}: weights do not fit the model ({summary})") from exc


def save_location_encoder(
    encoder: LocationEncoder, path: str | os.PathLike[str], info: Mapping[str, Any] | None = None
) -> Path:
    """Write ``PATH.safetensors`` and its ``PATH.json`` config atomically; returns the weights
    path. ``info`` (e.g. how it was trained) is stored in the JSON."""
    if isinstance(encoder, GeoCLIPEncoder):
        raise InputError("the GeoCLIP encoder ships with the geoclip wheel; nothing to save")
    from safetensors.torch import save_file

    weights = Path(path).with_suffix(".safetensors")
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    config = {
        "format": _FORMAT,
        "name": encoder.name,
        "embed_dim": encoder.embed_dim,
        "config": encoder.config(),
        "weights_sha256": sha256_file(weights),
        "info": dict(info or {}),
    }
    with atomic_write(weights.with_suffix(".json")) as fh:
        json.dump(config, fh, indent=2)
    return weights


def load_location_encoder_file(path: str | os.PathLike[str]) -> LocationEncoder:
    """An encoder saved by :func:`save_location_encoder` (``.safetensors`` or ``.json``)."""
    from safetensors.torch import load_file

    weights = Path(path).expanduser().with_suffix(".safetensors")
    side = weights.with_suffix(".json")
    if not weights.is_file() or not side.is_file():
        raise WeightsNotFoundError(f"{weights}: encoder weights or their .json config missing")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{side}: unreadable encoder config ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise InputError(f"{side}: not a geoforensics location-encoder config")
    if meta.get("weights_sha256") != sha256_file(weights):
        raise InputError(f"{weights}: checksum does not match {side.name} (file changed?)")
    classes = {"sinr": SINREncoder, "satclip": SatCLIPEncoder}
    cls = classes.get(str(meta.get("name")))
    if cls is None:
        raise InputError(f"{side}: unknown encoder {meta.get('name')!r}")
    try:
        encoder: LocationEncoder = cls(**meta.get("config", {}))
    except TypeError as exc:
        raise InputError(f"{side}: config does not fit {cls.__name__} ({exc})") from exc
    _load_strict(encoder, load_file(str(weights)), weights)
    encoder.pretrain_info = dict(meta.get("info") or {})
    return encoder.freeze()


def create_location_encoder(
    name: str,
    checkpoint: str | os.PathLike[str] | None = None,
    range_model: Any = None,
    **kwargs: Any,
) -> LocationEncoder:
    """A frozen location encoder by name (``geoclip``, ``sinr``, ``satclip``).

    ``checkpoint``: for ``geoclip`` a GeoCLIP location-encoder weights file (default: the
    wheel's); for ``sinr`` a SINR checkpoint; for ``satclip`` a SatCLIP checkpoint; for
    either, a file saved by :func:`save_location_encoder`. Without a checkpoint, ``sinr`` and
    ``satclip`` need ``range_model`` and are pretrained on it (:func:`pretrain_range_encoder`,
    cached; ``kwargs`` go to it).
    """
    if name not in LOCATION_ENCODERS:
        raise InputError(f"location encoder {name!r}: choose one of {', '.join(LOCATION_ENCODERS)}")
    if name == "geoclip":
        if kwargs or range_model is not None:
            raise InputError("the geoclip location encoder takes only a weights file")
        return GeoCLIPEncoder(checkpoint)
    if checkpoint is not None:
        file = Path(checkpoint).expanduser()
        if file.suffix in (".safetensors", ".json"):
            encoder = load_location_encoder_file(file)
            if encoder.name != name:
                raise InputError(f"{file}: holds a {encoder.name!r} encoder, not {name!r}")
            return encoder
        if name == "sinr":
            return load_sinr_checkpoint(file)
        return load_satclip_checkpoint(file, **kwargs)
    if range_model is None:
        raise WeightsNotFoundError(
            f"{name}: no checkpoint given; pass checkpoint=PATH (the public {name.upper()} "
            "weights or a file saved by save_location_encoder) or range_model=... to pretrain "
            "one on a range model"
        )
    return pretrain_range_encoder(name, range_model, **kwargs)


def gallery_embeddings(
    encoder: LocationEncoder, coords: ArrayLike, cache: bool = True, batch_size: int = 4096
) -> np.ndarray:
    """L2-normalised (N, D) embeddings of gallery coordinates, cached on disk by content hash.

    GeoCLIP uses the shared GeoCLIP cache; other encoders are keyed by ``weights_id``.
    """
    points = check_coords(coords, "gallery coordinates")
    if isinstance(encoder, GeoCLIPEncoder) and encoder.weights is None:
        from ..geoclip.embeddings import cached_gallery_embeddings

        return cached_gallery_embeddings(points) if cache else encoder.embed(points, batch_size)
    if not cache:
        return encoder.embed(points, batch_size)
    from ..paths import cache_dir

    key = sha256_arrays(points, extra=f"{_FORMAT}|{encoder.weights_id}")[:40]
    npy = cache_dir("location_encoder_embeddings") / f"{key}.npy"
    side = npy.with_suffix(".json")
    if npy.is_file() and side.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
            if meta.get("npy_sha256") == sha256_file(npy):
                array = np.load(npy, allow_pickle=False)
                if array.shape == (len(points), encoder.embed_dim):
                    return array
        except (OSError, ValueError, json.JSONDecodeError):
            pass  # a damaged entry is recomputed
    embeddings = encoder.embed(points, batch_size)
    save_npy_atomic(npy, embeddings)
    with atomic_write(side) as fh:
        json.dump({"encoder": encoder.weights_id, "npy_sha256": sha256_file(npy)}, fh)
    return embeddings


# ------------------------------------------------------------------ range pretraining


def range_training_points(
    n_points: int,
    seed: int = 0,
    sphere_fraction: float = 0.2,
    focus_coords: ArrayLike | None = None,
    focus_fraction: float = 0.5,
    focus_km: float = 300.0,
) -> np.ndarray:
    """(n_points, 2) lat/lon where a range model is queried for pretraining.

    A ``sphere_fraction`` of the points is uniform over the whole sphere (mostly sea, where
    nothing lives: the encoder learns absence there too); with ``focus_coords`` (e.g. the
    training recordings) a ``focus_fraction`` lies within about ``focus_km`` of them; the rest
    is area-uniform over land (latitudes -56..75).
    """
    from ..synth.places import destination, load_land_grid, random_land_points

    if n_points < 1:
        raise InputError(f"range pretraining: n_points must be >= 1, got {n_points}")
    if not 0.0 <= sphere_fraction <= 1.0 or not 0.0 <= focus_fraction <= 1.0:
        raise InputError("range pretraining: fractions must be in [0, 1]")
    rng = np.random.default_rng(seed)
    n_sphere = round(n_points * sphere_fraction)
    focus = None if focus_coords is None else check_coords(focus_coords, "focus locations")
    n_focus = 0 if focus is None or len(focus) == 0 else round(n_points * focus_fraction)
    n_focus = min(n_focus, n_points - n_sphere)
    n_land = n_points - n_sphere - n_focus
    parts = []
    if n_sphere:
        lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n_sphere)))
        parts.append(np.stack([lat, rng.uniform(-180.0, 180.0, n_sphere)], axis=1))
    if n_focus and focus is not None:
        anchor = focus[rng.integers(0, len(focus), n_focus)]
        dist = focus_km * np.sqrt(rng.uniform(size=n_focus))
        lat, lon = destination(anchor[:, 0], anchor[:, 1], dist, rng.uniform(0, 2 * np.pi, n_focus))
        parts.append(np.stack([lat, lon], axis=1))
    if n_land:
        lat, lon = random_land_points(rng, n_land, load_land_grid())
        parts.append(np.stack([lat, lon], axis=1))
    points = np.concatenate(parts).astype(np.float64)
    return points[rng.permutation(len(points))]


def _macro_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean ROC AUC over the species that have both presences and absences (NaN if none)."""
    from sklearn.metrics import roc_auc_score

    keep = (labels.sum(axis=0) > 0) & (labels.sum(axis=0) < len(labels))
    if not keep.any():
        return float("nan")
    return float(roc_auc_score(labels[:, keep], scores[:, keep], average="macro"))


def _bce(logits: np.ndarray, labels: np.ndarray) -> float:
    t_logits = torch.from_numpy(logits.astype(np.float32))
    t_labels = torch.from_numpy(labels.astype(np.float32))
    return float(F.binary_cross_entropy_with_logits(t_logits, t_labels))


#: Adam learning rates of range pretraining: the better of 1e-3 and 3e-3 for short runs on the
#: tiny synthetic world (SINR itself trains far longer at 5e-4).
DEFAULT_PRETRAIN_LR: dict[str, float] = {"sinr": 3e-3, "satclip": 3e-3}


def _build_for_range(
    kind: str, n_species: int, species: list[str], **kwargs: Any
) -> LocationEncoder:
    try:
        if kind == "sinr":
            return SINREncoder(num_classes=n_species, species=species, **kwargs)
        return SatCLIPEncoder(num_classes=n_species, species=species, **kwargs)
    except TypeError as exc:
        raise InputError(f"range pretraining: bad {kind} encoder option ({exc})") from exc


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` intra-op torch threads (None: leave as is), then restore.

    Small networks train many times faster on one thread on a busy machine.
    """
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _range_model_fingerprint(range_model: Any) -> str:
    """Hash of a range model's presence at fixed probe points (identity for caching)."""
    rng = np.random.default_rng(12345)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 4096)))
    lon = rng.uniform(-180.0, 180.0, 4096)
    presence = np.asarray(range_model.presence(lat, lon, None), dtype=np.float32)
    return sha256_arrays(presence, extra="|".join(map(str, range_model.species)))


def pretrain_range_encoder(
    kind: str,
    range_model: Any,
    n_points: int = 20_000,
    epochs: int = 30,
    seed: int = 0,
    batch_size: int = 512,
    lr: float | None = None,
    threshold: float = 0.1,
    val_fraction: float = 0.1,
    focus_coords: ArrayLike | None = None,
    sphere_fraction: float = 0.2,
    cache: bool = True,
    progress: bool = False,
    num_threads: int | None = None,
    **encoder_kwargs: Any,
) -> LocationEncoder:
    """Train a ``sinr`` or ``satclip`` encoder as a range model and return it frozen.

    Presence/absence targets are the range model's year-round checklists (presence >=
    ``threshold``) at :func:`range_training_points`; the loss is BCE over all species, Adam
    (``lr`` defaults to :data:`DEFAULT_PRETRAIN_LR`), and the epoch with the lowest validation
    BCE is kept. ``encoder_kwargs`` go to the encoder (e.g. ``legendre_polys``);
    ``num_threads`` limits torch's threads while training. ``pretrain_info`` holds the
    validation BCE, the BCE of a constant per-species prevalence and the macro ROC AUC.
    With ``cache``, the result is stored under the cache folder keyed by the range model's
    fingerprint and every argument, and reused.
    """
    species = [str(s) for s in range_model.species]
    if kind not in DEFAULT_PRETRAIN_LR:
        raise InputError(f"range pretraining: kind {kind!r} must be 'sinr' or 'satclip'")
    lr = DEFAULT_PRETRAIN_LR[kind] if lr is None else lr
    if epochs < 1 or batch_size < 1 or not 0.0 < val_fraction < 1.0:
        raise InputError(
            "range pretraining: need epochs >= 1, batch_size >= 1, 0 < val_fraction < 1"
        )
    settings = {
        "kind": kind,
        "n_points": n_points,
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "threshold": threshold,
        "val_fraction": val_fraction,
        "sphere_fraction": sphere_fraction,
        "encoder": encoder_kwargs,
    }
    cache_file: Path | None = None
    if cache:
        from ..paths import cache_dir

        focus_sha = (
            "none" if focus_coords is None else sha256_arrays(check_coords(focus_coords, "focus"))
        )
        key = sha256_arrays(
            extra=json.dumps(settings, sort_keys=True)
            + _range_model_fingerprint(range_model)
            + focus_sha
        )[:32]
        cache_file = cache_dir("location_encoders") / f"{kind}-{key}.safetensors"
        if cache_file.is_file():
            try:
                return load_location_encoder_file(cache_file)
            except (InputError, WeightsNotFoundError):
                pass  # damaged cache entry: train again
    with torch_threads(num_threads):
        encoder = _fit_range_encoder(
            kind, range_model, species, settings, focus_coords, encoder_kwargs, progress
        )
    if cache_file is not None:
        save_location_encoder(encoder, cache_file, encoder.pretrain_info)
    return encoder


def _fit_range_encoder(
    kind: str,
    range_model: Any,
    species: list[str],
    settings: dict[str, Any],
    focus_coords: ArrayLike | None,
    encoder_kwargs: dict[str, Any],
    progress: bool,
) -> LocationEncoder:
    """The training loop of :func:`pretrain_range_encoder` (arguments in ``settings``)."""
    import time

    from ..checklists import checklists

    started = time.perf_counter()
    seed, n_points, epochs = settings["seed"], settings["n_points"], settings["epochs"]
    batch_size, lr = settings["batch_size"], settings["lr"]
    torch.manual_seed(seed)
    encoder = _build_for_range(kind, len(species), species, **encoder_kwargs)
    points = range_training_points(n_points, seed, settings["sphere_fraction"], focus_coords)
    labels = checklists(range_model, points, threshold=settings["threshold"]).astype(np.float32)
    n_val = max(1, round(len(points) * settings["val_fraction"]))
    x_train = torch.from_numpy(points[n_val:]).float()
    y_train = torch.from_numpy(labels[n_val:])
    x_val, y_val = points[:n_val], labels[:n_val]
    optimiser = torch.optim.Adam(encoder.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    head = encoder.presence_logits
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    history: list[float] = []
    for _epoch in range(epochs):
        encoder.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = F.binary_cross_entropy_with_logits(head(x_train[idx]), y_train[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        val_logits = _predict_logits(encoder, x_val)
        val_bce = _bce(val_logits, y_val)
        history.append(round(val_bce, 6))
        if progress:
            print(f"[{kind} range pretraining] epoch {_epoch + 1}/{epochs}: val BCE {val_bce:.4f}")
        if best is None or val_bce < best[0]:
            best = (val_bce, {k: v.detach().clone() for k, v in encoder.state_dict().items()})
    assert best is not None
    encoder.load_state_dict(best[1])
    val_logits = _predict_logits(encoder, x_val)
    prevalence = np.clip(y_train.numpy().mean(axis=0), 1e-6, 1 - 1e-6)
    constant = np.broadcast_to(np.log(prevalence / (1 - prevalence)), y_val.shape)
    encoder.pretrain_info = {
        **settings,
        "val_bce": _bce(val_logits, y_val),
        "val_bce_constant": _bce(np.ascontiguousarray(constant), y_val),
        "val_macro_auc": _macro_auc(val_logits, y_val),
        "val_bce_by_epoch": history,
        "positive_rate": float(labels.mean()),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return encoder.freeze()


def _predict_logits(encoder: LocationEncoder, coords: np.ndarray) -> np.ndarray:
    was_training = encoder.training
    encoder.eval()
    with torch.inference_mode():
        out = encoder.presence_logits(torch.from_numpy(coords).float())
    encoder.train(was_training)
    return out.numpy()
