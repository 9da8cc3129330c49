"""`geoforensics weights status|download`: the table, --json, and a download without network."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from geoforensics.core import cli
from geoforensics.core.geoclip import IMAGE_MLP_WEIGHTS, LOCATION_ENCODER_WEIGHTS, geoclip_file
from geoforensics.core.species.birdnet_files import birdnet_available
from geoforensics.core.vision import CLIP_HUB_ID, find_clip_weights

NAMES = ["CLIP ViT-L/14", "GeoCLIP location encoder", "GeoCLIP image MLP + logit scale"]

#: Files of the hub repository (the real one also has .bin, .h5 and .msgpack copies).
REPO_FILES = {
    "config.json": "{}",
    "preprocessor_config.json": "{}",
    "tokenizer.json": "{}",
    "tokenizer_config.json": "{}",
    "special_tokens_map.json": "{}",
    "vocab.json": "{}",
    "merges.txt": "#version: 0.2\n",
    "model.safetensors": "safetensors bytes",
    "pytorch_model.bin": "pickle bytes",
    "tf_model.h5": "h5 bytes",
    "flax_model.msgpack": "msgpack bytes",
}


@pytest.fixture
def no_clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $GEOFORENSICS_CLIP and an empty Hugging Face cache; returns the cache folder."""
    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.delenv("GEOFORENSICS_CLIP", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def _fake_hub(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, str], calls: list[dict[str, Any]]
) -> None:
    """Replace snapshot_download by a local fake that honours allow/ignore patterns."""
    import huggingface_hub

    def snapshot_download(repo_id: str, **kwargs: Any) -> str:
        calls.append({"repo_id": repo_id, **kwargs})
        allow = kwargs.get("allow_patterns") or ["*"]
        ignore = kwargs.get("ignore_patterns") or []
        if kwargs.get("local_dir"):
            folder = Path(kwargs["local_dir"])
        else:
            repo = Path(kwargs["cache_dir"]) / ("models--" + repo_id.replace("/", "--"))
            folder = repo / "snapshots" / ("f" * 40)
            (repo / "refs").mkdir(parents=True, exist_ok=True)
            (repo / "refs" / "main").write_text("f" * 40)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            wanted = any(fnmatch.fnmatch(name, p) for p in allow)
            if wanted and not any(fnmatch.fnmatch(name, p) for p in ignore):
                (folder / name).write_text(text)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def _status_json(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    assert cli.main(["weights", "status", "--json", *extra]) == 0
    rows = json.loads(capsys.readouterr().out)["weights"]
    assert isinstance(rows, list)
    return rows


def test_status_table_with_clip_missing(no_clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["weights", "status"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["weights", "status", "location", "/", "how", "to", "get"]
    clip_line = next(line for line in lines if line.startswith("CLIP ViT-L/14"))
    assert "MISSING" in clip_line
    assert "geoforensics weights download clip" in out
    assert str(no_clip) in out
    encoder_line = next(line for line in lines if line.startswith("GeoCLIP location encoder"))
    assert "found" in encoder_line
    assert str(geoclip_file(LOCATION_ENCODER_WEIGHTS)) in encoder_line
    assert any(line.startswith("BirdNET V2.4") for line in lines)
    assert "the rest of geoforensics works without them" in lines[-1]


def test_status_json(no_clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _status_json(capsys)
    assert [row["name"] for row in rows] == [*NAMES, "BirdNET V2.4"]
    assert all(set(row) == {"name", "found", "location", "detail"} for row in rows)
    clip, location, mlp, birdnet = rows
    assert clip["found"] is False and clip["location"] is None
    assert "geoforensics weights download clip" in clip["detail"]
    assert location["found"] is True and Path(location["location"]).is_file()
    assert mlp["found"] is True and mlp["location"] == str(geoclip_file(IMAGE_MLP_WEIGHTS))
    assert birdnet["found"] is birdnet_available()
    if not birdnet["found"]:
        assert "geoforensics[birdnet]" in birdnet["detail"]


def test_status_with_a_clip_folder(
    no_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json"):
        (folder / name).write_text("{}")
    clip = _status_json(capsys, "--clip", str(folder))[0]
    assert clip["found"] is True
    assert clip["location"] == str(folder.resolve())
    assert CLIP_HUB_ID in clip["detail"]
    (folder / "tokenizer.json").unlink()
    clip = _status_json(capsys, "--clip", str(folder))[0]
    assert clip["found"] is False
    assert "tokenizer.json" in clip["detail"]


def test_weights_without_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["weights"]) == 2
    out = capsys.readouterr().out
    assert "status" in out and "download" in out


def test_download_to_folder_takes_safetensors_never_pickles(
    no_clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[dict[str, Any]] = []
    _fake_hub(monkeypatch, REPO_FILES, calls)
    target = tmp_path / "clip-vit-l14"
    assert cli.main(["weights", "download", "clip", "--to", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"--clip {target.resolve()}" in out
    assert calls[0]["repo_id"] == CLIP_HUB_ID
    assert calls[0]["local_dir"] == str(target)
    assert "*.bin" not in calls[0]["allow_patterns"]
    assert "*.bin" in calls[0]["ignore_patterns"]
    written = sorted(p.name for p in target.iterdir())
    assert "model.safetensors" in written and "tokenizer.json" in written
    assert not {"pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"} & set(written)
    assert find_clip_weights(target) == target.resolve()


def test_download_to_cache_is_then_found(
    no_clip: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []
    _fake_hub(monkeypatch, REPO_FILES, calls)
    assert cli.main(["weights", "download", "clip"]) == 0
    assert calls[0]["cache_dir"] == str(no_clip)
    assert "found automatically" in capsys.readouterr().out
    clip = _status_json(capsys)[0]
    assert clip["found"] is True
    assert clip["location"].startswith(str(no_clip.resolve()))
    assert "Hugging Face cache" in clip["detail"]


def test_download_of_a_pickle_only_repo_is_refused(
    no_clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pickle_only = {k: v for k, v in REPO_FILES.items() if k != "model.safetensors"}
    _fake_hub(monkeypatch, pickle_only, [])
    target = tmp_path / "clip"
    assert cli.main(["weights", "download", "clip", "--to", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("geoforensics: error: ")
    assert "\n" not in err
    assert "*.safetensors" in err
    assert not (target / "pytorch_model.bin").exists()


def test_download_failure_is_one_line(
    no_clip: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub

    def offline(*args: Any, **kwargs: Any) -> str:
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert cli.main(["weights", "download", "clip"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("geoforensics: error: downloading openai/clip-vit-large-patch14 failed")
    assert "network is unreachable" in err and "--clip FOLDER" in err


# ---------------------------------------------------------------------------- import agclip


@pytest.fixture(scope="module")
def release_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random checkpoint of the released AG-CLIP layout with 7 species (the real one has
    5,547): a torchvision mobilenet_v3_large state dict, classifier.3 = Linear -> ReLU ->
    Linear(128, 7 + 512)."""
    import torch
    import torchvision

    torch.manual_seed(3)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    model.classifier[3] = torch.nn.Sequential(
        torch.nn.Linear(1280, 128), torch.nn.ReLU(), torch.nn.Linear(128, 7 + 512)
    )
    path = tmp_path_factory.mktemp("release") / "agclip_inat.pt"
    torch.save(model.state_dict(), path)
    return path


def test_import_agclip_writes_a_model_folder(
    release_pt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoforensics.core.models.provenance import model_training_data

    categories = tmp_path / "categories.json"
    categories.write_text(json.dumps([{"id": i, "name": f"Genus species{i}"} for i in range(7)]))
    out = tmp_path / "agclip-inat"
    argv = ["weights", "import", "agclip", str(release_pt), "--out", str(out)]
    assert cli.main([*argv, "--species", str(categories)]) == 0
    printed = capsys.readouterr().out
    assert f"imported {release_pt} -> {out}" in printed
    assert "mobilenet_v3_large, 'reference' front-end, 7 species" in printed
    assert "species names: from categories.json" in printed
    assert "trained on: iNatSounds 2024 (paper release) (real, 7 species)" in printed
    assert f"--model {out}" in printed
    document = json.loads((out / "model.json").read_text())
    assert document["config"]["extra"]["training_data"] == {
        "dataset": "iNatSounds 2024 (paper release)",
        "synthetic": False,
        "n_species": 7,
    }
    assert document["config"]["extra"]["species_names"][0] == "Genus species0"
    assert model_training_data(out).knows_real_sound
    # an existing folder is kept unless --force
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"geoforensics: error: {out}: folder is not empty (use --force to replace it)"
    assert cli.main([*argv, "--force"]) == 0
    assert "species names: not stored" in capsys.readouterr().out
    assert "species_names" not in json.loads((out / "model.json").read_text())["config"]["extra"]


def test_import_agclip_refuses_bad_files_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    import torchvision

    sentinel = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str, str]]:
            return (open, (str(sentinel), "w"))

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "note": Payload()}, evil)
    plain = tmp_path / "imagenet_layout.pt"
    torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), plain)
    expected = {
        evil: "pickled object (io.open) that could run code",
        plain: "not a reference checkpoint",
        tmp_path / "absent.pt": "weights file not found",
    }
    for path, reason in expected.items():
        out = tmp_path / f"out-{path.stem}"
        assert cli.main(["weights", "import", "agclip", str(path), "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"geoforensics: error: {path}: ") and "\n" not in err, err
        assert reason in err, err
        assert not out.exists()
    assert not sentinel.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders


def test_status_lists_the_demo_model_as_synthetic(
    no_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["weights", "status"]) == 0
    out = capsys.readouterr().out
    assert "audio models" in out and "demo_agclip  [agclip, shipped]" in out
    assert "trained on: SYNTHETIC world 'tiny' (seed 0) (SYNTHETIC, 30 species)" in out
    assert "trained on a SYNTHETIC world: not evidence for real recordings" in out
    assert cli.main(["weights", "status", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)["audio_models"]
    demo = next(m for m in models if m["path"].endswith("demo_agclip"))
    assert demo["source"] == "shipped" and demo["kind"] == "agclip"
    assert demo["training_data"] == {
        "dataset": "SYNTHETIC world 'tiny' (seed 0)",
        "synthetic": True,
        "n_species": 30,
    }


@pytest.mark.skipif(not birdnet_available(), reason="the optional birdnet extra is not installed")
def test_prepare_birdnet_caches_every_week_once(capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.species.range_evidence import (
        _read_totals,
        _totals_files,
        birdnet_mlp,
        range_evidence,
    )
    from geoforensics.core.species.ranges import BirdNETRangeModel

    assert cli.main(["weights", "prepare", "birdnet", "--gallery", "land-10deg", "--quiet"]) == 0
    first = capsys.readouterr().out
    assert "range totals of 49 week(s) computed, 0 already cached" in first
    model, coords = BirdNETRangeModel(), resolve_gallery("land-10deg").coords
    for week in (-1, 1, 23, 48):
        npy, side, info = _totals_files(model, coords, week)
        totals = _read_totals(npy, side, info, len(coords))
        assert totals is not None and np.all(totals > 0)
        # what the cache holds is what the evidence of that week computes afresh
        fresh = range_evidence(model, coords, week, np.array([0]), cache=False).totals
        np.testing.assert_allclose(totals, fresh, rtol=1e-6)
    assert birdnet_mlp(model) is not None
    assert cli.main(["weights", "prepare", "birdnet", "--gallery", "land-10deg", "--quiet"]) == 0
    assert "0 week(s) computed, 49 already cached" in capsys.readouterr().out
