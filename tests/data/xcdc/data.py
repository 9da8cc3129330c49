#!/usr/bin/env python3
"""Write a tiny fake XCDC dataset (xcdc_recordings.csv + a few short WAVs), seeded.

Run it to regenerate the committed files next to this script::

    .venv/bin/python tests/data/xcdc/data.py

Tests import :func:`write_dataset` to write the same data into a temporary folder.

Rows cover: ``M:SS`` and ``H:MM:SS`` lengths, full, partial (day 00) and unknown dates,
unknown times, names with commas and apostrophes (quoted CSV fields, double-quoted Python
literals), rows without audio, and one WAV in ROOT itself instead of ROOT/audio. The WAVs are
short stand-ins: the ``length`` column describes the real-length recordings they mimic.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

SEED = 5760
SAMPLE_RATE = 22_050
COLUMNS = (
    "audio_id",
    "url",
    "latitude",
    "longitude",
    "length",
    "date",
    "time",
    "recordist",
    "main_scientific",
    "main_common",
    "all_scientific",
    "all_common",
)

#: Rows of the CSV; ``audio`` says where the WAV goes: "audio" (ROOT/audio), "root" or None.
ROWS: list[dict[str, object]] = [
    {
        "audio_id": "100001",
        "latitude": "51.7520",
        "longitude": "-1.2577",
        "length": "3:05",
        "date": "2019-05-12",
        "time": "04:45",
        "recordist": "Ada Fieldwork",
        "main": [("Turdus merula", "Eurasian Blackbird")],
        "all": [
            ("Turdus merula", "Eurasian Blackbird"),
            ("Erithacus rubecula", "European Robin"),
            ("Fringilla coelebs", "Common Chaffinch"),
        ],
        "audio": "audio",
    },
    {
        "audio_id": "100002",
        "latitude": "48.1374",
        "longitude": "11.5755",
        "length": "1:02:03",
        "date": "2019-05-00",
        "time": "?",
        "recordist": "Ben Listener",
        "main": [("Erithacus rubecula", "European Robin"), ("Cettia cetti", "Cetti's Warbler")],
        "all": [
            ("Erithacus rubecula", "European Robin"),
            ("Cettia cetti", "Cetti's Warbler"),
            ("Turdus merula", "Eurasian Blackbird"),
            ("Sylvia atricapilla", "Eurasian Blackcap"),
        ],
        "audio": "audio",
    },
    {
        "audio_id": "100003",
        "latitude": "-34.4278",
        "longitude": "150.8931",
        "length": "12:00",
        "date": "?",
        "time": "05:10",
        "recordist": "Cai Dawn",
        "main": [("Manorina melanocephala", "Noisy Miner")],
        "all": [
            ("Manorina melanocephala", "Noisy Miner"),
            ("Cracticus tibicen", "Australian Magpie"),
        ],
        "audio": None,
    },
    {
        "audio_id": "100004",
        "latitude": "40.7812",
        "longitude": "-73.9665",
        "length": "2:18:00",
        "date": "2021-10-03",
        "time": "5:30",
        "recordist": "Ada Fieldwork",
        "main": [("Turdus migratorius", "American Robin")],
        "all": [
            ("Turdus migratorius", "American Robin"),
            ("Cardinalis cardinalis", "Northern Cardinal"),
            ("Zenaida macroura", "Mourning Dove"),
        ],
        "audio": "root",
    },
    {
        "audio_id": "100005",
        "latitude": "-1.2921",
        "longitude": "36.8219",
        "length": "4:30",
        "date": "2020-01-15",
        "time": "06:00",
        "recordist": "Dee, Early Riser",
        "main": [],
        "all": [
            ("Pycnonotus barbatus", "Common Bulbul"),
            ("Streptopelia capicola", "Ring-necked Dove, Cape Turtle Dove"),
        ],
        "audio": None,
    },
]


def _tone(rng: np.random.Generator, seconds: float, frequency: float) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    signal = 0.3 * np.sin(2 * np.pi * frequency * t) + 0.05 * rng.standard_normal(t.size)
    return np.clip(signal * 32767, -32768, 32767).astype(np.int16)


def write_dataset(folder: str | Path) -> Path:
    """Write the fake dataset into ``folder`` (created); returns the folder."""
    root = Path(folder)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    with open(root / "xcdc_recordings.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for number, row in enumerate(ROWS):
            main = row["main"]
            every = row["all"]
            assert isinstance(main, list) and isinstance(every, list)
            writer.writerow(
                [
                    row["audio_id"],
                    f"https://xeno-canto.org/{row['audio_id']}",
                    row["latitude"],
                    row["longitude"],
                    row["length"],
                    row["date"],
                    row["time"],
                    row["recordist"],
                    repr([name for name, _ in main]),
                    repr([common for _, common in main]),
                    repr([name for name, _ in every]),
                    repr([common for _, common in every]),
                ]
            )
            if row["audio"] is not None:
                folder_for_wav = root / "audio" if row["audio"] == "audio" else root
                samples = _tone(rng, 0.25, 1500.0 + 400.0 * number)
                sf.write(
                    folder_for_wav / f"{row['audio_id']}.wav",
                    samples,
                    SAMPLE_RATE,
                    subtype="PCM_16",
                )
    return root


if __name__ == "__main__":
    write_dataset(Path(__file__).resolve().parent)
