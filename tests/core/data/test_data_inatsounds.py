"""iNatSounds reader: counts, parsed values, missing locations, error messages."""

from __future__ import annotations

import json
import logging
import math
import runpy
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from repo_paths import TESTS

from geoforensics.core.data.inatsounds import INatSounds, summarize_inatsounds
from geoforensics.core.data.records import parse_date, parse_date_parts
from geoforensics.core.errors import DatasetNotFoundError, InputError

DATA = TESTS / "data" / "inatsounds"


def _write_dataset(folder: Path, duration_scale: float = 1.0) -> Path:
    """The committed script's writer (run_path: no bytecode is written into the repo)."""
    script = runpy.run_path(str(DATA / "data.py"), run_name="fake_inatsounds_data")
    return script["write_dataset"](folder, duration_scale=duration_scale)


@pytest.fixture()
def copy_root(tmp_path: Path) -> Path:
    """A fresh copy of the fake dataset that a test may corrupt."""
    return _write_dataset(tmp_path / "inat")


def _edit_json(path: Path, edit: object) -> None:
    document = json.loads(path.read_text())
    edit(document)  # type: ignore[operator]
    path.write_text(json.dumps(document))


def test_train_split_counts_and_skips_invalid_locations(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="geoforensics.core.data.inatsounds"):
        train = INatSounds(DATA, "train")
    # 7 entries: null location, NaN latitude and latitude 95 are skipped.
    assert len(train) == 4
    assert train.n_entries == 7
    assert train.n_missing_location == 3
    assert [r.id for r in train] == [101, 102, 103, 107]
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("train.json: skipped 3 of 7 recordings without a valid location") == 1


def test_keep_missing_location_gives_nan_coordinates() -> None:
    train = INatSounds(DATA, "train", keep_missing_location=True)
    assert len(train) == 7
    coords = train.coords()
    assert coords.shape == (7, 2)
    missing = {r.id for r in train if math.isnan(r.latitude)}
    assert missing == {104, 105, 106}
    assert np.isnan(coords[3:6]).all() and np.isfinite(coords[[0, 1, 2, 6]]).all()
    # Record 105's date string cannot be parsed: counted, set to None.
    assert train.n_unparsed_date == 1 and train[4].date is None
    assert train.n_missing_date == 1 and train[3].date is None


def test_recording_fields_are_parsed() -> None:
    train = INatSounds(DATA, "train")
    first = train[0]
    assert first.id == 101
    assert first.path == (DATA / first.file_name).resolve()
    assert first.path.is_file()
    assert first.duration == pytest.approx(0.35)
    assert first.date == datetime(2021, 5, 3, 6, 41)
    assert first.has_time
    assert (first.latitude, first.longitude) == (51.5074, -0.1278)
    assert first.location_uncertainty == 10
    assert (first.category_id, first.species) == (3, "Turdus merula")
    # Date with a space and an offset: wall-clock time kept, offset dropped.
    assert train[1].date == datetime(2021, 6, 10, 5, 12, 30)
    # Date only: midnight, no time of day.
    assert train[2].date == datetime(2020, 7, 1) and not train[2].has_time
    assert train[2].location_uncertainty is None
    # Fractional seconds and a negative offset.
    assert train[3].date == datetime(2022, 3, 15, 21, 30, 0, 250000)


def test_category_indices_follow_sorted_ids_in_every_split() -> None:
    train = INatSounds(DATA, "train")
    val = INatSounds(DATA, "val")
    # Category ids in the file are 12, 3, 25, 7; indices follow sorted ids 3, 7, 12, 25.
    assert [c.id for c in train.categories] == [3, 7, 12, 25]
    assert [c.index for c in train.categories] == [0, 1, 2, 3]
    assert train.species_names == [
        "Turdus merula",
        "Erithacus rubecula",
        "Gryllus campestris",
        "Rana temporaria",
    ]
    assert train.num_classes == 4
    np.testing.assert_array_equal(train.labels(), [0, 1, 2, 3])
    np.testing.assert_array_equal(val.labels(), [0, 2])
    assert val.species_names == train.species_names
    robin = train.categories[1]
    assert (robin.supercategory, robin.taxon_class, robin.family) == (
        "Aves",
        "Aves",
        "Muscicapidae",
    )
    assert (robin.genus, robin.specific_epithet) == ("Erithacus", "rubecula")


def test_coords_are_lat_lon_rows() -> None:
    val = INatSounds(DATA, "val")
    np.testing.assert_allclose(val.coords(), [[52.52, 13.405], [-37.8136, 144.9631]])
    assert val.coords().dtype == np.float64
    np.testing.assert_allclose(val.durations(), [0.30, 0.25])


def test_summary_of_one_split() -> None:
    summary = INatSounds(DATA, "test").summary(check_audio=True)
    assert summary["n_entries"] == 2
    assert summary["n_recordings"] == 1
    assert summary["n_missing_location"] == 1
    assert summary["n_species"] == 4 and summary["n_species_present"] == 1
    assert summary["recordings_per_supercategory"] == {"Aves": 1}
    assert summary["total_duration_s"] == pytest.approx(0.25)
    # "24/12/2022 08:15" is not an ISO-like date.
    assert summary["n_unparsed_date"] == 1
    assert summary["date_min"] is None and summary["date_max"] is None
    assert summary["n_missing_audio"] == 0


def test_summary_of_all_splits_adds_totals() -> None:
    summary = summarize_inatsounds(DATA)
    assert list(summary["splits"]) == ["train", "val", "test"]
    total = summary["total"]
    assert total["n_entries"] == 11
    assert total["n_recordings"] == 4 + 2 + 1
    assert total["n_missing_location"] == 3 + 0 + 1
    assert total["total_duration_s"] == pytest.approx(1.2 + 0.55 + 0.25)
    assert total["date_min"] == "2020-07-01T00:00:00"
    assert total["date_max"] == "2023-04-01T07:00:00"
    assert total["n_missing_audio"] == 0


@pytest.mark.parametrize(
    ("text", "expected", "has_time"),
    [
        ("2021-05-03T06:41:00", datetime(2021, 5, 3, 6, 41), True),
        ("2021-05-03 06:41:00+00:00", datetime(2021, 5, 3, 6, 41), True),
        ("2021-05-03T06:41Z", datetime(2021, 5, 3, 6, 41), True),
        ("2021-05-03", datetime(2021, 5, 3), False),
        ("2021/5/3 6:41", datetime(2021, 5, 3, 6, 41), True),
        ("2021-05-03 06:41:00 -0700", datetime(2021, 5, 3, 6, 41), True),
        ("2021-02-30", None, False),
        ("2019-05-00", None, False),
        ("03/05/2021", None, False),
        ("", None, False),
        (None, None, False),
        (20210503, None, False),
    ],
)
def test_parse_date_variants(text: object, expected: datetime | None, has_time: bool) -> None:
    assert parse_date_parts(text) == (expected, has_time)
    assert parse_date(text) == expected


def test_missing_root_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match=f"iNatSounds root {missing} does not exist"):
        INatSounds(missing)


def test_missing_split_json_is_named(copy_root: Path) -> None:
    (copy_root / "val.json").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        INatSounds(copy_root, "val")
    message = str(info.value)
    assert "no annotation file val.json for split 'val'" in message
    assert "found: test.json, train.json" in message


def test_missing_audio_counted_and_first_named(copy_root: Path) -> None:
    train = INatSounds(copy_root, "train")
    gone = [train[1].path, train[3].path]
    for path in gone:
        path.unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        INatSounds(copy_root, "train")
    message = str(info.value)
    assert "2 of 4 audio files are missing" in message
    assert f"(first: {gone[0]})" in message
    # Annotations alone still load, and the summary counts the gap.
    annotations_only = INatSounds(copy_root, "train", require_audio=False)
    assert len(annotations_only) == 4
    assert annotations_only.summary(check_audio=True)["n_missing_audio"] == 2


def test_not_json_names_the_file(copy_root: Path) -> None:
    path = copy_root / "train.json"
    path.write_text('{"audio": [')
    with pytest.raises(InputError, match=f"{path}: not valid JSON"):
        INatSounds(copy_root, "train")


def test_missing_top_level_key_is_named(copy_root: Path) -> None:
    path = copy_root / "train.json"
    _edit_json(path, lambda doc: doc.pop("annotations"))
    with pytest.raises(InputError, match=r"train\.json: missing or non-list .*annotations"):
        INatSounds(copy_root, "train")


def test_audio_entry_without_file_name_names_index_and_id(copy_root: Path) -> None:
    path = copy_root / "val.json"
    _edit_json(path, lambda doc: doc["audio"][1].pop("file_name"))
    with pytest.raises(InputError, match=r"val\.json: audio entry 1 \(id 202\) has no 'file_name'"):
        INatSounds(copy_root, "val")


def test_audio_entry_without_id_names_index(copy_root: Path) -> None:
    path = copy_root / "val.json"
    _edit_json(path, lambda doc: doc["audio"][0].pop("id"))
    with pytest.raises(InputError, match=r"val\.json: audio entry 0 has no integer 'id'"):
        INatSounds(copy_root, "val")


def test_annotation_to_unknown_audio_is_named(copy_root: Path) -> None:
    path = copy_root / "val.json"
    _edit_json(path, lambda doc: doc["annotations"][1].update(audio_id=999))
    with pytest.raises(InputError, match=r"annotation entry 1 .* unknown audio id 999"):
        INatSounds(copy_root, "val")


def test_annotation_to_unknown_category_is_named(copy_root: Path) -> None:
    path = copy_root / "val.json"
    _edit_json(path, lambda doc: doc["annotations"][0].update(category_id=4242))
    with pytest.raises(InputError, match=r"annotation entry 0 .* unknown category id 4242"):
        INatSounds(copy_root, "val")


def test_audio_without_annotation_is_named(copy_root: Path) -> None:
    path = copy_root / "val.json"
    _edit_json(path, lambda doc: doc["annotations"].pop(0))
    with pytest.raises(InputError, match=r"val\.json: audio entry 0 \(id 201\) has no annotation"):
        INatSounds(copy_root, "val")


def test_committed_fake_data_matches_its_script(tmp_path: Path) -> None:
    fresh = _write_dataset(tmp_path / "fresh")
    committed = sorted(
        p.relative_to(DATA) for p in DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    written = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert [p for p in committed if p.suffix != ".py"] == written
    for relative in written:
        assert (DATA / relative).read_bytes() == (fresh / relative).read_bytes(), relative


def test_duration_scale_lengthens_wavs_and_json(tmp_path: Path) -> None:
    import soundfile as sf

    root = _write_dataset(tmp_path / "long", duration_scale=20.0)
    train = INatSounds(root, "train")
    assert train[0].duration == pytest.approx(7.0)
    assert sf.info(str(train[0].path)).frames == round(7.0 * 22_050)
    assert sf.info(str(train[0].path)).samplerate == 22_050


def test_missing_audio_folder_is_reported(copy_root: Path) -> None:
    shutil.rmtree(copy_root / "test")
    with pytest.raises(DatasetNotFoundError, match="1 of 1 audio files are missing"):
        INatSounds(copy_root, "test")
    assert INatSounds(DATA, "test")[0].path.is_file()
