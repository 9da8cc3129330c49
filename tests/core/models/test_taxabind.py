"""TaxaBind off the shelf: CLAP front-end vs transformers, loading tiny random towers written in
the hub's file layout (through the same paths a user's download takes), weights status and
download, the ``taxabind`` bench row and ``locate --method taxabind``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from repo_paths import TESTS
from tiny_towers import write_tiny_taxabind

from geoforensics.core import cli
from geoforensics.core.errors import GeoforensicsError, InputError, WeightsNotFoundError
from geoforensics.core.models.clap import ClapAudioTower, ClapFrontEnd, load_clap_audio_model
from geoforensics.core.models.taxabind import (
    TAXABIND_ENV,
    download_taxabind,
    find_taxabind_weights,
    load_taxabind,
    load_taxabind_location_encoder,
)

DATA = TESTS / "data" / "inatsounds"
SR = 48_000


def _signal(seconds: float, seed: int = 1) -> np.ndarray:
    """A chirp with noise: a fixed, non-trivial test signal at 48 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    wave = 0.3 * np.sin(2 * np.pi * 2500 * t * (1 + 0.1 * t)) + 0.05 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def tiny_taxabind(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_taxabind(tmp_path_factory.mktemp("taxabind") / "weights")


@pytest.fixture
def no_taxabind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $GEOFORENSICS_TAXABIND and an empty Hugging Face cache."""
    monkeypatch.delenv(TAXABIND_ENV, raising=False)
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def with_taxabind(monkeypatch: pytest.MonkeyPatch, tiny_taxabind: Path) -> Iterator[Path]:
    monkeypatch.setenv(TAXABIND_ENV, str(tiny_taxabind))
    yield tiny_taxabind


# ----------------------------------------------------------------------------- front-end


@pytest.mark.parametrize("truncation", ["fusion", "rand_trunc"])
@pytest.mark.parametrize("seconds", [3.3, 10.0, 12.7])
def test_front_end_matches_transformers_feature_extractor(truncation: str, seconds: float) -> None:
    """LAION's preprocessor settings (50-14,000 Hz, hop 480, window 1,024, repeatpad, 10 s),
    short, exact and long signals; long ones with the same seeded crop positions."""
    from transformers import ClapFeatureExtractor

    wave = _signal(seconds)
    extractor = ClapFeatureExtractor(frequency_min=50, frequency_max=14_000, truncation=truncation)
    np.random.seed(7)  # noqa: NPY002 - the extractor draws crop positions from numpy's global generator
    reference = extractor(wave, sampling_rate=SR, return_tensors="np")
    ours, longer = ClapFrontEnd(truncation=truncation).features(wave, seed=7)
    expected = reference["input_features"][0]
    assert ours.shape == expected.shape == ((4 if truncation == "fusion" else 1), 1001, 64)
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0)
    # the extractor flags the only item of a call as longer under fusion; ours reports the truth
    assert longer == (seconds > 10.0)


def test_front_end_padding_modes_and_bad_input() -> None:
    from transformers import ClapFeatureExtractor

    wave = _signal(2.1)
    for padding in ("repeat", "pad"):
        extractor = ClapFeatureExtractor(frequency_min=50, frequency_max=14_000)
        reference = extractor(wave, sampling_rate=SR, padding=padding, return_tensors="np")
        ours, _ = ClapFrontEnd(padding=padding).features(wave)
        np.testing.assert_allclose(ours, reference["input_features"][0], atol=1e-4, rtol=0)
    with pytest.raises(InputError, match="empty"):
        ClapFrontEnd().features(np.zeros(0, dtype=np.float32))
    with pytest.raises(InputError, match="NaN"):
        ClapFrontEnd().features(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(InputError, match="truncation"):
        ClapFrontEnd(truncation="crop")


# ------------------------------------------------------------------------------ loaders


@pytest.mark.parametrize("enable_fusion", [True, False])
def test_audio_tower_equals_the_reference_pipeline(tmp_path: Path, enable_fusion: bool) -> None:
    """Our loader + front-end give the embedding transformers' from_pretrained + the feature
    extractor give (TaxaBind's reference path: one recording per call)."""
    from transformers import ClapAudioModelWithProjection, ClapFeatureExtractor

    folder = write_tiny_taxabind(tmp_path / "w", enable_fusion=enable_fusion) / "ecosound"
    tower = ClapAudioTower(folder)
    assert tower.fusion is enable_fusion and tower.embed_dim == 16
    wave = _signal(4.0)
    ours = tower.embed(wave)
    reference_model = ClapAudioModelWithProjection.from_pretrained(
        folder, local_files_only=True, use_safetensors=True
    ).eval()
    truncation = "fusion" if enable_fusion else "rand_trunc"
    extractor = ClapFeatureExtractor(frequency_min=50, frequency_max=14_000, truncation=truncation)
    inputs = extractor(wave, sampling_rate=SR, return_tensors="pt")
    with torch.inference_mode():
        expected = reference_model(**inputs).audio_embeds
    expected = torch.nn.functional.normalize(expected, dim=1)[0].numpy()
    assert ours.shape == (16,) and abs(float(np.linalg.norm(ours)) - 1) < 1e-5
    np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_location_encoder_is_geoclips_architecture(tmp_path: Path) -> None:
    """GeoCLIP's shipped weights, written in the ecogeo layout, load into our TaxaBind location
    encoder and give GeoCLIP's embeddings: the architecture and parameter names are GeoCLIP's."""
    from safetensors.torch import save_file

    from geoforensics.core.geoclip.location_encoder import default_location_encoder

    geoclip = default_location_encoder()
    folder = tmp_path / "ecogeo"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in geoclip.state_dict().items()},
              str(folder / "model.safetensors"))  # fmt: skip
    config = {"dim": 512, "encoded_size": 256, "input_size": 2, "sigma": [1, 16, 256]}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    encoder = load_taxabind_location_encoder(folder)
    coords = torch.tensor([[20.0, 20.0], [70.0, 160.0], [-70.0, -160.0], [0.0, 0.0]])
    with torch.inference_mode():
        np.testing.assert_allclose(encoder(coords).numpy(), geoclip(coords).numpy(), atol=1e-4)


def test_missing_pickled_and_mismatched_weights_fail_in_one_line(tmp_path: Path) -> None:
    folder = write_tiny_taxabind(tmp_path / "w") / "ecosound"
    weights = folder / "model.safetensors"
    # weights that do not fit the config
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["projection_dim"] = 24
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_clap_audio_model(folder)
    assert str(weights) in str(info.value) and "\n" not in str(info.value)
    assert "shape mismatch" in str(info.value)
    # pickled weights only
    weights.rename(folder / "pytorch_model.bin")
    with pytest.raises(WeightsNotFoundError, match="pickled weights are not loaded"):
        load_clap_audio_model(folder)
    # not a CLAP config
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    shutil.copy(folder / "pytorch_model.bin", weights)
    with pytest.raises(InputError, match="not a CLAP audio model"):
        load_clap_audio_model(folder)


def test_weights_are_found_in_env_folder_and_hf_cache(
    no_taxabind: Path, tiny_taxabind: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        find_taxabind_weights()
    message = str(info.value)
    assert "geoforensics weights download taxabind" in message and "\n" not in message
    assert "MVRL/ecosound" in message and "MVRL/ecogeo" in message
    # the hub cache layout: models--MVRL--NAME/{refs/main, snapshots/COMMIT/...}
    for name in ("ecosound", "ecogeo"):
        repo = no_taxabind / f"models--MVRL--{name}"
        shutil.copytree(tiny_taxabind / name, repo / "snapshots" / "abc123")
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("abc123", encoding="utf-8")
    files = find_taxabind_weights()
    assert files.source == "Hugging Face cache"
    assert files.audio == (no_taxabind / "models--MVRL--ecosound/snapshots/abc123").resolve()
    monkeypatch.setenv(TAXABIND_ENV, str(tiny_taxabind))
    assert find_taxabind_weights().audio == (tiny_taxabind / "ecosound").resolve()
    monkeypatch.setenv(TAXABIND_ENV, str(no_taxabind / "nowhere"))
    with pytest.raises(WeightsNotFoundError, match="not a usable TaxaBind folder"):
        find_taxabind_weights()


# ------------------------------------------------------------------ weights status/download


def test_status_lists_taxabind(
    no_taxabind: Path, tiny_taxabind: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["weights", "status", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["baselines"][0]
    assert row["found"] is False and "geoforensics weights download taxabind" in row["detail"]
    assert cli.main(["weights", "status", "--taxabind", str(tiny_taxabind)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("TaxaBind"))
    assert "found" in line and str(tiny_taxabind) in line


def test_download_offline_fails_in_one_line(
    no_taxabind: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub

    def offline(repo_id: str, **kwargs: Any) -> str:
        raise OSError("Name or service not known\n(more detail)")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert cli.main(["weights", "download", "taxabind"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("geoforensics: error: downloading MVRL/ecosound failed")
    assert "\n" not in err and "GEOFORENSICS_TAXABIND" in err


def test_download_to_folder_takes_safetensors_only(
    no_taxabind: Path, tiny_taxabind: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import fnmatch

    import huggingface_hub

    seen: list[dict[str, Any]] = []

    def fake(repo_id: str, **kwargs: Any) -> str:
        seen.append({"repo_id": repo_id, **kwargs})
        source = tiny_taxabind / repo_id.split("/")[1]
        target = Path(kwargs["local_dir"])
        target.mkdir(parents=True, exist_ok=True)
        for file in source.iterdir():
            if any(fnmatch.fnmatch(file.name, p) for p in kwargs["allow_patterns"]):
                shutil.copy(file, target / file.name)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    files = download_taxabind(tmp_path / "tb")
    assert [s["repo_id"] for s in seen] == ["MVRL/ecosound", "MVRL/ecogeo"]
    assert all("*.bin" in s["ignore_patterns"] for s in seen)
    assert files.audio == (tmp_path / "tb" / "ecosound").resolve()
    model = load_taxabind(tmp_path / "tb")
    assert model.embed_dim == 16
    with pytest.raises(GeoforensicsError, match="not a folder"):
        (tmp_path / "file").write_text("x", encoding="utf-8")
        download_taxabind(tmp_path / "file")


# ------------------------------------------------------------------- bench row and locate


def test_list_rows_says_how_to_make_taxabind_available(
    no_taxabind: Path, tiny_taxabind: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from geoforensics.core.commands.bench import _list_rows

    assert _list_rows() == 0
    lines = capsys.readouterr().out.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("taxabind "))
    assert "UNAVAILABLE" in lines[i + 1]
    assert "geoforensics weights download taxabind" in lines[i + 1]
    monkeypatch.setenv(TAXABIND_ENV, str(tiny_taxabind))
    assert _list_rows() == 0
    lines = capsys.readouterr().out.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("taxabind "))
    assert "UNAVAILABLE" not in lines[i + 1]


def test_bench_row_retrieves_in_taxabind_space(with_taxabind: Path, tmp_path: Path) -> None:
    from geoforensics.core.data import INatSounds
    from geoforensics.eval.bench import run_bench
    from geoforensics.eval.results import ResultStore

    report = run_bench(DATA, rows=["taxabind"], out=tmp_path / "bench", progress=False)
    assert report.failed == {} and report.ran == [("taxabind", 0)]
    result = ResultStore(tmp_path / "bench").load("taxabind", 0)
    # the same predictions by hand: each whole recording -> nearest train location
    model = load_taxabind(with_taxabind)
    train = INatSounds(DATA, "train", require_audio=False).coords()
    test = INatSounds(DATA, "test", require_audio=False)
    index = model.retrieval_index(train)
    queries = np.stack([model.embed_file(r.path) for r in test])
    np.testing.assert_allclose(result.arrays["embeddings"], queries, atol=1e-6)
    np.testing.assert_allclose(result.predictions, index.search(queries, k=1).coords[:, 0, :])
    assert result.extra["audio_sha256"] and result.extra["fusion"] is True
    # a second run reuses it; other weights (same paths) recompute it
    assert run_bench(DATA, rows=["taxabind"], out=tmp_path / "bench", progress=False).reused
    write_tiny_taxabind(tmp_path / "other", seed=1)
    for name in ("ecosound", "ecogeo"):
        shutil.copy(tmp_path / "other" / name / "model.safetensors",
                    with_taxabind / name / "model.safetensors")  # fmt: skip
    again = run_bench(DATA, rows=["taxabind"], out=tmp_path / "bench", progress=False)
    assert again.ran == [("taxabind", 0)]


def test_bench_without_weights_skips_the_row(no_taxabind: Path) -> None:
    from geoforensics.eval.presets import get_preset
    from geoforensics.eval.rows import BenchData, builtin_rows

    row = builtin_rows()["taxabind"]
    assert row.table == "T1" and row.unavailable is not None
    reason = row.unavailable(BenchData(DATA, get_preset("tiny")))
    assert reason is not None and "geoforensics weights download taxabind" in reason


def test_locate_method_taxabind(
    with_taxabind: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = tmp_path / "clip.wav"
    sf.write(audio, _signal(2.0), SR)
    args = ["locate", str(audio), "--method", "taxabind", "--gallery", "grid-1deg"]
    assert cli.main([*args, "--json", "--top-k", "3", "--map", str(tmp_path / "m.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "taxabind" and len(out["places"]) == 3
    assert Path(out["map"]).is_file()
    cosines = [p["cosine"] for p in out["places"]]
    assert cosines == sorted(cosines, reverse=True)
    # the best place is the top-1 retrieval over the gallery in TaxaBind space
    from geoforensics.core.geo.gallery import resolve_gallery

    model = load_taxabind()
    gallery = resolve_gallery("grid-1deg")
    best = model.retrieval_index(gallery.coords).search(model.embed_file(audio), k=1)
    assert out["places"][0]["gallery_index"] == int(best.indices[0, 0])
    assert cli.main([*args, "--model", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert "not a usable TaxaBind folder" in err and "\n" not in err
    assert cli.main([*args, "--date", "2024-05-01"]) == 1
