"""`geoforensics locate`: species-range geolocation from the command line."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from geoforensics.core import cli
from geoforensics.core.geo.distance import haversine_np
from geoforensics.core.geo.gallery import resolve_gallery
from geoforensics.core.geo.gazetteer import nearest_places
from geoforensics.core.geo.worldmap import write_score_map
from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available
from geoforensics.core.species.likelihood import locate_species
from geoforensics.core.synth import SyntheticRangeModel, build_world

needs_birdnet = pytest.mark.skipif(not birdnet_available(), reason=INSTALL_HINT)
GALLERY = "grid-4deg"


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic world's true range model, saved as ROOT/world/range_model.npz."""
    root = tmp_path_factory.mktemp("locate-world")
    build_world("tiny", seed=0).range_model.save((root / "world").resolve())
    return root


@pytest.fixture(scope="module")
def site(world_dir: Path) -> tuple[np.ndarray, list[str]]:
    """A gallery point with at least three species present, and those species' names."""
    model = SyntheticRangeModel.load(world_dir)
    coords = resolve_gallery(GALLERY).coords
    table = model.presence(coords[:, 0], coords[:, 1], week=21)
    present = table > 0.3
    best = int(np.argmax(present.sum(axis=1)))
    assert present[best].sum() >= 3
    names = [model.species[i] for i in np.flatnonzero(present[best])]
    return coords[best], names


def _run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_locate_json_on_a_synthetic_world(
    world_dir: Path, site: tuple[np.ndarray, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    point, names = site
    species = "; ".join([*names, "Nonexistens avis"])
    argv = [
        "locate", "--species", species, "--date", "2024-06-01",
        "--range-model", f"world:{world_dir}", "--gallery", GALLERY, "--top-k", "3", "--json",
    ]  # fmt: skip
    out = _run_json(argv, capsys)
    assert out["week"] == 21 and out["date"] == "2024-06-01"
    assert out["species"]["matched"] == names
    assert out["species"]["unmatched"] == ["Nonexistens avis"]
    assert out["gallery"] == {"name": GALLERY, "size": 45 * 90}
    assert out["likelihood"] == "focal" and out["area_prior"] is True
    places = out["places"]
    assert [p["rank"] for p in places] == [1, 2, 3]
    regions = [p["region_probability"] for p in places]
    assert regions == sorted(regions, reverse=True) and 0 < regions[0] <= 1
    top = np.array([places[0]["latitude"], places[0]["longitude"]])
    assert haversine_np(top, point) < 1500, (top, point)
    for a in places:  # listed places are distinct regions
        for b in places:
            if a is not b:
                assert (
                    haversine_np(
                        np.array([a["latitude"], a["longitude"]]),
                        np.array([b["latitude"], b["longitude"]]),
                    )
                    >= out["radius_km"]
                )
    place = places[0]["place"]
    assert place["country"] and place["distance_km"] >= 0
    # The CLI prints exactly what the library computes.
    model = SyntheticRangeModel.load(world_dir)
    result = locate_species(names, model, resolve_gallery(GALLERY), week=21, k=3)
    assert [p["gallery_index"] for p in places] == result.top.tolist()


def test_locate_text_output_and_map(
    world_dir: Path,
    site: tuple[np.ndarray, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, names = site
    out_map = tmp_path / "maps" / "where.png"
    argv = [
        "locate", "--species", f"{names[0]}; Nonexistens avis", "--range-model",
        str(world_dir), "--gallery", GALLERY, "--top-k", "2", "--radius-km", "0",
        "--likelihood", "presence-absence", "--map", str(out_map),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert f"1 of 2 matched the range model {world_dir}: {names[0]}" in text
    assert "unmatched (ignored): Nonexistens avis" in text
    assert "year-round (no date)" in text and "likelihood presence-absence" in text
    rows = [line for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2 and all(line.rstrip().endswith("km)") for line in rows)
    assert f"map -> {out_map}" in text
    assert out_map.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out_map.parent.iterdir()] == ["where.png"]  # no temp files left


def test_locate_errors_are_one_line(
    world_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["locate", "--range-model", f"world:{world_dir}", "--gallery", GALLERY]
    cases = [
        (["--species", "Nonexistens avis; Fictus fictus"], "'Nonexistens avis', 'Fictus fictus'"),
        ([], "--species"),
        (["--species", " ; "], "no species names"),
        (["--species", "X y", "--date", "2024-13-01"], "YYYY-MM-DD"),
        (["--species", "X y", "--method", "birdnet-range"], "needs an AUDIO file"),
        (["--species", "X y", "--top-k", "0"], "--top-k"),
        (["--species", "X y", "--map", str(tmp_path / "m.jpg")], ".png"),
        ([str(tmp_path / "a.wav"), "--species", "X y"], "not both"),
    ]
    for extra, message in cases:
        assert cli.main(base + extra) == 1, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("geoforensics: error: ") and "\n" not in err
        assert message in err, (extra, err)
    assert cli.main(["locate", "--species", "X y", "--range-model", "nonsense:spec"]) == 1
    assert "range model spec" in capsys.readouterr().err


def test_nearest_places_and_map_helpers(tmp_path: Path) -> None:
    paris, sea = nearest_places(np.array([[48.8566, 2.3522], [-45.0, -140.0]]))
    assert paris.country_code == "FR" and paris.distance_km < 20
    assert "France" in paris.label()
    assert sea.distance_km > 1000  # the label says how far the nearest named place is
    assert nearest_places(np.zeros((0, 2))) == []
    coords = np.array([[0.0, 0.0], [10.0, 10.0], [20.0, -30.0]])
    path = write_score_map(coords, np.array([0.7, 0.2, 0.1]), coords[:1], tmp_path / "m.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert struct.unpack(">II", path.read_bytes()[16:24]) == (1200, 640)  # IHDR width, height


@needs_birdnet
def test_locate_yellow_warbler_in_june_is_in_north_america(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "locate", "--species", "Setophaga petechia", "--date", "2024-06-01",
        "--gallery", "land-2deg", "--json",
    ]  # fmt: skip
    out = _run_json(argv, capsys)
    assert out["range_model"] == "birdnet" and out["week"] == 21
    assert out["species"]["matched"] == ["Setophaga petechia"]
    top = out["places"][0]
    assert 15.0 < top["latitude"] < 72.0 and -170.0 < top["longitude"] < -50.0, top
    assert top["place"]["country_code"] in {"US", "CA", "MX"}


@needs_birdnet
def test_locate_audio_with_birdnet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    audio = tmp_path / "noise.wav"
    sf.write(audio, (0.05 * rng.standard_normal(48_000 * 3)).astype(np.float32), 48_000)
    argv = [
        str(audio), "--species-weights", "top1", "--min-prob", "0", "--gallery", "grid-10deg",
        "--json", "--top-k", "2",
    ]  # fmt: skip
    out = _run_json(["locate", *argv], capsys)
    assert out["source"].startswith("birdnet-range (top1) on ")
    assert len(out["species"]["matched"]) == 1 and out["species"]["weights"] == [1.0]
    assert len(out["places"]) == 2
    assert cli.main(["locate", str(audio), "--min-prob", "1.0", "--gallery", "grid-10deg"]) == 1
    assert "no species with probability >= 1.0" in capsys.readouterr().err


# ------------------------------------------------------------------ AG-CLIP and fused methods


@pytest.fixture(scope="module")
def agclip_model(tiny_agclip_dir: Path) -> Path:
    """The shared tiny AG-CLIP model (conftest)."""
    return tiny_agclip_dir


@pytest.fixture(scope="module")
def chirp_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rate = 22_050
    t = np.arange(5 * rate) / rate
    noise = 0.02 * np.random.default_rng(1).standard_normal(t.size)
    signal = 0.3 * np.sin(2 * np.pi * (1000 + 400 * t) * t) + noise
    path = tmp_path_factory.mktemp("locate-audio") / "chirp.wav"
    sf.write(path, signal.astype(np.float32), rate)
    return path


def test_locate_audio_with_agclip(
    agclip_model: Path, chirp_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoforensics.core.models import load_model
    from geoforensics.core.models.inference import locate_recording
    from geoforensics.core.models.model_space import retrieval_index_for_model
    from geoforensics.core.species.fusion import agclip_temperature

    gallery = "grid-10deg"
    base = [str(chirp_wav), "--method", "agclip", "--model", str(agclip_model),
            "--gallery", gallery, "--top-k", "4"]  # fmt: skip
    out = _run_json(["locate", *base, "--radius-km", "0", "--json"], capsys)
    assert out["method"] == "agclip" and out["source"] == str(chirp_wav)
    assert out["model"] == str(agclip_model) and out["fusion_weight"] is None
    assert out["species"] is None and out["gallery"] == {"name": gallery, "size": 18 * 36}
    assert out["temperature"] == pytest.approx(39.69, abs=0.01) and out["n_windows"] >= 1
    places = out["places"]
    assert [p["rank"] for p in places] == [1, 2, 3, 4]
    assert set(places[0]) == {
        "rank", "gallery_index", "latitude", "longitude", "region_probability",
        "point_probability", "radius_km", "cosine", "agclip_probability", "place", "label",
    }  # fmt: skip
    assert out["prior"] == "cell area (cos latitude)" and places[0]["radius_km"] == 0
    # the CLI's ranking is the library's: softmax(T x cosine + log area prior) over the gallery
    grid = resolve_gallery(gallery)
    coords = grid.coords
    index = retrieval_index_for_model(agclip_model, coords)
    prediction = locate_recording(load_model(agclip_model), chirp_wav, index, k=4)
    cosine = np.asarray(prediction.score_vector, dtype=np.float64)
    logits = agclip_temperature() * cosine + np.log(np.cos(np.radians(coords[:, 0])))
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    assert [p["gallery_index"] for p in places] == np.argsort(-probs, kind="stable")[:4].tolist()
    for place in places:
        i = place["gallery_index"]
        assert place["cosine"] == pytest.approx(cosine[i], abs=1e-6)
        assert place["point_probability"] == pytest.approx(probs[i], rel=1e-5)
        assert place["agclip_probability"] == place["point_probability"]
        assert place["region_probability"] == place["point_probability"]  # radius 0
        assert [place["latitude"], place["longitude"]] == coords[i].tolist()
    # default radius: places ranked by region mass, at least a radius apart; text and map
    out_map = tmp_path / "agclip.png"
    assert cli.main(["locate", *base, "--map", str(out_map)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"AG-CLIP model {agclip_model} on {chirp_wav}")
    assert "cosine x temperature 39.7 + log prior (cell area" in text and "P(<500 km)" in text
    rows = [line for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 4 and all(line.rstrip().endswith("km)") for line in rows)
    assert out_map.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_locate_model_method_errors(
    agclip_model: Path, chirp_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from geoforensics.core.models import AudioGeolocator, ModelConfig, save_model

    torch.manual_seed(0)
    regression = tmp_path / "regression"
    save_model(
        AudioGeolocator(ModelConfig("regression", "test_tiny", n_species=6, h3_resolution=0)),
        regression,
    )
    audio, model = str(chirp_wav), str(agclip_model)
    cases = [
        ([audio, "--method", "agclip"], "needs --model MODEL_DIR"),
        (["--species", "X y", "--method", "agclip", "--model", model], "drop --species"),
        (["--method", "fused", "--model", model], "needs an AUDIO file"),
        ([audio, "--method", "agclip", "--model", model, "--fusion-weight", "2"], "fused only"),
        ([audio, "--method", "fused", "--model", model, "--fusion-weight", "-1"], ">= 0"),
        ([audio, "--model", model], "--method agclip|fused"),
        ([audio, "--method", "agclip", "--model", str(regression)], "a regression model"),
        ([audio, "--method", "agclip", "--model", str(tmp_path / "none")], "not found"),
        ([str(tmp_path / "no.wav"), "--method", "agclip", "--model", model], "no such audio"),
    ]
    for extra, message in cases:
        assert cli.main(["locate", "--gallery", "grid-10deg", *extra]) == 1, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("geoforensics: error: ") and "\n" not in err, (extra, err)
        assert message in err, (extra, err)


@needs_birdnet
def test_locate_audio_fused_with_birdnet(
    agclip_model: Path, chirp_wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [str(chirp_wav), "--method", "fused", "--model", str(agclip_model), "--gallery",
            "grid-10deg", "--top-k", "3", "--radius-km", "0", "--species-weights", "top1",
            "--min-prob", "0", "--date", "2024-06-01", "--json"]  # fmt: skip
    out = _run_json(["locate", *base], capsys)
    assert out["method"] == "fused" and out["fusion_weight"] == 1.0 and out["week"] == 21
    species = out["species"]
    assert len(species["heard"]) == 1 and species["weights"] == [1.0]
    assert species["matched"] == species["heard"] and species["note"] is None
    assert species["heard"][0].count(" ") >= 1  # a species, not a sound class like "Siren"
    places = out["places"]
    assert [p["rank"] for p in places] == [1, 2, 3]
    for place in places:  # fused = AG-CLIP x species, renormalised
        assert 0 < place["point_probability"] <= 1 and 0 <= place["species_probability"] <= 1
    # the same recording with weight 0 is AG-CLIP alone (with the gallery's area prior);
    # inf the species likelihood alone, times the same prior
    alone = _run_json(["locate", *base, "--fusion-weight", "0"], capsys)["places"]
    for place in alone:
        assert place["point_probability"] == pytest.approx(place["agclip_probability"], rel=1e-9)
    species_only = _run_json(["locate", *base, "--fusion-weight", "inf"], capsys)["places"]
    ratio = [
        p["point_probability"] / (p["species_probability"] * np.cos(np.radians(p["latitude"])))
        for p in species_only
    ]
    assert max(ratio) == pytest.approx(min(ratio), rel=1e-6)
    # with weight 1 each listed place's probability is the renormalised product (AG-CLIP's
    # distribution already holds the prior)
    ratio = [
        p["point_probability"] / (p["agclip_probability"] * p["species_probability"])
        for p in places
    ]
    assert max(ratio) == pytest.approx(min(ratio), rel=1e-6)
