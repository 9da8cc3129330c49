"""Inference on audio files: per-window outputs, recording predictions, batched predictions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from geoforensics.core.audio import MelFrontEnd, load_audio, window_starts
from geoforensics.core.errors import InputError
from geoforensics.core.geo.h3cells import cell_centers
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.models import AudioGeolocator, ModelConfig
from geoforensics.core.models.inference import (
    locate_recording,
    predict_recordings,
    window_outputs,
)
from geoforensics.core.models.pooling import spherical_mean
from geoforensics.core.models.transformer_pooling import TransformerPooling

RATE = 22050
DURATIONS = {"short": 1.0, "two": 4.5, "ten": 10.0, "long": 25.0}


def _sound(seconds: float, seed: int) -> np.ndarray:
    """Chirps and noise bursts, so that windows differ from each other."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    freq = 1000 + 3000 * (0.5 + 0.5 * np.sin(2 * np.pi * t / (1.3 + seed)))
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    envelope = (np.sin(2 * np.pi * t * (0.7 + 0.2 * seed)) > 0).astype(float)
    return (0.3 * envelope * np.sin(phase) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio")
    paths = {}
    for seed, (name, seconds) in enumerate(DURATIONS.items()):
        paths[name] = folder / f"{name}.wav"
        sf.write(paths[name], _sound(seconds, seed), RATE)
    return paths


@pytest.fixture(scope="module")
def gallery() -> RetrievalIndex:
    rng = np.random.default_rng(0)
    lat, lon = np.meshgrid(np.arange(-80, 81, 10.0), np.arange(-175, 180, 10.0), indexing="ij")
    coords = np.stack([lat.ravel(), lon.ravel()], axis=1)
    return RetrievalIndex(coords, rng.standard_normal((len(coords), 512)).astype(np.float32))


def _model(kind: str, seed: int = 0) -> AudioGeolocator:
    torch.manual_seed(seed)
    model = AudioGeolocator(ModelConfig(kind, "test_tiny", n_species=6, h3_resolution=0))
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model(torch.rand(16, 3, 64, 64))
    return model.eval()


def test_window_outputs_match_the_model_on_each_window(audio: dict[str, Path]) -> None:
    model = _model("agclip")
    model.train()  # window_outputs runs in eval mode and restores the caller's mode
    result = window_outputs(model, audio["ten"], batch_size=3, with_features=True)
    assert model.training
    frontend = MelFrontEnd(model.frontend_config)
    samples = load_audio(audio["ten"])
    starts = window_starts(samples.size, frontend.window_samples, frontend.stride_samples)
    assert len(result) == len(starts) == 5
    np.testing.assert_allclose(result.start_s, starts / RATE)
    np.testing.assert_allclose(result.end_s, (starts + frontend.window_samples) / RATE)
    images = frontend.images([samples[s : s + frontend.window_samples] for s in starts])
    assert images.shape[1:] == (3, 64, 64)
    model.eval()
    with torch.no_grad():
        expected = model(images)
        features = model.features(images)
    assert set(result.outputs) == {"species_logits", "embedding", "features"}
    assert result.outputs["embedding"].shape == (5, 512)
    assert result.outputs["embedding"].dtype == np.float32
    np.testing.assert_allclose(result.outputs["embedding"], expected["embedding"], atol=1e-5)
    logits = result.outputs["species_logits"]
    np.testing.assert_allclose(logits, expected["species_logits"], atol=1e-5)
    np.testing.assert_allclose(result.outputs["features"], features, atol=1e-5)
    short = window_outputs(model, audio["short"])
    assert len(short) == 1 and short.end_s[0] == pytest.approx(1.0)


def test_agclip_prediction_retrieves_from_the_gallery(
    audio: dict[str, Path], gallery: RetrievalIndex
) -> None:
    model = _model("agclip")
    prediction = locate_recording(model, audio["long"], gallery, k=7)
    assert prediction.kind == "agclip"
    assert prediction.coords.shape == (7, 2) and prediction.scores.shape == (7,)
    assert np.all(np.diff(prediction.scores) <= 0)
    vector = prediction.score_vector
    assert vector is not None and vector.shape == (len(gallery),)
    np.testing.assert_allclose(vector[prediction.indices], prediction.scores, atol=1e-6)
    assert vector.max() == pytest.approx(prediction.scores[0], abs=1e-6)
    np.testing.assert_array_equal(prediction.coords, gallery.coords[prediction.indices])
    np.testing.assert_array_equal(prediction.latlon, prediction.coords[0])
    # the pooled embedding is the mean of the windows, compared by cosine similarity
    mean = prediction.windows.outputs["embedding"].mean(axis=0)
    np.testing.assert_allclose(prediction.pooled["embedding"], mean, rtol=1e-5, atol=1e-6)
    cosine = gallery.embeddings @ (mean / np.linalg.norm(mean))
    np.testing.assert_allclose(vector, cosine, atol=1e-5)
    # deterministic
    again = locate_recording(model, audio["long"], gallery, k=7)
    np.testing.assert_array_equal(again.scores, prediction.scores)
    np.testing.assert_array_equal(again.indices, prediction.indices)
    with pytest.raises(InputError, match="needs a gallery"):
        locate_recording(model, audio["long"], None)


def test_pooling_choices_reach_the_prediction(
    audio: dict[str, Path], gallery: RetrievalIndex
) -> None:
    model = _model("agclip")
    by_mean = locate_recording(model, audio["long"], gallery, pooling="mean")
    by_max = locate_recording(model, audio["long"], gallery, pooling="max")
    by_kmeans = locate_recording(model, audio["long"], gallery, pooling="kmeans")
    windows = by_mean.windows.outputs["embedding"]
    np.testing.assert_allclose(by_max.pooled["embedding"], windows.max(axis=0))
    assert len(windows) == 15
    assert not np.allclose(by_kmeans.pooled["embedding"], by_mean.pooled["embedding"])
    torch.manual_seed(0)
    pooler = TransformerPooling(64, model.config.output_dim, layers=2)
    learned = locate_recording(model, audio["long"], gallery, pooling=pooler)
    with torch.no_grad():
        raw = pooler.eval().pool_recording(torch.from_numpy(learned.windows.outputs["features"]))
    np.testing.assert_allclose(learned.pooled["embedding"], raw[6:].numpy(), atol=1e-5)
    with pytest.raises(InputError, match="pooling 'median'"):
        locate_recording(model, audio["long"], gallery, pooling="median")


def test_regression_prediction_is_valid_and_pooled_on_the_sphere(audio: dict[str, Path]) -> None:
    model = _model("regression")
    with torch.no_grad():
        model.head[2].weight.normal_(0.0, 2.0)  # raw outputs far beyond the valid range
        model.head[2].bias.copy_(torch.tensor([0.9, 1.95]))
    prediction = locate_recording(model, audio["long"])
    windows = prediction.windows.outputs
    assert np.abs(windows["latlon_norm"]).max() > 1.0
    assert (np.abs(windows["latlon"][:, 0]) <= 90).all()
    assert ((windows["latlon"][:, 1] >= -180) & (windows["latlon"][:, 1] < 180)).all()
    assert prediction.coords.shape == (1, 2) and prediction.score_vector is None
    lat, lon = prediction.latlon
    assert -90 <= lat <= 90 and -180 <= lon <= 180
    np.testing.assert_allclose(prediction.latlon, spherical_mean(windows["latlon"]), atol=1e-4)


def test_classification_prediction_is_the_argmax_cell_centre(audio: dict[str, Path]) -> None:
    model = _model("classification")
    prediction = locate_recording(model, audio["ten"], k=4)
    probs = prediction.score_vector
    assert probs is not None and probs.shape == (122,)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(probs, prediction.windows.outputs["probs"].mean(axis=0), atol=1e-6)
    assert prediction.indices[0] == int(np.argmax(probs))
    np.testing.assert_array_equal(prediction.coords, cell_centers(0)[prediction.indices])
    assert np.all(np.diff(prediction.scores) <= 0)
    np.testing.assert_allclose(prediction.scores, probs[prediction.indices])


@dataclass
class _Rec:
    id: int
    path: Path | None


@pytest.mark.parametrize("kind", ["agclip", "regression", "classification"])
def test_batched_predictions_equal_one_by_one(
    audio: dict[str, Path], gallery: RetrievalIndex, kind: str
) -> None:
    model = _model(kind)
    order = ["two", "short", "long", "ten", "short", "two"]
    recordings = [_Rec(i, audio[name]) for i, name in enumerate(order)]
    # batch_size 4: short recordings share batches, long ones span several
    batched = predict_recordings(model, recordings, gallery, batch_size=4, progress=False)
    assert batched.shape == (len(order), 2) and np.isfinite(batched).all()
    for row, name in enumerate(order):
        single = locate_recording(model, audio[name], gallery, k=1)
        np.testing.assert_allclose(batched[row], single.latlon, atol=1e-4)
    kmeans = predict_recordings(
        model, [audio[n] for n in order], gallery, batch_size=32, pooling="kmeans", progress=False
    )
    for row, name in enumerate(order):
        single = locate_recording(model, audio[name], gallery, k=1, pooling="kmeans")
        np.testing.assert_allclose(kmeans[row], single.latlon, atol=1e-4)


def test_unreadable_recordings(
    audio: dict[str, Path], gallery: RetrievalIndex, tmp_path: Path
) -> None:
    model = _model("agclip")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    recordings = [
        _Rec(0, audio["two"]),
        _Rec(1, broken),
        _Rec(2, None),
        _Rec(3, tmp_path / "gone.wav"),
        _Rec(4, audio["ten"]),
    ]
    predictions = predict_recordings(
        model, recordings, gallery, batch_size=4, on_error="skip", progress=False
    )
    assert np.isnan(predictions[1:4]).all()
    good = predict_recordings(
        model, [recordings[0], recordings[4]], gallery, batch_size=4, progress=False
    )
    np.testing.assert_array_equal(predictions[[0, 4]], good)
    with pytest.raises(InputError, match=r"broken\.wav"):
        predict_recordings(model, recordings, gallery, progress=False)
