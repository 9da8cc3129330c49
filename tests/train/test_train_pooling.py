"""Learned transformer pooling: window collection, training, save/load, the CLI, Table A2 rows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from geoforensics.core import cli
from geoforensics.core.data import INatSounds
from geoforensics.core.errors import InputError
from geoforensics.core.geo.metrics import geolocation_errors
from geoforensics.core.geoclip.embeddings import embed_locations
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.models import AudioGeolocator, ModelConfig, load_model, save_model
from geoforensics.core.models.inference import (
    iter_pooled_outputs,
    iter_window_outputs,
    predict_recordings,
    window_outputs,
)
from geoforensics.core.models.pooling import pool_outputs
from geoforensics.core.models.transformer_pooling import TransformerPooling
from geoforensics.eval.bench import run_bench
from geoforensics.eval.presets import PRESETS
from geoforensics.eval.results import ResultStore, RowResult
from geoforensics.eval.rows import (
    BenchRow,
    RowContext,
    builtin_rows,
    predict_with_model,
    register_row,
)
from geoforensics.eval.rows.pooling import POOLER_FILE, POOLING_ROWS
from geoforensics.train.pooling import (
    collect_outputs,
    collect_window_outputs,
    fit_transformer_pooling,
    load_pooling_info,
    load_transformer_pooling,
    pool_recordings,
    retrieve_top1,
    save_transformer_pooling,
    train_transformer_pooling,
)

#: A small pooler architecture that trains in seconds (the paper's is 6 layers, width 128).
SMALL = {"layers": 2, "heads": 4, "width": 32, "ff_dim": 64}


@pytest.fixture(scope="module")
def world(train_micro_world: Path) -> Path:
    """The session's 80-recording SYNTHETIC world (tests/conftest.py)."""
    return train_micro_world


def _agclip(n_species: int = 3, seed: int = 0) -> AudioGeolocator:
    torch.manual_seed(seed)
    return AudioGeolocator(ModelConfig("agclip", "test_tiny", n_species=n_species)).eval()


# ------------------------------------------------------------------------ save and load


def test_save_load_round_trip_gives_the_same_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pooler = TransformerPooling(12, 7, seq_len=8, readout="mean", input_key="embedding", **SMALL)
    with torch.no_grad():  # non-zero everywhere, so a wrongly loaded tensor would show
        for parameter in pooler.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    pooler.eval()
    info = {"best_epoch": np.int64(3), "val_median_km": 12.5, "history": [{"epoch": 1}]}
    path = save_transformer_pooling(pooler, tmp_path / "p.safetensors", info)
    assert path == tmp_path / "p.safetensors" and (tmp_path / "p.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.safetensors"]  # no temps
    loaded = load_transformer_pooling(tmp_path / "p.json")  # either file names the pair
    assert not loaded.training
    assert (loaded.in_dim, loaded.out_dim, loaded.seq_len) == (12, 7, 8)
    assert (loaded.readout, loaded.input_key) == ("mean", "embedding")
    windows = torch.randn(19, 12)
    with torch.no_grad():
        np.testing.assert_array_equal(
            loaded.pool_recording(windows).numpy(), pooler.pool_recording(windows).numpy()
        )
    assert load_pooling_info(path) == {
        "best_epoch": 3,
        "val_median_km": 12.5,
        "history": [{"epoch": 1}],
    }


def test_loading_a_missing_or_wrong_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.safetensors: transformer pooling weights not"):
        load_transformer_pooling(tmp_path / "nope.safetensors")
    with pytest.raises(InputError, match=r"NAME\.safetensors"):
        load_transformer_pooling(tmp_path / "pooler.pt")
    pooler = TransformerPooling(6, 4, seq_len=4, **SMALL)
    path = save_transformer_pooling(pooler, tmp_path / "p.safetensors")
    config = tmp_path / "p.json"
    document = json.loads(config.read_text())
    config.unlink()
    with pytest.raises(InputError, match=r"p\.json: transformer pooling config not found"):
        load_transformer_pooling(path)
    config.write_text(json.dumps({**document, "format": "something-else"}))
    with pytest.raises(InputError, match="not a transformer pooling config"):
        load_transformer_pooling(path)
    config.write_text("{not json")
    with pytest.raises(InputError, match="invalid JSON"):
        load_transformer_pooling(path)
    config.write_text(json.dumps({**document, "config": {**document["config"], "in_dim": 9}}))
    with pytest.raises(InputError, match=r"weights do not match p\.json"):
        load_transformer_pooling(path)
    config.write_text(json.dumps(document))
    path.write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        load_transformer_pooling(path)


def test_pool_recordings_batches_what_pool_recording_does() -> None:
    torch.manual_seed(1)
    pooler = TransformerPooling(5, 3, seq_len=4, **SMALL).eval()
    rng = np.random.default_rng(0)
    windows = [rng.standard_normal((n, 5)).astype(np.float32) for n in (1, 4, 9, 3, 13)]
    batched = pool_recordings(pooler, windows, batch_size=3)
    with torch.no_grad():
        one_by_one = [pooler.pool_recording(torch.from_numpy(w)).numpy() for w in windows]
    np.testing.assert_allclose(batched, np.stack(one_by_one), atol=1e-5)
    assert pool_recordings(pooler, []).shape == (0, 3)
    with pytest.raises(InputError, match="the pooler takes"):
        pool_recordings(pooler, [np.zeros((2, 6), dtype=np.float32)])


# ------------------------------------------------------------------------------ learning

#: The synthetic task's places: far apart, each with its own window "call".
PLACES = np.array(
    [
        [40.7, -74.0],
        [51.5, -0.1],
        [-33.9, 151.2],
        [35.7, 139.7],
        [-23.5, -46.6],
        [1.3, 103.8],
        [-1.3, 36.8],
        [64.1, -21.9],
    ]
)


def _recordings(n: int, seed: int, dim: int = 16) -> tuple[list[np.ndarray], np.ndarray]:
    """Window features where only 2 windows of 6..40 carry the place: the rest is loud noise,
    so averaging the windows mostly averages noise."""
    codes = np.random.default_rng(123).standard_normal((len(PLACES), dim))
    rng = np.random.default_rng(seed)
    windows, coords = [], []
    for _ in range(n):
        place = int(rng.integers(len(PLACES)))
        count = int(rng.integers(6, 40))
        matrix = 2.0 * rng.standard_normal((count, dim))
        signal = rng.choice(count, size=2, replace=False)
        matrix[signal] = codes[place] + 0.3 * rng.standard_normal((2, dim))
        windows.append(matrix.astype(np.float32))
        coords.append(PLACES[place])
    return windows, np.array(coords)


@pytest.mark.learning
def test_trained_pooler_finds_the_informative_windows() -> None:
    model = _agclip(n_species=3)
    index = RetrievalIndex(PLACES, embed_locations(PLACES))
    train_x, train_y = _recordings(200, seed=1)
    val_x, val_y = _recordings(40, seed=2)
    test_x, test_y = _recordings(60, seed=3)
    train_y[0] = np.nan  # a recording without a location is skipped
    pooler, info = fit_transformer_pooling(
        model, train_x, train_y, val_x, val_y, index,
        epochs=20, batch_size=32, lr=1e-3, seed=0, pooler_settings=SMALL,
    )  # fmt: skip
    assert info["train_recordings"] == 199 and info["skipped_train_recordings"] == 1
    assert info["out_dim"] == model.config.output_dim == 3 + 512
    assert len(info["history"]) == 20 and 1 <= info["best_epoch"] <= 20
    assert info["val_median_km"] < info["val_median_km_before"]

    def accuracy(candidate: TransformerPooling) -> float:
        raw = torch.from_numpy(pool_recordings(candidate, test_x))
        embedding = model.split_outputs(raw)["embedding"].numpy()
        return float((geolocation_errors(retrieve_top1(embedding, index), test_y) < 1).mean())

    torch.manual_seed(0)
    untrained = TransformerPooling(16, model.config.output_dim, **SMALL)
    # naive baseline: mean of the windows, mapped to GeoCLIP space by least squares on train
    located = np.isfinite(train_y).all(axis=1)
    means = np.stack([w.mean(axis=0) for w in train_x])[located]
    design = np.c_[means, np.ones(len(means))]
    mapping = np.linalg.lstsq(design, embed_locations(train_y[located]), rcond=None)[0]
    test_means = np.c_[np.stack([w.mean(axis=0) for w in test_x]), np.ones(len(test_x))]
    naive = retrieve_top1(test_means @ mapping, index)
    naive_accuracy = float((geolocation_errors(naive, test_y) < 1).mean())
    trained_accuracy = accuracy(pooler)
    print(
        f"\nheld-out top-1 accuracy over {len(PLACES)} places: transformer {trained_accuracy:.2f}"
        f", untrained {accuracy(untrained):.2f}, mean + least squares {naive_accuracy:.2f}"
    )
    assert trained_accuracy >= 0.8
    assert trained_accuracy > accuracy(untrained) + 0.5
    assert trained_accuracy > naive_accuracy + 0.3


def test_training_is_seeded_and_leaves_the_global_rng_alone() -> None:
    model = _agclip(n_species=0)
    index = RetrievalIndex(PLACES, embed_locations(PLACES))
    train_x, train_y = _recordings(24, seed=4, dim=6)
    val_x, val_y = _recordings(6, seed=5, dim=6)
    settings = {"layers": 1, "heads": 2, "width": 8, "ff_dim": 8}

    def run(seed: int) -> tuple[TransformerPooling, dict[str, object]]:
        return fit_transformer_pooling(
            model, train_x, train_y, val_x, val_y, index,
            epochs=2, batch_size=8, seed=seed, pooler_settings=settings,
        )  # fmt: skip

    torch.manual_seed(7)
    state = torch.get_rng_state()
    first, info = run(0)
    assert torch.equal(torch.get_rng_state(), state)
    second, again = run(0)
    other, _ = run(1)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name]), name
    assert info["history"] == again["history"]
    assert any(
        not torch.equal(tensor, other.state_dict()[name])
        for name, tensor in first.state_dict().items()
    )


def test_only_agclip_models_get_a_trained_pooler() -> None:
    torch.manual_seed(0)
    regression = AudioGeolocator(ModelConfig("regression", "test_tiny"))
    windows, coords = _recordings(4, seed=0, dim=4)
    with pytest.raises(InputError, match="AG-CLIP models; this is a 'regression' model"):
        fit_transformer_pooling(regression, windows, coords, windows, coords, PLACES, epochs=1)
    with pytest.raises(InputError, match="AG-CLIP"):
        train_transformer_pooling(regression, [], [], PLACES)


# ------------------------------------------------------------------ windows from audio


def test_collect_window_outputs_batches_across_recordings(world: Path) -> None:
    model = _agclip()
    recordings = INatSounds(world, "val")[:5]
    features = collect_window_outputs(model, recordings, "features", batch_size=7)
    both = collect_outputs(model, recordings, ("embedding", "features"), batch_size=3)
    assert len(features) == len(recordings)
    for recording, matrix, embedding, feature in zip(
        recordings, features, both["embedding"], both["features"], strict=True
    ):
        alone = window_outputs(model, recording.path, with_features=True)
        assert matrix.dtype == np.float32 and matrix.shape == (len(alone), 64)
        np.testing.assert_allclose(matrix, alone.outputs["features"], atol=1e-5)
        np.testing.assert_allclose(feature, matrix, atol=1e-5)
        np.testing.assert_allclose(embedding, alone.outputs["embedding"], atol=1e-5)
    # the unpooled stream keeps only the asked outputs; pooling it is iter_pooled_outputs
    stream = list(iter_window_outputs(model, recordings, 4, keys=("embedding",)))
    assert all(set(outputs) == {"embedding"} for outputs in stream if outputs is not None)
    pooled = list(iter_pooled_outputs(model, recordings, 4))
    for outputs, mean in zip(stream, pooled, strict=True):
        assert outputs is not None and mean is not None
        np.testing.assert_allclose(outputs["embedding"].mean(axis=0), mean["embedding"], atol=1e-6)
    with pytest.raises(InputError, match="window outputs \\['latlon'\\]"):
        next(iter_window_outputs(model, recordings, 4, keys=("latlon",)))


# ---------------------------------------------------------------------------------- CLI


def test_cli_trains_saves_and_the_pooler_runs_in_inference(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _agclip(n_species=0)
    save_model(model, tmp_path / "model")
    out = tmp_path / "pooler.safetensors"
    args = ["pooling", "train", str(tmp_path / "model"), "--data", str(world)]
    status = cli.main([*args, "--out", str(out), "--epochs", "1", "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "SYNTHETIC data" in printed and "mean pooling" in printed and "after" in printed
    info = load_pooling_info(out)
    assert info["epochs"] == 1 and info["best_epoch"] == 1 and info["gallery"] == "train"
    assert info["train_recordings"] == len(INatSounds(world, "train"))
    assert info["val_median_km"] is not None and info["val_median_km_mean"] is not None
    pooler = load_transformer_pooling(out)
    assert pooler.out_dim == 512 and pooler.in_dim == 64 and pooler.seq_len == 32
    # a saved pooler is what inference takes as `pooling`
    test = INatSounds(world, "test")[:4]
    gallery = INatSounds(world, "train").coords()
    index = RetrievalIndex(gallery, embed_locations(gallery))
    predictions = predict_recordings(model, test, index, pooling=pooler, progress=False)
    assert predictions.shape == (4, 2) and np.isfinite(predictions).all()


def test_cli_errors_are_one_line(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    save_model(AudioGeolocator(ModelConfig("regression", "test_tiny")), tmp_path / "reg")
    for folder, message in ((tmp_path / "reg", "'regression' model"), (tmp_path / "none", "none")):
        status = cli.main(["pooling", "train", str(folder), "--data", str(world)])
        err = capsys.readouterr().err.strip()
        assert status == 1
        assert err.startswith("geoforensics: error:") and message in err and "\n" not in err
    assert cli.main(["pooling"]) == 2
    assert "train" in capsys.readouterr().out


# ----------------------------------------------------------------------- Table A2 rows


def _quick_agclip(context: RowContext) -> RowResult:
    """Stands in for the trained agclip row: an untrained test_tiny AG-CLIP model, saved and
    run the way the real row runs it."""
    model = _agclip(n_species=0, seed=context.seed)
    model_dir = context.work_dir / "model"
    save_model(model, model_dir)
    predictions, embeddings = predict_with_model(context, model_dir, context.data.split("test"))
    assert embeddings is not None
    return context.make_result(
        predictions, {"model_dir": str(model_dir.resolve())}, {"embeddings": embeddings}
    )


def test_pooling_rows_on_a_quick_agclip_model(world: Path, tmp_path: Path) -> None:
    registry = builtin_rows()  # builtin_rows registers the pooling rows
    assert set(POOLING_ROWS) <= set(registry)
    register_row(BenchRow("agclip", "AG-CLIP (quick)", "T1", _quick_agclip), registry, True)
    preset = dataclasses.replace(PRESETS["tiny"], pooling_epochs=2)
    rows = ",".join(POOLING_ROWS)
    report = run_bench(world, preset, rows=rows, out=tmp_path, progress=False, registry=registry)
    assert not report.failed, report.failed
    assert report.rows == ["agclip", *POOLING_ROWS]
    store = ResultStore(tmp_path)
    agclip = store.load("agclip", 0)
    np.testing.assert_array_equal(store.load("pooling-mean", 0).predictions, agclip.predictions)
    test_count = len(INatSounds(world, "test"))
    for name in ("pooling-max", "pooling-kmeans", "pooling-transformer"):
        result = store.load(name, 0)
        assert len(result) == test_count and np.isfinite(result.predictions).all()
        assert result.arrays["embeddings"].shape == (test_count, 512)
        assert result.extra["pooling"] == name.removeprefix("pooling-")
    # max / k-means: the saved model's test window embeddings, pooled and normalised
    model = load_model(agclip.extra["model_dir"])
    windows = collect_window_outputs(model, INatSounds(world, "test"), "embedding")
    for method in ("max", "kmeans"):
        pooled = np.stack(
            [pool_outputs("agclip", {"embedding": w}, method)["embedding"] for w in windows]
        )
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        saved = store.load(f"pooling-{method}", 0).arrays["embeddings"]
        np.testing.assert_allclose(saved, pooled, atol=1e-5)
    transformer = store.load("pooling-transformer", 0)
    assert transformer.extra["epochs"] == 2 and transformer.extra["reused"] is False
    assert transformer.extra["val_median_km"] is not None
    pooler_path = tmp_path / "rows" / "pooling-transformer" / "seed0" / "work" / POOLER_FILE
    assert Path(transformer.extra["pooler"]) == pooler_path.resolve()
    assert load_pooling_info(pooler_path)["bench_settings"]["epochs"] == 2
    tables = (tmp_path / "tables.md").read_text(encoding="utf-8")
    assert "Table A2" in tables and "| AG-CLIP, transformer pooling" in tables
    # finished rows are reused; a new pooling budget re-runs only the transformer row
    again = run_bench(world, preset, rows=rows, out=tmp_path, progress=False, registry=registry)
    assert again.ran == [] and len(again.reused) == 5
    longer = dataclasses.replace(preset, pooling_epochs=3)
    third = run_bench(world, longer, rows=rows, out=tmp_path, progress=False, registry=registry)
    assert third.ran == [("pooling-transformer", 0)]
    retrained = store.load("pooling-transformer", 0)
    assert retrained.extra["epochs"] == 3 and retrained.extra["reused"] is False
    # a lost result with its pooler still in place: the pooler is reused, not retrained
    (tmp_path / "rows" / "pooling-transformer" / "seed0" / "result.json").unlink()
    fourth = run_bench(world, longer, rows=rows, out=tmp_path, progress=False, registry=registry)
    assert fourth.ran == [("pooling-transformer", 0)]
    reused = store.load("pooling-transformer", 0)
    assert reused.extra["reused"] is True
    np.testing.assert_array_equal(reused.predictions, retrained.predictions)


def test_pooling_rows_with_the_trained_agclip_row(world: Path, tmp_path: Path) -> None:
    registry = builtin_rows()  # builtin_rows registers the pooling rows
    assert set(POOLING_ROWS) <= set(registry)
    rows = ",".join(POOLING_ROWS)
    report = run_bench(world, "tiny", rows=rows, out=tmp_path, progress=False, registry=registry)
    assert not report.failed, report.failed
    store = ResultStore(tmp_path)
    agclip = store.load("agclip", 0)
    # the model re-run over the test audio and mean-pooled gives the agclip row's embeddings
    np.testing.assert_array_equal(store.load("pooling-mean", 0).predictions, agclip.predictions)
    transformer = store.load("pooling-transformer", 0)
    assert transformer.extra["epochs"] == PRESETS["tiny"].pooling_epochs == 5
    for name in POOLING_ROWS:
        metrics = store.load(name, 0).metrics()
        print(f"\n{name}: median {metrics.median_km:.0f} km (SYNTHETIC micro world)")
        assert metrics.n_invalid == 0
