"""Markdown tables in the paper's format: values, mean ± std over seeds, captions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.geo.metrics import summarize_errors
from geoforensics.eval.tables import (
    METRIC_COLUMNS,
    describe_dataset,
    grid_table,
    metrics_table,
)


def _row_cells(markdown: str, label: str) -> list[str]:
    for line in markdown.splitlines():
        if line.startswith(f"| {label} |"):
            return [cell.strip() for cell in line.strip().strip("|").split("|")][1:]
    raise AssertionError(f"no row {label!r} in:\n{markdown}")


def test_metrics_table_shows_mean_and_sample_std_over_seeds() -> None:
    # seed 0: median 30 km, 1 of 3 within 25 km; seed 1: median 70 km, none within 25 km.
    seed0 = summarize_errors([10.0, 30.0, 300.0])
    seed1 = summarize_errors([50.0, 70.0, 3000.0])
    table = metrics_table("Table 1", "Data: test.", [("AG-CLIP", [seed0, seed1])])
    header = next(line for line in table.splitlines() if line.startswith("| Method"))
    assert METRIC_COLUMNS[0][1] in header and "2,500 km (%)" in header
    median, acc25, acc200, acc750, acc2500 = _row_cells(table, "AG-CLIP")
    # mean 50, sample std sqrt(((30-50)^2 + (70-50)^2) / 1) = 28.3
    assert median == "50 ± 28"
    # 33.3 % and 0 %: mean 16.7, std 23.6
    assert acc25 == "16.7 ± 23.6"
    assert acc200 == "66.7 ± 0.0"  # 2 of 3 within 200 km in both seeds
    assert acc750 == "83.3 ± 23.6"  # 100 % and 66.7 %
    assert acc2500 == "83.3 ± 23.6"
    assert "Data: test." in table and table.startswith("### Table 1")


def test_single_seed_has_no_plus_minus_and_small_errors_keep_a_decimal() -> None:
    table = metrics_table("T", "c", [("Oracle", [summarize_errors([0.5, 2.5, 4.0])])])
    median, acc25, *_ = _row_cells(table, "Oracle")
    assert median == "2.5"
    assert acc25 == "100.0"
    assert "±" not in table


def test_invalid_predictions_make_the_table_worse_not_better() -> None:
    good = summarize_errors([10.0, 10.0, 10.0, 10.0])
    with_invalid = summarize_errors([10.0, 10.0, np.inf, np.inf])
    table = metrics_table("T", "c", [("good", [good]), ("nan", [with_invalid])])
    assert _row_cells(table, "good")[1] == "100.0"
    assert _row_cells(table, "nan")[1] == "50.0"  # invalid = miss
    assert _row_cells(table, "nan")[0] == "10,013"  # median of 10, 10, pi*R, pi*R


def test_row_without_results_is_an_error() -> None:
    with pytest.raises(InputError, match="no results"):
        metrics_table("T", "c", [("empty", [])])


def test_grid_table_places_cells_and_marks_missing_ones() -> None:
    k1 = [summarize_errors([100.0, 300.0]), summarize_errors([300.0, 500.0])]  # medians 200, 400
    k5 = [summarize_errors([20.0])]
    table = grid_table(
        "Table 3 (right)",
        "Data: XCDC.",
        {"Species oracle": {"1 species": k1, "5 species": k5}, "AG-CLIP": {"5 species": k5}},
        ["1 species", "2 species", "5 species"],
    )
    assert _row_cells(table, "Species oracle") == ["300 ± 141", "–", "20"]
    assert _row_cells(table, "AG-CLIP") == ["–", "–", "20"]
    assert "| Method | 1 species | 2 species | 5 species |" in table
    assert "Median error (km)" in table


def test_grid_table_other_metric() -> None:
    cells = {"m": {"a": [summarize_errors([10.0, 1000.0])]}}
    table = grid_table("T", "c", cells, ["a"], metric="acc@25km")
    assert _row_cells(table, "m") == ["50.0"]
    with pytest.raises(InputError, match="unknown metric"):
        grid_table("T", "c", cells, ["a"], metric="acc@3km")


def _write_world_json(root: Path, synthetic: bool) -> None:
    (root / "world").mkdir(parents=True)
    (root / "world" / "world.json").write_text(
        json.dumps({"synthetic": synthetic, "preset": "tiny", "seed": 7}), encoding="utf-8"
    )


def test_captions_say_synthetic_for_a_synthetic_world_and_its_xcdc_folder(tmp_path: Path) -> None:
    _write_world_json(tmp_path, synthetic=True)
    (tmp_path / "xcdc").mkdir()
    info = describe_dataset(tmp_path)
    assert info.synthetic
    caption = info.caption("test split", 52)
    assert "SYNTHETIC" in caption and "preset tiny" in caption and "seed 7" in caption
    assert "52 recordings" in caption and "test split" in caption
    assert "SYNTHETIC" in info.short_caption("test split")
    xcdc = describe_dataset(tmp_path / "xcdc", "XCDC")
    assert xcdc.synthetic and "SYNTHETIC" in xcdc.caption("XCDC", 3)


def test_captions_of_real_data_name_it_without_synthetic(tmp_path: Path) -> None:
    caption = describe_dataset(tmp_path).caption("test split", 49527)
    assert "SYNTHETIC" not in caption
    assert "iNatSounds 2024" in caption and "49,527 recordings" in caption
    other = tmp_path / "other"
    _write_world_json(other, synthetic=False)
    assert not describe_dataset(other).synthetic


def test_table_2a_holds_the_audio_encoder_rows(tmp_path: Path) -> None:
    from geoforensics.eval.bench import render_tables
    from geoforensics.eval.presets import get_preset
    from geoforensics.eval.results import RowResult
    from geoforensics.eval.rows import BenchData, builtin_rows
    from geoforensics.eval.tables import TABLES

    order = list(TABLES)
    assert order.index("T2a") == order.index("T2") + 1 and "Table 2a" in TABLES["T2a"].title
    rows = builtin_rows()
    encoders = ("encoder-mobilenet", "encoder-clap", "encoder-wav2clip", "encoder-imagenet")
    assert all(rows[name].table == "T2a" for name in encoders)
    assert rows["encoder-mobilenet"].requires == ("agclip",)
    # tables.md puts a T2a row under its own heading, after Table 2.
    (tmp_path / "xcdc_recordings.csv").write_text("audio_id,latitude,longitude\n", encoding="utf-8")
    data = BenchData(tmp_path, get_preset("tiny"))
    truth = np.array([[10.0, 20.0], [30.0, 40.0]])
    results = {
        name: [RowResult(name, rows[name].label, 0, truth, truth, ["a", "b"])]
        for name in ("location-encoder-geoclip", "encoder-mobilenet")
    }
    plan = [rows["location-encoder-geoclip"], rows["encoder-mobilenet"]]
    markdown = render_tables(data, plan, [0], results)
    t2, t2a = markdown.index("### Table 2:"), markdown.index("### Table 2a:")
    assert t2 < markdown.index("| AG-CLIP, MobileNetV3 (the agclip row) |") and t2a > t2
    assert markdown.index("| AG-CLIP, MobileNetV3 (the agclip row) |") > t2a
