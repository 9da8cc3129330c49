"""Property-based tests (hypothesis) of the geo maths, the metrics and the parsers.

Each property holds for every input hypothesis draws; the parsers are fed arbitrary text or
JSON/CSV content and may only ever raise a :class:`GeoforensicsError` subclass (the CLI turns
those into one-line messages), never a bare ``ValueError``/``KeyError``/``TypeError``.
Example counts are modest so the file runs in well under 30 s on 2 cores.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from datetime import date, datetime
from pathlib import Path

import h3
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from geoforensics.core.data import INatSounds
from geoforensics.core.data.records import as_float, parse_date, parse_date_parts
from geoforensics.core.data.xcdc import XCDC
from geoforensics.core.errors import GeoforensicsError, InputError
from geoforensics.core.geo import h3cells
from geoforensics.core.geo.distance import (
    MAX_DISTANCE_KM,
    check_coords,
    haversine_np,
    haversine_torch,
    validate_coords,
    wrap_longitude,
)
from geoforensics.core.geo.gallery import read_csv_coords
from geoforensics.core.geo.gazetteer import parse_latlon, resolve_place
from geoforensics.core.geo.metrics import (
    geolocation_errors,
    geolocation_metrics,
    summarize_errors,
)
from geoforensics.core.media.probe import (
    format_iso6709,
    gps_from_tags,
    parse_creation_time,
    parse_ffmpeg_info,
    parse_iso6709,
)
from geoforensics.core.species.checklists import date_to_week
from geoforensics.core.species.names import normalise_name, parse_species_list

TESTS = Path(__file__).parent
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

lats = st.floats(-90.0, 90.0, allow_nan=False)
lons = st.floats(-180.0, 180.0, allow_nan=False)
points = st.tuples(lats, lons)
point_lists = st.lists(points, min_size=1, max_size=30)
any_float = st.floats(allow_nan=True, allow_infinity=True)


# ------------------------------------------------------------------------------ geo maths


@SETTINGS
@given(points, points)
def test_haversine_is_symmetric_bounded_and_zero_on_identical_points(a: tuple, b: tuple) -> None:
    d_ab, d_ba = float(haversine_np(a, b)), float(haversine_np(b, a))
    assert d_ab == pytest.approx(d_ba, abs=1e-6)
    assert 0.0 <= d_ab <= MAX_DISTANCE_KM + 1e-6
    assert float(haversine_np(a, a)) == pytest.approx(0.0, abs=1e-6)


@SETTINGS
@given(points, points, points)
def test_haversine_triangle_inequality(a: tuple, b: tuple, c: tuple) -> None:
    assert float(haversine_np(a, c)) <= float(haversine_np(a, b) + haversine_np(b, c)) + 1e-6


@SETTINGS
@given(point_lists, point_lists)
def test_haversine_torch_equals_numpy(a: list, b: list) -> None:
    n = min(len(a), len(b))
    pa, pb = np.array(a[:n]), np.array(b[:n])
    expected = haversine_np(pa, pb)
    got = haversine_torch(torch.from_numpy(pa), torch.from_numpy(pb)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


@SETTINGS
@given(points, st.integers(-3, 3))
def test_longitude_wrap_keeps_the_place(point: tuple, turns: int) -> None:
    lat, lon = point
    wrapped = float(wrap_longitude(lon + 360.0 * turns))
    assert -180.0 <= wrapped < 180.0
    assert float(haversine_np((lat, lon), (lat, wrapped))) == pytest.approx(0.0, abs=1e-6)


@SETTINGS
@given(st.lists(st.tuples(any_float, any_float), min_size=1, max_size=20))
def test_check_coords_accepts_valid_and_rejects_the_rest_with_input_error(rows: list) -> None:
    array = np.array(rows, dtype=np.float64)
    finite = np.isfinite(array).all(axis=1)
    expected = finite & (np.abs(array[:, 0]) <= 90) & (np.abs(array[:, 1]) <= 180)
    np.testing.assert_array_equal(validate_coords(array), expected)
    if expected.all():
        np.testing.assert_array_equal(check_coords(array, "points"), array)
    else:
        first_bad = int(np.flatnonzero(~expected)[0])
        with pytest.raises(InputError, match=f"points: row {first_bad} has invalid"):
            check_coords(array, "points")


# ------------------------------------------------------------------------------- metrics


@SETTINGS
@given(point_lists, st.data())
def test_metrics_monotone_in_threshold_and_median_within_the_errors(
    true: list, data: st.DataObject
) -> None:
    pred = data.draw(st.lists(points, min_size=len(true), max_size=len(true)))
    thresholds = sorted(data.draw(st.lists(st.floats(0.0, 25_000.0), min_size=1, max_size=6)))
    errors = geolocation_errors(pred, true)
    metrics = summarize_errors(errors, thresholds)
    accuracies = [metrics.accuracy[float(t)] for t in thresholds]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert accuracies == sorted(accuracies)
    assert errors.min() - 1e-9 <= metrics.median_km <= errors.max() + 1e-9
    assert metrics.n_invalid == 0 and metrics.count == len(true)


@SETTINGS
@given(point_lists, st.data())
def test_invalid_predictions_are_misses_scored_as_the_worst_error(
    true: list, data: st.DataObject
) -> None:
    n = len(true)
    bad_value = st.sampled_from([math.nan, math.inf, -math.inf, 181.0, -200.0, 1e9])
    pred = np.array(true, dtype=np.float64)  # every valid prediction is exact
    bad = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    for row in np.flatnonzero(bad):
        pred[row, data.draw(st.integers(0, 1))] = data.draw(bad_value)
    metrics = geolocation_metrics(pred, true)
    assert metrics.n_invalid == int(bad.sum())
    for value in metrics.accuracy.values():  # exact where valid, a miss where invalid
        assert value == pytest.approx(1.0 - bad.mean())
    expected_mean = bad.mean() * MAX_DISTANCE_KM
    assert metrics.mean_km == pytest.approx(expected_mean, abs=1e-3)


# ------------------------------------------------------------------------------- parsers


@SETTINGS
@given(st.floats(-1000, 1000, allow_nan=False), st.floats(-1000, 1000, allow_nan=False),
       st.sampled_from([",", ", ", " ", ";", " , "]))  # fmt: skip
def test_latlon_parser_accepts_in_range_pairs_and_names_out_of_range(
    lat: float, lon: float, sep: str
) -> None:
    text = f"{lat:.6f}{sep}{lon:.6f}"
    parsed_lat, parsed_lon = float(f"{lat:.6f}"), float(f"{lon:.6f}")
    if abs(parsed_lat) <= 90 and abs(parsed_lon) <= 180:
        assert parse_latlon(text) == (parsed_lat, parsed_lon)
        place = resolve_place(text)
        assert (place.latitude, place.longitude) == (parsed_lat, parsed_lon)
    else:
        with pytest.raises(InputError, match="latitude must lie in"):
            parse_latlon(text)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=40))
def test_place_resolver_gives_a_valid_point_or_a_one_line_input_error(text: str) -> None:
    try:
        place = resolve_place(text)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert validate_coords([place.latitude, place.longitude])


@SETTINGS
@given(st.text(max_size=80))
def test_species_list_parser_and_name_normalisation(text: str) -> None:
    names = parse_species_list(text)
    assert all(name and name == " ".join(name.split()) for name in names)
    assert all(";" not in name and "\n" not in name for name in names)
    keys = [normalise_name(name) or name.casefold() for name in names]
    assert len(keys) == len(set(keys))  # duplicates kept once
    assert parse_species_list("; ".join(names)) == names  # a parsed list parses to itself
    for name in [*names, text]:
        once = normalise_name(name)
        assert normalise_name(once) == once  # idempotent


@SETTINGS
@given(st.dates(min_value=date(1000, 1, 1)), st.times(), st.booleans())
def test_date_parser_round_trips_iso_dates(day: date, clock: object, with_time: bool) -> None:
    moment = datetime.combine(day, clock)  # type: ignore[arg-type]
    text = moment.isoformat(sep=" " if with_time else "T") if with_time else day.isoformat()
    parsed, has_time = parse_date_parts(text)
    assert has_time is with_time
    assert parsed == (moment if with_time else datetime.combine(day, datetime.min.time()))
    assert 1 <= date_to_week(day) <= 48


@SETTINGS
@given(st.one_of(st.text(max_size=40), st.none(), st.integers(), st.floats()))
def test_lenient_parsers_never_raise(value: object) -> None:
    parsed = parse_date(value)
    assert parsed is None or isinstance(parsed, datetime)
    assert isinstance(as_float(value), float)
    if isinstance(value, str):
        when = parse_creation_time(value)
        assert when is None or (when.tzinfo is not None and when.year > 1970)
        parse_iso6709(value)


@SETTINGS
@given(points)
def test_iso6709_round_trips_through_the_gps_tag(point: tuple) -> None:
    lat, lon = point
    for key in ("location", "com.apple.quicktime.location.ISO6709", "location-eng"):
        parsed = gps_from_tags({key: format_iso6709(lat, lon)})
        assert parsed is not None
        assert parsed == pytest.approx((lat, lon), abs=1e-6)


ffmpeg_like_lines = st.sampled_from(
    [
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':",
        "  Metadata:",
        "    title           : hello",
        "    location        : +12.5-045.2/",
        "  Duration: 00:00:08.00, start: 0.000000, bitrate: 95 kb/s",
        "  Duration: N/A",
        "  Stream #0:0[0x1](und): Video: h264 (avc1), yuv420p(tv, bt709), 96x64, 2 fps, 2 tbr",
        "  Stream #0:1[0x2](und): Audio: aac (LC), 22050 Hz, mono, fltp, 69 kb/s",
        "  Stream #0:2: Audio: pcm_s16le, 44100 Hz, 7 channels, s16",
        "      Metadata:",
        "        handler_name    : SoundHandler",
        "      Side data:",
        "        displaymatrix: rotation of -90.00 degrees",
        "  Chapters:",
        "[error] moov atom not found",
        "[in#0/mov,mp4 @ 0x5] [error] partial file",
        "Output #0, null, to 'pipe:':",
        "    : continued value",
    ]
)


@SETTINGS
@given(st.lists(st.one_of(ffmpeg_like_lines, st.text(max_size=60)), max_size=25))
def test_ffmpeg_info_parser_never_raises_on_arbitrary_text(lines: list[str]) -> None:
    result = parse_ffmpeg_info("\n".join(lines))
    assert result.container is None or isinstance(result.container, str)
    for stream in result.streams:
        assert stream.kind
        assert stream.sample_rate is None or stream.sample_rate >= 0
    gps_from_tags(result.tags)


@SETTINGS
@given(point_lists, st.sampled_from([0, 1, 2]))
def test_h3_cell_index_centre_is_near_the_point_and_parents_nest(rows: list, res: int) -> None:
    index = h3cells.latlng_to_cell_index(rows, res)
    assert ((index >= 0) & (index < h3cells.num_cells(res))).all()
    centres = h3cells.cell_centers(res)[index]
    # an H3 cell at res 0/1/2 is at most ~1,300 / ~500 / ~190 km from its centre
    assert (haversine_np(np.array(rows), centres) < (1400.0, 550.0, 210.0)[res]).all()
    if res > 0:  # H3 parents are not geometric containers: compare with h3's own parent
        parents = h3cells.parent_index(res)[index]
        lookup = h3cells.cell_index_map(res - 1)
        cells = h3cells.latlng_to_cells(rows, res)
        expected = [lookup[h3.cell_to_parent(cell, res - 1)] for cell in cells]
        np.testing.assert_array_equal(parents, expected)
        assert h3cells.children_mask(res - 1)[parents, index].all()


@SETTINGS
@given(st.lists(st.tuples(any_float, any_float), max_size=6))
def test_h3_invalid_rows_get_minus_one(rows: list) -> None:
    array = np.array(rows, dtype=np.float64).reshape(-1, 2)
    index = h3cells.latlng_to_cell_index(array, 1)
    np.testing.assert_array_equal(index < 0, ~validate_coords(array))


# ----------------------------------------------------------------- dataset readers on junk


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(), st.text(max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
inat_keys = st.sampled_from(["info", "audio", "categories", "annotations", "licenses"])
entry_keys = st.sampled_from(
    ["id", "file_name", "latitude", "longitude", "date", "duration", "audio_id", "category_id",
     "name", "common_name", "location_uncertainty", "supercategory"]
)  # fmt: skip


@pytest.fixture(scope="module")
def inat_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inat-fuzz")
    shutil.copytree(TESTS / "data" / "inatsounds", root, dirs_exist_ok=True)
    return root


def _mutated_document(original: dict, data: st.DataObject) -> object:
    """The real document with a few keys/entries replaced by random JSON, or random JSON."""
    if data.draw(st.booleans()):
        return data.draw(json_values)
    doc = json.loads(json.dumps(original))
    for _ in range(data.draw(st.integers(1, 4))):
        key = data.draw(inat_keys)
        entries = doc.get(key)
        if isinstance(entries, list) and entries and data.draw(st.booleans()):
            entry = entries[data.draw(st.integers(0, len(entries) - 1))]
            if isinstance(entry, dict):
                entry[data.draw(entry_keys)] = data.draw(json_values)
                continue
        doc[key] = data.draw(json_values)
    return doc


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_inatsounds_reader_on_random_json_raises_only_geoforensics_errors(
    inat_copy: Path, data: st.DataObject
) -> None:
    original = json.loads((TESTS / "data" / "inatsounds" / "train.json").read_text())
    document = _mutated_document(original, data)
    (inat_copy / "train.json").write_text(json.dumps(document))
    try:
        dataset = INatSounds(inat_copy, "train", require_audio=False)
        dataset.summary()
        coords = dataset.coords()
    except GeoforensicsError as exc:
        assert "\n" not in str(exc) and "train.json" in str(exc)
    else:
        assert validate_coords(coords).all()


@pytest.fixture(scope="module")
def xcdc_rows() -> tuple[list[str], list[list[str]]]:
    with (TESTS / "data" / "xcdc" / "xcdc_recordings.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_xcdc_reader_on_random_csv_raises_only_geoforensics_errors(
    tmp_path_factory: pytest.TempPathFactory,
    xcdc_rows: tuple[list[str], list[list[str]]],
    data: st.DataObject,
) -> None:
    header, rows = xcdc_rows
    rows = [list(row) for row in rows]
    cell = st.one_of(
        st.text(max_size=12),
        st.sampled_from(["", "nan", "inf", "-95", "1e400", "[", "['a', 1]", "[]", "0:61",
                         "2024-02-30", "99:99", "()", "{'a': 1}", "'Turdus merula'"]),
    )  # fmt: skip
    for _ in range(data.draw(st.integers(1, 5))):
        row = rows[data.draw(st.integers(0, len(rows) - 1))]
        column = data.draw(st.integers(0, len(row)))
        if column == len(row):
            row.append(data.draw(cell))
        else:
            row[column] = data.draw(cell)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    text = buffer.getvalue()
    if data.draw(st.booleans()):  # raw damage too: cut or insert characters
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + data.draw(st.text(max_size=5)) + text[at + 1 :]
    folder = tmp_path_factory.mktemp("xcdc-fuzz")
    (folder / "xcdc_recordings.csv").write_text(text)
    try:
        dataset = XCDC(folder)
        dataset.summary()
    except GeoforensicsError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(
            validate_coords([r.latitude, r.longitude]) for r in dataset if r.latitude is not None
        )


@SETTINGS
@given(st.lists(st.lists(st.one_of(st.text(max_size=6), st.floats().map(str)), max_size=3),
                max_size=6))  # fmt: skip
def test_gallery_csv_reader_on_random_rows(
    tmp_path_factory: pytest.TempPathFactory, rows: list
) -> None:
    assume(all("\x00" not in cell for row in rows for cell in row))
    path = tmp_path_factory.mktemp("gallery-csv") / "places.csv"
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["lat", "lon"], *rows])
    path.write_text(buffer.getvalue())
    try:
        coords = read_csv_coords(path)
    except GeoforensicsError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert validate_coords(coords).all()
