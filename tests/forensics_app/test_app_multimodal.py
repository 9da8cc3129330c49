"""Cross-modal ranking, affinity maps and H3 aggregation (geoforensics.core.multimodal)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from repo_paths import TESTS

from geoforensics.core import multimodal as mm
from geoforensics.core.errors import DatasetNotFoundError, InputError
from geoforensics.core.geoclip.retrieval import RetrievalIndex

FAKE_INAT = TESTS / "data" / "inatsounds"


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


# ------------------------------------------------------------------------------ ranking


def test_rank_by_similarity_orders_by_cosine_with_softmax_probabilities() -> None:
    query = np.array([1.0, 0.0, 0.0])
    candidates = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    ranked = mm.rank_by_similarity(query, candidates, ["b", "a", "c", "d"], temperature=10.0)
    assert [r.label for r in ranked] == ["a", "c", "b", "d"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4]
    assert [r.score for r in ranked] == pytest.approx([1.0, math.sqrt(0.5), 0.0, -1.0])
    expected = np.exp(10 * np.array([1.0, math.sqrt(0.5), 0.0, -1.0]))
    expected /= expected.sum()
    assert [r.probability for r in ranked] == pytest.approx(expected.tolist())
    assert sum(r.probability for r in ranked) == pytest.approx(1.0)
    # GeoCLIP's temperature by default (exp(3.681) ~ 39.7), keys kept apart from labels, top-k
    top = mm.rank_by_similarity(query, candidates, ["b", "a", "c", "d"], keys=list("1234"), top_k=2)
    assert [(r.key, r.label) for r in top] == [("2", "a"), ("3", "c")]
    odds = top[0].probability / top[1].probability
    assert math.log(odds) / (1.0 - math.sqrt(0.5)) == pytest.approx(39.69, abs=0.02)
    assert top[0].as_dict() == {
        "rank": 1,
        "key": "2",
        "label": "a",
        "score": top[0].score,
        "probability": top[0].probability,
    }


@pytest.mark.parametrize(
    ("query", "candidates", "labels", "message"),
    [
        (np.zeros(3), np.eye(3), list("abc"), "zero vector"),
        (np.ones(2), np.eye(3), list("abc"), "does not match"),
        (np.ones(3), np.eye(3), list("ab"), "3 candidates but 2 labels"),
        (np.array([1.0, np.nan, 0.0]), np.eye(3), list("abc"), "NaN"),
    ],
)
def test_rank_by_similarity_rejects_bad_input(
    query: np.ndarray, candidates: np.ndarray, labels: list[str], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        mm.rank_by_similarity(query, candidates, labels)


def test_country_prompts_cover_iso_countries() -> None:
    codes, names, prompts = mm.country_prompts()
    assert len(codes) == len(set(codes)) >= 240
    assert len(names) == len(prompts) == len(codes)
    assert names[codes.index("KE")] == "Kenya"
    assert prompts[codes.index("KE")] == "a sound recorded in Kenya"
    assert names[codes.index("BO")] == "Bolivia"  # common name, not the ISO long form
    _c, _n, custom = mm.country_prompts("birdsong from {country}")
    assert custom[codes.index("FR")] == "birdsong from France"
    with pytest.raises(InputError, match=r"\{country\}"):
        mm.country_prompts("a sound")


class _HashEncoder:
    """A text encoder whose embedding is a fixed random direction per text."""

    def __init__(self) -> None:
        self.calls = 0

    def embed_texts(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(16) for t in texts]
        return _unit(np.array(rows)).astype(np.float32)


def test_rank_countries_finds_the_prompt_the_query_matches() -> None:
    encoder = _HashEncoder()
    kenya = encoder.embed_texts(["a sound recorded in Kenya"])[0]
    ranked = mm.rank_countries(kenya, encoder, top_k=3)
    assert ranked[0].key == "KE" and ranked[0].label == "Kenya"
    assert ranked[0].score == pytest.approx(1.0, abs=1e-6)
    assert len(ranked) == 3 and ranked[1].score < 1.0
    embeddings = mm.country_text_embeddings(encoder)
    calls = encoder.calls
    again = mm.rank_countries(kenya, text_embeddings=embeddings, top_k=3)
    assert encoder.calls == calls  # precomputed embeddings skip the text tower
    assert [r.key for r in again] == [r.key for r in ranked]
    with pytest.raises(InputError, match="text encoder"):
        mm.rank_countries(kenya)


def test_rank_countries_through_the_tiny_clip(tmp_path: Path) -> None:
    """The same code path as CLIP ViT-L/14: prompts -> text tower -> GeoCLIP MLP -> ranking."""
    import runpy

    from geoforensics.core.vision import load_geo_image_text_encoder

    maker = runpy.run_path(str(TESTS / "data" / "clip" / "data.py"), run_name="clip")
    encoder = load_geo_image_text_encoder(maker["write_tiny_clip"](tmp_path / "clip"))
    embeddings = mm.country_text_embeddings(encoder)
    assert embeddings.shape == (len(mm.country_names()), 512)
    assert np.linalg.norm(embeddings, axis=1) == pytest.approx(1.0, abs=1e-5)
    query = encoder.embed_texts(["a sound recorded in Japan"])[0]
    ranked = mm.rank_countries(query, text_embeddings=embeddings, top_k=5)
    assert ranked[0].key == "JP" and ranked[0].score == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------ maps and cells


def test_aggregate_to_cells_sums_means_and_drops_invalid_rows() -> None:
    import h3

    coords = np.array([[10.0, 10.0], [10.01, 10.01], [-30.0, 140.0], [np.nan, 0.0], [95.0, 0]])
    values = np.array([0.2, 0.3, 0.4, 0.05, 0.05])
    cells, sums = mm.aggregate_to_cells(coords, values, res=2)
    near = h3.latlng_to_cell(10.0, 10.0, 2)
    far = h3.latlng_to_cell(-30.0, 140.0, 2)
    assert cells == [near, far]  # largest first
    assert sums == pytest.approx([0.5, 0.4])
    cells, means = mm.aggregate_to_cells(coords, values, res=2, reduce="mean")
    assert dict(zip(cells, means, strict=True)) == pytest.approx({near: 0.25, far: 0.4})
    cells, peaks = mm.aggregate_to_cells(coords, values, res=2, reduce="max")
    assert dict(zip(cells, peaks, strict=True)) == pytest.approx({near: 0.3, far: 0.4})
    with pytest.raises(InputError, match="reduce"):
        mm.aggregate_to_cells(coords, values, reduce="median")
    with pytest.raises(InputError, match="5 locations"):
        mm.aggregate_to_cells(coords, values[:3])


def test_aggregate_keeps_the_total_probability_of_a_gallery() -> None:
    from geoforensics.core.geo.gallery import build_gallery

    gallery = build_gallery("grid-10deg")
    probs = np.random.default_rng(0).dirichlet(np.ones(len(gallery)))
    cells, sums = mm.aggregate_to_cells(gallery.coords, probs, res=1)
    assert sums.sum() == pytest.approx(1.0)
    assert len(set(cells)) == len(cells) <= len(gallery)
    assert np.all(np.diff(sums) <= 0)


def _random_index(n: int = 60, dim: int = 512, seed: int = 0) -> RetrievalIndex:
    rng = np.random.default_rng(seed)
    coords = np.column_stack([rng.uniform(-60, 70, n), rng.uniform(-180, 180, n)])
    return RetrievalIndex(coords, _unit(rng.standard_normal((n, dim))))


def test_affinity_map_peaks_at_the_matching_location() -> None:
    index = _random_index()
    cosine, probs = mm.affinity_map(index.embeddings[17] * 3.0, index, temperature=20.0)
    assert int(np.argmax(cosine)) == 17 and cosine[17] == pytest.approx(1.0, abs=1e-6)
    assert probs.sum() == pytest.approx(1.0)
    expected = np.exp(20.0 * (cosine - cosine.max()))
    assert probs == pytest.approx(expected / expected.sum())


def test_mean_embedding_is_the_unit_direction_of_the_mean() -> None:
    rows = np.array([[3.0, 0.0], [0.0, 0.5]])
    assert mm.mean_embedding(rows) == pytest.approx([math.sqrt(0.5), math.sqrt(0.5)])
    with pytest.raises(InputError, match="zero vector"):
        mm.mean_embedding(np.array([[1.0, 0.0], [-1.0, 0.0]]))


def test_location_map_ranks_region_mass_and_names_places() -> None:
    from geoforensics.core.geo.gallery import build_gallery

    gallery = build_gallery("grid-10deg")
    distance = np.linalg.norm(gallery.coords - np.array([-5.0, 35.0]), axis=1)
    log_probs = -distance / 5.0
    result = mm.location_map(log_probs, gallery.coords, top_k=3)
    assert result.probs.sum() == pytest.approx(1.0)
    assert result.radius_km == 500.0 and len(result.top) == 3
    best = result.top[0]
    assert (best["latitude"], best["longitude"]) == (-5.0, 35.0)
    assert best["region_probability"] >= best["point_probability"] > 0
    assert best["radius_km"] == 500.0 and best["place"]["country"]
    assert "Tanzania" in best["label"] or "Kenya" in best["label"]
    with pytest.raises(InputError, match="scores for"):
        mm.location_map(log_probs[:-1], gallery.coords)


# ------------------------------------------------------------------------ audio models


@pytest.fixture(scope="module")
def tiny_agclip() -> object:
    import torch

    from geoforensics.core.models import AudioGeolocator, ModelConfig

    torch.manual_seed(0)
    model = AudioGeolocator(ModelConfig("agclip", "test_tiny", n_species=4, h3_resolution=0))
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model(torch.rand(8, 3, 64, 64))
    return model.eval()


def test_audio_embedding_and_locate_audio(tiny_agclip: object) -> None:
    from geoforensics.core.species.fusion import agclip_temperature

    wav = next((FAKE_INAT / "train").rglob("*.wav"))
    embedding = mm.audio_embedding(tiny_agclip, wav)  # type: ignore[arg-type]
    assert embedding.shape == (512,) and embedding.dtype == np.float32
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
    assert mm.audio_embedding(tiny_agclip, wav) == pytest.approx(embedding)  # type: ignore[arg-type]
    index = _random_index(n=200)
    result = mm.locate_audio(tiny_agclip, wav, index, top_k=4, radius_km=0)  # type: ignore[arg-type]
    cosine = index.embeddings @ embedding
    expected = np.exp(agclip_temperature() * (cosine - cosine.max()))
    assert result.probs == pytest.approx(expected / expected.sum(), rel=1e-4)
    assert result.scores == pytest.approx(cosine, abs=1e-5)
    assert [row["gallery_index"] for row in result.top] == np.argsort(-cosine)[:4].tolist()
    assert result.info["source"] == str(wav)


def test_species_soundscape_is_the_mean_recording_embedding(tiny_agclip: object) -> None:
    from geoforensics.core.data import INatSounds

    counts = dict(mm.species_counts(FAKE_INAT))
    assert counts["Turdus merula"] == 2
    recordings = [
        r
        for split in ("train", "val", "test")
        for r in INatSounds(FAKE_INAT, split=split)
        if r.species == "Turdus merula"
    ]
    index = _random_index(n=100)
    seen: list[float] = []
    result = mm.species_soundscape(
        tiny_agclip,  # type: ignore[arg-type]
        index,
        FAKE_INAT,
        "Turdus merula",
        progress=lambda fraction, _message: seen.append(fraction),
    )
    rows = np.stack([mm.audio_embedding(tiny_agclip, r.path) for r in recordings])  # type: ignore[arg-type]
    expected = _unit(rows.mean(axis=0))
    assert result.n_recordings == 2 and seen[-1] == pytest.approx(1.0)
    assert result.embedding == pytest.approx(expected, abs=1e-5)
    assert result.cosine == pytest.approx(index.embeddings @ expected, abs=1e-5)
    assert result.probs.sum() == pytest.approx(1.0)
    assert result.peak == tuple(index.coords[int(np.argmax(result.cosine))])
    assert result.recording_coords.shape == (2, 2)
    one = mm.species_soundscape(tiny_agclip, index, FAKE_INAT, "Turdus merula", max_recordings=1)  # type: ignore[arg-type]
    assert one.n_recordings == 1
    with pytest.raises(InputError, match="no recording of species 'Homo sapiens'"):
        mm.species_soundscape(tiny_agclip, index, FAKE_INAT, "Homo sapiens")  # type: ignore[arg-type]
    with pytest.raises(DatasetNotFoundError, match="no iNatSounds split"):
        mm.species_counts(FAKE_INAT / "nowhere")


def test_retrieval_needs_an_agclip_model() -> None:
    from geoforensics.core.models import AudioGeolocator, ModelConfig

    model = AudioGeolocator(ModelConfig("regression", "test_tiny", n_species=0, h3_resolution=0))
    wav = next((FAKE_INAT / "train").rglob("*.wav"))
    with pytest.raises(InputError, match="needs an AG-CLIP model"):
        mm.audio_embedding(model, wav)
