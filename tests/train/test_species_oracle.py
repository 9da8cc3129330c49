"""Species-oracle rows, learned on the tiny synthetic world: checklist -> GeoCLIP -> retrieval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geoforensics.core.data import INatSounds
from geoforensics.core.errors import InputError
from geoforensics.core.geo.gallery import Gallery, train_neighbour_gallery
from geoforensics.core.geo.metrics import geolocation_errors, geolocation_metrics
from geoforensics.core.species.checklists import checklists
from geoforensics.eval.baselines import naive_random_train_location
from geoforensics.train.tasks.species_oracle import (
    OracleResult,
    predict_locations,
    run_species_oracle,
    train_species_oracle,
)


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> Path:
    return tiny_world


@pytest.fixture(scope="module")
def gallery(world: Path) -> Gallery:
    """H3 res-3 cells (~60 km) around the train locations: small, so embedding is instant."""
    train = INatSounds(world, "train", require_audio=False)
    return train_neighbour_gallery(train.coords(), res=3, k=1)


@pytest.fixture(scope="module")
def oracle(world: Path, gallery: Gallery) -> dict[str, OracleResult]:
    return run_species_oracle(world, gallery=gallery, seed=0, max_epochs=100)


@pytest.mark.learning
def test_oracle_rows_beat_the_naive_baseline(
    world: Path, gallery: Gallery, oracle: dict[str, OracleResult]
) -> None:
    train = INatSounds(world, "train", require_audio=False)
    test = INatSounds(world, "test", require_audio=False)
    naive = geolocation_metrics(
        naive_random_train_location(train.coords(), len(test), seed=0), test.coords()
    )
    full, drop50, keep10 = oracle["full"], oracle["drop50"], oracle["keep10"]
    print(
        f"SYNTHETIC tiny world, {len(test)} test recordings, gallery {len(gallery)} cells: "
        f"naive {naive.median_km:.0f} km, oracle full {full.metrics.median_km:.0f} km, "
        f"drop50 {drop50.metrics.median_km:.0f} km, keep10 {keep10.metrics.median_km:.0f} km"
    )
    assert list(oracle) == ["full", "drop50", "keep10"]
    # The full oracle beats naive by a wide margin.
    assert full.metrics.median_km < naive.median_km / 10
    assert full.metrics.accuracy[750.0] > naive.accuracy[750.0] + 0.4
    # Corrupted checklists lose information: worse than full, still far better than naive.
    assert drop50.checklist_sizes["mean"] < full.checklist_sizes["mean"]
    assert drop50.metrics.median_km > full.metrics.median_km
    assert drop50.metrics.mean_km > full.metrics.mean_km
    assert drop50.metrics.median_km < naive.median_km / 5
    # No tiny-world checklist has more than 10 species, so keep10 is the full checklist.
    assert full.checklist_sizes["max"] <= 10
    np.testing.assert_array_equal(keep10.predictions, full.predictions)


def test_oracle_outputs_are_consistent(
    world: Path, gallery: Gallery, oracle: dict[str, OracleResult]
) -> None:
    test = INatSounds(world, "test", require_audio=False)
    for result in oracle.values():
        assert result.predictions.shape == (len(test), 2)
        np.testing.assert_allclose(
            result.errors_km, geolocation_errors(result.predictions, test.coords())
        )
        assert result.metrics.count == len(test) and result.metrics.n_invalid == 0
        # Every prediction is a gallery location.
        on_gallery = (result.predictions[:, None, :] == gallery.coords[None]).all(-1).any(1)
        assert on_gallery.all()
        assert result.training["gallery_size"] == len(gallery)
        assert 1 <= result.training["best_epoch"] <= result.training["max_epochs"]


def test_training_keeps_the_best_validation_round(world: Path, gallery: Gallery) -> None:
    from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings, embed_locations
    from geoforensics.core.synth import SyntheticRangeModel

    ranges = SyntheticRangeModel.load(world)
    train = INatSounds(world, "train", require_audio=False).coords()
    val = INatSounds(world, "val", require_audio=False).coords()
    train_lists, val_lists = checklists(ranges, train), checklists(ranges, val)
    gallery_emb = cached_gallery_embeddings(gallery)
    model, info = train_species_oracle(
        train_lists, embed_locations(train), train, val_lists, embed_locations(val), val,
        gallery.coords, gallery_emb, max_epochs=30, check_val_every_n_epoch=3,
    )  # fmt: skip
    assert info["monitor"] == "val_median_km" and info["best_epoch"] % 3 == 0
    # The returned weights are those of the best round, whichever round came last.
    predictions = predict_locations(model, val_lists, gallery.coords, gallery_emb)
    median = geolocation_metrics(predictions, val).median_km
    assert median == pytest.approx(info["best_score"], rel=1e-4)


@pytest.mark.learning
def test_matched_training_helps_the_corrupted_variant(
    world: Path, gallery: Gallery, oracle: dict[str, OracleResult]
) -> None:
    matched = run_species_oracle(
        world, gallery=gallery, variants=("drop50",), seed=0, max_epochs=100, train_matched=True
    )["drop50"]
    print(
        f"drop50 median: oracle trained on full checklists {oracle['drop50'].metrics.median_km:.0f}"
        f" km, trained on drop50 checklists {matched.metrics.median_km:.0f} km"
    )
    assert matched.training["train_variant"] == "drop50"
    # Same test checklists (seeded by the variant's name), only the training differs.
    assert matched.checklist_sizes == oracle["drop50"].checklist_sizes
    assert matched.metrics.median_km < oracle["drop50"].metrics.median_km


def test_unknown_variant_fails_before_training(world: Path, gallery: Gallery) -> None:
    with pytest.raises(InputError, match="checklist variant"):
        run_species_oracle(world, gallery=gallery, variants=("full", "half"))
