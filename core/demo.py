"""The demo: ``geoforensics check`` on the shipped SYNTHETIC demo clip, offline.

``geoforensics demo`` calls :func:`run_demo`: it checks ``assets/demo/demo_clip.mp4`` (the
tiny synthetic world's demo soundscape with drawn frames, a GPS tag at the recording's true
place and the title "Dawn chorus, Nairobi") against the claim ``Nairobi`` with the shipped
demo AG-CLIP checkpoint (``assets/models/demo_agclip``, trained by ``geoforensics train`` on
that world, passed explicitly: ``check`` uses no AG-CLIP model unless given one; the clip's
tags declare it SYNTHETIC, so that model's verdict counts here), and writes ``report.json``
and ``report.html`` into the output folder. Without CLIP weights the frames and text
modalities are reported as unavailable, with the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geoforensics.core.forensics import CheckOptions, default_model_dir, run_check, write_report
from geoforensics.core.forensics.discrepancy import great_circle_km
from geoforensics.core.paths import assets_dir

if TYPE_CHECKING:
    from geoforensics.core.forensics import CheckReport

DEMO_CLIP = "demo/demo_clip.mp4"
DEMO_TRUTH = "demo/demo_soundscape.json"
#: The claim the demo checks (the clip's title makes the same false claim).
DEMO_CLAIM = "Nairobi"


@dataclass
class DemoResult:
    """The demo's check report, the files written and the clip's ground truth."""

    report: CheckReport
    written: dict[str, Path]
    truth: dict[str, Any]
    out_dir: Path

    @property
    def audio_error_km(self) -> float | None:
        """Great-circle distance of the audio's top place from the true place (km)."""

        audio = self.report.modalities["audio"]
        if not audio.available or audio.point is None:
            return None
        return great_circle_km(audio.point, (self.truth["latitude"], self.truth["longitude"]))


def demo_clip_path() -> Path:
    """The shipped demo video."""
    return assets_dir() / DEMO_CLIP


def demo_truth() -> dict[str, Any]:
    """Ground truth of the demo clip's audio (true place, local time, species)."""
    data: dict[str, Any] = json.loads((assets_dir() / DEMO_TRUTH).read_text(encoding="utf-8"))
    return data


def run_demo(
    out_dir: str | Path,
    progress: Callable[[float, str], None] | None = None,
    clip_weights: str | None = None,
    species: bool = True,
) -> DemoResult:
    """Check the demo clip against the claim "Nairobi" and write the report into ``out_dir``."""

    truth = demo_truth()
    options = CheckOptions(
        model_dir=default_model_dir(),  # the demo's own SYNTHETIC model, passed explicitly
        claimed=DEMO_CLAIM,
        clip_weights=clip_weights,
        species=species,
    )
    report = run_check(demo_clip_path(), options, progress=progress)
    result = DemoResult(report, {}, truth, Path(out_dir))
    error = result.audio_error_km
    note = (
        "SYNTHETIC demo: the audio is a recording of geoforensics' tiny synthetic world, made "
        f"at {truth['latitude']:.4f}, {truth['longitude']:.4f} on {truth['local_time'][:10]} "
        "(assets/demo/demo_soundscape.json); the clip's GPS tag is that place, its title "
        "claims Nairobi."
    )
    if error is not None:
        note += f" The audio's top place is {error:,.0f} km from the true place."
    report.notes.insert(0, note)
    result.written = write_report(report, out_dir)
    return result


__all__ = [
    "DEMO_CLAIM",
    "DEMO_CLIP",
    "DEMO_TRUTH",
    "DemoResult",
    "demo_clip_path",
    "demo_truth",
    "run_demo",
]
