"""Range models behind one interface: BirdNET's range model, SINR, the synthetic truth.

Every model here is a :class:`~geoforensics.core.species.checklists.RangeModel`: ``species``
(scientific names, one per column) and ``presence(lat, lon, week=None) -> (N, S)`` float32
presence probabilities, plus an ``identity`` string (a content hash of its weights) that
keys cached range tables (:mod:`.range_table`).

``birdnet``
    BirdNET V2.4's range ("meta-data") model from the optional ``birdnet`` extra, run with
    ``ai-edge-litert``: input float32 [N, 3] = (lat, lon, week 1-48 or -1 for the whole
    year), output [N, 6,522] presence probabilities over BirdNET's species. Calls are
    batched: the interpreter's input is resized to the batch (up to ``batch_size`` rows per
    invoke), which is what makes gallery-wide tables cheap.
``sinr:PATH[,NAMES.txt]``
    A public SINR checkpoint (``ResidualFCNet`` with ``sin_cos`` input) or a SINR encoder
    saved by geoforensics; presence = sigmoid of the species head's logits. SINR has no
    season: ``week`` is checked and ignored.
``world:DIR`` or a bare ``DIR``
    The synthetic world's true ranges (``ROOT/world/range_model.npz``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_arrays, sha256_file
from geoforensics.core.species.birdnet_files import birdnet_file, birdnet_labels, interpreter
from geoforensics.core.species.checklists import YEAR_ROUND, RangeModel, week_rows

#: Rows per interpreter / network call.
DEFAULT_BATCH = 4096

_FILE_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def file_identity(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, computed once per process (keyed by path, size and mtime)."""
    file = Path(path).resolve()
    stat = file.stat()
    key = (str(file), stat.st_size, stat.st_mtime_ns)
    with _HASH_LOCK:
        digest = _FILE_HASHES.get(key)
    if digest is None:
        digest = sha256_file(file)
        with _HASH_LOCK:
            _FILE_HASHES[key] = digest
    return digest


def _points(lat: ArrayLike, lon: ArrayLike, source: str) -> tuple[np.ndarray, np.ndarray]:
    """``lat`` and ``lon`` as equal-length 1-D float64 arrays of valid degrees."""
    lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    if lat_a.ndim != 1 or lat_a.shape != lon_a.shape:
        raise InputError(
            f"{source}: lat and lon must be 1-D of one length, got {lat_a.shape}, {lon_a.shape}"
        )
    bad = ~(np.isfinite(lat_a) & np.isfinite(lon_a)) | (np.abs(lat_a) > 90) | (np.abs(lon_a) > 180)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{source}: point {i} has invalid coordinates ({lat_a[i]}, {lon_a[i]})")
    return lat_a, lon_a


def _check_batch(batch_size: int) -> int:
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


# ----------------------------------------------------------------------------- BirdNET


class BirdNETRangeModel:
    """BirdNET V2.4's range model over its 6,522 classes, batched (needs the ``birdnet`` extra).

    ``presence(lat, lon, week)`` takes ``week`` as None (year-round, BirdNET's -1), a scalar
    or one per point, each 1-48 or -1. Raises :class:`WeightsNotFoundError` with the install
    hint when the extra is missing.
    """

    def __init__(self, num_threads: int = 2, batch_size: int = DEFAULT_BATCH) -> None:
        self.path = birdnet_file("range")
        labels = birdnet_labels()
        self._species = [scientific for scientific, _ in labels]
        self.common_names = [common for _, common in labels]
        self.batch_size = _check_batch(batch_size)
        self._runner = interpreter("range", num_threads=num_threads)
        self._input = self._runner.get_input_details()[0]["index"]
        self._output = self._runner.get_output_details()[0]["index"]
        self._rows = int(self._runner.get_input_details()[0]["shape"][0])
        self._lock = threading.Lock()
        n_out = int(self._runner.get_output_details()[0]["shape"][1])
        if n_out != len(self._species):
            raise InputError(
                f"{self.path}: range model has {n_out} outputs but the labels list "
                f"{len(self._species)} species (mismatched BirdNET files)"
            )

    @property
    def species(self) -> list[str]:
        """Scientific names of BirdNET's classes, in output order."""
        return self._species

    @property
    def identity(self) -> str:
        """``birdnet-range-`` + SHA-256 of the .tflite file (hashed once per process)."""
        return "birdnet-range-" + file_identity(self.path)

    def _invoke(self, rows: np.ndarray) -> np.ndarray:
        """One interpreter call on (B, 3) float32 rows (input resized when B changes)."""
        with self._lock:
            if rows.shape[0] != self._rows:
                self._runner.resize_tensor_input(self._input, list(rows.shape), strict=False)
                self._runner.allocate_tensors()
                self._rows = rows.shape[0]
            self._runner.set_tensor(self._input, rows)
            self._runner.invoke()
            result: np.ndarray = self._runner.get_tensor(self._output)  # a copy
            return result

    def presence(self, lat: ArrayLike, lon: ArrayLike, week: ArrayLike | None = None) -> np.ndarray:
        """(N, 6522) float32 presence probabilities at N points and week(s)."""
        lat_a, lon_a = _points(lat, lon, "BirdNET range model")
        n = len(lat_a)
        weeks = week_rows(week, n, "BirdNET range model", year_round=True)
        rows = np.empty((n, 3), dtype=np.float32)
        rows[:, 0], rows[:, 1] = lat_a, lon_a
        rows[:, 2] = YEAR_ROUND if weeks is None else weeks
        if n <= self.batch_size:
            return self._invoke(rows)
        out = np.empty((n, len(self._species)), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            out[start:stop] = self._invoke(rows[start:stop])
        return out


# -------------------------------------------------------------------------------- SINR

#: Checkpoint ``params`` keys that may hold one species name per class.
_NAME_KEYS = ("species", "species_names", "class_names", "taxa_names", "class_to_name")


def _names_from_params(params: Mapping[str, Any], n: int) -> list[str] | None:
    for key in _NAME_KEYS:
        value = params.get(key)
        if isinstance(value, Mapping):
            taxa = params.get("class_to_taxa")
            if isinstance(taxa, Sequence) and len(taxa) == n:
                try:
                    return [str(value.get(t, value.get(str(t), f"taxon:{t}"))) for t in taxa]
                except TypeError:
                    continue
            if len(value) == n:
                try:
                    return [str(value[k]) for k in sorted(value, key=int)]
                except (TypeError, ValueError):
                    continue
        elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == n:
            return [str(v) for v in value]
    return None


def read_names_file(
    path: str | os.PathLike[str], n: int, class_to_taxa: Sequence[Any] | None = None
) -> list[str]:
    """Species names for ``n`` classes from a text file.

    Either one name per line (exactly ``n`` non-empty lines, ``#`` comments skipped), or a
    table of ``TAXON_ID<tab or comma>NAME`` lines mapped through the checkpoint's
    ``class_to_taxa`` (taxa missing from the table are named ``taxon:ID``).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"{file}: species names file not found")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: unreadable species names file ({exc})") from exc
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    pairs = [
        [p.strip() for p in (e.split("\t", 1) if "\t" in e else e.split(",", 1))] for e in entries
    ]
    is_table = bool(entries) and all(len(p) == 2 and p[0].isdigit() for p in pairs)
    if is_table:
        if class_to_taxa is None or len(class_to_taxa) != n:
            raise InputError(
                f"{file}: a TAXON_ID,NAME table needs the checkpoint's class_to_taxa "
                f"({n} classes); give one name per line instead"
            )
        table = {int(p[0]): p[1] for p in pairs}
        return [table.get(int(t), f"taxon:{t}") for t in class_to_taxa]
    if len(entries) != n:
        raise InputError(
            f"{file}: {len(entries)} species names for a checkpoint with {n} classes "
            "(one name per line, in class order)"
        )
    return entries


class SINRRangeModel:
    """A SINR range model from a checkpoint; presence = sigmoid(presence_logits).

    ``checkpoint``: a public SINR checkpoint (``{'params', 'state_dict'}``) or a SINR encoder
    saved by :func:`~geoforensics.core.models.location.save_location_encoder`.
    Species names, in order of preference: ``species_names`` (a list, or a text file: one
    name per line, or ``TAXON_ID,NAME`` lines mapped through ``class_to_taxa``), names in the
    checkpoint (``params['species']`` / ``class_names`` / ..., or the saved encoder's
    ``species``), else ``taxon:ID`` from ``class_to_taxa`` (``class:i`` without it). SINR
    is not seasonal: ``week`` is validated and ignored.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        species_names: Sequence[str] | str | os.PathLike[str] | None = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        import torch

        from geoforensics.core.models.location import (
            SINREncoder,
            create_location_encoder,
        )

        file = Path(checkpoint).expanduser()
        if not file.is_file():
            raise WeightsNotFoundError(f"{file}: SINR checkpoint not found")
        self.path = file
        self.batch_size = _check_batch(batch_size)
        encoder = create_location_encoder("sinr", checkpoint=file)
        assert isinstance(encoder, SINREncoder)
        if encoder.num_classes == 0:
            raise InputError(f"{file}: SINR checkpoint has no species head ('class_emb')")
        self.encoder = encoder
        n = encoder.num_classes
        params: Mapping[str, Any] = {}
        if file.suffix not in (".safetensors", ".json"):
            raw = torch.load(file, map_location="cpu", weights_only=True)  # read by the encoder
            found = raw.get("params") if isinstance(raw, Mapping) else None
            params = found if isinstance(found, Mapping) else {}
        taxa = params.get("class_to_taxa")
        class_to_taxa = list(taxa) if isinstance(taxa, Sequence) and len(taxa) == n else None
        names: list[str] | None
        if species_names is None:
            names = _names_from_params(params, n)
            if names is None and encoder.species is not None and len(encoder.species) == n:
                names = [str(s) for s in encoder.species]
            if names is None:
                names = (
                    [f"taxon:{t}" for t in class_to_taxa]
                    if class_to_taxa is not None
                    else [f"class:{i}" for i in range(n)]
                )
        elif isinstance(species_names, str | os.PathLike):
            names = read_names_file(species_names, n, class_to_taxa)
        else:
            names = [str(s) for s in species_names]
            if len(names) != n:
                raise InputError(
                    f"{file}: {len(names)} species names for a checkpoint with {n} classes"
                )
        self._species = names
        self.class_to_taxa = class_to_taxa

    @property
    def species(self) -> list[str]:
        """Species names, one per class of the checkpoint's head."""
        return self._species

    @property
    def identity(self) -> str:
        """``sinr-`` + SHA-256 of the checkpoint file (hashed once per process)."""
        return "sinr-" + file_identity(self.path)

    def logits(self, lat: ArrayLike, lon: ArrayLike) -> np.ndarray:
        """(N, S) float32 species logits of the checkpoint's head."""
        import torch

        lat_a, lon_a = _points(lat, lon, "SINR range model")
        coords = np.stack([lat_a, lon_a], axis=1).astype(np.float32)
        out = np.empty((len(coords), len(self._species)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(coords), self.batch_size):
                chunk = torch.from_numpy(coords[start : start + self.batch_size])
                out[start : start + len(chunk)] = (
                    self.encoder.presence_logits(chunk).float().numpy()
                )
        return out

    def presence(self, lat: ArrayLike, lon: ArrayLike, week: ArrayLike | None = None) -> np.ndarray:
        """(N, S) float32 presence probabilities (sigmoid of the logits); ``week`` ignored."""
        logits = self.logits(lat, lon)
        week_rows(week, len(logits), "SINR range model", year_round=True)
        # Numerically safe sigmoid in float32.
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * logits)), dtype=np.float32)


# ----------------------------------------------------------------------------- specs

RANGE_MODEL_SPECS = "birdnet, sinr:PATH[,NAMES.txt], world:DIR or a synthetic dataset folder"


def synthetic_identity(model: Any) -> str:
    """``synthetic-`` + content hash of a synthetic world's range model arrays."""
    arrays = [
        np.asarray(getattr(model, name))
        for name in (
            "blob_species",
            "blob_lat",
            "blob_lon",
            "blob_radius_km",
            "blob_peak",
            "blob_role",
            "habitat",
            "season",
            "land",
            "coast",
        )
    ]
    return "synthetic-" + sha256_arrays(*arrays, extra="\n".join(model.species))


def load_range_model(spec: str) -> RangeModel:
    """A range model from a spec: ``birdnet``, ``sinr:PATH[,NAMES.txt]``, ``world:DIR``, DIR.

    Unknown specs raise :class:`InputError`; a missing checkpoint
    :class:`WeightsNotFoundError`; a folder without a synthetic world
    :class:`~geoforensics.core.errors.DatasetNotFoundError` (each naming the file).
    """
    from geoforensics.core.synth import SyntheticRangeModel

    text = str(spec).strip()
    if text.lower() == "birdnet":
        return BirdNETRangeModel()
    if text.lower().startswith("sinr:"):
        rest = text[5:].strip()
        if not rest:
            raise InputError(f"range model spec {spec!r}: give a checkpoint, sinr:PATH")
        names: str | None = None
        if not Path(rest).expanduser().is_file() and "," in rest:
            rest, names = (part.strip() for part in rest.rsplit(",", 1))
        return SINRRangeModel(rest, names or None)
    if text.lower().startswith("world:"):
        folder = text[6:].strip()
        if not folder:
            raise InputError(f"range model spec {spec!r}: give a folder, world:DIR")
        return SyntheticRangeModel.load(folder)
    if text and Path(text).expanduser().is_dir():
        return SyntheticRangeModel.load(text)
    raise InputError(f"range model spec {spec!r}: use {RANGE_MODEL_SPECS}")


__all__ = [
    "DEFAULT_BATCH",
    "RANGE_MODEL_SPECS",
    "BirdNETRangeModel",
    "SINRRangeModel",
    "file_identity",
    "load_range_model",
    "read_names_file",
    "synthetic_identity",
]
