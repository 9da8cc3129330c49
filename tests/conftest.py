"""Shared test setup: every test session gets its own empty cache folder and one torch thread
count.

Learned results depend on the float path: the CPU's kernels (``ATEN_CPU_CAPABILITY``) and
torch's thread count (reduction order). Each test starts with the thread count of
``$GEOFORENSICS_TEST_THREADS`` (default 1), so the suite runs the same way on a 2-core laptop
and a 64-core server, and ``GEOFORENSICS_TEST_THREADS=2`` reruns it with other reductions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

#: Environment variable: torch threads for every test (default 1).
TEST_THREADS_ENV = "GEOFORENSICS_TEST_THREADS"


def test_threads() -> int:
    """The torch thread count tests run with (``$GEOFORENSICS_TEST_THREADS``, default 1)."""
    value = os.environ.get(TEST_THREADS_ENV, "1")
    try:
        threads = int(value)
    except ValueError:
        raise pytest.UsageError(f"{TEST_THREADS_ENV}={value!r}: not a whole number") from None
    if threads < 1:
        raise pytest.UsageError(f"{TEST_THREADS_ENV}={value!r}: must be at least 1")
    return threads


test_threads.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test

# hypothesis keeps its example database in the working directory unless told otherwise.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY",
    str(Path(os.environ.get("TMPDIR", "/tmp")) / "geoforensics-hypothesis"),
)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point $GEOFORENSICS_CACHE at a fresh folder so tests never read a user's cache."""
    cache = tmp_path_factory.mktemp("geoforensics-cache")
    previous = os.environ.get("GEOFORENSICS_CACHE")
    os.environ["GEOFORENSICS_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("GEOFORENSICS_CACHE", None)
    else:
        os.environ["GEOFORENSICS_CACHE"] = previous


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    """Every test starts at the session's thread count; a test that changes it cannot leak."""
    torch.set_num_threads(test_threads())
    yield
    torch.set_num_threads(test_threads())


def pytest_report_header(config: pytest.Config) -> str:
    capability = torch.backends.cpu.get_cpu_capability()
    return f"torch {torch.__version__}: CPU kernels {capability}, {test_threads()} thread(s)"


@pytest.fixture(scope="session")
def tiny_agclip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny AG-CLIP model folder (test_tiny encoder, random weights seeded 0, GeoCLIP
    location space, non-trivial BatchNorm statistics): fast tests of every AG-CLIP path."""
    from geoforensics.core.models import AudioGeolocator, ModelConfig, save_model

    torch.manual_seed(0)
    model = AudioGeolocator(ModelConfig("agclip", "test_tiny", n_species=6, h3_resolution=0))
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 64, 64))
    folder = tmp_path_factory.mktemp("tiny-agclip")
    save_model(model.eval(), folder)
    return folder


@pytest.fixture(scope="session")
def train_micro_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SYNTHETIC world (80 recordings, 1 XCDC chorus) shared by the training tests."""
    from geoforensics.core.synth import generate_world, get_config
    from geoforensics.core.synth.world import scaled

    root = tmp_path_factory.getbasetemp() / "train-micro-world-seed0"
    if not (root / "world" / "world.json").is_file():
        micro = scaled(
            get_config("tiny"), name="micro", n_recordings=80, n_xcdc=1, xcdc_minutes=(0.2, 0.3)
        )
        generate_world(root, micro, seed=0, progress=False, force=True)
    return root


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SYNTHETIC world (seed 0), generated once per session for every test that reads
    it (the bench, fusion, location-encoder and oracle rows, the learning tests). Tests read it
    and write their outputs elsewhere."""
    from geoforensics.core.synth import generate_world

    root = tmp_path_factory.getbasetemp() / "tiny-world-seed0"
    if not (root / "world" / "world.json").is_file():
        generate_world(root, "tiny", seed=0, progress=False, force=True)
    return root
