"""Batch checks: ``check FOLDER`` with per-clip claims, 2 worker processes and a local Ray
cluster give identical tables; the tables and GIS exports parse in their formats."""

from __future__ import annotations

import csv
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from repo_paths import REPO

from geoforensics.core import cli
from geoforensics.core.paths import assets_dir

REAL = REPO.parent / "shared" / "realaudio"
CLIPS = {
    "xc52400_song_sparrow_massachusetts.mp3": ("42.028", "-70.871", "2010-05-23"),
    "xc589950_gambels_quail_arizona.mp3": ("32.3193", "-110.8903", "2020-09-11"),
    "xc338156_rufous_collared_sparrow_bogota.wav": ("4.6233", "-74.0614", "2016-10-04"),
}
ARGS = ["--gallery", "grid-5deg", "--quiet", "--format", "csv,parquet,geojson,kml"]
KML = "{http://www.opengis.net/kml/2.2}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three real recordings (claims file with their documented places and dates), the
    synthetic demo clip (GPS tag) in a sub-folder and a broken file."""
    if not all((REAL / name).is_file() for name in CLIPS):
        pytest.skip(f"{REAL}: the real recordings are not here (test fixtures, not shipped)")
    root = tmp_path_factory.mktemp("batch")
    clips = root / "clips"
    (clips / "demo").mkdir(parents=True)
    for name in CLIPS:
        shutil.copy(REAL / name, clips / name)
    shutil.copy(assets_dir() / "demo" / "demo_clip.mp4", clips / "demo" / "demo_clip.mp4")
    (clips / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"garbage" * 50)
    claims = root / "claims.csv"
    with claims.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "latitude", "longitude", "date"])
        for name, (lat, lon, day) in CLIPS.items():
            writer.writerow([name, lat, lon, day])
        writer.writerow(["demo/demo_clip.mp4", "", "", ""])
        writer.writerow(["not-in-the-folder.wav", "1", "2", ""])
    return clips, claims


@pytest.fixture(scope="module")
def one_process(folder: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    clips, claims = folder
    out = tmp_path_factory.mktemp("batch-out") / "one"
    assert cli.main(["check", str(clips), "--out", str(out), "--claims", str(claims), *ARGS]) == 0
    return out


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


def test_summary_table_holds_one_row_per_clip(one_process: Path) -> None:
    rows = _rows(one_process / "summary.csv")
    assert sorted(rows) == sorted([*CLIPS, "demo/demo_clip.mp4", "broken.mp4"])
    broken = rows["broken.mp4"]
    assert broken["status"] == "failed" and "broken.mp4" in broken["error"]
    assert broken["verdict"] == ""
    for name, (lat, lon, day) in CLIPS.items():
        row = rows[name]
        assert row["status"] == "checked" and row["verdict"] in ("consistent", "inconclusive")
        assert float(row["claimed_lat"]) == pytest.approx(float(lat), abs=1e-4)
        assert float(row["claimed_lon"]) == pytest.approx(float(lon), abs=1e-4)
        assert row["date"] == day
        assert int(row["n_species"]) >= 1 and row["species_heard"]
        # Species evidence on real audio puts each recording within 5,000 km of its place.
        assert 0 <= float(row["audio_species_km_to_claim"]) < 5000
        assert float(row["audio_species_region90_km2"]) > 0
        assert row["audio_species_region90_calibrated"] == "false"
    demo = rows["demo/demo_clip.mp4"]
    assert demo["claimed_lat"] == "" and float(demo["gps_lat"]) == pytest.approx(42.6354)
    assert demo["report_dir"] == "demo__demo_clip.mp4"
    summary = json.loads((one_process / "summary.json").read_text(encoding="utf-8"))
    assert (summary["clips"], summary["done"], summary["failed"]) == (5, 4, 1)


def test_parquet_has_typed_columns_and_the_same_rows(one_process: Path) -> None:
    import pyarrow.parquet as pq

    from geoforensics.core.forensics.batch_tables import SUMMARY_COLUMNS

    table = pq.read_table(one_process / "summary.parquet")
    assert table.column_names == [name for name, _ in SUMMARY_COLUMNS]
    types = dict(zip(table.column_names, table.schema.types, strict=True))
    assert str(types["audio_species_km_to_claim"]) == "double"
    assert str(types["n_species"]) == "int64" and str(types["has_video"]) == "bool"
    records = {r["file"]: r for r in table.to_pylist()}
    rows = _rows(one_process / "summary.csv")
    assert set(records) == set(rows)
    for name, row in rows.items():
        value = records[name]["audio_species_km_to_claim"]
        assert (value is None and row["audio_species_km_to_claim"] == "") or (
            value == float(row["audio_species_km_to_claim"])
        )


def test_species_tables_parse_as_csv_and_raven_selections(one_process: Path) -> None:
    with (one_process / "species.csv").open(encoding="utf-8", newline="") as fh:
        species = list(csv.DictReader(fh))
    assert {r["file"] for r in species} >= set(CLIPS)
    sparrow = [r for r in species if r["file"] == "xc52400_song_sparrow_massachusetts.mp3"]
    assert "Melospiza melodia" in {r["scientific_name"] for r in sparrow}
    for row in species:
        assert 0 <= float(row["start_s"]) < float(row["end_s"])
        assert 0 < float(row["confidence"]) <= 1
    lines = (one_process / "species.selections.txt").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    assert header[:7] == [
        "Selection",
        "View",
        "Channel",
        "Begin Time (s)",
        "End Time (s)",
        "Low Freq (Hz)",
        "High Freq (Hz)",
    ]
    selections = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    assert len(selections) == len(species)
    assert [int(s["Selection"]) for s in selections] == list(range(1, len(species) + 1))
    for selection in selections:
        begin, end = float(selection["Begin Time (s)"]), float(selection["End Time (s)"])
        offset = float(selection["File Offset (s)"])
        assert begin <= end and begin >= offset  # files laid end to end
    # Each clip folder has its own table too.
    assert (one_process / "xc52400_song_sparrow_massachusetts.mp3" / "species.csv").is_file()


def test_geojson_exports_are_valid(one_process: Path) -> None:
    places = json.loads((one_process / "places.geojson").read_text(encoding="utf-8"))
    assert places["type"] == "FeatureCollection"
    kinds = {(f["properties"]["file"], f["properties"]["modality"]) for f in places["features"]}
    assert ("demo/demo_clip.mp4", "metadata_gps") in kinds
    assert ("xc52400_song_sparrow_massachusetts.mp3", "claimed") in kinds
    for feature in places["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        assert feature["geometry"]["type"] == "Point"
        assert -180 <= lon <= 180 and -90 <= lat <= 90
    claimed = next(
        f
        for f in places["features"]
        if f["properties"]["modality"] == "claimed"
        and f["properties"]["file"] == "xc52400_song_sparrow_massachusetts.mp3"
    )
    assert claimed["geometry"]["coordinates"] == pytest.approx([-70.871, 42.028])  # lon, lat
    regions = json.loads((one_process / "regions.geojson").read_text(encoding="utf-8"))
    assert regions["features"]
    for feature in regions["features"]:
        geometry = feature["geometry"]
        assert geometry["type"] in ("Polygon", "MultiPolygon")
        assert feature["properties"]["level"] == 0.9
        polygons = (
            [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        )
        for rings in polygons:
            for ring in rings:
                assert len(ring) >= 4 and ring[0] == ring[-1]
                assert all(-180 <= p[0] <= 180 and -90 <= p[1] <= 90 for p in ring)


def test_kml_parses_with_one_placemark_per_feature(one_process: Path) -> None:
    root = ET.parse(one_process / "batch.kml").getroot()
    assert root.tag == f"{KML}kml"
    folders = root.findall(f"{KML}Document/{KML}Folder")
    assert [f.findtext(f"{KML}name") for f in folders] == ["places", "90 % regions"]
    places = json.loads((one_process / "places.geojson").read_text(encoding="utf-8"))
    regions = json.loads((one_process / "regions.geojson").read_text(encoding="utf-8"))
    assert len(folders[0].findall(f"{KML}Placemark")) == len(places["features"])
    assert len(folders[1].findall(f"{KML}Placemark")) == len(regions["features"])
    point = folders[0].find(f"{KML}Placemark/{KML}Point/{KML}coordinates")
    assert point is not None and point.text is not None
    lon, lat = (float(v) for v in point.text.split(","))
    assert -180 <= lon <= 180 and -90 <= lat <= 90
    ring = root.find(f".//{KML}Polygon/{KML}outerBoundaryIs/{KML}LinearRing/{KML}coordinates")
    assert ring is not None and ring.text is not None
    tuples = ring.text.split()
    assert len(tuples) >= 4 and tuples[0] == tuples[-1]


def test_two_workers_write_the_same_tables(
    one_process: Path, folder: tuple[Path, Path], tmp_path: Path
) -> None:
    clips, claims = folder
    out = tmp_path / "two"
    argv = ["check", str(clips), "--out", str(out), "--claims", str(claims), *ARGS]
    assert cli.main([*argv, "--workers", "2"]) == 0
    for name in ("summary.csv", "species.csv", "species.selections.txt", "places.geojson"):
        assert (out / name).read_bytes() == (one_process / name).read_bytes(), name
    # Resumable as before: a second run skips every checked clip and writes the same table.
    assert cli.main([*argv, "--workers", "2", "--json"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["done"], summary["skipped"], summary["failed"]) == (0, 4, 1)
    assert (out / "summary.csv").read_bytes() == (one_process / "summary.csv").read_bytes()


def test_a_local_ray_cluster_writes_the_same_tables(
    one_process: Path, folder: tuple[Path, Path], tmp_path: Path
) -> None:
    import ray

    from geoforensics.core.forensics import CheckOptions, check_folder

    clips, claims = folder
    out = tmp_path / "ray"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = check_folder(
            clips,
            CheckOptions(gallery="grid-5deg"),
            out,
            use_ray=True,
            formats="csv,parquet,geojson,kml",
            claims=claims,
        )
    finally:
        ray.shutdown()
    assert (summary.count("done"), summary.count("failed")) == (4, 1)
    for name in ("summary.csv", "species.selections.txt", "places.geojson", "regions.geojson"):
        assert (out / name).read_bytes() == (one_process / name).read_bytes(), name


def test_bad_claims_and_batch_options_fail_in_one_line(
    folder: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clips, _ = folder
    out = tmp_path / "out"

    def fails(args: list[str], expected: str) -> None:
        assert cli.main(["check", *args, "--out", str(out), "--quiet"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("geoforensics: error: ") and "\n" not in err
        assert expected in err
        assert not out.exists()

    no_file = tmp_path / "no-file-column.csv"
    no_file.write_text("clip,claimed\na.mp3,Paris\n", encoding="utf-8")
    fails([str(clips), "--claims", str(no_file)], "'file' column")
    bad_date = tmp_path / "bad-date.csv"
    bad_date.write_text(
        "file,claimed,date\nxc52400_song_sparrow_massachusetts.mp3,Boston,1992-10\n",
        encoding="utf-8",
    )
    fails([str(clips), "--claims", str(bad_date)], "bad-date.csv row 2: date '1992-10'")
    half = tmp_path / "half.csv"
    half.write_text("file,latitude,longitude\nbroken.mp4,12.5,\n", encoding="utf-8")
    fails([str(clips), "--claims", str(half)], "half.csv row 2")
    fails([str(clips), "--claims", str(tmp_path / "missing.csv")], "missing.csv")
    fails([str(clips), "--format", "csv,shapefile"], "--format shapefile")
    fails([str(clips), "--workers", "0"], "--workers 0")
    one = clips / "xc52400_song_sparrow_massachusetts.mp3"
    fails([str(one), "--workers", "2"], "FOLDER")


def test_the_app_batch_page_shows_table_map_and_a_clip(
    one_process: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    app = REPO / "forensics_app" / "app.py"
    monkeypatch.setenv("GEOFORENSICS_APP_BATCH", str(one_process))
    at = AppTest.from_file(str(app), default_timeout=120)
    at.run()
    at.switch_page("batch_page.py").run()
    assert not at.exception, at.exception
    (table,) = [df.value for df in at.dataframe]
    assert sorted(table["file"]) == sorted([*CLIPS, "demo/demo_clip.mp4", "broken.mp4"])
    deck = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    markers = next(layer for layer in deck["layers"] if layer["@@type"] == "ScatterplotLayer")
    # Each real clip: its audio place and its claim; the demo clip: its audio place only.
    assert len(markers["data"]) == 2 * len(CLIPS) + 1
    arcs = next(layer for layer in deck["layers"] if layer["@@type"] == "ArcLayer")
    assert len(arcs["data"]) == len(CLIPS)
    # Filter by verdict: only the failed clip is left.
    at.multiselect(key="batch_verdicts").set_value(["failed"]).run()
    (table,) = [df.value for df in at.dataframe]
    assert list(table["file"]) == ["broken.mp4"]
    assert any("broken.mp4: failed" in e for e in (str(x.value) for x in at.error))
    # Click through to one clip: its maps and report.
    at.multiselect(key="batch_verdicts").set_value(["consistent", "inconclusive"]).run()
    at.selectbox(key="batch_clip").set_value("xc52400_song_sparrow_massachusetts.mp3").run()
    assert not at.exception, at.exception
    captions = [caption for image in at.image for caption in image.captions]
    assert "map_audio_species.png" in captions
    assert "report.html" in {b.proto.label for b in at.download_button}
    at.text_input(key="batch_folder").set_value(str(one_process / "nowhere")).run()
    assert any("no summary.parquet" in str(e.value) for e in at.error)


def test_the_batch_parent_process_loads_no_model_library() -> None:
    """``check FOLDER --workers N``'s parent only hands out clips: importing the command and
    the folder runner, and building the options, must not load torch or OpenVINO (each
    worker loads them; the parent stayed at ~130 MB instead of ~600 MB)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import geoforensics.core.commands.check, geoforensics.core.forensics.folder\n"
        "from geoforensics.core.forensics.check_options import CheckOptions\n"
        "CheckOptions(claimed='Seattle').validate()\n"
        "print(sorted(m for m in ('torch', 'openvino', 'ai_edge_litert') if m in sys.modules))\n"
        # a check without --model (species, GPS, claim) does not need torch either
        "import geoforensics.core.forensics.pipeline\n"
        "from geoforensics.core.forensics.check_models import load_check_models\n"
        "load_check_models(CheckOptions(gallery='grid-10deg', species=False))\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["[]", "False"], done.stdout + done.stderr


def test_birdnet_in_a_check_uses_this_process_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A single check gives BirdNET every core; a batch worker (OMP_NUM_THREADS set by the
    pool or by Ray) its share; a malformed value falls back to every core."""
    import os

    from geoforensics.core.forensics.check_models import cpu_share

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_share() == (os.cpu_count() or 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu_share() == 1
    for bad in ("0", "two", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        assert cpu_share() == (os.cpu_count() or 1)
