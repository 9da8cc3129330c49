"""Scientific-name normalisation, matching across taxonomies, species-list parsing."""

from __future__ import annotations

import numpy as np
import pytest

from geoforensics.core.errors import InputError
from geoforensics.core.species.names import (
    match_species,
    normalise_name,
    parse_species_list,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Setophaga petechia", "Setophaga petechia"),
        ("  setophaga   PETECHIA ", "Setophaga petechia"),
        ("Setophaga\u00a0petechia", "Setophaga petechia"),
        ("Setophaga petechia_Yellow Warbler", "Setophaga petechia"),  # BirdNET label
        ("Setophaga petechia aestiva", "Setophaga petechia"),  # subspecies
        ("Motacilla alba ssp. yarrellii", "Motacilla alba"),
        ("Turdus merula Linnaeus, 1758", "Turdus merula"),  # authority
        ("Parus major (Linnaeus, 1758)", "Parus major"),
        ('"Parus major"', "Parus major"),
        ("Mentha × piperita", "Mentha piperita"),  # nothospecies
        ("Mentha x piperita", "Mentha piperita"),
        ("Mentha ×piperita", "Mentha piperita"),
        ("× Agropogon littoralis", "Agropogon littoralis"),  # nothogenus
        ("Vermivora chrysoptera × cyanoptera", "Vermivora chrysoptera x cyanoptera"),
        ("Anas platyrhynchos x Anas rubripes", "Anas platyrhynchos x Anas rubripes"),
        ("Buteo cf. buteo", "Buteo buteo"),
        ("Turdus sp.", "Turdus sp."),
        ("Dog", "Dog"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalise_name(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_match_species_reports_unmatched() -> None:
    taxonomy = ["Setophaga petechia", "Turdus merula", "Parus major", "Dog"]
    names = [
        "turdus merula",
        "Setophaga petechia aestiva",
        "Nonexistens avis",
        "Parus major Linnaeus, 1758",
        "Vermivora chrysoptera x cyanoptera",
    ]
    match = match_species(names, taxonomy)
    assert match.indices.dtype == np.int64
    assert match.indices.tolist() == [1, 0, -1, 2, -1]
    assert match.matched == ["Turdus merula", "Setophaga petechia", "Parus major"]
    assert match.unmatched == ["Nonexistens avis", "Vermivora chrysoptera x cyanoptera"]
    assert match.matched_indices.tolist() == [1, 0, 2]
    assert len(match) == 5 and match.names == names


def test_match_species_common_names_and_duplicates() -> None:
    taxonomy = ["Setophaga petechia_Yellow Warbler", "Turdus merula", "turdus MERULA"]
    common = ["Yellow Warbler", "Eurasian Blackbird", "Blackbird again"]
    match = match_species(["yellow  warbler", "Turdus merula"], taxonomy, common_names=common)
    assert match.indices.tolist() == [0, 1]  # first duplicate wins
    assert match.matched == ["Setophaga petechia_Yellow Warbler", "Turdus merula"]
    assert match_species(["Yellow Warbler"], taxonomy).unmatched == ["Yellow Warbler"]
    with pytest.raises(InputError, match="common names"):
        match_species(["x"], taxonomy, common_names=common[:2])
    empty = match_species([], taxonomy)
    assert empty.indices.shape == (0,) and empty.matched == [] and empty.unmatched == []


def test_parse_species_list() -> None:
    assert parse_species_list("Setophaga petechia; Turdus merula") == [
        "Setophaga petechia",
        "Turdus merula",
    ]
    assert parse_species_list(" ;Parus  major;;\nTurdus merula\n; parus major ssp. x;") == [
        "Parus major",
        "Turdus merula",
    ]
    assert parse_species_list("") == []
