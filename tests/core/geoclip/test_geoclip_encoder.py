"""Our GeoCLIP location encoder equals the geoclip package's; weights loaders; encoder_id."""

from __future__ import annotations

import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from geoforensics.core.errors import WeightsNotFoundError
from geoforensics.core.geoclip import LOCATION_ENCODER_WEIGHTS, geoclip_file
from geoforensics.core.geoclip.location_encoder import (
    GeoCLIPLocationEncoder,
    encoder_id,
    equal_earth_projection,
    geoclip_temperature,
    load_image_mlp,
    load_location_encoder,
    load_logit_scale,
)

FIXED = torch.tensor(
    [
        [90.0, 0.0],  # north pole
        [-90.0, 0.0],  # south pole
        [90.0, 123.0],
        [0.0, 180.0],  # antimeridian, both signs
        [0.0, -180.0],
        [45.0, 179.9999],
        [-45.0, -179.9999],
        [0.0, 0.0],
        [48.8566, 2.3522],
        [-33.8688, 151.2093],
        [64.1466, -21.9426],
    ]
)


def _test_coords() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    random = torch.rand(500, 2, generator=gen) * torch.tensor([180.0, 360.0])
    return torch.cat([FIXED, random - torch.tensor([90.0, 180.0])])


def test_embeddings_equal_geoclip_package() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import geoclip

    coords = _test_coords()
    reference = geoclip.LocationEncoder().eval()
    ours = load_location_encoder()
    with torch.inference_mode():
        expected = reference(coords)
        got = ours(coords)
    assert got.shape == (len(coords), 512)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    norms = got.norm(dim=1)
    assert not torch.allclose(norms, torch.ones_like(norms))  # unnormalised, as GeoCLIP's


def test_distinct_places_get_distinct_embeddings() -> None:
    ours = load_location_encoder()
    with torch.inference_mode():
        emb = torch.nn.functional.normalize(ours(FIXED), dim=1)
    paris_sydney = float(emb[8] @ emb[9])
    paris_paris = float(emb[8] @ emb[8])
    assert paris_paris == pytest.approx(1.0, abs=1e-5)
    assert paris_sydney < 0.9


def test_equal_earth_projection_values() -> None:
    out = equal_earth_projection(torch.tensor([[0.0, 0.0], [90.0, 0.0], [0.0, 180.0]]))
    assert out[0].tolist() == [0.0, 0.0]
    assert out[1, 0] == 0.0 and out[1, 1] > 0  # pole: on the central meridian, top
    # Equator at 180°: x = 2√3·π / (3·A1) scaled by SF/180
    assert float(out[2, 0]) == pytest.approx(
        2 * math.sqrt(3) * math.pi / (3 * 1.340264) * 66.50336 / 180, rel=1e-5
    )


def test_logit_scale_and_temperature() -> None:
    assert load_logit_scale() == pytest.approx(3.681, abs=1e-3)
    assert geoclip_temperature() == pytest.approx(39.69, abs=0.05)
    # AG-CLIP's temperature is kept as a constant (no torch import to read it): the wheel's
    from geoforensics.core.species.fusion import GEOCLIP_LOGIT_SCALE, agclip_temperature

    assert GEOCLIP_LOGIT_SCALE == load_logit_scale()
    assert agclip_temperature() == pytest.approx(geoclip_temperature(), rel=1e-12)


def test_image_mlp_maps_clip_features_into_location_space() -> None:
    mlp = load_image_mlp()
    state = torch.load(
        geoclip_file("model/weights/image_encoder_mlp_weights.pth"), weights_only=True
    )
    torch.testing.assert_close(mlp[2].weight, state["2.weight"])
    with torch.inference_mode():
        x = torch.randn(3, 768)
        out = mlp(x)
        expected = state["2.weight"] @ torch.relu(
            state["0.weight"] @ x.T + state["0.bias"][:, None]
        )
    assert out.shape == (3, 512)
    torch.testing.assert_close(out, expected.T + state["2.bias"], atol=1e-5, rtol=1e-5)


def test_encoder_id_follows_file_content(tmp_path: Path) -> None:
    shipped = geoclip_file(LOCATION_ENCODER_WEIGHTS)
    copy = tmp_path / "copy.pth"
    shutil.copyfile(shipped, copy)
    assert encoder_id(copy) == encoder_id() == encoder_id(shipped)
    assert load_location_encoder(copy).weights_id == encoder_id()

    state = torch.load(shipped, weights_only=True)
    state["LocEnc0.head.0.bias"] = state["LocEnc0.head.0.bias"] + 1.0
    changed = tmp_path / "changed.pth"
    torch.save(state, changed)
    assert encoder_id(changed) != encoder_id()
    model = load_location_encoder(changed)
    assert model.weights_id == encoder_id(changed)


def test_in_memory_encoder_id_depends_on_weights() -> None:
    torch.manual_seed(0)
    a = GeoCLIPLocationEncoder()
    b = GeoCLIPLocationEncoder()
    b.load_state_dict(a.state_dict())
    assert a.weights_id == b.weights_id
    with torch.no_grad():
        b.LocEnc1.head[0].bias.add_(1.0)
    assert a.weights_id != b.weights_id


def test_bad_weight_files_raise(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="not found"):
        load_location_encoder(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(WeightsNotFoundError, match=r"junk\.pth"):
        load_location_encoder(junk)
    wrong = tmp_path / "wrong.pth"
    torch.save({"x": torch.zeros(2)}, wrong)
    with pytest.raises(WeightsNotFoundError, match="does not fit"):
        load_location_encoder(wrong)
    assert np.isfinite(load_logit_scale())
