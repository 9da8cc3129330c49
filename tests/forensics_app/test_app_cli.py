"""`geoforensics app`: the streamlit command line it runs, its settings and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from geoforensics.core import cli
from geoforensics.core.commands import app as app_command
from geoforensics.forensics_app.settings import MAX_UPLOAD_MB


def test_app_is_a_registered_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert "geoforensics.core.commands.app" in cli.COMMAND_MODULES
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["app", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--port",
        "--headless",
        "--address",
        "--model",
        "--gallery",
        "--world",
        "--bench",
    ):
        assert option in out


def _options(command: list[str]) -> dict[str, str]:
    return dict(zip(command[5::2], command[6::2], strict=True))


def test_streamlit_command_is_offline_and_headless() -> None:
    command = app_command.streamlit_command(port=8765, headless=True, address="127.0.0.1")
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    script = Path(command[4])
    assert script.name == "app.py" and script.is_file()
    assert script.parent.name == "forensics_app"
    assert _options(command) == {
        "--server.port": "8765",
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
        "--server.maxUploadSize": str(MAX_UPLOAD_MB),
        "--server.fileWatcherType": "none",
        "--global.developmentMode": "false",
        "--client.toolbarMode": "viewer",
        "--server.address": "127.0.0.1",
    }
    # Without --address the server listens on loopback only (Streamlit's own default: all).
    assert _options(app_command.streamlit_command())["--server.address"] == "127.0.0.1"
    assert (
        "false"
        == dict(zip(*[iter(app_command.streamlit_command()[5:])] * 2, strict=True))[
            "--server.headless"
        ]
    )


def test_app_runs_streamlit_with_the_pages_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_call(command: list[str], env: dict[str, str], **_: Any) -> int:
        calls.append((command, env))
        return 0

    monkeypatch.setattr(app_command, "run_streamlit", fake_call)
    model = tmp_path / "model"
    model.mkdir()
    argv = [
        "app",
        "--headless",
        "--port",
        "9001",
        "--model",
        str(model),
        "--gallery",
        "grid-10deg",
        "--bench",
        str(tmp_path / "bench"),
        "--world",
        str(tmp_path / "w"),
    ]
    assert cli.main(argv) == 0
    ((command, env),) = calls
    assert command == app_command.streamlit_command(9001, True, "127.0.0.1")
    assert env["GEOFORENSICS_APP_MODEL"] == str(model.resolve())
    assert env["GEOFORENSICS_APP_GALLERY"] == "grid-10deg"
    assert env["GEOFORENSICS_APP_BENCH"] == str((tmp_path / "bench").resolve())
    assert env["GEOFORENSICS_APP_WORLD"] == str((tmp_path / "w").resolve())
    printed = capsys.readouterr()
    assert printed.out.startswith("geoforensics app: http://localhost:9001")
    assert printed.err == ""  # loopback: nothing to warn about


@pytest.mark.parametrize("address", ["0.0.0.0", "192.0.2.10", "::", "archive-desk.example"])
def test_opening_the_app_to_the_network_says_so_in_one_line(
    address: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[list[str]] = []

    def fake_run(command: list[str], env: dict[str, str]) -> int:
        calls.append(command)
        return 0

    monkeypatch.setattr(app_command, "run_streamlit", fake_run)
    assert cli.main(["app", "--headless", "--address", address]) == 0
    assert _options(calls[0])["--server.address"] == address
    printed = capsys.readouterr()
    assert printed.out.startswith(f"geoforensics app: http://{address}:8501")
    (line,) = printed.err.splitlines()
    assert f"listening on {address}:8501" in line and "no login" in line
    assert "reverse proxy" in line and "SSH tunnel" in line


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses_are_not_warned_about(address: str) -> None:
    assert app_command.is_loopback(address)
    assert app_command.network_warning(address, 8501) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["app", "--port", "0"], "--port 0: must be between 1 and 65535"),
        (["app", "--model", "/nowhere/model"], "--model /nowhere/model: no such model folder"),
    ],
)
def test_app_errors_are_one_line(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(app_command, "run_streamlit", lambda *a, **k: pytest.fail("must not start"))
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"geoforensics: error: {message}\n"


def test_stopping_the_app_command_stops_the_server(tmp_path: Path) -> None:
    """SIGTERM to ``geoforensics app`` reaches the server it started (no orphan on the port)."""
    import os
    import signal
    import time

    pid_file = tmp_path / "server.pid"
    server = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    )
    wrapper = (
        "import os, sys; from geoforensics.core.commands.app import run_streamlit; "
        f"sys.exit(run_streamlit([sys.executable, '-c', {server!r}], dict(os.environ)))"
    )
    parent = subprocess.Popen([sys.executable, "-c", wrapper])
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text()):
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) != 0  # the server died of the forwarded SIGTERM
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            pytest.fail("the server outlived geoforensics app")
    finally:
        if parent.poll() is None:
            parent.kill()
