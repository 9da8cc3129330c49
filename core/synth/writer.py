"""Write a planned world to disk in the real dataset formats.

Layout (see the project's data contract)::

    ROOT/train.json val.json test.json          iNatSounds 2024 format, WAVs under ROOT/<split>/
    ROOT/xcdc/xcdc_recordings.csv               XCDC format, WAVs under ROOT/xcdc/audio/
    ROOT/world/species.json range_model.npz recordings.csv world.json   ground truth

Every file is written atomically; audio first, then the annotation files, and ``world.json``
last, so a world with a ``world.json`` is complete. JSON and CSV are written with a fixed key
order and no timestamps: the same seed gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.data.xcdc import COLUMNS as XCDC_COLUMNS
from geoforensics.core.fileio import atomic_path
from geoforensics.core.synth.recordings import SPLITS, RecordingPlan
from geoforensics.core.synth.render import SAMPLE_RATE, render_recording
from geoforensics.core.synth.species import CallParams, Species, species_to_dict

RECORDINGS_COLUMNS: tuple[str, ...] = (
    "split",
    "audio_id",
    "file",
    "recordist_id",
    "latitude",
    "longitude",
    "date",
    "week",
    "hour",
    "focal_category_id",
    "background_category_ids",
    "duration",
)


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically with ordinary permissions."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def audio_path(root: Path, plan: RecordingPlan) -> Path:
    """Where a plan's WAV goes under the dataset root."""
    if plan.kind == "xcdc":
        return root / "xcdc" / plan.file_name
    return root / plan.file_name


def write_wav(path: Path, audio: np.ndarray) -> None:
    """22,050 Hz mono PCM 16-bit WAV, written atomically."""
    import soundfile as sf

    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
    with atomic_path(path) as tmp:
        sf.write(tmp, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def render_batch(plans: list[RecordingPlan], calls: list[CallParams], seed: int, root: str) -> int:
    """Render and write a batch of recordings (runs in worker processes); returns samples."""
    total = 0
    for plan in plans:
        write_wav(audio_path(Path(root), plan), render_recording(plan, calls, seed))
        total += plan.n_samples
    return total


def _batches(plans: list[RecordingPlan], max_samples: int) -> list[list[RecordingPlan]]:
    """Group plans into batches of about ``max_samples`` samples, longest first."""
    batches: list[list[RecordingPlan]] = []
    current: list[RecordingPlan] = []
    size = 0
    for plan in sorted(plans, key=lambda p: (-p.n_samples, p.kind, p.index)):
        current.append(plan)
        size += plan.n_samples
        if size >= max_samples:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


def write_audio(
    plans: list[RecordingPlan],
    calls: list[CallParams],
    seed: int,
    root: Path,
    workers: int = 1,
    progress: bool = True,
) -> int:
    """Render all recordings (in ``workers`` processes); returns the total number of samples."""
    from tqdm import tqdm

    batches = _batches(plans, max_samples=SAMPLE_RATE * 240)
    total_seconds = sum(p.n_samples for p in plans) / SAMPLE_RATE
    bar = tqdm(
        total=round(total_seconds),
        unit="s audio",
        desc="synthesising",
        disable=not progress,
        leave=False,
    )
    done = 0
    try:
        if workers <= 1:
            for batch in batches:
                samples = render_batch(batch, calls, seed, str(root))
                done += samples
                bar.update(round(samples / SAMPLE_RATE))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = [
                    pool.submit(render_batch, batch, calls, seed, str(root)) for batch in batches
                ]
                for future in as_completed(futures):
                    samples = future.result()
                    done += samples
                    bar.update(round(samples / SAMPLE_RATE))
    finally:
        bar.close()
    return done


def format_date(plan: RecordingPlan) -> str | None:
    """The iNatSounds ``date`` string of a recording (two styles, or None when missing)."""
    if plan.date_style == 2:
        return None
    if plan.date_style == 0:
        return plan.local_time.strftime("%Y-%m-%dT%H:%M:%S")
    sign = "+" if plan.utc_offset_h >= 0 else "-"
    offset = f"{sign}{abs(plan.utc_offset_h):02d}:00"
    return plan.local_time.strftime("%Y-%m-%d %H:%M:%S") + offset


def _dump_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False) + "\n")


def write_inat_splits(
    root: Path, plans: list[RecordingPlan], species: list[Species], description: str
) -> dict[str, int]:
    """Write ``train.json``, ``val.json`` and ``test.json``; returns counts per split."""
    categories = [s.taxonomy() for s in species]
    counts: dict[str, int] = {}
    for split in SPLITS:
        chosen = [p for p in plans if p.split == split]
        audio = []
        annotations = []
        for k, plan in enumerate(chosen):
            audio.append(
                {
                    "id": plan.audio_id,
                    "file_name": plan.file_name,
                    "duration": round(plan.n_samples / SAMPLE_RATE, 3),
                    "date": format_date(plan),
                    "latitude": None if plan.location_missing else plan.latitude,
                    "longitude": None if plan.location_missing else plan.longitude,
                    "location_uncertainty": plan.location_uncertainty,
                    "license": "CC0 (synthetic)",
                    "rights_holder": f"Synthetic Recordist {plan.recordist:04d}",
                }
            )
            annotations.append(
                {"id": k, "audio_id": plan.audio_id, "category_id": species[plan.focal].category_id}
            )
        data = {
            "info": {
                "description": f"{description}, split '{split}'",
                "version": "synthetic",
                "contributor": "geoforensics synthetic world generator",
                "url": "",
            },
            "audio": audio,
            "categories": categories,
            "annotations": annotations,
            "licenses": [{"id": 0, "name": "CC0 (synthetic data)", "url": ""}],
        }
        _dump_json(root / f"{split}.json", data)
        counts[split] = len(chosen)
    return counts


def _length_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def write_xcdc(root: Path, plans: list[RecordingPlan], species: list[Species]) -> int:
    """Write ``xcdc/xcdc_recordings.csv`` for the chorus recordings; returns their count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(XCDC_COLUMNS)
    for plan in plans:
        everyone = [plan.focal, *plan.background]
        main = list(plan.extra.get("main", (plan.focal,)))
        date = plan.local_time.strftime("%Y-%m-%d")
        if plan.extra.get("partial_date"):
            date = plan.local_time.strftime("%Y-%m") + "-00"
        time = "?" if plan.extra.get("unknown_time") else plan.local_time.strftime("%H:%M")
        writer.writerow(
            [
                plan.audio_id,
                f"synthetic://geoforensics/xcdc/{plan.audio_id}",
                f"{plan.latitude:.5f}",
                f"{plan.longitude:.5f}",
                _length_text(plan.n_samples // SAMPLE_RATE),
                date,
                time,
                f"Synthetic Recordist {plan.recordist:04d}",
                repr([species[i].scientific_name for i in main]),
                repr([species[i].common_name for i in main]),
                repr([species[i].scientific_name for i in everyone]),
                repr([species[i].common_name for i in everyone]),
            ]
        )
    write_text(root / "xcdc" / "xcdc_recordings.csv", buffer.getvalue())
    return len(plans)


def write_ground_truth(
    world_dir: Path,
    plans: Iterable[RecordingPlan],
    species: list[Species],
    range_dicts: list[dict[str, Any]],
) -> None:
    """Write ``world/recordings.csv`` and ``world/species.json`` (the ground truth)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RECORDINGS_COLUMNS)
    for plan in plans:
        file = plan.file_name if plan.kind == "inat" else f"xcdc/{plan.file_name}"
        writer.writerow(
            [
                plan.split,
                plan.audio_id,
                file,
                plan.recordist,
                f"{plan.latitude:.5f}",
                f"{plan.longitude:.5f}",
                plan.local_time.strftime("%Y-%m-%dT%H:%M:%S"),
                plan.week,
                f"{plan.hour:.3f}",
                species[plan.focal].category_id,
                ";".join(str(species[b].category_id) for b in plan.background),
                f"{plan.n_samples / SAMPLE_RATE:.3f}",
            ]
        )
    write_text(world_dir / "recordings.csv", buffer.getvalue())
    entries = []
    for sp, rng_dict in zip(species, range_dicts, strict=True):
        entry = species_to_dict(sp)
        entry["range"] = {k: v for k, v in rng_dict.items() if k != "season_by_week"}
        entry["seasonality"] = {
            "type": rng_dict["season_type"],
            "presence_factor_by_week": rng_dict["season_by_week"],
        }
        entries.append(entry)
    _dump_json(
        world_dir / "species.json",
        {
            "synthetic": True,
            "description": "SYNTHETIC species of a geoforensics world: names, calls and "
            "ranges are invented",
            "species": entries,
        },
    )


def write_world_json(world_dir: Path, data: dict[str, Any]) -> None:
    """Write ``world/world.json`` (the last file: its presence marks a complete world)."""
    _dump_json(world_dir / "world.json", data)
