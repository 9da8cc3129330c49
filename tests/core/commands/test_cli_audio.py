"""`geoforensics audio info`: reported fields, PNG output, one-line errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf

from geoforensics.core.cli import main


@pytest.fixture
def stereo_wav(tmp_path: Path) -> Path:
    t = np.arange(10 * 44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 1000 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, 0.5 * left], axis=1).astype(np.float32), 44100)
    return path


def test_info_json_fields(stereo_wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audio", "info", str(stereo_wav), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(stereo_wav)
    assert (report["sample_rate"], report["channels"], report["frames"]) == (44100, 2, 441000)
    assert report["duration_s"] == pytest.approx(10.0)
    assert (report["container"], report["codec"]) == ("WAV", "PCM_16")
    assert report["frontend"] == "paper" and report["model_sample_rate"] == 22050
    assert (report["window_s"], report["stride_s"]) == (3.0, 1.5)
    assert report["n_windows"] == 5
    assert report["input_shape"] == [5, 3, 224, 224]


def test_info_reference_frontend_and_text_output(
    stereo_wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audio", "info", str(stereo_wav), "--frontend", "reference", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frontend"] == "reference" and report["n_windows"] == 5
    assert report["window_s"] == pytest.approx(65920 / 22050)
    assert main(["audio", "info", str(stereo_wav)]) == 0
    text = capsys.readouterr().out
    assert "44100 Hz" in text and "10.000 s" in text and "5 x 3 x 224 x 224" in text


def test_info_of_a_video_counts_the_audio_track(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = tmp_path / "sound.wav"
    sf.write(wav, np.zeros(int(4.6 * 48000), np.float32) + 0.01, 48000)
    video = tmp_path / "clip.mp4"
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-y"]
    command += ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=4.6", "-i", str(wav)]
    command += ["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", "-shortest"]
    subprocess.run([*command, str(video)], check=True, capture_output=True)
    assert main(["audio", "info", str(video), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sample_rate"] == 48000 and report["codec"] == "aac"
    assert report["duration_s"] == pytest.approx(4.6, abs=0.05)
    assert report["n_windows"] == 2


def test_png_is_written_atomically(
    stereo_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plots" / "spectrogram.png"
    assert main(["audio", "info", str(stereo_wav), "--png", str(out), "--png-seconds", "4"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["spectrogram.png"]
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 100])
def test_bad_file_exits_1_with_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    assert main(["audio", "info", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and str(path) in lines[0]


def test_missing_file_unknown_frontend_and_no_action(
    stereo_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audio", "info", str(tmp_path / "gone.flac")]) == 1
    assert "gone.flac: file not found" in capsys.readouterr().err
    assert main(["audio", "info", str(stereo_wav), "--frontend", "bogus"]) == 1
    assert "bogus" in capsys.readouterr().err
    assert main(["audio"]) == 2
    assert "info" in capsys.readouterr().out
