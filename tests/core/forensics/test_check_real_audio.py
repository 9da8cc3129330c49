"""`check` on MP4s built from real bird recordings (../shared/realaudio, CC non-commercial
Xeno-canto audio read as test fixtures; skipped when absent or without the birdnet extra).

A North American recording titled and claimed "Sydney" must be a MISMATCH resting on the
species BirdNET hears (never on a SYNTHETIC model), with the species modality's top place in
North America; a clip too short or quiet for BirdNET has no species evidence, not an error.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from repo_paths import REPO

from geoforensics.core import cli

REAL = REPO.parent / "shared" / "realaudio"
SEATTLE = "xc563936_seattle_wa_soundscape.mp3"
GALLERY = "land-2deg"  # coarser than the default 1 deg: the week's range table builds faster


def _need_real_audio() -> dict[str, str]:
    from geoforensics.core.species.birdnet_files import birdnet_available

    if not (REAL / "recordings.csv").is_file() or not (REAL / SEATTLE).is_file():
        pytest.skip(f"{REAL}: the real recordings are not here (test fixtures, not shipped)")
    if not birdnet_available():
        pytest.skip("the optional birdnet extra is not installed")
    with (REAL / "recordings.csv").open(encoding="utf-8") as fh:
        return next(row for row in csv.DictReader(fh) if row["file"] == SEATTLE)


def _clip(out: Path, audio: np.ndarray, sample_rate: int, title: str) -> Path:
    from geoforensics.core.media import make_test_video

    seconds = max(1, int(len(audio) / sample_rate))
    frames = [np.full((64, 96, 3), 60 + 20 * i, np.uint8) for i in range(min(seconds, 8))]
    return make_test_video(out, audio=audio, sample_rate=sample_rate, frames=frames,
                           fps=len(frames) / seconds, tags={"title": title})  # fmt: skip


def test_real_recording_claimed_far_away_is_a_species_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoforensics.core.audio import load_audio

    row = _need_real_audio()
    audio = load_audio(REAL / SEATTLE, sample_rate=48_000, duration_s=20.0)
    clip = _clip(tmp_path / "seattle.mp4", audio, 48_000, "Morning birds, Sydney")
    out = tmp_path / "report"
    argv = ["check", str(clip), "--claimed", "Sydney", "--date", row["date"], "--out", str(out),
            "--gallery", GALLERY, "--max-frames", "0", "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "verdict: MISMATCH" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"]["label"] == "mismatch"
    mismatches = [r for r in report["verdict"]["reasons"] if r.startswith("mismatch")]
    assert mismatches and all("audio species (BirdNET x range)" in r for r in mismatches)
    assert any("species heard have range probability < 0.01 at Sydney" in r for r in mismatches)
    assert not any("AG-CLIP" in r or "SYNTHETIC" in r for r in mismatches)
    mods = report["modalities"]
    assert mods["audio"]["available"] is False  # no --model: no AG-CLIP at all
    species = mods["audio_species"]
    assert species["available"] and species["evidence"]
    lat, lon = species["point"]
    assert 15.0 <= lat <= 72.0 and -170.0 <= lon <= -50.0  # North America
    assert report["week"] == 11 and report["species"]["judgements"]["claimed"]["contradicts"]
    segments = [s for s in report["timeline"] if s["kind"] == "species"]
    assert len(segments) == 2 and all(s["species"] or s["reason"] for s in segments)
    html = (out / "report.html").read_text()
    assert "audio species (BirdNET x range)" in html and (out / "map_audio_species.png").is_file()


def test_real_recording_with_the_synthetic_demo_model_is_labelled(tmp_path: Path) -> None:
    from geoforensics.core.audio import load_audio
    from geoforensics.core.forensics import CheckOptions, default_model_dir, run_check

    _need_real_audio()
    audio = load_audio(REAL / SEATTLE, sample_rate=48_000, duration_s=9.0)
    clip = _clip(tmp_path / "seattle.mp4", audio, 48_000, "Morning birds, Sydney")
    options = CheckOptions(model_dir=default_model_dir(), gallery=GALLERY, claimed="Sydney",
                           max_frames=0, date=None)  # fmt: skip
    report = run_check(clip, options)
    agclip = report.modalities["audio"]
    assert agclip.available and not agclip.evidence
    assert agclip.evidence_note == (
        "trained on a SYNTHETIC world: not evidence for real recordings"
    )
    assert not report.modalities["audio_fused"].available
    counted = [r for r in report.verdict.reasons if not r.startswith("not counted")]
    assert not any("AG-CLIP" in r for r in counted)
    assert any(r.startswith("not counted") and "AG-CLIP" in r for r in report.verdict.reasons)


def test_a_clip_too_short_and_quiet_for_birdnet_has_no_species_evidence(tmp_path: Path) -> None:
    from geoforensics.core.forensics import CheckOptions, run_check

    _need_real_audio()
    quiet = np.zeros(48_000 * 2, dtype=np.float32)
    clip = _clip(tmp_path / "quiet.mp4", quiet, 48_000, "silence")
    report = run_check(clip, CheckOptions(gallery="grid-5deg", claimed="Sydney", max_frames=0))
    species = report.modalities["audio_species"]
    assert not species.available and species.reason == "no species heard"
    assert report.verdict.label == "inconclusive"
    assert report.verdict.reasons[0] == "inconclusive: no audio evidence"


def test_a_model_recorded_as_real_counts_and_is_fused_with_species(tmp_path: Path) -> None:
    import shutil

    from geoforensics.core.audio import load_audio
    from geoforensics.core.forensics import CheckOptions, default_model_dir, run_check

    _need_real_audio()
    # A stand-in for a real-trained model: the demo weights with model.json saying "real"
    # (only the provenance logic is under test here, not the model's skill).
    model = tmp_path / "model"
    shutil.copytree(default_model_dir(), model)
    config = json.loads((model / "model.json").read_text())
    config["config"]["extra"]["training_data"] = {"dataset": "stand-in", "synthetic": False}
    (model / "model.json").write_text(json.dumps(config))
    (model / "fusion.json").write_text(json.dumps({"fusion_weight": 2.0}))
    audio = load_audio(REAL / SEATTLE, sample_rate=48_000, duration_s=9.0)
    clip = _clip(tmp_path / "seattle.mp4", audio, 48_000, "Morning birds")
    options = CheckOptions(model_dir=model, gallery=GALLERY, claimed="Seattle", max_frames=0)
    report = run_check(clip, options)
    agclip, fused = report.modalities["audio"], report.modalities["audio_fused"]
    assert agclip.available and agclip.evidence and agclip.evidence_note is None
    assert fused.available and fused.details["fusion_weight"] == 2.0
    assert fused.probs is not None and fused.probs.sum() == pytest.approx(1.0)
    assert not fused.evidence  # it combines the two counted audio modalities
