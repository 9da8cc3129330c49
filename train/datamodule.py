"""Lightning data module: iNatSounds-format splits -> batches of cached spectrogram windows.

Each split's recordings are turned into whole-recording spectrograms once
(:mod:`.spec_cache`); batches carry uint8 window slices, which
:meth:`GeoDataModule.on_after_batch_transfer` turns into model inputs on the training device
(resize to the encoder's image size, channels, normalisation: the front-end's own code).

With a frozen ``waveform-features`` encoder (BirdNET) each split's window features are computed
once instead (:mod:`.feature_cache`) and batches carry them directly as the model inputs
(``image`` is then (B, feature_dim) float32); ``frame`` is a cached window's number. Sampling is
the same, over the cached windows (the paper's 3 s / 1.5 s grid) instead of random frames.

Batch keys (after transfer): ``image`` (B, C, H, W) float32, ``latlon`` (B, 2) float32
degrees, ``category`` (B,) int64, ``recording`` (B,) int64 (position in the split),
``frame`` (B,) int64 (window start frame), and ``checklist`` (B, S) float32 when a range
model is configured (species present at the true location, in dataset category order).

Sampling:

* training: ``windows_per_recording`` random windows of every recording per epoch (the paper:
  one), at a random whole-frame offset; order and offsets depend only on (seed, epoch), so a
  resumed run sees the same data as an uninterrupted one. Under DDP each process takes every
  ``world_size``-th item of the same permutation (padded by wrapping so all processes make the
  same number of steps);
* evaluation: every dense window of every recording, each process a disjoint share (no
  padding, so no window is counted twice when window outputs are pooled per recording).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from geoforensics.core.audio.frontend import FrontEndConfig, MelFrontEnd
from geoforensics.core.data import INatSounds
from geoforensics.core.errors import InputError
from geoforensics.core.fileio import sha256_file
from geoforensics.core.models.encoders import get_encoder_config
from geoforensics.core.species.checklists import RangeModel
from geoforensics.core.species.checklists import checklists as checklists_at
from geoforensics.core.species.ranges import load_range_model
from geoforensics.core.synth import SyntheticRangeModel
from geoforensics.train.config import TrainConfig
from geoforensics.train.feature_cache import FeatureCache, build_feature_cache
from geoforensics.train.spec_cache import (
    SpectrogramCache,
    build_spectrogram_cache,
    images_from_frames,
)

#: A split's window cache: spectrogram frames, or a frozen encoder's window features.
WindowCache = SpectrogramCache | FeatureCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitData:
    """One split's recordings and targets: ``coords`` (R, 2) float64, ``labels`` (R,) int64,
    ``checklists`` (R, S) bool or None, ``source`` the SHA-256 of the split file."""

    name: str
    dataset: INatSounds
    coords: np.ndarray
    labels: np.ndarray
    checklists: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def ids(self) -> np.ndarray:
        """(R,) recording ids."""
        return np.array([r.id for r in self.dataset], dtype=np.int64)


def align_checklists(
    presence_species: list[str], dataset_species: list[str], checklist: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Reorder range-model checklist columns into dataset category order by scientific name.

    Returns the (N, len(dataset_species)) bool array (False for species the range model does
    not know) and the names of dataset species without a range.
    """
    column = {name: i for i, name in enumerate(presence_species)}
    out = np.zeros((checklist.shape[0], len(dataset_species)), dtype=bool)
    unmatched: list[str] = []
    for j, name in enumerate(dataset_species):
        i = column.get(name)
        if i is None:
            unmatched.append(name)
        else:
            out[:, j] = checklist[:, i]
    return out, unmatched


class CachedWindowDataset(Dataset[dict[str, Any]]):
    """Items are windows of cached spectrograms (key ``spec``) or cached window features (key
    ``image``), addressed by ``(recording, frame)`` keys. (Windows decoded from the audio files
    themselves are :class:`geoforensics.core.data.WindowDataset`'s.)

    The frames file is memory-mapped lazily in each process (DataLoader workers included).
    """

    def __init__(self, cache: WindowCache, split: SplitData) -> None:
        if len(cache) != len(split):
            raise InputError(
                f"spectrogram cache has {len(cache)} recordings, split {split.name} {len(split)}"
            )
        self.cache = cache
        self.coords = split.coords.astype(np.float32)
        self.labels = split.labels
        self.checklists = split.checklists
        self._frames: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_frames"] = None  # re-opened in the receiving process
        return state

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        recording, frame = int(key[0]), int(key[1])
        if self._frames is None:
            self._frames = self.cache.memmap()
        name = FeatureCache.input_key if isinstance(self.cache, FeatureCache) else "spec"
        item: dict[str, Any] = {
            name: torch.from_numpy(self.cache.window(recording, frame, self._frames)),
            "latlon": torch.from_numpy(self.coords[recording]),
            "category": torch.tensor(self.labels[recording], dtype=torch.int64),
            "recording": torch.tensor(recording, dtype=torch.int64),
            "frame": torch.tensor(frame, dtype=torch.int64),
        }
        if self.checklists is not None:
            item["checklist"] = torch.from_numpy(self.checklists[recording].astype(np.float32))
        return item


class RandomWindowSampler(Sampler[tuple[int, int]]):
    """``per_recording`` random windows of every recording per epoch, shuffled.

    ``room[r]`` is the number of valid start frames of recording r. The permutation and the
    offsets depend only on ``(seed, epoch)``; with ``world_size`` processes, process ``rank``
    takes items ``rank, rank + world_size, ...`` of the list padded (by wrapping) to a multiple
    of ``world_size``.
    """

    def __init__(
        self,
        room: np.ndarray,
        seed: int = 0,
        per_recording: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.room = np.asarray(room, dtype=np.int64)
        self.seed = int(seed)
        self.per_recording = int(per_recording)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the windows of ``epoch`` next (Lightning calls this before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        total = self.room.size * self.per_recording
        return math.ceil(total / self.world_size)

    def items(self) -> list[tuple[int, int]]:
        """This process's ``(recording, start frame)`` pairs for the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        recordings = np.repeat(np.arange(self.room.size, dtype=np.int64), self.per_recording)
        recordings = recordings[rng.permutation(recordings.size)]
        frames = (rng.random(recordings.size) * self.room[recordings]).astype(np.int64)
        padded = len(self) * self.world_size
        if padded > recordings.size:
            extra = np.arange(padded - recordings.size) % max(1, recordings.size)
            recordings = np.concatenate([recordings, recordings[extra]])
            frames = np.concatenate([frames, frames[extra]])
        mine = slice(self.rank, padded, self.world_size)
        return list(zip(recordings[mine].tolist(), frames[mine].tolist(), strict=True))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.items())


class DenseWindowSampler(Sampler[tuple[int, int]]):
    """Every dense window of every recording, in recording order; process ``rank`` of
    ``world_size`` takes every ``world_size``-th window (disjoint shares, no padding)."""

    def __init__(self, cache: WindowCache, rank: int = 0, world_size: int = 1) -> None:
        frames = [cache.dense_frames(recording) for recording in range(len(cache))]
        counts = np.array([f.size for f in frames], dtype=np.int64)
        recordings = np.repeat(np.arange(len(cache), dtype=np.int64), counts)
        starts = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int64)
        self.recordings = recordings[rank::world_size]
        self.frames = starts[rank::world_size]

    def __len__(self) -> int:
        return int(self.recordings.size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.recordings.tolist(), self.frames.tolist(), strict=True)


class GeoDataModule(L.LightningDataModule):
    """Train / val / test splits of an iNatSounds-format dataset as cached window batches.

    ``frontend`` is the model's front-end config (its image size is the encoder's). Call
    :meth:`load_metadata` (cheap: reads the split files and the range model) to get the train
    locations and species count before building a task; Lightning then calls
    :meth:`prepare_data` (builds the spectrogram caches, or the window-feature caches of a
    waveform-features encoder, once per machine) and :meth:`setup`.
    """

    def __init__(
        self, config: TrainConfig, frontend: FrontEndConfig, progress: bool = True
    ) -> None:

        super().__init__()
        self.config = config
        self.frontend_config = frontend
        self.frozen_features = get_encoder_config(config.model.encoder).frozen_features
        # a waveform-features encoder's batches are features already: no mel front-end
        self.frontend: MelFrontEnd | None = None if self.frozen_features else MelFrontEnd(frontend)
        self.progress = progress
        self.splits: dict[str, SplitData] = {}
        self.range_model: Any = None
        self.species_names: list[str] = []
        self.caches: dict[str, WindowCache] = {}

    # ------------------------------------------------------------------ metadata

    @property
    def split_names(self) -> dict[str, str]:
        """Role (train / val / test) -> split file name."""
        data = self.config.data
        roles = {"train": data.train_split, "val": data.val_split}
        if self.config.eval.test:
            roles["test"] = data.test_split
        return roles

    def load_metadata(self) -> None:
        """Read every split file and compute checklists (idempotent)."""
        if self.splits:
            return
        data = self.config.data
        range_model: RangeModel | None = None
        if data.range_model == "synthetic":
            range_model = SyntheticRangeModel.load(data.root)
        elif data.range_model != "none":
            range_model = load_range_model(data.range_model)
        self.range_model = range_model
        for role, name in self.split_names.items():
            dataset = INatSounds(data.root, name)
            if len(dataset) == 0:
                raise InputError(f"{dataset.json_path}: no recordings with a location")
            coords = dataset.coords()
            checklists = None
            if range_model is not None:
                present = checklists_at(
                    range_model, coords, None, threshold=data.checklist_threshold
                )
                checklists, unmatched = align_checklists(
                    list(range_model.species), dataset.species_names, present
                )
                if unmatched and role == "train":
                    log.warning(
                        "%d of %d dataset species have no range in the range model (e.g. %s)",
                        len(unmatched),
                        dataset.num_classes,
                        unmatched[0],
                    )
            self.splits[role] = SplitData(
                name=name,
                dataset=dataset,
                coords=coords,
                labels=dataset.labels(),
                checklists=checklists,
                source=sha256_file(dataset.json_path),
            )
        self.species_names = self.splits["train"].dataset.species_names

    @property
    def train_coords(self) -> np.ndarray:
        """(R, 2) float64 locations of the training recordings."""
        self.load_metadata()
        return self.splits["train"].coords

    @property
    def n_species(self) -> int:
        """Checklist width (dataset categories) when a range model is configured, else 0."""
        self.load_metadata()
        if self.splits["train"].checklists is None:
            return 0
        return len(self.species_names)

    # ------------------------------------------------------------------ caches

    def _cache(self, role: str) -> WindowCache:
        if role not in self.caches and self.frozen_features:
            split = self.splits[role]
            data = self.config.data
            self.caches[role] = build_feature_cache(
                split.dataset.recordings,
                self.config.model.encoder,
                self.frontend_config,
                source=split.source,
                root=data.cache_dir,
                max_windows=data.feature_windows if role == "train" else 0,
                progress=self.progress,
                description=f"{self.config.model.encoder} features {split.name}",
            )
        if role not in self.caches:
            split = self.splits[role]
            self.caches[role] = build_spectrogram_cache(
                split.dataset.recordings,
                self.frontend_config,
                source=split.source,
                root=self.config.data.cache_dir,
                workers=self.config.data.cache_workers,
                progress=self.progress,
                description=f"spectrograms {split.name}",
            )
        return self.caches[role]

    def prepare_data(self) -> None:
        """Build (or find) the spectrogram (or window-feature) cache of every split."""
        self.load_metadata()
        for role in self.split_names:
            self._cache(role)

    def setup(self, stage: str | None = None) -> None:
        """Open the caches (reads only, when :meth:`prepare_data` built them)."""
        self.load_metadata()
        for role in self.split_names:
            self._cache(role)

    # ------------------------------------------------------------------ loaders

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, role: str, sampler: Sampler[tuple[int, int]], batch_size: int) -> DataLoader:
        workers = self.config.train.num_workers
        return DataLoader(
            CachedWindowDataset(self._cache(role), self.splits[role]),
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sampler = RandomWindowSampler(
            self._cache("train").random_frame_room(),
            seed=self.config.train.seed,
            per_recording=self.config.train.windows_per_recording,
            rank=rank,
            world_size=world,
        )
        return self._loader("train", sampler, self.config.optim.batch_size)

    def eval_dataloader(self, role: str) -> DataLoader:
        """Dense windows of the ``val`` or ``test`` split (this process's share)."""
        self.load_metadata()
        if role not in self.splits:
            raise InputError(f"no {role} split configured")
        rank, world = self._rank_world()
        sampler = DenseWindowSampler(self._cache(role), rank=rank, world_size=world)
        return self._loader(role, sampler, self.config.train.eval_batch_size)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Turn uint8 window slices into model inputs on the device (see the module doc)."""
        if isinstance(batch, dict) and "spec" in batch:
            if self.frontend is None:  # pragma: no cover - feature caches give "image"
                raise InputError("spectrogram windows in a waveform-features data module")
            batch = dict(batch)
            batch["image"] = images_from_frames(batch.pop("spec"), self.frontend)
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Nothing to save: sampling depends only on (seed, epoch)."""
        return {}
