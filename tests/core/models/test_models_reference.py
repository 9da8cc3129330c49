"""Released AG-CLIP checkpoints (torchvision state dicts) load into AudioGeolocator exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision

from geoforensics.core.audio import get_frontend_config
from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models import load_model, save_model
from geoforensics.core.models.reference import load_reference_checkpoint

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


# ---------------------------------------------------------------------------- import


def test_reference_model_records_provenance_and_species_names(
    released: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    from geoforensics.core.fileio import sha256_file
    from geoforensics.core.models.provenance import PAPER_RELEASE_DATASET, model_training_data
    from geoforensics.core.models.reference import reference_model
    from geoforensics.core.models.resolve import import_reference_checkpoint

    reference, path = released
    # categories in any order: names follow the category ids (the class-index order)
    categories = [{"id": 100 - i, "name": f"Species {100 - i}"} for i in range(N_SPECIES)]
    names_file = tmp_path / "categories.json"
    names_file.write_text(json.dumps(categories))
    model = reference_model(path, species=names_file)
    extra = model.config.extra
    assert extra["species_names"] == [f"Species {64 + i}" for i in range(N_SPECIES)]
    assert extra["checkpoint_sha256"] == sha256_file(path)
    assert extra["training_data"] == {
        "dataset": PAPER_RELEASE_DATASET,
        "synthetic": False,
        "n_species": N_SPECIES,
    }
    out = import_reference_checkpoint(path, tmp_path / "model", species=names_file)
    loaded = load_model(out)
    assert loaded.config == model.config
    assert model_training_data(out).knows_real_sound
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = reference(images)
        torch.testing.assert_close(loaded(images)["embedding"], expected[:, N_SPECIES:])


def test_species_file_forms_and_mismatches(tmp_path: Path) -> None:
    from geoforensics.core.models.reference import read_species_names

    split = {
        "info": {},
        "audio": [],
        "licenses": [],
        "categories": [{"id": i, "name": f"S{i}"} for i in range(5)],
        "annotations": [{"id": 1, "audio_id": 1, "category_id": c} for c in (4, 1, 1, 2)],
    }
    path = tmp_path / "train.json"
    path.write_text(json.dumps(split))
    assert read_species_names(path) == ["S0", "S1", "S2", "S3", "S4"]
    assert read_species_names(path, 5) == ["S0", "S1", "S2", "S3", "S4"]
    # a checkpoint that knows only the species annotated in its training split
    assert read_species_names(path, 3) == ["S1", "S2", "S4"]
    cases = {
        "train.json": (4, "5 categories, but the checkpoint has 4 species logits"),
        "bad.json": (None, "invalid JSON"),
        "dict.json": (None, "expected a JSON list of {id, name} categories"),
        "noname.json": (None, "category entry 0 (id 1) has no 'name'"),
        "absent.json": (None, "species categories file not found"),
    }
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "dict.json").write_text('{"species": []}')
    (tmp_path / "noname.json").write_text('[{"id": 1}]')
    for name, (count, expected) in cases.items():
        with pytest.raises(InputError) as error:
            read_species_names(tmp_path / name, count)
        message = str(error.value)
        assert name in message and expected in message and "\n" not in message, message


def test_import_is_atomic_and_refuses_to_overwrite(
    released: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    from geoforensics.core.models.resolve import import_reference_checkpoint

    _, path = released
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"id": 1, "name": "Only one"}]))
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"wrong\.json: 1 categories"):
        import_reference_checkpoint(path, out, species=wrong)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wrong.json"]  # no temp, no out
    import_reference_checkpoint(path, out)
    with pytest.raises(InputError, match=r"out: folder is not empty \(use --force"):
        import_reference_checkpoint(path, out)
    (out / "stale.txt").write_text("old")
    import_reference_checkpoint(path, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "wrong.json"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"file: exists and is not a folder"):
        import_reference_checkpoint(path, tmp_path / "file")
