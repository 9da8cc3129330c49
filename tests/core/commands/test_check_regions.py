"""Confidence regions in `geoforensics check`: report.json, the calibrated verdict rule, the
CLI line, the HTML report and the app's map."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from repo_paths import REPO
from test_cli_check import DEMO_MODEL, FAST, make_clip

from geoforensics.core import cli

MADRID = "40.4168,-3.7038"
GALLERY = "grid-5deg"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clip that declares itself SYNTHETIC, so the demo model's audio counts as evidence."""
    folder = tmp_path_factory.mktemp("regions-clip")
    return make_clip(
        folder / "synthetic.mp4",
        gps=(48.8566, 2.3522),
        creation_time=datetime(2023, 5, 20, 6, 30),
        tags={"comment": "SYNTHETIC test clip"},
    )


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo model folder (a calibration.json may be written into it)."""
    target = tmp_path_factory.mktemp("regions-model") / "demo_agclip"
    shutil.copytree(DEMO_MODEL, target)
    assert not (target / "calibration.json").exists()
    return target


def _check(clip: Path, out: Path, model: Path | str, claimed: str = MADRID) -> dict[str, Any]:
    code = cli.main(["check", str(clip), "--claimed", claimed, "--out", str(out),
                     "--model", str(model), *FAST])  # fmt: skip
    assert code == 0
    return json.loads((out / "report.json").read_text())


def _calibrate(model: Path, scores: np.ndarray) -> None:
    from geoforensics.core.geo.calibration import (
        CALIBRATION_FILE,
        agclip_setting,
        calibrate,
        save_calibration,
    )
    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.geo.regions import region_grid

    gallery = resolve_gallery(GALLERY)
    setting = agclip_setting(gallery.name, gallery.coords)
    entry = calibrate("agclip", setting, region_grid(gallery.coords), scores, data="test")
    save_calibration(model / CALIBRATION_FILE, entry)


def test_regions_in_the_report_grow_with_the_level(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _check(clip, tmp_path / "report", DEMO_MODEL)
    audio = report["modalities"]["audio"]
    regions = audio["details"]["regions"]
    assert [r["level"] for r in regions] == [0.5, 0.8, 0.9, 0.95]
    areas = [r["area_km2"] for r in regions]
    assert all(a > 0 for a in areas) and areas == sorted(areas)
    masses = [r["mass"] for r in regions]
    assert masses == sorted(masses) and masses[0] >= 0.5 - 1e-6
    assert all(not r["calibrated"] and r["n_parts"] >= 1 for r in regions)
    assert audio["details"]["regions_note"].startswith("uncalibrated")
    # point modalities have no regions; report.json stays small (long cell lists left out)
    assert "regions" not in report["modalities"]["claimed"]["details"]
    assert all(len(r.get("cells", [])) <= 64 for r in regions)
    assert (tmp_path / "report" / "report.json").stat().st_size < 200_000
    # the CLI prints the 90 % region of each located modality in one line
    printed = capsys.readouterr().out
    assert "90 % region" in printed and "UNCALIBRATED" in printed
    # the HTML report lists the regions
    html = (tmp_path / "report" / "report.html").read_text()
    assert "confidence regions" in html and "UNCALIBRATED" in html


def test_uncalibrated_verdict_keeps_the_fixed_rules(
    clip: Path, model_copy: Path, tmp_path: Path
) -> None:
    from geoforensics.core.forensics import CheckOptions, run_check
    from geoforensics.core.forensics.discrepancy import compare_modalities, decide_verdict

    report = run_check(
        clip,
        CheckOptions(model_dir=model_copy, gallery=GALLERY, species=False, claimed=MADRID),
    )
    assert report.modalities["audio"].evidence
    # today's rules on the same modalities give the same verdict, word for word
    fixed = compare_modalities(
        report.modalities, report.gallery_coords, prior=None
    )  # prior only changes the chance baselines, not the statuses
    expected = decide_verdict(fixed, report.modalities)
    assert report.verdict.label == expected.label
    assert report.verdict.reasons == expected.reasons
    assert not any("calibrated" in line for line in report.verdict.reasons)


def test_calibrated_regions_decide_the_audio_pairs(
    clip: Path, model_copy: Path, tmp_path: Path
) -> None:
    # conformal scores of a sharp model: its 95 % region is small (a few top places)
    _calibrate(model_copy, np.linspace(0.0, 0.05, 99))
    report = _check(clip, tmp_path / "far", model_copy)
    regions = report["modalities"]["audio"]["details"]["regions"]
    assert all(r["calibrated"] for r in regions)
    assert "regions_note" not in report["modalities"]["audio"]["details"]
    verdict = report["verdict"]
    assert verdict["label"] == "mismatch"
    outside = [line for line in verdict["reasons"] if "outside the calibrated 95 % region" in line]
    assert outside and all("(area " in line and "km²)" in line for line in outside)
    assert any(line.startswith("mismatch: audio (AG-CLIP) vs claimed place") for line in outside)
    # the claimed place at the audio's own top place: inside its calibrated 50 % region
    top = report["modalities"]["audio"]["point"]
    near = _check(clip, tmp_path / "near", model_copy, claimed=f"{top[0]},{top[1]}")
    inside = [r for r in near["verdict"]["reasons"] if "inside the calibrated 50 % region" in r]
    assert inside and inside[0].startswith("consistent: audio (AG-CLIP) vs claimed place")


def test_the_maps_draw_the_90_percent_region(clip: Path, tmp_path: Path) -> None:
    from geoforensics.core.forensics import CheckOptions, run_check
    from geoforensics.core.forensics.maps import region_rings
    from geoforensics.forensics_app.check_page import map_layers

    report = run_check(
        clip, CheckOptions(model_dir=Path(DEMO_MODEL), gallery=GALLERY, species=False)
    )
    rings = region_rings(report.modalities["audio"])
    assert rings and all(r.shape[1] == 2 and np.allclose(r[0], r[-1]) for r in rings)
    assert region_rings(report.modalities["claimed"]) == []
    deck = json.loads(map_layers(report, "audio").to_json())
    layers = {layer["id"]: layer for layer in deck["layers"]}
    region = layers["region"]
    assert region["@@type"] == "GeoJsonLayer" and not region["filled"]
    assert region["data"]["features"][0]["properties"]["level"] == 0.9
    assert "region" not in {
        layer["id"] for layer in json.loads(map_layers(report, "").to_json())["layers"]
    }


def test_the_check_page_outlines_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("GEOFORENSICS_APP_GALLERY", "grid-10deg")
    app = REPO / "forensics_app" / "app.py"
    at = AppTest.from_file(str(app), default_timeout=240)
    at.query_params.update({"demo": "1"})
    at.run()
    assert not at.exception, at.exception
    (chart,) = at.get("deck_gl_json_chart")
    deck = json.loads(chart.proto.json)
    region = next(layer for layer in deck["layers"] if layer.get("id") == "region")
    assert region["@@type"] == "GeoJsonLayer"
    captions = [str(c.value) for c in at.caption]
    assert any(c.startswith("Blue outline:") and "90 % region" in c for c in captions)


def test_a_new_calibration_changes_the_fingerprint(tmp_path: Path) -> None:
    from geoforensics.core.forensics import CheckOptions
    from geoforensics.core.forensics.pipeline import check_fingerprint

    model = tmp_path / "demo_agclip"
    shutil.copytree(DEMO_MODEL, model)
    options = CheckOptions(model_dir=model, gallery=GALLERY, species=False)
    before = check_fingerprint("clip", options, "weights")
    _calibrate(model, np.linspace(0.0, 0.05, 99))
    after = check_fingerprint("clip", options, "weights")
    assert before != after  # check FOLDER reruns a clip once its model is calibrated


def test_species_regions_are_calibrated_only_by_a_file_for_the_same_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoforensics.core.forensics.regions_check import attach_regions
    from geoforensics.core.forensics.results import ModalityResult
    from geoforensics.core.geo.calibration import calibrate, save_calibration, species_setting
    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.geo.regions import region_grid

    gallery = resolve_gallery(GALLERY)
    probs = np.exp(-0.5 * ((gallery.coords[:, 0] - 45) ** 2 + (gallery.coords[:, 1] + 90) ** 2)
                   / 20.0**2)  # fmt: skip
    probs /= probs.sum()
    details = {"range_model": "birdnet", "likelihood": "focal", "week": 20,
               "area_prior": True, "effort_prior": "population"}  # fmt: skip

    def species() -> ModalityResult:
        return ModalityResult("audio_species", True, None, (45.0, -90.0), [], probs,
                              "test", dict(details))  # fmt: skip

    path = tmp_path / "species-calibration.json"
    grid = region_grid(gallery.coords)
    scores = np.linspace(0.0, 0.2, 99)
    for effort in ("none", "population"):  # the same setting but for the effort prior
        setting = species_setting("birdnet", "focal", True, gallery.name, gallery.coords, True,
                                  None if effort == "none" else effort)  # fmt: skip
        if effort == "none":
            save_calibration(path, calibrate("species-range", setting, grid, scores, data="t"))
            modality = species()
            attach_regions({"audio_species": modality}, gallery.coords, gallery.name, None, path)
            assert not any(r.calibrated for r in modality.regions)  # another posterior
            assert "no species-range calibration" in modality.details["regions_note"]
        else:
            save_calibration(path, calibrate("species-range", setting, grid, scores, data="t"))
            modality = species()
            attach_regions({"audio_species": modality}, gallery.coords, gallery.name, None, path)
            assert modality.regions and all(r.calibrated for r in modality.regions)
            assert "regions_note" not in modality.details
    # without a file the species regions stay uncalibrated, and a missing file is refused
    modality = species()
    attach_regions({"audio_species": modality}, gallery.coords, gallery.name, None)
    assert not any(r.calibrated for r in modality.regions)
    (tmp_path / "x.mp4").write_bytes(b"")
    argv = ["check", str(tmp_path / "x.mp4"), "--calibration", str(tmp_path / "none.json")]
    assert cli.main(argv) == 1
    assert "none.json: no such calibration file" in capsys.readouterr().err
