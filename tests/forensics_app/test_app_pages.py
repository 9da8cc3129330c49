"""The Streamlit app driven page by page with ``streamlit.testing.v1.AppTest``.

The pages run for real (models, galleries, the check pipeline); a small gallery
(``grid-10deg``, 648 points) keeps them fast. CLIP ViT-L/14 is absent here, so the CLIP parts
run once without weights (the page must say how to get them) and once on the tiny random CLIP
of ``tests/data/clip`` (the same code path).
"""

from __future__ import annotations

import io
import json
import os
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pytest
import soundfile as sf
from repo_paths import REPO, TESTS
from streamlit.testing.v1 import AppTest

from geoforensics.core.paths import assets_dir

APP = REPO / "forensics_app" / "app.py"
GALLERY = "grid-10deg"
TIMEOUT = 180


@pytest.fixture(scope="module")
def world(train_micro_world: Path) -> Path:
    """The session's small SYNTHETIC world (80 recordings; conftest.py)."""
    return train_micro_world


@pytest.fixture(scope="module")
def bench_out(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geoforensics.eval.bench import run_bench

    out = tmp_path_factory.mktemp("app-bench")
    run_bench(world, preset="tiny", rows=("naive", "species-oracle-full"), out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    maker = runpy.run_path(str(TESTS / "data" / "clip" / "data.py"), run_name="c")
    return Path(maker["write_tiny_clip"](tmp_path_factory.mktemp("tiny-clip") / "clip"))


@pytest.fixture
def no_clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No CLIP weights anywhere: no $GEOFORENSICS_CLIP and an empty Hugging Face cache."""
    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.delenv("GEOFORENSICS_CLIP", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))


@pytest.fixture
def with_clip(tiny_clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOFORENSICS_CLIP", str(tiny_clip))


@pytest.fixture(autouse=True)
def app_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GEOFORENSICS_APP_GALLERY", GALLERY)
    yield


def _open(page: str | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def _decks(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.json) for chart in at.get("deck_gl_json_chart")]


def _layer(deck: dict[str, Any], kind: str) -> dict[str, Any]:
    layers = [layer for layer in deck["layers"] if layer["@@type"] == kind]
    assert layers, f"no {kind} in {[layer['@@type'] for layer in deck['layers']]}"
    return layers[0]


def _check_offline_deck(deck: dict[str, Any]) -> None:
    """No basemap (map_provider None: no mapProvider/mapStyle keys), outlines, and hexagons
    of probabilities (positive, summing to at most 1)."""
    assert "mapProvider" not in deck and "mapStyle" not in deck
    outlines = _layer(deck, "GeoJsonLayer")["data"]
    assert outlines["type"] == "FeatureCollection" and len(outlines["features"]) > 150
    hexes = _layer(deck, "H3HexagonLayer")["data"]
    assert hexes and all(len(row["color"]) == 4 and row["value"] > 0 for row in hexes)
    assert sum(row["value"] for row in hexes) <= 1.0 + 1e-6
    assert all(h3.is_valid_cell(row["hex"]) for row in hexes)


def _texts(at: AppTest, kind: str) -> list[str]:
    return [str(element.value) for element in at.get(kind)]


def _button(at: AppTest, key: str) -> Any:
    return next(b for b in at.button if b.key == key)


def _wav_bytes(seconds: float = 6.0, rate: int = 22_050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    noise = 0.02 * np.random.default_rng(3).standard_normal(t.size)
    signal = (0.3 * np.sin(2 * np.pi * (2000 + 500 * t) * t) + noise).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, signal, rate, format="WAV")
    return buffer.getvalue()


def _png_bytes(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, format="PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------- navigation


def test_app_opens_on_the_check_page_and_every_page_runs() -> None:
    at = _open()
    assert _texts(at, "title") == ["Check a clip"]
    assert [r.key for r in at.radio] == ["check_source"]
    pages = [
        ("locate_page.py", "Locate"),
        ("retrieve_page.py", "Retrieve"),
        ("batch_page.py", "Batch"),
        ("benchmark_page.py", "Benchmark"),
        ("check_page.py", "Check a clip"),
    ]
    for page, title in pages:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert _texts(at, "title") == [title]


# ------------------------------------------------------------------------------ check


@pytest.fixture(scope="module")
def warm_check_models(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Load the check's models and run one check outside the page (Streamlit's resource
    cache is per process, so the pages find the models loaded, as in a running app after its
    first check): the page tests then time the page, not the first import and load of torch,
    BirdNET, ffmpeg and the gallery."""
    from geoforensics.core.forensics import CheckOptions, run_check, write_report
    from geoforensics.forensics_app import common

    model = common.default_model_dir()  # the demo clip's model, as the page passes it
    models = common.check_models(str(model), GALLERY, None, True)
    options = CheckOptions(model_dir=model, gallery=GALLERY)
    report = run_check(common.demo_clip_path(), options, models=models)
    write_report(report, tmp_path_factory.mktemp("warm-report"))


def _check_result_shown(at: AppTest) -> Any:
    assert not at.exception, at.exception
    result = at.session_state["check_result"]
    report = result.report
    verdicts = [
        s
        for s in (*_texts(at, "error"), *_texts(at, "success"), *_texts(at, "warning"))
        if s.startswith("Verdict:")
    ]
    assert verdicts == [f"Verdict: **{report.verdict.label.upper()}** — {result.clip_name}"]
    frames = {df.value.columns[0]: df.value for df in at.dataframe}
    modalities = frames["modality"]
    assert list(modalities["key"]) == list(report.modalities)
    assert len(frames["pair"]) == len(report.discrepancies) > 0
    timeline = frames["kind"]
    assert len(timeline) == len(report.timeline)
    downloads = {b.proto.label for b in at.download_button}
    assert downloads == {"Download report.json", "Download report.html"}
    assert json.loads(result.files["report.json"])["verdict"]["label"] == report.verdict.label
    assert b'<img src="data:image/png' in result.files["report.html"]
    (deck,) = _decks(at)
    _check_offline_deck(deck)
    markers = _layer(deck, "ScatterplotLayer")["data"]
    assert any(row["label"].startswith("Claimed place #1") for row in markers)
    return report


def test_check_page_runs_the_demo_from_the_query_parameter(
    no_clip: None, warm_check_models: None
) -> None:
    at = _open(demo="1")
    report = _check_result_shown(at)
    assert report.clip.name == "demo_clip.mp4"
    assert report.parameters["claimed"] == "Nairobi"
    # the demo's GPS tag (Michigan) contradicts the claimed Nairobi: a mismatch
    assert report.verdict.label == "mismatch"
    assert _texts(at, "error")[0].startswith("Verdict: **MISMATCH**")
    audio = report.modalities["audio"]
    assert audio.available and audio.probs is not None and len(audio.probs) == 648
    frames = report.modalities["frames"]
    assert not frames.available and "weights" in (frames.reason or "")
    gps = report.modalities["metadata_gps"]
    assert gps.available and gps.point == pytest.approx((42.635, -83.287), abs=1e-3)
    # the heatmap follows the chosen modality; arcs join the compared modalities
    (deck,) = _decks(at)
    arcs = _layer(deck, "ArcLayer")["data"]
    assert len(arcs) == len(report.discrepancies)
    # a second run of the page keeps the result (no re-analysis) and the models are cached
    at.run()
    assert at.session_state["check_result"].report is report


def test_check_page_analyses_an_uploaded_clip(no_clip: None, warm_check_models: None) -> None:
    at = _open()
    at.radio(key="check_source").set_value("Upload a clip").run()
    uploader = at.get("file_uploader")[0]
    clip = assets_dir() / "demo" / "demo_clip.mp4"
    uploader.upload("my clip (copy).mp4", clip.read_bytes(), "video/mp4")
    at.text_input(key="check_claimed_1").set_value("42.6,-83.3")
    _button(at, "check_run").click().run()
    report = _check_result_shown(at)
    assert at.session_state["check_result"].clip_name == "my clip (copy).mp4"
    assert report.modalities["claimed"].point == pytest.approx((42.6, -83.3))
    # the private copy of the upload is gone once the analysis is over
    assert not report.clip.exists()


def test_check_page_without_a_clip_says_so() -> None:
    at = _open()
    at.radio(key="check_source").set_value("Upload a clip").run()
    _button(at, "check_run").click().run()
    assert "Choose a clip to upload first." in _texts(at, "warning")
    assert "check_result" not in at.session_state


def test_upload_limits_and_private_copies(tmp_path: Path) -> None:
    from geoforensics.core.errors import InputError
    from geoforensics.forensics_app import common

    assert common.MAX_UPLOAD_MB == 500
    common.check_upload_size(1, "a.mp4")
    with pytest.raises(InputError, match="over the app's 500 MB upload limit"):
        common.check_upload_size(501 * 1024 * 1024, "big.mp4")
    with pytest.raises(InputError, match="empty"):
        common.check_upload_size(0, "nothing.mp4")
    assert common.safe_name("../../etc/pass wd.mp4") == "pass_wd.mp4"
    assert common.safe_name("...") == "upload"

    class Upload:
        name = "clip.wav"

        def getvalue(self) -> bytes:
            return b"RIFF"

    with common.private_copies([Upload()]) as (path,):
        assert path.read_bytes() == b"RIFF" and path.name.endswith("clip.wav")
        assert (path.parent.stat().st_mode & 0o777) == 0o700
    assert not path.parent.exists()


# ----------------------------------------------------------------------------- locate


def test_locate_page_audio_demo_and_upload() -> None:
    at = _open("locate_page.py")
    _button(at, "locate_audio_run").click().run()
    assert not at.exception, at.exception
    (deck,) = _decks(at)
    _check_offline_deck(deck)
    markers = _layer(deck, "ScatterplotLayer")["data"]
    assert len(markers) == 5
    (table,) = [df.value for df in at.dataframe]
    assert list(table["rank"]) == [1, 2, 3, 4, 5]
    assert table["P(within 500 km)"].between(0, 1).all()
    location, modality, title = at.session_state["locate_result"]
    assert modality == "audio" and title == "AG-CLIP: demo_soundscape.ogg"
    assert location.probs.sum() == pytest.approx(1.0) and len(location.probs) == 648

    at.radio(key="locate_audio_source").set_value("Upload audio").run()
    at.get("file_uploader")[0].upload("chirp.wav", _wav_bytes(), "audio/wav")
    at.number_input(key="locate_top_k").set_value(3)
    _button(at, "locate_audio_run").click().run()
    assert not at.exception, at.exception
    location, _modality, title = at.session_state["locate_result"]
    assert title.startswith("AG-CLIP: chirp.wav") and len(location.top) == 3
    # the SYNTHETIC demo model does not speak for an upload unlabelled
    assert title.endswith("(model trained on a SYNTHETIC world: not evidence for real recordings)")
    assert any("SYNTHETIC" in w for w in _texts(at, "warning"))
    (table,) = [df.value for df in at.dataframe]
    assert len(table) == 3


def test_locate_page_image_and_text_say_how_to_get_clip(no_clip: None) -> None:
    at = _open("locate_page.py")
    for mode in ("Image", "Text"):
        at.radio(key="locate_mode").set_value(mode).run()
        assert not at.exception, at.exception
        (warning,) = _texts(at, "warning")
        assert warning.startswith("CLIP ViT-L/14 weights not found")
        assert "geoforensics weights download clip" in warning
        assert not at.get("file_uploader") and not _decks(at)


def test_locate_page_image_and_text_with_a_clip(with_clip: None) -> None:
    at = _open("locate_page.py")
    at.radio(key="locate_mode").set_value("Text").run()
    at.text_input(key="locate_text").set_value("a rainforest at dawn")
    _button(at, "locate_text_run").click().run()
    assert not at.exception, at.exception
    location, modality, title = at.session_state["locate_result"]
    assert modality == "text" and title == "CLIP text: “a rainforest at dawn”"
    (deck,) = _decks(at)
    _check_offline_deck(deck)
    at.radio(key="locate_mode").set_value("Image").run()
    at.get("file_uploader")[0].upload("red.png", _png_bytes((200, 30, 30)), "image/png")
    at.run()
    _button(at, "locate_image_run").click().run()
    assert not at.exception, at.exception
    location, modality, title = at.session_state["locate_result"]
    assert modality == "frames" and title == "GeoCLIP image: red.png"
    assert location.probs.sum() == pytest.approx(1.0)
    (image,) = at.image
    assert image.captions == ["red.png"]


# --------------------------------------------------------------------------- retrieve


def test_retrieve_page_without_clip_still_draws_soundscapes(
    no_clip: None, world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOFORENSICS_APP_WORLD", str(world))
    at = _open("retrieve_page.py")
    _button(at, "retrieve_embed").click().run()
    assert not at.exception, at.exception
    assert any(
        "audio → text and audio → image retrieval are off" in w for w in _texts(at, "warning")
    )
    embedding, name = at.session_state["retrieve_query"]
    assert name == "demo_soundscape.ogg" and embedding.shape == (512,)
    from geoforensics.core.multimodal import species_counts

    species = at.selectbox(key="retrieve_species")
    (most, count), *_rest = species_counts(world)
    assert species.value == most and species.options[0] == f"{most} ({count} recordings)"
    at.number_input(key="retrieve_limit").set_value(4)
    _button(at, "retrieve_draw").click().run()
    assert not at.exception, at.exception
    result = at.session_state["retrieve_soundscape"]
    assert 1 <= result.n_recordings <= 4 and result.species == most
    (deck,) = _decks(at)
    _check_offline_deck(deck)
    hexes = _layer(deck, "H3HexagonLayer")["data"]
    values = {row["hex"]: row["value"] for row in hexes}
    assert values[h3.latlng_to_cell(*result.peak, 2)] >= result.probs.max() - 1e-9
    markers = _layer(deck, "ScatterplotLayer")["data"]
    assert sum(row["label"] == "Audio (AG-CLIP) #1: highest affinity" for row in markers) == 1


def test_retrieve_page_offers_to_generate_the_demo_world(monkeypatch: pytest.MonkeyPatch) -> None:
    from geoforensics.forensics_app import common

    monkeypatch.delenv("GEOFORENSICS_APP_WORLD", raising=False)
    at = _open("retrieve_page.py")
    assert at.text_input(key="retrieve_world").value == str(common.default_world_dir())
    assert common.default_world_dir().parent.parent == Path(os.environ["GEOFORENSICS_CACHE"])
    assert any("demo world is not generated yet" in i for i in _texts(at, "info"))
    assert _button(at, "retrieve_generate").proto.label == "Generate the demo world"
    at.text_input(key="retrieve_world").set_value("/nowhere/world").run()
    assert "/nowhere/world: no train.json there" in " ".join(_texts(at, "warning"))


def test_retrieve_page_ranks_countries_and_uploaded_images(with_clip: None) -> None:
    at = _open("retrieve_page.py")
    at.radio(key="retrieve_source").set_value("Upload audio").run()
    at.get("file_uploader")[0].upload("chirp.wav", _wav_bytes(), "audio/wav")
    _button(at, "retrieve_embed").click().run()
    assert not at.exception, at.exception
    assert at.session_state["retrieve_query"][1] == "chirp.wav"
    frames = [df.value for df in at.dataframe]
    countries = frames[0]
    assert len(countries) == 15 and list(countries["rank"]) == list(range(1, 16))
    assert countries["cosine"].is_monotonic_decreasing
    uploader = next(u for u in at.get("file_uploader") if u.key == "retrieve_images")
    uploader.set_value(
        [
            ("red.png", _png_bytes((200, 30, 30)), "image/png"),
            ("green.png", _png_bytes((30, 160, 60)), "image/png"),
        ]
    )
    at.run()
    assert not at.exception, at.exception
    images = [df.value for df in at.dataframe][1]
    assert sorted(images["match"]) == ["green.png", "red.png"]
    assert images["probability"].sum() == pytest.approx(1.0, abs=1e-3)


# -------------------------------------------------------------------------- benchmark


def test_benchmark_page_shows_tables_cdf_and_maps(
    bench_out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOFORENSICS_APP_BENCH", str(bench_out))
    at = _open("benchmark_page.py")
    (summary,) = [df.value for df in at.dataframe]
    assert list(summary["row"]) == ["naive", "species-oracle-full"]
    results = json.loads((bench_out / "results.json").read_text())
    median = results["rows"]["naive"]["summary"]["median_km"]["mean"]
    assert summary.loc[0, "median_km"] == f"{median:,.1f}"
    markdown = "\n".join(_texts(at, "markdown"))
    assert "SYNTHETIC" in markdown and "| Naive (random train location) |" in markdown
    captions = [caption for image in at.image for caption in image.captions]
    assert captions[:2] == [
        "Error CDF of the Table 1 rows (paper Fig. 3, left)",
        "Median error per H3 cell of the main method (paper Fig. 3, right)",
    ]
    assert {b.proto.label for b in at.download_button} == {"naive.csv", "species-oracle-full.csv"}

    at.text_input(key="bench_folder").set_value(str(bench_out / "nowhere")).run()
    (error,) = _texts(at, "error")
    assert "results.json: not found" in error
