"""Table 2a audio encoders: LAION CLAP and Wav2CLIP as frozen registry encoders, MobileNetV3
from torchvision's ImageNet weights, and their bench rows, on tiny random models written in
the files' real layouts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from repo_paths import TESTS

from geoforensics.core import cli
from geoforensics.core.errors import GeoforensicsError, InputError, WeightsNotFoundError
from geoforensics.core.models.clap import CLAP_ENV, ClapAudioTower, find_clap_weights
from geoforensics.core.models.encoders import (
    create_encoder,
    frontend_for,
    get_encoder_config,
    require_encoder,
    waveform_features,
)
from geoforensics.core.models.imagenet import (
    IMAGENET_ENV,
    download_imagenet_mobilenet,
    find_imagenet_mobilenet,
)
from geoforensics.core.models.wav2clip import (
    WAV2CLIP_ENV,
    PowerSpectrogram,
    Wav2CLIPAudio,
    find_wav2clip_weights,
    load_wav2clip,
)

DATA = TESTS / "data" / "inatsounds"


def _tiny_clap_model(seed: int = 0) -> Any:
    """A tiny full LAION-style ``ClapModel`` (text + audio towers), projection 512 as LAION's."""
    from transformers import ClapConfig, ClapModel

    torch.manual_seed(seed)
    config = ClapConfig(
        text_config={
            "vocab_size": 50,
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "num_attention_heads": 1,
            "intermediate_size": 8,
            "max_position_embeddings": 40,
        },
        audio_config={
            "patch_embeds_hidden_size": 8,
            "hidden_size": 16,
            "depths": [1, 1],
            "num_attention_heads": [1, 1],
            "enable_fusion": True,
            "mlp_ratio": 1.0,
            "aff_block_r": 2,
        },
        projection_dim=512,
    )
    return ClapModel(config).eval()


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clap") / "laion"
    _tiny_clap_model().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def wav2clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Wav2CLIP in the release's layout: a torch file with a Lightning-style
    ``state_dict`` of ``audio_encoder.*`` / ``audio_transform.*`` (+ an unrelated key)."""
    torch.manual_seed(0)
    state = dict(Wav2CLIPAudio().state_dict())
    state["loss.logit_scale"] = torch.tensor(2.0)
    path = tmp_path_factory.mktemp("wav2clip") / "Wav2CLIP.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    return path


@pytest.fixture
def no_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (CLAP_ENV, WAV2CLIP_ENV, IMAGENET_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def _tiny_preset() -> Any:
    from geoforensics.eval.presets import get_preset

    tiny = get_preset("tiny")
    train = {k: dict(v) for k, v in tiny.train.items()}
    train["optim"]["max_epochs"] = 1
    return dataclasses.replace(tiny, name="tiny-1epoch", train=train)


# --------------------------------------------------------------------------------- registry


def test_registry_declares_rate_window_and_feature_size() -> None:
    for name, rate in (("clap", 48_000), ("wav2clip", 16_000)):
        config = get_encoder_config(name)
        assert config.frozen_features and config.sample_rate == rate
        assert config.feature_dim == 512
        frontend = frontend_for(name)
        assert frontend.sample_rate == rate and frontend.window_samples == 3 * rate
        assert create_encoder(name)(torch.zeros(2, 512)).shape == (2, 512)


def test_missing_weights_say_how_to_get_them(no_weights: Path) -> None:
    for name, hint in (
        ("clap", "geoforensics weights download clap"),
        ("wav2clip", "GEOFORENSICS_WAV2CLIP"),
    ):
        with pytest.raises(WeightsNotFoundError) as info:
            require_encoder(name)
        assert hint in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="download imagenet-mobilenet"):
        find_imagenet_mobilenet()


# ------------------------------------------------------------------------------------- CLAP


def test_clap_features_from_a_full_laion_model(
    clap_folder: Path, monkeypatch: pytest.MonkeyPatch, no_weights: Path
) -> None:
    """The audio tower of a full ``ClapModel`` folder (text keys ignored) gives the model's own
    ``get_audio_features`` on CLAP's inputs; as a registry encoder each window is embedded as
    a recording of its own."""
    from transformers import ClapFeatureExtractor, ClapModel

    monkeypatch.setenv(CLAP_ENV, str(clap_folder))
    assert find_clap_weights() == clap_folder.resolve()
    tower = ClapAudioTower(clap_folder)
    rng = np.random.default_rng(0)
    windows = (0.1 * rng.standard_normal((2, frontend_for("clap").window_samples))).astype(
        np.float32
    )
    reference = ClapModel.from_pretrained(clap_folder, local_files_only=True).eval()
    extractor = ClapFeatureExtractor(frequency_min=50, frequency_max=14_000)
    expected = []
    for window in windows:
        inputs = extractor(window, sampling_rate=48_000, return_tensors="pt")
        with torch.inference_mode():
            expected.append(reference.get_audio_features(**inputs).pooler_output[0].numpy())
    np.testing.assert_allclose(tower.embed(windows[0]), expected[0], atol=2e-5)
    features = waveform_features("clap", windows, num_threads=1)
    assert features.shape == (2, 512)
    np.testing.assert_allclose(features, np.stack(expected), atol=2e-5)


def test_clap_folder_with_pickles_only_is_refused(
    clap_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((clap_folder / "config.json").read_text(), "utf-8")
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    monkeypatch.setenv(CLAP_ENV, str(folder))
    with pytest.raises(WeightsNotFoundError, match="pickled weights are not loaded"):
        find_clap_weights()


# --------------------------------------------------------------------------------- Wav2CLIP


def test_wav2clip_spectrogram_matches_a_numpy_stft() -> None:
    """Wav2CLIP's front-end: |STFT|² with a periodic Hann window 512, hop 353, centred with
    reflect padding (torchaudio's Spectrogram defaults), checked against a plain numpy STFT."""
    rng = np.random.default_rng(3)
    wave = rng.standard_normal(16_000).astype(np.float32)
    ours = PowerSpectrogram()(torch.from_numpy(wave)[None])[0, 0].numpy()
    padded = np.pad(wave.astype(np.float64), 256, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, 512)[::353]
    window = np.hanning(513)[:-1]
    expected = (np.abs(np.fft.rfft(frames * window, axis=1)) ** 2).T
    assert ours.shape == expected.shape == (257, 16_000 // 353 + 1)
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-3)


def test_wav2clip_checkpoint_loads_and_features_do_not_depend_on_batching(
    wav2clip_file: Path, monkeypatch: pytest.MonkeyPatch, no_weights: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv(WAV2CLIP_ENV, str(wav2clip_file))
    assert find_wav2clip_weights() == wav2clip_file.resolve()
    model = load_wav2clip()
    torch.manual_seed(0)
    assert not model.training
    rng = np.random.default_rng(1)
    windows = (0.1 * rng.standard_normal((3, 48_000))).astype(np.float32)
    batch = waveform_features("wav2clip", windows, num_threads=1)
    single = np.concatenate([waveform_features("wav2clip", w[None], 1) for w in windows])
    assert batch.shape == (3, 512)
    np.testing.assert_allclose(batch, single, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # a checkpoint of another model is refused in one line naming the file
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, other)
    with pytest.raises(InputError) as info:
        load_wav2clip(other)
    assert str(other) in str(info.value) and "\n" not in str(info.value)


# -------------------------------------------------------------------------------- ImageNet


def _fake_imagenet_file(folder: Path) -> Path:
    """A random torchvision mobilenet_v3_large state dict (1,000-way ImageNet head) saved as
    torchvision names its ImageNet file."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mobilenet_v3_large-8738ca79.pth"
    torch.save(model.state_dict(), path)
    return path


def test_imagenet_weights_initialise_the_encoder(no_weights: Path) -> None:
    import torchvision

    path = _fake_imagenet_file(no_weights / "torch" / "hub" / "checkpoints")
    assert find_imagenet_mobilenet() == path.resolve()
    encoder = create_encoder("mobilenet_v3_large", weights=path).eval()
    reference = torchvision.models.mobilenet_v3_large(weights=None)
    reference.load_state_dict(torch.load(path, weights_only=True))
    reference.eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.inference_mode():
        expected = reference.classifier[:3](
            torch.flatten(reference.avgpool(reference.features(x)), 1)
        )
        np.testing.assert_allclose(encoder(x).numpy(), expected.numpy(), atol=1e-5)


def test_imagenet_download_failure_is_one_line(
    no_weights: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def offline(url: str, dst: str, **kwargs: Any) -> None:
        raise OSError("Name or service not known\nmore")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(GeoforensicsError, match="GEOFORENSICS_IMAGENET_MOBILENET"):
        download_imagenet_mobilenet()
    assert cli.main(["weights", "download", "imagenet-mobilenet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("geoforensics: error: downloading") and "\n" not in err
    assert not list((no_weights / "torch" / "hub" / "checkpoints").glob("*.pth"))


# ------------------------------------------------------------------------------ bench rows


def test_rows_are_unavailable_without_weights(no_weights: Path) -> None:
    from geoforensics.core.commands.bench import _list_rows
    from geoforensics.eval.rows import builtin_rows

    rows = builtin_rows()
    for name, command in (
        ("encoder-clap", "geoforensics weights download clap"),
        ("encoder-wav2clip", "GEOFORENSICS_WAV2CLIP"),
        ("encoder-imagenet", "geoforensics weights download imagenet-mobilenet"),
    ):
        assert rows[name].table == "T2a" and rows[name].trains
        assert rows[name].unavailable is not None
        reason = rows[name].unavailable(None)  # type: ignore[arg-type]
        assert reason is not None and command in reason
    _list_rows()


@pytest.mark.parametrize("row", ["encoder-clap", "encoder-wav2clip", "encoder-imagenet"])
def test_encoder_rows_train_and_retrieve(
    row: str,
    clap_folder: Path,
    wav2clip_file: Path,
    no_weights: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from geoforensics.core.data import INatSounds
    from geoforensics.eval.bench import run_bench
    from geoforensics.eval.results import ResultStore

    monkeypatch.setenv(CLAP_ENV, str(clap_folder))
    monkeypatch.setenv(WAV2CLIP_ENV, str(wav2clip_file))
    monkeypatch.setenv(IMAGENET_ENV, str(_fake_imagenet_file(tmp_path / "imagenet")))
    out = tmp_path / "bench"
    report = run_bench(DATA, preset=_tiny_preset(), rows=[row], out=out, progress=False)
    assert report.failed == {} and report.ran == [(row, 0)]
    result = ResultStore(out).load(row, 0)
    n_test = len(INatSounds(DATA, "test", require_audio=False))
    assert result.predictions.shape == (n_test, 2) and np.isfinite(result.predictions).all()
    model_json = json.loads((Path(result.extra["model_dir"]) / "model.json").read_text())
    assert result.extra["encoder"] in json.dumps(model_json)
    assert result.extra["frozen"] is (row != "encoder-imagenet")


def test_new_weights_at_the_same_path_retrain_the_row(
    wav2clip_file: Path, no_weights: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shutil

    from geoforensics.core.fileio import sha256_file
    from geoforensics.eval.bench import run_bench
    from geoforensics.eval.results import ResultStore

    weights = tmp_path / "Wav2CLIP.pt"
    shutil.copy(wav2clip_file, weights)
    monkeypatch.setenv(WAV2CLIP_ENV, str(weights))
    out, preset = tmp_path / "bench", _tiny_preset()
    run_bench(DATA, preset=preset, rows=["encoder-wav2clip"], out=out, progress=False)
    model = Path(ResultStore(out).load("encoder-wav2clip", 0).extra["model_dir"])
    before = sha256_file(model / "model.safetensors")
    assert run_bench(DATA, preset=preset, rows=["encoder-wav2clip"], out=out, progress=False).reused
    torch.manual_seed(1)
    torch.save({"state_dict": Wav2CLIPAudio().state_dict()}, weights)
    again = run_bench(DATA, preset=preset, rows=["encoder-wav2clip"], out=out, progress=False)
    assert again.ran == [("encoder-wav2clip", 0)]
    assert sha256_file(model / "model.safetensors") != before
