"""`geoforensics calibrate` and the region `locate` prints: species lists and an AG-CLIP model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from repo_paths import TESTS

from geoforensics.core import cli
from geoforensics.core.geo.calibration import load_calibrations
from geoforensics.core.geo.gallery import resolve_gallery
from geoforensics.core.synth import SyntheticRangeModel, build_world

GALLERY = "grid-4deg"
DATA = TESTS / "data" / "inatsounds"


@pytest.fixture(scope="module")
def species_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """A tiny synthetic world's ranges and an XCDC-format CSV of 12 choruses at species-rich
    places; returns (world root, XCDC folder, one chorus)."""
    root = tmp_path_factory.mktemp("calibrate-world")
    build_world("tiny", seed=0).range_model.save((root / "world").resolve())
    model = SyntheticRangeModel.load(root)
    coords = resolve_gallery(GALLERY).coords
    present = model.presence(coords[:, 0], coords[:, 1], week=21) > 0.2
    richness = present.sum(axis=1)
    picks = np.argsort(-richness, kind="stable")[::7][:12]  # rich places, spread out
    assert richness[picks].min() >= 1
    folder = root / "xcdc"
    folder.mkdir()
    columns = [
        "audio_id", "url", "latitude", "longitude", "length", "date", "time", "recordist",
        "main_scientific", "main_common", "all_scientific", "all_common",
    ]  # fmt: skip
    chorus: list[str] = []
    with open(folder / "xcdc_recordings.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for n, i in enumerate(picks):
            names = [model.species[j] for j in np.flatnonzero(present[i])][:6]
            chorus = chorus or names
            lat, lon = coords[i] + np.random.default_rng(n).uniform(-1, 1, 2)
            place = [f"{lat:.4f}", f"{lon:.4f}"]
            lists = [repr(names[:1]), "[]", repr(names), "[]"]
            writer.writerow([n + 1, "", *place, "3:00", "2019-05-20", "05:00", "tests", *lists])
    return root, folder, chorus


def test_species_calibration_and_calibrated_locate(
    species_world: tuple[Path, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, folder, chorus = species_world
    out = tmp_path / "species-calibration.json"
    spec = f"world:{root}"
    argv = ["calibrate", "--species", "--data", str(folder), "--range-model", spec,
            "--out", str(out), "--gallery", GALLERY, "--draws", "4", "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    entries = load_calibrations(out)
    assert len(entries) == len(report["entries"]) == 2  # week known and unknown
    assert {e.setting["week_known"] for e in entries} == {True, False}
    assert all(e.kind == "species-range" and e.n == 48 for e in entries)
    geojson = tmp_path / "region.geojson"
    argv = ["locate", "--species", "; ".join(chorus), "--date", "2024-05-20",
            "--range-model", spec, "--gallery", GALLERY, "--calibration", str(out),
            "--geojson", str(geojson), "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    region = json.loads(capsys.readouterr().out)["region"]
    assert region["calibrated"] is True and region["level"] == 0.9
    assert region["area_km2"] > 0 and region["n_parts"] >= 1 and region["countries"]
    collection = json.loads(geojson.read_text())
    feature = collection["features"][0]
    assert collection["type"] == "FeatureCollection"
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert feature["properties"]["calibrated"] is True
    # Without a calibration for this setting (no date: week unknown, other gallery) the
    # text output says UNCALIBRATED.
    argv = ["locate", "--species", "; ".join(chorus), "--range-model", spec,
            "--gallery", "grid-5deg"]  # fmt: skip
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "region 90% (UNCALIBRATED)" in text and "spans:" in text


def test_calibrate_errors_are_one_line(
    species_world: tuple[Path, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, folder, chorus = species_world
    cases = [
        (["calibrate", "--data", str(folder)], "give MODEL"),
        (["calibrate", "--species", "--data", str(folder), "--range-model", f"world:{root}"],
         "--out"),
        (["calibrate", "--species", "--data", str(tmp_path), "--range-model", f"world:{root}",
          "--out", str(tmp_path / "x.json")], "does not exist"),
        (["calibrate", "--species", "--data", str(folder), "--out", str(tmp_path / "x.json"),
          "--range-model", f"world:{root}", "--levels", "50,120"], "--levels"),
        (["locate", "--species", chorus[0], "--range-model", f"world:{root}",
          "--gallery", GALLERY, "--geojson", str(tmp_path / "r.png")], ".geojson"),
    ]  # fmt: skip
    damaged = tmp_path / "damaged.json"
    damaged.write_text("{not json", encoding="utf-8")
    cases.append(
        (["locate", "--species", chorus[0], "--range-model", f"world:{root}",
          "--gallery", GALLERY, "--calibration", str(damaged)], "damaged calibration file")
    )  # fmt: skip
    for argv, message in cases:
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, (argv, err)


@pytest.fixture(scope="module")
def agclip_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny AG-CLIP model (test_tiny encoder, random weights, GeoCLIP location space)."""
    import torch

    from geoforensics.core.models import AudioGeolocator, ModelConfig, save_model

    torch.manual_seed(0)
    model = AudioGeolocator(ModelConfig("agclip", "test_tiny", n_species=6, h3_resolution=0))
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 64, 64))
    folder = tmp_path_factory.mktemp("calibrate-agclip")
    save_model(model.eval(), folder)
    return folder


def test_model_calibration_is_saved_beside_the_model(
    agclip_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["calibrate", str(agclip_model), "--data", str(DATA), "--gallery", "grid-10deg"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "conformal calibration of agclip on 2 items" in text
    entries = load_calibrations(agclip_model / "calibration.json")
    assert len(entries) == 1 and entries[0].setting["gallery"] == "grid-10deg"
    rate = 22_050
    wav = tmp_path / "tone.wav"
    sf.write(wav, (0.2 * np.sin(np.arange(4 * rate) * 0.3)).astype(np.float32), rate)
    argv = ["locate", str(wav), "--method", "agclip", "--model", str(agclip_model),
            "--gallery", "grid-10deg", "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    region = json.loads(capsys.readouterr().out)["region"]
    assert region["calibrated"] is True and "agclip on 2 items" in region["source"]
