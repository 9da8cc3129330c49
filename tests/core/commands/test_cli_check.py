"""`geoforensics check`: --json, folder mode (skips, failures), bad inputs, CLIP modalities."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from repo_paths import TESTS

from geoforensics.core import cli
from geoforensics.core.paths import assets_dir

# A coarse gallery (5° grid, no land mask to load) keeps these tests fast; the demo test
# uses the default 1° land grid.
FAST = ["--gallery", "grid-5deg", "--no-species", "--quiet"]
DEMO_MODEL = str(assets_dir() / "models" / "demo_agclip")
MODALITIES = ["audio_species", "audio_fused", "audio", "frames", "text", "metadata_gps", "claimed"]
GPS = (48.8566, 2.3522)


def _frames(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 255, size=(n, 3))
    return [np.broadcast_to(c.astype(np.uint8), (64, 96, 3)).copy() for c in colours]


def _audio(seconds: float, offset_s: float = 0.0) -> np.ndarray:
    from geoforensics.core.audio import load_audio

    clip = assets_dir() / "demo" / "demo_soundscape.ogg"
    return load_audio(clip, sample_rate=22_050, offset_s=offset_s, duration_s=seconds)


def make_clip(path: Path, seconds: float = 6.0, seed: int = 0, **metadata: object) -> Path:
    """A small MP4: a cut of the demo soundscape and a few flat colour frames."""
    from geoforensics.core.media import make_test_video

    return make_test_video(
        path,
        audio=_audio(seconds, offset_s=float(seed)),
        sample_rate=22_050,
        frames=_frames(int(seconds), seed),
        fps=1.0,
        **metadata,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("check-clip")
    return make_clip(
        folder / "street.mp4",
        gps=GPS,
        creation_time=datetime(2023, 5, 20, 6, 30),
        tags={"title": "Morning birds in Paris"},
    )


def test_check_json_prints_the_report(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = cli.main(["check", str(clip), "--claimed", "40.4168,-3.7038", "--out", str(out),
                     "--json", "--model", DEMO_MODEL, *FAST])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads(printed)  # stdout is the JSON document and nothing else
    assert report == json.loads((out / "report.json").read_text())
    assert report["format"] == "geoforensics-check-report"
    assert report["inputs"]["clip"]["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    weights = assets_dir() / "models" / "demo_agclip" / "model.safetensors"
    assert (
        report["models"]["audio"]["weights_sha256"]
        == hashlib.sha256(weights.read_bytes()).hexdigest()
    )
    assert report["versions"]["numpy"] == np.__version__
    assert report["parameters"]["gallery"] == "grid-5deg"
    assert report["gallery"]["name"] == "grid-5deg"
    mods = report["modalities"]
    assert list(mods) == MODALITIES
    assert mods["audio"]["available"] and len(mods["audio"]["top"]) == 5
    # The demo model knows only the SYNTHETIC world; this clip does not say it is synthetic.
    assert mods["audio"]["evidence"] is False
    assert "SYNTHETIC" in mods["audio"]["evidence_note"]
    assert mods["audio"]["details"]["training_data"]["synthetic"] is True
    assert mods["audio_species"]["reason"] == "turned off with --no-species"
    assert not any(r.startswith(("mismatch", "consistent")) and "AG-CLIP" in r
                   for r in report["verdict"]["reasons"])  # fmt: skip
    assert mods["metadata_gps"]["point"] == pytest.approx(GPS, abs=1e-3)
    assert mods["claimed"]["point"] == pytest.approx([40.4168, -3.7038])
    assert mods["text"]["details"]["hint"] == "Morning birds in Paris"
    pair = next(d for d in report["discrepancies"]
                if (d["first"], d["second"]) == ("metadata_gps", "claimed"))  # fmt: skip
    assert pair["distance_km"] == pytest.approx(1053, abs=5)  # Paris - Madrid
    assert pair["status"] == "inconclusive"  # between 750 and 2,500 km
    assert report["date"] == "2023-05-20" and report["week"] == 19
    assert report["date_source"] == "container creation time"
    # 6 s of audio: one ~10 s segment.
    audio_segments = [s for s in report["timeline"] if s["kind"] == "audio"]
    assert len(audio_segments) == 1 and audio_segments[0]["n_windows"] == 3
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert '<img src="data:image/png;base64,' in html
    assert "<script" not in html.lower()


def test_check_text_output_and_defaults(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check", str(clip), "--claimed", "Paris", "--date", "2023-01-02", *FAST]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "check-street"
    assert "report: check-street/report.html" in printed
    assert "verdict: " in printed and "claimed place" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["date"] == "2023-01-02" and report["date_source"] == "--date"
    gps_claim = next(d for d in report["discrepancies"] if d["first"] == "metadata_gps")
    assert gps_claim["distance_km"] < 10 and gps_claim["status"] == "consistent"


def test_check_folder_records_failures_and_skips_done_clips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "clips"
    make_clip(folder / "a.mp4", seconds=4.0, seed=1, gps=GPS)
    make_clip(folder / "nested" / "b.mp4", seconds=4.0, seed=2)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"garbage" * 50)
    (folder / "notes.txt").write_text("not media")
    out = tmp_path / "out"
    args = ["check", str(folder), "--out", str(out), "--json", *FAST]
    assert cli.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((out / "summary.json").read_text())
    counts = (summary["clips"], summary["done"], summary["skipped"], summary["failed"])
    assert counts == (3, 2, 0, 1)
    by_name = {Path(e["clip"]).name: e for e in summary["entries"]}
    assert by_name["broken.mp4"]["status"] == "failed"
    error = by_name["broken.mp4"]["error"]
    assert "broken.mp4" in error and "\n" not in error
    assert (out / "a.mp4" / "report.json").is_file()
    assert (out / "nested__b.mp4" / "report.html").is_file()
    assert not (out / "broken.mp4").exists()
    first = (out / "a.mp4" / "report.json").read_bytes()

    # Second run: both reports are current (same sha256 + options) and are skipped.
    assert cli.main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["done"], again["skipped"], again["failed"]) == (0, 2, 1)
    assert (out / "a.mp4" / "report.json").read_bytes() == first
    # Other options make a different report: checked again.
    assert cli.main([*args, "--claimed", "48.85,2.35"]) == 0
    third = json.loads(capsys.readouterr().out)
    assert (third["done"], third["skipped"]) == (2, 0)


def test_bad_inputs_fail_in_one_line_and_write_nothing(
    tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"

    def fails(args: list[str], expected: str) -> None:
        assert cli.main(["check", *args, "--out", str(out), *FAST]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("geoforensics: error: ") and "\n" not in err
        assert expected in err
        assert not out.exists() or not any(out.iterdir())

    fails([str(tmp_path / "missing.mp4")], "no such file")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"this is not a video at all" * 20)
    fails([str(corrupt)], "corrupt.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    fails([str(empty)], "empty.mp4")
    fails([str(clip), "--claimed", "Atlantis of the Deep"], "--claimed")
    fails([str(clip), "--claimed", "95,10"], "latitude")
    fails([str(clip), "--date", "17/06/2022"], "--date")
    fails([str(clip), "--model", str(tmp_path / "no-model")], "model")
    fails([str(clip), "--top-k", "0"], "--top-k")
    (tmp_path / "empty-folder").mkdir()
    fails([str(tmp_path / "empty-folder")], "no media files")


def test_frames_and_text_with_a_tiny_random_clip(clip: Path, tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "tiny_clip_data", TESTS / "data" / "clip" / "data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    weights = module.write_tiny_clip(tmp_path / "tiny-clip")

    from geoforensics.core.forensics import CheckOptions, run_check, write_report

    options = CheckOptions(gallery="grid-5deg", claimed="48.85,2.35", clip_weights=str(weights),
                           species=False, max_frames=4, model_dir=Path(DEMO_MODEL))  # fmt: skip
    calls: list[tuple[float, str]] = []
    report = run_check(clip, options, progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(m.startswith("frames") for _, m in calls) and calls[-1][1].startswith("verdict")
    frames, text = report.modalities["frames"], report.modalities["text"]
    assert frames.available and text.available, (frames.reason, text.reason)
    assert frames.probs is not None and frames.probs.shape == (len(report.gallery_coords),)
    assert frames.probs.sum() == pytest.approx(1.0)
    assert text.source == "container tag 'title'"
    assert len(frames.top) == 5 and frames.point == (
        frames.top[0]["latitude"],
        frames.top[0]["longitude"],
    )
    keyframes = [s for s in report.timeline if s.kind == "frame"]
    assert 1 <= len(keyframes) <= 4
    assert all(s.available and s.point is not None and "claimed" in s.distance_km
               for s in keyframes)  # fmt: skip
    assert "audio" in keyframes[0].distance_km
    pairs = {(d.first, d.second) for d in report.discrepancies}
    assert ("audio", "frames") in pairs and ("frames", "text") in pairs
    audio_frames = report.discrepancy("audio", "frames")
    assert audio_frames is not None and audio_frames.mass_of == "audio"
    assert report.models["image_text"]["found"] is True
    written = write_report(report, tmp_path / "out")
    assert {"map_audio", "map_frames", "map_text", "timeline", "html", "json"} <= set(written)
    html = written["html"].read_text()
    assert html.count('<img src="data:image/png;base64,') >= 4 + len(keyframes)
