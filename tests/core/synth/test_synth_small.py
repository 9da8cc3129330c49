"""The `small` synthetic world, written by the CLI, reads back through the real readers (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geoforensics.core import cli
from geoforensics.core.data import XCDC, INatSounds
from geoforensics.core.synth import SyntheticRangeModel

pytestmark = pytest.mark.slow


def test_small_world_reads_back(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("small")
    assert cli.main(["data", "synth", "--preset", "small", "--out", str(root), "--quiet"]) == 0

    splits = {name: INatSounds(root, split=name) for name in ("train", "val", "test")}
    entries = sum(ds.n_entries for ds in splits.values())
    assert 4_500 <= entries <= 5_500
    assert splits["train"].n_missing_location > 0  # as in real data, and skipped
    assert all(ds.n_missing_location == 0 for name, ds in splits.items() if name != "train")
    assert splits["train"].num_classes >= 150
    durations = np.concatenate([ds.durations() for ds in splits.values()])
    assert durations.min() >= 3.0 - 1e-6 and durations.max() <= 60.0 + 1e-6

    # Every annotated species is present at its recording's place (year-round checklist).
    model = SyntheticRangeModel.load(root)
    test = splits["test"]
    coords = test.coords()
    presence = model.presence(coords[:, 0], coords[:, 1])
    labels = test.labels()
    assert (presence[np.arange(len(labels)), labels] >= 0.1).all()

    xcdc = XCDC(root / "xcdc", require_audio=True)
    assert len(xcdc) >= 10
    assert all(len(rec.all_scientific) >= 10 for rec in xcdc)
    assert all(rec.duration is not None and rec.duration >= 180 for rec in xcdc)
    assert all(Path(rec.path).is_file() for rec in xcdc if rec.path is not None)
