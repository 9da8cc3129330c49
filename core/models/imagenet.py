"""torchvision's ImageNet weights of MobileNetV3-large, to initialise the paper's audio encoder
(Table 2a: ImageNet- vs iNatSounds-pretrained MobileNetV3).

The file is torchvision's own (``mobilenet_v3_large-8738ca79.pth``, ImageNet1K_V1, or
``-5c1a4163.pth``, V2): a plain state dict read with ``weights_only=True``; its ImageNet head
``classifier.3`` is ignored by
:class:`~geoforensics.core.models.encoders.spectrogram.MobileNetV3Encoder`.
Found at ``$GEOFORENSICS_IMAGENET_MOBILENET`` (a file) or in torch's hub cache
(``$TORCH_HOME/hub/checkpoints``, where ``torchvision.models.mobilenet_v3_large(weights=...)``
puts it); :func:`download_imagenet_mobilenet` fetches it with torch's downloader where the
internet is reachable (``geoforensics weights download imagenet-mobilenet``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from geoforensics.core.errors import GeoforensicsError, WeightsNotFoundError
from geoforensics.core.fileio import atomic_path
from geoforensics.core.load_errors import load_error_summary
from geoforensics.core.models.encoders import create_encoder

#: torchvision's file names, preferred first (V1 is what the paper's era used).
IMAGENET_FILES: tuple[str, ...] = (
    "mobilenet_v3_large-8738ca79.pth",
    "mobilenet_v3_large-5c1a4163.pth",
)
IMAGENET_URL = "https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth"
IMAGENET_ENV = "GEOFORENSICS_IMAGENET_MOBILENET"
IMAGENET_HINT = (
    "run `geoforensics weights download imagenet-mobilenet` (22 MB, needs internet once) or "
    f"export {IMAGENET_ENV}=FILE (torchvision's mobilenet_v3_large ImageNet .pth)"
)


def find_imagenet_mobilenet() -> Path:
    """torchvision's ImageNet MobileNetV3-large weights file (env, then torch's hub cache)."""
    env = os.environ.get(IMAGENET_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"${IMAGENET_ENV} {path}: no such file; {IMAGENET_HINT}")
        return path.resolve()
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for name in IMAGENET_FILES:
        if (folder / name).is_file():
            return (folder / name).resolve()
    raise WeightsNotFoundError(
        f"ImageNet MobileNetV3-large weights not found: ${IMAGENET_ENV} unset and none of "
        f"{', '.join(IMAGENET_FILES)} in {folder}; {IMAGENET_HINT}"
    )


def download_imagenet_mobilenet() -> Path:
    """Download torchvision's ImageNet MobileNetV3-large file into torch's hub cache (checked
    loadable into the encoder); one GeoforensicsError line when the download fails."""

    target = Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILES[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(target) as partial:
            torch.hub.download_url_to_file(IMAGENET_URL, str(partial), progress=False)
    except Exception as exc:  # network errors come in many types
        raise GeoforensicsError(
            f"downloading {IMAGENET_URL} failed ({load_error_summary(exc)}); download it on a "
            f"connected machine and export {IMAGENET_ENV}=FILE"
        ) from None
    create_encoder("mobilenet_v3_large", weights=target)  # refuses a damaged file in one line
    return target
