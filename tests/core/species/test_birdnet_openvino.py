"""BirdNET's audio network on OpenVINO (the model cut at its spectrogram layers): the split
reads its constants from the model, the outputs follow the TFLite runtime's, real recordings
give the same detections, and the runtime choice and fall-backs behave as documented."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from repo_paths import REPO

from geoforensics.core.audio.decode import load_audio
from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.species import birdnet_audio as ba
from geoforensics.core.species import birdnet_openvino as bo
from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available

pytestmark = [
    pytest.mark.skipif(not birdnet_available(), reason=INSTALL_HINT),
    pytest.mark.skipif(
        importlib.util.find_spec("openvino") is None, reason="the openvino extra is missing"
    ),
]
SEATTLE = REPO.parent / "shared" / "realaudio" / "xc563936_seattle_wa_soundscape.mp3"


def _two_output_bytes() -> bytes:
    return ba._two_output_model(str(ba.birdnet_file("audio")))[0]


def _chirps(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * 48_000)) / 48_000
    tone = np.sin(2 * np.pi * (3000 * t + 80 * np.sin(2 * np.pi * 6 * t)))
    gate = (np.sin(2 * np.pi * 0.8 * t) > 0).astype(np.float64)
    return (0.3 * tone * gate + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def pair() -> tuple[ba.BirdNETAudio, ba.BirdNETAudio]:
    """(OpenVINO, TFLite) runners of the same model."""
    fast = ba.BirdNETAudio(num_threads=1, batch_size=4, backend="openvino")
    reference = ba.BirdNETAudio(num_threads=1, batch_size=4, backend="tflite")
    return fast, reference


def test_split_reads_the_spectrogram_constants_from_the_model() -> None:
    back, front = bo.split_model(_two_output_bytes())
    assert [(b.frame_length, b.frame_step) for b in front.branches] == [(2048, 278), (1024, 280)]
    for branch in front.branches:  # periodic Hann windows
        n = np.arange(branch.frame_length)
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / branch.frame_length)
        np.testing.assert_allclose(branch.window, hann, atol=1e-6)
    assert (front.epsilon, front.offset, front.scale) == pytest.approx((1e-6, 0.5, 2.0))
    # the front's two outputs have the shapes the back's inputs expect (511 frames each)
    specs = front(np.zeros((2, ba.WINDOW_SAMPLES), dtype=np.float32))
    assert [s.shape for s in specs] == [(2, 511, 1025), (2, 511, 513)]
    assert all(s.dtype == np.float32 for s in specs)
    assert len(back) < len(_two_output_bytes())  # the front's operators are gone
    # the JSON round trip of the cached constants is exact
    again = bo.BirdNETFront.from_json(json.loads(json.dumps(front.to_json())))
    for a, b in zip(again.branches, front.branches, strict=True):
        np.testing.assert_array_equal(a.window, b.window)


def test_a_model_laid_out_otherwise_is_refused() -> None:
    range_model = ba.birdnet_file("range").read_bytes()
    with pytest.raises(bo.SplitError, match="MEL_SPEC1/Cast"):
        bo.split_model(range_model)


def test_openvino_follows_the_tflite_runtime(
    pair: tuple[ba.BirdNETAudio, ba.BirdNETAudio],
) -> None:
    fast, reference = pair
    assert (fast.backend, reference.backend) == ("openvino", "tflite")
    assert fast.embedding_source == "openvino-split"
    windows = np.stack([w for _, _, w in ba.iter_windows([_chirps(13.5, seed=3)])])
    logits, embeddings = fast.logits_and_embeddings(windows)
    ref_logits, ref_embeddings = reference.logits_and_embeddings(windows)
    assert logits.shape == ref_logits.shape == (5, 6522)
    # four full windows agree to float32 rounding (measured ~1e-4 on logits of size ~20)
    assert np.abs(logits[:4] - ref_logits[:4]).max() < 1e-3
    relative = np.linalg.norm(embeddings - ref_embeddings, axis=1) / np.linalg.norm(
        ref_embeddings, axis=1
    )
    assert relative[:4].max() < 1e-4
    # the last window is 1.5 s of chirps and 1.5 s of zero padding: BirdNET's compression of
    # near-zero mel values magnifies the FFTs' last-bit differences there (measured: 0.04 on
    # logits, 0.4 % on the embedding, 1e-3 on probabilities); a broken split is off by far more
    assert relative[4] < 0.02
    probs, ref_probs = ba.flat_sigmoid(logits), ba.flat_sigmoid(ref_logits)
    np.testing.assert_allclose(probs, ref_probs, atol=0.01)
    # batching does not change OpenVINO's results
    one, _ = fast.logits_and_embeddings(windows[2:3])
    np.testing.assert_allclose(one[0], logits[2], atol=1e-4)
    # the front's buffers are reused per batch shape: a later call, after batches of other
    # shapes, gives the same numbers bit for bit and leaves earlier results alone
    kept = logits.copy()
    again, again_embeddings = fast.logits_and_embeddings(windows)
    np.testing.assert_array_equal(again, kept)
    np.testing.assert_array_equal(logits, kept)
    np.testing.assert_array_equal(again_embeddings, embeddings)


def test_real_soundscape_gives_the_same_detections(
    pair: tuple[ba.BirdNETAudio, ba.BirdNETAudio],
) -> None:
    if not SEATTLE.is_file():
        pytest.skip(f"{SEATTLE}: the real recordings are not here (test fixtures, not shipped)")
    signal = load_audio(SEATTLE, sample_rate=48_000)[: 30 * 48_000]
    fast, reference = pair
    ours, theirs = fast.signal_windows(signal), reference.signal_windows(signal)
    assert np.abs(ours.probs - theirs.probs).max() < 0.01
    found = {(d.scientific, d.start_s) for d in ours.detections(threshold=0.1)}
    expected = {(d.scientific, d.start_s) for d in theirs.detections(threshold=0.1)}
    assert found == expected and len(found) >= 3


def test_runtime_choice_and_fall_backs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ba.BIRDNET_BACKEND_ENV, "tflite")
    assert ba.BirdNETAudio(num_threads=1).backend == "tflite"
    monkeypatch.setenv(ba.BIRDNET_BACKEND_ENV, "gpu")
    with pytest.raises(InputError, match="GEOFORENSICS_BIRDNET_BACKEND='gpu'"):
        ba.BirdNETAudio(num_threads=1)
    monkeypatch.delenv(ba.BIRDNET_BACKEND_ENV)

    def cannot(*args: object, **kwargs: object) -> None:
        raise bo.SplitError("unexpected spectrogram operators")

    monkeypatch.setattr(ba, "openvino_birdnet", cannot)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallback = ba.BirdNETAudio(num_threads=1)
    assert fallback.backend == "tflite"
    assert any("using the TFLite runtime" in str(w.message) for w in caught)
    with pytest.raises(WeightsNotFoundError, match="OpenVINO cannot run this BirdNET model"):
        ba.BirdNETAudio(num_threads=1, backend="openvino")


def test_split_is_checked_once_then_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOFORENSICS_CACHE", str(tmp_path / "cache"))
    first = ba.BirdNETAudio(num_threads=1, backend="openvino")
    sides = sorted((tmp_path / "cache" / "birdnet").glob("audio-openvino-back-*.json"))
    assert len(sides) == 1
    meta = json.loads(sides[0].read_text())
    assert 0.0 <= meta["max_logit_difference"] < bo.MAX_LOGIT_DIFFERENCE

    def must_not_check(*args: object) -> float:
        raise AssertionError("the cached split should have been read")

    monkeypatch.setattr(bo, "_check_against_tflite", must_not_check)
    again = ba.BirdNETAudio(num_threads=1, backend="openvino")
    windows = np.stack([w for _, _, w in ba.iter_windows([_chirps(3.0, seed=5)])])
    np.testing.assert_array_equal(again.predict(windows)[0], first.predict(windows)[0])


def test_a_split_that_disagrees_with_tflite_is_refused_and_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOFORENSICS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(bo, "_check_against_tflite", lambda runner, reference: 3.5)
    with pytest.raises(WeightsNotFoundError, match=r"differ from TFLite's by 3\.5"):
        ba.BirdNETAudio(num_threads=1, backend="openvino")
    assert not list((tmp_path / "cache" / "birdnet").glob("audio-openvino-back-*"))
