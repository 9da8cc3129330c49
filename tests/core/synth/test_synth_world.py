"""The synthetic world written to disk: formats, ground truth, geography, determinism, speed."""

from __future__ import annotations

import csv
import itertools
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from geoforensics.core.fileio import sha256_file
from geoforensics.core.geo.distance import haversine_pairwise_np
from geoforensics.core.geo.land import load_land_grid
from geoforensics.core.synth import (
    PRESENCE_THRESHOLD,
    PRESETS,
    SAMPLE_RATE,
    SyntheticRangeModel,
    build_world,
    date_to_week,
    generate_world,
)
from geoforensics.core.synth.places import Ambience, render_ambience
from geoforensics.core.synth.world import scaled

SEED = 7


@dataclass
class Written:
    root: Path
    seconds: float
    realtime: float


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Written:
    load_land_grid()  # the one-off land mask reduction is not part of the timing
    root = tmp_path_factory.mktemp("tiny-world")
    start = time.perf_counter()
    report = generate_world(root, "tiny", seed=SEED, progress=False)
    return Written(root, time.perf_counter() - start, report.realtime_factor)


def _ground_truth(root: Path) -> list[dict[str, str]]:
    with open(root / "world" / "recordings.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _species_sets(rows: list[dict[str, str]]) -> list[set[int]]:
    out = []
    for row in rows:
        background = [int(x) for x in row["background_category_ids"].split(";") if x]
        out.append({int(row["focal_category_id"]), *background})
    return out


def test_tiny_preset_is_fast(tiny: Written) -> None:
    # "A few seconds" on a quiet machine; generous bounds for a busy shared CI runner.
    assert tiny.seconds < 40
    assert tiny.realtime > 50


def test_layout_and_synthetic_labels(tiny: Written) -> None:
    root = tiny.root
    for name in ("train.json", "val.json", "test.json", "xcdc/xcdc_recordings.csv"):
        assert (root / name).is_file()
    for name in ("world.json", "species.json", "range_model.npz", "recordings.csv"):
        assert (root / "world" / name).is_file()
    world = json.loads((root / "world" / "world.json").read_text())
    assert world["synthetic"] is True
    assert "SYNTHETIC" in world["note"]
    assert world["preset"] == "tiny" and world["seed"] == SEED
    categories = json.loads((root / "train.json").read_text())["categories"]
    for split in ("train", "val", "test"):
        data = json.loads((root / f"{split}.json").read_text())
        assert "SYNTHETIC" in data["info"]["description"]
        assert set(data) == {"info", "audio", "categories", "annotations", "licenses"}
        assert len(data["annotations"]) == len(data["audio"])
        assert data["categories"] == categories  # the full list in every split
        for entry in data["audio"]:
            assert entry["file_name"].startswith(f"{split}/")
            assert (root / entry["file_name"]).is_file()
    assert len(categories) == PRESETS["tiny"].n_species
    assert {"id", "name", "common_name", "supercategory", "genus", "specific_epithet"} <= set(
        categories[0]
    )
    assert not list(root.rglob("*.tmp"))  # nothing half-written left behind


def test_audio_format_and_durations(tiny: Written) -> None:
    data = json.loads((tiny.root / "train.json").read_text())
    for entry in data["audio"][:40]:
        info = sf.info(str(tiny.root / entry["file_name"]))
        assert info.samplerate == SAMPLE_RATE and info.channels == 1
        assert info.subtype == "PCM_16" and info.format == "WAV"
        assert info.frames / SAMPLE_RATE == pytest.approx(entry["duration"], abs=1e-3)
        audio, _ = sf.read(str(tiny.root / entry["file_name"]), dtype="float32")
        peak = float(np.max(np.abs(audio)))
        assert 0.25 < peak < 0.95  # normalised, never clipped
    rows = _ground_truth(tiny.root)
    durations = np.array([float(r["duration"]) for r in rows if r["split"] != "xcdc"])
    assert durations.min() >= 3.0 and durations.max() <= 20.0
    assert np.median(durations) < 10.0  # skewed short
    chorus = [float(r["duration"]) for r in rows if r["split"] == "xcdc"]
    assert len(chorus) == PRESETS["tiny"].n_xcdc
    assert all(120.0 <= d <= 180.0 for d in chorus)


def test_missing_locations_only_in_train(tiny: Written) -> None:
    missing = {}
    for split in ("train", "val", "test"):
        data = json.loads((tiny.root / f"{split}.json").read_text())
        missing[split] = sum(entry["latitude"] is None for entry in data["audio"])
        assert all((e["latitude"] is None) == (e["longitude"] is None) for e in data["audio"])
    assert missing["train"] > 0 and missing["val"] == 0 and missing["test"] == 0


def test_dates_match_weeks_and_hours(tiny: Written) -> None:
    rows = _ground_truth(tiny.root)
    dates = [datetime.fromisoformat(r["date"]) for r in rows]
    weeks = date_to_week([d.month for d in dates], [d.day for d in dates])
    assert weeks.tolist() == [int(r["week"]) for r in rows]
    clock = np.array([d.hour + d.minute / 60 + d.second / 3600 for d in dates])
    hours = np.array([float(r["hour"]) for r in rows])
    assert np.all(np.abs(clock - hours) < 0.02)  # within about a minute
    data = json.loads((tiny.root / "test.json").read_text())
    by_id = {r["audio_id"]: r for r in rows}
    for entry in data["audio"]:
        # The JSON date (either style) is the local wall-clock time of the ground truth.
        assert entry["date"][:19].replace(" ", "T") == by_id[str(entry["id"])]["date"]


def test_species_only_where_and_when_present(tiny: Written) -> None:
    model = SyntheticRangeModel.load(tiny.root / "world")
    rows = _ground_truth(tiny.root)
    lat = np.array([float(r["latitude"]) for r in rows])
    lon = np.array([float(r["longitude"]) for r in rows])
    week = np.array([int(r["week"]) for r in rows])
    presence = model.presence(lat, lon, week)
    for i, species in enumerate(_species_sets(rows)):
        for s in species:
            assert presence[i, s] >= PRESENCE_THRESHOLD, (rows[i]["audio_id"], s)
    # Presence is far from universal: recordings hear a small part of the species list.
    assert np.mean(presence >= PRESENCE_THRESHOLD) < 0.5


def test_exported_model_matches_the_generated_world(tiny: Written) -> None:
    world = build_world("tiny", seed=SEED)  # the same plan, rebuilt in memory
    loaded = SyntheticRangeModel.load(tiny.root)
    assert loaded.species == [s.scientific_name for s in world.species]
    lat = np.array([p.latitude for p in world.recordings])
    lon = np.array([p.longitude for p in world.recordings])
    week = np.array([p.week for p in world.recordings])
    assert np.array_equal(
        loaded.presence(lat, lon, week), world.range_model.presence(lat, lon, week)
    )
    assert np.array_equal(loaded.presence(lat, lon), world.range_model.presence(lat, lon))
    rows = _ground_truth(tiny.root)
    assert [int(r["focal_category_id"]) for r in rows if r["split"] != "xcdc"] == [
        world.species[p.focal].category_id for p in world.recordings
    ]
    species = json.loads((tiny.root / "world" / "species.json").read_text())["species"]
    assert [s["scientific_name"] for s in species] == loaded.species
    assert {"call", "range", "seasonality", "taxonomy"} <= set(species[0])


def test_nearby_recordings_share_more_species(tiny: Written) -> None:
    rows = [r for r in _ground_truth(tiny.root) if r["split"] != "xcdc"]
    coords = np.array([(float(r["latitude"]), float(r["longitude"])) for r in rows])
    sets = _species_sets(rows)
    dist = haversine_pairwise_np(coords, coords)
    iu = np.triu_indices(len(rows), k=1)
    jaccard = np.array(
        [len(sets[i] & sets[j]) / len(sets[i] | sets[j]) for i, j in zip(*iu, strict=True)]
    )
    d = dist[iu]
    near, far = jaccard[d < 200], jaccard[d > 5000]
    assert near.size > 50 and far.size > 50
    assert near.mean() > 0.15
    assert far.mean() < 0.02
    assert near.mean() > 10 * far.mean()


def test_test_sites_recur_near_training_sites(tiny: Written) -> None:
    rows = _ground_truth(tiny.root)
    train = np.array(
        [(float(r["latitude"]), float(r["longitude"])) for r in rows if r["split"] == "train"]
    )
    test = np.array(
        [(float(r["latitude"]), float(r["longitude"])) for r in rows if r["split"] == "test"]
    )
    nearest = haversine_pairwise_np(test, train).min(axis=1)
    assert np.mean(nearest < 50.0) > 0.6
    # ... but the split is by recording, and some test recordings are far from any train site.
    assert np.mean(nearest > 200.0) > 0.02
    # Locations are biased toward North America and Europe, as on iNaturalist.
    lat, lon = test[:, 0], test[:, 1]
    north_atlantic = (lat > 15) & (((lon > -170) & (lon < -50)) | ((lon > -25) & (lon < 45)))
    assert north_atlantic.mean() > 0.4


def test_focal_species_is_identifiable_from_3s_windows(tiny: Written) -> None:
    """Nearest class mean of log band energies in one 3 s window beats chance by far."""

    def features(split: str) -> tuple[np.ndarray, np.ndarray]:
        data = json.loads((tiny.root / f"{split}.json").read_text())
        label = {a["audio_id"]: a["category_id"] for a in data["annotations"]}
        edges = np.geomspace(200.0, 10_500.0, 41)
        feats, labels = [], []
        for entry in data["audio"]:
            audio, _ = sf.read(str(tiny.root / entry["file_name"]), dtype="float32")
            window = audio[: 3 * SAMPLE_RATE]
            frames = window[: len(window) // 512 * 512].reshape(-1, 512) * np.hanning(512)
            power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
            freqs = np.fft.rfftfreq(512, 1.0 / SAMPLE_RATE)
            bands = np.stack(
                [
                    power[:, (freqs >= lo) & (freqs < hi)].sum(1)
                    for lo, hi in itertools.pairwise(edges)
                ],
                axis=1,
            )
            logb = np.log(bands + 1e-9)
            feats.append(np.concatenate([logb.mean(0), logb.max(0)]) - logb.mean())
            labels.append(label[entry["id"]])
        return np.array(feats), np.array(labels)

    x_train, y_train = features("train")
    x_test, y_test = features("test")
    classes = np.unique(y_train)
    centroids = np.stack([x_train[y_train == c].mean(0) for c in classes])
    known = np.isin(y_test, classes)
    d = ((x_test[known, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = float(np.mean(classes[d.argmin(1)] == y_test[known]))
    majority = float(np.mean(y_test[known] == np.bincount(y_train).argmax()))
    assert accuracy > 0.5 and accuracy > 3 * majority


def test_readers_load_the_world(tiny: Written) -> None:
    inat = pytest.importorskip("geoforensics.core.data.inatsounds")
    xcdc_module = pytest.importorskip("geoforensics.core.data.xcdc")
    total = 0
    for split in ("train", "val", "test"):
        data = json.loads((tiny.root / f"{split}.json").read_text())
        dataset = inat.INatSounds(tiny.root, split, require_audio=True)
        with_location = sum(e["latitude"] is not None for e in data["audio"])
        assert len(dataset) == with_location
        assert dataset.num_classes == PRESETS["tiny"].n_species
        total += len(data["audio"])
    assert total == PRESETS["tiny"].n_recordings
    xcdc = xcdc_module.XCDC(tiny.root / "xcdc", require_audio=True)
    assert len(xcdc) == PRESETS["tiny"].n_xcdc
    for recording in xcdc:
        assert set(recording.main_scientific) <= set(recording.all_scientific)
        assert recording.duration is not None and 120 <= recording.duration <= 180


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    config = scaled(
        PRESETS["tiny"], name="tiny", n_recordings=40, n_xcdc=1, xcdc_minutes=(0.2, 0.3)
    )
    generate_world(tmp_path / "a", config, seed=1, progress=False)
    generate_world(tmp_path / "b", config, seed=1, workers=2, progress=False)
    generate_world(tmp_path / "c", config, seed=2, progress=False)
    a, b, c = _hashes(tmp_path / "a"), _hashes(tmp_path / "b"), _hashes(tmp_path / "c")
    assert len(a) > 40
    assert a == b  # byte-identical, whatever the number of workers
    assert set(a) != set(c) or a != c
    shared = set(a) & set(c)
    assert all(a[name] != c[name] for name in shared if name.endswith(".json"))


@pytest.mark.parametrize(("hum_hz", "other_hz"), [(60.0, 50.0), (50.0, 60.0)])
def test_mains_hum_frequency(hum_hz: float, other_hz: float) -> None:
    ambience = Ambience(surf=0, wind=0, insects=0, traffic=0, hum=1.0, hum_hz=hum_hz, tilt=1.0)
    audio = render_ambience(np.random.default_rng(0), 4 * SAMPLE_RATE, SAMPLE_RATE, ambience)
    spectrum = np.abs(np.fft.rfft(audio))
    freqs = np.fft.rfftfreq(len(audio), 1.0 / SAMPLE_RATE)

    def level(f: float) -> float:
        return float(spectrum[np.argmin(np.abs(freqs - f))])

    assert level(hum_hz) > 20 * level(other_hz)
    assert audio.dtype == np.float32 and np.sqrt(np.mean(audio**2)) == pytest.approx(1.0, rel=1e-3)


def test_ambience_depends_on_place() -> None:
    world = build_world(scaled(PRESETS["tiny"], n_recordings=400, n_xcdc=0), seed=5)
    plans = world.recordings
    lat = np.array([p.latitude for p in plans])
    hum = np.array([p.ambience.hum_hz for p in plans])
    lon = np.array([p.longitude for p in plans])
    north_america = (lon > -125) & (lon < -65) & (lat > 25) & (lat < 55)
    assert north_america.sum() > 20
    assert np.all(hum[north_america] == 60.0)
    europe = (lon > -10) & (lon < 40) & (lat > 35)
    assert europe.sum() > 20
    assert np.all(hum[europe] == 50.0)
    wind = np.array([p.ambience.wind > 0 for p in plans])
    high = np.abs(lat) > 55
    if high.sum() >= 10:
        assert wind[high].mean() > wind[np.abs(lat) < 40].mean()
