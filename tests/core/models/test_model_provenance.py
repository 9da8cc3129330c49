"""What a saved audio model was trained on (model.json's training_data), and released AG-CLIP
checkpoints (.pt) used wherever a model is taken: imported once into the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import torchvision

from geoforensics.core import cli
from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models import load_model
from geoforensics.core.models.geolocator import MODEL_FORMAT
from geoforensics.core.models.provenance import (
    PAPER_RELEASE_DATASET,
    SYNTHETIC_LABEL,
    TrainingData,
    dataset_training_data,
    model_training_data,
)
from geoforensics.core.models.reference import load_reference_checkpoint
from geoforensics.core.models.resolve import (
    find_audio_models,
    imported_models_dir,
    resolve_audio_model,
)
from geoforensics.core.paths import assets_dir

N_SPECIES = 7  # the real release has 5,547; a small head keeps the files small and fast
DEMO = assets_dir() / "models" / "demo_agclip"


def _release_checkpoint(path: Path, seed: int = 0) -> Path:
    """A random torchvision mobilenet_v3_large state dict of the released AG-CLIP layout."""
    torch.manual_seed(seed)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    model.classifier[3] = torch.nn.Sequential(
        torch.nn.Linear(1280, 128), torch.nn.ReLU(), torch.nn.Linear(128, N_SPECIES + 512)
    )
    for module in model.modules():  # trained-looking BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _release_checkpoint(tmp_path_factory.mktemp("release") / "agclip_release.pt")


@pytest.fixture(scope="module")
def imported(release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "inat-agclip"
    assert cli.main(["weights", "import", "agclip", str(release), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def short_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 4 s of the shipped demo soundscape (mobilenet_v3_large is slow on 2 cores)."""
    samples, rate = sf.read(assets_dir() / "demo" / "demo_soundscape.ogg", dtype="float32")
    path = tmp_path_factory.mktemp("audio") / "short.wav"
    sf.write(path, samples[: 4 * rate], rate)
    return path


@pytest.fixture(scope="module")
def gallery_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    coords = np.c_[rng.uniform(-55, 70, 60), rng.uniform(-180, 180, 60)]
    path = tmp_path_factory.mktemp("gallery") / "places.npy"
    np.save(path, coords)
    return path


# ---------------------------------------------------------------------------- the record


def test_the_shipped_demo_model_reads_as_synthetic() -> None:
    record = model_training_data(DEMO)
    assert record == TrainingData("SYNTHETIC world 'tiny' (seed 0)", True, 30)
    assert record.label() == SYNTHETIC_LABEL and not record.knows_real_sound
    assert "SYNTHETIC" in record.describe() and "30 species" in record.describe()
    # model.json is the weights' own config plus the record: the weights were not touched
    from safetensors import safe_open

    with safe_open(str(DEMO / "model.safetensors"), framework="pt") as handle:
        embedded = json.loads(handle.metadata()["geoforensics_model"])
    shipped = json.loads((DEMO / "model.json").read_text())
    assert shipped["format"] == MODEL_FORMAT
    shipped["config"]["extra"].pop("training_data")
    assert shipped == embedded
    assert load_model(DEMO).config.extra["training_data"]["synthetic"] is True


def test_dataset_record_says_synthetic_for_a_world_and_names_other_data(
    train_micro_world: Path, tmp_path: Path
) -> None:
    world = dataset_training_data(train_micro_world, 12)
    assert world == TrainingData("SYNTHETIC world 'micro' (seed 0)", True, 12)
    # a world's XCDC folder is part of the world
    assert dataset_training_data(train_micro_world / "xcdc").synthetic is True
    real = tmp_path / "inat2024"
    real.mkdir()
    assert dataset_training_data(real, 5569) == TrainingData(
        "iNatSounds-format data 'inat2024'", False, 5569
    )
    # an unreadable world marker never turns a world into real data
    broken = tmp_path / "broken-world"
    (broken / "world").mkdir(parents=True)
    (broken / "world" / "world.json").write_text("{not json")
    assert dataset_training_data(broken).synthetic is True


def test_train_writes_the_training_data_record(train_micro_world: Path, tmp_path: Path) -> None:
    from geoforensics.train.config import load_config
    from geoforensics.train.runner import train

    config_path = tmp_path / "run.yaml"
    config_path.write_text(
        "method: agclip\n"
        f"data:\n  root: {train_micro_world}\n"
        "model:\n  encoder: test_tiny\n"
        "optim:\n  batch_size: 16\n  max_epochs: 1\n  warmup_epochs: 1\n"
        "train:\n  patience: 5\n  windows_per_recording: 1\n"
        "eval:\n  gallery: [train]\n  test: false\n"
        f"out: {tmp_path / 'run'}\n",
        encoding="utf-8",
    )
    summary = train(load_config(config_path), progress=False)
    assert summary is not None
    model_dir = tmp_path / "run" / "model"
    record = model_training_data(model_dir)
    n_species = len(load_model(model_dir).config.extra["species_names"])
    assert record == TrainingData("SYNTHETIC world 'micro' (seed 0)", True, n_species)
    assert record.label() == SYNTHETIC_LABEL
    assert summary["training_data"] == record.as_dict()
    document = json.loads((model_dir / "model.json").read_text())
    assert document["config"]["extra"]["training_data"]["synthetic"] is True


def test_pooling_writer_records_the_data_and_the_base_model(
    train_micro_world: Path, tmp_path: Path
) -> None:
    from geoforensics.core.models.transformer_pooling import TransformerPooling
    from geoforensics.train.pooling import load_pooling_info, save_transformer_pooling

    pooler = TransformerPooling(8, 8, seq_len=4, layers=1, heads=2, width=8, ff_dim=8)
    info = {"data": str(train_micro_world), "model_dir": str(DEMO), "epochs": 1}
    path = save_transformer_pooling(pooler, tmp_path / "pooler.safetensors", info)
    saved = load_pooling_info(path)
    assert saved["training_data"]["synthetic"] is True
    assert saved["training_data"]["dataset"] == "SYNTHETIC world 'micro' (seed 0)"
    assert saved["model_training_data"] == model_training_data(DEMO).as_dict()
    assert "training_data" not in info  # the caller's dict is left alone


# ---------------------------------------------------------------------------- released .pt


def test_imported_release_loads_and_equals_the_reference_loader(
    release: Path, imported: Path
) -> None:
    assert sorted(p.name for p in imported.iterdir()) == ["model.json", "model.safetensors"]
    record = model_training_data(imported)
    assert record == TrainingData(PAPER_RELEASE_DATASET, False, N_SPECIES)
    assert record.knows_real_sound and record.label() is None
    document = json.loads((imported / "model.json").read_text())
    extra = document["config"]["extra"]
    assert extra["training_data"] == {
        "dataset": "iNatSounds 2024 (paper release)",
        "synthetic": False,
        "n_species": N_SPECIES,
    }
    assert "species_names" not in extra and extra["location_encoder"] == "geoclip"
    from geoforensics.core.fileio import sha256_file

    assert extra["checkpoint_sha256"] == sha256_file(release)
    assert document["config"]["frontend"]["name"] == "reference"
    model = load_model(imported)
    reference = load_reference_checkpoint(release)
    assert model.config.n_species == N_SPECIES and model.config.encoder == "mobilenet_v3_large"
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = model(images), reference(images)
    for key in ("species_logits", "embedding"):
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0)


def test_a_pt_file_resolves_to_one_cached_import(release: Path, tmp_path: Path) -> None:
    folder = resolve_audio_model(release)
    assert folder.parent == imported_models_dir() and folder.name.startswith("agclip-")
    assert model_training_data(folder).synthetic is False
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_audio_model(str(release)) == folder  # same file: no second import
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    # model folders and their files resolve to the folder; other paths pass through
    assert resolve_audio_model(folder / "model.json") == folder
    assert resolve_audio_model(folder / "model.safetensors") == folder
    assert resolve_audio_model(DEMO) == DEMO
    assert resolve_audio_model(tmp_path / "nothing") == tmp_path / "nothing"
    with pytest.raises(WeightsNotFoundError, match=r"missing\.pt: checkpoint not found"):
        resolve_audio_model(tmp_path / "missing.pt")
    # a copy elsewhere has the same content: the same import serves it
    copy = tmp_path / "copy.pth"
    copy.write_bytes(release.read_bytes())
    assert resolve_audio_model(copy) == folder
    # a damaged import is rebuilt (another file, so no in-process shortcut applies)
    (folder / "model.json").write_text("{broken")
    again = tmp_path / "again.pt"
    again.write_bytes(release.read_bytes())
    assert resolve_audio_model(again) == folder
    assert model_training_data(folder).dataset == PAPER_RELEASE_DATASET
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_a_hostile_pt_is_refused_everywhere_without_running_it(tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str, str]]:
            return (open, (str(sentinel), "w"))

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "note": Payload()}, evil)
    before = sorted(p.name for p in imported_models_dir().iterdir())
    with pytest.raises(InputError) as error:
        resolve_audio_model(evil)
    message = str(error.value)
    assert str(evil) in message and "\n" not in message
    assert "weights_only=True" in message and "io.open" in message
    assert not sentinel.exists()
    assert sorted(p.name for p in imported_models_dir().iterdir()) == before


def _places(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(int(row["gallery_index"]), str(row["label"])) for row in rows]


def test_locate_and_check_take_a_pt_and_agree_with_the_imported_folder(
    release: Path,
    imported: Path,
    short_audio: Path,
    gallery_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def locate(model: Path) -> dict[str, Any]:
        argv = [
            "locate", str(short_audio), "--method", "agclip", "--model", str(model),
            "--gallery", f"file:{gallery_file}", "--json",
        ]  # fmt: skip
        assert cli.main(argv) == 0
        return dict(json.loads(capsys.readouterr().out))

    from_pt, from_folder = locate(release), locate(imported)
    assert _places(from_pt["places"]) == _places(from_folder["places"])
    assert [r["point_probability"] for r in from_pt["places"]] == pytest.approx(
        [r["point_probability"] for r in from_folder["places"]], rel=1e-5
    )
    assert Path(from_pt["model"]).parent == imported_models_dir()

    def check(model: Path, out: Path) -> dict[str, Any]:
        argv = [
            "check", str(short_audio), "--model", str(model), "--gallery",
            f"file:{gallery_file}", "--no-species", "--max-frames", "0", "--out", str(out),
            "--quiet",
        ]  # fmt: skip
        assert cli.main(argv) == 0
        capsys.readouterr()
        return dict(json.loads((out / "report.json").read_text()))

    report_pt = check(release, tmp_path / "check-pt")
    report_folder = check(imported, tmp_path / "check-folder")
    audio_pt = report_pt["modalities"]["audio"]
    audio_folder = report_folder["modalities"]["audio"]
    assert audio_pt["available"] and audio_folder["available"]
    assert _places(audio_pt["top"]) == _places(audio_folder["top"])
    assert Path(report_pt["models"]["audio"]["model_dir"]).parent == imported_models_dir()
    assert report_pt["models"]["audio"]["frontend"] == "reference"


def test_status_lists_audio_models_with_their_training_data(
    release: Path,
    imported: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    resolve_audio_model(release)  # one import in the cache
    monkeypatch.setenv("GEOFORENSICS_MODELS", os.pathsep.join([str(imported.parent), "/none"]))
    entries = find_audio_models()
    by_path = {entry.path: entry for entry in entries}
    assert by_path[DEMO].source == "shipped" and by_path[DEMO].training_data is not None
    assert by_path[DEMO].training_data.synthetic is True
    assert by_path[imported].source == "$GEOFORENSICS_MODELS"
    assert any(e.source == "imported (cache)" for e in entries)
    assert cli.main(["weights", "status"]) == 0
    out = capsys.readouterr().out
    assert f"{DEMO}  [agclip, shipped]" in out
    assert "trained on: SYNTHETIC world 'tiny' (seed 0) (SYNTHETIC, 30 species)" in out
    assert SYNTHETIC_LABEL in out
    assert f"trained on: {PAPER_RELEASE_DATASET} (real, 7 species)" in out
    assert cli.main(["weights", "status", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    models = {row["path"]: row for row in document["audio_models"]}
    assert models[str(DEMO)]["training_data"]["synthetic"] is True
    assert models[str(DEMO)]["label"] == SYNTHETIC_LABEL
    assert models[str(imported)]["training_data"]["synthetic"] is False
    assert models[str(imported)]["label"] is None


def test_the_app_and_check_options_take_a_pt(
    release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geoforensics.core.forensics.check_models import CheckOptions
    from geoforensics.forensics_app.settings import default_model_dir

    folder = resolve_audio_model(release)
    monkeypatch.setenv("GEOFORENSICS_APP_MODEL", str(release))
    assert default_model_dir() == folder
    assert CheckOptions(model_dir=release).resolved_model_dir() == folder
