"""`geoforensics data info`: summaries of iNatSounds and XCDC folders, one-line errors."""

from __future__ import annotations

import argparse
import json
import runpy
from collections.abc import Callable
from pathlib import Path

import pytest
from repo_paths import TESTS

from geoforensics.core import cli
from geoforensics.core.commands.data_info import register_info

INAT = TESTS / "data" / "inatsounds"
XCDC_DIR = TESTS / "data" / "xcdc"

#: Runs ``geoforensics data info ARGV...``; returns (exit status, stdout, stderr).
Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture()
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Invoke:
    """Run ``geoforensics data info ...`` through cli.main; returns (status, stdout, stderr).

    The parser holds only ``data info`` so these tests do not depend on the other ``data``
    subcommands; the wiring of the real parser is checked separately below.
    """

    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="geoforensics")
        commands = parser.add_subparsers(dest="command")
        data = commands.add_parser("data")
        register_info(data.add_subparsers(dest="data_command"))
        return parser

    monkeypatch.setattr(cli, "build_parser", build)

    def invoke(*argv: str) -> tuple[int, str, str]:
        status = cli.main(["data", "info", *argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return invoke


def test_text_summary_of_all_splits(run: Invoke) -> None:
    status, out, err = run(str(INAT))
    assert status == 0 and err == ""
    assert "[train]" in out and "[val]" in out and "[test]" in out
    assert "recordings        4 of 7 entries" in out
    assert "missing location  3 (skipped)" in out
    assert "species           4 present of 4 categories" in out
    assert "dates             2020-07-01 .. 2022-03-15 (0 missing, 0 unparseable)" in out
    assert "duration          1.2 s (mean 0.3 s)" in out
    assert "[total] 7 recordings, 4 without location" in out
    assert "audio files       0 missing" in out


def test_json_summary_of_one_split(run: Invoke) -> None:
    status, out, _ = run(str(INAT), "--split", "val", "--json")
    assert status == 0
    summary = json.loads(out)
    assert list(summary["splits"]) == ["val"]
    val = summary["splits"]["val"]
    assert val["n_recordings"] == 2
    assert val["n_missing_date"] == 1
    assert val["total_duration_s"] == pytest.approx(0.55)
    assert summary["total"]["n_recordings"] == 2


def test_xcdc_summary(run: Invoke) -> None:
    status, out, _ = run(str(XCDC_DIR), "--xcdc")
    assert status == 0
    assert "recordings        5 (3 with audio, 2 without)" in out
    assert "species           12 (per recording 2-4, mean 2.8)" in out
    status, out, _ = run(str(XCDC_DIR / "xcdc_recordings.csv"), "--xcdc", "--json")
    assert status == 0
    assert json.loads(out)["n_with_audio"] == 3


def test_missing_root_is_one_line_error(run: Invoke, tmp_path: Path) -> None:
    status, out, err = run(str(tmp_path / "absent"))
    assert status == 1 and out == ""
    assert err == f"geoforensics: error: iNatSounds root {tmp_path / 'absent'} does not exist\n"


def test_root_without_annotations_is_one_line_error(run: Invoke, tmp_path: Path) -> None:
    status, _, err = run(str(tmp_path))
    assert status == 1
    assert err.count("\n") == 1
    assert "no annotation files (expected one of train.json, val.json, test.json)" in err


def test_missing_split_is_named(run: Invoke, tmp_path: Path) -> None:
    script = runpy.run_path(str(INAT / "data.py"), run_name="fake_inatsounds_data")
    root = script["write_dataset"](tmp_path / "inat")
    (root / "test.json").unlink()
    status, _, err = run(str(root), "--split", "test")
    assert status == 1
    assert "no annotation file test.json for split 'test'" in err


def test_malformed_xcdc_csv_names_line(run: Invoke, tmp_path: Path) -> None:
    csv_path = tmp_path / "xcdc_recordings.csv"
    text = (XCDC_DIR / "xcdc_recordings.csv").read_text().replace("51.7520", "north")
    csv_path.write_text(text)
    status, _, err = run(str(tmp_path), "--xcdc")
    assert status == 1
    assert err == (f"geoforensics: error: {csv_path}: line 2: latitude 'north' is not a number\n")


def test_real_parser_has_data_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["data", "info", str(XCDC_DIR), "--xcdc", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_recordings"] == 5
