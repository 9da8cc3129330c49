"""Table 2 location encoders: GeoCLIP, SINR and SatCLIP layouts, checkpoints, range pretraining."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y
from sklearn.metrics import roc_auc_score

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models.location import (
    GeoCLIPEncoder,
    SatCLIPEncoder,
    SINREncoder,
    SphericalHarmonics,
    create_location_encoder,
    gallery_embeddings,
    load_location_encoder_file,
    save_location_encoder,
    sinr_input_encoding,
)
from geoforensics.core.species.checklists import checklists
from geoforensics.core.synth import SyntheticRangeModel, build_world
from geoforensics.train.range_pretraining import (
    create_or_pretrain_location_encoder,
    pretrain_range_encoder,
    range_training_points,
)

COORDS = torch.tensor(
    [[0.0, 0.0], [45.0, 90.0], [-33.9, 151.2], [89.9, -179.9], [-90.0, 180.0], [51.5, -0.1]]
)


# ----------------------------------------------------------------------------- shapes


def test_shapes_and_unit_embeddings() -> None:
    torch.manual_seed(0)
    for encoder, dim in (
        (SINREncoder(), 256),
        (SatCLIPEncoder(), 256),
        (SatCLIPEncoder(legendre_polys=5, embed_dim=64, capacity=32), 64),
    ):
        assert encoder.embed_dim == dim
        assert encoder(COORDS).shape == (len(COORDS), dim)
        emb = encoder.embed(COORDS.numpy().astype(np.float64))
        assert emb.shape == (len(COORDS), dim) and emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(InputError):
        SINREncoder()(torch.zeros(3, 3))
    with pytest.raises(InputError):
        SINREncoder().embed(np.array([[100.0, 0.0]]))


def test_geoclip_encoder_wraps_the_shipped_weights() -> None:
    from geoforensics.core.geoclip.embeddings import embed_locations

    encoder = create_location_encoder("geoclip")
    assert isinstance(encoder, GeoCLIPEncoder) and encoder.embed_dim == 512
    assert not any(p.requires_grad for p in encoder.parameters())
    points = COORDS.numpy().astype(np.float64)
    np.testing.assert_allclose(encoder.embed(points), embed_locations(points), atol=1e-6)


# -------------------------------------------------------------------------------- SINR


def test_sinr_input_encoding_known_values() -> None:
    enc = sinr_input_encoding(torch.tensor([[0.0, 0.0], [45.0, 90.0], [-90.0, 180.0]]))
    expected = [
        [0.0, 0.0, 1.0, 1.0],  # [sin πx, sin πy, cos πx, cos πy], x = lon/180, y = lat/90
        [1.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, -1.0, -1.0],
    ]
    np.testing.assert_allclose(enc.numpy(), expected, atol=1e-6)


def _sinr_reference(state: dict[str, torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
    """SINR's ResidualFCNet forward (eval mode) written out from its published layout."""
    x, y = coords[:, 1] / 180.0, coords[:, 0] / 90.0
    h = torch.stack([torch.sin(math.pi * x), torch.sin(math.pi * y)], 1)
    h = torch.cat([h, torch.stack([torch.cos(math.pi * x), torch.cos(math.pi * y)], 1)], 1)
    h = torch.relu(h @ state["feats.0.weight"].T + state["feats.0.bias"])
    for layer in range(2, 6):
        p = f"feats.{layer}."
        inner = torch.relu(h @ state[p + "w1.weight"].T + state[p + "w1.bias"])
        h = h + torch.relu(inner @ state[p + "w2.weight"].T + state[p + "w2.bias"])
    return h


def _sinr_checkpoint(path: Path, n_classes: int = 7, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random checkpoint in the public SINR layout ({'params', 'state_dict'})."""
    gen = torch.Generator().manual_seed(seed)
    state = {
        "class_emb.weight": torch.randn(n_classes, 256, generator=gen) * 0.1,
        "feats.0.weight": torch.randn(256, 4, generator=gen) * 0.5,
        "feats.0.bias": torch.randn(256, generator=gen) * 0.1,
    }
    for layer in range(2, 6):
        for name in ("w1", "w2"):
            state[f"feats.{layer}.{name}.weight"] = torch.randn(256, 256, generator=gen) * 0.06
            state[f"feats.{layer}.{name}.bias"] = torch.randn(256, generator=gen) * 0.01
    params = {
        "model": "ResidualFCNet",
        "input_enc": "sin_cos",
        "input_dim": 4,
        "num_filts": 256,
        "depth": 4,
        "num_classes": n_classes,
        "class_to_taxa": list(range(100, 100 + n_classes)),
        "device": "cpu",
        "lr": 0.0005,
    }
    torch.save({"params": params, "state_dict": state}, path)
    return state


def test_sinr_checkpoint_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    state = _sinr_checkpoint(path)
    encoder = create_location_encoder("sinr", checkpoint=path)
    assert isinstance(encoder, SINREncoder)
    assert encoder.num_classes == 7 and not encoder.training
    with torch.inference_mode():
        got = encoder(COORDS)
        expected = _sinr_reference(state, COORDS)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
        logits = encoder.presence_logits(COORDS)
        np.testing.assert_allclose(
            logits.numpy(), (expected @ state["class_emb.weight"].T).numpy(), atol=1e-4
        )
    # Our own format keeps it exactly.
    saved = save_location_encoder(encoder, tmp_path / "sinr-copy")
    again = create_location_encoder("sinr", checkpoint=saved)
    with torch.inference_mode():
        np.testing.assert_array_equal(again(COORDS).numpy(), got.numpy())
    assert again.weights_id == encoder.weights_id


def test_sinr_checkpoint_errors(tmp_path: Path) -> None:
    path = tmp_path / "env.pt"
    state = _sinr_checkpoint(path)
    torch.save(
        {"params": {"input_enc": "env", "model": "ResidualFCNet"}, "state_dict": state}, path
    )
    with pytest.raises(InputError, match="env"):
        create_location_encoder("sinr", checkpoint=path)
    torch.save({"weights": state}, path)
    with pytest.raises(InputError, match="params"):
        create_location_encoder("sinr", checkpoint=path)
    with pytest.raises(WeightsNotFoundError):
        create_location_encoder("sinr", checkpoint=tmp_path / "missing.pt")
    with pytest.raises(WeightsNotFoundError, match="range_model"):
        create_location_encoder("sinr")
    with pytest.raises(WeightsNotFoundError, match="range_model"):
        create_or_pretrain_location_encoder("sinr")
    with pytest.raises(InputError, match="choose one of"):
        create_location_encoder("satmae")


# ------------------------------------------------------------ spherical harmonics


def _reference_sh(lat: np.ndarray, lon: np.ndarray, degrees: int) -> np.ndarray:
    """Real SH without the Condon-Shortley phase from scipy's complex ones (which have it)."""
    theta, phi = np.deg2rad(lat + 90.0), np.deg2rad(lon + 180.0)
    columns = []
    for n in range(degrees):
        for m in range(-n, n + 1):
            y = sph_harm_y(n, abs(m), theta, phi)
            if m == 0:
                columns.append(y.real)
            elif m > 0:
                columns.append(math.sqrt(2) * (-1) ** m * y.real)
            else:
                columns.append(math.sqrt(2) * (-1) ** m * y.imag)
    return np.stack(columns, axis=1)


def test_spherical_harmonics_known_values() -> None:
    sh = SphericalHarmonics(legendre_polys=10)
    assert sh.embedding_dim == 100
    lat = np.array([0.0, 45.0, -33.9, 89.9, -90.0, 12.3, 70.0])
    lon = np.array([0.0, 90.0, 151.2, -179.9, 180.0, -45.6, 20.0])
    got = sh(torch.tensor(np.stack([lat, lon], 1), dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got[:, 0], 1.0 / math.sqrt(4 * math.pi), rtol=1e-12)
    np.testing.assert_allclose(got, _reference_sh(lat, lon, 10), atol=1e-10)
    # Y_1^0 = sqrt(3/4π)·cos θ with θ = lat + 90°: -sqrt(3/4π) at the north pole.
    pole = sh(torch.tensor([[90.0, 0.0]], dtype=torch.float64)).numpy()
    assert pole[0, 2] == pytest.approx(-math.sqrt(3 / (4 * math.pi)))


def test_spherical_harmonics_are_orthonormal() -> None:
    n_theta = 180
    theta = (np.arange(n_theta) + 0.5) * math.pi / n_theta
    phi = (np.arange(2 * n_theta) + 0.5) * math.pi / n_theta
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    lat, lon = np.rad2deg(th.ravel()) - 90.0, np.rad2deg(ph.ravel()) - 180.0
    features = SphericalHarmonics(legendre_polys=8)(
        torch.tensor(np.stack([lat, lon], 1), dtype=torch.float64)
    ).numpy()
    weights = np.sin(th.ravel()) * (math.pi / n_theta) ** 2
    gram = features.T @ (features * weights[:, None])
    np.testing.assert_allclose(gram, np.eye(64), atol=2e-3)


def test_satclip_2023_convention_scales_m0_by_pi() -> None:
    coords = COORDS.double()
    plain = SphericalHarmonics(6)(coords).numpy()
    legacy = SphericalHarmonics(6, convention="satclip-2023")(coords).numpy()
    m0 = [n * n + n for n in range(6)]  # column of (l, m = 0)
    np.testing.assert_allclose(legacy[:, m0], math.pi * plain[:, m0])
    others = [c for c in range(36) if c not in m0]
    np.testing.assert_array_equal(legacy[:, others], plain[:, others])
    assert legacy[0, 0] == pytest.approx(0.886226925452758)  # SatCLIP's 2023 table, Y_0^0
    with pytest.raises(InputError, match="convention"):
        SphericalHarmonics(4, convention="wikipedia")


def test_satclip_checkpoint_round_trip(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(1)
    nnet = {
        "layers.0.weight": (torch.rand(32, 100, generator=gen) - 0.5) * 0.02,
        "layers.0.bias": (torch.rand(32, generator=gen) - 0.5) * 0.02,
        "layers.1.weight": (torch.rand(32, 32, generator=gen) - 0.5) * 0.8,
        "layers.1.bias": (torch.rand(32, generator=gen) - 0.5) * 0.8,
        "last_layer.weight": (torch.rand(16, 32, generator=gen) - 0.5) * 0.8,
        "last_layer.bias": (torch.rand(16, generator=gen) - 0.5) * 0.8,
    }
    state = {f"model.location.nnet.{k}": v.double() for k, v in nnet.items()}
    state |= {f"model.nnet.{k}": v.double() for k, v in nnet.items()}  # SatCLIP holds both
    state["model.visual.conv1.weight"] = torch.zeros(4, 4, 3, 3)
    state["model.logit_scale"] = torch.tensor(2.659)
    hparams = {
        "embed_dim": 16,
        "le_type": "sphericalharmonics",
        "pe_type": "siren",
        "legendre_polys": 10,
        "harmonics_calculation": "analytic",
        "num_hidden_layers": 2,
        "capacity": 32,
    }
    path = tmp_path / "satclip-resnet18-l10.ckpt"
    torch.save({"hyper_parameters": hparams, "state_dict": state, "epoch": 3}, path)
    encoder = create_location_encoder("satclip", checkpoint=path)
    assert isinstance(encoder, SatCLIPEncoder)
    assert (encoder.embed_dim, encoder.capacity, encoder.legendre_polys) == (16, 32, 10)
    assert encoder.posenc.convention == "satclip-2023"
    lat, lon = COORDS[:, 0].double().numpy(), COORDS[:, 1].double().numpy()
    features = _reference_sh(lat, lon, 10)
    m0 = [n * n + n for n in range(10)]
    features[:, m0] *= math.pi
    h = torch.tensor(features)
    h = torch.sin(30.0 * (h @ nnet["layers.0.weight"].double().T + nnet["layers.0.bias"]))
    h = torch.sin(h @ nnet["layers.1.weight"].double().T + nnet["layers.1.bias"])
    expected = h @ nnet["last_layer.weight"].double().T + nnet["last_layer.bias"]
    with torch.inference_mode():
        np.testing.assert_allclose(encoder(COORDS).numpy(), expected.numpy(), atol=1e-4)
    bare = tmp_path / "nnet.pt"
    torch.save({f"nnet.{k}": v for k, v in nnet.items()}, bare)
    plain = create_location_encoder("satclip", checkpoint=bare, convention="orthonormal")
    assert plain.posenc.convention == "orthonormal"
    torch.save({"state_dict": {"model.visual.w": torch.zeros(1)}}, bare)
    with pytest.raises(InputError, match="SIREN weights"):
        create_location_encoder("satclip", checkpoint=bare)


# ----------------------------------------------------------------- range pretraining


@pytest.fixture(scope="module")
def tiny_range_model() -> SyntheticRangeModel:
    return build_world("tiny", seed=0).range_model


@pytest.mark.learning
@pytest.mark.parametrize("kind", ["sinr", "satclip"])
def test_pretrained_range_encoder_predicts_presence(
    kind: str, tiny_range_model: SyntheticRangeModel
) -> None:
    encoder = pretrain_range_encoder(
        kind, tiny_range_model, n_points=6000, epochs=8, seed=0, num_threads=1
    )
    info = encoder.pretrain_info
    print(
        f"{kind}: val BCE {info['val_bce']:.4f} vs constant {info['val_bce_constant']:.4f}, "
        f"macro AUC {info['val_macro_auc']:.3f}, {info['seconds']} s"
    )
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    assert info["val_bce"] < info["val_bce_constant"]
    # Fresh points (another seed), scored independently of the training code.
    points = range_training_points(3000, seed=99)
    labels = checklists(tiny_range_model, points)
    with torch.inference_mode():
        scores = encoder.presence_logits(torch.from_numpy(points).float()).numpy()
    both = (labels.sum(axis=0) > 0) & (labels.sum(axis=0) < len(labels))
    auc = roc_auc_score(labels[:, both], scores[:, both], average="macro")
    print(f"{kind}: held-out macro AUC {auc:.3f} over {both.sum()} species")
    assert auc > 0.8
    # Cached: the same call returns the same weights without training again.
    again = create_or_pretrain_location_encoder(
        kind, range_model=tiny_range_model, n_points=6000, epochs=8, seed=0, num_threads=1
    )
    assert again.weights_id == encoder.weights_id
    # Gallery embeddings for retrieval: unit vectors, cached on disk.
    emb = gallery_embeddings(encoder, points[:50])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(gallery_embeddings(again, points[:50]), emb)


def test_saved_encoder_checksum_is_verified(tmp_path: Path) -> None:
    torch.manual_seed(0)
    saved = save_location_encoder(SatCLIPEncoder(legendre_polys=4, num_classes=3), tmp_path / "e")
    loaded = load_location_encoder_file(saved)
    assert isinstance(loaded, SatCLIPEncoder) and loaded.num_classes == 3
    saved.write_bytes(saved.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(InputError, match="checksum"):
        load_location_encoder_file(saved)


def test_agclip_target_from_a_sinr_checkpoint(tmp_path: Path) -> None:
    """Table 2: AG-CLIP's frozen target can be a user's SINR checkpoint (256-d features)."""
    from geoforensics.train.tasks.agclip import create_location_target, location_embeddings

    assert create_location_target("geoclip") is None  # the cached wheel encoder
    path = tmp_path / "sinr.pt"
    _sinr_checkpoint(path)
    target = create_location_target("sinr", checkpoint=path)
    assert target is not None
    emb = location_embeddings(np.array([[42.0, -71.0], [-33.9, 151.2]]), target)
    assert emb.shape == (2, 256)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not any(p.requires_grad for p in target.parameters())
