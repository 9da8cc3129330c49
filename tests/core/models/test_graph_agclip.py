"""AG-CLIP from its exported graph alone: same window outputs as the torch model, declined
whenever it cannot serve the model, and a check that needs no torch once the graph is recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from geoforensics.core.forensics.check_options import default_model_dir
from geoforensics.core.models.graph_agclip import (
    GraphAGCLIP,
    graph_record_path,
    model_files_key,
    open_graph_agclip,
    record_graph,
)
from geoforensics.core.models.graph_runners import openvino_available

RATE = 22_050


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped demo model (MobileNetV3-small, exported as a graph)."""
    folder = tmp_path_factory.mktemp("graph-model") / "demo"
    shutil.copytree(default_model_dir(), folder)
    return folder


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of seeded noise with two tones: 4 windows of 3 s every 1.5 s."""
    t = np.arange(8 * RATE) / RATE
    rng = np.random.default_rng(3)
    signal = 0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 2_500 * t)
    signal[RATE * 4 :] += 0.2 * np.sin(2 * np.pi * 6_000 * t[RATE * 4 :])
    path = tmp_path_factory.mktemp("graph-audio") / "tones.wav"
    sf.write(path, signal.astype(np.float32), RATE, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def recorded(model_dir: Path) -> Path:
    """The copy's graph, exported with torch and recorded (what a first check does)."""
    from geoforensics.core.models import load_model
    from geoforensics.core.models.onnx_backend import exported_graph

    graph = exported_graph(load_model(model_dir))
    record_graph(model_dir, graph)
    return graph


def test_graph_window_outputs_equal_the_torch_models(
    model_dir: Path, wav: Path, recorded: Path
) -> None:
    from geoforensics.core.models import load_model, window_outputs

    graph = open_graph_agclip(model_dir)
    assert isinstance(graph, GraphAGCLIP) and graph.graph == recorded
    assert graph.runner.name == ("OpenVINO" if openvino_available() else "ONNX Runtime")
    ours = graph.window_outputs(wav)
    theirs = window_outputs(load_model(model_dir), wav)
    assert len(ours) == len(theirs) == 4
    np.testing.assert_array_equal(ours.start_s, theirs.start_s)
    np.testing.assert_array_equal(ours.end_s, theirs.end_s)
    assert set(ours.outputs) == set(theirs.outputs) == {"species_logits", "embedding"}
    for name, value in theirs.outputs.items():
        assert ours.outputs[name].shape == value.shape and ours.outputs[name].dtype == np.float32
        # the numpy front-end equals torch's to ~1e-5; the graph is the same graph
        np.testing.assert_allclose(ours.outputs[name], value, rtol=1e-4, atol=1e-4)
    # and the embeddings point the same way (what retrieval reads)
    a, b = ours.outputs["embedding"], theirs.outputs["embedding"]
    cosine = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 1 - 1e-6


def test_graph_path_declines_what_it_cannot_serve(
    model_dir: Path, recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no record: a model never exported
    fresh = tmp_path / "fresh"
    shutil.copytree(model_dir, fresh)
    config = json.loads((fresh / "model.json").read_text())
    config["config"]["extra"]["note"] = "edited"
    (fresh / "model.json").write_text(json.dumps(config))
    assert model_files_key(fresh) != model_files_key(model_dir)
    assert open_graph_agclip(fresh) is None
    # a model trained against another location encoder: retrieval needs that encoder (torch)
    config["config"]["extra"]["location_encoder"] = "sinr"
    (fresh / "model.json").write_text(json.dumps(config))
    record_graph(fresh, recorded)
    assert open_graph_agclip(fresh) is None
    # the torch backend asked for
    monkeypatch.setenv("GEOFORENSICS_INFERENCE_BACKEND", "torch")
    assert open_graph_agclip(model_dir) is None
    monkeypatch.delenv("GEOFORENSICS_INFERENCE_BACKEND")
    assert open_graph_agclip(model_dir) is not None
    # a damaged record, or a graph that no longer matches its checksum
    record = graph_record_path(model_files_key(model_dir))
    saved = record.read_text()
    record.write_text(saved[: len(saved) // 2])
    assert open_graph_agclip(model_dir) is None
    record.write_text(saved)
    original = recorded.read_bytes()
    try:
        recorded.write_bytes(original + b"\0")
        assert open_graph_agclip(model_dir) is None
    finally:
        recorded.write_bytes(original)
    assert open_graph_agclip(model_dir) is not None


def _check_in_fresh_process(model_dir: Path, wav: Path) -> dict[str, object]:
    code = (
        "import json, sys\n"
        "from geoforensics.core.forensics.check_options import CheckOptions\n"
        "from geoforensics.core.forensics.pipeline import run_check\n"
        f"options = CheckOptions(model_dir={str(model_dir)!r}, gallery='grid-10deg', "
        "claimed='Seattle', species=False)\n"
        f"report = run_check({str(wav)!r}, options)\n"
        "audio = report.modalities['audio']\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'top': audio.top[0], "
        "'runtime': report.models['audio']['runtime'], 'verdict': report.verdict}, "
        "default=str))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_check_needs_no_torch_once_the_models_graph_is_recorded(
    tmp_path: Path, model_dir: Path, wav: Path
) -> None:
    """The first check of a model loads it in torch and records its graph; the next one runs
    the graph without importing torch (~500 MB less) and reports the same places."""
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "model.json").read_text())
    config["config"]["extra"]["note"] = "a model this session has not seen"
    (folder / "model.json").write_text(json.dumps(config))
    first = _check_in_fresh_process(folder, wav)
    second = _check_in_fresh_process(folder, wav)
    assert first["torch"] is True and "graph of the torch model" in str(first["runtime"])
    assert second["torch"] is False and "without torch" in str(second["runtime"])
    assert first["verdict"] == second["verdict"]
    top1, top2 = first["top"], second["top"]
    assert isinstance(top1, dict) and isinstance(top2, dict)
    assert (top1["latitude"], top1["longitude"]) == (top2["latitude"], top2["longitude"])
    assert top1["region_probability"] == pytest.approx(top2["region_probability"], abs=1e-4)


def test_weights_prepare_model_records_the_graph(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``weights prepare model`` does a first check's torch work ahead, for batch machines."""
    from geoforensics.core.cli import main

    folder = tmp_path / "prepared"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "model.json").read_text())
    config["config"]["extra"]["note"] = "prepared"
    (folder / "model.json").write_text(json.dumps(config))
    assert open_graph_agclip(folder) is None
    args = ["weights", "prepare", "model", "--model", str(folder), "--gallery", "grid-10deg"]
    assert main(args) == 0
    assert "without torch" in capsys.readouterr().out
    assert open_graph_agclip(folder) is not None
    assert main(["weights", "prepare", "model", "--model", str(tmp_path / "none")]) == 1
    assert "none/model.safetensors: AG-CLIP model not found" in capsys.readouterr().err


def test_a_missing_model_folder_is_refused_in_the_same_words_everywhere(
    tmp_path: Path, wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoforensics.core.cli import main

    missing = tmp_path / "no-model"
    commands = [
        ["check", str(wav), "--model", str(missing), "--out", str(tmp_path / "out")],
        ["locate", str(wav), "--method", "agclip", "--model", str(missing)],
        ["weights", "prepare", "model", "--model", str(missing)],
    ]
    lines = set()
    for argv in commands:
        assert main(argv) != 0, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("geoforensics: error: "), (argv, err)
        lines.add(err[0])
    (line,) = lines
    assert f"{missing / 'model.safetensors'}: AG-CLIP model not found" in line
    assert "geoforensics train" in line and "weights import agclip" in line
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_openvino_streams_give_the_same_outputs(recorded: Path) -> None:
    """Two inference streams (the default with two threads) split each batch in two parts run
    side by side: the outputs are those of one stream, in order."""
    pytest.importorskip("openvino")
    from geoforensics.core.models.graph_runners import OpenVinoRunner

    one = OpenVinoRunner(recorded, threads=2, streams=1)
    two = OpenVinoRunner(recorded, threads=2)
    assert (one.streams, two.streams) == (1, 2)
    images = np.random.default_rng(0).random((37, 3, 128, 128), dtype=np.float32)
    for got, want in zip(two(images), one(images), strict=True):
        assert got.shape == want.shape and got.shape[0] == 37
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_locate_runs_a_recorded_model_without_torch(
    model_dir: Path, wav: Path, recorded: Path
) -> None:
    """``locate --method agclip`` loads models as check does: the recorded graph, no torch, the
    places of the torch model."""
    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings
    from geoforensics.core.models import load_model
    from geoforensics.core.models.audio_places import AudioPlaceOptions, audio_places
    from geoforensics.core.models.model_space import retrieval_index_for_model

    gallery = resolve_gallery("grid-10deg")
    cached_gallery_embeddings(gallery)  # what a first check or `weights prepare model` leaves
    code = (
        "import json, sys\n"
        "from geoforensics.core.cli import main\n"
        f"main(['locate', {str(wav)!r}, '--method', 'agclip', '--model', {str(model_dir)!r}, "
        "'--gallery', 'grid-10deg', '--json'])\n"
        "print(json.dumps({'torch': 'torch' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    payload, _, flag = done.stdout.strip().rpartition("\n")
    assert json.loads(flag) == {"torch": False}
    places = json.loads(payload)["places"]
    torch_model = load_model(model_dir)
    index = retrieval_index_for_model(model_dir, gallery)
    want = audio_places(torch_model, wav, gallery, index, AudioPlaceOptions()).top
    assert [(p["latitude"], p["longitude"]) for p in places] == [
        (p["latitude"], p["longitude"]) for p in want
    ]
    got_mass = [p["region_probability"] for p in places]
    np.testing.assert_allclose(got_mass, [p["region_probability"] for p in want], atol=1e-5)
