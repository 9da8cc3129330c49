"""Geo-forensics: does a clip's audio belong where its frames, metadata and claim say it does?

``geoforensics check`` and the app's Check page call these functions:

- :func:`load_check_models` once per process, then :func:`run_check` per clip
  (:mod:`.pipeline`): audio species (BirdNET x range model), audio AG-CLIP (only with a
  model) and their fusion, frames and text hint (CLIP + GeoCLIP), the container's GPS tag and
  the claimed place, each as top-k places; a timeline of ~10 s audio segments and keyframes;
  discrepancies and a verdict (:mod:`.discrepancy`, the species rule of
  :mod:`.species_rule`); BirdNET species evidence;
- :func:`write_report` (:mod:`.report`): ``report.json``, a self-contained ``report.html`` and
  PNG maps, atomically;
- :func:`check_folder` (:mod:`.folder`): every media file of a folder, skipping clips already
  checked with the same options and recording failures.

Names are imported lazily so that ``import geoforensics.core.forensics`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geoforensics.core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from geoforensics.core.forensics.check_models import (
        CheckModels,
        load_check_models,
        shared_check_models,
    )
    from geoforensics.core.forensics.check_options import CheckOptions, default_model_dir
    from geoforensics.core.forensics.discrepancy import (
        MODALITY_ORDER,
        RADII_KM,
        Discrepancy,
        Verdict,
        baseline_within,
        compare_modalities,
        decide_verdict,
        great_circle_km,
        mass_within,
        thresholds,
    )
    from geoforensics.core.forensics.folder import (
        FolderEntry,
        FolderSummary,
        check_folder,
        find_media,
    )
    from geoforensics.core.forensics.pipeline import check_fingerprint, run_check
    from geoforensics.core.forensics.report import report_html, write_report
    from geoforensics.core.forensics.results import CheckReport, ModalityResult, Segment

_EXPORTS = {
    "MODALITY_ORDER": "discrepancy",
    "RADII_KM": "discrepancy",
    "Discrepancy": "discrepancy",
    "Verdict": "discrepancy",
    "baseline_within": "discrepancy",
    "compare_modalities": "discrepancy",
    "decide_verdict": "discrepancy",
    "great_circle_km": "discrepancy",
    "mass_within": "discrepancy",
    "thresholds": "discrepancy",
    "FolderEntry": "folder",
    "FolderSummary": "folder",
    "check_folder": "folder",
    "find_media": "folder",
    "CheckModels": "check_models",
    "CheckOptions": "check_options",
    "check_fingerprint": "pipeline",
    "default_model_dir": "check_options",
    "load_check_models": "check_models",
    "run_check": "pipeline",
    "shared_check_models": "check_models",
    "report_html": "report",
    "write_report": "report",
    "CheckReport": "results",
    "ModalityResult": "results",
    "Segment": "results",
}

__all__ = [
    "MODALITY_ORDER",
    "RADII_KM",
    "CheckModels",
    "CheckOptions",
    "CheckReport",
    "Discrepancy",
    "FolderEntry",
    "FolderSummary",
    "ModalityResult",
    "Segment",
    "Verdict",
    "baseline_within",
    "check_fingerprint",
    "check_folder",
    "compare_modalities",
    "decide_verdict",
    "default_model_dir",
    "find_media",
    "great_circle_km",
    "load_check_models",
    "mass_within",
    "report_html",
    "run_check",
    "shared_check_models",
    "thresholds",
    "write_report",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
