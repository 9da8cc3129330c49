"""GeoCLAP off the shelf (Khanal et al., BMVC 2023): audio -> the most similar aerial tile.

GeoCLAP embeds a recording with a CLAP audio tower and a *place* with a satellite-image encoder
(no location encoder): to geolocate with it one needs an aerial tile of every candidate place.

Audio tower
    ``MVRL/geoclap-sentinel-best-ckpt`` on the Hugging Face hub: transformers
    ``ClapAudioModelWithProjection`` (``config.json`` + ``model.safetensors``), CLAP's
    front-end with fusion, 48 kHz, 10 s, repeat padding (GeoCLAP's own processing, as
    TaxaBind's; :class:`~geoforensics.core.models.clap.ClapAudioTower`).
Satellite-image encoder
    SatMAE's ViT (patch embedding, class token, fixed position embedding, pre-norm blocks
    ``norm1 -> attn(qkv, proj) -> norm2 -> mlp(fc1, GELU, fc2)``, LayerNorm eps 1e-6, the
    class token after the final ``norm``, ``head`` to 1,000) -> ReLU -> ``fc`` (1,000 ->
    512), GeoCLAP's ``SatMAE`` module without metadata. ViT-B/16 at 224 px for the released
    model; sizes are read from the weight shapes (heads = width / 64). Its weights are not
    published as safetensors: take GeoCLAP's checkpoint, keep its ``state_dict`` entries
    ``sat_encoder.model.*`` and ``sat_encoder.fc.*`` (bare ``model.*`` / ``fc.*`` also work)
    and save them with safetensors (or ``torch.save`` of that plain dict).
Image transform (SatMAE's evaluation transform)
    RGB in [0, 1], ImageNet mean/std normalisation, bicubic resize of the shorter side to
    ``img_size / 0.875`` (256 for 224), centre crop to ``img_size``.

Files: a GeoCLAP folder (``$GEOFORENSICS_GEOCLAP``) holding ``sat_encoder.safetensors`` (or
``sat_encoder.pt``) and, unless the hub cache has ``MVRL/geoclap-sentinel-best-ckpt``,
``audio/config.json`` + ``audio/model.safetensors``.

Aerial tiles (the gallery): a folder with ``tiles.csv`` (header ``latitude,longitude,file``;
``file`` relative to the folder) and the images it names (PNG/JPEG, RGB, centred on the
place; GeoCLAP trained on Sentinel-2 RGB tiles of about 1,024 px). Found at
``$GEOFORENSICS_GEOCLAP_TILES`` or ``DATA/aerial_tiles/`` beside an iNatSounds-format data set.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_arrays
from geoforensics.core.geo.distance import check_coords
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.models.clap import ClapAudioTower, clap_folder_problems, hub_snapshot
from geoforensics.core.models.encoders.weights import check_state_dict, file_sha256, read_state_dict

GEOCLAP_AUDIO_HUB_ID = "MVRL/geoclap-sentinel-best-ckpt"
GEOCLAP_ENV = "GEOFORENSICS_GEOCLAP"
TILES_ENV = "GEOFORENSICS_GEOCLAP_TILES"
TILES_CSV = "tiles.csv"
DATA_TILES_DIR = "aerial_tiles"
SAT_WEIGHTS_NAMES: tuple[str, ...] = ("sat_encoder.safetensors", "sat_encoder.pt")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GEOCLAP_HINT = (
    f"export {GEOCLAP_ENV}=FOLDER holding sat_encoder.safetensors (GeoCLAP's sat_encoder.* "
    f"weights re-saved from its checkpoint) and audio/ ({GEOCLAP_AUDIO_HUB_ID}: config.json + "
    "model.safetensors, or that repository in the Hugging Face cache)"
)


# ------------------------------------------------------------------------- SatMAE's ViT


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class SatMAEViT(nn.Module):
    """SatMAE's ViT classifier (timm parameter names): image -> (B, num_classes) logits from
    the normalised class token."""

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        if img_size % patch_size or embed_dim % num_heads:
            raise InputError(
                f"SatMAE ViT: img_size {img_size} must be a multiple of patch_size {patch_size} "
                f"and embed_dim {embed_dim} of num_heads {num_heads}"
            )
        self.img_size = img_size
        patches = (img_size // patch_size) ** 2
        self.patch_embed = _PatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, embed_dim))
        self.blocks = nn.Sequential(
            *[_Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class GeoCLAPSatEncoder(nn.Module):
    """GeoCLAP's satellite-image encoder: ``fc(relu(SatMAE ViT logits))``, unnormalised."""

    def __init__(self, vit: SatMAEViT, out_dim: int = 512) -> None:
        super().__init__()
        self.model = vit
        self.fc = nn.Linear(vit.head.out_features, out_dim)

    @property
    def img_size(self) -> int:
        return self.model.img_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.model(images)))


def load_sat_encoder(path: str | os.PathLike[str]) -> GeoCLAPSatEncoder:
    """GeoCLAP's satellite encoder from a weights file (layout in the module docstring), sized
    from the weight shapes; frozen, eval mode."""
    file = Path(path)
    raw = read_state_dict(file)
    state = {k.removeprefix("sat_encoder."): v for k, v in raw.items()}
    state = {k: v for k, v in state.items() if k.startswith(("model.", "fc."))}
    needed = ("model.cls_token", "model.pos_embed", "model.patch_embed.proj.weight", "fc.weight")
    missing = [k for k in needed if k not in state]
    if missing:
        raise InputError(
            f"{file}: not GeoCLAP satellite-encoder weights (no {', '.join(missing)}; expected "
            "sat_encoder.model.* and sat_encoder.fc.*)"
        )
    dim = int(state["model.cls_token"].shape[-1])
    patch = int(state["model.patch_embed.proj.weight"].shape[-1])
    grid = math.isqrt(int(state["model.pos_embed"].shape[1]) - 1)
    depth = len({k.split(".")[2] for k in state if k.startswith("model.blocks.")})
    hidden = state.get("model.blocks.0.mlp.fc1.weight")
    ratio = float(hidden.shape[0]) / dim if hidden is not None else 4.0
    try:
        vit = SatMAEViT(
            img_size=grid * patch,
            patch_size=patch,
            embed_dim=dim,
            depth=depth,
            num_heads=max(1, dim // 64),
            mlp_ratio=ratio,
            num_classes=int(state["model.head.weight"].shape[0])
            if "model.head.weight" in state
            else 1000,
        )
    except InputError as exc:
        raise InputError(f"{file}: {exc}") from None
    encoder = GeoCLAPSatEncoder(vit, int(state["fc.weight"].shape[0]))
    check_state_dict(encoder, state, file)
    encoder.load_state_dict(state, strict=True)
    encoder.requires_grad_(False)
    return encoder.eval()


def tile_tensor(image: np.ndarray, img_size: int) -> torch.Tensor:
    """SatMAE's evaluation transform of an (H, W, 3) uint8 RGB image -> (3, S, S) float."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"aerial tile: expected an (H, W, 3) RGB image, got {image.shape}")
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    x = TF.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD))
    size = int(img_size / (224 / 256)) if img_size <= 224 else img_size
    x = TF.resize(x, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.center_crop(x, img_size)


# ------------------------------------------------------------------------------- tiles


@dataclass(frozen=True)
class AerialTiles:
    """The aerial-tile gallery: ``coords`` (N, 2) lat/lon and the image ``files``."""

    folder: Path
    coords: np.ndarray
    files: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.files)

    def identity(self) -> str:
        """SHA-256 over tiles.csv and every image (resume checks)."""

        digests = [file_sha256(self.folder / TILES_CSV), *(file_sha256(f) for f in self.files)]
        return sha256_arrays(extra="|".join(digests))


def find_tiles(data_root: str | os.PathLike[str] | None = None) -> Path:
    """The tiles folder: ``$GEOFORENSICS_GEOCLAP_TILES``, else ``DATA/aerial_tiles``."""
    env = os.environ.get(TILES_ENV)
    if env:
        folder = Path(env).expanduser()
    elif data_root is not None:
        folder = Path(data_root) / DATA_TILES_DIR
    else:
        raise InputError(f"no aerial tiles: ${TILES_ENV} unset")
    if not (folder / TILES_CSV).is_file():
        raise InputError(
            f"{folder / TILES_CSV}: not found (aerial tiles for GeoCLAP: a tiles.csv with "
            f"latitude,longitude,file and the images; or set ${TILES_ENV})"
        )
    return folder.resolve()


def read_tiles(folder: str | os.PathLike[str]) -> AerialTiles:
    """Read and check a tiles folder (one-line errors naming the file and row)."""

    root = Path(folder)
    table = root / TILES_CSV
    try:
        with table.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{table}: unreadable ({exc})") from None
    if not rows or not {"latitude", "longitude", "file"} <= set(rows[0]):
        raise InputError(f"{table}: expected a header latitude,longitude,file and rows")
    coords, files = [], []
    for number, row in enumerate(rows, start=2):
        try:
            lat, lon = float(row["latitude"]), float(row["longitude"])
        except (TypeError, ValueError):
            raise InputError(
                f"{table}: line {number}: latitude/longitude are not numbers"
            ) from None
        file = root / (row["file"] or "")
        if not row["file"] or not file.is_file():
            raise InputError(f"{table}: line {number}: no image {file}")
        coords.append((lat, lon))
        files.append(file)
    points = check_coords(np.asarray(coords, dtype=np.float64), str(table))
    return AerialTiles(root, points, tuple(files))


def load_tile(path: Path, img_size: int) -> torch.Tensor:
    """An aerial tile image file, transformed for the encoder."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None
    return tile_tensor(rgb, img_size)


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class GeoCLAPFiles:
    """Where GeoCLAP's audio tower folder and satellite-encoder weights are."""

    audio: Path
    sat: Path


def find_geoclap_weights() -> GeoCLAPFiles:
    """GeoCLAP's files (``$GEOFORENSICS_GEOCLAP``; the audio tower may come from the HF cache)."""
    env = os.environ.get(GEOCLAP_ENV)
    if not env:
        raise WeightsNotFoundError(
            f"GeoCLAP weights not found: ${GEOCLAP_ENV} unset; {GEOCLAP_HINT}"
        )
    folder = Path(env).expanduser()
    sat = next((folder / n for n in SAT_WEIGHTS_NAMES if (folder / n).is_file()), None)
    if sat is None:
        raise WeightsNotFoundError(
            f"${GEOCLAP_ENV} {folder}: no {' or '.join(SAT_WEIGHTS_NAMES)}; {GEOCLAP_HINT}"
        )
    local = folder / "audio"
    audio = local if not clap_folder_problems(local) else hub_snapshot(GEOCLAP_AUDIO_HUB_ID)
    if audio is None:
        raise WeightsNotFoundError(
            f"${GEOCLAP_ENV} {folder}: no audio/ (config.json + model.safetensors) and "
            f"{GEOCLAP_AUDIO_HUB_ID} not in the Hugging Face cache; {GEOCLAP_HINT}"
        )
    return GeoCLAPFiles(audio.resolve(), sat.resolve())


class GeoCLAP:
    """GeoCLAP's audio tower and satellite encoder: recordings and tiles in one space."""

    def __init__(self, files: GeoCLAPFiles) -> None:
        self.files = files
        self.audio = ClapAudioTower(files.audio)
        self.sat = load_sat_encoder(files.sat)
        if self.sat.fc.out_features != self.audio.embed_dim:
            raise InputError(
                f"GeoCLAP: satellite embeddings are {self.sat.fc.out_features}-d but audio "
                f"embeddings {self.audio.embed_dim}-d ({files.sat}, {files.audio})"
            )

    def embed_tiles(self, tiles: AerialTiles, batch_size: int = 16) -> np.ndarray:
        """(N, D) unit-norm embeddings of the tiles."""
        out = []
        for start in range(0, len(tiles), batch_size):
            batch = torch.stack(
                [load_tile(f, self.sat.img_size) for f in tiles.files[start : start + batch_size]]
            )
            with torch.inference_mode():
                out.append(F.normalize(self.sat(batch).float(), dim=1).numpy())
        return np.concatenate(out).astype(np.float32)

    def retrieval_index(self, tiles: AerialTiles) -> Any:
        """A RetrievalIndex over the tiles' places in GeoCLAP's space."""

        return RetrievalIndex(tiles.coords, self.embed_tiles(tiles))

    def embed_file(self, path: str | os.PathLike[str]) -> np.ndarray:
        """(D,) unit-norm audio embedding of a whole recording."""
        return self.audio.embed_file(path)


def load_geoclap() -> GeoCLAP:
    """GeoCLAP from ``$GEOFORENSICS_GEOCLAP`` (and the HF cache for the audio tower)."""
    return GeoCLAP(find_geoclap_weights())
