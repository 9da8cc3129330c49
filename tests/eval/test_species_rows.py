"""Species-range geolocation rows of the bench (eval/rows/species.py) on a tiny synthetic world."""

from __future__ import annotations

import ast
import csv
import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from geoforensics.core.fileio import sha256_file
from geoforensics.core.geo.metrics import geolocation_errors
from geoforensics.core.geo.ranking import region_probability, score_map
from geoforensics.core.species import birdnet_files
from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available
from geoforensics.eval.bench import run_bench
from geoforensics.eval.presets import get_preset
from geoforensics.eval.results import ResultStore
from geoforensics.eval.rows import BenchData, RowRegistry, builtin_rows
from geoforensics.eval.rows.species import (
    ANNOTATED_ROW,
    ANNOTATED_XCDC_ROW,
    SUBSET_DRAWS,
    SUBSET_SIZES,
    subset_row_name,
)
from geoforensics.eval.species_ranking import GalleryRanker, recording_week

SUBSET_ROWS = tuple(subset_row_name(k) for k in SUBSET_SIZES)
ROWS = ("naive", "naive-xcdc", ANNOTATED_ROW, ANNOTATED_XCDC_ROW, *SUBSET_ROWS)
PREDICTED_ROWS = (
    "species-range-top1",
    "species-range-weighted",
    "species-range-top1-xcdc",
    "species-range-weighted-xcdc",
)


@pytest.fixture(scope="session")
def species_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny world with 150 species (dawn choruses of 11-16 species) and 12 short choruses."""
    from geoforensics.core.synth import generate_world, get_config
    from geoforensics.core.synth.world import scaled

    root = tmp_path_factory.mktemp("species-rows") / "world"
    config = scaled(
        get_config("tiny"), name="species-rows", n_species=150, n_xcdc=12, xcdc_minutes=(0.05, 0.1)
    )
    generate_world(root, config, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def species_bench(species_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("species-bench")
    report = run_bench(species_world, rows=ROWS, out=out, progress=False)
    assert not report.failed, report.failed
    return out


def _rows(out: Path) -> dict[str, dict]:
    rows: dict[str, dict] = json.loads((out / "results.json").read_text(encoding="utf-8"))["rows"]
    return rows


def _median(rows: dict[str, dict], name: str) -> float:
    return float(rows[name]["seeds"]["0"]["median_km"])


def _copy_without_audio(world: Path, target: Path, with_world: bool = True) -> Path:
    """The annotation files, the XCDC CSV and (optionally) world/ of a synthetic world."""
    target.mkdir(parents=True)
    for name in ("train.json", "val.json", "test.json"):
        shutil.copy(world / name, target / name)
    (target / "xcdc").mkdir()
    shutil.copy(world / "xcdc" / "xcdc_recordings.csv", target / "xcdc" / "xcdc_recordings.csv")
    if with_world:
        shutil.copytree(world / "world", target / "world")
    return target


# ------------------------------------------------------------------------------ the rows


def test_annotated_species_rows_beat_naive(species_bench: Path) -> None:
    rows = _rows(species_bench)
    assert _median(rows, ANNOTATED_ROW) < 0.5 * _median(rows, "naive")
    assert _median(rows, ANNOTATED_XCDC_ROW) < 0.5 * _median(rows, "naive-xcdc")
    for name in (ANNOTATED_ROW, ANNOTATED_XCDC_ROW):
        extra = rows[name]["extra"]["0"]
        assert extra["range_model"] == "synthetic"
        assert extra["n_unmatched_species"] == 0 and extra["unmatched_species"] == []
        assert extra["recordings_with_week"] > 0  # the recording dates pick week tables
        assert extra["range_tables"] >= 2
    assert rows[ANNOTATED_XCDC_ROW]["extra"]["0"]["mean_species_per_recording"] > 5
    tables = (species_bench / "tables.md").read_text(encoding="utf-8")
    assert "| Species range (annotated species) |" in tables.split("Table 3")[0]
    assert "| Species range (true species) |" in tables.split("Table 3 (left)")[1]


def test_subset_grid_table_and_more_species_help(species_bench: Path) -> None:
    tables = (species_bench / "tables.md").read_text(encoding="utf-8")
    grid = tables.split("Table 3 (right)")[1]
    assert "| Method | 1 species | 2 species | 5 species | 10 species |" in grid
    assert "| Species range (k random true species) |" in grid
    rows = _rows(species_bench)
    medians = [_median(rows, name) for name in SUBSET_ROWS]
    assert medians[-1] <= medians[0]
    pooled = [rows[name]["extra"]["0"]["pooled_over_draws"]["median_km"] for name in SUBSET_ROWS]
    assert pooled[-1] <= pooled[0]
    for name, k in zip(SUBSET_ROWS, SUBSET_SIZES, strict=True):
        assert rows[name]["column"] == f"{k} species"


def test_subset_rows_keep_every_draw_and_report_the_median_draw(species_bench: Path) -> None:
    store = ResultStore(species_bench)
    for name, k in zip(SUBSET_ROWS, SUBSET_SIZES, strict=True):
        result = store.load(name, 0)
        draws = result.arrays["draw_predictions"]
        assert draws.shape == (len(result), SUBSET_DRAWS, 2)
        errors = geolocation_errors(
            draws.reshape(-1, 2), np.repeat(result.truth, SUBSET_DRAWS, axis=0)
        ).reshape(len(result), SUBSET_DRAWS)
        np.testing.assert_allclose(result.errors_km(), np.median(errors, axis=1), rtol=1e-9)
        extra = result.extra
        assert extra["k"] == k and extra["draws"] == SUBSET_DRAWS
        pooled = extra["pooled_over_draws"]
        assert pooled["count"] == len(result) * SUBSET_DRAWS
        assert pooled["median_km"] == pytest.approx(float(np.median(errors)), rel=1e-9)
        if k == 1:  # 11-16 species per chorus: single species differ between draws
            assert extra["recordings_with_at_most_k_species"] == 0
            assert len({tuple(p) for p in draws[0]}) > 1
        if k == 10:
            assert extra["recordings_with_at_most_k_species"] == 0


def test_second_run_reuses_and_inputs_name_the_range_model(
    species_bench: Path, species_world: Path
) -> None:
    report = run_bench(species_world, rows=ROWS, out=species_bench, progress=False)
    assert report.ran == [] and len(report.reused) == len(ROWS)
    registry = builtin_rows()
    data = BenchData(species_world, get_preset("tiny"))
    inputs = registry[ANNOTATED_ROW].inputs
    assert inputs is not None
    sha = sha256_file(species_world / "world" / "range_model.npz")
    assert inputs(data)["range_model_sha256"] == sha
    subset_inputs = registry[subset_row_name(5)].inputs
    assert subset_inputs is not None and subset_inputs(data)["k"] == 5


def test_unmatched_names_are_counted_and_reported(species_world: Path, tmp_path: Path) -> None:
    root = _copy_without_audio(species_world, tmp_path / "copy")
    path = root / "xcdc" / "xcdc_recordings.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        table = list(csv.DictReader(fh))
    header = list(table[0])
    first = ast.literal_eval(table[0]["all_scientific"])
    table[0]["all_scientific"] = repr([*first, "Fakus inventus", "Nullus nemo"])
    table[1]["all_scientific"] = repr(["Fakus inventus"])  # nothing the range model knows
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    out = tmp_path / "out"
    report = run_bench(root, rows=[ANNOTATED_XCDC_ROW, subset_row_name(2)], out=out, progress=False)
    assert not report.failed, report.failed
    for name in (ANNOTATED_XCDC_ROW, subset_row_name(2)):
        extra = _rows(out)[name]["extra"]["0"]
        assert extra["unmatched_species"] == ["Fakus inventus", "Nullus nemo"]
        assert extra["n_unmatched_species"] == 2
        assert extra["recordings_with_unmatched_species"] == 2
        assert extra["recordings_without_matched_species"] == 1
        assert extra["recordings_predicted_from_prior"] >= 1
    result = ResultStore(out).load(ANNOTATED_XCDC_ROW, 0)
    assert np.isfinite(result.predictions).all()  # the prior's mode, not a miss


def test_rows_without_a_range_model_say_why(
    species_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(birdnet_files, "birdnet_available", lambda: False)
    root = _copy_without_audio(species_world, tmp_path / "no-world", with_world=False)
    registry: RowRegistry = builtin_rows("species")
    report = run_bench(root, out=tmp_path / "out", progress=False, registry=registry)
    assert report.ran == [] and set(report.skipped) == set(registry)
    for name in (ANNOTATED_ROW, ANNOTATED_XCDC_ROW, *SUBSET_ROWS):
        reason = report.skipped[name]
        assert "needs a range model" in reason and "not a synthetic world" in reason
        assert INSTALL_HINT in reason
    for name in PREDICTED_ROWS:
        assert "BirdNET" in report.skipped[name] and INSTALL_HINT in report.skipped[name]


def test_predicted_rows_are_unavailable_on_synthetic_data(species_world: Path) -> None:
    registry = builtin_rows()
    data = BenchData(species_world, get_preset("tiny"))
    for name in PREDICTED_ROWS:
        check = registry[name].unavailable
        assert check is not None
        reason = check(data)
        assert reason is not None and "SYNTHETIC" in reason
    for name in (ANNOTATED_ROW, ANNOTATED_XCDC_ROW, *SUBSET_ROWS):
        check = registry[name].unavailable
        assert check is not None and check(data) is None


@pytest.mark.slow
@pytest.mark.skipif(not birdnet_available(), reason=INSTALL_HINT)
def test_predicted_rows_run_birdnet_when_asked(species_world: Path, tmp_path: Path) -> None:
    """Plumbing only: asked for explicitly, the rows run BirdNET on the (synthetic) audio."""
    rows = ("species-range-top1", "species-range-weighted")
    report = run_bench(species_world, rows=rows, out=tmp_path, progress=False)
    assert not report.failed, report.failed
    results = _rows(tmp_path)
    top1 = results["species-range-top1"]["extra"]["0"]
    assert top1["range_model"] == "birdnet" and top1["weighting"] == "top1"
    assert top1["mean_species_per_recording"] == 1.0
    assert len(top1["audio_model_sha256"]) == 64
    weighted = results["species-range-weighted"]["extra"]["0"]
    assert weighted["weighting"] == "weighted"
    for name in rows:
        assert results[name]["seeds"]["0"]["count"] == len(
            BenchData(species_world, get_preset("tiny")).split("test")
        )
        assert results[name]["seeds"]["0"]["n_invalid"] == 0


# ------------------------------------------------------------------------ small pieces


def test_recording_week_uses_date_then_month() -> None:
    assert recording_week(datetime(2021, 5, 16)) == 19  # May, days 15-21
    assert recording_week(None, 5) == 18  # middle of May
    assert recording_week(None, None) == -1
    assert recording_week(None, 13) == -1


def test_rankings_pick_the_region_then_its_peak() -> None:
    rng = np.random.default_rng(3)
    coords = np.column_stack([rng.uniform(-60, 70, 400), rng.uniform(-180, 180, 400)])
    coords[:40] = np.array([10.0, 20.0]) + rng.normal(0, 2.0, (40, 2))  # a dense cluster
    log_post = rng.normal(0, 1.0, 400)
    log_post[:40] += 2.0
    log_post[300] = 6.0  # one isolated sharp peak outside the cluster
    probs = score_map(log_post)
    region = region_probability(probs, coords, 500.0)
    by_region = GalleryRanker(coords, "region").best(log_post)
    assert region[by_region] == pytest.approx(region.max(), rel=1e-12)  # ties: more probable
    peak = GalleryRanker(coords, "region-peak").best(log_post)
    inside = geolocation_errors(coords, np.repeat(coords[[by_region]], 400, axis=0)) <= 500.0
    assert inside[peak] and probs[peak] == probs[inside].max()
    assert GalleryRanker(coords, "argmax").best(log_post) == 300
    mode = GalleryRanker(coords, "region").prior_mode()
    assert mode < 40  # the uniform prior's region mode is in the dense cluster
