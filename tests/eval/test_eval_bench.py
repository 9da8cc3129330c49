"""The bench runner on the tiny synthetic world: rows, resume, reports, CSVs, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from geoforensics.core import cli
from geoforensics.core.errors import DatasetNotFoundError, InputError
from geoforensics.core.geo.metrics import geolocation_metrics
from geoforensics.eval.bench import run_bench
from geoforensics.eval.predictions_csv import (
    load_ground_truth,
    read_predictions_csv,
    score_predictions_csv,
    write_predictions_csv,
)
from geoforensics.eval.results import ResultStore, RowResult
from geoforensics.eval.rows import BenchRow, RowContext, builtin_rows, resolve_rows


@pytest.fixture(scope="session")
def world(tiny_world: Path) -> Path:
    return tiny_world


#: The rows that need no audio model: the naive baselines and the species oracles.
NO_AUDIO_MODEL_ROWS = (
    "naive",
    "naive-xcdc",
    "species-oracle-full",
    "species-oracle-drop50",
    "species-oracle-keep10",
    "species-oracle-full-xcdc",
    "species-oracle-drop50-xcdc",
    "species-oracle-keep10-xcdc",
)


@pytest.fixture(scope="session")
def full_bench(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bench of every row that needs no audio model, on the tiny world."""
    out = tmp_path_factory.mktemp("bench-out")
    run_bench(world, preset="tiny", rows=NO_AUDIO_MODEL_ROWS, out=out, progress=False)
    return out


@pytest.fixture
def bench_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI with the bench command registered (the lead adds it to COMMAND_MODULES)."""
    name = "geoforensics.core.commands.bench"
    if name not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, name))
    yield


# ------------------------------------------------------------------------- the full bench


def test_bench_writes_every_report_file(full_bench: Path, world: Path) -> None:
    for name in ("tables.md", "results.json", "cdf.png", "error_map.png"):
        assert (full_bench / name).is_file(), name
    for name in ("cdf.png", "error_map.png"):
        assert (full_bench / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tables = (full_bench / "tables.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in tables
    assert "Table 1" in tables and "Table 3 (left)" in tables
    assert "| Naive (random train location) |" in tables
    assert "| Species oracle (true checklist) |" in tables
    results = json.loads((full_bench / "results.json").read_text(encoding="utf-8"))
    assert results["dataset"]["synthetic"] is True
    expected_rows = set(NO_AUDIO_MODEL_ROWS)
    assert set(results["rows"]) == expected_rows
    for name in expected_rows:
        assert (full_bench / "predictions" / f"{name}.csv").is_file()
        assert results["rows"][name]["seeds"]["0"]["count"] > 0


def test_prediction_csvs_score_to_the_reported_numbers(full_bench: Path, world: Path) -> None:
    results = json.loads((full_bench / "results.json").read_text(encoding="utf-8"))
    for row, split in (
        ("naive", "test"),
        ("species-oracle-full", "test"),
        ("naive-xcdc", "xcdc"),
        ("species-oracle-full-xcdc", "xcdc"),
    ):
        score = score_predictions_csv(full_bench / "predictions" / f"{row}.csv", world, split)
        reported = results["rows"][row]["seeds"]["0"]
        assert score.metrics.count == reported["count"]
        assert score.metrics.median_km == pytest.approx(reported["median_km"], abs=1e-3)
        assert score.metrics.accuracy[25.0] == pytest.approx(reported["acc@25km"])


def test_species_oracle_beats_the_naive_baseline(full_bench: Path) -> None:
    rows = json.loads((full_bench / "results.json").read_text(encoding="utf-8"))["rows"]
    naive = rows["naive"]["seeds"]["0"]
    oracle = rows["species-oracle-full"]["seeds"]["0"]
    assert oracle["median_km"] < 0.25 * naive["median_km"]
    assert oracle["acc@200km"] > naive["acc@200km"] + 0.2


def test_species_oracle_on_xcdc_uses_the_same_oracle(full_bench: Path) -> None:
    rows = json.loads((full_bench / "results.json").read_text(encoding="utf-8"))["rows"]
    naive = rows["naive-xcdc"]["seeds"]["0"]
    oracle = rows["species-oracle-full-xcdc"]["seeds"]["0"]
    assert oracle["count"] == naive["count"] > 0
    assert oracle["median_km"] < 0.25 * naive["median_km"]
    tables = (full_bench / "tables.md").read_text(encoding="utf-8")
    table3 = tables.split("Table 3 (left)")[1].split("Table 4")[0]
    assert "| Species oracle (true checklist) |" in table3


def test_second_run_reuses_finished_rows(full_bench: Path, world: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in (full_bench / "rows").rglob("result.json")}
    report = run_bench(world, rows=NO_AUDIO_MODEL_ROWS, out=full_bench, progress=False)
    assert report.ran == []
    assert len(report.reused) == len(NO_AUDIO_MODEL_ROWS) and not report.failed
    after = {p: p.stat().st_mtime_ns for p in (full_bench / "rows").rglob("result.json")}
    assert after == before


# --------------------------------------------------------------- resume with counting rows


class CountingRow:
    """A test row that counts its runs; predicts a fixed offset from the truth."""

    def __init__(self, offset_deg: float = 1.0) -> None:
        self.calls: list[int] = []
        self.offset = offset_deg

    def __call__(self, context: RowContext) -> RowResult:
        self.calls.append(context.seed)
        truth = context.data.split("test").coords()
        shifted = truth.copy()
        shifted[:, 0] = np.clip(shifted[:, 0] + self.offset, -90, 90)
        return context.make_result(shifted, {"calls": len(self.calls)})


def _registry(*rows: BenchRow) -> dict[str, BenchRow]:
    return {row.name: row for row in rows}


def test_resume_runs_each_row_and_seed_once(world: Path, tmp_path: Path) -> None:
    counter = CountingRow()
    registry = _registry(BenchRow("count", "Counter", "T1", counter))
    first = run_bench(world, seeds=2, out=tmp_path, progress=False, registry=registry)
    assert counter.calls == [0, 1] and len(first.ran) == 2
    second = run_bench(world, seeds=3, out=tmp_path, progress=False, registry=registry)
    assert counter.calls == [0, 1, 2]  # only the new seed ran
    assert second.reused == [("count", 0), ("count", 1)] and second.ran == [("count", 2)]
    tables = (tmp_path / "tables.md").read_text(encoding="utf-8")
    assert "over 3 seeds" in tables and "±" in tables
    assert (tmp_path / "predictions" / "count.csv").is_file()
    assert (tmp_path / "predictions" / "count.seed2.csv").is_file()
    # another row later: the reports keep the finished one (same settings and seeds)
    other = CountingRow(offset_deg=3.0)
    registry["other"] = BenchRow("other", "Other", "T1", other)
    third = run_bench(world, seeds=3, rows="other", out=tmp_path, progress=False, registry=registry)
    assert third.ran == [("other", s) for s in range(3)] and third.included == ["count"]
    tables = (tmp_path / "tables.md").read_text(encoding="utf-8")
    assert "| Counter |" in tables and "| Other |" in tables
    assert counter.calls == [0, 1, 2]


def test_a_damaged_result_or_changed_settings_are_recomputed(world: Path, tmp_path: Path) -> None:
    counter = CountingRow()
    row = BenchRow("count", "Counter", "T1", counter, uses_gallery=True)
    run_bench(world, seeds=2, out=tmp_path, progress=False, registry=_registry(row))
    np.save(tmp_path / "rows" / "count" / "seed1" / "predictions.npy", np.zeros((3, 2)))
    run_bench(world, seeds=2, out=tmp_path, progress=False, registry=_registry(row))
    assert counter.calls == [0, 1, 1]  # the damaged seed only
    run_bench(world, seeds=2, out=tmp_path, gallery="val", progress=False, registry=_registry(row))
    assert counter.calls == [0, 1, 1, 0, 1]  # another gallery: both seeds again


def test_rows_get_the_results_they_require(world: Path, tmp_path: Path) -> None:
    base = CountingRow(offset_deg=2.0)

    def halve(context: RowContext) -> RowResult:
        parent = context.result("base")
        halfway = (parent.predictions + parent.truth) / 2
        return context.make_result(halfway, {"parent_seed": parent.seed})

    registry = _registry(
        BenchRow("base", "Base", "T1", base),
        BenchRow("half", "Half", "T4", halve, requires=("base",)),
    )
    report = run_bench(world, rows="half", out=tmp_path, progress=False, registry=registry)
    assert report.rows == ["base", "half"]  # the requirement runs first
    store = ResultStore(tmp_path)
    base_errors = store.load("base", 0).errors_km()
    np.testing.assert_allclose(store.load("half", 0).errors_km(), base_errors / 2, rtol=1e-3)
    assert "Table 4" in (tmp_path / "tables.md").read_text(encoding="utf-8")


def test_a_failing_row_is_reported_and_the_others_still_run(world: Path, tmp_path: Path) -> None:
    def broken(context: RowContext) -> RowResult:
        raise InputError("model.safetensors: missing")

    def child(context: RowContext) -> RowResult:
        raise AssertionError("must not run when its requirement failed")

    counter = CountingRow()
    registry = _registry(
        BenchRow("broken", "Broken", "T1", broken),
        BenchRow("child", "Child", "T1", child, requires=("broken",)),
        BenchRow("ok", "OK", "T1", counter),
    )
    report = run_bench(world, out=tmp_path, progress=False, registry=registry)
    assert report.failed[("broken", 0)] == "model.safetensors: missing"
    assert "broken" in report.failed[("child", 0)]
    assert report.ran == [("ok", 0)]
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert results["rows"]["broken"]["failed"] == {"0": "model.safetensors: missing"}
    # a row that fails after its settings changed never shows its old, stale result
    registry["ok"] = BenchRow("ok", "OK", "T1", broken, version=2)
    report = run_bench(world, rows="ok", out=tmp_path, progress=False, registry=registry)
    assert ("ok", 0) in report.failed
    assert "| OK |" not in (tmp_path / "tables.md").read_text(encoding="utf-8")


def test_unknown_rows_and_cycles_are_errors() -> None:
    rows = builtin_rows()
    with pytest.raises(InputError, match="unknown bench row"):
        resolve_rows(["nope"], rows)
    noop = CountingRow()
    cyclic = _registry(
        BenchRow("a", "A", "T1", noop, requires=("b",)),
        BenchRow("b", "B", "T1", noop, requires=("a",)),
    )
    with pytest.raises(InputError, match="cycle"):
        resolve_rows(["a"], cyclic)
    with pytest.raises(InputError, match="needs a column"):
        BenchRow("g", "G", "T3-species", noop)


def test_bad_data_folder_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        run_bench(tmp_path / "missing", progress=False)
    with pytest.raises(DatasetNotFoundError, match=r"test\.json"):
        run_bench(tmp_path, progress=False)


# -------------------------------------------------------------------------------- the CLI


def test_cli_bench_bad_data_prints_one_line(
    bench_cli: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["bench", "--data", str(tmp_path / "nowhere"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert err.startswith("geoforensics: error:") and "nowhere" in err and "\n" not in err


def test_cli_bench_and_score(
    bench_cli: None, world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["bench", "--data", str(world), "--rows", "naive", "--seeds", "2", "--out", str(out)]
    assert cli.main([*args, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "2 row runs computed, 0 reused" in printed and "naive" in printed
    assert cli.main([*args, "--quiet"]) == 0
    assert "0 row runs computed, 2 reused" in capsys.readouterr().out
    csv = out / "predictions" / "naive.csv"
    assert cli.main(["score", str(csv), "--data", str(world), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["count"] == len(load_ground_truth(world, "test").ids)
    assert cli.main(["bench", "--list-rows"]) == 0
    assert "species-oracle-full" in capsys.readouterr().out


# ------------------------------------------------------------------- results and CSV files


def _result(n: int = 4, **changes: object) -> RowResult:
    truth = np.column_stack([np.linspace(-40, 40, n), np.linspace(-100, 100, n)])
    fields: dict[str, object] = {
        "row": "demo",
        "method": "Demo",
        "seed": 3,
        "predictions": truth + 0.1,
        "truth": truth,
        "ids": [f"r{i}" for i in range(n)],
        "dates": ["2021-05-01T06:00:00"] * (n - 1) + [None],
        "extra": {"loss": float("nan"), "epochs": np.int64(3)},
        "arrays": {"embeddings": np.arange(n * 3, dtype=np.float32).reshape(n, 3)},
    }
    fields.update(changes)
    return RowResult(**fields)  # type: ignore[arg-type]


def test_row_result_round_trip_and_checksums(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    original = _result()
    store.save(original, {"gallery": ["train"]})
    loaded = store.load("demo", 3)
    np.testing.assert_array_equal(loaded.predictions, original.predictions)
    np.testing.assert_array_equal(loaded.arrays["embeddings"], original.arrays["embeddings"])
    assert loaded.ids == original.ids and loaded.dates == original.dates
    assert loaded.extra == {"loss": None, "epochs": 3}  # strict JSON: NaN -> null
    assert store.is_finished("demo", 3, {"gallery": ["train"]})
    assert not store.is_finished("demo", 3, {"gallery": ["land-1deg"]})
    np.save(tmp_path / "rows" / "demo" / "seed3" / "array_embeddings.npy", np.zeros((4, 3)))
    assert not store.is_finished("demo", 3)
    with pytest.raises(InputError, match="checksum"):
        store.load("demo", 3)


def test_row_result_scores_invalid_predictions_as_misses() -> None:
    result = _result(predictions=np.array([[np.nan, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))
    assert result.metrics().n_invalid == 1
    assert np.isinf(result.errors_km()[0])
    with pytest.raises(InputError, match="not unique"):
        _result(ids=["a", "a", "b", "c"])
    with pytest.raises(InputError, match="3 predictions for 4"):
        _result(predictions=np.zeros((3, 2)))
    with pytest.raises(InputError, match="row name"):
        _result(row="../escape")


def test_predictions_csv_round_trip_and_validation(tmp_path: Path) -> None:
    ids = ["a1", "b2", "c3"]
    coords = np.array([[10.123456789, -20.5], [-89.9, 179.9], [0.0, 0.0]])
    path = write_predictions_csv(tmp_path / "p.csv", ids, coords)
    assert path.read_text().splitlines()[0] == "audio_id,latitude,longitude"
    table = read_predictions_csv(path)
    assert table.ids == ids
    np.testing.assert_allclose(table.coords, coords, atol=1e-7)

    def bad(text: str, match: str) -> None:
        file = tmp_path / "bad.csv"
        file.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=match):
            read_predictions_csv(file)

    bad("id,lat,lon\nx,1,2\n", "lacks audio_id, latitude, longitude")
    bad("audio_id,latitude,longitude\nx,1,2\ny,nan,3\n", "line 3: latitude is 'nan'")
    bad("audio_id,latitude,longitude\nx,1,2\nx,1,2\n", "line 3: audio_id 'x' repeats line 2")
    bad("audio_id,latitude,longitude\nx,1,200\n", "line 2: longitude 200.0 outside")
    bad("audio_id,latitude,longitude\nx,north,2\n", "line 2: latitude 'north' is not a number")
    bad("audio_id,latitude,longitude\n", "no predictions")
    # column order and extra columns do not matter
    file = tmp_path / "reordered.csv"
    file.write_text("longitude,note,audio_id,latitude\n5,hi,z,6\n", encoding="utf-8")
    assert read_predictions_csv(file).coords.tolist() == [[6.0, 5.0]]


def test_score_predictions_csv_checks_ids_against_the_data(world: Path, tmp_path: Path) -> None:
    truth = load_ground_truth(world, "test")
    path = write_predictions_csv(tmp_path / "all.csv", truth.ids[::-1], truth.coords[::-1] + 0.5)
    score = score_predictions_csv(path, world, "test")
    expected = geolocation_metrics(truth.coords + 0.5, truth.coords)
    assert score.metrics.median_km == pytest.approx(expected.median_km)
    missing = write_predictions_csv(tmp_path / "missing.csv", truth.ids[1:], truth.coords[1:])
    with pytest.raises(InputError, match=f"1 of {len(truth.ids)} .* no prediction"):
        score_predictions_csv(missing, world, "test")
    extra = write_predictions_csv(
        tmp_path / "extra.csv", [*truth.ids, "stranger"], np.vstack([truth.coords, [[0, 0]]])
    )
    with pytest.raises(InputError, match="'stranger' is not in"):
        score_predictions_csv(extra, world, "test")
    with pytest.raises(InputError, match="split"):
        score_predictions_csv(path, world, "holdout")


# ------------------------------------------------------------------------ trained rows


@pytest.mark.slow
def test_trained_rows_wire_training_inference_aggregation_and_galleries(
    world: Path, tmp_path: Path
) -> None:
    rows = (
        "agclip,aggregation-none,aggregation-h3r5,gallery-train,agclip-xcdc,regression-mse,"
        "hierarchical"
    )
    report = run_bench(world, preset="tiny", rows=rows, out=tmp_path, progress=False)
    assert not report.failed
    assert set(report.rows) >= {"classification-r0", "classification-r1", "classification-r2"}
    store = ResultStore(tmp_path)
    agclip = store.load("agclip", 0)
    embeddings = agclip.arrays["embeddings"]
    assert embeddings.shape == (len(agclip), 512)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    assert (Path(agclip.extra["model_dir"]) / "model.safetensors").is_file()
    # the bench gallery is the train split's locations: the same retrieval as the A1 row
    np.testing.assert_array_equal(store.load("gallery-train", 0).predictions, agclip.predictions)
    np.testing.assert_array_equal(store.load("aggregation-none", 0).predictions, agclip.predictions)
    assert len(store.load("agclip-xcdc", 0)) == len(load_ground_truth(world, "xcdc").ids)
    regression = store.load("regression-mse", 0)
    assert np.isfinite(regression.predictions).all()
    # the hierarchical prediction is a res-2 cell inside the res-0 classifier's choice
    import h3

    hierarchical = store.load("hierarchical", 0).predictions
    coarse = store.load("classification-r0", 0).predictions
    for fine, top in zip(hierarchical, coarse, strict=True):
        cell = h3.latlng_to_cell(float(fine[0]), float(fine[1]), 2)
        assert h3.cell_to_parent(cell, 0) == h3.latlng_to_cell(float(top[0]), float(top[1]), 0)
    tables = (tmp_path / "tables.md").read_text(encoding="utf-8")
    for title in ("Table 1", "Table 3 (left)", "Table 4", "Table A1"):
        assert title in tables
    again = run_bench(world, preset="tiny", rows=rows, out=tmp_path, progress=False)
    assert again.ran == [] and len(again.reused) == len(report.rows) == 10
