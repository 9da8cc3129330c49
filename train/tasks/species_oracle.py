"""Species-oracle rows of the benchmark: true-location checklists -> GeoCLIP space -> retrieval.

The oracle asks how well a location could be found if the species present were known
perfectly. Each recording's checklist (the range model's species at its TRUE location,
presence >= 0.1) goes through one linear layer into the GeoCLIP space (512-d, L2-normalised)
and the most similar gallery location is the prediction. The layer is trained on the train
split's locations with AG-CLIP's loss (:func:`.agclip.contrastive_loss`): cross-entropy over
the batch of exp(logit_scale) × cosine similarities with the frozen GeoCLIP embeddings of the
true locations (GeoCLIP's temperature, ≈ 39.7, applied as the exponential of its log value).

Variants (evaluated on the test split, corruptions seeded): ``full`` checklists, ``drop50``
(half the present species dropped per recording) and ``keep10`` (10 random present species
kept). By default one oracle, trained on full checklists, scores every variant: the variants
are test-time conditions, as the benchmark describes them. ``train_matched=True`` instead
trains each variant its own oracle on equally corrupted checklists (re-drawn every training
batch, validated on equally corrupted ones), which measures what that much species evidence
can tell about location without the input shift: on the synthetic worlds its drop50 row is
2-4× better (tiny: 169 vs 624 km median; small: 301 vs 469 km).

No audio is involved: training is seconds on coordinate and checklist tensors.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from geoforensics.core.data import INatSounds
from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import check_coords, haversine_torch
from geoforensics.core.geo.gallery import Gallery, from_coords, resolve_gallery
from geoforensics.core.geo.metrics import GeoMetrics, geolocation_errors, summarize_errors
from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings, embed_locations
from geoforensics.core.geoclip.location_encoder import geoclip_temperature
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.models.threads import torch_threads
from geoforensics.core.species.checklists import (
    CHECKLIST_THRESHOLD,
    CHECKLIST_VARIANTS,
    RangeModel,
    checklist_sizes,
    checklists,
    corrupt,
    dates_to_weeks,
)
from geoforensics.core.synth import SyntheticRangeModel
from geoforensics.train.tasks.agclip import contrastive_loss

log = logging.getLogger(__name__)


class SpeciesOracle(L.LightningModule):
    """Checklist (B, S) -> one linear layer -> (B, embed_dim) unit vectors in GeoCLIP space.

    With a validation gallery (:meth:`set_validation_gallery`), each validation round also
    retrieves the top-1 gallery location of every validation checklist and logs the median
    error ``val_median_km``, the quantity the oracle is judged by (the contrastive loss
    prefers hedged embeddings and picks too early an epoch).
    """

    gallery_coords: torch.Tensor
    gallery_embeddings: torch.Tensor

    def __init__(
        self,
        n_species: int,
        embed_dim: int = 512,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
        temperature: float | None = None,
    ) -> None:
        super().__init__()
        if n_species < 1:
            raise InputError(f"species oracle: need at least one species, got {n_species}")
        if temperature is None:
            temperature = geoclip_temperature()
        self.save_hyperparameters()
        self.proj = nn.Linear(n_species, embed_dim)
        self.temperature = float(temperature)
        self.lr, self.weight_decay = lr, weight_decay
        self.register_buffer("gallery_coords", torch.empty(0, 2), persistent=False)
        self.register_buffer("gallery_embeddings", torch.empty(0, embed_dim), persistent=False)
        self._val_errors: list[torch.Tensor] = []

    def set_validation_gallery(self, coords: np.ndarray, embeddings: np.ndarray) -> None:
        """Candidate locations (N, 2) and their unit GeoCLIP embeddings (N, embed_dim)."""
        self.gallery_coords = torch.as_tensor(coords, dtype=torch.float64)
        self.gallery_embeddings = F.normalize(torch.as_tensor(embeddings).float(), dim=1)

    def forward(self, checklist: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(checklist.float()), dim=1)

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        checklist, target, latlon = batch
        loss = contrastive_loss(self(checklist), target, latlon, self.temperature)
        self.log("train_loss", loss, batch_size=len(checklist))
        return loss

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        checklist, target, true_coords = batch
        pred = self(checklist)
        loss = contrastive_loss(pred, target, true_coords, self.temperature)
        self.log("val_loss", loss, batch_size=len(checklist))
        if len(self.gallery_coords):
            best = (pred @ self.gallery_embeddings.T).argmax(dim=1)
            self._val_errors.append(
                haversine_torch(self.gallery_coords[best], true_coords.double()).float()
            )
        return loss

    def on_validation_epoch_end(self) -> None:
        if self._val_errors:
            errors = torch.cat(self._val_errors)
            self._val_errors = []
            self.log("val_median_km", errors.median())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class _CorruptingCollate:
    """Stacks a batch and applies a checklist variant to it with a seeded generator."""

    def __init__(self, variant: str, seed: int) -> None:
        self.variant = variant
        self.rng = np.random.default_rng(seed)

    def __call__(self, items: list[tuple[torch.Tensor, ...]]) -> list[torch.Tensor]:
        checklist, target, latlon = (torch.stack(column) for column in zip(*items, strict=True))
        if self.variant != "full":
            corrupted = corrupt(checklist.numpy() > 0.5, self.variant, self.rng)
            checklist = torch.from_numpy(corrupted.astype(np.float32))
        return [checklist, target, latlon]


class ChecklistDataModule(L.LightningDataModule):
    """In-memory (checklist, target embedding, true lat/lon) rows for training and validation."""

    def __init__(
        self,
        train_checklists: np.ndarray,
        train_targets: np.ndarray,
        train_coords: np.ndarray,
        val_checklists: np.ndarray,
        val_targets: np.ndarray,
        val_coords: np.ndarray,
        batch_size: int = 128,
        seed: int = 0,
        train_variant: str = "full",
    ) -> None:
        super().__init__()
        if not len(train_checklists) == len(train_targets) == len(train_coords) > 0:
            raise InputError("species oracle: training checklists, targets and coords must match")
        if not len(val_checklists) == len(val_targets) == len(val_coords) or not len(val_coords):
            raise InputError("species oracle: validation checklists, targets and coords must match")
        self.train_set = TensorDataset(
            torch.from_numpy(np.asarray(train_checklists, dtype=np.float32)),
            torch.from_numpy(np.asarray(train_targets, dtype=np.float32)),
            torch.from_numpy(np.asarray(train_coords, dtype=np.float64)),
        )
        self.val_set = TensorDataset(
            torch.from_numpy(np.asarray(val_checklists, dtype=np.float32)),
            torch.from_numpy(np.asarray(val_targets, dtype=np.float32)),
            torch.from_numpy(np.asarray(val_coords, dtype=np.float64)),
        )
        self.batch_size, self.seed, self.train_variant = batch_size, seed, train_variant

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(self.seed),
            collate_fn=_CorruptingCollate(self.train_variant, self.seed),
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1024, shuffle=False)


class KeepBestWeights(L.Callback):
    """Keeps the weights of the epoch with the lowest ``monitor`` in memory; restores them at
    the end of fitting (the best model, not the last)."""

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best_score = float("inf")
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        if score < self.best_score:
            self.best_score, self.best_epoch = score, trainer.current_epoch
            self.best_state = copy.deepcopy(pl_module.state_dict())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)


@dataclass(frozen=True)
class OracleResult:
    """One oracle row: metrics, per-recording predictions (N, 2) and errors (km), checklist
    sizes of the variant, and how the oracle was trained."""

    variant: str
    metrics: GeoMetrics
    predictions: np.ndarray
    errors_km: np.ndarray
    checklist_sizes: dict[str, float]
    training: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's per-fit INFO banners (GPU available, tips) for these small fits."""
    logger = logging.getLogger("lightning.pytorch")
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def train_species_oracle(
    train_checklists: np.ndarray,
    train_targets: np.ndarray,
    train_coords: np.ndarray,
    val_checklists: np.ndarray,
    val_targets: np.ndarray,
    val_coords: np.ndarray,
    gallery_coords: np.ndarray | None = None,
    gallery_embeddings: np.ndarray | None = None,
    max_epochs: int = 200,
    batch_size: int = 128,
    lr: float = 1e-2,
    seed: int = 0,
    train_variant: str = "full",
    check_val_every_n_epoch: int = 5,
    num_threads: int | None = 1,
) -> tuple[SpeciesOracle, dict[str, Any]]:
    """Fit a :class:`SpeciesOracle`; keeps the validation round with the lowest median
    retrieval error over the gallery (the lowest validation loss without a gallery).

    ``train_variant`` other than ``full`` corrupts every training batch afresh and the
    validation checklists once (seeded).

    ``num_threads`` (default 1) limits torch's threads while fitting: the layer is so small
    that more threads only add overhead (ten times slower on a busy 2-core machine).
    """
    L.seed_everything(seed, workers=True, verbose=False)
    if train_variant != "full":
        # Validation sees the same condition as training, drawn once so rounds compare.
        val_checklists = corrupt(val_checklists > 0, train_variant, np.random.default_rng(seed))
    data = ChecklistDataModule(
        train_checklists,
        train_targets,
        train_coords,
        val_checklists,
        val_targets,
        val_coords,
        batch_size=batch_size,
        seed=seed,
        train_variant=train_variant,
    )
    model = SpeciesOracle(
        n_species=train_checklists.shape[1], embed_dim=train_targets.shape[1], lr=lr
    )
    monitor = "val_loss"
    if gallery_coords is not None and gallery_embeddings is not None:
        model.set_validation_gallery(gallery_coords, gallery_embeddings)
        monitor = "val_median_km"
    best = KeepBestWeights(monitor)
    with torch_threads(num_threads), _quiet_lightning():
        trainer = L.Trainer(
            max_epochs=max_epochs,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[best],
            check_val_every_n_epoch=check_val_every_n_epoch,
            num_sanity_val_steps=0,
        )
        trainer.fit(model, datamodule=data)
    model.eval()
    info = {
        "train_rows": len(train_checklists),
        "max_epochs": max_epochs,
        "monitor": monitor,
        "best_epoch": best.best_epoch + 1,
        "best_score": best.best_score,
        "train_variant": train_variant,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
    }
    return model, info


def predict_locations(
    model: SpeciesOracle,
    checklist: np.ndarray,
    gallery_coords: np.ndarray,
    gallery_embeddings: np.ndarray,
) -> np.ndarray:
    """Top-1 gallery location (N, 2) for each checklist row."""

    with torch.inference_mode():
        queries = model(torch.from_numpy(np.asarray(checklist, dtype=np.float32))).cpu().numpy()
    index = RetrievalIndex(gallery_coords, gallery_embeddings)
    return index.search(queries, k=1).coords[:, 0, :]


def _resolve_range_model(range_model: RangeModel | str | Path | None, root: Path) -> RangeModel:
    if range_model is None or isinstance(range_model, str | Path):
        return SyntheticRangeModel.load(root if range_model is None else range_model)
    return range_model


def _resolve_gallery(gallery: Gallery | str | ArrayLike) -> Gallery:
    if isinstance(gallery, Gallery):
        return gallery
    if isinstance(gallery, str):
        return resolve_gallery(gallery)
    return from_coords(gallery, name="custom")


def _split_checklists(
    root: Path, split: str, range_model: RangeModel, use_dates: bool, threshold: float
) -> tuple[np.ndarray, np.ndarray]:

    data = INatSounds(root, split, require_audio=False)
    coords = data.coords()
    if len(coords) == 0:
        raise InputError(f"{root / (split + '.json')}: no recordings with a location")
    weeks = dates_to_weeks([r.date for r in data]) if use_dates else None
    return coords, checklists(range_model, coords, weeks, threshold)


def _unique_rows(coords: np.ndarray, lists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per distinct (location, checklist): a site recorded 50 times would otherwise
    weigh 50 times in training (the loss itself treats equal locations as shared positives)."""
    keyed = np.concatenate([coords, lists.astype(np.float64)], axis=1)
    _, first = np.unique(keyed, axis=0, return_index=True)
    first = np.sort(first)
    return coords[first], lists[first]


def run_species_oracle(
    dataset_root: str | Path,
    range_model: RangeModel | str | Path | None = None,
    gallery: Gallery | str | ArrayLike = "land-1deg",
    variants: Sequence[str] = CHECKLIST_VARIANTS,
    seed: int = 0,
    train_matched: bool = False,
    use_dates: bool = False,
    threshold: float = CHECKLIST_THRESHOLD,
    max_epochs: int = 200,
    batch_size: int = 128,
    lr: float = 1e-2,
    test_split: str = "test",
    extra_sets: Mapping[str, tuple[ArrayLike, Sequence[Any] | None]] | None = None,
) -> dict[str, OracleResult]:
    """The species-oracle rows on an iNatSounds-format dataset: variant -> :class:`OracleResult`.

    ``range_model``: a range model, a path to a synthetic world's range model, or None (the
    dataset's own ``ROOT/world``). ``gallery``: a :class:`Gallery`, a gallery spec or file
    (``land-1deg``, ``file:PATH``...), or (N, 2) coordinates. ``use_dates`` makes week-specific
    checklists from the recording dates (year-round where a date is missing).

    ``extra_sets`` scores the same oracles on other recordings, given by name as (true
    coordinates (N, 2), dates or None), e.g. the XCDC dawn choruses; their results are keyed
    ``"NAME:VARIANT"``.
    """

    root = Path(dataset_root).expanduser()
    model_ranges = _resolve_range_model(range_model, root)
    for variant in variants:
        corrupt(np.zeros((1, 1), dtype=bool), variant)  # validates the name early
    train_coords, train_lists = _unique_rows(
        *_split_checklists(root, "train", model_ranges, use_dates, threshold)
    )
    val_coords, val_lists = _split_checklists(root, "val", model_ranges, use_dates, threshold)
    test_coords, test_lists = _split_checklists(
        root, test_split, model_ranges, use_dates, threshold
    )
    train_targets = embed_locations(train_coords)
    val_targets = embed_locations(val_coords)
    candidates = _resolve_gallery(gallery)
    gallery_emb = cached_gallery_embeddings(candidates)

    results: dict[str, OracleResult] = {}

    def fit(train_variant: str) -> tuple[SpeciesOracle, dict[str, Any]]:
        return train_species_oracle(
            train_lists,
            train_targets,
            train_coords,
            val_lists,
            val_targets,
            val_coords,
            candidates.coords,
            gallery_emb,
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            train_variant=train_variant,
        )

    trained: dict[str, tuple[SpeciesOracle, dict[str, Any]]] = {}
    largest = int(max(train_lists.sum(axis=1).max(), val_lists.sum(axis=1).max()))
    for variant in variants:
        train_variant = variant if train_matched else "full"
        keep = re.fullmatch(r"keep(\d+)", train_variant)
        if keep and int(keep.group(1)) >= largest:
            train_variant = "full"  # keeping K species changes no checklist: same training
        if train_variant not in trained:
            trained[train_variant] = fit(train_variant)
        model, info = trained[train_variant]
        # Seeded by the variant's name, so a row does not depend on the order of the variants.
        rng = np.random.default_rng([seed, zlib.crc32(variant.encode())])
        test_variant = corrupt(test_lists, variant, rng)
        predictions = predict_locations(model, test_variant, candidates.coords, gallery_emb)
        errors = geolocation_errors(predictions, test_coords)
        results[variant] = OracleResult(
            variant=variant,
            metrics=summarize_errors(errors),
            predictions=predictions,
            errors_km=errors,
            checklist_sizes=checklist_sizes(test_variant),
            training={**info, "gallery": candidates.name, "gallery_size": len(candidates)},
        )
        log.info("species oracle %s: median %.0f km", variant, results[variant].metrics.median_km)
        for set_name, (set_coords, set_dates) in (extra_sets or {}).items():
            coords = check_coords(set_coords, f"{set_name} locations")
            weeks = dates_to_weeks(list(set_dates)) if use_dates and set_dates else None
            lists = checklists(model_ranges, coords, weeks, threshold)
            rng = np.random.default_rng([seed, zlib.crc32(f"{set_name}:{variant}".encode())])
            lists = corrupt(lists, variant, rng)
            predicted = predict_locations(model, lists, candidates.coords, gallery_emb)
            errors = geolocation_errors(predicted, coords)
            results[f"{set_name}:{variant}"] = OracleResult(
                variant=variant,
                metrics=summarize_errors(errors),
                predictions=predicted,
                errors_km=errors,
                checklist_sizes=checklist_sizes(lists),
                training={**info, "gallery": candidates.name, "gallery_size": len(candidates)},
            )
    return results
