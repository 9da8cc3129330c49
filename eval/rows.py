"""The benchmark's rows: a registry of small objects, each able to produce one table row.

A :class:`BenchRow` has a name (``naive``, ``agclip`` ...), the table it belongs to (ids of
:data:`~geoforensics.eval.tables.TABLES`), the split it is scored on (the iNatSounds-format
``test`` split or ``xcdc``), and a ``run(context) -> RowResult`` function. The runner
(:mod:`.bench`) calls ``run`` once per seed with a :class:`RowContext` that gives the seed, a
work folder for the row's own outputs, the preset (training budgets), and cached access to the
data: splits, XCDC, the retrieval gallery and its GeoCLIP index, and the results of the rows
this one ``requires`` (for example the aggregation rows reuse the AG-CLIP row's embeddings).

Only rows with a real implementation are registered (see :func:`builtin_rows`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import DatasetNotFoundError, InputError, WeightsNotFoundError
from ..core.fileio import sha256_file
from .predictions_csv import recording_ids
from .results import RowResult, check_name
from .tables import TABLES, DatasetInfo, describe_dataset

if TYPE_CHECKING:
    from ..core.data import XCDC, INatSounds
    from ..core.geo.gallery import Gallery
    from ..core.geoclip.retrieval import RetrievalIndex
    from .bench import BenchPreset

log = logging.getLogger(__name__)

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
            from ..core.data import INatSounds

            self._splits[name] = INatSounds(self.root, name, require_audio=False)
        return self._splits[name]

    @cached_property
    def xcdc(self) -> XCDC:
        """The XCDC recordings (``--xcdc`` or ``DATA/xcdc``)."""
        from ..core.data import XCDC

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
        from ..core.geo.gallery import from_coords, resolve_gallery, train_neighbour_gallery

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
        from ..core.geoclip.embeddings import cached_gallery_embeddings
        from ..core.geoclip.retrieval import RetrievalIndex

        def build() -> RetrievalIndex:
            gallery = self.gallery_for(specs)
            embeddings = cached_gallery_embeddings(gallery, progress=self.progress)
            return RetrievalIndex(gallery.coords, embeddings)

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
        from ..core.synth.ranges import RANGE_MODEL_FILE

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
            recordings = self.data.split("test")
            truth = recordings.coords()
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


def register_row(row: BenchRow, registry: RowRegistry, replace: bool = False) -> BenchRow:
    """Add ``row`` to ``registry`` (a duplicate name is an error unless ``replace``)."""
    if row.name in registry and not replace:
        raise InputError(f"bench row {row.name!r} is already registered")
    registry[row.name] = row
    return row


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


# ----------------------------------------------------------------------------- the rows


def _run_naive(context: RowContext) -> RowResult:
    """Paper Table 1 / 3 naive row: a random training location per recording."""
    from .baselines import naive_random_train_location

    train = context.data.split("train").coords()
    n = len(context.data.xcdc) if context.row.split == "xcdc" else len(context.data.split("test"))
    predictions = naive_random_train_location(train, n, seed=context.seed)
    return context.make_result(predictions, {"train_locations": len(train)})


def _no_xcdc(data: BenchData) -> str | None:
    return None if data.has_xcdc() else "no XCDC data (give --xcdc DIR)"


def _no_range_model(data: BenchData) -> str | None:
    if data.synthetic_range_model_path is not None:
        return None
    return "needs a range model: only the synthetic world's true range model is wired in"


def _no_xcdc_or_range_model(data: BenchData) -> str | None:
    return _no_xcdc(data) or _no_range_model(data)


def _oracle_results(context: RowContext) -> dict[str, Any]:
    """All species-oracle variants of one seed, computed once (one oracle trained on full
    checklists scores every variant, as in the paper)."""
    from ..train.tasks.species_oracle import run_species_oracle

    data = context.data

    def compute() -> dict[str, Any]:
        extra = {}
        if data.has_xcdc():
            recordings = list(data.xcdc)
            extra["xcdc"] = (data.xcdc.coords(), [r.date for r in recordings])
        return run_species_oracle(
            data.root,
            range_model=data.synthetic_range_model_path,
            gallery=data.gallery,
            variants=ORACLE_VARIANTS,
            seed=context.seed,
            max_epochs=data.preset.oracle_epochs,
            extra_sets=extra,
        )

    results: dict[str, Any] = data.memo(("species-oracle", context.seed), compute)
    return results


def _oracle_budget(preset: BenchPreset) -> dict[str, Any]:
    return {"epochs": preset.oracle_epochs}


def _run_species_oracle(context: RowContext) -> RowResult:
    """Species-oracle rows: ``species-oracle-VARIANT`` on the test split,
    ``species-oracle-VARIANT-xcdc`` the same oracle on the XCDC recordings' true places."""
    variant = context.row.name.removeprefix("species-oracle-").removesuffix("-xcdc")
    key = f"xcdc:{variant}" if context.row.split == "xcdc" else variant
    oracle = _oracle_results(context)[key]
    result = context.make_result(
        oracle.predictions,
        {
            "variant": variant,
            "checklist_sizes": oracle.checklist_sizes,
            "training": oracle.training,
            "gallery": context.data.gallery.name,
        },
    )
    if not np.allclose(result.errors_km(), oracle.errors_km, rtol=1e-9, atol=1e-6):
        raise InputError(
            f"{context.row.name}: the oracle's recordings are not the bench's {context.row.split} "
            "split"
        )
    return result


#: Species-oracle variants (paper Table 1): full checklists, half the present species dropped,
#: 10 random present species kept.
ORACLE_VARIANTS: tuple[str, ...] = ("full", "drop50", "keep10")
_ORACLE_LABELS = {
    "full": "Species oracle (true checklist)",
    "drop50": "Species oracle (50% of species dropped)",
    "keep10": "Species oracle (10 random species kept)",
}


# ------------------------------------------------------------------- rows that train a model

#: Table 1 rows that train an audio model: (row, label, training method, H3 resolution).
TRAINED_ROWS: tuple[tuple[str, str, str, int | None], ...] = (
    ("agclip", "Retrieval (AG-CLIP)", "agclip", None),
    ("regression-mse", "Regression (MSE)", "regression_mse", None),
    ("regression-haversine", "Regression (haversine)", "regression_haversine", None),
    ("classification-r0", "Classification (H3 res 0)", "classification", 0),
    ("classification-r1", "Classification (H3 res 1)", "classification", 1),
    ("classification-r2", "Classification (H3 res 2)", "classification", 2),
)
_TRAINED = {name: (label, method, res) for name, label, method, res in TRAINED_ROWS}
_BENCH_TRAIN_STAMP = "bench_train.json"


def _train_budget(preset: BenchPreset) -> dict[str, Any]:
    return {name: dict(section) for name, section in preset.train.items()}


def _eval_batch_size(preset: BenchPreset) -> int:
    return int(preset.train.get("train", {}).get("eval_batch_size", 64))


def training_config_dict(
    context: RowContext,
    method: str,
    h3_res: int | None,
    model_overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The training config (a :func:`geoforensics.train.config.config_from_dict` mapping) of a
    trained row: the preset's budget, this seed, the bench gallery (saved as a file so that
    validation retrieves from exactly the bench's gallery) and no test pass (the bench runs
    inference itself). ``model_overrides`` replace keys of the ``model`` section (e.g.
    ``location_encoder`` for Table 2)."""
    data = context.data
    sections = {name: dict(section) for name, section in context.preset.train.items()}
    data_section = {"root": str(data.root), **sections.pop("data", {})}
    if data.synthetic_range_model_path is None:
        data_section.setdefault("range_model", "none")
    model_section = sections.pop("model", {})
    if h3_res is not None:
        model_section["h3_res"] = h3_res
    model_section.update(model_overrides or {})
    gallery_file = context.work_dir / "gallery.npy"
    if method == "agclip":
        data.gallery.save(gallery_file)
    config: dict[str, Any] = {
        "method": method,
        "data": data_section,
        "model": model_section,
        "optim": sections.pop("optim", {}),
        "loss": sections.pop("loss", {}),
        "train": {**sections.pop("train", {}), "seed": context.seed},
        "eval": {"gallery": [f"file:{gallery_file}"] if method == "agclip" else [], "test": False},
        "out": str(context.work_dir / "run"),
    }
    if sections:
        raise InputError(
            f"bench preset {context.preset.name!r}: unknown sections {sorted(sections)}"
        )
    return config


def train_row_model(
    context: RowContext,
    method: str,
    h3_res: int | None = None,
    model_overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Train (or reuse, or resume) the row's model in ``WORK/run``; returns the model folder.

    ``WORK/bench_train.json`` records the training config (and the SHA-256 of a location-encoder
    checkpoint): a finished run with the same config is reused, an interrupted one resumed from
    its last checkpoint, a different one replaced. ``model_overrides``: see
    :func:`training_config_dict`.
    """
    import json
    import shutil

    from ..core.fileio import atomic_write
    from ..train.config import config_from_dict
    from ..train.runner import LAST_CHECKPOINT, train

    context.work_dir.mkdir(parents=True, exist_ok=True)
    raw = training_config_dict(context, method, h3_res, model_overrides)
    config = config_from_dict(raw, source=f"bench row {context.row.name}")
    run_dir, stamp = config.out, context.work_dir / _BENCH_TRAIN_STAMP
    wanted = json.loads(json.dumps(config.to_dict()))
    if method == "agclip":  # the gallery file's path stays the same; its content may not
        wanted["bench_gallery_sha256"] = context.data.gallery.coords_sha256()
    if config.model.location_encoder_checkpoint is not None:  # same path, new content: retrain
        checkpoint = config.model.location_encoder_checkpoint
        wanted["location_encoder_checkpoint_sha256"] = (
            sha256_file(checkpoint) if checkpoint.is_file() else "absent"
        )
    same = False
    if stamp.is_file():
        try:
            same = json.loads(stamp.read_text(encoding="utf-8")) == wanted
        except (OSError, ValueError):
            same = False
    model_dir = run_dir / "model"
    if same and (run_dir / "summary.json").is_file() and (model_dir / "model.json").is_file():
        return model_dir
    resume = same and (run_dir / "checkpoints" / LAST_CHECKPOINT).is_file()
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)  # a run of other settings (or none): start afresh
    with atomic_write(stamp) as fh:
        json.dump(wanted, fh, indent=1)
    train(config, resume=resume, progress=context.data.progress)
    return model_dir


def predict_with_model(
    context: RowContext,
    model_dir: Path,
    recordings: Sequence[Any],
    index: RetrievalIndex | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(predictions (N, 2), AG-CLIP recording embeddings (N, D) or None) of a saved model over
    ``recordings``, from all their windows (mean pooling) - the path users run. AG-CLIP
    retrieves from ``index`` (default: the bench gallery in GeoCLIP space; always the bench
    gallery's points) the top place of
    :func:`~geoforensics.core.models.audio_places.top1_places`, the batched form of the one
    audio path (the prior of ``locate`` and ``check``,
    :func:`~geoforensics.core.geo.gallery.gallery_log_prior`)."""
    from ..core.models import load_model
    from ..core.models.audio_places import top1_places
    from ..core.models.inference import iter_pooled_outputs, predict_recordings

    model = load_model(model_dir)
    batch = _eval_batch_size(context.preset)
    if model.kind != "agclip":
        predictions = predict_recordings(
            model, recordings, None, batch_size=batch, progress=context.data.progress
        )
        return predictions, None
    pooled = [p for p in iter_pooled_outputs(model, recordings, batch_size=batch)]
    embeddings = np.stack([p["embedding"] for p in pooled if p is not None]).astype(np.float32)
    embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    gallery = context.data.gallery
    best = top1_places(
        embeddings, gallery, index if index is not None else context.data.retrieval_index
    )
    return gallery.coords[best], embeddings


def training_extra(model_dir: Path, **fields: Any) -> dict[str, Any]:
    """A trained row's ``extra``: its model folder, ``fields``, and from the run's
    ``summary.json`` the best and trained epochs, training seconds and validation metrics."""
    summary = json.loads((model_dir.parent / "summary.json").read_text(encoding="utf-8"))
    return {
        "model_dir": str(model_dir.resolve()),
        **fields,
        "best_epoch": summary.get("best_epoch"),
        "epochs_trained": summary.get("epochs_trained"),
        "train_seconds": summary.get("wall_time_s"),
        "val": summary.get("val"),
    }


def _run_trained(context: RowContext) -> RowResult:
    _, method, h3_res = _TRAINED[context.row.name]
    model_dir = train_row_model(context, method, h3_res)
    predictions, embeddings = predict_with_model(context, model_dir, context.data.split("test"))
    extra = training_extra(model_dir, method=method)
    arrays = {} if embeddings is None else {"embeddings": embeddings}
    return context.make_result(predictions, extra, arrays)


def _run_trained_on_xcdc(context: RowContext) -> RowResult:
    parent = context.result(context.row.requires[0])
    model_dir = Path(parent.extra["model_dir"])
    recordings = list(context.data.xcdc)
    predictions, embeddings = predict_with_model(context, model_dir, recordings)
    arrays = {} if embeddings is None else {"embeddings": embeddings}
    return context.make_result(predictions, {"model_dir": str(model_dir)}, arrays)


#: The classifier rows the hierarchical row composes, coarse to fine (H3 res 0, 1, 2).
HIERARCHY_ROWS: tuple[str, ...] = ("classification-r0", "classification-r1", "classification-r2")


def _run_hierarchical(context: RowContext) -> RowResult:
    """Paper Table 1 hierarchical row: the three trained classifiers composed 0 -> 1 -> 2
    (argmax among the children of the previous level's argmax), from each recording's
    window-averaged cell probabilities."""
    from ..core.models import load_model
    from ..core.models.inference import iter_pooled_outputs
    from ..train.tasks.hierarchical import hierarchical_predict

    recordings: Sequence[Any] = (
        list(context.data.xcdc) if context.row.split == "xcdc" else context.data.split("test")
    )
    batch = _eval_batch_size(context.preset)
    scores = []
    for name in HIERARCHY_ROWS:
        model = load_model(Path(context.result(name).extra["model_dir"]))
        pooled = iter_pooled_outputs(model, recordings, batch_size=batch)
        scores.append(np.stack([p["probs"] for p in pooled if p is not None]))
    prediction = hierarchical_predict(*scores)
    return context.make_result(
        prediction.coords,
        {"levels": list(HIERARCHY_ROWS), "invalid": int((~prediction.valid).sum())},
    )


# ------------------------------------------------------- rows on AG-CLIP's recording embeddings

#: Table 4 groupings: (H3 resolution, time period or None); None = each recording alone.
AGGREGATIONS: tuple[tuple[int, str | None] | None, ...] = (
    None,
    (5, None),
    (6, None),
    (5, "month"),
    (6, "month"),
    (5, "week"),
    (6, "week"),
)


def _aggregation_name(spec: tuple[int, str | None] | None) -> str:
    if spec is None:
        return "aggregation-none"
    from .aggregation import Grouping

    return f"aggregation-{Grouping(*spec).name}"


_AGGREGATION_SPECS = {_aggregation_name(spec): spec for spec in AGGREGATIONS}


def _run_aggregation(context: RowContext) -> RowResult:
    """Paper Table 4: average AG-CLIP recording embeddings per H3 cell (and period) of the
    true location, retrieve once per group; scored per recording."""
    from .aggregation import Grouping, aggregate_and_retrieve

    parent = context.result("agclip")
    spec = _AGGREGATION_SPECS[context.row.name]
    if spec is None:
        return context.make_result(parent.predictions, {"grouping": None})
    grouping = Grouping(*spec)
    grouped = aggregate_and_retrieve(
        parent.arrays["embeddings"],
        parent.truth,
        context.data.retrieval_index,
        grouping,
        parent.dates,
    )
    sizes = grouped.group_sizes
    return context.make_result(
        grouped.predictions,
        {
            "grouping": grouping.name,
            "groups": grouped.n_groups,
            "mean_group_size": float(sizes.mean()),
            "recordings_in_groups_of_2_or_more": int(sizes[sizes > 1].sum()),
        },
    )


def _aggregation_label(spec: tuple[int, str | None] | None) -> str:
    if spec is None:
        return "AG-CLIP, each recording alone"
    from .aggregation import Grouping

    return f"AG-CLIP, grouped by {Grouping(*spec).label}"


#: Table A1 galleries (each a list of gallery specs, see :meth:`BenchData.gallery_for`).
GALLERIES: tuple[tuple[str, ...], ...] = (
    ("train",),
    ("val",),
    ("train-neighbours",),
    ("grid-1deg",),
    ("land-1deg",),
    ("land-0.5deg",),
    ("train", "land-1deg"),
    ("geoclip-100k",),
)
_GALLERY_ROWS = {"gallery-" + "-".join(specs): specs for specs in GALLERIES}


def _run_gallery(context: RowContext) -> RowResult:
    """Paper Table A1: AG-CLIP's recording embeddings retrieved from another gallery."""
    parent = context.result("agclip")
    specs = _GALLERY_ROWS[context.row.name]
    index = context.data.index_for(specs)
    top = index.search(parent.arrays["embeddings"], k=1)
    return context.make_result(
        top.coords[:, 0, :], {"gallery": "+".join(specs), "size": len(index)}
    )


def builtin_rows() -> RowRegistry:
    """The registry of every implemented benchmark row."""
    registry: RowRegistry = {}
    register_row(
        BenchRow(
            name="naive",
            label="Naive (random train location)",
            table="T1",
            run=_run_naive,
            description="a random training location for each test recording",
        ),
        registry,
    )
    register_row(
        BenchRow(
            name="naive-xcdc",
            label="Naive (random train location)",
            table="T3",
            split="xcdc",
            run=_run_naive,
            description="a random iNatSounds-format training location for each XCDC recording",
            unavailable=_no_xcdc,
        ),
        registry,
    )
    for variant in ORACLE_VARIANTS:
        register_row(
            BenchRow(
                name=f"species-oracle-{variant}",
                label=_ORACLE_LABELS[variant],
                table="T1",
                run=_run_species_oracle,
                uses_gallery=True,
                trains=True,
                budget=_oracle_budget,
                description=(
                    f"checklist ({variant}) from the true range model at the true location -> "
                    "linear map into GeoCLIP space -> retrieval"
                ),
                unavailable=_no_range_model,
            ),
            registry,
        )
        register_row(
            BenchRow(
                name=f"species-oracle-{variant}-xcdc",
                label=_ORACLE_LABELS[variant],
                table="T3",
                split="xcdc",
                run=_run_species_oracle,
                uses_gallery=True,
                trains=True,
                budget=_oracle_budget,
                description=(
                    f"the {variant} species oracle on the range model's checklists at the XCDC "
                    "recordings' true places"
                ),
                unavailable=_no_xcdc_or_range_model,
            ),
            registry,
        )
    for name, label, _method, _res in TRAINED_ROWS:
        register_row(
            BenchRow(
                name=name,
                label=label,
                table="T1",
                run=_run_trained,
                trains=True,
                uses_gallery=name == "agclip",
                budget=_train_budget,
                description=f"{label}: trained with the preset's budget, all windows, mean pooling",
            ),
            registry,
        )
        register_row(
            BenchRow(
                name=f"{name}-xcdc",
                label=label,
                table="T3",
                split="xcdc",
                run=_run_trained_on_xcdc,
                requires=(name,),
                uses_gallery=name == "agclip",
                description=f"the {name} model on the XCDC dawn choruses",
                unavailable=_no_xcdc,
            ),
            registry,
        )
    for split in ROW_SPLITS:
        register_row(
            BenchRow(
                name="hierarchical" if split == "test" else "hierarchical-xcdc",
                label="Classification (hierarchical, H3 res 0 -> 1 -> 2)",
                table="T1" if split == "test" else "T3",
                split=split,
                run=_run_hierarchical,
                requires=HIERARCHY_ROWS,
                description="the res 0/1/2 classifiers composed top-down over H3 children",
                unavailable=_no_xcdc if split == "xcdc" else None,
            ),
            registry,
        )
    for spec in AGGREGATIONS:
        register_row(
            BenchRow(
                name=_aggregation_name(spec),
                label=_aggregation_label(spec),
                table="T4",
                run=_run_aggregation,
                requires=("agclip",),
                uses_gallery=True,
                description="AG-CLIP embeddings averaged per group of the true location",
            ),
            registry,
        )
    for name, specs in _GALLERY_ROWS.items():
        register_row(
            BenchRow(
                name=name,
                label=f"AG-CLIP, gallery {' + '.join(specs)}",
                table="A1",
                run=_run_gallery,
                requires=("agclip",),
                description="AG-CLIP's test embeddings retrieved from this gallery",
            ),
            registry,
        )
    from .rows_encoders import register_encoder_rows
    from .rows_fusion import register_fusion_rows
    from .rows_location import register_location_encoder_rows
    from .rows_model import register_model_rows
    from .rows_pooling import register_pooling_rows
    from .rows_retrieval import register_retrieval_rows
    from .rows_species import register_species_rows

    register_retrieval_rows(registry)
    register_location_encoder_rows(registry)
    register_encoder_rows(registry)
    register_pooling_rows(registry)
    register_species_rows(registry)
    register_fusion_rows(registry)
    register_model_rows(registry)
    return registry
