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


def _one_epoch_config(world: Path, folder: Path, name: str) -> Path:
    """One epoch of the test_tiny AG-CLIP on ``world``, run folder ``folder/run``."""
    path = folder / name
    path.write_text(
        "method: agclip\n"
        f"data: {{root: {world}}}\n"
        "model: {encoder: test_tiny}\n"
        "optim: {batch_size: 8, max_epochs: 1, warmup_epochs: 1}\n"
        "eval: {gallery: [train]}\n"
        f"out: {folder / 'run'}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow  # ~30 s on idle cores, up to ~70 s on 2 busy ones (two interpreters + gloo)
def test_two_process_ddp_epoch(world: Path, tmp_path: Path) -> None:
    config_path = _one_epoch_config(world, tmp_path, "ddp.yaml")
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


@pytest.mark.slow  # two interpreters + gloo, as above
def test_two_nodes_of_one_process_each(world: Path, tmp_path: Path) -> None:
    """``--num-nodes 2``: two machines of one process each, here two commands on localhost
    with the environment Lightning reads on a cluster (MASTER_ADDR, MASTER_PORT, NODE_RANK)."""
    import socket

    config_path = _one_epoch_config(world, tmp_path, "nodes.yaml")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "geoforensics.core.cli", "train", str(config_path),
        "--devices", "1", "--num-nodes", "2", "--strategy", "ddp", "--accelerator", "cpu",
        "--no-progress",
    ]  # fmt: skip
    nodes = []
    for rank in (0, 1):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), NODE_RANK=str(rank))  # fmt: skip
        nodes.append(
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
            )
        )
    outputs = [node.communicate(timeout=400)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1]
    assert outputs[0].count("agclip trained for 1 epochs") == 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["epochs_trained"] == 1
