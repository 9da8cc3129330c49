"""The bench on an XCDC folder alone (no iNatSounds-format splits): the rows that need no
training run, their prediction CSVs are in the public scorer's format with exactly the gold
ids, their numbers equal those of the same rows on the full world, and every other row is
listed as unavailable with the reason."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from repo_paths import REPO
from tiny_towers import write_tiny_taxabind

from geoforensics.core import cli
from geoforensics.core.errors import DatasetNotFoundError, InputError, WeightsNotFoundError
from geoforensics.eval.bench import run_bench
from geoforensics.eval.predictions_csv import score_predictions_csv
from geoforensics.eval.presets import get_preset
from geoforensics.eval.results import ResultStore
from geoforensics.eval.rows import BenchData, builtin_rows
from geoforensics.eval.rows.species import ANNOTATED_XCDC_ROW, SUBSET_SIZES, subset_row_name

#: A trained AG-CLIP model folder shipped with the package (for the model-xcdc row).
DEMO_MODEL = REPO / "assets" / "models" / "demo_agclip"
#: The rows that run from XCDC alone here (the predicted-species rows need BirdNET).
XCDC_ROWS = (
    ANNOTATED_XCDC_ROW,
    *(subset_row_name(k) for k in SUBSET_SIZES),
    "model-xcdc",
    "taxabind-xcdc",
)
#: Rows that need iNatSounds: train locations, a trained row, an oracle trained on train.
INAT_ROWS = ("naive-xcdc", "agclip-xcdc", "species-oracle-full-xcdc")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny world (seed 0) with 12-18 s choruses instead of 2-3 min (the model rows read
    every window of every chorus; the species rows are the same either way)."""
    from geoforensics.core.synth import generate_world, get_config
    from geoforensics.core.synth.world import scaled

    root = tmp_path_factory.mktemp("xcdc-only") / "world-tiny"
    config = scaled(get_config("tiny"), name="tiny-short-choruses", xcdc_minutes=(0.2, 0.3))
    generate_world(root, config, seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def xcdc_only(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The world's XCDC part alone (CSV + audio) in a fresh folder."""
    target = tmp_path_factory.mktemp("xcdc-alone") / "xcdc"
    shutil.copytree(world / "xcdc", target)
    assert not (target / "test.json").exists() and not (target / "world").exists()
    return target


@pytest.fixture(scope="module")
def gallery_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 4-degree grid (4,050 points): the same gallery for both runs, cheap to embed."""
    lat, lon = np.meshgrid(np.arange(-88.0, 90.0, 4.0), np.arange(-178.0, 180.0, 4.0))
    path = tmp_path_factory.mktemp("gallery") / "grid4.npy"
    np.save(path, np.stack([lat.ravel(), lon.ravel()], axis=1))
    return f"file:{path}"


def _gold_ids(xcdc: Path) -> list[str]:
    with open(xcdc / "xcdc_recordings.csv", newline="", encoding="utf-8") as fh:
        return [row["audio_id"] for row in csv.DictReader(fh)]


def _check_scorer_format(path: Path, gold: list[str]) -> None:
    """What the public scorer (evaluate_geo.py) needs: the columns audio_id, latitude,
    longitude; the set of ids equal to the gold file's; coordinates in range."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    assert header == ["audio_id", "latitude", "longitude"], path
    ids = [r[0] for r in rows]
    assert sorted(ids) == sorted(gold) and len(set(ids)) == len(ids), path
    for _, lat, lon in rows:
        assert math.isfinite(float(lat)) and -90 <= float(lat) <= 90
        assert math.isfinite(float(lon)) and -180 <= float(lon) <= 180


def test_xcdc_rows_run_alone_and_equal_the_full_world(
    world: Path,
    xcdc_only: Path,
    gallery_file: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from geoforensics.core.models.taxabind import TAXABIND_ENV

    monkeypatch.setenv(TAXABIND_ENV, str(write_tiny_taxabind(tmp_path / "taxabind")))
    alone_out, full_out = tmp_path / "alone", tmp_path / "full"
    # The CLI on the XCDC folder alone, every row (no --rows): the others say why not.
    argv = ["bench", "--data", str(xcdc_only), "--xcdc", str(xcdc_only), "--out", str(alone_out)]
    argv += ["--gallery", gallery_file, "--range-model", f"world:{world}"]
    assert cli.main([*argv, "--model", str(DEMO_MODEL), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "skipped naive-xcdc: needs the iNatSounds-format data set" in printed
    alone = json.loads((alone_out / "results.json").read_text(encoding="utf-8"))
    assert sorted(alone["rows"]) == sorted(XCDC_ROWS)
    assert alone["dataset"]["inatsounds"] is False
    for name in (*INAT_ROWS, "agclip", "naive", "species-range-annotated"):
        assert "needs the iNatSounds-format data set" in alone["skipped_rows"][name], name
    assert "trains on the train split" in alone["skipped_rows"]["species-oracle-full-xcdc"]
    tables = (alone_out / "tables.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in tables and "Table 3 (right)" in tables and "XCDC only" in tables

    # The same rows on the full world, same gallery and range model (the world's own).
    full = run_bench(
        world, rows=XCDC_ROWS, out=full_out, gallery=gallery_file, model=DEMO_MODEL,
        progress=False,
    )  # fmt: skip
    assert not full.failed and len(full.ran) == len(XCDC_ROWS)
    gold = _gold_ids(xcdc_only)
    alone_store, full_store = ResultStore(alone_out), ResultStore(full_out)
    for name in XCDC_ROWS:
        a, f = alone_store.load(name, 0), full_store.load(name, 0)
        np.testing.assert_array_equal(a.predictions, f.predictions, err_msg=name)
        assert a.metrics() == f.metrics(), name
        csv_path = alone_out / "predictions" / f"{name}.csv"
        _check_scorer_format(csv_path, gold)
        scored = score_predictions_csv(csv_path, xcdc_only, "xcdc").metrics  # `geoforensics score`
        assert scored.median_km == pytest.approx(a.metrics().median_km, abs=0.01), name
        assert csv_path.read_bytes() == (full_out / "predictions" / f"{name}.csv").read_bytes()

    # Named rows that need iNatSounds are skipped with the reason, not run; reuse works.
    again = run_bench(
        xcdc_only, rows=[subset_row_name(10), *INAT_ROWS], out=alone_out, gallery=gallery_file,
        range_model=f"world:{world}", progress=False,
    )  # fmt: skip
    assert again.reused == [(subset_row_name(10), 0)] and not again.ran and not again.failed
    assert set(again.skipped) == set(INAT_ROWS)


def test_xcdc_alone_defaults_and_errors(world: Path, xcdc_only: Path, tmp_path: Path) -> None:
    preset = get_preset("tiny")
    data = BenchData(None, preset, xcdc_root=xcdc_only)
    assert not data.has_inat and data.gallery_specs == ("land-1deg",)
    assert data.dataset.synthetic and data.xcdc_root == xcdc_only.resolve()
    with pytest.raises(DatasetNotFoundError, match=r"no train\.json"):
        data.split("train")
    with pytest.raises(InputError, match="gallery train"):
        BenchData(xcdc_only, preset, ["train"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"test\.json.*xcdc_recordings\.csv"):
        run_bench(empty, progress=False)
    with pytest.raises(WeightsNotFoundError, match=r"model\.json"):
        BenchData(xcdc_only, preset, model_dir=empty)
    with pytest.raises(WeightsNotFoundError, match="SINR checkpoint"):
        run_bench(xcdc_only, range_model=f"sinr:{empty / 'x.pt'}", progress=False)
    with pytest.raises(InputError, match="--range-model"):
        run_bench(xcdc_only, range_model="nonsense", progress=False)
    # Without a range model (not a world, BirdNET absent) or a model the rows say why.
    from geoforensics.core.species import birdnet_files

    rows = builtin_rows()
    subset_check, model_check = rows[subset_row_name(1)].unavailable, rows["model-xcdc"].unavailable
    assert subset_check is not None and model_check is not None
    if not birdnet_files.birdnet_available():
        assert "--range-model" in (subset_check(data) or "")
    assert "--model DIR" in (model_check(data) or "")
    # The XCDC folder inside a world is found from --data WORLD as before.
    assert BenchData(world, preset).xcdc_root == (world / "xcdc").resolve()
