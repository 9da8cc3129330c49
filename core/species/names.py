"""Scientific names: one canonical form, matching across taxonomies, species-list parsing.

BirdNET, SINR and the datasets spell species differently: BirdNET labels carry a common
name (``"Setophaga petechia_Yellow Warbler"``), datasets may give subspecies
(``"Setophaga petechia aestiva"``), authorities (``"Turdus merula Linnaeus, 1758"``), odd
case or spacing, or nothospecies signs (``"Mentha × piperita"``). :func:`normalise_name`
reduces all of these to ``"Genus epithet"``; :func:`match_species` maps names onto a
taxonomy through that form and reports what did not match, so a caller can say which
species it had to ignore instead of silently dropping them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from geoforensics.core.errors import InputError

#: Hybrid signs: the multiplication sign, and a lone ``x`` / ``X`` between name parts.
_HYBRID_SIGNS = ("\u00d7", "\u2715", "\u2a2f")
#: Qualifiers between genus and epithet that do not change the species meant.
_QUALIFIERS = {"cf.", "cf", "aff.", "aff", "nr.", "nr", "?"}
#: Rank markers after which the rest of a name is infraspecific (dropped).
_RANK_MARKERS = {
    "ssp.",
    "ssp",
    "subsp.",
    "subsp",
    "var.",
    "var",
    "f.",
    "forma",
    "morph",
    "group",
}
#: Genus-level placeholders: the name names no single species.
_GENUS_ONLY = {"sp.", "sp", "spp.", "spp"}
_WORD = re.compile(r"^[a-z][a-z\-]*$")


def normalise_name(name: str) -> str:
    """Canonical ``"Genus epithet"`` of a scientific name (``""`` when there is none).

    - a BirdNET-style ``"Scientific_Common"`` label keeps its scientific part;
    - Unicode is NFKC-normalised, whitespace collapsed, quotes and brackets removed;
    - case is fixed: genus capitalised, epithet lower case (``"TURDUS MERULA"``);
    - ``cf.`` / ``aff.`` qualifiers and a nothospecies sign (``"Mentha × piperita"``,
      ``"Mentha x piperita"``, ``"×Agropogon littoralis"``) are dropped;
    - subspecies, rank markers (``ssp.``, ``var.``) and authorities are trimmed, leaving the
      binomial;
    - a hybrid formula between two species (``"Vermivora chrysoptera × cyanoptera"``) stays a
      formula (``"Vermivora chrysoptera x cyanoptera"``), so it never matches either parent;
    - ``"Genus sp."`` becomes ``"Genus sp."`` (a genus, not a species);
    - a one-word label (BirdNET's ``"Dog"``, ``"Engine"``) is kept, capitalised.
    """
    text = unicodedata.normalize("NFKC", str(name)).split("_", 1)[0]
    for sign in _HYBRID_SIGNS:
        text = text.replace(sign, " × ")
    text = re.sub(r"[\"'`()\[\]{}]", " ", text)
    tokens = [t.strip(",;:") for t in text.split()]
    tokens = [t for t in tokens if t]
    # A lone x / X between words is a hybrid sign too.
    tokens = ["×" if t in ("x", "X") and 0 < i else t for i, t in enumerate(tokens)]
    if tokens and tokens[0] == "×":  # nothogenus: "× Genus epithet"
        tokens = tokens[1:]
    if not tokens:
        return ""
    genus = tokens[0].capitalize()
    rest = [t for t in tokens[1:] if t.lower() not in _QUALIFIERS]
    if rest and rest[0] == "×":  # nothospecies: "Genus × epithet"
        rest = rest[1:]
    if not rest:
        return genus
    epithet = rest[0].lower()
    if epithet in _GENUS_ONLY:
        return f"{genus} sp."
    if not _WORD.match(epithet):  # an authority or a number right after the genus
        return genus
    binomial = f"{genus} {epithet}"
    tail = rest[1:]
    if len(tail) >= 2 and tail[0] == "×":
        second = tail[1]
        if second[:1].isupper() and len(tail) >= 3 and _WORD.match(tail[2].lower()):
            return f"{binomial} x {second.capitalize()} {tail[2].lower()}"  # "G a × G b"
        if _WORD.match(second.lower()) and second.lower() not in _RANK_MARKERS:
            return f"{binomial} x {second.lower()}"  # "Genus a × b"
    return binomial


@dataclass(frozen=True)
class SpeciesMatch:
    """Names matched onto a taxonomy.

    ``indices[i]`` is the taxonomy position of ``names[i]`` (-1 when unmatched);
    ``matched`` lists the taxonomy's spelling of each matched name (input order) and
    ``unmatched`` the input names, as given, that have no partner.
    """

    names: list[str]
    indices: np.ndarray
    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    @property
    def matched_indices(self) -> np.ndarray:
        """Taxonomy indices of the matched names (input order, unmatched left out)."""
        return self.indices[self.indices >= 0]

    def __len__(self) -> int:
        return len(self.names)


@functools.lru_cache(maxsize=8)
def _lookups(
    taxonomy: tuple[str, ...], common_names: tuple[str, ...]
) -> tuple[dict[str, int], dict[str, int]]:
    """Canonical scientific name -> first index, and folded common name -> first index, of a
    taxonomy (built once per taxonomy: a check matches several lists onto BirdNET's 6,522)."""
    lookup: dict[str, int] = {}
    for i, entry in enumerate(taxonomy):
        key = normalise_name(entry)
        if key:
            lookup.setdefault(key, i)
    common: dict[str, int] = {}
    for i, entry in enumerate(common_names):
        key = " ".join(entry.split()).casefold()
        if key:
            common.setdefault(key, i)
    return lookup, common


def match_species(
    names: Sequence[str],
    taxonomy: Sequence[str],
    common_names: Sequence[str] | None = None,
) -> SpeciesMatch:
    """Match ``names`` onto ``taxonomy`` (scientific names) by their canonical form.

    When a name has no scientific match and ``common_names`` (one per taxonomy entry, e.g.
    BirdNET's) is given, a case- and space-insensitive common-name match is tried. If the
    taxonomy lists a canonical name twice, the first entry wins.
    """
    if common_names is not None and len(common_names) != len(taxonomy):
        raise InputError(
            f"match_species: {len(common_names)} common names for {len(taxonomy)} taxonomy entries"
        )
    lookup, common = _lookups(tuple(map(str, taxonomy)), tuple(map(str, common_names or ())))
    indices = np.full(len(names), -1, dtype=np.int64)
    matched: list[str] = []
    unmatched: list[str] = []
    for i, name in enumerate(names):
        index = lookup.get(normalise_name(name))
        if index is None:
            index = common.get(" ".join(str(name).split()).casefold())
        if index is None:
            unmatched.append(str(name))
        else:
            indices[i] = index
            matched.append(str(taxonomy[index]))
    return SpeciesMatch(
        names=[str(n) for n in names], indices=indices, matched=matched, unmatched=unmatched
    )


def parse_species_list(text: str) -> list[str]:
    """Names from ``"Sci name; Sci name"`` (semicolons or new lines), stripped, in order.

    Empty entries are skipped; duplicates (after :func:`normalise_name`) are kept once.
    """
    seen: set[str] = set()
    out: list[str] = []
    for part in re.split(r"[;\n]", str(text)):
        entry = " ".join(part.split())
        if not entry:
            continue
        key = normalise_name(entry) or entry.casefold()
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


__all__ = ["SpeciesMatch", "match_species", "normalise_name", "parse_species_list"]
