"""Encoder registry, heads, the AudioGeolocator and its safetensors save/load."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file

from geoforensics.core.audio import get_frontend_config
from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models import (
    AudioGeolocator,
    EncoderConfig,
    MLPHead,
    ModelConfig,
    create_encoder,
    denormalize_latlon,
    frontend_for,
    get_encoder_config,
    list_encoders,
    load_model,
    normalize_latlon,
    register_encoder,
    save_model,
)
from geoforensics.core.models.encoders.spectrogram import TinyConvEncoder


def test_registry_lists_the_encoders_with_their_sizes() -> None:
    assert {"mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v3_small_128", "test_tiny"} <= (
        set(list_encoders())
    )
    expected = {
        "mobilenet_v3_large": (1280, 224),
        "mobilenet_v3_small": (1024, 224),
        "mobilenet_v3_small_128": (1024, 128),
        "test_tiny": (64, 64),
    }
    for name, (dim, size) in expected.items():
        config = get_encoder_config(name)
        assert (config.feature_dim, config.image_size, config.in_channels) == (dim, size, 3)
        encoder = create_encoder(name).eval()
        assert encoder.config == config
        with torch.no_grad():
            out = encoder(torch.rand(2, 3, size, size))
        assert out.shape == (2, dim)
        assert torch.isfinite(out).all()


def _tiny_factory(config: EncoderConfig) -> torch.nn.Module:
    return TinyConvEncoder(config.in_channels, feature_dim=config.feature_dim)


def test_unknown_and_duplicate_encoders_are_refused() -> None:
    with pytest.raises(InputError, match="unknown encoder 'nope'"):
        get_encoder_config("nope")
    with pytest.raises(InputError, match="already registered"):
        register_encoder("test_tiny", EncoderConfig("test_tiny", 64, 64))(_tiny_factory)


def test_frontend_for_sets_the_encoder_image_size() -> None:
    tiny = frontend_for("test_tiny")
    assert tiny.input_shape == (3, 64, 64)
    paper = get_frontend_config("paper")
    assert dataclasses.replace(tiny, image_height=224, image_width=224) == paper
    assert frontend_for(get_encoder_config("mobilenet_v3_small_128")).input_shape == (3, 128, 128)
    assert frontend_for("mobilenet_v3_large") == paper


def _torchvision_large() -> torch.nn.Module:
    torch.manual_seed(1)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    for module in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_mobilenet_loads_a_torchvision_state_dict(tmp_path: Path, suffix: str) -> None:
    reference = _torchvision_large()
    path = tmp_path / f"inat_pretrained{suffix}"
    state = reference.state_dict()  # includes classifier.3 (1000 classes): ignored
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    encoder = create_encoder("mobilenet_v3_large", weights=path).eval()
    reference.classifier[3] = torch.nn.Identity()
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(encoder(images), reference(images), rtol=0, atol=0)


def test_weights_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.pth"
    with pytest.raises(WeightsNotFoundError, match=r"absent\.pth"):
        create_encoder("test_tiny", weights=missing)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match=r"garbage\.pth") as info:
        create_encoder("test_tiny", weights=garbage)
    assert "\n" not in str(info.value)
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(InputError, match=r"wrong\.pth: does not fit the model") as info:
        create_encoder("test_tiny", weights=wrong)
    assert "\n" not in str(info.value)
    # an arbitrary pickled object is refused (weights_only=True), not executed
    pickled = tmp_path / "pickled.pth"
    torch.save({"weights": torch.zeros(1), "obj": Path("x")}, pickled)
    with pytest.raises(InputError, match=r"pickled\.pth"):
        create_encoder("test_tiny", weights=pickled)


def test_encoder_weights_accept_wrapped_and_prefixed_files(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = create_encoder("test_tiny")
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = create_encoder("test_tiny", weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


@pytest.mark.learning
def test_tiny_encoder_learns_to_tell_tones_apart() -> None:
    """Spectrogram-like images with a bright band low or high: a real (short) training run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: steadier than two threads on busy cores
    try:
        _train_tones()
    finally:
        torch.set_num_threads(threads)


def _train_tones() -> None:
    gen = torch.Generator().manual_seed(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, 2, (n,), generator=gen)
        images = torch.rand(n, 3, 64, 64, generator=gen) * 0.5
        rows = torch.randint(4, 28, (n,), generator=gen) + 32 * labels
        for i in range(n):
            images[i, :, rows[i] : rows[i] + 3] += 0.5
        return images, labels

    torch.manual_seed(0)
    encoder = create_encoder("test_tiny")
    head = MLPHead(64, 2, hidden=32)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=3e-3)
    for _ in range(60):
        images, labels = batch(32)
        loss = torch.nn.functional.cross_entropy(head(encoder(images)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    encoder.eval()
    images, labels = batch(256)
    with torch.no_grad():
        accuracy = (head(encoder(images)).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.9, accuracy


def test_mlp_head_layout() -> None:
    head = MLPHead(10, 7)
    assert [name for name, _ in head.named_parameters()] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    ]
    assert head[0].weight.shape == (128, 10) and head[2].weight.shape == (7, 128)
    assert isinstance(head[1], torch.nn.ReLU)
    assert [n for n, _ in MLPHead(10, 7, hidden=0).named_parameters()] == ["0.weight", "0.bias"]
    with pytest.raises(InputError):
        MLPHead(0, 3)


def test_agclip_outputs_split_the_head_checklist_first() -> None:
    torch.manual_seed(0)
    model = AudioGeolocator(ModelConfig("agclip", "test_tiny", n_species=30)).eval()
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        out = model(images)
        raw = model.head(model.features(images))
    assert out["species_logits"].shape == (3, 30) and out["embedding"].shape == (3, 512)
    torch.testing.assert_close(torch.cat([out["species_logits"], out["embedding"]], 1), raw)
    assert model.features(images).shape == (3, 64)


@pytest.mark.parametrize(("res", "cells"), [(0, 122), (1, 842), (2, 5882)])
def test_classification_covers_every_h3_cell(res: int, cells: int) -> None:
    model = AudioGeolocator(ModelConfig("classification", "test_tiny", h3_resolution=res))
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64))["logits"].shape == (2, cells)


def test_regression_outputs_stay_in_valid_ranges() -> None:
    torch.manual_seed(0)
    model = AudioGeolocator(ModelConfig("regression", "test_tiny")).eval()
    with torch.no_grad():
        model.head[2].weight.normal_(0.0, 3.0)  # push raw outputs far out of range
        out = model(torch.rand(64, 3, 64, 64) * 4 - 2)
    norm, latlon = out["latlon_norm"], out["latlon"]
    assert norm.abs().max() > 1.5  # the raw output is kept for the loss
    assert ((norm[:, 0].abs() > 1) & (latlon[:, 0].abs() == 90)).any()
    assert (latlon[:, 0].abs() <= 90).all() and (latlon[:, 1] >= -180).all()
    assert (latlon[:, 1] < 180).all()
    # inside the valid range the mapping is exact and inverts normalize_latlon
    coords = torch.tensor([[45.0, -120.0], [-89.0, 179.5], [0.0, 0.0]])
    torch.testing.assert_close(denormalize_latlon(normalize_latlon(coords)), coords)
    wrapped = denormalize_latlon(torch.tensor([[0.5, 1.25]]))
    torch.testing.assert_close(wrapped, torch.tensor([[45.0, -135.0]]))


def test_model_config_validation() -> None:
    with pytest.raises(InputError, match="model kind"):
        ModelConfig("clustering", "test_tiny")
    with pytest.raises(InputError, match="unknown encoder"):
        ModelConfig("agclip", "resnet9000")
    with pytest.raises(InputError, match="H3 resolution 3"):
        ModelConfig("classification", "test_tiny", h3_resolution=3)
    with pytest.raises(InputError, match="unknown keys"):
        ModelConfig.from_dict({"kind": "agclip", "encoder": "test_tiny", "colour": "red"})
    config = ModelConfig("agclip", "test_tiny", n_species=4, extra={"lr": 0.01})
    assert config.frontend == frontend_for("test_tiny").to_dict()
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    reference = ModelConfig(
        "agclip", "mobilenet_v3_large", frontend=get_frontend_config("reference").to_dict()
    )
    assert reference.frontend_config == get_frontend_config("reference")


@pytest.mark.parametrize("kind", ["agclip", "regression", "classification"])
def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(0)
    model = AudioGeolocator(ModelConfig(kind, "test_tiny", n_species=5, extra={"epoch": 3}))
    model.train()
    model(torch.rand(8, 3, 64, 64))  # update BatchNorm running statistics
    model.eval()
    weights = save_model(model, tmp_path / "run")
    assert weights == tmp_path / "run" / "model.safetensors"
    assert json.loads((tmp_path / "run" / "model.json").read_text())["config"]["kind"] == kind
    loaded = load_model(tmp_path / "run")
    assert loaded.config == model.config and not loaded.training
    images = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        expected, got = model(images), loaded(images)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key])
    # a .safetensors or .json file name works too; files are not left half-written
    save_model(model, tmp_path / "named.safetensors")
    assert load_model(tmp_path / "named.json").config == model.config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["named.json", "named.safetensors", "run"]


def test_load_model_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match=r"model\.safetensors"):
        load_model(tmp_path / "nothing")
    model = AudioGeolocator(ModelConfig("regression", "test_tiny"))
    save_model(model, tmp_path / "m")
    # the config also travels inside the safetensors metadata
    (tmp_path / "m" / "model.json").unlink()
    assert load_model(tmp_path / "m").config == model.config
    (tmp_path / "m" / "model.json").write_text("{broken")
    with pytest.raises(InputError, match=r"model\.json: invalid JSON"):
        load_model(tmp_path / "m")
    other = AudioGeolocator(ModelConfig("agclip", "test_tiny", n_species=3))
    (tmp_path / "m" / "model.json").write_text(
        json.dumps({"format": "geoforensics-audio-geolocator", "config": other.config.to_dict()})
    )
    with pytest.raises(InputError, match=r"model\.safetensors: does not fit the model") as info:
        load_model(tmp_path / "m")
    assert "\n" not in str(info.value)


def test_paper_model_is_mobilenet_large_with_agclip_head() -> None:
    model = AudioGeolocator(ModelConfig("agclip", "mobilenet_v3_large", n_species=10)).eval()
    assert model.head[0].in_features == 1280 and model.head[2].out_features == 522
    assert model.frontend_config == get_frontend_config("paper")
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224))
    assert out["embedding"].shape == (1, 512)
    assert np.isfinite(out["species_logits"].numpy()).all()


def test_cpu_preset_encoder_uses_faster_batchnorm_statistics() -> None:
    """Short CPU runs need BatchNorm running stats that settle in hundreds of steps."""
    from torch import nn

    from geoforensics.core.models import create_encoder

    def momenta(name: str) -> set[float | None]:
        encoder = create_encoder(name)
        return {m.momentum for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)}

    assert momenta("mobilenet_v3_small_128") == {0.1}
    assert momenta("mobilenet_v3_small") == {0.01}  # torchvision's, as the paper trained
