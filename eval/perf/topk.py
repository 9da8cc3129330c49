"""Section d: top-10 retrieval over 100k and 1M random unit 512-d vectors, for 1 and 1,000
queries: faiss ``IndexFlatIP`` vs torch matmul + topk, time and memory.

Each library runs in its own subprocess (RSS measured there, and neither loads the other):
memory is the RSS growth from holding the gallery plus the peak above it during the search.
It says whether faiss is worth its dependency at the gallery sizes the product uses.

torch and faiss are imported inside the child task, one or the other.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.eval.perf.children import register_child, run_child
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
    timed,
)
from geoforensics.eval.perf.memory import peak_rss_mb, rss_mb


def _unit_chunks(n: int, dim: int, seed: int, rows: int = 10_000) -> Iterator[np.ndarray]:
    """Seeded random unit vectors in chunks of ``rows`` (small temporaries)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, rows):
        part = rng.standard_normal((min(rows, n - start), dim), dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        yield part


def _unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    start = 0
    for part in _unit_chunks(n, dim, seed):
        out[start : start + len(part)] = part
        start += len(part)
    return out


@register_child("topk")
def _child_topk(params: dict[str, Any]) -> dict[str, Any]:
    """Time and memory of top-k search over ``n`` unit vectors with faiss or torch.

    Memory: ``gallery_mb`` = RSS growth from building the gallery (faiss: added in chunks, so
    only the index holds it); ``b{B}_extra_mb`` = peak RSS above that during the search.
    """
    n, dim, k, impl = int(params["n"]), int(params["dim"]), int(params["k"]), params["impl"]
    chunk = int(params.get("torch_chunk", 250))
    if impl == "torch":
        import torch

        torch.zeros(1)
    else:
        import faiss
    base_rss = rss_mb()
    results: dict[str, Any] = {"base_rss_mb": base_rss}
    if impl == "faiss":
        import faiss

        index = faiss.IndexFlatIP(dim)
        for part in _unit_chunks(n, dim, seed=0):
            index.add(part)

        def search(queries: np.ndarray) -> np.ndarray:
            _, ids = index.search(queries, k)
            return np.asarray(ids)

    else:
        import torch

        matrix = torch.from_numpy(_unit_vectors(n, dim, seed=0))

        def search(queries: np.ndarray) -> np.ndarray:
            q = torch.from_numpy(queries)
            ids = []
            with torch.inference_mode():
                for start in range(0, len(q), chunk):
                    scores = q[start : start + chunk] @ matrix.T
                    ids.append(torch.topk(scores, k, dim=1).indices)
            return torch.cat(ids).numpy()

    ready = rss_mb()
    results["gallery_mb"] = ready - base_rss
    for batch in params["batches"]:
        queries = _unit_vectors(int(batch), dim, seed=1)
        search(queries[:1])  # warm-up (threads, lazy allocations)
        repeats = 5 if batch == 1 else 1
        seconds, ids = timed(functools.partial(search, queries), repeats)
        results[f"b{batch}_s"] = seconds
        results[f"b{batch}_extra_mb"] = max(0.0, peak_rss_mb() - ready)
        results[f"b{batch}_first_ids"] = [int(v) for v in ids[0][:k]]
    return results


@register_section("d", "topk", title="top-10 retrieval: faiss IndexFlatIP vs torch matmul + topk")
def measure_topk(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section d: faiss IndexFlatIP vs torch matmul + topk, time and peak RSS growth;
    ``world`` is not used."""
    figures: list[Figure] = []
    notes = [
        "random unit 512-d float32 vectors, top-10; each library in its own process (RSS "
        "measured there); memory = RSS growth from holding the gallery (n x 512 x 4 bytes: "
        "195 MB for 100k, 1.95 GB for 1M) + the peak RSS above that during the search; torch "
        "scores queries in chunks of 250 (a (250, n) float32 score block: 95 MB at 100k, "
        "954 MB at 1M), faiss blocks queries and gallery internally; batch-1 times are the "
        "median of 5",
    ]
    agree = []
    for n in settings.topk_sizes:
        params = {"n": n, "dim": 512, "k": 10, "batches": list(settings.topk_batches)}
        faiss_r = run_child("topk", {**params, "impl": "faiss"})
        torch_r = run_child("topk", {**params, "impl": "torch"})
        for batch in settings.topk_batches:
            figures.append(
                Figure(
                    f"d{len(figures) + 1}",
                    f"top-10 over {n:,}, {batch:,} quer{'y' if batch == 1 else 'ies'}: time",
                    faiss_r[f"b{batch}_s"] * 1000.0,
                    torch_r[f"b{batch}_s"] * 1000.0,
                    "ms",
                )
            )
            agree.append(faiss_r[f"b{batch}_first_ids"] == torch_r[f"b{batch}_first_ids"])
        top = max(settings.topk_batches)
        figures.append(
            Figure(
                f"d{len(figures) + 1}",
                f"top-10 over {n:,}, {top:,} queries: memory (gallery + search peak)",
                faiss_r["gallery_mb"] + faiss_r[f"b{top}_extra_mb"],
                torch_r["gallery_mb"] + torch_r[f"b{top}_extra_mb"],
                "MB",
                note=f"search alone {faiss_r[f'b{top}_extra_mb']:.0f} vs "
                f"{torch_r[f'b{top}_extra_mb']:.0f} MB",
            )
        )
    notes.append(
        "same top-10 ids from faiss and torch for the first query: "
        + ", ".join("yes" if a else "no" for a in agree)
    )
    return Section("d", section_title("d"), figures, notes)
