"""TaxaBind off the shelf (Sastry et al., WACV 2025): its audio encoder and its location encoder,
used as the paper's Table 1 "Retrieve" baseline (audio embedding -> most similar gallery place).

TaxaBind publishes its towers on the Hugging Face hub (collection ``MVRL/taxabind``, config
``MVRL/taxabind-config``; its image/text model is ``MVRL/taxabind-vit-b-16``). Two are used here:

``MVRL/ecosound`` (audio)
    transformers ``ClapAudioModelWithProjection`` (CLAP HTSAT audio tower + projection, 512-d):
    ``config.json`` (``model_type: clap_audio_model``) + ``model.safetensors``. TaxaBind's
    preprocessing is CLAP's (48 kHz mono, 10 s, ``repeatpad``, ``fusion``): see
    :mod:`geoforensics.core.models.clap`. Each recording is embedded whole, as in the paper's
    baseline script (one recording per call).
``MVRL/ecogeo`` (location)
    a GeoCLIP-style encoder (``PyTorchModelHubMixin``): ``config.json`` with ``sigma`` (the
    random-Fourier-feature scales, ``[1, 16, 256]``), ``encoded_size`` (256), ``input_size``
    (2) and ``dim`` (512), + ``model.safetensors`` with GeoCLIP's parameter names
    (``LocEnc{i}.capsule.0.b``, ``capsule.1/3/5``, ``head.0``). Input (lat, lon) degrees,
    Equal Earth projection, one branch per sigma, branches summed: :class:`TaxaBindLocationEncoder`.

Where the weights are found (never downloaded at run time), in this order:

1. an explicit folder (``--taxabind FOLDER`` in ``weights status``; ``--model FOLDER`` for
   ``locate --method taxabind``), or ``$GEOFORENSICS_TAXABIND``: a folder with ``ecosound/``
   and ``ecogeo/`` subfolders, each holding ``config.json`` + ``model.safetensors`` (what
   ``geoforensics weights download taxabind --to FOLDER`` writes);
2. the Hugging Face hub cache (``models--MVRL--ecosound`` and ``models--MVRL--ecogeo``), where
   ``geoforensics weights download taxabind`` puts them.

Pickled ``.bin``/``.pt`` weights are never downloaded or loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from geoforensics.core.errors import GeoforensicsError, InputError, WeightsNotFoundError
from geoforensics.core.geoclip.location_encoder import FourierFeatures, equal_earth_projection
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.load_errors import load_error_summary
from geoforensics.core.models.clap import ClapAudioTower, clap_folder_problems, hub_snapshot
from geoforensics.core.models.encoders.weights import check_state_dict, file_sha256, read_state_dict
from geoforensics.core.models.location import LocationEncoder, check_latlon, gallery_embeddings
from geoforensics.core.vision.weights import WeightsStatus, hf_cache_dir

#: Hub ids of TaxaBind's audio and location towers.
TAXABIND_AUDIO_HUB_ID = "MVRL/ecosound"
TAXABIND_LOCATION_HUB_ID = "MVRL/ecogeo"
#: Subfolder names inside a TaxaBind folder (the hub repositories' names).
AUDIO_SUBDIR, LOCATION_SUBDIR = "ecosound", "ecogeo"
#: Environment variable naming a TaxaBind folder.
TAXABIND_ENV = "GEOFORENSICS_TAXABIND"
#: What the download fetches: configs and safetensors only.
ALLOW_PATTERNS: tuple[str, ...] = ("*.json", "*.safetensors")
IGNORE_PATTERNS: tuple[str, ...] = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")
#: One line saying how to get the weights (appended to every "not found" message).
TAXABIND_HINT = (
    "run `geoforensics weights download taxabind` (about 150 MB, needs internet once) or "
    f"export {TAXABIND_ENV}=FOLDER (a folder with {AUDIO_SUBDIR}/ and {LOCATION_SUBDIR}/, each "
    "config.json + model.safetensors from the hub)"
)


# ----------------------------------------------------------------------- location encoder


class _Branch(nn.Module):
    """One scale: Fourier features (``encoded_size`` frequencies), a 3-layer ReLU MLP of width
    2·dim and a linear head to ``dim`` (GeoCLIP's ``LocationEncoderCapsule``)."""

    def __init__(self, sigma: float, encoded_size: int, dim: int) -> None:
        super().__init__()

        hidden = 2 * dim
        self.capsule = nn.Sequential(
            FourierFeatures(sigma, encoded_size),
            nn.Linear(2 * encoded_size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(hidden, dim))

    def forward(self, projected: torch.Tensor) -> torch.Tensor:
        return self.head(self.capsule(projected))


class TaxaBindLocationEncoder(LocationEncoder):
    """TaxaBind's GeoCLIP-style location encoder: (B, 2) lat/lon -> (B, dim), unnormalised.

    With ``sigma=(1, 16, 256)``, ``encoded_size=256`` and ``dim=512`` it is GeoCLIP's
    architecture exactly (GeoCLIP's own weights load into it).
    """

    name = "taxabind"

    def __init__(
        self,
        sigma: tuple[float, ...] = (1.0, 16.0, 256.0),
        encoded_size: int = 256,
        dim: int = 512,
        input_size: int = 2,
    ) -> None:
        super().__init__()
        if input_size != 2 or not sigma or encoded_size < 1 or dim < 1:
            raise InputError(
                "TaxaBind location encoder: need input_size 2, at least one sigma and positive "
                f"sizes; got input_size={input_size}, sigma={list(sigma)}, "
                f"encoded_size={encoded_size}, dim={dim}"
            )
        self.sigma = tuple(float(s) for s in sigma)
        self.encoded_size, self.embed_dim = int(encoded_size), int(dim)
        for i, s in enumerate(self.sigma):
            self.add_module(f"LocEnc{i}", _Branch(s, self.encoded_size, self.embed_dim))
        self.weights_file_id: str | None = None

    def forward(self, coords: torch.Tensor) -> torch.Tensor:

        check_latlon(coords)
        projected = equal_earth_projection(coords)
        out = torch.zeros(coords.shape[0], self.embed_dim, dtype=projected.dtype,
                          device=coords.device)  # fmt: skip
        for i in range(len(self.sigma)):
            out = out + getattr(self, f"LocEnc{i}")(projected)
        return out

    def config(self) -> dict[str, Any]:
        return {
            "sigma": list(self.sigma),
            "encoded_size": self.encoded_size,
            "dim": self.embed_dim,
            "input_size": 2,
        }

    @property
    def weights_id(self) -> str:
        if self.weights_file_id is not None:
            return self.weights_file_id
        return super().weights_id


def load_taxabind_location_encoder(folder: str | os.PathLike[str]) -> TaxaBindLocationEncoder:
    """The location encoder of an ``ecogeo`` folder (``config.json`` + ``model.safetensors``),
    frozen."""
    root = Path(folder)
    problems = clap_folder_problems(root)  # the same two files
    if problems:
        raise WeightsNotFoundError(
            f"{root}: not a usable TaxaBind location folder (missing {'; '.join(problems)})"
        )
    path = root / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("sigma"), list):
        raise InputError(f"{path}: expected a GeoCLIP-style config with a 'sigma' list")
    try:
        encoder = TaxaBindLocationEncoder(
            sigma=tuple(float(s) for s in raw["sigma"]),
            encoded_size=int(raw.get("encoded_size", 256)),
            dim=int(raw.get("dim", 512)),
            input_size=int(raw.get("input_size", 2)),
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: bad location-encoder config ({exc})") from None
    weights = root / "model.safetensors"
    state = read_state_dict(weights)
    check_state_dict(encoder, state, weights)
    encoder.load_state_dict(state, strict=True)
    encoder.weights_file_id = "taxabind-loc-" + file_sha256(weights)[:16]
    return encoder.freeze()


# ------------------------------------------------------------------------- finding weights


@dataclass(frozen=True)
class TaxaBindFiles:
    """Where TaxaBind's two towers are, and how they were found."""

    audio: Path
    location: Path
    source: str

    def weights_files(self) -> tuple[Path, Path]:
        """The two safetensors files (audio, location)."""
        return self.audio / "model.safetensors", self.location / "model.safetensors"

    def identity(self) -> dict[str, str]:
        """SHA-256 of both weights files (resume checks, reports)."""
        audio, location = self.weights_files()
        return {"audio_sha256": file_sha256(audio), "location_sha256": file_sha256(location)}


def _folder_problems(folder: Path) -> list[str]:
    if not folder.is_dir():
        return ["the folder does not exist"]
    problems = []
    for sub in (AUDIO_SUBDIR, LOCATION_SUBDIR):
        missing = clap_folder_problems(folder / sub)
        if missing:
            problems.append(f"{sub}/ ({'; '.join(missing)})")
    return problems


def _checked_folder(folder: Path, what: str) -> TaxaBindFiles:
    problems = _folder_problems(folder)
    if problems:
        raise WeightsNotFoundError(
            f"{what} {folder}: not a usable TaxaBind folder (missing {', '.join(problems)}); "
            f"{TAXABIND_HINT}"
        )
    root = folder.resolve()
    return TaxaBindFiles(root / AUDIO_SUBDIR, root / LOCATION_SUBDIR, what)


def find_taxabind_weights(folder: str | os.PathLike[str] | None = None) -> TaxaBindFiles:
    """TaxaBind's two tower folders (explicit folder, ``$GEOFORENSICS_TAXABIND``, HF cache).

    Never touches the network; raises :class:`WeightsNotFoundError` with a one-line fix."""
    if folder is not None:
        return _checked_folder(Path(folder).expanduser(), "TaxaBind folder")
    env = os.environ.get(TAXABIND_ENV)
    if env:
        return _checked_folder(Path(env).expanduser(), f"${TAXABIND_ENV}")
    audio = hub_snapshot(TAXABIND_AUDIO_HUB_ID)
    location = hub_snapshot(TAXABIND_LOCATION_HUB_ID)
    if audio is not None and location is not None:
        return TaxaBindFiles(audio, location, "Hugging Face cache")

    lacking = [
        hub
        for hub, found in ((TAXABIND_AUDIO_HUB_ID, audio), (TAXABIND_LOCATION_HUB_ID, location))
        if found is None
    ]
    raise WeightsNotFoundError(
        f"TaxaBind weights not found: ${TAXABIND_ENV} unset and {' and '.join(lacking)} not in "
        f"the Hugging Face cache {hf_cache_dir()}; {TAXABIND_HINT}"
    )


def taxabind_status(folder: str | os.PathLike[str] | None = None) -> Any:
    """A :class:`~geoforensics.core.vision.weights.WeightsStatus` row for ``weights status``."""

    name = "TaxaBind (audio + location)"
    try:
        files = find_taxabind_weights(folder)
    except WeightsNotFoundError as exc:
        return WeightsStatus(name=name, found=False, location=None, detail=str(exc))
    return WeightsStatus(
        name=name,
        found=True,
        location=str(files.audio.parent if files.source != "Hugging Face cache" else files.audio),
        detail=(
            f"{TAXABIND_AUDIO_HUB_ID} + {TAXABIND_LOCATION_HUB_ID} ({files.source}); "
            "bench row taxabind, locate --method taxabind"
        ),
    )


def download_taxabind(to: str | os.PathLike[str] | None = None) -> TaxaBindFiles:
    """Download TaxaBind's audio and location towers (configs + safetensors only) into ``to``
    (``to/ecosound``, ``to/ecogeo``) or the Hugging Face cache; returns where they are.

    Any hub or network failure is one :class:`GeoforensicsError` line.
    """
    from huggingface_hub import snapshot_download

    target = None if to is None else Path(to).expanduser()
    if target is not None:
        if target.exists() and not target.is_dir():
            raise GeoforensicsError(f"--to {target}: exists and is not a folder")
        target.mkdir(parents=True, exist_ok=True)
    for repo_id, sub in ((TAXABIND_AUDIO_HUB_ID, AUDIO_SUBDIR),
                         (TAXABIND_LOCATION_HUB_ID, LOCATION_SUBDIR)):  # fmt: skip
        kwargs: dict[str, Any] = {
            "repo_id": repo_id,
            "allow_patterns": list(ALLOW_PATTERNS),
            "ignore_patterns": list(IGNORE_PATTERNS),
        }
        if target is not None:
            kwargs["local_dir"] = str(target / sub)
        else:
            kwargs["cache_dir"] = str(hf_cache_dir())
        try:
            snapshot_download(**kwargs)
        except Exception as exc:  # hub and network errors come in many types
            raise GeoforensicsError(
                f"downloading {repo_id} failed ({load_error_summary(exc)}); the Hugging Face "
                "hub must be reachable: run this on a connected machine with --to FOLDER, "
                f"copy FOLDER here and export {TAXABIND_ENV}=FOLDER"
            ) from None
    return find_taxabind_weights(target)


# ------------------------------------------------------------------------------- the model


class TaxaBind:
    """TaxaBind's audio tower (:class:`~geoforensics.core.models.clap.ClapAudioTower`) and
    location encoder (:class:`TaxaBindLocationEncoder`), loaded from :class:`TaxaBindFiles`."""

    def __init__(self, files: TaxaBindFiles) -> None:
        self.files = files
        self.audio = ClapAudioTower(files.audio)
        self.location = load_taxabind_location_encoder(files.location)
        if self.audio.embed_dim != self.location.embed_dim:
            raise InputError(
                f"TaxaBind: audio embeddings are {self.audio.embed_dim}-d but location "
                f"embeddings {self.location.embed_dim}-d ({files.audio}, {files.location})"
            )

    @property
    def embed_dim(self) -> int:
        """Width of the shared embedding space (512 for the released towers)."""
        return self.location.embed_dim

    def gallery_embeddings(self, coords: ArrayLike, cache: bool = True) -> np.ndarray:
        """(N, D) unit-norm location embeddings of gallery coordinates (cached on disk)."""
        return gallery_embeddings(self.location, coords, cache=cache)

    def retrieval_index(self, coords: ArrayLike) -> Any:
        """A :class:`~geoforensics.core.geoclip.retrieval.RetrievalIndex` over the gallery in
        TaxaBind's location space."""

        return RetrievalIndex(coords, self.gallery_embeddings(coords))

    def embed_file(self, path: str | os.PathLike[str]) -> np.ndarray:
        """(D,) unit-norm audio embedding of a whole recording."""
        return self.audio.embed_file(path)


def load_taxabind(folder: str | os.PathLike[str] | None = None) -> TaxaBind:
    """TaxaBind from ``folder`` (or ``$GEOFORENSICS_TAXABIND``, or the HF cache)."""
    return TaxaBind(find_taxabind_weights(folder))
