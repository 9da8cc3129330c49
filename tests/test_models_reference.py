"""Released AG-CLIP checkpoints (torchvision state dicts) load into AudioGeolocator exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from geoforensics.core.audio import get_frontend_config
from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models import load_model, save_model
from geoforensics.core.models.reference import load_reference_checkpoint

torch.set_num_threads(2)

N_SPECIES = 37


def _released_layout(width: int, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised model of the released layout: mobilenet_v3_large whose
    classifier.3 is Sequential(Linear(1280, 128), ReLU, Linear(128, width))."""
    torch.manual_seed(seed)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    model.classifier[3] = torch.nn.Sequential(
        torch.nn.Linear(1280, 128), torch.nn.ReLU(), torch.nn.Linear(128, width)
    )
    for module in model.modules():  # BatchNorm statistics as after training, not 0/1
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    model = _released_layout(N_SPECIES + 512)
    path = tmp_path_factory.mktemp("reference") / "agclip_released.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_agclip_checkpoint_outputs_equal_torchvision(
    released: tuple[torch.nn.Module, Path],
) -> None:
    reference, path = released
    model = load_reference_checkpoint(path)
    assert model.config.kind == "agclip" and model.config.n_species == N_SPECIES
    assert model.config.encoder == "mobilenet_v3_large" and not model.training
    assert model.frontend_config == get_frontend_config("reference")
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference(images)
        out = model(images)
    torch.testing.assert_close(out["species_logits"], expected[:, :N_SPECIES], rtol=0, atol=0)
    torch.testing.assert_close(out["embedding"], expected[:, N_SPECIES:], rtol=0, atol=0)


def test_wrapped_and_prefixed_checkpoints(
    released: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    reference, _ = released
    wrapped = tmp_path / "wrapped.ckpt"
    state = {f"module.{k}": v for k, v in reference.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 12}, wrapped)
    model = load_reference_checkpoint(wrapped, n_species=N_SPECIES)
    prefixed = tmp_path / "prefixed.pth"
    torch.save({f"model.{k}": v for k, v in reference.state_dict().items()}, prefixed)
    again = load_reference_checkpoint(prefixed)
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = reference(images)
        for loaded in (model, again):
            out = loaded(images)
            torch.testing.assert_close(
                torch.cat([out["species_logits"], out["embedding"]], 1), expected
            )
    # and it survives our own save/load (safetensors) unchanged
    save_model(model, tmp_path / "ours")
    ours = load_model(tmp_path / "ours")
    assert ours.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(ours(images)["embedding"], expected[:, N_SPECIES:])


def test_other_kinds_infer_their_layout(tmp_path: Path) -> None:
    path = tmp_path / "cls.pt"
    reference = _released_layout(842, seed=1)
    torch.save(reference.state_dict(), path)
    model = load_reference_checkpoint(path, kind="classification")
    assert model.config.h3_resolution == 1
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(images)["logits"], reference(images))
    with pytest.raises(InputError, match=r"cls\.pt: a regression checkpoint outputs 2"):
        load_reference_checkpoint(path, kind="regression")


def test_malformed_checkpoints_give_one_line_errors(
    released: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    reference, path = released
    with pytest.raises(InputError, match=r"agclip_released\.pt: AG-CLIP output width 549"):
        load_reference_checkpoint(path, n_species=40)
    with pytest.raises(WeightsNotFoundError, match=r"missing\.pt"):
        load_reference_checkpoint(tmp_path / "missing.pt")
    plain = tmp_path / "imagenet_layout.pt"
    torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), plain)
    with pytest.raises(InputError, match=r"imagenet_layout\.pt: not a reference checkpoint"):
        load_reference_checkpoint(plain)
    other_arch = tmp_path / "small.pt"
    small = torchvision.models.mobilenet_v3_small(weights=None)
    small.classifier[3] = torch.nn.Sequential(
        torch.nn.Linear(1024, 128), torch.nn.ReLU(), torch.nn.Linear(128, 512)
    )
    torch.save(small.state_dict(), other_arch)
    with pytest.raises(InputError, match=r"small\.pt: does not fit the model"):
        load_reference_checkpoint(other_arch)
    broken = tmp_path / "broken.pt"
    state = reference.state_dict()
    del state["features.3.block.0.0.weight"]
    torch.save(state, broken)
    with pytest.raises(InputError, match=r"broken\.pt: does not fit the model: 1 missing"):
        load_reference_checkpoint(broken)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:5000])
    for bad in (broken, truncated):
        with pytest.raises(InputError) as info:
            load_reference_checkpoint(bad)
        assert bad.name in str(info.value) and "\n" not in str(info.value)
