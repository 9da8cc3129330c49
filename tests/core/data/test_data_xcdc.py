"""XCDC reader: list parsing, lengths, dates, rows without audio, error messages."""

from __future__ import annotations

import runpy
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from repo_paths import TESTS

from geoforensics.core.data.xcdc import XCDC, parse_length, parse_xcdc_date
from geoforensics.core.errors import DatasetNotFoundError, InputError

DATA = TESTS / "data" / "xcdc"
HEADER = (
    "audio_id,url,latitude,longitude,length,date,time,recordist,"
    "main_scientific,main_common,all_scientific,all_common"
)


def _write_dataset(folder: Path) -> Path:
    """The committed script's writer (run_path: no bytecode is written into the repo)."""
    script = runpy.run_path(str(DATA / "data.py"), run_name="fake_xcdc_data")
    return script["write_dataset"](folder)


@pytest.fixture()
def copy_root(tmp_path: Path) -> Path:
    return _write_dataset(tmp_path / "xcdc")


def _replace_line(csv_path: Path, number: int, text: str) -> None:
    lines = csv_path.read_text().splitlines()
    lines[number - 1] = text
    csv_path.write_text("\n".join(lines) + "\n")


def test_rows_and_species_lists_are_parsed() -> None:
    xcdc = XCDC(DATA)
    assert len(xcdc) == 5
    first = xcdc[0]
    assert first.audio_id == "100001" and first.id == "100001"
    assert first.url == "https://xeno-canto.org/100001"
    assert (first.latitude, first.longitude) == (51.752, -1.2577)
    assert first.recordist == "Ada Fieldwork"
    assert first.main_scientific == ("Turdus merula",)
    assert first.all_scientific == ("Turdus merula", "Erithacus rubecula", "Fringilla coelebs")
    assert first.all_common == ("Eurasian Blackbird", "European Robin", "Common Chaffinch")
    # A double-quoted Python literal with an apostrophe, inside a quoted CSV field.
    assert xcdc[1].main_common == ("European Robin", "Cetti's Warbler")
    # A common name containing a comma, an empty list, and a recordist with a comma.
    assert xcdc[4].all_common == ("Common Bulbul", "Ring-necked Dove, Cape Turtle Dove")
    assert xcdc[4].main_scientific == () and xcdc[4].main_common == ()
    assert xcdc[4].recordist == "Dee, Early Riser"
    assert [r.line for r in xcdc] == [2, 3, 4, 5, 6]


def test_lengths_become_seconds() -> None:
    xcdc = XCDC(DATA)
    assert [r.duration for r in xcdc] == [185.0, 3723.0, 720.0, 8280.0, 270.0]
    np.testing.assert_array_equal(xcdc.durations(), [185.0, 3723.0, 720.0, 8280.0, 270.0])


def test_dates_and_times_are_lenient() -> None:
    xcdc = XCDC(DATA)
    assert xcdc[0].date == datetime(2019, 5, 12, 4, 45) and xcdc[0].has_time
    # "2019-05-00" with time "?": no full date, but the month is kept.
    assert xcdc[1].date is None and xcdc[1].month == 5 and not xcdc[1].has_time
    # Date "?" with a time: nothing usable.
    assert xcdc[2].date is None and xcdc[2].month is None
    # Single-digit hour.
    assert xcdc[3].date == datetime(2021, 10, 3, 5, 30)


def test_rows_without_audio_are_usable() -> None:
    xcdc = XCDC(DATA)
    assert [r.has_audio for r in xcdc] == [True, True, False, True, False]
    assert xcdc.n_with_audio == 3
    assert xcdc[0].path == (DATA / "audio" / "100001.wav").resolve()
    # A WAV directly under ROOT is accepted too.
    assert xcdc[3].path == (DATA / "100004.wav").resolve()
    assert xcdc[2].path is None
    assert [r.audio_id for r in xcdc.with_audio()] == ["100001", "100002", "100004"]
    assert xcdc.coords().shape == (5, 2)


def test_csv_path_and_explicit_audio_dir(tmp_path: Path) -> None:
    by_csv = XCDC(DATA / "xcdc_recordings.csv")
    assert len(by_csv) == 5 and by_csv.n_with_audio == 3
    only_audio_folder = XCDC(DATA, audio_dir=DATA / "audio")
    assert [r.has_audio for r in only_audio_folder] == [True, True, False, False, False]
    with pytest.raises(DatasetNotFoundError, match=r"XCDC audio folder .*elsewhere does not exist"):
        XCDC(DATA, audio_dir=tmp_path / "elsewhere")


def test_require_audio_names_count_and_first_missing_file() -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        XCDC(DATA, require_audio=True)
    message = str(info.value)
    assert "2 of 5 recordings have no audio file" in message
    assert f"first: {(DATA / 'audio' / '100003.wav').resolve()}" in message


def test_summary() -> None:
    summary = XCDC(DATA).summary()
    assert summary["n_recordings"] == 5
    assert (summary["n_with_audio"], summary["n_without_audio"]) == (3, 2)
    assert summary["n_species"] == 12
    assert (summary["species_per_recording_min"], summary["species_per_recording_max"]) == (2, 4)
    assert summary["species_per_recording_mean"] == pytest.approx(14 / 5)
    assert summary["n_recordists"] == 4
    assert summary["total_duration_s"] == pytest.approx(185 + 3723 + 720 + 8280 + 270)
    assert (summary["date_min"], summary["date_max"]) == (
        "2019-05-12T04:45:00",
        "2021-10-03T05:30:00",
    )
    # Ties broken by name, so the listing is stable.
    assert summary["most_common_species"][:3] == [
        ("Erithacus rubecula", 2),
        ("Turdus merula", 2),
        ("Cardinalis cardinalis", 1),
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3:05", 185.0), ("0:07", 7.0), ("1:02:03", 3723.0), ("138:00", 8280.0), ("42", 42.0)],
)
def test_parse_length(text: str, seconds: float) -> None:
    assert parse_length(text) == seconds


@pytest.mark.parametrize("text", ["", "?"])
def test_unknown_length_is_none(text: str) -> None:
    assert parse_length(text) is None


@pytest.mark.parametrize("text", ["3:75", "1:2:3:4", "three minutes", "-1:00"])
def test_bad_length_raises(text: str) -> None:
    with pytest.raises(ValueError, match="length"):
        parse_length(text)


@pytest.mark.parametrize(
    ("date", "time", "expected"),
    [
        ("2019-05-12", "04:45", (datetime(2019, 5, 12, 4, 45), 5, True)),
        ("2019-05-12", "?", (datetime(2019, 5, 12), 5, False)),
        ("2019-05-12", "25:00", (datetime(2019, 5, 12), 5, False)),
        ("2019-00-00", "04:45", (None, None, False)),
        ("2019-13-01", "", (None, None, False)),
        ("?", "04:45", (None, None, False)),
    ],
)
def test_parse_xcdc_date(date: str, time: str, expected: tuple[object, ...]) -> None:
    assert parse_xcdc_date(date, time) == expected


def test_missing_csv_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetNotFoundError, match=f"XCDC recordings file {tmp_path}/xcdc_recordings.csv"
    ):
        XCDC(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=f"XCDC folder {tmp_path}/nope does not exist"):
        XCDC(tmp_path / "nope" / "xcdc_recordings.csv")


def test_wrong_column_set_names_missing_columns(copy_root: Path) -> None:
    csv_path = copy_root / "xcdc_recordings.csv"
    _replace_line(csv_path, 1, HEADER.replace("all_common", "common_all"))
    with pytest.raises(
        InputError, match=r"xcdc_recordings\.csv: line 1: missing column\(s\) all_common"
    ):
        XCDC(copy_root)


def test_unparseable_list_names_line_and_column(copy_root: Path) -> None:
    csv_path = copy_root / "xcdc_recordings.csv"
    lines = csv_path.read_text().splitlines()
    _replace_line(csv_path, 4, lines[3].replace("['Manorina melanocephala']", "[Manorina]"))
    with pytest.raises(InputError, match=r"xcdc_recordings\.csv: line 4: column main_scientific"):
        XCDC(copy_root)


def test_list_literal_is_never_evaluated_as_code(copy_root: Path) -> None:
    csv_path = copy_root / "xcdc_recordings.csv"
    lines = csv_path.read_text().splitlines()
    payload = "\"__import__('os').getcwd()\""
    _replace_line(csv_path, 4, lines[3].replace("['Manorina melanocephala']", payload))
    with pytest.raises(InputError, match="line 4: column main_scientific: not a Python list"):
        XCDC(copy_root)


def test_list_of_non_strings_is_rejected(copy_root: Path) -> None:
    csv_path = copy_root / "xcdc_recordings.csv"
    lines = csv_path.read_text().splitlines()
    _replace_line(csv_path, 4, lines[3].replace("['Noisy Miner']", "[1]"))
    with pytest.raises(InputError, match="line 4: column main_common: not a list of strings"):
        XCDC(copy_root)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("-34.4278", "-95.5", r"latitude '-95.5' is outside \[-90, 90\]"),
        ("150.8931", "east", "longitude 'east' is not a number"),
        ("-34.4278", "", "latitude '' is not a number"),
        ("12:00", "12:99", "length '12:99'"),
    ],
)
def test_bad_values_name_file_and_line(copy_root: Path, old: str, new: str, problem: str) -> None:
    csv_path = copy_root / "xcdc_recordings.csv"
    lines = csv_path.read_text().splitlines()
    _replace_line(csv_path, 4, lines[3].replace(old, new))
    with pytest.raises(InputError, match=rf"xcdc_recordings\.csv: line 4: {problem}"):
        XCDC(copy_root)


def test_wrong_field_count_names_line(copy_root: Path) -> None:
    csv_path = copy_root / "xcdc_recordings.csv"
    _replace_line(csv_path, 3, "100002,https://xeno-canto.org/100002,48.1,11.5")
    with pytest.raises(InputError, match=r"line 3: 4 fields, expected 12"):
        XCDC(copy_root)


def test_duplicate_audio_id_names_both_lines(copy_root: Path) -> None:
    csv_path = copy_root / "xcdc_recordings.csv"
    lines = csv_path.read_text().splitlines()
    _replace_line(csv_path, 6, lines[5].replace("100005", "100001"))
    with pytest.raises(InputError, match="line 6: audio_id '100001' repeats line 2"):
        XCDC(copy_root)


def test_committed_fake_data_matches_its_script(tmp_path: Path) -> None:
    fresh = _write_dataset(tmp_path / "fresh")
    committed = sorted(
        p.relative_to(DATA) for p in DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    written = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert [p for p in committed if p.suffix != ".py"] == written
    for relative in written:
        assert (DATA / relative).read_bytes() == (fresh / relative).read_bytes(), relative
