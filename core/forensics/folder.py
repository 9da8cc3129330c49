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

The per-clip function (:func:`check_clip_task`) is the same whichever runs it: this process
(``workers=1``), a pool of ``workers`` spawned processes that each load the models once, or
Ray tasks on a local or remote cluster (:mod:`.ray_runner`). As clips finish, ``summary.json``,
``summary.csv`` and ``summary.parquet`` (one row per clip, :mod:`.batch_tables`) are
rewritten in clip order, so every way of running a batch writes the same tables; when the run
ends, the species detections of all clips (``species.csv`` and a Raven selection table) and,
with ``formats`` geojson / kml, the GIS exports (:mod:`.gis_export`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geoforensics.core.errors import GeoforensicsError, InputError
from geoforensics.core.fileio import atomic_write, sha256_file
from geoforensics.core.forensics.batch_tables import (
    SPECIES_COLUMNS,
    SPECIES_CSV,
    SPECIES_RAVEN,
    SUMMARY_COLUMNS,
    SUMMARY_CSV,
    SUMMARY_PARQUET,
    read_report,
    species_table,
    summary_row,
    write_csv,
    write_parquet,
    write_raven,
)
from geoforensics.core.forensics.check_options import CheckOptions
from geoforensics.core.forensics.claims import read_claims
from geoforensics.core.forensics.gis_export import (
    BATCH_KML,
    PLACES_GEOJSON,
    REGIONS_GEOJSON,
    place_features,
    region_features,
    write_geojson,
    write_kml,
)
from geoforensics.core.forensics.ray_runner import run_on_ray
from geoforensics.core.forensics.report import REPORT_JSON, write_report

if TYPE_CHECKING:
    from geoforensics.core.forensics.check_models import CheckModels

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
#: Batch table and GIS formats (``--format``); summary.json is always written.
FORMATS: tuple[str, ...] = ("csv", "parquet", "geojson", "kml")
DEFAULT_FORMATS: tuple[str, ...] = ("csv", "parquet")

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


@dataclass(frozen=True)
class ClipTask:
    """One clip of a folder run, as handed to a worker process or a Ray task: the clip, its
    report folder, the options and the SHA-256 of the AG-CLIP weights (for the fingerprint)."""

    clip: Path
    target: Path
    options: CheckOptions
    model_sha: str


def check_clip_task(
    task: ClipTask,
    models: CheckModels | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> FolderEntry:
    """Check one clip of a folder into its report folder, or skip it when its ``report.json``
    has the same fingerprint; a failing clip gives a ``failed`` entry with its one-line error.
    Models are the process's shared ones (:func:`~.check_models.shared_check_models`: a worker
    loads them once) unless ``models`` is given. Raises :class:`_ModelsFailed` when they
    cannot load."""
    # the check itself loads torch and the models: imported here, in the process that runs
    # clips, so that the parent of ``--workers N`` stays small (it only hands out clips)
    from geoforensics.core.forensics.check_models import shared_check_models
    from geoforensics.core.forensics.pipeline import check_fingerprint, run_check

    started = time.perf_counter()
    clip, target, options = task.clip, task.target, task.options

    def tell(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    entry = FolderEntry(clip=clip, status=FAILED, out_dir=target)
    try:
        entry.sha256 = sha256_file(clip)
        fingerprint = check_fingerprint(entry.sha256, options, task.model_sha)
        existing = read_report(target / REPORT_JSON)
        if existing is not None and existing.get("fingerprint") == fingerprint:
            entry.status = SKIPPED
            entry.verdict = str(existing["verdict"]["label"])
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
    except _ModelsFailed:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # one bad clip must not stop the folder
        entry.status, entry.error, entry.out_dir = FAILED, _one_line(exc), None
        tell(1.0, f"failed: {entry.error}")
    entry.seconds = time.perf_counter() - started
    return entry


def run_clip_task(task: ClipTask) -> FolderEntry | str:
    """:func:`check_clip_task` in a worker (process pool or Ray): a model that cannot load
    comes back as its one-line message (a str), which stops the run in the parent."""
    try:
        return check_clip_task(task)
    except _ModelsFailed as failed:
        return str(failed.error)


def _init_worker(threads: int) -> None:
    """Worker start: its share of the cores for torch, ONNX Runtime and BLAS."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def worker_threads(workers: int) -> int:
    """Threads per worker: the machine's cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@dataclass
class BatchOutput:
    """What a folder run writes besides the reports: ``summary.json`` and the tables
    (``summary.csv`` / ``summary.parquet`` after every clip; the species tables and the GIS
    exports when the run ends). Each clip's report is read once for its table row when it
    finishes, and once more at the end for the species tables and GIS exports."""

    summary: FolderSummary
    formats: tuple[str, ...] = DEFAULT_FORMATS
    order: dict[Path, int] = field(default_factory=dict)
    rows: dict[Path, dict[str, Any]] = field(default_factory=dict)

    def _name(self, entry: FolderEntry) -> str:
        return entry.clip.relative_to(self.summary.folder).as_posix()

    def _document(self, entry: FolderEntry) -> dict[str, Any] | None:
        if entry.status == FAILED or entry.out_dir is None:
            return None
        return read_report(entry.out_dir / REPORT_JSON)

    def add(self, entry: FolderEntry) -> None:
        """Record a finished clip (any order) and rewrite summary.json and the tables."""
        self.summary.entries.append(entry)
        self.summary.entries.sort(key=lambda e: self.order.get(e.clip, 0))
        self.rows[entry.clip] = summary_row(
            self._name(entry),
            "failed" if entry.status == FAILED else "checked",  # skipped: checked before
            self._document(entry),
            sha256=entry.sha256,
            error=entry.error,
            report_dir=None if entry.out_dir is None else entry.out_dir.name,
        )
        self.write(final=False)

    def write(self, final: bool) -> None:
        """Write summary.json and the summary tables (and, when ``final``, the rest)."""
        out = self.summary.out_dir
        _write_summary(self.summary)
        rows = [self.rows[entry.clip] for entry in self.summary.entries]
        if "csv" in self.formats:
            write_csv(out / SUMMARY_CSV, rows, SUMMARY_COLUMNS)
        if "parquet" in self.formats:
            write_parquet(out / SUMMARY_PARQUET, rows, SUMMARY_COLUMNS)
        if not final:
            return
        documents = [(e, self._name(e), self._document(e)) for e in self.summary.entries]
        heard = [(name, d) for _, name, d in documents if d is not None and d.get("species")]
        if heard:
            species, durations = species_table(heard)
            write_csv(out / SPECIES_CSV, species, SPECIES_COLUMNS)
            write_raven(out / SPECIES_RAVEN, species, durations)
        if "geojson" in self.formats or "kml" in self.formats:
            self._write_gis(documents)

    def _write_gis(self, documents: list[tuple[FolderEntry, str, dict[str, Any] | None]]) -> None:
        places: list[dict[str, Any]] = []
        regions: list[dict[str, Any]] = []
        for entry, name, document in documents:
            if document is None or entry.out_dir is None:
                continue
            places += place_features(name, document)
            regions += region_features(name, entry.out_dir, entry.verdict)
        out = self.summary.out_dir
        if "geojson" in self.formats:
            write_geojson(out / PLACES_GEOJSON, places)
            write_geojson(out / REGIONS_GEOJSON, regions)
        if "kml" in self.formats:
            folders = [("places", places), ("90 % regions", regions)]
            write_kml(out / BATCH_KML, folders, f"geoforensics check {self.summary.folder.name}")


def batch_file_names() -> tuple[str, ...]:
    """The files a folder run may write beside summary.json, in the order they are listed."""
    return (
        SUMMARY_CSV,
        SUMMARY_PARQUET,
        SPECIES_CSV,
        SPECIES_RAVEN,
        PLACES_GEOJSON,
        REGIONS_GEOJSON,
        BATCH_KML,
    )


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``csv,parquet,geojson,kml`` (any subset, any order) as a tuple; an unknown name is an
    :class:`InputError`."""
    names = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    unknown = sorted(set(names) - set(FORMATS))
    if unknown:
        raise InputError(f"--format {','.join(unknown)}: unknown; choose from {','.join(FORMATS)}")
    return tuple(n for n in FORMATS if n in names)


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
    workers: int = 1,
    ray_address: str | None = None,
    use_ray: bool = False,
    formats: str | Sequence[str] = DEFAULT_FORMATS,
    claims: str | Path | None = None,
) -> FolderSummary:
    """Check every media file under ``folder`` into ``out_dir`` (see the module docstring).

    ``workers`` > 1 checks clips in that many processes (each loads the models once);
    ``use_ray`` runs the same per-clip function as Ray tasks, on the cluster at
    ``ray_address`` (None: a local Ray instance with ``workers`` CPUs, or the one already
    initialised in this process). The outputs are the same whichever runs them. ``claims``
    is a CSV of per-clip claimed places, dates and text hints (:mod:`.claims`)."""
    options = options or CheckOptions()
    options.validate()
    chosen = parse_formats(formats)
    if workers < 1:
        raise InputError(f"--workers {workers}: give 1 or more")
    root = Path(folder)
    out = Path(out_dir)
    clips = find_media(root, exclude=out)
    if not clips:
        raise InputError(f"{root}: no media files ({', '.join(sorted(MEDIA_SUFFIXES))})")
    model_sha = ""  # no AG-CLIP model: species, frames, text, GPS and claim only
    if options.model_dir is not None:
        from geoforensics.core.models.geolocator import model_files  # loads torch

        weights, _ = model_files(options.resolved_model_dir())
        if not weights.is_file():
            raise InputError(f"{weights}: AG-CLIP model not found")
        model_sha = sha256_file(weights)
    per_clip = {} if claims is None else read_claims(claims, clips, root)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [
        ClipTask(
            c,
            out / report_dir_name(c, root),
            per_clip[c].apply(options) if c in per_clip else options,
            model_sha,
        )
        for c in clips
    ]
    batch = BatchOutput(FolderSummary(root, out), chosen, {c: i for i, c in enumerate(clips)})
    batch.write(final=False)  # a true (empty) summary from the start
    if use_ray:
        run_on_ray(
            run_clip_task, tasks, ray_address, workers, _collector(batch, len(tasks), progress)
        )
    elif workers > 1:
        _run_in_processes(tasks, workers, _collector(batch, len(tasks), progress))
    else:
        share = 1.0 / len(tasks)
        for number, task in enumerate(tasks):
            base = number * share

            def tell(
                fraction: float, message: str, name: str = task.clip.name, base: float = base
            ) -> None:
                if progress is not None:
                    progress(base + share * fraction, f"{name}: {message}")

            try:
                entry = check_clip_task(task, models, tell)
            except _ModelsFailed as failed:
                raise failed.error from None
            batch.add(entry)
    batch.write(final=True)
    return batch.summary


def _collector(
    batch: BatchOutput, total: int, progress: Callable[[float, str], None] | None
) -> Callable[[FolderEntry | str], None]:
    """A callback for finished clips (any order): records them, draws progress over clips and
    stops the run when a worker could not load the models (a str result)."""

    def collect(result: FolderEntry | str) -> None:
        if isinstance(result, str):
            raise GeoforensicsError(result)
        batch.add(result)
        if progress is not None:
            detail = result.verdict if result.error is None else f"failed: {result.error}"
            progress(len(batch.summary.entries) / total, f"{result.clip.name}: {detail}")

    return collect


def _run_in_processes(
    tasks: Sequence[ClipTask], workers: int, collect: Callable[[FolderEntry | str], None]
) -> None:
    """Run the tasks in ``workers`` spawned processes, collecting results as they finish."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(worker_threads(workers),),
    )
    finished = False
    try:
        pending = {pool.submit(run_clip_task, task) for task in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise GeoforensicsError(
                        "--workers: a worker process died (out of memory? from a script, "
                        "call check_folder under `if __name__ == '__main__':`); the clips "
                        "finished so far are in summary.json, a rerun resumes"
                    ) from None
                collect(result)
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # an error or an interrupt: stop the other workers now, wait for none of them
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                if process.is_alive():
                    process.terminate()


__all__ = [
    "DEFAULT_FORMATS",
    "DONE",
    "FAILED",
    "FORMATS",
    "MEDIA_SUFFIXES",
    "SKIPPED",
    "SUMMARY_JSON",
    "BatchOutput",
    "ClipTask",
    "FolderEntry",
    "FolderSummary",
    "batch_file_names",
    "check_clip_task",
    "check_folder",
    "find_media",
    "parse_formats",
    "report_dir_name",
    "run_clip_task",
]
