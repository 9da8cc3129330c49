"""AG-CLIP: audio embeddings trained to match frozen location embeddings, plus checklists.

Loss of a batch of B windows (audio embedding ``a_i`` from the head, frozen location embedding
``g_j`` of recording j's true location, both L2-normalised):

* contrastive: logits ``t * a_i . g_j`` with ``t = exp(logit_scale)`` ≈ 39.7, GeoCLIP's learned
  temperature (the *exponentiated* value; the reference code multiplies by the log value,
  3.68, which is a bug), and cross-entropy over the batch from each audio window to the
  locations (audio -> location only, as GeoCLIP's image -> GPS loss; ``loss.symmetric: true``
  adds the location -> audio direction and averages the two). Windows of recordings made at
  exactly the same place are all positives for each other (soft targets split evenly), so a
  repeated site is not pushed away from itself;
* plus ``species_weight`` (0.01) × BCE between the species logits and the checklist at the
  true location (species whose range probability is >= 0.1), when a range model is configured.

The location embeddings are pluggable: any callable mapping (B, 2) lat/lon degrees to (B, D)
embeddings (``location_target``; normalised here) replaces GeoCLIP's encoder, e.g. the Table 2
encoders. They are computed once for the training locations and for the gallery (GeoCLIP's
are cached on disk), so a training step never runs the location encoder.

Prediction: average a recording's window embeddings, normalise, and return the most similar
gallery location (cosine similarity, top-1).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from geoforensics.core.errors import InputError
from geoforensics.core.geo.distance import check_coords
from geoforensics.core.geo.gallery import from_coords, resolve_gallery
from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings
from geoforensics.core.geoclip.location_encoder import geoclip_temperature
from geoforensics.core.models import ModelConfig
from geoforensics.train.config import LossConfig, OptimConfig, TrainConfig
from geoforensics.train.datamodule import GeoDataModule
from geoforensics.train.methods import register_method
from geoforensics.train.range_pretraining import create_or_pretrain_location_encoder
from geoforensics.train.tasks.base import (
    GeoTask,
    LocationTarget,
    model_config_for,
    pretrained_weights,
)

#: Rows per batch when embedding locations.
EMBED_BATCH = 4096


def create_location_target(
    name: str, range_model: Any = None, checkpoint: str | os.PathLike[str] | None = None
) -> LocationTarget | None:
    """The frozen location encoder called ``name``; ``None`` stands for GeoCLIP's wheel weights
    (the default, whose embeddings :func:`location_embeddings` caches on disk). Other names and
    checkpoints go to
    :func:`geoforensics.train.range_pretraining.create_or_pretrain_location_encoder`
    (``range_model`` lets it pretrain ``sinr``/``satclip`` when no checkpoint is given)."""
    if name == "geoclip" and checkpoint is None:
        return None
    encoder = create_or_pretrain_location_encoder(
        name, checkpoint=checkpoint, range_model=None if name == "geoclip" else range_model
    )
    encoder.requires_grad_(False).eval()
    return encoder


def location_embeddings(coords: np.ndarray, target: LocationTarget | None = None) -> np.ndarray:
    """(N, 2) lat/lon -> (N, D) float32 L2-normalised embeddings of the frozen target.

    ``None`` uses GeoCLIP's location encoder through the on-disk embedding cache.
    """
    array = check_coords(coords, "locations")
    if target is None:
        return cached_gallery_embeddings(array, progress=False)
    parts = []
    device = _device_of(target)
    with torch.no_grad():
        for start in range(0, len(array), EMBED_BATCH):
            chunk = torch.from_numpy(array[start : start + EMBED_BATCH]).to(device, torch.float32)
            parts.append(F.normalize(target(chunk).float(), dim=1).cpu().numpy())
    return np.concatenate(parts).astype(np.float32)


def _device_of(target: LocationTarget) -> torch.device:
    if isinstance(target, torch.nn.Module):
        for tensor in target.parameters():
            return tensor.device
    return torch.device("cpu")


def gallery_coords(specs: Sequence[str], train_coords: np.ndarray) -> np.ndarray:
    """Unique locations of the union of gallery specs (``train`` = the training locations;
    anything else goes to :func:`~geoforensics.core.geo.gallery.resolve_gallery`)."""

    parts = []
    for spec in specs:
        if spec == "train":
            parts.append(np.asarray(train_coords, dtype=np.float64).reshape(-1, 2))
        else:
            parts.append(resolve_gallery(spec).coords)
    if not parts:
        raise InputError("gallery: no gallery specs given")
    return from_coords(np.concatenate(parts), name="+".join(specs)).coords


def contrastive_loss(
    audio: torch.Tensor,
    locations: torch.Tensor,
    latlon: torch.Tensor,
    temperature: float,
    symmetric: bool = False,
) -> torch.Tensor:
    """Cross-entropy over the batch between audio and location embeddings (see the module
    docstring); rows at identical ``latlon`` share the positive mass."""
    logits = temperature * F.normalize(audio, dim=1) @ F.normalize(locations, dim=1).T
    same = (latlon[:, None, :] == latlon[None, :, :]).all(dim=-1).to(logits.dtype)
    targets = same / same.sum(dim=1, keepdim=True)
    loss = F.cross_entropy(logits, targets)
    if symmetric:
        # ``same`` is symmetric, so the same soft targets serve the location -> audio direction
        loss = 0.5 * (loss + F.cross_entropy(logits.T, targets))
    return loss


class AGCLIPTask(GeoTask):
    """AG-CLIP training (see the module docstring).

    ``train_coords`` are the training split's locations in split order (batches index them by
    their ``recording`` key); ``gallery`` the candidate locations of evaluation. ``temperature``
    defaults to GeoCLIP's exp(logit_scale).
    """

    def __init__(
        self,
        model_config: ModelConfig,
        train_coords: np.ndarray,
        gallery: np.ndarray,
        optim: OptimConfig | None = None,
        loss: LossConfig | None = None,
        location_target: LocationTarget | None = None,
        temperature: float | None = None,
        encoder_weights: str | None = None,
    ) -> None:
        if model_config.kind != "agclip":
            raise InputError(f"AGCLIPTask needs an agclip model config, got {model_config.kind!r}")
        super().__init__(model_config, optim, loss, encoder_weights)
        if temperature is None:
            temperature = geoclip_temperature()
        self.temperature = float(temperature)
        train_emb = location_embeddings(train_coords, location_target)
        if train_emb.shape[1] != model_config.embed_dim:
            raise InputError(
                f"location encoder gives {train_emb.shape[1]}-d embeddings but the model's "
                f"embed_dim is {model_config.embed_dim}"
            )
        self.gallery_coords = check_coords(gallery, "gallery")
        gallery_emb = location_embeddings(self.gallery_coords, location_target)
        self.train_targets: torch.Tensor
        self.gallery_embeddings: torch.Tensor
        self.register_buffer("train_targets", torch.from_numpy(train_emb), persistent=False)
        self.register_buffer("gallery_embeddings", torch.from_numpy(gallery_emb), persistent=False)

    def configure_losses(self) -> None:
        self.species_loss = torch.nn.BCEWithLogitsLoss()

    def compute_losses(
        self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        targets = self.train_targets[batch["recording"]]
        contrastive = contrastive_loss(
            outputs["embedding"],
            targets,
            batch["latlon"],
            self.temperature,
            symmetric=self.loss_config.symmetric,
        )
        losses = {"contrastive": contrastive}
        total = contrastive
        weight = self.loss_config.species_weight
        if self.model_config.n_species > 0 and "checklist" in batch and weight > 0:
            species = self.species_loss(outputs["species_logits"], batch["checklist"])
            losses["species"] = species
            total = total + weight * species
        losses["loss"] = total
        return losses

    def window_outputs(self, outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return outputs["embedding"]

    def output_width(self) -> int:
        return self.model_config.embed_dim

    def gallery_scores(self, pooled: torch.Tensor) -> torch.Tensor:
        """(R, G) cosine similarity of pooled (normalised) embeddings with the gallery."""
        query = F.normalize(pooled.to(self.gallery_embeddings.device, torch.float32), dim=1)
        return query @ self.gallery_embeddings.T

    def predict_pooled(self, pooled: torch.Tensor) -> np.ndarray:
        best = []
        for start in range(0, pooled.shape[0], 1024):
            best.append(self.gallery_scores(pooled[start : start + 1024]).argmax(dim=1).cpu())
        index = torch.cat(best).numpy() if best else np.zeros(0, dtype=np.int64)
        return self.gallery_coords[index]

    def export_extra(self) -> dict[str, Any]:
        """Settings saved with the exported model."""
        return {"temperature": self.temperature}


@register_method("agclip", model_kind="agclip")
def build_agclip_task(
    config: TrainConfig, datamodule: GeoDataModule, location_target: LocationTarget | None = None
) -> AGCLIPTask:
    """AG-CLIP's task: the frozen ``location_target`` (default: the config's location encoder,
    pretrained on the data's range model when it needs one) and the configured galleries."""
    target = location_target
    if target is None:
        target = create_location_target(
            config.model.location_encoder,
            range_model=datamodule.range_model,
            checkpoint=config.model.location_encoder_checkpoint,
        )
    embed_dim = 512
    if target is not None:
        embed_dim = int(location_embeddings(datamodule.train_coords[:1], target).shape[1])
    model_config = model_config_for(config, datamodule.n_species, embed_dim)
    return AGCLIPTask(
        model_config,
        train_coords=datamodule.train_coords,
        gallery=gallery_coords(config.eval.gallery, datamodule.train_coords),
        optim=config.optim,
        loss=config.loss,
        location_target=target,
        encoder_weights=pretrained_weights(config),
    )
