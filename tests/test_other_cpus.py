"""The learning tests again, as a CPU without AVX2 or AVX-512 would run them.

Training takes other float paths on other CPUs (kernels, reduction order), so a model trained
for a minute differs from machine to machine. Tests marked ``learning`` assert what a short
training run learned with margins that one or two recordings cannot cross; this test reruns
them in a fresh process with ``ATEN_CPU_CAPABILITY=default`` (torch's portable kernels, what
an old or emulated CPU gets) and two torch threads, so a margin that only holds on the
developer's Xeon fails here rather than on a user's machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def test_learning_tests_hold_with_portable_kernels_and_two_threads(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        ATEN_CPU_CAPABILITY="default",
        GEOFORENSICS_TEST_THREADS="2",
        GEOFORENSICS_CACHE=str(tmp_path / "cache"),
    )
    command = [
        sys.executable, "-m", "pytest", str(TESTS), "-m", "learning and not slow",
        "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "run"),
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, cwd=TESTS.parent, capture_output=True, text=True, timeout=1500
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert "CPU kernels DEFAULT, 2 thread(s)" in done.stdout, done.stdout[-3000:]
    if done.returncode == 5:
        pytest.fail("no test is marked 'learning'")
    assert done.returncode == 0, done.stdout[-6000:]
    assert " passed" in summary and "failed" not in summary, summary
