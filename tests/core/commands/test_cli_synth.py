"""`geoforensics data synth`: layout, summary, refusal to overwrite, --force."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from geoforensics.core.commands.data_synth import register_synth
from geoforensics.core.errors import GeoforensicsError


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `data synth ARGS` the way the CLI does: one-line error and status 1 on failure."""
    parser = argparse.ArgumentParser(prog="geoforensics data")
    register_synth(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synth", *argv])
    try:
        status = int(args.handler(args))
    except GeoforensicsError as exc:
        print(f"geoforensics: error: {exc}")
        status = 1
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_writes_layout_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "world"
    status, stdout, _ = _run(["--preset", "tiny", "--out", str(out), "--seed", "3"], capsys)
    assert status == 0
    assert "SYNTHETIC" in stdout and "x real time" in stdout
    for name in ("train.json", "val.json", "test.json", "xcdc/xcdc_recordings.csv"):
        assert (out / name).is_file()
    world = json.loads((out / "world" / "world.json").read_text())
    assert world["seed"] == 3 and world["synthetic"] is True
    assert len(list((out / "xcdc" / "audio").glob("*.wav"))) == world["counts"]["xcdc"]
    before = (out / "train.json").read_bytes()

    status, stdout, _ = _run(["--preset", "tiny", "--out", str(out), "--quiet"], capsys)
    assert status == 1
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "--force" in lines[0]
    assert (out / "train.json").read_bytes() == before


def test_force_replaces_previous_world_and_keeps_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "world"
    # A previous synthetic world (marked by world.json) with a stale recording, plus a user file.
    stale = out / "train" / "00000_Old_Old_Old_Old_old" / "stale.wav"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    (out / "world").mkdir()
    (out / "world" / "world.json").write_text(json.dumps({"synthetic": True}))
    notes = out / "my_notes.txt"
    notes.write_text("keep me")

    status, _, _ = _run(["--preset", "tiny", "--out", str(out), "--force", "--quiet"], capsys)
    assert status == 0
    assert not stale.exists()
    assert notes.read_text() == "keep me"
    data = json.loads((out / "train.json").read_text())
    assert all((out / e["file_name"]).is_file() for e in data["audio"])


@pytest.mark.parametrize("extra", [["--workers", "0"], ["--seed", "-1"]], ids=["workers", "seed"])
def test_bad_options_give_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    status, stdout, _ = _run(["--out", str(tmp_path / "w"), "--quiet", *extra], capsys)
    assert status == 1
    assert len(stdout.strip().splitlines()) == 1 and extra[0] in stdout
    assert not (tmp_path / "w").exists()


def test_unknown_preset_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _run(["--preset", "huge", "--out", str(tmp_path)], capsys)
