"""Split-conformal thresholds and calibration files: quantiles, round trip, damaged files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo.calibration import (
    Calibration,
    calibrate,
    conformal_threshold,
    find_calibration,
    gallery_setting,
    load_calibrations,
    save_calibration,
    species_setting,
)
from geoforensics.core.geo.regions import RegionGrid, confidence_regions


def test_conformal_threshold_is_the_finite_sample_quantile() -> None:
    scores = np.arange(1, 11) / 10.0  # n = 10
    assert conformal_threshold(scores, 0.5) == pytest.approx(0.6)  # ceil(11 * 0.5) = 6th
    assert conformal_threshold(scores, 0.8) == pytest.approx(0.9)  # ceil(8.8) = 9th
    assert math.isinf(conformal_threshold(scores, 0.95))  # ceil(10.45) = 11 > n
    assert conformal_threshold(np.r_[scores, np.inf], 0.5) == pytest.approx(0.6)
    with pytest.raises(InputError, match="no calibration scores"):
        conformal_threshold([], 0.9)
    with pytest.raises(InputError, match="level"):
        conformal_threshold(scores, 1.5)


def _entry(kind: str = "agclip", gallery: str = "g1", t90: float = 0.93) -> Calibration:
    return Calibration(
        kind=kind,
        setting={"gallery": gallery, "gallery_sha256": "abc"},
        thresholds={0.5: 0.41, 0.9: t90, 0.95: math.inf},
        n=57,
        res=3,
        max_km=640.0,
        data="world val split",
        coverage_at_raw={0.5: 0.6, 0.9: 0.8, 0.95: 0.85},
    )


def test_calibration_file_round_trips_and_replaces_a_setting(tmp_path: Path) -> None:
    path = tmp_path / "model" / "calibration.json"
    save_calibration(path, _entry())
    save_calibration(path, _entry(gallery="g2"))
    save_calibration(path, _entry(t90=0.97))  # same kind and setting: replaced
    entries = load_calibrations(path)
    assert [e.setting["gallery"] for e in entries] == ["g2", "g1"]
    loaded = entries[1]
    assert loaded.threshold(0.9) == 0.97 and math.isinf(loaded.threshold(0.95) or 0.0)
    assert loaded.threshold(0.8) is None
    assert loaded == _entry(t90=0.97)
    assert json.loads(path.read_text())["entries"][1]["thresholds"]["0.95"] == "inf"
    assert sorted(p.name for p in path.parent.iterdir()) == ["calibration.json"]  # atomic
    found, note = find_calibration(path, "agclip", {"gallery": "g2", "gallery_sha256": "abc"})
    assert found is not None and "57 items" in note
    missing, note = find_calibration(path, "agclip", {"gallery": "g3"})
    assert missing is None and note.startswith("uncalibrated") and "gallery=g3" in note
    assert find_calibration(tmp_path / "none.json", "agclip", {})[0] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": "geoforensics-calibration", "version": 1, "entr', "damaged calibration file"),
        ("[1, 2]", "not a geoforensics calibration file"),
        ('{"format": "geoforensics-calibration", "version": 7, "entries": []}', "version 7"),
        ('{"format": "geoforensics-calibration", "version": 1, "entries": [{"kind": "agclip"}]}',
         "damaged calibration entry"),
        ('{"format": "geoforensics-calibration", "version": 1, "entries": [{"kind": "agclip", '
         '"setting": {}, "thresholds": {"0.9": 3.0}, "n": 5, "h3_res": 3, "max_km": 500}]}',
         "bad threshold"),
    ],
)  # fmt: skip
def test_damaged_file_gives_a_one_line_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_calibrations(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError):
        find_calibration(path, "agclip", {})


def test_regions_use_a_calibration() -> None:
    coords = np.array([[48.0, 10.0], [49.0, 11.5], [47.0, 8.0], [52.0, 13.0], [41.0, 2.0]])
    grid = RegionGrid.build(coords, res=2, max_km=500.0)
    probs = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    truth = np.array([[49.0, 11.5], [52.0, 13.0], [41.0, 2.0], [48.0, 10.0]])
    scores = np.concatenate([grid.scores(probs, t) for t in truth])
    assert scores[3] == 0.0  # the top place's cell is in every region
    entry = calibrate("agclip", gallery_setting("five", coords), grid, scores, levels=(0.5,))
    assert entry.n == 4 and entry.res == 2 and entry.max_km == 500.0
    region = confidence_regions(probs, coords, entry, levels=(0.5, 0.9))
    assert region[0].calibrated and region[0].threshold == entry.threshold(0.5)
    assert not region[1].calibrated and "no 0.9 level" in region[1].source
    assert entry.setting["gallery"] == "five" and len(entry.setting["gallery_sha256"]) == 64
    setting = species_setting("world:X", "draw", True, "g", coords, False)
    assert setting["week_known"] is True and setting["range_model"] == "world:X"
