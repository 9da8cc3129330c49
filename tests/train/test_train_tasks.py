"""Tasks and data module: losses by hand, pooling per recording, batches, sampling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geoforensics.core.geo.h3cells import cell_centers, latlng_to_cell_index
from geoforensics.core.models import ModelConfig, frontend_for
from geoforensics.core.synth import SyntheticRangeModel
from geoforensics.train.config import config_from_dict
from geoforensics.train.datamodule import DenseWindowSampler, GeoDataModule, RandomWindowSampler
from geoforensics.train.runner import build_task
from geoforensics.train.tasks import (
    AGCLIPTask,
    ClassificationTask,
    RegressionTask,
    contrastive_loss,
)


@pytest.fixture(scope="module")
def world(train_micro_world: Path) -> Path:
    """The session's 80-recording SYNTHETIC world (tests/conftest.py)."""
    return train_micro_world


def _config(world: Path, method: str = "agclip", **model: object):  # type: ignore[no-untyped-def]
    return config_from_dict(
        {
            "method": method,
            "data": {"root": str(world)},
            "model": {"encoder": "test_tiny", **model},
            "optim": {"batch_size": 16, "max_epochs": 2},
            "eval": {"gallery": ["train"]},
            "out": str(world.parent / "unused-run"),
        }
    )


@pytest.fixture(scope="module")
def datamodule(world: Path) -> GeoDataModule:
    dm = GeoDataModule(_config(world), frontend_for("test_tiny"), progress=False)
    dm.setup("fit")
    return dm


# ---------------------------------------------------------------------------- losses


def test_contrastive_loss_by_hand() -> None:
    torch.manual_seed(0)
    audio, locations = torch.randn(4, 8), torch.randn(4, 8)
    latlon = torch.tensor([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0], [30.0, 30.0]])
    a, g = F.normalize(audio, dim=1), F.normalize(locations, dim=1)
    logits = 39.7 * a @ g.T
    expected = -torch.log_softmax(logits, dim=1).diagonal().mean()
    assert contrastive_loss(audio, locations, latlon, 39.7) == pytest.approx(
        float(expected), rel=1e-5
    )
    symmetric = 0.5 * (expected - torch.log_softmax(logits.T, dim=1).diagonal().mean())
    assert contrastive_loss(audio, locations, latlon, 39.7, symmetric=True) == pytest.approx(
        float(symmetric), rel=1e-5
    )
    # matching embeddings give a lower loss than shuffled ones
    assert contrastive_loss(locations, locations, latlon, 39.7) < contrastive_loss(
        locations.roll(1, 0), locations, latlon, 39.7
    )


def test_contrastive_loss_shares_positives_of_identical_places() -> None:
    g = F.normalize(torch.randn(3, 8), dim=1)
    locations = torch.stack([g[0], g[0], g[1]])  # rows 0 and 1: the same place
    latlon = torch.tensor([[5.0, 5.0], [5.0, 5.0], [40.0, -3.0]])
    audio = locations.clone()
    logits = 10.0 * F.normalize(audio, dim=1) @ F.normalize(locations, dim=1).T
    logp = torch.log_softmax(logits, dim=1)
    expected = -(0.5 * (logp[0, 0] + logp[0, 1]) + 0.5 * (logp[1, 0] + logp[1, 1]) + logp[2, 2]) / 3
    assert contrastive_loss(audio, locations, latlon, 10.0) == pytest.approx(
        float(expected), rel=1e-5
    )


def test_agclip_task_uses_exponentiated_geoclip_scale_and_checklist_bce(
    datamodule: GeoDataModule,
) -> None:
    config = _config(datamodule.config.data.root)
    task = build_task(config, datamodule)
    assert isinstance(task, AGCLIPTask)
    # exp(logit_scale) ≈ 39.7, not the log value 3.68 the reference multiplies by
    assert task.temperature == pytest.approx(39.7, abs=0.1)
    assert task.model_config.n_species == 30
    assert task.train_targets.shape == (len(datamodule.train_coords), 512)
    assert torch.allclose(task.train_targets.norm(dim=1), torch.ones(1), atol=1e-5)
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    outputs = task(batch["image"])
    losses = task.compute_losses(outputs, batch)
    targets = task.train_targets[batch["recording"]]
    contrastive = contrastive_loss(outputs["embedding"], targets, batch["latlon"], task.temperature)
    bce = F.binary_cross_entropy_with_logits(outputs["species_logits"], batch["checklist"])
    assert float(losses["contrastive"].detach()) == pytest.approx(
        float(contrastive.detach()), rel=1e-5
    )
    assert float(losses["species"].detach()) == pytest.approx(float(bce.detach()), rel=1e-5)
    assert float(losses["loss"].detach()) == pytest.approx(
        float((contrastive + 0.01 * bce).detach()), rel=1e-5
    )
    # the frozen location targets get no gradient; the model does
    losses["loss"].backward()
    assert all(p.grad is not None for p in task.model.head.parameters())
    assert not task.train_targets.requires_grad


def test_agclip_prediction_is_nearest_gallery_point(datamodule: GeoDataModule) -> None:
    task = build_task(_config(datamodule.config.data.root), datamodule)
    assert isinstance(task, AGCLIPTask)
    # a pooled embedding equal to a gallery point's embedding retrieves that point
    picks = torch.tensor([3, 0, 17])
    pooled = task.gallery_embeddings[picks] * 2.5  # scale does not matter (normalised)
    np.testing.assert_allclose(task.predict_pooled(pooled), task.gallery_coords[picks.numpy()])


def test_regression_losses() -> None:
    config = ModelConfig(kind="regression", encoder="test_tiny")
    true = torch.tensor([[45.0, 90.0], [-30.0, -120.0]])
    raw = torch.tensor([[0.5, 0.5], [-30.0 / 90, -120.0 / 180]], requires_grad=True)
    mse = RegressionTask(config, loss_name="mse")
    loss = mse.compute_losses({"latlon_norm": raw}, {"latlon": true})["loss"]
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    haversine = RegressionTask(config, loss_name="haversine")
    loss = haversine.compute_losses({"latlon_norm": raw}, {"latlon": true})["loss"]
    assert loss.item() == pytest.approx(0.0, abs=1e-4)
    loss.backward()  # zero distance: the eps floor keeps the gradient finite
    assert raw.grad is not None and torch.isfinite(raw.grad).all()
    off = torch.tensor([[0.0, 0.0]])  # (0, 0) vs (0, 90): a quarter of a great circle
    value = haversine.compute_losses({"latlon_norm": off}, {"latlon": torch.tensor([[0.0, 90.0]])})
    assert float(value["loss"]) == pytest.approx(math.pi / 2, rel=1e-5)


def test_regression_pools_on_the_sphere_and_clamps() -> None:
    task = RegressionTask(ModelConfig(kind="regression", encoder="test_tiny"), loss_name="mse")
    # two windows at lon 179 and -179 average to the dateline, not to Greenwich
    windows = {"latlon": torch.tensor([[10.0, 179.0], [10.0, -179.0]])}
    pooled = task.window_outputs(windows).mean(dim=0, keepdim=True)
    lat, lon = task.predict_pooled(pooled)[0]
    assert lat == pytest.approx(10.0, abs=0.05)
    assert abs(abs(lon) - 180.0) < 1e-6
    with torch.no_grad():
        out = task.model.outputs_from_features(torch.full((1, 64), 50.0))  # huge outputs
    lat, lon = out["latlon"][0].tolist()
    assert -90 <= lat <= 90 and -180 <= lon <= 180


def test_classification_targets_and_prediction() -> None:
    config = ModelConfig(kind="classification", encoder="test_tiny", h3_resolution=1)
    task = ClassificationTask(config)
    latlon = torch.tensor([[48.85, 2.35], [-33.9, 151.2]])
    cells = task.cell_targets(latlon)
    np.testing.assert_array_equal(cells.numpy(), latlng_to_cell_index(latlon.numpy(), 1))
    logits = torch.full((2, 842), -5.0)
    logits[0, cells[0]] = 5.0
    logits[1, cells[1]] = 5.0
    loss = task.compute_losses({"logits": logits}, {"latlon": latlon})["loss"]
    assert float(loss) == pytest.approx(float(F.cross_entropy(logits, cells)), rel=1e-6)
    pooled = task.window_outputs({"logits": logits})
    assert torch.allclose(pooled.sum(dim=1), torch.ones(2))
    np.testing.assert_allclose(task.predict_pooled(pooled), cell_centers(1)[cells.numpy()])


def test_evaluation_pools_windows_per_recording() -> None:
    """Window outputs spread over batches are averaged per recording before predicting."""
    config = ModelConfig(kind="classification", encoder="test_tiny", h3_resolution=0)
    task = ClassificationTask(config)
    task.eval()
    torch.manual_seed(1)
    images = torch.randn(7, 3, 64, 64)
    recording = torch.tensor([2, 0, 2, 1, 2, 0, 2])  # recording 3 has no window here
    latlon = torch.tensor([[10.0, 20.0], [-5.0, 30.0], [60.0, -100.0]])[recording.clamp(max=2)]
    batches = [
        {"image": images[s], "recording": recording[s], "latlon": latlon[s]}
        for s in (slice(0, 3), slice(3, 5), slice(5, 7))
    ]
    result = task.evaluate(batches, n_recordings=4)
    with torch.no_grad():
        probs = F.softmax(task(images)["logits"], dim=1)
    np.testing.assert_array_equal(result.recordings, [0, 1, 2])
    np.testing.assert_array_equal(result.windows, [2, 1, 4])
    for row, r in enumerate([0, 1, 2]):
        expected = probs[recording == r].mean(dim=0).numpy()
        np.testing.assert_allclose(result.pooled[row], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result.targets[2], [60.0, -100.0])
    np.testing.assert_allclose(result.predictions, cell_centers(0)[result.pooled.argmax(1)])
    assert result.metrics.count == 3


# ---------------------------------------------------------------------------- data


def test_batches_carry_images_and_targets(datamodule: GeoDataModule) -> None:
    loader = datamodule.train_dataloader()
    raw = next(iter(loader))
    assert raw["spec"].dtype == torch.uint8 and raw["spec"].shape[1:] == (128, 513)
    batch = datamodule.on_after_batch_transfer(raw, 0)
    assert batch["image"].shape == (16, 3, 64, 64) and batch["image"].dtype == torch.float32
    assert float(batch["image"].min()) >= 0.0 and float(batch["image"].max()) <= 1.0
    train = datamodule.splits["train"]
    rows = batch["recording"].numpy()
    np.testing.assert_allclose(batch["latlon"].numpy(), train.coords[rows], rtol=1e-6)
    np.testing.assert_array_equal(batch["category"].numpy(), train.labels[rows])
    # checklists: the range model at the true location (year-round, presence >= 0.1)
    model = SyntheticRangeModel.load(datamodule.config.data.root)
    assert model.species == datamodule.species_names  # synthetic world: same order
    expected = model.checklist(train.coords[rows, 0], train.coords[rows, 1], None, 0.1)
    np.testing.assert_array_equal(batch["checklist"].numpy().astype(bool), expected)
    # every recording's own focal species is on its checklist in this world (mostly)
    hits = expected[np.arange(rows.size), train.labels[rows]]
    assert hits.mean() > 0.5


def test_random_windows_are_reproducible_and_sharded(datamodule: GeoDataModule) -> None:
    room = datamodule.caches["train"].random_frame_room()
    one = RandomWindowSampler(room, seed=3, per_recording=2)
    two = RandomWindowSampler(room, seed=3, per_recording=2)
    one.set_epoch(4)
    two.set_epoch(4)
    assert list(one) == list(two)
    assert len(list(one)) == 2 * room.size
    assert sorted(r for r, _ in one) == sorted(list(range(room.size)) * 2)
    assert all(0 <= f < room[r] for r, f in one)
    two.set_epoch(5)
    assert list(one) != list(two)
    shards = [RandomWindowSampler(room, seed=3, rank=k, world_size=3) for k in range(3)]
    for shard in shards:
        shard.set_epoch(4)
    lengths = {len(list(s)) for s in shards}
    assert lengths == {math.ceil(room.size / 3)}  # equal steps on every process
    covered = {r for s in shards for r, _ in s}
    assert covered == set(range(room.size))


def test_dense_windows_are_split_without_overlap(datamodule: GeoDataModule) -> None:
    cache = datamodule.caches["val"]
    whole = list(DenseWindowSampler(cache))
    assert len(whole) == sum(cache.dense_frames(r).size for r in range(len(cache)))
    parts = [list(DenseWindowSampler(cache, rank=k, world_size=2)) for k in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(whole)
    assert not set(parts[0]) & set(parts[1])
