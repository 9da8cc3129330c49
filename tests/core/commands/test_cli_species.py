"""`geoforensics species`: places, species evidence at a place and week, the command line."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from numpy.typing import ArrayLike

from geoforensics.core import cli
from geoforensics.core.errors import InputError
from geoforensics.core.geo.gazetteer import parse_latlon, resolve_place
from geoforensics.core.species import birdnet_files
from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available
from geoforensics.core.species.detections import Detection
from geoforensics.core.species.evidence import (
    NOTE_EXPECTED,
    NOTE_OUT_OF_SEASON,
    NOTE_SOUND_CLASS,
    NOTE_UNEXPECTED,
    NOTE_UNMATCHED,
    evidence_payload,
    format_evidence,
    is_sound_class,
    species_evidence,
)

needs_birdnet = pytest.mark.skipif(not birdnet_available(), reason=INSTALL_HINT)


class SeasonalRanges:
    """A range model with three species: one everywhere, one in the northern hemisphere in
    weeks 13-36 (0.05 year-round), one only in the southern hemisphere."""

    species = ("Turdus merula", "Hirundo rustica", "Spheniscus demersus")

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray, object]] = []

    def presence(self, lat: ArrayLike, lon: ArrayLike, week: ArrayLike | None = None) -> np.ndarray:
        lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
        self.calls.append((lat, lon, week))
        north = (lat > 0).astype(float)
        summer = np.ones_like(lat)
        if week is not None:
            weeks = np.broadcast_to(np.asarray(week), lat.shape)
            summer = ((weeks >= 13) & (weeks <= 36)).astype(float)
        swallow = north * (0.05 if week is None else 0.9 * summer)  # year-round: 0.05
        return np.stack([np.full_like(lat, 0.8), swallow, 0.7 * (1 - north)], axis=1)


def _detection(name: str, index: int, start: float, conf: float, windows: int = 1) -> Detection:
    return Detection(name, f"common {name}", index, start, start + 3.0 * windows, conf,
                     conf - 0.01, windows)  # fmt: skip


DETECTIONS: Sequence[Detection] = (
    _detection("Turdus merula", 10, 0.0, 0.9, 2),
    _detection("Turdus merula", 10, 12.0, 0.6),
    _detection("Hirundo rustica", 20, 3.0, 0.7),
    _detection("Spheniscus demersus", 30, 6.0, 0.5),
    _detection("Fictus imaginarius", 40, 9.0, 0.4),
    _detection("Siren", 50, 0.0, 0.3),
)


# -------------------------------------------------------------------------------- places


def test_resolve_place_coordinates_cities_and_countries() -> None:
    assert parse_latlon("48.85,2.35") == (48.85, 2.35)
    assert parse_latlon(" -33.9 , 18.4 ") == (-33.9, 18.4)
    assert parse_latlon("-33.9 18.4") == (-33.9, 18.4)
    assert parse_latlon("Paris") is None
    point = resolve_place("-33.92,18.42")
    assert point.kind == "coordinates" and (point.latitude, point.longitude) == (-33.92, 18.42)
    paris = resolve_place("Paris")
    assert paris.kind == "city" and paris.country_code == "FR" and paris.country == "France"
    assert abs(paris.latitude - 48.85) < 0.1 and abs(paris.longitude - 2.35) < 0.1
    assert "Paris, France" in paris.label()
    assert resolve_place("  paris ").country_code == "FR"  # case and spaces do not matter
    texas = resolve_place("Paris, US")  # a country narrows the name
    assert texas.country_code == "US" and texas.longitude < -90
    assert resolve_place("Paris, United States").country_code == "US"
    assert resolve_place("Sao Paulo").name == "São Paulo"  # accents do not matter
    kenya = resolve_place("Kenya")  # a country stands for its capital
    assert kenya.kind == "country" and kenya.name == "Nairobi" and kenya.country_code == "KE"
    assert "capital of Kenya" in kenya.note and abs(kenya.latitude + 1.28) < 0.1
    assert resolve_place("KE").name == "Nairobi"
    payload = kenya.as_dict()
    assert payload["kind"] == "country" and payload["population"] > 1_000_000


def test_resolve_place_errors_are_one_line() -> None:
    for text, message in [
        ("Nowhereville Qqq", "offline gazetteer"),
        ("91,0", "latitude must lie in [-90, 90]"),
        ("10,200", "longitude"),
        ("   ", "give LAT,LON or a place name"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)) as error:
            resolve_place(text)
        assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------ evidence


def test_species_evidence_at_a_place_and_week() -> None:
    assert is_sound_class("Siren") and is_sound_class("Human vocal")
    assert not is_sound_class("Turdus merula") and not is_sound_class("Gryllus assimilis")
    model = SeasonalRanges()
    london = resolve_place("51.5,-0.1")
    # June in London: blackbird and swallow expected, penguin not, one name unknown
    evidence = species_evidence(
        DETECTIONS, threshold=0.25, place=london, week=21, range_model=model,
        range_model_name="seasonal",
    )  # fmt: skip
    found = {f.scientific: f for f in evidence.findings}
    assert [f.scientific for f in evidence.findings] == [
        "Turdus merula", "Hirundo rustica", "Spheniscus demersus", "Fictus imaginarius", "Siren",
    ]  # fmt: skip
    blackbird = found["Turdus merula"]
    assert blackbird.n_windows == 3 and blackbird.max_conf == 0.9
    assert blackbird.mean_conf == pytest.approx((0.89 * 2 + 0.59) / 3)
    assert blackbird.spans() == "0.0-6.0, 12.0-15.0"
    assert blackbird.range_probability == pytest.approx(0.8) and blackbird.note == NOTE_EXPECTED
    assert found["Hirundo rustica"].range_probability == pytest.approx(0.9)
    penguin = found["Spheniscus demersus"]
    assert penguin.range_probability == 0.0 and penguin.note == NOTE_UNEXPECTED
    assert penguin.range_probability_year == 0.0 and penguin.unexpected
    assert found["Fictus imaginarius"].note == NOTE_UNMATCHED
    assert found["Fictus imaginarius"].range_probability is None
    assert found["Siren"].note == NOTE_SOUND_CLASS and not found["Siren"].unexpected
    assert evidence.unmatched == ["Fictus imaginarius"] and evidence.n_unexpected == 1
    assert evidence.week == 21 and evidence.n_species_total == 5
    # one presence call for the week and one year-round, both at the place only
    assert len(model.calls) == 2 and model.calls[0][0].tolist() == [51.5]
    # January in London: the swallow is out of season (present year-round, not that week)
    winter = species_evidence(DETECTIONS, place=london, week=2, range_model=model)
    swallow = next(f for f in winter.findings if f.scientific == "Hirundo rustica")
    assert swallow.note == NOTE_OUT_OF_SEASON and swallow.range_probability == 0.0
    assert swallow.range_probability_year == pytest.approx(0.05)
    assert winter.n_unexpected == 2
    table = format_evidence(winter)
    assert "out of season (year-round 0.050)" in table and "unexpected here" in table
    assert table.splitlines()[0].split() == [
        "scientific", "common", "max_conf", "windows", "heard", "at", "(s)", "range_p", "note",
    ]  # fmt: skip
    # no date: year-round values only; a higher bar flags the blackbird as well
    year = species_evidence(DETECTIONS, place=london, range_model=model, unexpected_below=0.85)
    assert {f.scientific for f in year.findings if f.unexpected} == {
        "Turdus merula", "Hirundo rustica", "Spheniscus demersus",
    }  # fmt: skip
    # without a place: detections only, no range columns; --top keeps the most confident
    plain = species_evidence(DETECTIONS, limit=2)
    assert [f.scientific for f in plain.findings] == ["Turdus merula", "Hirundo rustica"]
    assert plain.n_species_total == 5 and all(f.note is None for f in plain.findings)
    assert "range_p" not in format_evidence(plain)
    with pytest.raises(InputError, match="--top"):
        species_evidence(DETECTIONS, limit=0)


def test_evidence_json_document() -> None:
    from datetime import date

    evidence = species_evidence(
        DETECTIONS, place=resolve_place("Paris"), week=21, range_model=SeasonalRanges(),
        range_model_name="seasonal",
    )  # fmt: skip
    payload = evidence_payload(evidence, "x.wav", 15.0, 5, date(2024, 6, 1))
    payload = json.loads(json.dumps(payload))  # JSON-ready
    assert payload["date"] == "2024-06-01" and payload["week"] == 21
    assert payload["place"]["country_code"] == "FR" and payload["range_model"] == "seasonal"
    assert payload["n_species"] == 5 and payload["n_unexpected"] == 1
    assert payload["unmatched"] == ["Fictus imaginarius"]
    blackbird = payload["species"][0]
    assert set(blackbird) == {
        "scientific", "common", "birdnet_index", "max_conf", "mean_conf", "n_windows",
        "detections", "range_species", "range_probability", "range_probability_year_round",
        "unexpected", "note",
    }  # fmt: skip
    assert [d["start_s"] for d in blackbird["detections"]] == [0.0, 12.0]  # time order
    assert blackbird["unexpected"] is False and blackbird["range_probability"] == 0.8


# --------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def chirp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 s of rising chirps and noise at 48 kHz."""
    rate = 48_000
    t = np.arange(7 * rate) / rate
    rng = np.random.default_rng(0)
    phase = 2 * np.pi * np.cumsum(2500 + 1500 * ((t * 2) % 1.0)) / rate
    gate = (np.sin(2 * np.pi * 1.5 * t) > 0.3).astype(float)
    signal = 0.3 * gate * np.sin(phase) + 0.01 * rng.standard_normal(t.size)
    path = tmp_path_factory.mktemp("species-audio") / "chirp.wav"
    sf.write(path, signal.astype(np.float32), rate)
    return path


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("geoforensics: error: ") and "\n" not in err, err
    return err


def test_species_command_errors(
    chirp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        ([str(chirp), "--at", "Nowhereville Qqq"], "offline gazetteer"),
        ([str(chirp), "--at=-95,10"], "latitude must lie"),
        ([str(chirp), "--date", "2024-02-30"], "YYYY-MM-DD"),
        ([str(chirp), "--threshold", "0"], "--threshold"),
        ([str(chirp), "--top", "0"], "--top"),
        ([str(tmp_path / "missing.wav")], "no such audio file"),
    ]
    for argv, message in cases:
        assert cli.main(["species", *argv]) == 1, argv
        assert message in _one_line_error(capsys), argv


def test_species_without_birdnet_says_how_to_install(
    chirp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(birdnet_files, "birdnet_available", lambda: False)
    assert cli.main(["species", str(chirp), "--at", "Paris"]) == 1
    err = _one_line_error(capsys)
    assert INSTALL_HINT in err and "pip install 'geoforensics[birdnet]'" in err


@needs_birdnet
def test_species_command_with_birdnet(chirp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["species", str(chirp), "--threshold", "0.0001", "--top", "3", "--at", "Paris",
            "--date", "2024-06-01", "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["recording"] == str(chirp) and out["duration_s"] == pytest.approx(7.0)
    assert out["n_windows"] == 3 and out["threshold"] == 0.0001
    assert out["date"] == "2024-06-01" and out["week"] == 21
    assert out["place"]["name"] == "Paris" and out["range_model"] == "birdnet"
    assert out["unexpected_below"] == 0.03
    species = out["species"]
    assert 1 <= len(species) <= 3 and out["n_species"] >= len(species)
    confs = [s["max_conf"] for s in species]
    assert confs == sorted(confs, reverse=True) and all(0.0001 <= c <= 1 for c in confs)
    for entry in species:
        assert entry["detections"] and entry["n_windows"] == sum(
            d["n_windows"] for d in entry["detections"]
        )
        for span in entry["detections"]:
            assert 0.0 <= span["start_s"] < span["end_s"] <= 7.0 + 1e-6
        if entry["note"] == NOTE_SOUND_CLASS:
            assert entry["range_probability"] is None
        else:  # BirdNET's range model lists all of BirdNET's species
            assert entry["range_species"] == entry["scientific"]
            assert 0.0 <= entry["range_probability"] <= 1.0
            assert 0.0 <= entry["range_probability_year_round"] <= 1.0
            expected = entry["range_probability"] >= 0.03
            assert entry["unexpected"] is (not expected)
    assert out["unmatched"] == []
    # the plain-text table, at coordinates given with a negative latitude
    argv = ["species", str(chirp), "--threshold", "0.0001", "--top", "2", "--at=-33.92,18.42"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"recording: {chirp} (7.0 s, 3 BirdNET windows of 3 s)")
    assert "at: (-33.920, 18.420); year-round (no date); range model birdnet" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("scientific"))
    assert "range_p" in lines[header] and len(lines[header + 1 : header + 3]) == 2
    assert "(2 most confident shown; --top)" in text
