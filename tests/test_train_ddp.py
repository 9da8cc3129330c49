"""Multi-process training: 2 CPU processes (DDP, gloo backend) through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from geoforensics.core.models import frontend_for
from geoforensics.train.config import load_config
from geoforensics.train.datamodule import GeoDataModule
from geoforensics.train.runner import build_task


@pytest.fixture(scope="module")
def world(train_micro_world: Path) -> Path:
    """The session's 80-recording SYNTHETIC world (tests/conftest.py)."""
    return train_micro_world


@pytest.mark.slow  # ~30 s on idle cores, up to ~70 s on 2 busy ones (two interpreters + gloo)
def test_two_process_ddp_epoch(world: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(
        "method: agclip\n"
        f"data: {{root: {world}}}\n"
        "model: {encoder: test_tiny}\n"
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
    assert "distributed_backend=gloo" in output
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    assert output.count("agclip trained for 1 epochs") == 1  # only process 0 reports
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["epochs_trained"] == 1 and summary["best_epoch"] == 0

    # The validation metrics pooled across the two processes equal a one-process evaluation
    # of the exported model on the whole validation split.
    config = load_config(config_path)
    datamodule = GeoDataModule(config, frontend_for("test_tiny"), progress=False)
    datamodule.setup("validate")
    task = build_task(config, datamodule)
    weights = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    task.model.load_state_dict(weights)
    n_val = len(datamodule.splits["val"])
    result_val = task.evaluate(
        datamodule.val_dataloader(), n_val, transfer=datamodule.on_after_batch_transfer
    )
    assert result_val.metrics.count == n_val  # every recording scored once
    for key, value in summary["val"].items():
        assert result_val.metrics.as_dict()[key] == pytest.approx(value, rel=1e-6, abs=1e-9)
