#!/usr/bin/env python3
"""Write a tiny fake iNatSounds 2024 dataset (train/val/test JSON + short WAVs), seeded.

Run it to regenerate the committed files next to this script::

    .venv/bin/python tests/data/inatsounds/data.py

Tests import :func:`write_dataset` to write the same data into a temporary folder (to corrupt
it, or with ``duration_scale`` > 1 for recordings long enough to hold several windows).

The train split covers the cases a reader must handle: a null location, a NaN latitude, an
out-of-range latitude, an unparseable and a null date, dates with ``T`` or a space, with and
without seconds, fractions and offsets, extra per-audio keys, and category ids that are not
contiguous and not sorted in the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SEED = 20240
SAMPLE_RATE = 22_050

#: (id, scientific name, common name, supercategory, order, family, call frequency in Hz).
#: Listed out of id order on purpose: readers must index categories by sorted id.
SPECIES: list[tuple[int, str, str, str, str, str, float]] = [
    (12, "Gryllus campestris", "Field Cricket", "Insecta", "Orthoptera", "Gryllidae", 4200.0),
    (3, "Turdus merula", "Eurasian Blackbird", "Aves", "Passeriformes", "Turdidae", 2300.0),
    (25, "Rana temporaria", "Common Frog", "Amphibia", "Anura", "Ranidae", 600.0),
    (7, "Erithacus rubecula", "European Robin", "Aves", "Passeriformes", "Muscicapidae", 3100.0),
]
_CLASS = {"Aves": "Aves", "Insecta": "Insecta", "Amphibia": "Amphibia"}
_PHYLUM = {"Aves": "Chordata", "Insecta": "Arthropoda", "Amphibia": "Chordata"}

NAN = math.nan

#: Per split: (audio id, category id, duration s, date, latitude, longitude, uncertainty m).
RECORDINGS: dict[str, list[tuple[int, int, float, Any, Any, Any, Any]]] = {
    "train": [
        (101, 3, 0.35, "2021-05-03T06:41:00", 51.5074, -0.1278, 10),
        (102, 7, 0.30, "2021-06-10 05:12:30+01:00", 48.8566, 2.3522, 25),
        (103, 12, 0.25, "2020-07-01", -33.8688, 151.2093, None),
        (104, 25, 0.20, None, None, None, None),
        (105, 3, 0.20, "not a date", NAN, 10.0, 5),
        (106, 7, 0.20, "2019-04-22T19:03:11Z", 95.0, 20.0, 5),
        (107, 25, 0.30, "2022-03-15T21:30:00.250-05:00", 40.7128, -74.0060, 150),
    ],
    "val": [
        (201, 3, 0.30, "2023-04-01 07:00", 52.52, 13.405, 30),
        (202, 12, 0.25, None, -37.8136, 144.9631, 8),
    ],
    "test": [
        (301, 7, 0.25, "24/12/2022 08:15", 55.6761, 12.5683, 12),
        (302, 25, 0.20, "2022-02-02", 60.0, None, None),
    ],
}


def _category(entry: tuple[int, str, str, str, str, str, float]) -> dict[str, Any]:
    category_id, name, common, supercategory, order, family, _ = entry
    genus, epithet = name.split(" ")
    return {
        "id": category_id,
        "name": name,
        "common_name": common,
        "supercategory": supercategory,
        "kingdom": "Animalia",
        "phylum": _PHYLUM[supercategory],
        "class": _CLASS[supercategory],
        "order": order,
        "family": family,
        "genus": genus,
        "specific_epithet": epithet,
        "audio_dir_name": _dir_name(entry),
        "evaluation": 1,
    }


def _dir_name(entry: tuple[int, str, str, str, str, str, float]) -> str:
    category_id, name, _, supercategory, order, family, _ = entry
    return f"{category_id:05d}_{supercategory}_{order}_{family}_{name.replace(' ', '_')}"


def _call(rng: np.random.Generator, frequency: float, seconds: float) -> np.ndarray:
    """A chirping tone in noise, as int16 samples."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    sweep = frequency * (1.0 + 0.15 * np.sin(2 * np.pi * 7.0 * t))
    phase = 2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 5.0 * t) ** 2
    signal = 0.4 * envelope * np.sin(phase) + 0.05 * rng.standard_normal(t.size)
    return np.clip(signal * 32767, -32768, 32767).astype(np.int16)


def write_dataset(folder: str | Path, duration_scale: float = 1.0) -> Path:
    """Write the fake dataset into ``folder`` (created); returns the folder.

    ``duration_scale`` multiplies every recording's length (WAV and JSON ``duration`` alike).
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    by_id = {entry[0]: entry for entry in SPECIES}
    categories = [_category(entry) for entry in SPECIES]
    licenses = [{"id": 1, "name": "CC BY-NC 4.0", "url": "https://creativecommons.org/"}]
    annotation_id = 1
    for split, rows in RECORDINGS.items():
        audio, annotations = [], []
        for audio_id, category_id, seconds, date, latitude, longitude, uncertainty in rows:
            duration = round(seconds * duration_scale, 4)
            species = by_id[category_id]
            file_name = f"{split}/{_dir_name(species)}/{audio_id:08x}-fake.wav"
            path = root / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _call(rng, species[6], duration), SAMPLE_RATE, subtype="PCM_16")
            audio.append(
                {
                    "id": audio_id,
                    "duration": duration,
                    "file_name": file_name,
                    "license": 1,
                    "rights_holder": f"recordist {audio_id % 7}",
                    "date": date,
                    "latitude": latitude,
                    "longitude": longitude,
                    "location_uncertainty": uncertainty,
                }
            )
            annotations.append(
                {"id": annotation_id, "audio_id": audio_id, "category_id": category_id}
            )
            annotation_id += 1
        document = {
            "info": {
                "year": 2024,
                "version": "fake-1",
                "description": "Tiny fake iNatSounds-format data for geoforensics tests",
                "contributor": "geoforensics tests",
                "url": "",
                "date_created": "2024-01-01",
            },
            "audio": audio,
            "categories": categories,
            "annotations": annotations,
            "licenses": licenses,
        }
        # allow_nan: the real files may carry NaN coordinates, which Python's json reads.
        (root / f"{split}.json").write_text(json.dumps(document, indent=1, allow_nan=True) + "\n")
    return root


if __name__ == "__main__":
    write_dataset(Path(__file__).resolve().parent)
