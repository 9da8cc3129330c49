"""Gallery embeddings (normalised, cached) and faiss retrieval against brute force."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from geoforensics.core.errors import InputError
from geoforensics.core.geo.gallery import build_gallery
from geoforensics.core.geoclip.embeddings import (
    cached_gallery_embeddings,
    embed_locations,
    embeddings_cache_path,
)
from geoforensics.core.geoclip.location_encoder import load_location_encoder
from geoforensics.core.geoclip.retrieval import RetrievalIndex


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("GEOFORENSICS_CACHE", str(root))
    return root


def _random_gallery(n: int = 400, dim: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    coords = np.column_stack([rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)])
    return coords, rng.normal(size=(n, dim)).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_search_equals_brute_force() -> None:
    coords, emb = _random_gallery()
    queries = np.random.default_rng(1).normal(size=(25, 512)).astype(np.float32) * 7.0
    index = RetrievalIndex(coords, emb)
    top = index.search(queries, k=10)
    brute = _unit(queries.astype(np.float64)) @ _unit(emb.astype(np.float64)).T
    order = np.argsort(-brute, axis=1)[:, :10]
    np.testing.assert_array_equal(top.indices, order)
    np.testing.assert_allclose(top.scores, np.take_along_axis(brute, order, axis=1), atol=1e-5)
    np.testing.assert_array_equal(top.coords, coords[order])
    assert top.indices.shape == (25, 10) and top.coords.shape == (25, 10, 2)


def test_full_scores_and_softmax() -> None:
    coords, emb = _random_gallery(n=300)
    queries = np.random.default_rng(2).normal(size=(4, 512)).astype(np.float32)
    index = RetrievalIndex(coords, emb)
    scores = index.scores(queries)
    assert scores.shape == (4, 300) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, _unit(queries) @ _unit(emb).T, atol=1e-5)
    probs = index.softmax_probs(queries, temperature=39.7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(axis=1), index.search(queries, 1).indices[:, 0])
    logits = 39.7 * (_unit(queries.astype(np.float64)) @ _unit(emb.astype(np.float64)).T)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)
    flatter = index.softmax_probs(queries, temperature=1.0)
    assert (flatter.max(axis=1) < probs.max(axis=1)).all()
    default = index.softmax_probs(queries)  # GeoCLIP's exp(logit_scale) ≈ 39.69
    np.testing.assert_allclose(default, index.softmax_probs(queries, 39.687), atol=1e-4)


def test_retrieval_input_errors() -> None:
    coords, emb = _random_gallery(n=20, dim=8)
    index = RetrievalIndex(coords, emb)
    assert len(index) == 20
    assert index.search(np.ones(8), 1).indices.shape == (1, 1)  # one query as a vector
    with pytest.raises(InputError, match="k=21"):
        index.search(np.ones((1, 8)), 21)
    with pytest.raises(InputError, match="dimension 7"):
        index.search(np.ones((1, 7)), 1)
    with pytest.raises(InputError, match="NaN"):
        index.scores(np.full((1, 8), np.nan))
    with pytest.raises(InputError, match="temperature"):
        index.softmax_probs(np.ones((1, 8)), temperature=0.0)
    with pytest.raises(InputError, match="20 embeddings for 19 coordinates"):
        RetrievalIndex(coords[:19], emb)


def test_embed_locations_normalised_float32() -> None:
    coords = np.array([[48.8566, 2.3522], [-33.8688, 151.2093], [90.0, 0.0]])
    emb = embed_locations(coords, batch_size=2, progress=False)
    assert emb.shape == (3, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    with torch.inference_mode():
        raw = load_location_encoder()(torch.tensor(coords, dtype=torch.float32))
    expected = torch.nn.functional.normalize(raw, dim=1).numpy()
    np.testing.assert_allclose(emb, expected, atol=1e-6)
    with pytest.raises(InputError, match="row 1"):
        embed_locations([[0.0, 0.0], [np.nan, 0.0]])


def test_gallery_point_retrieves_itself() -> None:
    gallery = build_gallery("grid-10deg")
    emb = embed_locations(gallery.coords, progress=False)
    index = RetrievalIndex(gallery.coords, emb)
    picks = np.arange(0, len(gallery), 37)
    top = index.search(emb[picks], k=3)
    np.testing.assert_array_equal(top.indices[:, 0], picks)
    np.testing.assert_allclose(top.scores[:, 0], 1.0, atol=1e-5)
    # A query a few km from a grid point still lands on that point.
    near = embed_locations(gallery.coords[picks] + [0.05, 0.05], progress=False)
    np.testing.assert_array_equal(index.search(near, 1).indices[:, 0], picks)


def _counting_encoder() -> tuple[torch.nn.Module, list[int]]:
    encoder = load_location_encoder()
    calls: list[int] = []
    encoder.register_forward_hook(lambda _m, inputs, _o: calls.append(len(inputs[0])))
    return encoder, calls


def test_cache_hit_loads_without_encoding(cache: Path) -> None:
    gallery = build_gallery("grid-5deg")  # 2,592 points
    encoder, calls = _counting_encoder()
    started = time.perf_counter()
    first = cached_gallery_embeddings(gallery, encoder=encoder, batch_size=1000, progress=False)
    miss_s = time.perf_counter() - started
    assert sum(calls) == len(gallery) and len(calls) == 3
    path = embeddings_cache_path(gallery, encoder)
    assert path.parent == cache / "gallery_embeddings" and path.is_file()
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["count"] == len(gallery) and side["encoder_id"] == encoder.weights_id

    calls.clear()
    started = time.perf_counter()
    second = cached_gallery_embeddings(gallery, encoder=encoder, progress=False)
    hit_s = time.perf_counter() - started
    assert calls == []
    np.testing.assert_array_equal(first, second)
    assert hit_s < miss_s / 3

    # Default encoder: same weights file, same key, still a hit.
    assert embeddings_cache_path(gallery) == path
    np.testing.assert_array_equal(cached_gallery_embeddings(gallery.coords), first)


def test_cache_rebuilds_a_corrupted_entry(cache: Path) -> None:
    gallery = build_gallery("grid-30deg")
    encoder, calls = _counting_encoder()
    first = cached_gallery_embeddings(gallery, encoder=encoder, progress=False)
    path = embeddings_cache_path(gallery, encoder)
    np.save(path, np.zeros_like(first))  # same shape and dtype, wrong content
    calls.clear()
    again = cached_gallery_embeddings(gallery, encoder=encoder, progress=False)
    assert sum(calls) == len(gallery)
    np.testing.assert_array_equal(again, first)
    path.with_suffix(".json").unlink()
    calls.clear()
    cached_gallery_embeddings(gallery, encoder=encoder, progress=False)
    assert sum(calls) == len(gallery)


def test_cache_key_changes_with_coords_and_weights(cache: Path) -> None:
    encoder = load_location_encoder()
    a = embeddings_cache_path(np.array([[1.0, 2.0]]), encoder)
    b = embeddings_cache_path(np.array([[1.0, 2.000001]]), encoder)
    assert a != b
    with torch.no_grad():
        encoder.LocEnc0.head[0].bias.add_(1.0)
    encoder.weights_file_id = None  # weights changed in memory: identity from the tensors
    assert embeddings_cache_path(np.array([[1.0, 2.0]]), encoder) != a
