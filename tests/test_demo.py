"""`geoforensics demo` runs the whole foundation pipeline and writes a truthful report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geoforensics.core import cli


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC demo finished" in printed
    assert str(out / "report.json") in printed

    report = json.loads((out / "report.json").read_text())
    assert report["synthetic"] is True
    clip = report["clip"]
    # 20 s at 3 s windows strided 1.5 s: starts 0, 1.5, ..., 16.5 -> 12 windows
    assert clip["windows"] == 12
    assert clip["model_input_shape"] == [3, 224, 224]
    assert clip["sample_rate"] == 22050 and clip["channels"] == 1
    assert Path(clip["spectrogram_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    world = report["world"]
    assert world["species"] == 30
    assert sum(world["recordings"].values()) + sum(
        world["missing_location_skipped"].values()
    ) == pytest.approx(300, abs=10)
    assert world["xcdc_recordings"] >= 1

    # The true place's GeoCLIP embedding retrieves a gallery point next to it (1° land grid).
    assert report["location_space"]["top5"][0]["km"] < 120
    naive = report["naive_baseline"]
    assert naive["test_recordings"] > 20
    assert naive["median_km"] > 1000  # the naive row is far from useful

    # A second run reuses the generated world and the cached gallery embeddings.
    assert cli.main(["demo", "--out", str(out), "--quiet"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["world"]["reused"] is True
    assert again["gallery"]["seconds"] < 2.0  # a cache hit; computing takes ~5-10 s here
