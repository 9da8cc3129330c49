"""A user's terminal shows only what the tool means to say: no native library chatter.

The TFLite runtime behind BirdNET prints ``INFO: Created TensorFlow Lite XNNPACK delegate for
CPU.`` from C++ (file descriptor 2, no Python logging, no environment switch) each time an
interpreter is built. Each command runs in a fresh process so that the interpreters are new.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available

needs_birdnet = pytest.mark.skipif(not birdnet_available(), reason=INSTALL_HINT)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    command = [sys.executable, "-m", "geoforensics.core.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def chirps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rate = 48_000
    t = np.arange(4 * rate) / rate
    tone = 0.3 * np.sin(2 * np.pi * (3000 * t + 80 * np.sin(2 * np.pi * 6 * t)))
    path = tmp_path_factory.mktemp("quiet") / "chirps.wav"
    sf.write(path, tone.astype(np.float32), rate)
    return path


@needs_birdnet
def test_species_command_prints_nothing_on_stderr(chirps: Path) -> None:
    """BirdNET's audio and range interpreters are both built: neither may print."""
    done = _run("species", str(chirps), "--at", "Paris", "--threads", "1")
    assert done.returncode == 0, done.stderr
    assert "XNNPACK" not in done.stderr
    assert done.stderr == ""
    assert done.stdout.strip()  # the command did say something on stdout


@needs_birdnet
def test_the_silencer_hides_native_output_and_restores_stderr(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from geoforensics.core.species.birdnet_files import native_stderr_silenced

    with native_stderr_silenced():
        os.write(2, b"native noise\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
