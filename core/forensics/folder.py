"""``geoforensics check FOLDER``: every media file of a folder, resumable, failures recorded.

Each media file (by suffix, :data:`MEDIA_SUFFIXES`, searched recursively; hidden files and the
output folder itself are left out) gets its own report folder ``OUT/<relative path with "/"
as "__">/``. A clip whose ``report.json`` already holds the same fingerprint (SHA-256 of the
clip, the options and the models, see :func:`~.pipeline.check_fingerprint`) is skipped; a clip
that fails (corrupt, no decodable stream, ...) is recorded with its one-line error and the
rest go on. ``OUT/summary.json`` lists every clip's status and is rewritten (atomically)
after each clip, so an interrupted run leaves a truthful summary.

``geoforensics check FOLDER`` exits 0 when the folder run finished, also when some clips
failed (each failure is a result: ``status: failed`` with its error in ``summary.json``, and
the printed count); it exits 1 only when the run itself cannot go on (no media files, the
model cannot load). A rerun skips clips already checked and tries the failed ones again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GeoforensicsError, InputError
from ..fileio import atomic_write, sha256_file
from .pipeline import CheckModels, CheckOptions, check_fingerprint, run_check, shared_check_models
from .report import REPORT_JSON, write_report

#: File suffixes ``check FOLDER`` treats as media (video and audio containers).
MEDIA_SUFFIXES: frozenset[str] = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".m2ts",
        ".flv",
        ".wmv",
        ".3gp",
        ".ogv",
        ".wav",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".m4a",
        ".aac",
        ".aif",
        ".aiff",
        ".wma",
    }
)
SUMMARY_JSON = "summary.json"

DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"


@dataclass
class FolderEntry:
    """One clip of a folder run: ``status`` done / skipped / failed, its report folder, the
    verdict (done or skipped) or the one-line ``error`` (failed)."""

    clip: Path
    status: str
    out_dir: Path | None = None
    verdict: str | None = None
    error: str | None = None
    sha256: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "clip": str(self.clip),
            "status": self.status,
            "out_dir": None if self.out_dir is None else str(self.out_dir),
            "verdict": self.verdict,
            "error": self.error,
            "sha256": self.sha256,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class FolderSummary:
    """The result of :func:`check_folder` (also written as ``OUT/summary.json``)."""

    folder: Path
    out_dir: Path
    entries: list[FolderEntry] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many clips ended with ``status``."""
        return sum(e.status == status for e in self.entries)

    @property
    def failures(self) -> list[FolderEntry]:
        """The clips that failed."""
        return [e for e in self.entries if e.status == FAILED]

    def as_dict(self) -> dict[str, Any]:
        """What ``summary.json`` holds."""
        return {
            "folder": str(self.folder),
            "out_dir": str(self.out_dir),
            "clips": len(self.entries),
            "done": self.count(DONE),
            "skipped": self.count(SKIPPED),
            "failed": self.count(FAILED),
            "entries": [e.as_dict() for e in self.entries],
        }


def find_media(folder: str | Path, exclude: Path | None = None) -> list[Path]:
    """Media files under ``folder`` (recursive, sorted; hidden files and ``exclude`` left out)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    skip = None if exclude is None else exclude.resolve()
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if skip is not None and (path.resolve() == skip or skip in path.resolve().parents):
            continue
        if path.is_file() and path.suffix.lower() in MEDIA_SUFFIXES:
            found.append(path)
    return found


def report_dir_name(clip: Path, folder: Path) -> str:
    """The report folder name of ``clip``: its path under ``folder`` with ``/`` as ``__``."""
    return "__".join(clip.relative_to(folder).parts)


def _existing_fingerprint(report: Path) -> str | None:
    try:
        return str(json.loads(report.read_text(encoding="utf-8")).get("fingerprint") or "")
    except (OSError, ValueError, AttributeError):
        return None


class _ModelsFailed(Exception):
    """Models could not be loaded: the whole run stops (not one clip's failure)."""

    def __init__(self, error: GeoforensicsError) -> None:
        super().__init__(str(error))
        self.error = error


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, GeoforensicsError):
        text = f"{type(error).__name__}: {text}"
    return text


def _write_summary(summary: FolderSummary) -> None:
    with atomic_write(summary.out_dir / SUMMARY_JSON) as fh:
        json.dump(summary.as_dict(), fh, indent=2)
        fh.write("\n")


def check_folder(
    folder: str | Path,
    options: CheckOptions | None,
    out_dir: str | Path,
    progress: Callable[[float, str], None] | None = None,
    models: CheckModels | None = None,
) -> FolderSummary:
    """Check every media file under ``folder`` into ``out_dir`` (see the module docstring)."""
    from ..models.geolocator import model_files

    options = options or CheckOptions()
    options.validate()
    root = Path(folder)
    out = Path(out_dir)
    clips = find_media(root, exclude=out)
    if not clips:
        raise InputError(f"{root}: no media files ({', '.join(sorted(MEDIA_SUFFIXES))})")
    model_sha = ""  # no AG-CLIP model: species, frames, text, GPS and claim only
    if options.model_dir is not None:
        weights, _ = model_files(options.resolved_model_dir())
        if not weights.is_file():
            raise InputError(f"{weights}: AG-CLIP model not found")
        model_sha = sha256_file(weights)
    out.mkdir(parents=True, exist_ok=True)
    summary = FolderSummary(root, out)
    for number, clip in enumerate(clips):
        started = time.perf_counter()
        target = out / report_dir_name(clip, root)
        base, share = number / len(clips), 1.0 / len(clips)

        def tell(
            fraction: float,
            message: str,
            clip: Path = clip,
            base: float = base,
            share: float = share,
        ) -> None:
            if progress is not None:
                progress(base + share * fraction, f"{clip.name}: {message}")

        entry = FolderEntry(clip=clip, status=FAILED, out_dir=target)
        try:
            entry.sha256 = sha256_file(clip)
            fingerprint = check_fingerprint(entry.sha256, options, model_sha)
            existing = target / REPORT_JSON
            if existing.is_file() and _existing_fingerprint(existing) == fingerprint:
                entry.status = SKIPPED
                document = json.loads(existing.read_text(encoding="utf-8"))
                entry.verdict = str(document["verdict"]["label"])
                tell(1.0, "already checked, skipped")
            else:
                if models is None or not models.matches(options):
                    # Not a per-clip failure: a model that cannot load stops the run.
                    try:
                        models = shared_check_models(options)
                    except GeoforensicsError as exc:
                        raise _ModelsFailed(exc) from exc
                report = run_check(clip, options, models, tell)
                write_report(report, target)
                entry.status, entry.verdict = DONE, report.verdict.label
        except _ModelsFailed as failed:
            raise failed.error from None
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one bad clip must not stop the folder
            entry.status, entry.error, entry.out_dir = FAILED, _one_line(exc), None
            tell(1.0, f"failed: {entry.error}")
        entry.seconds = time.perf_counter() - started
        summary.entries.append(entry)
        _write_summary(summary)
    return summary


__all__ = [
    "DONE",
    "FAILED",
    "MEDIA_SUFFIXES",
    "SKIPPED",
    "SUMMARY_JSON",
    "FolderEntry",
    "FolderSummary",
    "check_folder",
    "find_media",
    "report_dir_name",
]
