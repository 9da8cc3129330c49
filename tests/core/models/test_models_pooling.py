"""Pooling window outputs: mean / max / k-means by hand, and the learned transformer pooler."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from geoforensics.core.errors import InputError
from geoforensics.core.models.pooling import (
    kmeans_largest_cluster,
    pool,
    pool_outputs,
)
from geoforensics.core.models.transformer_pooling import (
    TransformerPooling,
    chunk_windows,
    pad_sequences,
    random_crop,
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small matrices: one thread is faster and steadier than two on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_mean_and_max_by_hand() -> None:
    x = np.array([[1.0, -2.0, 0.0], [3.0, 4.0, -1.0], [-1.0, 1.0, 5.0]], dtype=np.float32)
    np.testing.assert_allclose(pool(x), [1.0, 1.0, 4.0 / 3.0], rtol=1e-6)
    np.testing.assert_array_equal(pool(x, "max"), [3.0, 4.0, 5.0])
    as_tensor = pool(torch.from_numpy(x), "mean")
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float32
    torch.testing.assert_close(as_tensor, torch.tensor([1.0, 1.0, 4.0 / 3.0]))
    np.testing.assert_array_equal(pool(x[:1], "max"), x[0])
    with pytest.raises(InputError, match="pooling 'median'"):
        pool(x, "median")
    with pytest.raises(InputError, match="W >= 1"):
        pool(np.zeros((0, 3)))


def _clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """12 windows around (10, 10) and four small groups of 2 far away, shuffled."""
    rng = np.random.default_rng(seed)
    centres = [(10, 10), (-10, 0), (0, -10), (20, -20), (-20, 20)]
    sizes = [12, 2, 2, 2, 2]
    points = np.concatenate(
        [np.asarray(c) + rng.normal(0, 0.3, (n, 2)) for c, n in zip(centres, sizes, strict=True)]
    )
    order = rng.permutation(len(points))
    return points[order], (order < 12)


def test_kmeans_picks_the_largest_cluster_centroid() -> None:
    points, in_big = _clusters()
    mask = kmeans_largest_cluster(points)
    np.testing.assert_array_equal(mask, in_big)
    pooled = pool(points, "kmeans")
    np.testing.assert_allclose(pooled, points[in_big].mean(axis=0), rtol=1e-6)
    assert np.linalg.norm(pooled - [10, 10]) < 0.3
    # the plain mean is pulled away by the small groups
    assert np.linalg.norm(pool(points) - [10, 10]) > 4
    # deterministic: same seed, same answer; order of windows does not matter
    np.testing.assert_array_equal(pool(points, "kmeans"), pooled)
    np.testing.assert_allclose(pool(points[::-1], "kmeans"), pooled, rtol=1e-6)


def test_kmeans_with_fewer_windows_than_k_is_the_mean() -> None:
    points = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(pool(points, "kmeans"), points.mean(axis=0))  # 3 distinct < 5
    np.testing.assert_allclose(pool(points[:2], "kmeans"), [0.5, 0.5])


def test_pool_outputs_uses_the_same_windows_for_every_output() -> None:
    points, in_big = _clusters(1)
    embedding = np.zeros((len(points), 512), dtype=np.float32)
    embedding[:, :2] = points  # k-means runs on the normalised embedding: directions differ
    species = np.arange(len(points), dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    pooled = pool_outputs(
        "agclip", {"embedding": embedding, "species_logits": species}, method="kmeans"
    )
    np.testing.assert_allclose(pooled["species_logits"], species[in_big].mean(axis=0))
    np.testing.assert_allclose(pooled["embedding"][:2], points[in_big].mean(axis=0), rtol=1e-5)
    maxed = pool_outputs("agclip", {"embedding": embedding, "species_logits": species}, "max")
    np.testing.assert_array_equal(maxed["species_logits"], species.max(axis=0))


def test_regression_pooling_is_spherical() -> None:
    latlon = np.array([[10.0, 179.0], [10.0, -179.0], [12.0, 179.5]], dtype=np.float32)
    norm = latlon / np.array([90.0, 180.0], dtype=np.float32)
    pooled = pool_outputs("regression", {"latlon": latlon, "latlon_norm": norm})
    assert abs(abs(pooled["latlon"][1]) - 179.83) < 0.05  # not ~60° (the arithmetic mean)
    assert abs(pooled["latlon"][0] - 10.67) < 0.05
    np.testing.assert_allclose(pooled["latlon_norm"], pooled["latlon"] / [90.0, 180.0], rtol=1e-6)
    maxed = pool_outputs("regression", {"latlon": latlon, "latlon_norm": norm * 2}, "max")
    assert -90 <= maxed["latlon"][0] <= 90 and -180 <= maxed["latlon"][1] < 180


def test_classification_kmeans_clusters_probabilities() -> None:
    logits = np.full((7, 4), -5.0, dtype=np.float32)
    logits[:5, 2] = 5.0  # five windows agree on class 2
    logits[5, 0] = logits[6, 1] = 5.0
    logits[:5, 3] = np.linspace(0, 1, 5)  # make them distinct points
    pooled = pool_outputs("classification", {"logits": logits}, "kmeans", k=3)
    np.testing.assert_allclose(pooled["logits"], logits[:5].mean(axis=0), rtol=1e-6)


def test_padding_and_chunking_helpers() -> None:
    a, b = torch.ones(3, 2), torch.full((5, 2), 2.0)
    batch, mask = pad_sequences([a, b])
    assert batch.shape == (2, 5, 2) and mask.tolist() == [[False] * 3 + [True] * 2, [False] * 5]
    assert batch[0, 3:].abs().sum() == 0
    chunks, cmask = chunk_windows(torch.arange(70.0)[:, None], 32)
    assert chunks.shape == (3, 32, 1) and (~cmask).sum(1).tolist() == [32, 32, 6]
    assert chunks[2, 5, 0] == 69 and chunks[1, 0, 0] == 32
    crop = random_crop(torch.arange(100.0), 32, torch.Generator().manual_seed(0))
    assert crop.shape == (32,) and torch.equal(crop, torch.arange(crop[0], crop[0] + 32))
    with pytest.raises(InputError):
        pad_sequences([torch.ones(40, 2)], 32)


@pytest.mark.parametrize("readout", ["cls", "mean"])
def test_transformer_ignores_padded_positions(readout: str) -> None:
    torch.manual_seed(0)
    pooler = TransformerPooling(16, 5, readout=readout).eval()
    seqs = [torch.randn(7, 16), torch.randn(32, 16), torch.randn(1, 16)]
    batch, mask = pad_sequences(seqs, 32)
    noisy = batch.clone()
    noisy[mask] = torch.randn(int(mask.sum()), 16) * 100
    with torch.no_grad():
        out = pooler(batch, mask)
        out_noisy = pooler(noisy, mask)
        alone = torch.cat([pooler(s[None]) for s in seqs])
    assert out.shape == (3, 5)
    torch.testing.assert_close(out, out_noisy, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, alone, rtol=1e-4, atol=1e-5)
    # unmasked content does matter
    changed = batch.clone()
    changed[0, 0] += 1.0
    with torch.no_grad():
        assert not torch.allclose(pooler(changed, mask)[0], out[0])


def test_transformer_long_recordings_average_chunks() -> None:
    torch.manual_seed(0)
    pooler = TransformerPooling(8, 3, seq_len=32, layers=2).eval()
    windows = torch.randn(70, 8)
    with torch.no_grad():
        pooled = pooler.pool_recording(windows)
        parts = [pooler(windows[i : i + 32][None])[0] for i in (0, 32, 64)]
        short = pooler.pool_recording(windows[:10])
        direct = pooler(windows[:10][None])[0]
    expected = (parts[0] * 32 + parts[1] * 32 + parts[2] * 6) / 70
    torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(short, direct)
    with pytest.raises(InputError, match="exceed"):
        pooler(torch.randn(1, 33, 8))


def _max_norm_task(
    n: int, gen: torch.Generator, seq_len: int, classes: int = 4, dim: int = 16
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sequences of 3..seq_len noisy class prototypes with random norms; label = the class of
    the element with the largest norm (a set task that mean pooling solves only partly)."""
    prototypes = torch.eye(dim)[:classes]
    lengths = torch.randint(3, seq_len + 1, (n,), generator=gen)
    seqs, labels = [], []
    for length in lengths.tolist():
        cls = torch.randint(0, classes, (length,), generator=gen)
        norms = torch.rand(length, generator=gen) * 2.5 + 0.5
        x = prototypes[cls] * norms[:, None] + 0.05 * torch.randn(length, dim, generator=gen)
        seqs.append(x)
        labels.append(int(cls[torch.argmax(norms)]))
    batch, mask = pad_sequences(seqs, seq_len)
    return batch, mask, torch.tensor(labels)


@pytest.mark.learning
def test_transformer_learns_a_set_task() -> None:
    """The paper's pooler (6 layers, 8 heads, width 128) on sequences of up to 16 windows
    (shorter than 32 to keep the test fast) learns in 200 steps."""
    seq_len = 16
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    pooler = TransformerPooling(16, 4, seq_len=seq_len, dropout=0.0)
    assert len(pooler.encoder.layers) == 6 and pooler.encoder.layers[0].self_attn.num_heads == 8
    optimizer = torch.optim.AdamW(pooler.parameters(), lr=1e-3)
    for _ in range(200):
        batch, mask, labels = _max_norm_task(32, gen, seq_len)
        loss = torch.nn.functional.cross_entropy(pooler(batch, mask), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    pooler.eval()
    batch, mask, labels = _max_norm_task(512, gen, seq_len)
    with torch.no_grad():
        accuracy = (pooler(batch, mask).argmax(1) == labels).float().mean().item()
    # mean pooling of the same inputs, argmax over the class dimensions, as a baseline
    keep = (~mask).float()[..., None]
    mean_guess = ((batch * keep).sum(1) / keep.sum(1))[:, :4].argmax(1)
    baseline = (mean_guess == labels).float().mean().item()
    assert accuracy > 0.75, (accuracy, baseline)
    assert accuracy > baseline + 0.15, (accuracy, baseline)
