"""`geoforensics perf` and the fast inference path it measures (issue 7).

No timing assertions: the command must print every requested figure with a finite ratio, and
the optimised path (batched windows, ONNX Runtime) must give the plain loop's outputs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from geoforensics.core.cli import build_parser, main
from geoforensics.core.commands.check import options_from_args
from geoforensics.core.errors import InputError
from geoforensics.core.models import graph_runners, onnx_backend
from geoforensics.core.models.inference import predict_recordings, window_outputs
from geoforensics.eval import perf
from geoforensics.eval.perf import check


def test_perf_quick_prints_every_requested_figure(
    train_micro_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "perf.json"
    argv = ["perf", "--quick", "--only", "e,d", "--world", str(train_micro_world)]
    status = main([*argv, "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 0
    report = json.loads(out.read_text())
    assert [s["letter"] for s in report["sections"]] == ["d", "e"]
    figures = [f for s in report["sections"] for f in s["figures"]]
    keys = [f["key"] for f in figures]
    # d: 2 gallery sizes x (batch 1, batch 100, memory); e: synthetic + BirdNET range models
    assert keys[:6] == ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert "e1" in keys and "e2" in keys
    for figure in figures:
        assert math.isfinite(figure["ours"]) and figure["ours"] > 0, figure
        assert math.isfinite(figure["baseline"]) and figure["baseline"] > 0, figure
        assert math.isfinite(figure["ratio"]) and figure["ratio"] > 0, figure
        assert f"| {figure['key']} " in printed
    assert "| figure | ours | baseline | ratio | target | met? |" in printed
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"]
    assert "same top-10 ids from faiss and torch for the first query: yes, yes, yes, yes" in (
        printed
    )
    batched = next(f for f in figures if f["key"] == "e1")
    assert "max |batched - per call| 0.0e+00" in batched["note"]


def test_perf_rejects_unknown_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["perf", "--only", "a,z", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("geoforensics: error:") and "'z'" in err[-1]
    assert perf.parse_only("g, a") == ["a", "g"]
    assert perf.parse_only(None) == list(perf.SECTIONS)
    assert perf.SECTIONS == tuple("abcdefghijk")
    assert perf.parse_only("batch,throughput,d") == ["b", "d", "j"]  # names and letters
    assert perf.parse_only("long-recordings") == ["c"]
    with pytest.raises(InputError, match="'clips'"):
        perf.parse_only("clips")


def test_perf_child_options_are_the_command_lines(tmp_path: Path) -> None:
    """Section i times ``check`` on the command line, then warm calls with options built
    without the CLI parser: both must be the same check."""
    clip = tmp_path / "clip.mp4"
    for claim in ({}, {"claimed": "Sydney", "date": "2020-03-16"}):
        args = build_parser().parse_args(check.check_argv(clip, claim))
        assert options_from_args(args) == check.check_options(claim)


def test_figure_ratio_direction() -> None:
    slower = perf.Figure("x", "time", ours=0.5, baseline=10.0, unit="s")
    faster = perf.Figure("y", "rate", ours=300.0, baseline=30.0, unit="x RT", higher_is_better=True)
    assert slower.ratio == pytest.approx(20.0)
    assert faster.ratio == pytest.approx(10.0)


@pytest.fixture(scope="module")
def small_model() -> torch.nn.Module:
    return perf.random_agclip("mobilenet_v3_small_128")


def test_fast_path_equals_plain_per_window_loop(small_model, tmp_path: Path) -> None:
    clip = perf.write_test_audio(tmp_path / "clip.wav", 9.0, seed=3)
    assert onnx_backend.onnx_runner(small_model) is not None  # the ONNX path is taken
    fast = window_outputs(small_model, clip).outputs["embedding"]
    with perf.inference_backend("torch"):
        assert onnx_backend.onnx_runner(small_model) is None
        eager = window_outputs(small_model, clip).outputs["embedding"]
    plain = perf.plain_window_embeddings(small_model, clip)
    assert fast.shape == plain.shape == (5, 512)  # 9 s -> windows at 0, 1.5, ..., 6 s
    scale = float(np.abs(plain).max())
    np.testing.assert_allclose(eager, plain, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-4 * scale)


def test_onnx_graph_follows_weight_changes(small_model, tmp_path: Path) -> None:
    clip = perf.write_test_audio(tmp_path / "clip.wav", 4.0, seed=4)
    first = onnx_backend.onnx_runner(small_model)
    assert first is not None and first is onnx_backend.onnx_runner(small_model)  # kept
    before = window_outputs(small_model, clip).outputs["embedding"]
    with torch.no_grad():
        small_model.head[-1].bias.add_(1.0)
    second = onnx_backend.onnx_runner(small_model)
    assert second is not None and second is not first and second.path != first.path
    after = window_outputs(small_model, clip).outputs["embedding"]
    np.testing.assert_allclose(after - before, 1.0, atol=1e-3)
    with perf.inference_backend("torch"):
        eager = window_outputs(small_model, clip).outputs["embedding"]
    np.testing.assert_allclose(after, eager, atol=1e-4 * float(np.abs(eager).max()))


def test_backend_setting(monkeypatch: pytest.MonkeyPatch, small_model) -> None:
    monkeypatch.setenv(onnx_backend.BACKEND_ENV, "fastest")
    with pytest.raises(InputError, match="GEOFORENSICS_INFERENCE_BACKEND"):
        onnx_backend.inference_backend()
    monkeypatch.setenv(onnx_backend.BACKEND_ENV, "auto")
    tiny = perf.random_agclip("test_tiny")
    assert not onnx_backend.onnx_applicable(tiny)  # not measured to pay: stays in torch
    assert onnx_backend.onnx_applicable(tiny, "onnx")
    assert onnx_backend.onnx_applicable(small_model)


def test_openvino_and_onnxruntime_run_the_same_graph(small_model, tmp_path: Path) -> None:
    """Both graph runtimes give the torch model's outputs to float32 rounding; ``auto`` takes
    OpenVINO when it is installed; a failing OpenVINO falls back to ONNX Runtime."""
    pytest.importorskip("openvino")
    clip = perf.write_test_audio(tmp_path / "clip.wav", 6.0, seed=6)
    outputs = {}
    for backend in ("openvino", "onnx", "torch"):
        with perf.inference_backend(backend):
            runner = onnx_backend.onnx_runner(small_model)
            kind = None if runner is None else type(runner).__name__
            assert kind == {"openvino": "OpenVinoRunner", "onnx": "OnnxRunner"}.get(backend)
            outputs[backend] = window_outputs(small_model, clip).outputs["embedding"]
    with perf.inference_backend("auto"):
        assert isinstance(onnx_backend.onnx_runner(small_model), onnx_backend.OpenVinoRunner)
    scale = float(np.abs(outputs["torch"]).max())
    np.testing.assert_allclose(outputs["openvino"], outputs["onnx"], rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(outputs["openvino"], outputs["torch"], rtol=0, atol=1e-4 * scale)


def test_a_failing_openvino_falls_back_to_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openvino")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no CPU plugin")

    monkeypatch.setattr(graph_runners, "OpenVinoRunner", broken)
    model = perf.random_agclip("mobilenet_v3_small_128")
    with perf.inference_backend("auto"), pytest.warns(RuntimeWarning, match="OpenVINO"):
        assert isinstance(onnx_backend.onnx_runner(model), onnx_backend.OnnxRunner)
    with perf.inference_backend("openvino"), pytest.raises(RuntimeError, match="no CPU plugin"):
        onnx_backend.onnx_runner(perf.random_agclip("mobilenet_v3_small_128"))


def test_demo_model_same_top1_both_paths(train_micro_world: Path) -> None:
    from geoforensics.core.data import INatSounds

    test = list(INatSounds(train_micro_world, "test"))[:5]
    coords = np.unique(INatSounds(train_micro_world, "train").coords(), axis=0)
    index = perf.retrieval_index(coords)
    model = perf.demo_model()
    fast = predict_recordings(model, test, index, progress=False)
    with perf.inference_backend("torch"):
        plain = predict_recordings(model, test, index, progress=False)
    assert np.isfinite(fast).all()
    np.testing.assert_array_equal(fast, plain)


def test_malloc_threshold_pinned_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes.util
    import sys

    from geoforensics.core.models import inference

    inference.fix_malloc_threshold.cache_clear()
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert inference.fix_malloc_threshold() is False  # the user's setting wins
    inference.fix_malloc_threshold.cache_clear()
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    glibc = sys.platform.startswith("linux") and ctypes.util.find_library("c") is not None
    assert inference.fix_malloc_threshold() is glibc


def test_onnx_failure_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clip = perf.write_test_audio(tmp_path / "clip.wav", 4.0, seed=5)
    model = perf.random_agclip("mobilenet_v3_small_128")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no session")

    monkeypatch.setattr(graph_runners, "OnnxRunner", broken)
    monkeypatch.setattr(graph_runners, "OpenVinoRunner", broken)
    with pytest.warns(RuntimeWarning, match="running the model in torch"):
        fallback = window_outputs(model, clip).outputs["embedding"]
    with perf.inference_backend("torch"):
        eager = window_outputs(model, clip).outputs["embedding"]
    np.testing.assert_array_equal(fallback, eager)
    with perf.inference_backend("onnx"), pytest.raises(RuntimeError, match="no session"):
        onnx_backend.onnx_runner(perf.random_agclip("mobilenet_v3_small_128"))


def test_perf_quick_species_evidence_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available

    if not birdnet_available():
        pytest.skip(INSTALL_HINT)
    out = tmp_path / "perf.json"
    status = main(["perf", "--quick", "--only", "h", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 0
    (section,) = json.loads(out.read_text())["sections"]
    assert section["letter"] == "h"
    keys = [f["key"] for f in section["figures"]]
    assert keys == ["h1", "h2", "h3", "h4", "h5"]  # 2 lists x (new, cached week) + cache size
    for figure in section["figures"]:
        assert math.isfinite(figure["ratio"]) and figure["ratio"] > 0, figure
        assert f"| {figure['key']} " in printed
    cache = section["figures"][-1]
    assert cache["ours"] < cache["baseline"] / 100  # one float per place, not 6,522 float16
    difference = float(section["notes"][0].split("paths ")[1].split(" ")[0])
    assert difference < 0.05  # the same likelihood within float16 rounding


@pytest.mark.slow
def test_perf_quick_check_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available

    if not birdnet_available():
        pytest.skip(INSTALL_HINT)
    out = tmp_path / "perf.json"
    status = main(["perf", "--quick", "--only", "i", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 0
    (section,) = json.loads(out.read_text())["sections"]
    assert [f["key"] for f in section["figures"]] == ["i1", "i2", "i3", "i4"]
    for figure in section["figures"]:
        assert math.isfinite(figure["ours"]) and figure["ours"] > 0, figure
        assert f"| {figure['key']} " in printed
    assert section["figures"][3]["unit"] == "MB" and "verdict" in section["notes"][0]


@pytest.mark.slow  # ~30 s: three folder checks in fresh processes
def test_perf_quick_batch_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "perf.json"
    status = main(["perf", "--quick", "--only", "j", "--out", str(out), "--no-progress"])
    capsys.readouterr()
    assert status == 0
    (section,) = json.loads(out.read_text())["sections"]
    assert [f["key"] for f in section["figures"]] == ["j1", "j2"]
    rates = section["figures"][0]
    assert rates["unit"] == "clips/min" and rates["ours"] > 0 and rates["baseline"] > 0
    assert 100 < section["figures"][1]["ours"] < 4000  # MB per worker process
    assert "(4 checked, 0 failed)" in section["notes"][0]
    assert "summary.csv are identical" in section["notes"][0]


def test_perf_quick_throughput_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Section b: every figure, and b8 runs b1's model from a recorded graph without torch's
    front-end (the folder perf writes is one that ``check --model`` would serve the same way)."""
    from geoforensics.core.models.graph_agclip import GraphAGCLIP, open_graph_agclip
    from geoforensics.eval.perf.fixtures import work_dir

    out = tmp_path / "perf.json"
    status = main(["perf", "--quick", "--only", "b", "--out", str(out), "--no-progress"])
    capsys.readouterr()
    assert status == 0
    (section,) = json.loads(out.read_text())["sections"]
    figures = {f["key"]: f for f in section["figures"]}
    expected = {"b1", "b2", "b3", "b4", "b5", "b8"}
    if graph_runners.openvino_available():
        expected |= {"b6", "b7"}
    assert set(figures) == expected
    for figure in figures.values():
        assert figure["unit"] == "x RT" and figure["ours"] > 0 and figure["baseline"] > 0
    graph = open_graph_agclip(work_dir() / "b1-mobilenet_v3_large")
    assert isinstance(graph, GraphAGCLIP) and graph.config["encoder"] == "mobilenet_v3_large"
    assert graph.runner.name in figures["b8"]["name"]


@pytest.mark.slow  # ~1 min: three checks with a model in fresh processes (5 min of audio)
def test_perf_quick_long_check_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Section k: the model's first check loads torch, the later one runs its graph without
    torch, and both reports give the same place and verdict."""
    out = tmp_path / "perf.json"
    status = main(["perf", "--quick", "--only", "k", "--out", str(out), "--no-progress"])
    capsys.readouterr()
    assert status == 0
    (section,) = json.loads(out.read_text())["sections"]
    assert [f["key"] for f in section["figures"]] == ["k1", "k2"]
    speed, memory = section["figures"]
    assert speed["unit"] == "x RT" and speed["ours"] > 0 and speed["baseline"] > 0
    assert memory["unit"] == "MB" and memory["ours"] < memory["baseline"]  # no torch: ~500 MB
    assert "torch imported: first True, later False" in section["notes"][0]
    assert "the same in both reports" in section["notes"][0]


def test_importing_perf_loads_no_model_library() -> None:
    """Every measurement subprocess imports the perf package: it must not load torch,
    OpenVINO or TFLite by itself (section j reports the batch parent's memory, section i a
    check's start-up)."""
    import subprocess
    import sys

    code = (
        "import sys, geoforensics.eval.perf\n"
        "print(sorted(m for m in ('torch', 'openvino', 'ai_edge_litert') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
