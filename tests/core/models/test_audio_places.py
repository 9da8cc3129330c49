"""One path from audio to places: ``locate --method agclip``, ``check``'s audio modality, the
app's Locate page and the library function give identical places for the same recording."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from geoforensics.core import cli
from geoforensics.core.errors import InputError
from geoforensics.core.geo.gallery import (
    area_log_prior,
    from_coords,
    gallery_log_prior,
    resolve_gallery,
)
from geoforensics.core.geo.gazetteer import PLACE_ROW_KEYS

GALLERY = "grid-10deg"
TOP_K = 4
RADIUS_KM = 500.0


@pytest.fixture(scope="module")
def agclip_dir(tiny_agclip_dir: Path) -> Path:
    """The shared tiny AG-CLIP model (conftest)."""
    return tiny_agclip_dir


@pytest.fixture(scope="module")
def chirp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 s of a rising chirp in noise (several windows, one timeline segment)."""
    rate = 22_050
    t = np.arange(7 * rate) / rate
    noise = 0.02 * np.random.default_rng(3).standard_normal(t.size)
    signal = 0.3 * np.sin(2 * np.pi * (900 + 500 * t) * t) + noise
    path = tmp_path_factory.mktemp("audio-places") / "chirp.wav"
    sf.write(path, signal.astype(np.float32), rate)
    return path


def _library(agclip_dir: Path, chirp: Path, **changes: object) -> object:
    from geoforensics.core.models import load_model
    from geoforensics.core.models.audio_places import AudioPlaceOptions, audio_places
    from geoforensics.core.models.model_space import retrieval_index_for_model

    gallery = resolve_gallery(GALLERY)
    index = retrieval_index_for_model(agclip_dir, gallery)
    settings: dict[str, object] = {"top_k": TOP_K, "radius_km": RADIUS_KM, **changes}
    options = AudioPlaceOptions(**settings)  # type: ignore[arg-type]
    return audio_places(load_model(agclip_dir), chirp, gallery, index, options)


def _key(rows: list[dict]) -> list[tuple[int, float, float]]:
    return [
        (int(r["gallery_index"]), float(r["region_probability"]), float(r["point_probability"]))
        for r in rows
    ]


def _assert_same(rows: list[dict], expected: list[dict]) -> None:
    assert [r["gallery_index"] for r in rows] == [r["gallery_index"] for r in expected]
    for got, want in zip(_key(rows), _key(expected), strict=True):
        assert got[1] == pytest.approx(want[1], abs=1e-6)
        assert got[2] == pytest.approx(want[2], abs=1e-6)
    assert [r["label"] for r in rows] == [r["label"] for r in expected]


def test_cli_check_app_and_library_give_identical_places(
    agclip_dir: Path, chirp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoforensics.forensics_app.locate_page import locate_audio_file

    library = _library(agclip_dir, chirp)
    rows = library.top  # type: ignore[attr-defined]
    assert len(rows) == TOP_K and [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert list(rows[0])[: len(PLACE_ROW_KEYS)] == list(PLACE_ROW_KEYS)
    assert "probability" not in rows[0] and rows[0]["radius_km"] == RADIUS_KM
    assert library.prior == "cell area (cos latitude)"  # type: ignore[attr-defined]

    # the CLI: locate --method agclip --json
    argv = ["locate", str(chirp), "--method", "agclip", "--model", str(agclip_dir),
            "--gallery", GALLERY, "--top-k", str(TOP_K), "--radius-km", str(RADIUS_KM),
            "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    located = json.loads(capsys.readouterr().out)
    _assert_same(located["places"], rows)
    assert located["prior"] == "cell area (cos latitude)"

    # check: the report's audio modality and its top places
    out = tmp_path / "check"
    argv = ["check", str(chirp), "--model", str(agclip_dir), "--gallery", GALLERY,
            "--top-k", str(TOP_K), "--no-species", "--max-frames", "0", "--out", str(out),
            "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    audio = report["modalities"]["audio"]
    assert audio["available"] and audio["details"]["prior"] == "cell area (cos latitude)"
    _assert_same(audio["top"], rows)
    assert audio["point"] == pytest.approx([rows[0]["latitude"], rows[0]["longitude"]])
    # one timeline segment holds every window: its place is the clip's top place
    (segment,) = [s for s in report["timeline"] if s["kind"] == "audio"]
    assert segment["point"] == pytest.approx([rows[0]["latitude"], rows[0]["longitude"]])
    assert segment["probability"] == pytest.approx(rows[0]["region_probability"], abs=1e-6)

    # the app's Locate page
    app = locate_audio_file(chirp, str(agclip_dir), GALLERY, TOP_K)
    _assert_same(app.top, rows)
    assert app.probs == pytest.approx(library.probs, abs=1e-9)  # type: ignore[attr-defined]


def test_the_prior_is_one_rule(agclip_dir: Path, chirp: Path) -> None:
    from geoforensics.core.forensics import check_models
    from geoforensics.core.models.audio_places import place_log_probs

    grid = resolve_gallery(GALLERY)
    assert gallery_log_prior(grid) == pytest.approx(area_log_prior(grid.coords))
    points = from_coords(grid.coords[:10], name="points")
    assert gallery_log_prior(points) == pytest.approx(np.full(10, -np.log(10)))
    assert check_models.gallery_log_prior is gallery_log_prior  # the check's models use it
    library = _library(agclip_dir, chirp, radius_km=0.0)
    expected = place_log_probs(library.cosine, area_log_prior(grid.coords))  # type: ignore[attr-defined]
    assert library.log_probs == pytest.approx(expected, abs=1e-12)  # type: ignore[attr-defined]
    assert np.exp(expected).sum() == pytest.approx(1.0)
    # radius 0: the region mass is the point probability and places are ranked by it
    best = np.argsort(-np.exp(expected), kind="stable")[:TOP_K]
    assert [r["gallery_index"] for r in library.top] == best.tolist()  # type: ignore[attr-defined]


def test_bench_top1_is_the_argmax_of_the_one_distribution(agclip_dir: Path, chirp: Path) -> None:
    from geoforensics.core.models.audio_places import top1_places
    from geoforensics.core.models.model_space import retrieval_index_for_model
    from geoforensics.core.species.fusion import agclip_temperature

    library = _library(agclip_dir, chirp, radius_km=0.0)
    grid = resolve_gallery(GALLERY)
    index = retrieval_index_for_model(agclip_dir, grid)
    embedding = library.embedding  # type: ignore[attr-defined]
    best = top1_places(np.stack([embedding, -embedding]), grid, index)
    assert best[0] == library.top[0]["gallery_index"]  # type: ignore[attr-defined]
    flipped = -library.cosine * agclip_temperature()  # type: ignore[attr-defined]
    assert best[1] == int(np.argmax(flipped + area_log_prior(grid.coords)))


def test_options_are_checked(agclip_dir: Path, chirp: Path) -> None:
    for bad, message in (
        ({"method": "birdnet"}, "method"),
        ({"top_k": 0}, "--top-k"),
        ({"radius_km": -1.0}, "--radius-km"),
        ({"fusion_weight": -1.0}, "--fusion-weight"),
        ({"pooling": "median"}, "pooling"),
    ):
        with pytest.raises(InputError, match=message):
            _library(agclip_dir, chirp, **bad)
    with pytest.raises(InputError, match="no such audio file"):
        _library(agclip_dir, chirp.with_name("missing.wav"))


def test_fused_with_a_given_species_term(agclip_dir: Path, chirp: Path) -> None:
    agclip = _library(agclip_dir, chirp, radius_km=0.0)
    coords = agclip.coords  # type: ignore[attr-defined]
    species = -np.abs(coords[:, 0] - 40.0) / 5.0  # a species term peaked at 40 N
    from geoforensics.core.models import load_model
    from geoforensics.core.models.audio_places import AudioPlaceOptions, audio_places
    from geoforensics.core.models.model_space import retrieval_index_for_model

    grid = resolve_gallery(GALLERY)
    index = retrieval_index_for_model(agclip_dir, grid)
    options = AudioPlaceOptions(method="fused", top_k=TOP_K, radius_km=0.0, fusion_weight=2.0)
    windows = agclip.windows  # type: ignore[attr-defined]
    fused = audio_places(load_model(agclip_dir), windows, grid, index, options, species)
    log_expected = agclip.log_probs + 2.0 * species  # type: ignore[attr-defined]
    expected = np.exp(log_expected - log_expected.max())
    assert fused.probs == pytest.approx(expected / expected.sum(), rel=1e-9)
    assert fused.fusion_weight == 2.0 and "species_probability" in fused.top[0]
    with pytest.raises(InputError, match="species log-likelihood"):
        audio_places(load_model(agclip_dir), windows, grid, index, options)


def test_segment_distributions_equal_audio_places_of_each_segment(
    agclip_dir: Path, chirp: Path
) -> None:
    """A check's timeline scores all its segments in one pass; each row must be what
    ``audio_places`` gives for that segment's windows alone."""
    from geoforensics.core.models import load_model
    from geoforensics.core.models.audio_places import (
        AudioPlaceOptions,
        agclip_segment_probs,
        audio_places,
        segment_windows,
    )
    from geoforensics.core.models.inference import window_outputs
    from geoforensics.core.models.model_space import retrieval_index_for_model

    model = load_model(agclip_dir)
    gallery = resolve_gallery(GALLERY)
    index = retrieval_index_for_model(agclip_dir, gallery)
    windows = window_outputs(model, chirp)
    groups = [np.arange(0, 2), np.arange(2, len(windows)), np.array([1])]
    options = AudioPlaceOptions(top_k=1, radius_km=RADIUS_KM)
    probs = agclip_segment_probs(model, windows, groups, gallery, index, options)
    assert probs.shape == (3, len(gallery.coords))
    for rows, row in zip(groups, probs, strict=True):
        alone = audio_places(model, segment_windows(windows, rows), gallery, index, options)
        # float32 gallery scores, batched vs one query: ~1e-7 apart, times the temperature
        np.testing.assert_allclose(row, alone.probs, rtol=1e-5, atol=1e-12)
    assert not np.allclose(probs[0], probs[1])  # the segments differ
    with pytest.raises(InputError, match="AG-CLIP's"):
        fused = AudioPlaceOptions(method="fused", top_k=1)
        agclip_segment_probs(model, windows, groups, gallery, index, fused)
