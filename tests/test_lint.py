"""ruff (lint and format) and mypy are clean on the package: the project's style gate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_and_mypy_are_clean() -> None:
    result = subprocess.run(
        ["bash", str(REPO / ".ci" / "lint")],
        cwd=REPO,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
