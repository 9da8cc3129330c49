"""The options of one check (the flags of ``geoforensics check``) and the shipped demo
model's folder, in a module that loads no model library: a ``check FOLDER --workers N``
parent process builds options and hands clips to workers without importing torch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import InputError
from geoforensics.core.forensics.places import TOP_RADIUS_KM
from geoforensics.core.paths import assets_dir

Progress = Callable[[float, str], None]

#: The shipped demo checkpoint, relative to the assets folder.
DEMO_MODEL = "models/demo_agclip"
#: Why the AG-CLIP modality is unavailable without ``--model``.
NO_MODEL_REASON = (
    "no AG-CLIP model given (--model MODEL_DIR, a model trained on real recordings); the "
    "species BirdNET hears locate the audio"
)


def default_model_dir() -> Path:
    """The shipped demo AG-CLIP checkpoint (``assets/models/demo_agclip``)."""

    return assets_dir() / DEMO_MODEL


@dataclass
class CheckOptions:
    """Settings of one check (the CLI flags of ``geoforensics check``).

    ``model_dir`` None runs no AG-CLIP model (the audio is located by the species BirdNET
    hears; ``geoforensics demo`` passes the shipped demo checkpoint, :func:`default_model_dir`,
    explicitly); ``claimed`` is a place name or
    ``"LAT,LON"``; ``date`` None takes the container's creation date; ``text`` None takes the
    container's title / description / comment tag; ``clip_weights`` a CLIP ViT-L/14 folder or
    file (else the Hugging Face cache / ``$GEOFORENSICS_CLIP``); ``species`` runs BirdNET when
    the extra is installed; ``calibration`` a species-range calibration file (``geoforensics
    calibrate --species``) for the audio species modality's regions.
    """

    model_dir: Path | None = None
    gallery: str = "land-1deg"
    claimed: str | None = None
    date: dt.date | None = None
    text: str | None = None
    top_k: int = 5
    segment_s: float = 10.0
    frame_every_s: float = 5.0
    max_frames: int = 12
    clip_weights: str | None = None
    species: bool = True
    calibration: str | None = None

    def validate(self) -> None:
        """Raise a one-line :class:`InputError` for an unusable value."""
        if self.top_k < 1:
            raise InputError(f"--top-k must be >= 1, got {self.top_k}")
        if not (np.isfinite(self.segment_s) and self.segment_s > 0):
            raise InputError(f"--segment-s must be > 0 seconds, got {self.segment_s}")
        if not (np.isfinite(self.frame_every_s) and self.frame_every_s > 0):
            raise InputError(f"--frame-every-s must be > 0 seconds, got {self.frame_every_s}")
        if self.max_frames < 0:
            raise InputError(f"--max-frames must be >= 0, got {self.max_frames}")
        if self.calibration is not None and not Path(self.calibration).is_file():
            raise InputError(
                f"{self.calibration}: no such calibration file (make one with "
                "geoforensics calibrate --species)"
            )

    def resolved_model_dir(self) -> Path:
        """``model_dir`` or the shipped demo checkpoint; a released AG-CLIP checkpoint
        (``.pt``) is imported once into the cache and its folder returned
        (:func:`~geoforensics.core.models.resolve.resolve_audio_model`)."""
        if self.model_dir is None:
            return default_model_dir()
        # loads torch (a released checkpoint is converted): only where a model is used
        from geoforensics.core.models.resolve import resolve_audio_model

        return resolve_audio_model(self.model_dir)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (the model folder resolved)."""
        return {
            "model_dir": None if self.model_dir is None else str(self.resolved_model_dir()),
            "gallery": self.gallery,
            "claimed": self.claimed,
            "date": None if self.date is None else self.date.isoformat(),
            "text": self.text,
            "top_k": int(self.top_k),
            "segment_s": float(self.segment_s),
            "frame_every_s": float(self.frame_every_s),
            "max_frames": int(self.max_frames),
            "clip_weights": self.clip_weights,
            "species": bool(self.species),
            "calibration": self.calibration,
            "top_radius_km": TOP_RADIUS_KM,
        }


__all__ = ["DEMO_MODEL", "NO_MODEL_REASON", "CheckOptions", "Progress", "default_model_dir"]
