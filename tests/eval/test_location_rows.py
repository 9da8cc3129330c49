"""Table 2: AG-CLIP models trained against SINR / SatCLIP keep their location encoder, and the
location-encoder bench rows retrieve in that encoder's space."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from geoforensics.core import cli
from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models import ModelConfig, save_model
from geoforensics.core.models.geolocator import AudioGeolocator
from geoforensics.core.models.location import SINREncoder, create_location_encoder
from geoforensics.core.models.model_space import (
    LOCATION_ENCODER_FILE,
    model_location_encoder,
    read_model_config,
    retrieval_index_for_model,
)
from geoforensics.eval import bench as bench_module
from geoforensics.eval.bench import _fingerprint, run_bench
from geoforensics.eval.presets import BenchPreset
from geoforensics.eval.results import ResultStore
from geoforensics.eval.rows import BenchData, RowRegistry, builtin_rows
from geoforensics.train.config import config_from_dict
from geoforensics.train.runner import train

torch.set_num_threads(1)

#: One short epoch of the test_tiny encoder: the wiring, not the accuracy.
MICRO = BenchPreset(
    name="micro",
    description="tests: test_tiny, 1 epoch x 1 window",
    train={
        "model": {"encoder": "test_tiny"},
        "optim": {"batch_size": 32, "max_epochs": 1, "warmup_epochs": 1.0},
        "train": {"patience": 5, "eval_batch_size": 64, "windows_per_recording": 1},
    },
    oracle_epochs=1,
)
SINR_WIDTH = 64


def write_sinr_checkpoint(path: Path, seed: int = 0, n_classes: int = 5) -> Path:
    """A random checkpoint in the public SINR layout ({'params', 'state_dict'}), 64 wide."""
    gen = torch.Generator().manual_seed(seed)
    width = SINR_WIDTH
    state = {
        "class_emb.weight": torch.randn(n_classes, width, generator=gen) * 0.1,
        "feats.0.weight": torch.randn(width, 4, generator=gen) * 0.5,
        "feats.0.bias": torch.randn(width, generator=gen) * 0.1,
    }
    for layer in (2, 3):
        for name in ("w1", "w2"):
            state[f"feats.{layer}.{name}.weight"] = torch.randn(width, width, generator=gen) * 0.1
            state[f"feats.{layer}.{name}.bias"] = torch.randn(width, generator=gen) * 0.01
    params = {
        "model": "ResidualFCNet",
        "input_enc": "sin_cos",
        "num_filts": width,
        "depth": 2,
        "num_classes": n_classes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": params, "state_dict": state}, path)
    return path


@pytest.fixture(scope="module")
def world(train_micro_world: Path) -> Path:
    """The session's 80-recording SYNTHETIC world (tests/conftest.py)."""
    return train_micro_world


@pytest.fixture(scope="module")
def sinr_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sinr_checkpoint(tmp_path_factory.mktemp("sinr") / "sinr.pt")


@pytest.fixture(scope="module")
def sinr_model(
    world: Path, sinr_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An AG-CLIP model trained for one epoch against the SINR checkpoint."""
    out = tmp_path_factory.mktemp("sinr-run") / "run"
    config = config_from_dict(
        {
            "method": "agclip",
            "data": {"root": str(world)},
            "model": {
                "encoder": "test_tiny",
                "location_encoder": "sinr",
                "location_encoder_checkpoint": str(sinr_checkpoint),
            },
            "optim": {"batch_size": 32, "max_epochs": 1, "warmup_epochs": 1},
            "train": {"windows_per_recording": 1},
            "eval": {"gallery": ["train"], "test": False},
            "out": str(out),
        }
    )
    train(config, progress=False)
    return out / "model"


@pytest.fixture
def bench_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI with the bench command registered (the lead adds it to COMMAND_MODULES)."""
    name = "geoforensics.core.commands.bench"
    if name not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, name))
    yield


def _registry() -> RowRegistry:
    return builtin_rows()


# ------------------------------------------------------------------ the saved model space


def test_sinr_model_keeps_its_location_encoder(sinr_model: Path, sinr_checkpoint: Path) -> None:
    assert (sinr_model / LOCATION_ENCODER_FILE).is_file()
    assert (sinr_model / "location_encoder.json").is_file()
    config = read_model_config(sinr_model)
    assert config.extra["location_encoder"] == "sinr"
    assert config.embed_dim == SINR_WIDTH
    side = json.loads((sinr_model / "location_encoder.json").read_text(encoding="utf-8"))
    assert side["name"] == "sinr" and side["info"]["checkpoint"] == str(sinr_checkpoint)
    encoder = model_location_encoder(sinr_model)
    assert isinstance(encoder, SINREncoder) and not encoder.training
    original = create_location_encoder("sinr", checkpoint=sinr_checkpoint)
    assert encoder.weights_id == original.weights_id  # the very encoder it was trained against
    # retrieval in the model's space: the gallery embedded by that encoder
    gallery = np.array([[42.36, -71.06], [-33.87, 151.21], [51.5, -0.12], [0.0, 0.0]])
    index = retrieval_index_for_model(sinr_model, gallery)
    assert index.dim == SINR_WIDTH and len(index) == 4
    np.testing.assert_allclose(index.embeddings, original.embed(gallery), atol=1e-6)
    top = index.search(original.embed(gallery[[2]]), k=1)
    np.testing.assert_array_equal(top.coords[0, 0], gallery[2])
    # a model.safetensors / model.json path works as well as the folder
    assert model_location_encoder(sinr_model / "model.json") is not None


def test_missing_location_encoder_file_is_a_clear_error(sinr_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(sinr_model, copy)
    (copy / LOCATION_ENCODER_FILE).unlink()
    with pytest.raises(InputError, match=r"location_encoder\.safetensors: missing .*sinr"):
        model_location_encoder(copy)
    with pytest.raises(InputError, match="missing"):
        retrieval_index_for_model(copy, np.zeros((2, 2)))
    shutil.copy(sinr_model / LOCATION_ENCODER_FILE, copy / LOCATION_ENCODER_FILE)
    (copy / "location_encoder.json").unlink()
    with pytest.raises(InputError, match="missing"):
        model_location_encoder(copy)


def test_geoclip_models_retrieve_in_geoclip_space(tmp_path: Path) -> None:
    from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings

    gallery = np.array([[42.36, -71.06], [-33.87, 151.21], [51.5, -0.12]])
    for extra in ({}, {"location_encoder": "geoclip"}):  # older exports carry no key
        config = ModelConfig(kind="agclip", encoder="test_tiny", n_species=3, extra=extra)
        folder = tmp_path / f"geoclip-{len(extra)}"
        save_model(AudioGeolocator(config), folder)
        assert model_location_encoder(folder) is None
        index = retrieval_index_for_model(folder, gallery)
        assert index.dim == 512
        np.testing.assert_allclose(index.embeddings, cached_gallery_embeddings(gallery), atol=1e-6)
    config = ModelConfig(
        kind="agclip", encoder="test_tiny", extra={"location_encoder": "satclip"}, embed_dim=256
    )
    save_model(AudioGeolocator(config), tmp_path / "satclip")
    with pytest.raises(InputError, match="satclip location encoder"):
        model_location_encoder(tmp_path / "satclip")


# ---------------------------------------------------------------------- the Table 2 rows


def test_rows_are_unavailable_without_a_range_model_or_checkpoint(
    tmp_path: Path, sinr_checkpoint: Path
) -> None:
    (tmp_path / "test.json").write_text("{}", encoding="utf-8")  # a non-synthetic data set
    registry = _registry()
    rows = [registry[f"location-encoder-{name}"] for name in ("sinr", "satclip")]
    data = BenchData(tmp_path, MICRO)
    for row in rows:
        assert row.table == "T2" and row.trains and row.unavailable is not None
        reason = row.unavailable(data)
        assert reason is not None and "checkpoint" in reason
    assert registry["location-encoder-geoclip"].requires == ("agclip",)
    given = BenchData(tmp_path, MICRO, location_encoder_checkpoints={"sinr": sinr_checkpoint})
    assert rows[0].unavailable is not None and rows[0].unavailable(given) is None
    assert rows[1].unavailable is not None and rows[1].unavailable(given) is not None
    xcdc_row = registry["location-encoder-sinr-xcdc"]
    assert xcdc_row.table == "T3" and xcdc_row.unavailable is not None
    assert xcdc_row.unavailable(given) == "no XCDC data (give --xcdc DIR)"
    with pytest.raises(WeightsNotFoundError, match=r"nowhere\.pt"):
        BenchData(tmp_path, MICRO, location_encoder_checkpoints={"sinr": tmp_path / "nowhere.pt"})


def test_user_checkpoint_takes_part_in_the_fingerprint(world: Path, tmp_path: Path) -> None:
    registry = _registry()
    row = registry["location-encoder-sinr"]
    first = write_sinr_checkpoint(tmp_path / "a.pt", seed=1)
    second = write_sinr_checkpoint(tmp_path / "b.pt", seed=2)

    def fingerprint(checkpoints: dict[str, Path] | None) -> dict[str, Any]:
        data = BenchData(world, MICRO, location_encoder_checkpoints=checkpoints)
        return _fingerprint(data, row, {}, registry)

    pretrained = fingerprint(None)
    assert "pretrained_on_range_model_sha256" in pretrained["inputs"]
    with_first = fingerprint({"sinr": first})
    assert with_first != pretrained
    assert with_first != fingerprint({"sinr": second})
    shutil.copy(second, first)  # same path, new weights: a new fingerprint
    assert fingerprint({"sinr": first}) == fingerprint({"sinr": second})
    # rows without inputs keep their old fingerprints (no "inputs" key)
    naive = _fingerprint(BenchData(world, MICRO), registry["naive"], {}, registry)
    assert "inputs" not in naive


def test_sinr_row_uses_the_user_checkpoint_and_retrieves_gallery_points(
    world: Path, tmp_path: Path
) -> None:
    registry = _registry()
    checkpoint = write_sinr_checkpoint(tmp_path / "user" / "sinr.pt", seed=3)
    out = tmp_path / "bench"
    checkpoints = {"sinr": checkpoint}
    report = run_bench(
        world,
        preset=MICRO,
        rows="location-encoder-sinr",
        out=out,
        progress=False,
        registry=registry,
        location_encoder_checkpoints=checkpoints,
    )
    assert not report.failed and report.ran == [("location-encoder-sinr", 0)]
    result = ResultStore(out).load("location-encoder-sinr", 0)
    gallery = {tuple(p) for p in BenchData(world, MICRO).gallery.coords.tolist()}
    assert all(tuple(p) in gallery for p in result.predictions.tolist())
    assert result.arrays["embeddings"].shape == (len(result), SINR_WIDTH)
    assert result.extra["encoder_source"] == "checkpoint"
    assert result.extra["checkpoint"] == str(checkpoint.resolve())
    model_dir = Path(result.extra["model_dir"])
    saved = model_location_encoder(model_dir)
    assert saved is not None
    assert saved.weights_id == create_location_encoder("sinr", checkpoint=checkpoint).weights_id
    tables = (out / "tables.md").read_text(encoding="utf-8")
    assert "Table 2" in tables and "| AG-CLIP, SINR location encoder |" in tables
    # the same checkpoint: reused; new weights at the same path: the model is retrained
    again = run_bench(
        world,
        preset=MICRO,
        rows="location-encoder-sinr",
        out=out,
        progress=False,
        registry=registry,
        location_encoder_checkpoints=checkpoints,
    )
    assert again.ran == [] and again.reused == [("location-encoder-sinr", 0)]
    write_sinr_checkpoint(checkpoint, seed=4)
    third = run_bench(
        world,
        preset=MICRO,
        rows="location-encoder-sinr",
        out=out,
        progress=False,
        registry=registry,
        location_encoder_checkpoints=checkpoints,
    )
    assert third.ran == [("location-encoder-sinr", 0)]
    retrained = model_location_encoder(model_dir)
    assert retrained is not None
    assert retrained.weights_id == create_location_encoder("sinr", checkpoint=checkpoint).weights_id
    assert retrained.weights_id != saved.weights_id


def test_cli_passes_checkpoints_and_checks_them(
    bench_cli: None,
    world: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = tmp_path / "missing-sinr.pt"
    args = ["bench", "--data", str(world), "--rows", "naive", "--out", str(tmp_path / "o")]
    assert cli.main([*args, "--sinr-checkpoint", str(missing), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("geoforensics: error:") and "missing-sinr.pt" in err and "\n" not in err
    satclip = tmp_path / "satclip.ckpt"
    satclip.write_bytes(b"not read by the naive row")
    assert cli.main([*args, "--satclip-checkpoint", str(satclip), "--quiet"]) == 0
    seen: dict[str, object] = {}
    real = bench_module.run_bench

    def spy(*a: object, **kw: object) -> object:
        seen.update(kw)
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(bench_module, "run_bench", spy)
    sinr = write_sinr_checkpoint(tmp_path / "sinr.pt")
    flags = ["--sinr-checkpoint", str(sinr), "--satclip-checkpoint", str(satclip), "--quiet"]
    assert cli.main([*args, *flags]) == 0
    assert seen["location_encoder_checkpoints"] == {"sinr": str(sinr), "satclip": str(satclip)}


# ------------------------------------------------------------------------ the whole table


@pytest.mark.slow
def test_table2_rows_on_the_tiny_world(tiny_world: Path, tmp_path: Path) -> None:
    """All three Table 2 rows with the tiny preset; SINR and SatCLIP pretrained on the world's
    range model."""
    rows = "location-encoder-geoclip,location-encoder-sinr,location-encoder-satclip"
    report = run_bench(
        tiny_world, preset="tiny", rows=rows, out=tmp_path, progress=False, registry=_registry()
    )
    assert not report.failed, report.failed
    store = ResultStore(tmp_path)
    gallery = {tuple(p) for p in BenchData(tiny_world, MICRO).gallery.coords.tolist()}
    agclip = store.load("agclip", 0)
    geoclip = store.load("location-encoder-geoclip", 0)
    np.testing.assert_array_equal(geoclip.predictions, agclip.predictions)
    assert read_model_config(Path(agclip.extra["model_dir"])).extra["location_encoder"] == "geoclip"
    assert not (Path(agclip.extra["model_dir"]) / LOCATION_ENCODER_FILE).exists()
    print("agclip (GeoCLIP) median km", agclip.metrics().median_km)
    for name in ("sinr", "satclip"):
        result = store.load(f"location-encoder-{name}", 0)
        assert all(tuple(p) in gallery for p in result.predictions.tolist())
        assert result.arrays["embeddings"].shape == (len(result), 256)
        assert result.extra["encoder_source"] == "range-model pretraining"
        assert result.extra["pretraining"]["val_macro_auc"] > 0.8
        model_dir = Path(result.extra["model_dir"])
        assert read_model_config(model_dir).extra["location_encoder"] == name
        print(name, result.metrics().median_km, result.extra["pretraining"])
    tables = (tmp_path / "tables.md").read_text(encoding="utf-8")
    assert "Table 2: location-encoder ablation" in tables
    for label in ("GeoCLIP", "SINR", "SatCLIP"):
        assert f"| AG-CLIP, {label} location encoder |" in tables
