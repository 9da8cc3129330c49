"""GeoCLAP off the shelf: SatMAE's ViT against timm, the tile transform against torchvision's
Compose, weights in GeoCLAP's checkpoint layout, the aerial-tile folder and the bench row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from repo_paths import TESTS

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models.geoclap import (
    GEOCLAP_ENV,
    TILES_ENV,
    GeoCLAPSatEncoder,
    SatMAEViT,
    find_geoclap_weights,
    load_geoclap,
    load_sat_encoder,
    read_tiles,
    tile_tensor,
)

DATA = TESTS / "data" / "inatsounds"


def _tiny_vit(seed: int = 0) -> SatMAEViT:
    torch.manual_seed(seed)
    vit = SatMAEViT(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=1,
                    num_classes=10)  # fmt: skip
    for parameter in vit.parameters():  # non-zero class token and position embedding
        torch.nn.init.normal_(parameter, std=0.2)
    return vit


def write_tiny_geoclap(folder: Path, seed: int = 0) -> Path:
    """``folder/audio`` (a tiny CLAP audio tower, 16-d, transformers' layout) and
    ``folder/sat_encoder.safetensors`` in GeoCLAP's checkpoint key layout (with unrelated
    keys that must be ignored)."""
    from safetensors.torch import save_file
    from transformers import ClapAudioConfig, ClapAudioModelWithProjection

    torch.manual_seed(seed)
    config = ClapAudioConfig(
        patch_embeds_hidden_size=8, hidden_size=16, depths=[1, 1], num_attention_heads=[1, 1],
        projection_dim=16, enable_fusion=True, mlp_ratio=1.0, aff_block_r=2,
    )  # fmt: skip
    ClapAudioModelWithProjection(config).save_pretrained(folder / "audio")
    encoder = GeoCLAPSatEncoder(_tiny_vit(seed), out_dim=16)
    state = {f"sat_encoder.{k}": v.contiguous() for k, v in encoder.state_dict().items()}
    state["temp_layer.logit_scale_ia"] = torch.tensor([2.0])
    save_file(state, str(folder / "sat_encoder.safetensors"))
    return folder


def write_tiles(folder: Path, coords: list[tuple[float, float]]) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = ["latitude,longitude,file"]
    for i, (lat, lon) in enumerate(coords):
        name = f"tile_{i}.png"
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(folder / name)
        lines.append(f"{lat},{lon},{name}")
    (folder / "tiles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_satmae_vit_equals_timm() -> None:
    """Our ViT with timm's parameter names gives timm's class-token logits (SatMAE's
    forward: final norm, class token, head)."""
    timm = pytest.importorskip("timm")
    ours = _tiny_vit().eval()
    reference = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=1, num_classes=10,
        qkv_bias=True,
    ).eval()  # fmt: skip
    reference.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        expected = reference.head(reference.forward_features(x)[:, 0])
        np.testing.assert_allclose(ours(x).numpy(), expected.numpy(), atol=1e-5)


def test_tile_transform_is_satmaes_eval_transform() -> None:
    from torchvision import transforms

    image = np.random.default_rng(1).integers(0, 255, (300, 280, 3), dtype=np.uint8)
    reference = transforms.Compose(
        [
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
        ]
    )
    np.testing.assert_allclose(tile_tensor(image, 224).numpy(), reference(image).numpy(),
                               atol=1e-5)  # fmt: skip
    with pytest.raises(InputError, match="RGB"):
        tile_tensor(image[:, :, 0], 224)


def test_sat_encoder_loads_from_geoclap_layout(tmp_path: Path) -> None:
    folder = write_tiny_geoclap(tmp_path / "g")
    encoder = load_sat_encoder(folder / "sat_encoder.safetensors")
    assert encoder.img_size == 32 and encoder.fc.out_features == 16
    assert len(encoder.model.blocks) == 2
    bad = tmp_path / "bad.pt"
    torch.save({"other.weight": torch.zeros(2)}, bad)
    with pytest.raises(InputError) as info:
        load_sat_encoder(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_tiles_folder_is_checked(tmp_path: Path) -> None:
    tiles = read_tiles(write_tiles(tmp_path / "t", [(10.0, 20.0), (-5.0, 100.0)]))
    assert tiles.coords.shape == (2, 2) and len(tiles) == 2 and tiles.identity()
    csv = tmp_path / "t" / "tiles.csv"
    csv.write_text("latitude,longitude,file\n10,abc,tile_0.png\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2: latitude/longitude are not numbers"):
        read_tiles(tmp_path / "t")
    csv.write_text("latitude,longitude,file\n10,20,missing.png\n", encoding="utf-8")
    with pytest.raises(InputError, match="no image"):
        read_tiles(tmp_path / "t")
    csv.write_text("lat,lon\n", encoding="utf-8")
    with pytest.raises(InputError, match="header"):
        read_tiles(tmp_path / "t")


def test_bench_row_retrieves_tiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geoforensics.core.data import INatSounds
    from geoforensics.eval.bench import run_bench
    from geoforensics.eval.presets import get_preset
    from geoforensics.eval.results import ResultStore
    from geoforensics.eval.rows import BenchData, builtin_rows

    monkeypatch.delenv(GEOCLAP_ENV, raising=False)
    monkeypatch.delenv(TILES_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    row = builtin_rows()["geoclap"]
    assert row.unavailable is not None
    bench_data = BenchData(DATA, get_preset("tiny"))
    reason = row.unavailable(bench_data)
    assert reason is not None and "GEOFORENSICS_GEOCLAP" in reason
    with pytest.raises(WeightsNotFoundError):
        find_geoclap_weights()
    monkeypatch.setenv(GEOCLAP_ENV, str(write_tiny_geoclap(tmp_path / "g")))
    reason = row.unavailable(bench_data)
    assert reason is not None and "aerial tiles" in reason
    coords = [(55.0, 12.0), (48.8, 2.3), (-33.9, 151.2), (40.7, -74.0)]
    monkeypatch.setenv(TILES_ENV, str(write_tiles(tmp_path / "tiles", coords)))
    assert row.unavailable(bench_data) is None

    out = tmp_path / "bench"
    report = run_bench(DATA, rows=["geoclap"], out=out, progress=False)
    assert report.failed == {} and report.ran == [("geoclap", 0)]
    result = ResultStore(out).load("geoclap", 0)
    model = load_geoclap()
    tiles = read_tiles(tmp_path / "tiles")
    test = INatSounds(DATA, "test", require_audio=False)
    queries = np.stack([model.embed_file(r.path) for r in test])
    expected = model.retrieval_index(tiles).search(queries, k=1).coords[:, 0, :]
    np.testing.assert_allclose(result.predictions, expected)
    assert result.extra["gallery_size"] == 4
    assert json.loads(json.dumps(result.extra))["gallery"] == "aerial tiles"
