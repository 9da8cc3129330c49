"""The bench's row types and the row registry.

A :class:`BenchRow` has a name (``naive``, ``agclip`` ...), the table it belongs to (ids of
:data:`~geoforensics.eval.tables.TABLES`), the split it is scored on (the iNatSounds-format
``test`` split or ``xcdc``), and a ``run(context) -> RowResult`` function. The runner
(:mod:`geoforensics.eval.bench`) calls ``run`` once per seed with a :class:`RowContext` that
gives the seed, a work folder for the row's own outputs, the preset (training budgets), and
cached access to the data (:class:`BenchData`): splits, XCDC, the retrieval gallery and its
GeoCLIP index, and the results of the rows this one ``requires`` (for example the aggregation
rows reuse the AG-CLIP row's embeddings).

Registry (as timm's model registry): each row module calls :func:`register_row` at module
level, which adds the row to one module-level registry and remembers the module it came from
(the module of the row's ``run`` function); :func:`registered_rows` returns a fresh copy, module
by module. :mod:`geoforensics.eval.rows` imports every row module and fixes their order
(:func:`geoforensics.eval.rows.builtin_rows`). A registry passed to :func:`register_row`
(a plain dict) is filled instead, for benches of one's own rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.data import XCDC, INatSounds
from geoforensics.core.errors import DatasetNotFoundError, InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.geo.gallery import (
    Gallery,
    from_coords,
    resolve_gallery,
    train_neighbour_gallery,
)
from geoforensics.core.geoclip.embeddings import geoclip_gallery_index
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.synth.ranges import RANGE_MODEL_FILE
from geoforensics.eval.predictions_csv import recording_ids
from geoforensics.eval.presets import BenchPreset
from geoforensics.eval.results import RowResult, check_name
from geoforensics.eval.tables import TABLES, DatasetInfo, describe_dataset

#: Splits a row can be scored on.
ROW_SPLITS: tuple[str, ...] = ("test", "xcdc")


@dataclass(frozen=True)
class BenchRow:
    """One benchmark row.

    ``label`` is the method name shown in tables; ``column`` places the row in a grid table
    (Table 3 right: ``"1 species"`` ...), where ``label`` names the grid's row. ``requires``
    lists rows whose results (same seed) ``run`` reads through :meth:`RowContext.result`.
    ``uses_gallery``: the retrieval gallery changes the result (part of the resume check).
    ``version``: bump when the row's computation changes, so saved results are recomputed.
    ``budget(preset)`` picks the part of the bench preset the row depends on (its training
    budget; part of the resume check). ``unavailable(data)`` returns why the row cannot run
    on this data (None when it can); a bench without ``--rows`` leaves such rows out and says
    why. ``inputs(data)`` returns JSON-able identities of further inputs the row reads (e.g. a
    user checkpoint's SHA-256); part of the resume check when given. ``xcdc_only``: the row
    runs from an XCDC folder alone (no iNatSounds-format split: no training, no train
    locations); without iNatSounds data every other row is unavailable
    (:func:`inatsounds_unavailable`).
    """

    name: str
    label: str
    table: str
    run: Callable[[RowContext], RowResult]
    split: str = "test"
    column: str | None = None
    requires: tuple[str, ...] = ()
    trains: bool = False
    uses_gallery: bool = False
    version: int = 1
    description: str = ""
    budget: Callable[[BenchPreset], Any] | None = None
    unavailable: Callable[[BenchData], str | None] | None = None
    inputs: Callable[[BenchData], Any] | None = None
    xcdc_only: bool = False

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.table not in TABLES:
            raise InputError(f"row {self.name!r}: unknown table {self.table!r}")
        if self.split not in ROW_SPLITS:
            raise InputError(f"row {self.name!r}: split must be one of {', '.join(ROW_SPLITS)}")
        if TABLES[self.table].grid and self.column is None:
            raise InputError(f"row {self.name!r}: grid table {self.table} needs a column")
        if self.xcdc_only and (self.split != "xcdc" or self.requires or self.trains):
            raise InputError(f"row {self.name!r}: an XCDC-only row is scored on xcdc alone")


# --------------------------------------------------------------------------- data access


def _recording_dates(recordings: Iterable[Any]) -> list[str | None]:
    return [None if r.date is None else r.date.isoformat() for r in recordings]


#: Galleries made of an iNatSounds-format split's locations (not available from XCDC alone).
SPLIT_GALLERIES: tuple[str, ...] = ("train", "val", "test", "train-neighbours")
#: The default gallery of a bench on XCDC alone (no train locations to retrieve from).
XCDC_ONLY_GALLERY = "land-1deg"


class BenchData:
    """Data shared by every row and seed of one bench run, loaded once on first use.

    ``data_root`` is an iNatSounds-format data set (``test.json`` ...), or, for the rows that
    need no training (:attr:`BenchRow.xcdc_only`), an XCDC folder alone (``--xcdc`` or a
    folder holding ``xcdc_recordings.csv``; None: ``xcdc_root``). ``gallery`` None: ``train``
    (XCDC alone: :data:`XCDC_ONLY_GALLERY`). ``range_model``: a
    :func:`~geoforensics.core.species.ranges.load_range_model` spec for the species rows
    (``birdnet``, ``sinr:PATH``, ``world:DIR``; None: chosen from the data).
    ``model_dir``: a trained or imported model folder for the ``model-xcdc`` row.
    """

    def __init__(
        self,
        data_root: str | Path | None,
        preset: BenchPreset,
        gallery: Sequence[str] | None = None,
        xcdc_root: str | Path | None = None,
        progress: bool = True,
        location_encoder_checkpoints: Mapping[str, str | Path] | None = None,
        range_model: str | None = None,
        model_dir: str | Path | None = None,
    ) -> None:
        if data_root is None:
            if xcdc_root is None:
                raise InputError(
                    "bench: give --data DIR (an iNatSounds-format data set) or --xcdc DIR "
                    "(an XCDC folder)"
                )
            data_root = xcdc_root
        self.root = Path(data_root).expanduser().resolve()
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"data folder {self.root} does not exist")
        #: Whether the iNatSounds-format splits are there (else XCDC alone).
        self.has_inat = (self.root / "test.json").is_file()
        if xcdc_root is None:
            guesses = (self.root / "xcdc", self.root)
            self.xcdc_root: Path | None = next(
                (g for g in guesses if (g / "xcdc_recordings.csv").is_file()), None
            )
        else:
            self.xcdc_root = Path(xcdc_root).expanduser().resolve()
        if not self.has_inat and not self.has_xcdc():
            where = "" if xcdc_root is None else f" nor in {self.xcdc_root}"
            raise DatasetNotFoundError(
                f"{self.root}: no test.json (an iNatSounds-format data set: train.json, "
                f"val.json, test.json) and no xcdc_recordings.csv (an XCDC folder){where}"
            )
        self.preset = preset
        if gallery is None:
            gallery = ("train",) if self.has_inat else (XCDC_ONLY_GALLERY,)
        self.gallery_specs = tuple(gallery)
        if not self.gallery_specs:
            raise InputError("bench: the gallery list is empty")
        split_specs = [s for s in self.gallery_specs if s in SPLIT_GALLERIES]
        if split_specs and not self.has_inat:
            raise InputError(
                f"bench: gallery {'+'.join(split_specs)} is made of iNatSounds-format split "
                f"locations, but {self.root} has XCDC data only; use --gallery "
                f"{XCDC_ONLY_GALLERY} (or grid-1deg, land-0.5deg, file:PATH)"
            )
        self.progress = progress
        self.range_model_spec = (range_model or "").strip() or None
        self.model_dir: Path | None = None
        if model_dir is not None:
            folder = Path(model_dir).expanduser().resolve()
            if not (folder / "model.json").is_file():
                raise WeightsNotFoundError(
                    f"{folder}: no model.json (expected a model folder made by "
                    "`geoforensics train` or imported weights)"
                )
            self.model_dir = folder
        #: User checkpoints of location encoders (``sinr``, ``satclip``) for the Table 2 rows.
        self.location_encoder_checkpoints: dict[str, Path] = {}
        for name, path in (location_encoder_checkpoints or {}).items():
            file = Path(path).expanduser().resolve()
            if not file.is_file():
                raise WeightsNotFoundError(f"{file}: {name} checkpoint not found")
            self.location_encoder_checkpoints[name] = file
        self._splits: dict[str, INatSounds] = {}
        self._memo: dict[tuple[Any, ...], Any] = {}

    @cached_property
    def dataset(self) -> DatasetInfo:
        """Name and SYNTHETIC flag of the data set (for captions)."""
        return describe_dataset(self.root, "iNatSounds 2024" if self.has_inat else "XCDC")

    def split(self, name: str) -> INatSounds:
        """An iNatSounds-format split (annotations read once; audio checked by the rows that
        read audio)."""
        if not self.has_inat:
            raise DatasetNotFoundError(
                f"{self.root}: no {name}.json: XCDC data only (this needs an iNatSounds-format "
                "data set: train.json, val.json, test.json)"
            )
        if name not in self._splits:
            self._splits[name] = INatSounds(self.root, name, require_audio=False)
        return self._splits[name]

    @cached_property
    def xcdc(self) -> XCDC:
        """The XCDC recordings (``--xcdc`` or ``DATA/xcdc``)."""
        if self.xcdc_root is None:
            raise DatasetNotFoundError(
                f"no XCDC data: {self.root / 'xcdc' / 'xcdc_recordings.csv'} does not exist "
                "(give --xcdc DIR)"
            )
        return XCDC(self.xcdc_root)

    def has_xcdc(self) -> bool:
        """Whether an XCDC folder was given or found."""
        return self.xcdc_root is not None and (self.xcdc_root / "xcdc_recordings.csv").is_file()

    def gallery_for(self, specs: Sequence[str]) -> Gallery:
        """The union of gallery specs' locations: ``train`` / ``val`` / ``test`` are the
        split's locations, ``train-neighbours`` the centres of the H3 res-3 cells holding train
        locations plus their neighbours; anything else goes to
        :func:`~geoforensics.core.geo.gallery.resolve_gallery` (``land-1deg``, ``file:PATH``)."""

        def build() -> Gallery:
            parts = []
            for spec in specs:
                if spec in ("train", "val", "test"):
                    parts.append(self.split(spec).coords())
                elif spec == "train-neighbours":
                    parts.append(train_neighbour_gallery(self.split("train").coords()).coords)
                else:
                    parts.append(resolve_gallery(spec).coords)
            return from_coords(np.concatenate(parts), name="+".join(specs))

        gallery: Gallery = self.memo(("gallery", *specs), build)
        return gallery

    def index_for(self, specs: Sequence[str]) -> RetrievalIndex:
        """Faiss index over a gallery's GeoCLIP embeddings (embeddings cached on disk)."""

        def build() -> RetrievalIndex:
            return geoclip_gallery_index(self.gallery_for(specs), progress=self.progress)

        index: RetrievalIndex = self.memo(("index", *specs), build)
        return index

    @property
    def gallery(self) -> Gallery:
        """The bench's retrieval gallery (``--gallery``, default ``train``)."""
        return self.gallery_for(self.gallery_specs)

    @property
    def retrieval_index(self) -> RetrievalIndex:
        """Faiss index over the bench gallery's GeoCLIP embeddings."""
        return self.index_for(self.gallery_specs)

    def memo(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()`` once per key during this run (e.g. one computation that yields
        several rows, such as the three species-oracle variants of one seed)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @cached_property
    def synthetic_range_model_path(self) -> Path | None:
        """The synthetic world's true range model file, when the data is a synthetic world."""
        path = self.root / "world" / RANGE_MODEL_FILE
        return path if path.is_file() else None

    def split_digest(self, split: str) -> str:
        """SHA-256 of the annotation file a split is read from (part of the resume check)."""
        if split == "xcdc":
            if not self.has_xcdc():
                return "absent"
            assert self.xcdc_root is not None
            return sha256_file(self.xcdc_root / "xcdc_recordings.csv")
        path = self.root / f"{split}.json"
        return sha256_file(path) if path.is_file() else "absent"


@dataclass
class RowContext:
    """What a row's ``run`` gets: the shared data, the seed, a work folder, finished results of
    the rows it requires (same seed)."""

    data: BenchData
    row: BenchRow
    seed: int
    work_dir: Path
    dependencies: Mapping[str, RowResult] = field(default_factory=dict)

    @property
    def preset(self) -> BenchPreset:
        """The bench preset (training budgets)."""
        return self.data.preset

    def result(self, row: str) -> RowResult:
        """The result of a required row for this seed."""
        if row not in self.dependencies:
            raise InputError(f"row {self.row.name!r} did not declare {row!r} in requires")
        return self.dependencies[row]

    def make_result(
        self,
        predictions: np.ndarray,
        extra: Mapping[str, Any] | None = None,
        arrays: Mapping[str, np.ndarray] | None = None,
    ) -> RowResult:
        """A :class:`RowResult` of this row and seed over its split's recordings (in order)."""
        if self.row.split == "xcdc":
            recordings: Sequence[Any] = list(self.data.xcdc)
            truth = self.data.xcdc.coords()
        else:
            test = self.data.split("test")
            recordings, truth = test, test.coords()
        info = {"split": self.row.split, "dataset": self.data.dataset.name}
        info.update(extra or {})
        return RowResult(
            row=self.row.name,
            method=self.row.label,
            seed=self.seed,
            predictions=predictions,
            truth=truth,
            ids=recording_ids(recordings),
            dates=_recording_dates(recordings),
            extra=info,
            arrays=dict(arrays or {}),
        )


def inatsounds_unavailable(data: BenchData, row: BenchRow) -> str | None:
    """Why ``row`` cannot run on XCDC data alone (None with iNatSounds data or an
    :attr:`~BenchRow.xcdc_only` row)."""
    if data.has_inat or row.xcdc_only:
        return None
    if row.split == "test":
        why = "it is scored on the test split"
    elif row.requires:
        why = f"it uses the {', '.join(row.requires)} row(s)"
    elif row.trains:
        why = "it trains on the train split"
    else:
        why = "it reads the train split"
    return (
        f"needs the iNatSounds-format data set (train.json, val.json, test.json; {why}): "
        f"XCDC data only at {data.root}"
    )


# ------------------------------------------------------------------------------ registry

RowRegistry = dict[str, BenchRow]

#: The built-in rows, in registration order, and the row module each came from.
_REGISTRY: RowRegistry = {}
_MODULE_OF: dict[str, str] = {}


def _module_of(run: Callable[..., Any]) -> str:
    """Last part of the module that defines ``run`` (``functools.partial`` unwrapped)."""
    while isinstance(run, functools.partial):
        run = run.func
    return str(getattr(run, "__module__", "")).rpartition(".")[2]


def register_row(
    row: BenchRow, registry: RowRegistry | None = None, replace: bool = False
) -> BenchRow:
    """Add ``row`` to ``registry`` (default: the built-in registry, under the module of its
    ``run`` function); a duplicate name is an error unless ``replace``."""
    target = _REGISTRY if registry is None else registry
    if row.name in target and not replace:
        raise InputError(f"bench row {row.name!r} is already registered")
    target[row.name] = row
    if registry is None:
        _MODULE_OF[row.name] = _module_of(row.run)
    return row


def registered_rows(modules: Sequence[str]) -> RowRegistry:
    """A fresh registry of the built-in rows of ``modules`` (row module names such as
    ``species``), module by module in that order, each module's rows in registration order."""
    unknown = sorted(set(modules) - set(_MODULE_OF.values()))
    if unknown:
        raise InputError(f"no bench rows registered by module(s) {', '.join(unknown)}")
    return {
        name: row
        for module in modules
        for name, row in _REGISTRY.items()
        if _MODULE_OF[name] == module
    }


def registered_modules() -> list[str]:
    """The row modules that registered built-in rows, in first-registration order."""
    return list(dict.fromkeys(_MODULE_OF.values()))


def resolve_rows(names: Sequence[str], registry: Mapping[str, BenchRow]) -> list[BenchRow]:
    """The named rows plus the rows they require, each after its requirements."""
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise InputError(f"unknown bench row(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    ordered: list[BenchRow] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise InputError(f"bench rows require each other in a cycle: {' -> '.join(chain)}")
        if name not in registry:
            raise InputError(f"bench row {chain[-2]!r} requires unknown row {name!r}")
        state[name] = "visiting"
        for dependency in registry[name].requires:
            visit(dependency, (*chain, dependency))
        state[name] = "done"
        ordered.append(registry[name])

    for name in names:
        visit(name, (name,))
    return ordered


def no_xcdc(data: BenchData) -> str | None:
    """Why an XCDC row cannot run: no XCDC data (None when there is)."""
    return None if data.has_xcdc() else "no XCDC data (give --xcdc DIR)"
