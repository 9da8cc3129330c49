"""The `geoforensics` console command: subcommands, help, version, error handling."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from geoforensics.core import cli
from geoforensics.core.errors import InputError


def _console_script() -> str:
    found = shutil.which("geoforensics", path=str(Path(sys.executable).parent))
    assert found, "the geoforensics console script is not installed next to this interpreter"
    return found


def test_help_lists_every_subcommand() -> None:
    result = subprocess.run(
        [_console_script(), "--help"], capture_output=True, text=True, check=True
    )
    for command in ("demo", "data", "gallery", "audio"):
        assert command in result.stdout


def test_version_matches_distribution() -> None:
    from importlib.metadata import version

    result = subprocess.run(
        [_console_script(), "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"geoforensics {version('geoforensics')}"


def test_no_subcommand_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: geoforensics" in capsys.readouterr().out


def test_expected_errors_become_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(_args: object) -> int:
        raise InputError("clip.wav: not a media file")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(handler=failing)
    assert cli.main([]) == 1
    err = capsys.readouterr().err
    assert err == "geoforensics: error: clip.wav: not a media file\n"
