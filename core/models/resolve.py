"""Which audio model a ``--model`` argument names, and which audio models this machine has.

``--model`` (``geoforensics locate``, ``check``, ``app``) takes any of:

- a model folder (``model.safetensors`` + ``model.json``, as written by ``geoforensics train``
  or ``geoforensics weights import``), or either of its two files;
- a released AG-CLIP checkpoint of the paper (``.pt`` / ``.pth``: a plain torchvision
  ``mobilenet_v3_large`` state dict, see :mod:`.reference`). It is read with
  ``weights_only=True``, imported once into ``$GEOFORENSICS_CACHE/models/agclip-<sha256>``
  (keyed by the file's SHA-256, so an edited file is imported afresh) and that folder is used.

:func:`find_audio_models` lists the models ``geoforensics weights status`` reports: the shipped
ones (``assets/models``), the imported ones in the cache, and model folders under
``$GEOFORENSICS_MODELS`` (one or more folders, ``os.pathsep``-separated), each with what it
was trained on (:mod:`.provenance`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geoforensics.core.errors import GeoforensicsError, InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.models.model_files import CONFIG_FILE, WEIGHTS_FILE
from geoforensics.core.models.provenance import TrainingData, model_training_data
from geoforensics.core.paths import assets_dir, cache_dir

if TYPE_CHECKING:
    from geoforensics.core.models.geolocator import AudioGeolocator

#: File suffixes taken as released (torch-saved) checkpoints.
CHECKPOINT_SUFFIXES: tuple[str, ...] = (".pt", ".pth", ".ckpt")
#: Environment variable naming folders of the user's model folders (listed by weights status).
MODELS_ENV = "GEOFORENSICS_MODELS"
#: Cache sub-folder of imported checkpoints.
IMPORT_CACHE = "models"
#: Hex digits of the checkpoint's SHA-256 in an imported folder's name.
_KEY_DIGITS = 32

#: (absolute path, mtime_ns, size) of a checkpoint -> its imported folder (this process).
_resolved: dict[tuple[str, int, int], Path] = {}


def is_model_folder(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a saved model (``model.safetensors`` and ``model.json``)."""
    base = Path(folder)
    return (base / WEIGHTS_FILE).is_file() and (base / CONFIG_FILE).is_file()


def _default_mode(kind: int) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return kind & ~mask


def _build_folder(model: AudioGeolocator, parent: Path, name: str) -> Path:
    """Save ``model`` into a new hidden temporary folder in ``parent``; returns it."""
    from geoforensics.core.models.geolocator import save_model  # loads torch

    parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent))
    try:
        save_model(model, building)
        os.chmod(building, _default_mode(0o777))  # mkdtemp makes it private (0700)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return building


def publish_model_folder(
    model: AudioGeolocator, out: str | os.PathLike[str], force: bool = False
) -> Path:
    """Save ``model`` as the folder ``out`` atomically and return it.

    The model is written into a temporary folder beside ``out`` and renamed onto it, so
    ``out`` never holds a half-written model and a failure leaves nothing behind. An ``out``
    that exists and is not empty is an InputError unless ``force``; then it is replaced (and
    put back if the swap fails).
    """
    target = Path(out).expanduser()
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise InputError(f"{target}: folder is not empty (use --force to replace it)")
    building = _build_folder(model, target.parent, target.name)
    previous: Path | None = None
    try:
        if target.exists():
            previous = building.with_name(building.name + ".old")
            os.replace(target, previous)
        try:
            os.replace(building, target)
        except OSError as error:
            if previous is not None and not target.exists():
                os.replace(previous, target)
                previous = None
            raise InputError(f"{target}: cannot write the model folder ({error})") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    return target


def import_reference_checkpoint(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    species: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Path:
    """Import a released AG-CLIP checkpoint (``.pt`` state dict read with
    ``weights_only=True``) as the model folder ``out``; returns ``out``.

    The folder records the checkpoint's provenance (:func:`.reference.reference_model`:
    iNatSounds 2024 paper release, real recordings, its species count and, from ``species``,
    their names). Nothing is written when the file is missing, unreadable, of another layout or
    holds pickled code, or when ``species`` does not fit.
    """

    target = Path(out).expanduser()
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise InputError(f"{target}: folder is not empty (use --force to replace it)")
    from geoforensics.core.models.reference import reference_model  # loads torch

    return publish_model_folder(reference_model(path, species), target, force=force)


def _imported_sha256(folder: Path) -> str | None:
    """``extra["checkpoint_sha256"]`` of an imported model folder (None when unreadable)."""
    if not (folder / WEIGHTS_FILE).is_file():
        return None
    try:
        document = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        value = document["config"]["extra"]["checkpoint_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def imported_models_dir() -> Path:
    """The cache folder of imported checkpoints (``$GEOFORENSICS_CACHE/models``)."""

    return cache_dir(IMPORT_CACHE)


def import_into_cache(path: str | os.PathLike[str], sha256: str | None = None) -> Path:
    """The cache folder of the released checkpoint ``path``, imported on first use.

    Keyed by the file's SHA-256 (``agclip-<first 32 hex digits>``; the full digest is checked
    against the folder's ``model.json``). A damaged or foreign folder under that name is
    rebuilt; when another process publishes the same import first, its folder is used.
    """

    file = Path(path)
    digest = sha256 or sha256_file(file)
    folder = imported_models_dir() / f"agclip-{digest[:_KEY_DIGITS]}"
    if _imported_sha256(folder) == digest:
        return folder
    from geoforensics.core.models.reference import reference_model  # loads torch

    model = reference_model(file, sha256=digest)
    building = _build_folder(model, folder.parent, folder.name)
    try:
        if _imported_sha256(folder) == digest:  # another process finished it meanwhile
            return folder
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)  # damaged or foreign: rebuild
        try:
            os.replace(building, folder)
        except OSError:  # another process published the same import first
            if _imported_sha256(folder) != digest:
                raise InputError(f"{folder}: cannot write the imported model") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder


def resolve_audio_model(spec: str | os.PathLike[str]) -> Path:
    """The path to load for a ``--model`` value (see the module docstring).

    A folder, or a path that does not exist, comes back unchanged (the loaders say what is
    missing); ``model.safetensors`` / ``model.json`` give their folder (other ``NAME.json`` /
    ``NAME.safetensors`` pairs come back unchanged: the loaders read them as they are); a
    ``.pt`` / ``.pth`` / ``.ckpt`` file is imported once into the cache and that folder is
    returned. A checkpoint that is unreadable, of another layout or holds pickled code is an
    InputError naming it, and nothing is written.
    """
    target = Path(spec).expanduser()
    if target.suffix.lower() in CHECKPOINT_SUFFIXES:
        if not target.is_file():
            raise WeightsNotFoundError(f"{target}: checkpoint not found")
        stat = target.stat()
        key = (str(target.resolve()), stat.st_mtime_ns, stat.st_size)
        known = _resolved.get(key)
        if known is not None and is_model_folder(known):
            return known
        folder = import_into_cache(target)
        _resolved[key] = folder
        return folder
    if target.name in (WEIGHTS_FILE, CONFIG_FILE) and target.is_file():
        return target.parent
    return target


# ---------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class AudioModelEntry:
    """One audio model found on this machine, with what it was trained on."""

    path: Path
    source: str
    training_data: TrainingData | None
    kind: str | None = None
    error: str | None = None

    def describe(self) -> str:
        """What it was trained on, or why its config cannot be read."""
        if self.training_data is None:
            return f"unreadable: {self.error}"
        return self.training_data.describe()

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": self.source,
            "kind": self.kind,
            "training_data": None if self.training_data is None else self.training_data.as_dict(),
            "trained_on": self.describe(),
            "label": None if self.training_data is None else self.training_data.label(),
            "error": self.error,
        }


def _entry(folder: Path, source: str) -> AudioModelEntry:

    try:
        from geoforensics.core.models.model_space import read_model_config  # loads torch

        kind = read_model_config(folder).kind
        return AudioModelEntry(folder, source, model_training_data(folder), kind)
    except GeoforensicsError as error:
        return AudioModelEntry(folder, source, None, error=str(error))


def _model_folders(root: Path) -> list[Path]:
    """``root`` itself when it is a model folder, else its model sub-folders (sorted)."""
    if is_model_folder(root):
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and is_model_folder(p))


def find_audio_models() -> list[AudioModelEntry]:
    """The shipped models, the imported checkpoints in the cache and the model folders under
    ``$GEOFORENSICS_MODELS``, in that order, each with its training data."""

    entries = [_entry(p, "shipped") for p in _model_folders(assets_dir() / "models")]
    entries += [_entry(p, "imported (cache)") for p in _model_folders(imported_models_dir())]
    for root in os.environ.get(MODELS_ENV, "").split(os.pathsep):
        if root.strip():
            folders = _model_folders(Path(root.strip()).expanduser())
            entries += [_entry(p, f"${MODELS_ENV}") for p in folders]
    return entries


__all__ = [
    "CHECKPOINT_SUFFIXES",
    "MODELS_ENV",
    "AudioModelEntry",
    "find_audio_models",
    "import_into_cache",
    "import_reference_checkpoint",
    "imported_models_dir",
    "is_model_folder",
    "publish_model_folder",
    "resolve_audio_model",
]
