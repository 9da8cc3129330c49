"""Where the tests find the checkout and their data, wherever a test file sits under tests/."""

from __future__ import annotations

from pathlib import Path

#: The tests folder (conftest.py, data/).
TESTS = Path(__file__).resolve().parent
#: The repository root (core/, assets/, forensics_app/ ...).
REPO = TESTS.parent
