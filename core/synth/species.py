"""Synthetic species: names, taxonomy, and procedural calls.

Every species has a call described by :class:`CallParams` (frequency band, sweep shape,
syllable duration and rate, phrase structure, harmonics, amplitude modulation). Species of one
genus share a call template with small perturbations, so congeners sound alike and the task is
not solved by the call alone; :mod:`.ranges` gives congeners different ranges.

Calls are synthesised with vectorised numpy: one phrase template per species and recording,
then copies of it are placed along the recording.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Sweep shapes of a syllable's fundamental frequency.
SHAPES: tuple[str, ...] = ("up", "down", "flat", "v", "hump", "trill")
#: Highest frequency any partial may reach (Hz); the audio is 22,050 Hz (Nyquist 11,025).
MAX_PARTIAL_HZ = 10_500.0

# supercategory -> (share of species, class, phylum, orders, activity pattern)
_GROUPS: dict[str, tuple[float, str, str, tuple[str, ...], str]] = {
    "Aves": (
        0.68,
        "Aves",
        "Chordata",
        ("Passeriformes", "Piciformes", "Strigiformes", "Columbiformes", "Charadriiformes"),
        "dawn",
    ),
    "Insecta": (0.16, "Insecta", "Arthropoda", ("Orthoptera", "Hemiptera"), "dusk"),
    "Amphibia": (0.11, "Amphibia", "Chordata", ("Anura",), "night"),
    "Mammalia": (0.05, "Mammalia", "Chordata", ("Carnivora", "Chiroptera", "Primates"), "night"),
}

_ONSETS: tuple[str, ...] = (
    "br",
    "c",
    "ch",
    "d",
    "f",
    "g",
    "gl",
    "k",
    "l",
    "m",
    "n",
    "p",
    "ph",
    "r",
    "s",
    "t",
    "th",
    "tr",
    "v",
    "x",
    "z",
    "sc",
    "st",
)
_VOWELS = ("a", "e", "i", "o", "u", "ae", "ia", "io", "y")
_GENUS_ENDINGS = ("us", "a", "ops", "ix", "ornis", "ella", "ichla", "onyx", "ax", "ila")
_EPITHET_ENDINGS = ("us", "a", "is", "ensis", "ii", "oides", "atus", "ina", "icola", "ata")
_ADJECTIVES = (
    "Ashy Azure Banded Bluish Bronzed Buff Cinnamon Collared Crested Dusky Golden Grey Hooded "
    "Lesser Greater Masked Olive Pale Plain Rufous Scaly Slaty Sooty Spotted Striped Tawny "
    "Velvet White-throated Yellow-bellied Ochre Chestnut Black-capped Long-tailed Short-billed "
    "Marsh Forest Mountain Desert River Meadow Cliff Reed Lowland Highland"
).split()
_NOUNS = {
    "Aves": "Warbler Thrush Finch Wren Babbler Tanager Sparrow Owl Dove Plover Flycatcher Vireo"
    " Woodpecker Lark Pipit Shrike Bulbul Robin Chat Oriole".split(),
    "Insecta": "Cricket Katydid Cicada Bush-cricket Grasshopper Treehopper".split(),
    "Amphibia": "Frog Treefrog Toad Chorus-frog Peeper".split(),
    "Mammalia": "Fox Bat Monkey Jackal Squirrel Deer".split(),
}


@dataclass(frozen=True)
class CallParams:
    """A species' call.

    The fundamental of every syllable stays inside ``[f_lo, f_hi]`` Hz (the declared band) and
    follows ``shape``; ``harmonics`` are the relative amplitudes (< 1) of partials 2, 3, ...
    A phrase is ``n_syllables`` syllables of ``syllable_s`` seconds separated by
    ``syllable_gap_s``; phrases are separated by about ``phrase_gap_s`` of silence.
    """

    f_lo: float
    f_hi: float
    shape: str
    syllable_s: float
    syllable_gap_s: float
    n_syllables: int
    phrase_gap_s: float
    harmonics: tuple[float, ...]
    am_depth: float
    am_rate_hz: float
    trill_rate_hz: float

    @property
    def phrase_s(self) -> float:
        """Duration of one phrase in seconds."""
        return self.n_syllables * self.syllable_s + (self.n_syllables - 1) * self.syllable_gap_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        data["harmonics"] = list(self.harmonics)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallParams:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["harmonics"] = tuple(float(h) for h in values["harmonics"])
        return cls(**values)


@dataclass(frozen=True)
class Species:
    """One synthetic species with taxonomy, call, activity pattern and abundance.

    ``activity`` is ``dawn`` (a dawn chorus peak and a smaller dusk one), ``dusk`` or ``night``;
    ``abundance`` weights how often the species is the focal one where it is present.
    """

    index: int
    category_id: int
    scientific_name: str
    common_name: str
    supercategory: str
    kingdom: str
    phylum: str
    taxon_class: str
    order: str
    family: str
    genus: str
    specific_epithet: str
    call: CallParams
    activity: str
    abundance: float

    def taxonomy(self) -> dict[str, Any]:
        """The iNatSounds category entry for this species."""
        return {
            "id": self.category_id,
            "name": self.scientific_name,
            "common_name": self.common_name,
            "supercategory": self.supercategory,
            "kingdom": self.kingdom,
            "phylum": self.phylum,
            "class": self.taxon_class,
            "order": self.order,
            "family": self.family,
            "genus": self.genus,
            "specific_epithet": self.specific_epithet,
        }

    def folder_name(self) -> str:
        """Folder name in the iNatSounds style, e.g. ``00012_Aves_Passeriformes_..._merula``."""
        parts = (self.supercategory, self.order, self.family, self.genus, self.specific_epithet)
        return f"{self.category_id:05d}_" + "_".join(parts)


def activity_level(activity: str, hour: np.ndarray | float) -> np.ndarray:
    """Calling activity (0.2-1) by local hour for an activity pattern: the dawn peak is here."""
    h = np.asarray(hour, dtype=np.float64)

    def bump(centre: float, width: float) -> np.ndarray:
        d = np.abs(np.mod(h - centre + 12.0, 24.0) - 12.0)
        return np.exp(-0.5 * (d / width) ** 2)

    if activity == "dawn":
        level = 0.2 + 0.8 * np.maximum(bump(6.0, 1.5), 0.5 * bump(18.5, 1.2))
    elif activity == "dusk":
        level = 0.2 + 0.8 * np.maximum(bump(20.0, 2.0), 0.6 * bump(14.0, 3.0))
    else:
        level = 0.2 + 0.8 * bump(23.0, 3.0)
    return np.asarray(level)


def _word(rng: np.random.Generator, syllables: int, endings: tuple[str, ...]) -> str:
    stem = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
    return stem + str(rng.choice(endings))


def _group_template(rng: np.random.Generator, group: str) -> dict[str, Any]:
    """A genus-level call template for a supercategory."""
    if group == "Aves":
        centre = float(np.exp(rng.uniform(np.log(1200), np.log(7500))))
        shape = str(rng.choice(SHAPES))
        syl = float(np.exp(rng.uniform(np.log(0.03), np.log(0.22))))
        n_syl = int(rng.integers(1, 9))
        harmonics = tuple(float(a) for a in rng.uniform(0.05, 0.5, int(rng.integers(0, 3))))
        bw = float(rng.uniform(0.15, 0.8))
    elif group == "Insecta":
        centre = float(np.exp(rng.uniform(np.log(2800), np.log(8500))))
        shape = str(rng.choice(("flat", "trill", "flat", "up")))
        syl = float(rng.uniform(0.008, 0.04))
        n_syl = int(rng.integers(6, 30))
        harmonics = tuple(float(a) for a in rng.uniform(0.05, 0.3, int(rng.integers(0, 2))))
        bw = float(rng.uniform(0.03, 0.2))
    elif group == "Amphibia":
        centre = float(np.exp(rng.uniform(np.log(400), np.log(3000))))
        shape = str(rng.choice(("flat", "trill", "up", "hump")))
        syl = float(rng.uniform(0.02, 0.18))
        n_syl = int(rng.integers(2, 14))
        harmonics = tuple(float(a) for a in rng.uniform(0.2, 0.7, int(rng.integers(1, 4))))
        bw = float(rng.uniform(0.05, 0.35))
    else:
        centre = float(np.exp(rng.uniform(np.log(300), np.log(2500))))
        shape = str(rng.choice(("down", "hump", "v", "flat")))
        syl = float(rng.uniform(0.08, 0.45))
        n_syl = int(rng.integers(1, 5))
        harmonics = tuple(float(a) for a in rng.uniform(0.2, 0.7, int(rng.integers(2, 5))))
        bw = float(rng.uniform(0.1, 0.6))
    if shape == "flat":
        bw = min(bw, 0.08)
    return {
        "centre": centre,
        "bandwidth": bw,
        "shape": shape,
        "syllable_s": syl,
        "syllable_gap_ratio": float(rng.uniform(0.3, 1.5)),
        "n_syllables": n_syl,
        "phrase_gap_s": float(rng.uniform(0.3, 1.6)),
        "harmonics": harmonics,
        "am_depth": float(rng.choice([0.0, rng.uniform(0.2, 0.9)])),
        "am_rate_hz": float(rng.uniform(20.0, 120.0)),
        "trill_rate_hz": float(rng.uniform(8.0, 40.0)),
    }


def _perturbed_call(rng: np.random.Generator, template: dict[str, Any], shift: float) -> CallParams:
    """A species call: the genus template shifted in frequency and jittered in timing."""
    centre = template["centre"] * shift
    half = template["bandwidth"] / 2.0 * rng.uniform(0.85, 1.15)
    f_lo = max(150.0, centre * (1.0 - half))
    f_hi = min(MAX_PARTIAL_HZ * 0.93, centre * (1.0 + half))
    syl = template["syllable_s"] * rng.uniform(0.85, 1.15)
    n_syl = max(1, round(template["n_syllables"] * rng.uniform(0.8, 1.25)))
    gap = syl * template["syllable_gap_ratio"] * rng.uniform(0.85, 1.15)
    phrase = n_syl * syl + (n_syl - 1) * gap
    if phrase > 2.4:  # keep phrases short enough to repeat inside a 3 s window
        n_syl = max(1, int((2.4 + gap) // (syl + gap)))
    harmonics = tuple(
        float(a) for k, a in enumerate(template["harmonics"], start=2) if k * f_hi < MAX_PARTIAL_HZ
    )
    return CallParams(
        f_lo=round(float(f_lo), 2),
        f_hi=round(float(f_hi), 2),
        shape=template["shape"],
        syllable_s=round(float(syl), 4),
        syllable_gap_s=round(float(gap), 4),
        n_syllables=n_syl,
        phrase_gap_s=round(float(template["phrase_gap_s"] * rng.uniform(0.8, 1.2)), 3),
        harmonics=tuple(round(a, 3) for a in harmonics),
        am_depth=round(float(template["am_depth"]), 3),
        am_rate_hz=round(float(template["am_rate_hz"] * rng.uniform(0.9, 1.1)), 2),
        trill_rate_hz=round(float(template["trill_rate_hz"] * rng.uniform(0.9, 1.1)), 2),
    )


def make_species(rng: np.random.Generator, n_species: int) -> list[Species]:
    """``n_species`` species in genera of 1-4, with taxonomy and calls.

    Category ids are contiguous from 0 in taxonomic order (supercategory, order, family,
    genus, epithet), as in iNatSounds, so a species' index equals its category id.
    """
    groups = list(_GROUPS)
    shares = np.array([_GROUPS[g][0] for g in groups])
    drafts: list[dict[str, Any]] = []
    used_names: set[str] = set()
    used_genera: set[str] = set()
    while len(drafts) < n_species:
        group = groups[int(rng.choice(len(groups), p=shares / shares.sum()))]
        _, taxon_class, phylum, orders, activity = _GROUPS[group]
        order = str(rng.choice(orders))
        genus = _word(rng, int(rng.integers(1, 3)), _GENUS_ENDINGS).capitalize()
        if genus in used_genera:
            continue
        used_genera.add(genus)
        family = genus[: max(3, len(genus) - 2)].rstrip("aeiouy") + "idae"
        template = _group_template(rng, group)
        size = min(int(rng.choice([1, 1, 2, 2, 3, 4])), n_species - len(drafts))
        # Congeners: frequency shifts about 7 % apart, so they are similar but separable.
        offsets = np.arange(size) - (size - 1) / 2.0
        shifts = rng.uniform(0.95, 1.05) * (1.0 + 0.07 * offsets) * rng.uniform(0.99, 1.01, size)
        noun = str(rng.choice(_NOUNS[group]))
        for k in range(size):
            epithet = _word(rng, int(rng.integers(1, 3)), _EPITHET_ENDINGS).lower()
            name = f"{genus} {epithet}"
            if name in used_names:
                epithet = epithet + "i"
                name = f"{genus} {epithet}"
            used_names.add(name)
            drafts.append(
                {
                    "supercategory": group,
                    "taxon_class": taxon_class,
                    "phylum": phylum,
                    "order": order,
                    "family": family,
                    "genus": genus,
                    "specific_epithet": epithet,
                    "scientific_name": name,
                    "common_name": f"{rng.choice(_ADJECTIVES)} {noun}",
                    "call": _perturbed_call(rng, template, float(shifts[k])),
                    "activity": activity
                    if rng.uniform() < 0.85
                    else str(rng.choice(["dawn", "dusk"])),
                    "abundance": round(float(np.exp(rng.normal(0.0, 0.8))), 4),
                }
            )
    drafts.sort(
        key=lambda d: (
            d["supercategory"],
            d["order"],
            d["family"],
            d["genus"],
            d["specific_epithet"],
        )
    )
    return [
        Species(index=i, category_id=i, kingdom="Animalia", **draft)
        for i, draft in enumerate(drafts)
    ]


def _instantaneous_frequency(call: CallParams, u: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Fundamental frequency along a syllable; ``u`` is position 0-1, ``t`` seconds."""
    lo, hi = call.f_lo, call.f_hi
    if call.shape == "up":
        f = lo + (hi - lo) * u
    elif call.shape == "down":
        f = hi - (hi - lo) * u
    elif call.shape == "v":
        f = lo + (hi - lo) * np.abs(2.0 * u - 1.0)
    elif call.shape == "hump":
        f = hi - (hi - lo) * np.abs(2.0 * u - 1.0)
    elif call.shape == "trill":
        f = (lo + hi) / 2.0 + (hi - lo) / 2.0 * np.sin(2 * np.pi * call.trill_rate_hz * t)
    else:  # flat, with a slight drift across the band
        f = lo + (hi - lo) * (0.5 + 0.5 * np.sin(np.pi * (u - 0.5)))
    return f


def render_phrase(
    call: CallParams,
    sample_rate: int,
    rng: np.random.Generator | None = None,
    jitter: float = 0.02,
) -> np.ndarray:
    """One phrase of a call as float32 with peak 1.

    With ``rng``, an individual's variation is applied (frequencies scaled by up to
    ±``jitter``, then clipped back into the declared band; timing ±5 %), so two renderings of
    one species differ slightly, as two birds of a species do.
    """
    f_scale = 1.0
    t_scale = 1.0
    if rng is not None:
        f_scale = float(np.clip(1.0 + rng.normal(0.0, jitter / 2.0), 1.0 - jitter, 1.0 + jitter))
        t_scale = float(np.clip(1.0 + rng.normal(0.0, 0.03), 0.95, 1.05))
    syl_n = max(8, round(call.syllable_s * t_scale * sample_rate))
    gap_n = round(call.syllable_gap_s * t_scale * sample_rate)
    t = np.arange(syl_n, dtype=np.float64) / sample_rate
    u = t / max(t[-1], 1e-9)
    f0 = np.clip(_instantaneous_frequency(call, u, t) * f_scale, call.f_lo, call.f_hi)
    phase = 2.0 * np.pi * np.cumsum(f0) / sample_rate
    syllable = np.sin(phase)
    for k, amp in enumerate(call.harmonics, start=2):
        syllable += amp * np.sin(k * phase)
    # Smooth onset and offset (a Tukey-like envelope) and optional amplitude modulation.
    ramp = max(2, min(syl_n // 4, int(0.008 * sample_rate)))
    env = np.ones(syl_n)
    window = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    env[:ramp] = window
    env[-ramp:] = window[::-1]
    if call.am_depth > 0:
        env *= 1.0 - call.am_depth * (0.5 + 0.5 * np.sin(2 * np.pi * call.am_rate_hz * t))
    syllable *= env
    n_total = call.n_syllables * syl_n + (call.n_syllables - 1) * gap_n
    phrase = np.zeros(n_total, dtype=np.float32)
    # Later syllables slightly softer, as in many songs.
    for k in range(call.n_syllables):
        start = k * (syl_n + gap_n)
        phrase[start : start + syl_n] = syllable * (1.0 - 0.25 * k / max(1, call.n_syllables))
    peak = float(np.max(np.abs(phrase)))
    return phrase / np.float32(max(peak, 1e-9))


def lowpass_template(template: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """A distant singer: first-order low-pass (applied twice) of a call template."""
    from scipy.signal import lfilter

    alpha = float(np.exp(-2.0 * np.pi * cutoff_hz / sample_rate))
    once = lfilter([1.0 - alpha], [1.0, -alpha], template)
    return np.asarray(lfilter([1.0 - alpha], [1.0, -alpha], once), dtype=np.float32)


def species_to_dict(species: Species) -> dict[str, Any]:
    """JSON-ready description of a species (for ``world/species.json``)."""
    return {
        "index": species.index,
        "category_id": species.category_id,
        "scientific_name": species.scientific_name,
        "common_name": species.common_name,
        "taxonomy": {
            "supercategory": species.supercategory,
            "kingdom": species.kingdom,
            "phylum": species.phylum,
            "class": species.taxon_class,
            "order": species.order,
            "family": species.family,
            "genus": species.genus,
            "specific_epithet": species.specific_epithet,
        },
        "call": species.call.to_dict(),
        "activity": species.activity,
        "abundance": species.abundance,
    }
