"""`geoforensics demo`: the whole check on the shipped SYNTHETIC demo clip, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geoforensics.core import cli
from geoforensics.core.paths import assets_dir


def test_demo_assets_are_small_and_consistent() -> None:
    from geoforensics.core.media import probe_media

    demo = assets_dir() / "demo"
    clip = demo / "demo_clip.mp4"
    assert clip.stat().st_size < 1_000_000
    truth = json.loads((demo / "demo_soundscape.json").read_text())
    info = probe_media(clip)
    assert info.has_video and info.has_audio
    assert info.duration_s == pytest.approx(truth["duration_s"], abs=0.1)
    assert info.gps == pytest.approx((truth["latitude"], truth["longitude"]), abs=1e-3)
    assert info.creation_time is not None
    assert info.creation_time.date().isoformat() == truth["local_time"][:10]
    assert info.tags["title"] == "Dawn chorus, Nairobi"
    assert "SYNTHETIC" in info.tags["comment"]
    model = assets_dir() / "models" / "demo_agclip"
    assert sorted(p.name for p in model.iterdir()) == [
        "model.json", "model.safetensors", "training.json",
    ]  # fmt: skip
    assert sum(p.stat().st_size for p in model.iterdir()) < 10_000_000
    training = json.loads((model / "training.json").read_text())
    assert training["command"].startswith("geoforensics train assets/configs/demo_agclip.yaml")
    assert training["test"]["median_km"] > 0


def test_demo_runs_the_check_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh machine: no CLIP weights anywhere.
    monkeypatch.delenv("GEOFORENSICS_CLIP", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--quiet", "--no-species"]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC demo" in printed
    assert "verdict: MISMATCH" in printed
    assert f"report: {out / 'report.html'}" in printed
    assert "open the app: geoforensics app" in printed
    assert "frames (CLIP + GeoCLIP)          unavailable:" in printed
    assert "--model " in printed and "demo_agclip" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"]["label"] == "mismatch"
    assert report["notes"][0].startswith("SYNTHETIC demo")
    assert report["parameters"]["claimed"] == "Nairobi"
    assert report["modalities"]["frames"]["available"] is False
    assert "weights download clip" in report["modalities"]["frames"]["reason"]
    assert (out / "report.html").stat().st_size > 10_000
