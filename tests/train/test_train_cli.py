"""`geoforensics train`: config checking, the run folder, resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from geoforensics.core import cli
from geoforensics.core.errors import InputError
from geoforensics.core.models import load_model
from geoforensics.train.config import load_config
from geoforensics.train.runner import train

EPOCHS = 3


@pytest.fixture(scope="module")
def world(train_micro_world: Path) -> Path:
    """The session's 80-recording SYNTHETIC world (tests/conftest.py)."""
    return train_micro_world


def _write_config(folder: Path, world: Path, text: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(
        "method: agclip\n"
        f"data:\n  root: {world}\n"
        "model:\n  encoder: test_tiny\n"
        f"optim:\n  batch_size: 16\n  max_epochs: {EPOCHS}\n  warmup_epochs: 1\n"
        "  lr_start: 1.0e-3\n  lr_peak: 1.0e-2\n  lr_end: 1.0e-3\n"
        "train:\n  patience: 50\n  windows_per_recording: 2\n"
        "eval:\n  gallery: [train]\n"
        "out: runs/default\n" + text,
        encoding="utf-8",
    )
    return path


# ---------------------------------------------------------------------------- config


def test_config_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    cases = {
        "method: agclip\ndata: {root: x}\noptim: {lrr: 1}\n": "unknown key 'optim.lrr'",
        "method: agclip\ndata: {root: x}\nextra: 1\n": "unknown key 'extra'",
        "method: agclip\ndata: {root: x}\noptim: {batch_size: many}\n": "'optim.batch_size'",
        "method: knn\ndata: {root: x}\n": "method 'knn'",
        "method: agclip\n": "missing section 'data'",
        "method: agclip\ndata: {root: x}\ntrain: {strategy: fsdp}\n": "'train.strategy'",
        "method: agclip\ndata: {root: x}\ntrain: {num_nodes: 2}\n": "'train.num_nodes'",
        "method: agclip\ndata: {root: x}\n  bad: [\n": "not valid YAML",
    }
    for text, expected in cases.items():
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as error:
            load_config(path)
        message = str(error.value)
        assert str(path) in message and expected in message, message
        assert "\n" not in message


def test_config_paths_resolve_against_the_yaml_folder(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "c.yaml"
    path.write_text(
        "method: classification\n"
        "data: {root: ../data/world, range_model: none}\n"
        "model: {encoder: test_tiny, h3_res: 2, pretrained: weights/enc.safetensors,\n"
        "        location_encoder: sinr, location_encoder_checkpoint: weights/sinr.pt}\n"
        "optim: {lr_peak: 5e-2, warmup_epochs: 2}\n"  # YAML reads 5e-2 as a string
        "eval: {gallery: [train, 'file:g.csv']}\n"
        "out: ../runs/c\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.data.root == (tmp_path / "data" / "world").resolve()
    assert config.model.pretrained == (folder / "weights" / "enc.safetensors").resolve()
    assert config.model.location_encoder_checkpoint == (folder / "weights" / "sinr.pt").resolve()
    assert config.out == (tmp_path / "runs" / "c").resolve()
    assert config.eval.gallery == ("train", f"file:{(folder / 'g.csv').resolve()}")
    assert config.optim.lr_peak == 0.05 and config.optim.warmup_epochs == 2.0
    # the paper's defaults fill everything else
    assert (config.optim.batch_size, config.optim.max_epochs, config.optim.momentum) == (
        128,
        50,
        0.9,
    )
    assert config.optim.nesterov and config.optim.weight_decay == 1e-5
    assert config.loss.species_weight == 0.01 and config.train.monitor == "val/median_km"
    assert config.model_kind == "classification" and config.model.h3_res == 2


# ---------------------------------------------------------------------------- runs


class _Crash(L.Callback):
    """Simulates an interruption in the second epoch (after epoch 0's checkpoints)."""

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if trainer.current_epoch == 1 and batch_idx == 2:
            raise RuntimeError("simulated crash")


def test_train_command_and_resume(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = _write_config(tmp_path / "cfg", world)
    whole, parts = tmp_path / "whole", tmp_path / "parts"

    # 1. an uninterrupted run through the command line
    assert cli.main(["train", str(config_path), "--out", str(whole), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC data: agclip trained for 3 epochs" in printed
    summary = json.loads((whole / "summary.json").read_text())
    assert summary["epochs_trained"] == EPOCHS and len(summary["history"]) == EPOCHS
    assert summary["synthetic_data"] is True
    best = min(summary["history"], key=lambda h: h["val/median_km"])
    assert summary["best_epoch"] == int(best["epoch"])
    assert summary["val"]["median_km"] == pytest.approx(best["val/median_km"])
    assert set(summary["test"]) >= {"median_km", "acc@25km", "acc@200km", "acc@2500km"}
    assert summary["wall_time_s"] > 0
    # the run folder
    checkpoints = sorted(p.name for p in (whole / "checkpoints").iterdir())
    assert checkpoints == [f"best-e{summary['best_epoch']:03d}.ckpt", "last.ckpt"]
    metrics = (whole / "logs" / "metrics.csv").read_text().splitlines()
    assert "val/median_km" in metrics[0] and "train/loss_epoch" in metrics[0]
    predictions = np.load(whole / "test_predictions.npz")
    assert np.median(predictions["errors"]) == pytest.approx(summary["test"]["median_km"])
    # checkpoints hold no pickled objects: they load with weights_only=True
    for name in checkpoints:
        state = torch.load(whole / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert "state_dict" in state and "optimizer_states" in state
    # the exported model is the best checkpoint's model, loadable without pickle
    best_state = torch.load(
        whole / "checkpoints" / checkpoints[0], map_location="cpu", weights_only=True
    )["state_dict"]
    exported = load_file(str(whole / "model" / "model.safetensors"))
    for key, value in exported.items():
        assert torch.equal(value, best_state[f"model.{key}"])
    model = load_model(whole / "model")
    assert model.config.kind == "agclip" and model.config.n_species == 30
    assert model.config.extra["method"] == "agclip"
    assert len(model.config.extra["species_names"]) == 30

    # 2. the same run interrupted during its second epoch, then resumed from last.ckpt
    config = load_config(config_path)
    import dataclasses

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(dataclasses.replace(config, out=parts), progress=False, callbacks=[_Crash()])
    assert (parts / "checkpoints" / "last.ckpt").is_file()
    assert not (parts / "summary.json").exists()
    # a fresh run refuses the folder; resuming continues it
    assert cli.main(["train", str(config_path), "--out", str(parts), "--no-progress"]) == 1
    assert "--resume" in capsys.readouterr().err
    argv = ["train", str(config_path), "--out", str(parts), "--resume", "--no-progress"]
    assert cli.main(argv) == 0
    resumed = json.loads((parts / "summary.json").read_text())
    assert resumed["epochs_trained"] == EPOCHS
    assert [h["epoch"] for h in resumed["history"]] == [0.0, 1.0, 2.0]
    # deterministic on the CPU: the resumed run ends where the uninterrupted one does
    # (tolerance 1e-6 relative on every metric; weights within 1e-6)
    for a, b in zip(summary["history"], resumed["history"], strict=True):
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9)
    assert resumed["best_epoch"] == summary["best_epoch"]
    for key, value in summary["test"].items():
        assert resumed["test"][key] == pytest.approx(value, rel=1e-6, abs=1e-9)
    other = load_file(str(parts / "model" / "model.safetensors"))
    for key, value in exported.items():
        torch.testing.assert_close(other[key], value, rtol=1e-6, atol=1e-6)


def test_resume_without_checkpoint_and_missing_data_fail_cleanly(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = _write_config(tmp_path / "cfg", world)
    argv = ["train", str(config_path), "--out", str(tmp_path / "none"), "--resume"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "last.ckpt" in err and err.count("\n") == 0
    argv = ["train", str(config_path), "--data", str(tmp_path / "nowhere"), "--no-progress"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "nowhere" in err and err.count("\n") == 0


def test_shipped_configs_load() -> None:
    from geoforensics.core.paths import assets_dir

    folder = assets_dir() / "configs"
    names = {p.stem for p in folder.glob("*.yaml")}
    expected = {
        "agclip",
        "regression_mse",
        "regression_haversine",
        "classification_res0",
        "classification_res1",
        "classification_res2",
        "paper_agclip",
    }
    assert expected <= names
    for name in expected - {"paper_agclip"}:
        config = load_config(folder / f"{name}.yaml")
        assert config.model.encoder == "test_tiny" and config.data.range_model == "synthetic"
        assert config.data.root == (folder / "world-tiny").resolve()
        if name.startswith("classification_res"):
            assert config.model.h3_res == int(name[-1])
    paper = load_config(folder / "paper_agclip.yaml")
    assert paper.method == "agclip" and paper.model.encoder == "mobilenet_v3_large"
    assert paper.model.hidden == 128 and paper.loss.species_weight == 0.01
    optim = paper.optim
    assert (optim.batch_size, optim.momentum, optim.nesterov, optim.weight_decay) == (
        128,
        0.9,
        True,
        1e-5,
    )
    assert (optim.lr_start, optim.lr_peak, optim.lr_end) == (1e-3, 1e-2, 1e-3)
    assert (optim.warmup_epochs, optim.max_epochs) == (5.0, 50)
    assert paper.train.windows_per_recording == 1 and paper.train.monitor == "val/median_km"
