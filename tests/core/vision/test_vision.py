"""Image and text geolocation in the GeoCLIP space, on a tiny random CLIP of the real code path."""

from __future__ import annotations

import math
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from repo_paths import TESTS

from geoforensics.core.errors import InputError, MediaDecodeError, WeightsNotFoundError
from geoforensics.core.geo.gallery import Gallery, from_coords
from geoforensics.core.geoclip import IMAGE_MLP_WEIGHTS, LOGIT_SCALE_WEIGHTS, geoclip_file
from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.vision import (
    CLIP_HUB_ID,
    GeoImageTextEncoder,
    clip_weights_status,
    find_clip_weights,
    geolocate_embeddings,
    load_geo_image_text_encoder,
    locate_image,
    locate_images,
    locate_text,
)

DATA = TESTS / "data" / "clip"
TEXTS = ["Paris", "a street market in Lagos at night", "snow on the Andes", "", "x"]


def _maker() -> dict[str, Any]:
    return runpy.run_path(str(DATA / "data.py"), run_name="tiny_clip_data")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(_maker()["write_tiny_clip"](tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="module")
def encoder(tiny_clip: Path) -> GeoImageTextEncoder:
    return load_geo_image_text_encoder(tiny_clip)


@pytest.fixture
def no_clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $GEOFORENSICS_CLIP and an empty Hugging Face cache; returns the cache folder."""
    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.delenv("GEOFORENSICS_CLIP", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def gallery() -> Gallery:
    lat, lon = np.meshgrid(np.arange(-60.0, 61.0, 30.0), np.arange(-150.0, 181.0, 30.0))
    return from_coords(np.stack([lat.ravel(), lon.ravel()], axis=1), name="test-30deg")


@pytest.fixture(scope="module")
def index(gallery: Gallery) -> RetrievalIndex:
    return RetrievalIndex(gallery.coords, cached_gallery_embeddings(gallery, progress=False))


def _images(count: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    sizes = [(32, 32), (48, 80), (120, 40), (33, 57), (200, 150), (64, 64)]
    return [(rng.random((*sizes[i % 6], 3)) * 255).astype(np.uint8) for i in range(count)]


# ---- embeddings -----------------------------------------------------------------------------


def test_image_embeddings_shape_dtype_unit_norm(encoder: GeoImageTextEncoder) -> None:
    emb = encoder.embed_images(_images(5), batch_size=2)
    assert emb.shape == (5, 512)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # different pictures land on different points of the space
    assert np.abs(emb[0] - emb[1]).max() > 1e-3


def test_text_embeddings_shape_dtype_unit_norm(encoder: GeoImageTextEncoder) -> None:
    emb = encoder.embed_texts(TEXTS, batch_size=2)
    assert emb.shape == (len(TEXTS), 512)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] < 0.999  # distinct texts, distinct embeddings


def test_embeddings_are_the_clip_features_through_geoclips_mlp(
    encoder: GeoImageTextEncoder, tiny_clip: Path
) -> None:
    """Independent recomputation: HF CLIP features -> the wheel's MLP state dict -> L2 norm."""
    from transformers import CLIPModel, CLIPTokenizer

    state = torch.load(geoclip_file(IMAGE_MLP_WEIGHTS), map_location="cpu", weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "0.weight": (768, 768),
        "0.bias": (768,),
        "2.weight": (512, 768),
        "2.bias": (512,),
    }

    def mlp(x: torch.Tensor) -> np.ndarray:
        hidden = torch.relu(x @ state["0.weight"].T + state["0.bias"])
        out = hidden @ state["2.weight"].T + state["2.bias"]
        return torch.nn.functional.normalize(out, dim=1).numpy()

    model = CLIPModel.from_pretrained(tiny_clip).eval()
    tokenizer = CLIPTokenizer.from_pretrained(tiny_clip)
    with torch.inference_mode():
        tokens = tokenizer(["Paris"], return_tensors="pt")
        text = model.get_text_features(**tokens)
        text = text if isinstance(text, torch.Tensor) else text.pooler_output
        pixels = encoder.image_processor(images=[_images(1)[0]], return_tensors="pt")
        image = model.get_image_features(pixel_values=pixels["pixel_values"])
        image = image if isinstance(image, torch.Tensor) else image.pooler_output
    np.testing.assert_allclose(encoder.embed_texts(["Paris"]), mlp(text), atol=1e-5)
    np.testing.assert_allclose(encoder.embed_images(_images(1)), mlp(image), atol=1e-5)


def test_batches_equal_one_by_one(encoder: GeoImageTextEncoder) -> None:
    images = _images(5)
    batched = encoder.embed_images(images, batch_size=3)
    single = np.concatenate([encoder.embed_images([image]) for image in images])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    texts = encoder.embed_texts(TEXTS, batch_size=4)  # padded batches of unequal lengths
    alone = np.concatenate([encoder.embed_texts([text]) for text in TEXTS])
    np.testing.assert_allclose(texts, alone, atol=1e-5)


def test_deterministic_across_loads_and_seeded_writes(
    encoder: GeoImageTextEncoder, tiny_clip: Path, tmp_path: Path
) -> None:
    images, texts = _images(2), TEXTS[:3]
    again = load_geo_image_text_encoder(tiny_clip)
    np.testing.assert_array_equal(encoder.embed_images(images), again.embed_images(images))
    np.testing.assert_array_equal(encoder.embed_texts(texts), again.embed_texts(texts))
    rewritten = load_geo_image_text_encoder(_maker()["write_tiny_clip"](tmp_path / "same-seed"))
    np.testing.assert_allclose(rewritten.embed_texts(texts), encoder.embed_texts(texts), atol=1e-6)
    other = load_geo_image_text_encoder(_maker()["write_tiny_clip"](tmp_path / "seed-1", seed=1))
    assert np.abs(other.embed_texts(texts) - encoder.embed_texts(texts)).max() > 1e-3


def test_image_kinds_and_sizes(encoder: GeoImageTextEncoder) -> None:
    from PIL import Image

    rgb = _images(1)[0]
    as_pil = Image.fromarray(rgb)
    as_float = rgb.astype(np.float32) / 255.0
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=2)
    grey = rgb[:, :, 0]
    emb = encoder.embed_images([rgb, as_pil, as_float, rgba, grey, grey[:, :, None]])
    np.testing.assert_allclose(emb[1], emb[0], atol=1e-6)
    np.testing.assert_allclose(emb[2], emb[0], atol=1e-6)
    np.testing.assert_allclose(emb[3], emb[0], atol=1e-6)  # opaque alpha dropped
    np.testing.assert_allclose(emb[5], emb[4], atol=1e-6)
    # tiny, wide and tall images are resized and centre-cropped to the model's input
    odd = [np.full((5, 7, 3), 90, np.uint8), np.full((10, 300, 3), 90, np.uint8)]
    assert encoder.embed_images(odd).shape == (2, 512)
    assert encoder.embed_images([]).shape == (0, 512)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((2, 4, 4, 3), np.uint8),
        np.full((4, 4, 3), 2.0, np.float32),
        np.zeros((4, 4, 3), np.int64),
        "not an image",
    ],
)
def test_bad_images_raise_input_error(encoder: GeoImageTextEncoder, bad: Any) -> None:
    with pytest.raises(InputError, match="image 0"):
        encoder.embed_images([bad])


def test_texts_validation_and_truncation(encoder: GeoImageTextEncoder) -> None:
    with pytest.raises(InputError, match="sequence of strings"):
        encoder.embed_texts("Paris")
    with pytest.raises(InputError, match="text 1"):
        encoder.embed_texts(["Paris", 3])  # type: ignore[list-item]
    with pytest.raises(InputError, match="batch_size"):
        encoder.embed_texts(["Paris"], batch_size=0)
    assert encoder.embed_texts([]).shape == (0, 512)
    # CLIP reads 77 tokens (75 + start/end): the byte-level test tokenizer makes each
    # character a token, so texts equal on their first 75 characters embed equally.
    long_a = "a" * 300
    long_b = "a" * 300 + " and then something else entirely"
    emb = encoder.embed_texts([long_a, long_b, "a" * 20])
    np.testing.assert_allclose(emb[0], emb[1], atol=1e-6)
    assert np.abs(emb[0] - emb[2]).max() > 1e-4


# ---- geolocation ----------------------------------------------------------------------------


def test_geolocate_embeddings_is_geoclips_softmax(
    encoder: GeoImageTextEncoder, index: RetrievalIndex
) -> None:
    queries = np.concatenate([encoder.embed_images(_images(3)), encoder.embed_texts(TEXTS[:2])])
    log_probs = geolocate_embeddings(queries, index)
    assert log_probs.shape == (5, len(index))
    assert np.all(log_probs <= 0)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, atol=1e-9)
    logit_scale = torch.load(geoclip_file(LOGIT_SCALE_WEIGHTS), weights_only=True).item()
    assert logit_scale == pytest.approx(3.681, abs=1e-3)
    logits = math.exp(logit_scale) * (queries @ index.embeddings.T).astype(np.float64)
    expected = torch.log_softmax(torch.from_numpy(logits), dim=1).numpy()
    np.testing.assert_allclose(log_probs, expected, atol=1e-4)
    top = index.search(queries, k=1).indices[:, 0]
    np.testing.assert_array_equal(log_probs.argmax(axis=1), top)
    # a query equal to a gallery point's own embedding puts that point first
    own = geolocate_embeddings(index.embeddings[[7]], index)
    assert int(own.argmax()) == 7


def test_geolocate_embeddings_rejects_bad_input(index: RetrievalIndex) -> None:
    with pytest.raises(InputError, match="dimension"):
        geolocate_embeddings(np.ones((2, 64), np.float32), index)
    with pytest.raises(InputError, match="temperature"):
        geolocate_embeddings(np.ones((1, 512), np.float32), index, temperature=0.0)


def test_locate_text_and_image(
    encoder: GeoImageTextEncoder, gallery: Gallery, tmp_path: Path
) -> None:
    from PIL import Image

    result = locate_text("a harbour in Cape Town", k=4, gallery=gallery, encoder=encoder)
    assert result.kind == "text"
    assert result.gallery == "test-30deg"
    assert len(result.top) == 4
    probs = [place.probability for place in result.top]
    assert probs == sorted(probs, reverse=True)
    np.testing.assert_allclose(result.probs.sum(), 1.0, atol=1e-9)
    best = int(result.top_indices[0])
    lat, lon, prob = result.top[0]
    assert (lat, lon) == tuple(gallery.coords[best])
    assert prob == pytest.approx(float(result.probs.max()))
    assert result.clip_source == encoder.source
    payload = result.as_dict()
    assert payload["places"][0]["rank"] == 1
    assert payload["gallery"] == {"name": "test-30deg", "size": len(gallery)}

    picture = tmp_path / "frame.png"
    Image.fromarray(_images(1)[0]).save(picture)
    from_file = locate_image(picture, k=100, gallery=gallery, encoder=encoder)
    assert len(from_file.top) == len(gallery)  # k is capped at the gallery size
    from_array = locate_image(_images(1)[0], k=3, gallery=gallery, encoder=encoder)
    np.testing.assert_allclose(from_file.log_probs, from_array.log_probs, atol=1e-5)
    assert from_file.source == str(picture) and from_array.source == "<array>"
    many = locate_images([picture, picture], k=2, gallery=gallery, encoder=encoder)
    np.testing.assert_allclose(many[1].log_probs, from_file.log_probs, atol=1e-5)


def test_locate_errors(encoder: GeoImageTextEncoder, gallery: Gallery, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such image"):
        locate_image(tmp_path / "missing.jpg", gallery=gallery, encoder=encoder)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(MediaDecodeError, match=r"broken\.jpg"):
        locate_image(broken, gallery=gallery, encoder=encoder)
    with pytest.raises(InputError, match="non-empty"):
        locate_text("   ", gallery=gallery, encoder=encoder)
    with pytest.raises(InputError, match="top-k"):
        locate_text("Paris", k=0, gallery=gallery, encoder=encoder)


def test_locate_loads_the_encoder_from_the_clip_folder(
    tiny_clip: Path, gallery: Gallery, encoder: GeoImageTextEncoder
) -> None:
    result = locate_text("Paris", k=2, gallery=gallery, clip=tiny_clip)
    assert result.clip_source == str(tiny_clip.resolve())
    direct = locate_text("Paris", k=2, gallery=gallery, encoder=encoder)
    np.testing.assert_allclose(result.log_probs, direct.log_probs, atol=1e-6)


# ---- finding the weights --------------------------------------------------------------------


def test_missing_weights_message_names_the_fix(no_clip: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        find_clip_weights()
    message = str(info.value)
    assert "\n" not in message
    assert CLIP_HUB_ID in message
    assert "geoforensics weights download clip" in message
    assert "--clip FOLDER" in message
    assert str(no_clip) in message
    with pytest.raises(WeightsNotFoundError, match="download clip"):
        load_geo_image_text_encoder()
    status = clip_weights_status()
    assert not status.found and status.location is None
    assert "geoforensics weights download clip" in status.detail


def test_explicit_folder_env_and_hf_cache(
    tiny_clip: Path, no_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    def no_network(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("finding weights must not call the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    assert find_clip_weights(tiny_clip) == tiny_clip.resolve()
    assert clip_weights_status(tiny_clip).found

    # the Hugging Face cache layout: refs/main names the snapshot folder
    repo = no_clip / "models--openai--clip-vit-large-patch14"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_clip, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    snapshot = (repo / "snapshots" / commit).resolve()
    assert find_clip_weights() == snapshot
    status = clip_weights_status()
    assert status.found and status.location == str(snapshot)
    assert "Hugging Face cache" in status.detail

    # $GEOFORENSICS_CLIP wins over the cache; an explicit folder wins over both
    monkeypatch.setenv("GEOFORENSICS_CLIP", str(tiny_clip))
    assert find_clip_weights() == tiny_clip.resolve()
    monkeypatch.setenv("GEOFORENSICS_CLIP", str(tmp_path / "nowhere"))
    with pytest.raises(WeightsNotFoundError, match=r"\$GEOFORENSICS_CLIP .*nowhere"):
        find_clip_weights()
    assert find_clip_weights(snapshot) == snapshot


def test_incomplete_folders_are_refused(tiny_clip: Path, no_clip: Path, tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_clip, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(WeightsNotFoundError, match=r"pytorch_model\.bin present: pickled"):
        find_clip_weights(pickled)
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_clip, no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    with pytest.raises(WeightsNotFoundError, match=r"missing tokenizer\.json"):
        load_geo_image_text_encoder(no_tokenizer)
    # an incomplete snapshot in the cache is skipped, not loaded
    repo = no_clip / "models--openai--clip-vit-large-patch14" / "snapshots" / "abc"
    shutil.copytree(pickled, repo)
    with pytest.raises(WeightsNotFoundError, match="not found"):
        find_clip_weights()


def test_clip_with_another_width_is_refused(tmp_path: Path) -> None:
    folder = _maker()["write_tiny_clip"](tmp_path / "b32-like", projection_dim=512)
    with pytest.raises(WeightsNotFoundError, match=r"projection width 512.*768"):
        load_geo_image_text_encoder(folder)


def test_import_loads_no_heavy_modules_and_downloads_nothing() -> None:
    probe = (
        "import sys, geoforensics.core.vision as v, geoforensics.core.vision.weights;"
        "print(v.CLIP_HUB_ID, 'transformers' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == [CLIP_HUB_ID, "False", "False"]


# ---- geoforensics locate --image / --text ---------------------------------------------------


def test_cli_locate_image_and_text(
    tiny_clip: Path,
    gallery: Gallery,
    encoder: GeoImageTextEncoder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from PIL import Image

    from geoforensics.core import cli

    points = tmp_path / "points.npy"
    np.save(points, gallery.coords)
    picture = tmp_path / "frame.png"
    Image.fromarray(_images(1)[0]).save(picture)
    common = ["--clip", str(tiny_clip), "--gallery", str(points), "--top-k", "3"]

    assert cli.main(["locate", "--image", str(picture), *common, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    direct = locate_image(picture, k=3, gallery=gallery, encoder=encoder)
    assert payload["method"] == "geoclip-image"
    assert [p["gallery_index"] for p in payload["places"]] == direct.top_indices.tolist()
    assert payload["places"][0]["point_probability"] == pytest.approx(direct.top[0].probability)
    assert payload["places"][0]["place"]["country"]  # nearest named place, offline

    heatmap = tmp_path / "text.png"
    assert cli.main(["locate", "--text", "a harbour in Cape Town", *common,
                     "--map", str(heatmap)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    text = locate_text("a harbour in Cape Town", k=3, gallery=gallery, encoder=encoder)
    assert "text 'a harbour in Cape Town'" in out
    first = next(line for line in out.splitlines() if line.strip().startswith("1 "))
    assert f"{text.top[0].latitude:.3f}" in first
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_locate_image_errors(
    tiny_clip: Path, no_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoforensics.core import cli

    assert cli.main(["locate", "--image", str(tmp_path / "nope.jpg"), "--clip",
                     str(tiny_clip)]) == 1  # fmt: skip
    assert "nope.jpg: no such image file" in capsys.readouterr().err
    assert cli.main(["locate", "--image", "a.jpg", "--text", "Paris"]) == 1
    assert "not both" in capsys.readouterr().err
    assert cli.main(["locate", "--text", "Paris", "--species", "Turdus merula"]) == 1
    assert "--text does not take --species" in capsys.readouterr().err
    # Without CLIP weights: one line that says how to get them, exit 1.
    assert cli.main(["locate", "--text", "Paris"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "geoforensics weights download clip" in err
