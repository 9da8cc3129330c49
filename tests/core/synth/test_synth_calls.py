"""Synthetic species calls: declared bands are respected and species sound different."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from geoforensics.core.synth import SAMPLE_RATE, SHAPES, CallParams, activity_level, render_phrase
from geoforensics.core.synth.species import MAX_PARTIAL_HZ, Species, make_species


@pytest.fixture(scope="module")
def species() -> list[Species]:
    return make_species(np.random.default_rng(11), 80)


def _spectrum(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = 1 << int(np.ceil(np.log2(max(len(audio), 4096))))
    power = np.abs(np.fft.rfft(audio, n)) ** 2
    return np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE), power


def _features(audio: np.ndarray) -> np.ndarray:
    """Log power in 48 log-spaced bands plus a coarse temporal profile (a call's fingerprint)."""
    freqs, power = _spectrum(audio)
    edges = np.geomspace(100.0, 11_000.0, 49)
    bands = np.array(
        [power[(freqs >= lo) & (freqs < hi)].sum() + 1e-12 for lo, hi in itertools.pairwise(edges)]
    )
    spectral = np.log(bands / bands.sum())
    return spectral - spectral.mean()


def test_dominant_frequency_lies_in_declared_band(species: list[Species]) -> None:
    rng = np.random.default_rng(0)
    for sp in species:
        phrase = render_phrase(sp.call, SAMPLE_RATE, rng)
        freqs, power = _spectrum(phrase)
        peak = freqs[int(np.argmax(power))]
        # A tone lasting T seconds has a spectral width of about 1/T Hz.
        tolerance = 1.0 / sp.call.syllable_s + 2 * SAMPLE_RATE / (2 * (len(power) - 1))
        assert sp.call.f_lo - tolerance <= peak <= sp.call.f_hi + tolerance, (
            sp.scientific_name,
            sp.call,
            peak,
        )


def test_partials_stay_below_nyquist(species: list[Species]) -> None:
    for sp in species:
        top = sp.call.f_hi * (len(sp.call.harmonics) + 1)
        assert top < MAX_PARTIAL_HZ < SAMPLE_RATE / 2


def test_phrase_shape_length_and_peak(species: list[Species]) -> None:
    call = species[0].call
    phrase = render_phrase(call, SAMPLE_RATE)
    assert phrase.dtype == np.float32
    assert abs(float(np.max(np.abs(phrase))) - 1.0) < 1e-6
    assert abs(len(phrase) / SAMPLE_RATE - call.phrase_s) < 0.01
    # Every phrase fits inside a 3 s window, so repeated calls show up in windows.
    assert all(sp.call.phrase_s <= 2.5 for sp in species)


def test_same_rng_same_call_individuals_differ(species: list[Species]) -> None:
    call = species[3].call
    a = render_phrase(call, SAMPLE_RATE, np.random.default_rng(5))
    b = render_phrase(call, SAMPLE_RATE, np.random.default_rng(5))
    c = render_phrase(call, SAMPLE_RATE, np.random.default_rng(6))
    assert np.array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


def test_species_are_identifiable_from_their_calls(species: list[Species]) -> None:
    """Two individuals of a species sound more alike than individuals of different species."""
    reference = np.stack(
        [_features(render_phrase(sp.call, SAMPLE_RATE, np.random.default_rng(1))) for sp in species]
    )
    other = np.stack(
        [_features(render_phrase(sp.call, SAMPLE_RATE, np.random.default_rng(2))) for sp in species]
    )
    dist = ((other[:, None, :] - reference[None, :, :]) ** 2).sum(-1)
    accuracy = float(np.mean(dist.argmin(axis=1) == np.arange(len(species))))
    assert accuracy >= 0.85


def test_distinct_genera_differ_in_band_congeners_are_close(species: list[Species]) -> None:
    centroids = []
    for sp in species:
        freqs, power = _spectrum(render_phrase(sp.call, SAMPLE_RATE))
        centroids.append(float((freqs * power).sum() / power.sum()))
    centroid = np.array(centroids)
    genus = np.array([sp.genus for sp in species])
    log_c = np.log(centroid)
    diff = np.abs(log_c[:, None] - log_c[None, :])
    same = (genus[:, None] == genus[None, :]) & ~np.eye(len(species), dtype=bool)
    different = genus[:, None] != genus[None, :]
    assert same.any()
    # Congeners: similar (median centroid gap well under that of unrelated species) ...
    assert np.median(diff[same]) < 0.5 * np.median(diff[different])
    # ... but not identical: their declared bands are shifted.
    for i, j in zip(*np.nonzero(np.triu(same)), strict=True):
        mid_i = (species[i].call.f_lo + species[i].call.f_hi) / 2
        mid_j = (species[j].call.f_lo + species[j].call.f_hi) / 2
        assert abs(np.log(mid_i / mid_j)) > 0.03
    # Unrelated species span a wide range of pitches.
    assert centroid.max() / centroid.min() > 8


def test_species_metadata_is_consistent(species: list[Species]) -> None:
    names = [sp.scientific_name for sp in species]
    assert len(set(names)) == len(names)
    assert [sp.category_id for sp in species] == list(range(len(species)))
    for sp in species:
        assert sp.scientific_name == f"{sp.genus} {sp.specific_epithet}"
        assert sp.call.shape in SHAPES
        assert 0 < sp.call.f_lo < sp.call.f_hi
        assert sp.folder_name().startswith(f"{sp.category_id:05d}_{sp.supercategory}_")
    assert {sp.supercategory for sp in species} >= {"Aves", "Insecta", "Amphibia"}
    assert len({sp.call.shape for sp in species}) >= 5


def test_call_params_round_trip(species: list[Species]) -> None:
    call = species[7].call
    assert CallParams.from_dict(call.to_dict()) == call


def test_dawn_peak_in_activity() -> None:
    dawn = activity_level("dawn", np.array([6.0, 13.0, 0.5]))
    assert dawn[0] > 0.9 and dawn[0] > 2 * dawn[1] and dawn[0] > 2 * dawn[2]
    night = activity_level("night", np.array([23.0, 12.0]))
    assert night[0] > 2 * night[1]
