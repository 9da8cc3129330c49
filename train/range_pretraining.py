"""Range pretraining: a ``sinr`` or ``satclip`` location encoder trained as a range model.

Without a public checkpoint, the Table 2 encoders are trained here on a range model's
presence/absence (BCE on species presence at random points, as SINR is trained), which is
how the synthetic world gets its own SINR and SatCLIP. Results are cached as files of
:func:`~geoforensics.core.models.location.save_location_encoder`, so the core library loads
them without training (it never imports this module).
:func:`create_or_pretrain_location_encoder` is what AG-CLIP training calls: a checkpoint when
given, else pretraining on the run's range model.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.fileio import sha256_arrays
from geoforensics.core.geo.distance import check_coords
from geoforensics.core.geo.land import destination, load_land_grid, random_land_points
from geoforensics.core.models.location import (
    LocationEncoder,
    SatCLIPEncoder,
    SINREncoder,
    create_location_encoder,
    load_location_encoder_file,
    save_location_encoder,
)
from geoforensics.core.models.threads import torch_threads
from geoforensics.core.paths import cache_dir
from geoforensics.core.species.checklists import checklists


def create_or_pretrain_location_encoder(
    name: str,
    checkpoint: str | os.PathLike[str] | None = None,
    range_model: Any = None,
    **kwargs: Any,
) -> LocationEncoder:
    """A frozen location encoder by name, as
    :func:`~geoforensics.core.models.location.create_location_encoder`; without a checkpoint,
    ``sinr`` and ``satclip`` need ``range_model`` and are pretrained on it
    (:func:`pretrain_range_encoder`, cached; ``kwargs`` go to it).
    """
    if name == "geoclip" and range_model is not None:
        raise InputError("the geoclip location encoder takes only a weights file")
    if checkpoint is not None or name not in DEFAULT_PRETRAIN_LR:
        return create_location_encoder(name, checkpoint=checkpoint, **kwargs)
    if range_model is None:
        raise WeightsNotFoundError(
            f"{name}: no checkpoint given; pass checkpoint=PATH (the public {name.upper()} "
            "weights or a file saved by save_location_encoder) or range_model=... to pretrain "
            "one on a range model"
        )
    return pretrain_range_encoder(name, range_model, **kwargs)


def range_training_points(
    n_points: int,
    seed: int = 0,
    sphere_fraction: float = 0.2,
    focus_coords: ArrayLike | None = None,
    focus_fraction: float = 0.5,
    focus_km: float = 300.0,
) -> np.ndarray:
    """(n_points, 2) lat/lon where a range model is queried for pretraining.

    A ``sphere_fraction`` of the points is uniform over the whole sphere (mostly sea, where
    nothing lives: the encoder learns absence there too); with ``focus_coords`` (e.g. the
    training recordings) a ``focus_fraction`` lies within about ``focus_km`` of them; the rest
    is area-uniform over land (latitudes -56..75).
    """
    if n_points < 1:
        raise InputError(f"range pretraining: n_points must be >= 1, got {n_points}")
    if not 0.0 <= sphere_fraction <= 1.0 or not 0.0 <= focus_fraction <= 1.0:
        raise InputError("range pretraining: fractions must be in [0, 1]")
    rng = np.random.default_rng(seed)
    n_sphere = round(n_points * sphere_fraction)
    focus = None if focus_coords is None else check_coords(focus_coords, "focus locations")
    n_focus = 0 if focus is None or len(focus) == 0 else round(n_points * focus_fraction)
    n_focus = min(n_focus, n_points - n_sphere)
    n_land = n_points - n_sphere - n_focus
    parts = []
    if n_sphere:
        lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n_sphere)))
        parts.append(np.stack([lat, rng.uniform(-180.0, 180.0, n_sphere)], axis=1))
    if n_focus and focus is not None:
        anchor = focus[rng.integers(0, len(focus), n_focus)]
        dist = focus_km * np.sqrt(rng.uniform(size=n_focus))
        lat, lon = destination(anchor[:, 0], anchor[:, 1], dist, rng.uniform(0, 2 * np.pi, n_focus))
        parts.append(np.stack([lat, lon], axis=1))
    if n_land:
        lat, lon = random_land_points(rng, n_land, load_land_grid())
        parts.append(np.stack([lat, lon], axis=1))
    points = np.concatenate(parts).astype(np.float64)
    return points[rng.permutation(len(points))]


def _macro_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean ROC AUC over the species that have both presences and absences (NaN if none)."""
    keep = (labels.sum(axis=0) > 0) & (labels.sum(axis=0) < len(labels))
    if not keep.any():
        return float("nan")
    return float(roc_auc_score(labels[:, keep], scores[:, keep], average="macro"))


def _bce(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy of ``logits`` against 0/1 ``labels``."""
    t_logits = torch.from_numpy(logits.astype(np.float32))
    t_labels = torch.from_numpy(labels.astype(np.float32))
    return float(F.binary_cross_entropy_with_logits(t_logits, t_labels))


#: Adam learning rates of range pretraining: the better of 1e-3 and 3e-3 for short runs on the
#: tiny synthetic world (SINR itself trains far longer at 5e-4).
DEFAULT_PRETRAIN_LR: dict[str, float] = {"sinr": 3e-3, "satclip": 3e-3}


def _build_for_range(
    kind: str, n_species: int, species: list[str], **kwargs: Any
) -> LocationEncoder:
    """A fresh ``kind`` encoder with a species head for ``species``."""
    try:
        if kind == "sinr":
            return SINREncoder(num_classes=n_species, species=species, **kwargs)
        return SatCLIPEncoder(num_classes=n_species, species=species, **kwargs)
    except TypeError as exc:
        raise InputError(f"range pretraining: bad {kind} encoder option ({exc})") from exc


def _range_model_fingerprint(range_model: Any) -> str:
    """Hash of a range model's presence at fixed probe points (identity for caching)."""
    rng = np.random.default_rng(12345)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 4096)))
    lon = rng.uniform(-180.0, 180.0, 4096)
    presence = np.asarray(range_model.presence(lat, lon, None), dtype=np.float32)
    return sha256_arrays(presence, extra="|".join(map(str, range_model.species)))


def pretrain_range_encoder(
    kind: str,
    range_model: Any,
    n_points: int = 20_000,
    epochs: int = 30,
    seed: int = 0,
    batch_size: int = 512,
    lr: float | None = None,
    threshold: float = 0.1,
    val_fraction: float = 0.1,
    focus_coords: ArrayLike | None = None,
    sphere_fraction: float = 0.2,
    cache: bool = True,
    progress: bool = False,
    num_threads: int | None = None,
    **encoder_kwargs: Any,
) -> LocationEncoder:
    """Train a ``sinr`` or ``satclip`` encoder as a range model and return it frozen.

    Presence/absence targets are the range model's year-round checklists (presence >=
    ``threshold``) at :func:`range_training_points`; the loss is BCE over all species, Adam
    (``lr`` defaults to :data:`DEFAULT_PRETRAIN_LR`), and the epoch with the lowest validation
    BCE is kept. ``encoder_kwargs`` go to the encoder (e.g. ``legendre_polys``);
    ``num_threads`` limits torch's threads while training. ``pretrain_info`` holds the
    validation BCE, the BCE of a constant per-species prevalence and the macro ROC AUC.
    With ``cache``, the result is stored under the cache folder keyed by the range model's
    fingerprint and every argument, and reused.
    """
    species = [str(s) for s in range_model.species]
    if kind not in DEFAULT_PRETRAIN_LR:
        raise InputError(f"range pretraining: kind {kind!r} must be 'sinr' or 'satclip'")
    lr = DEFAULT_PRETRAIN_LR[kind] if lr is None else lr
    if epochs < 1 or batch_size < 1 or not 0.0 < val_fraction < 1.0:
        raise InputError(
            "range pretraining: need epochs >= 1, batch_size >= 1, 0 < val_fraction < 1"
        )
    settings = {
        "kind": kind,
        "n_points": n_points,
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "threshold": threshold,
        "val_fraction": val_fraction,
        "sphere_fraction": sphere_fraction,
        "encoder": encoder_kwargs,
    }
    cache_file: Path | None = None
    if cache:
        focus_sha = (
            "none" if focus_coords is None else sha256_arrays(check_coords(focus_coords, "focus"))
        )
        key = sha256_arrays(
            extra=json.dumps(settings, sort_keys=True)
            + _range_model_fingerprint(range_model)
            + focus_sha
        )[:32]
        cache_file = cache_dir("location_encoders") / f"{kind}-{key}.safetensors"
        if cache_file.is_file():
            try:
                return load_location_encoder_file(cache_file)
            except (InputError, WeightsNotFoundError):
                pass  # damaged cache entry: train again
    with torch_threads(num_threads):
        encoder = _fit_range_encoder(
            kind, range_model, species, settings, focus_coords, encoder_kwargs, progress
        )
    if cache_file is not None:
        save_location_encoder(encoder, cache_file, encoder.pretrain_info)
    return encoder


def _fit_range_encoder(
    kind: str,
    range_model: Any,
    species: list[str],
    settings: dict[str, Any],
    focus_coords: ArrayLike | None,
    encoder_kwargs: dict[str, Any],
    progress: bool,
) -> LocationEncoder:
    """The training loop of :func:`pretrain_range_encoder` (arguments in ``settings``)."""
    started = time.perf_counter()
    seed, n_points, epochs = settings["seed"], settings["n_points"], settings["epochs"]
    batch_size, lr = settings["batch_size"], settings["lr"]
    torch.manual_seed(seed)
    encoder = _build_for_range(kind, len(species), species, **encoder_kwargs)
    points = range_training_points(n_points, seed, settings["sphere_fraction"], focus_coords)
    labels = checklists(range_model, points, threshold=settings["threshold"]).astype(np.float32)
    n_val = max(1, round(len(points) * settings["val_fraction"]))
    x_train = torch.from_numpy(points[n_val:]).float()
    y_train = torch.from_numpy(labels[n_val:])
    x_val, y_val = points[:n_val], labels[:n_val]
    optimiser = torch.optim.Adam(encoder.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    head = encoder.presence_logits
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    history: list[float] = []
    for _epoch in range(epochs):
        encoder.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = F.binary_cross_entropy_with_logits(head(x_train[idx]), y_train[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        val_logits = _predict_logits(encoder, x_val)
        val_bce = _bce(val_logits, y_val)
        history.append(round(val_bce, 6))
        if progress:
            print(f"[{kind} range pretraining] epoch {_epoch + 1}/{epochs}: val BCE {val_bce:.4f}")
        if best is None or val_bce < best[0]:
            best = (val_bce, {k: v.detach().clone() for k, v in encoder.state_dict().items()})
    assert best is not None
    encoder.load_state_dict(best[1])
    val_logits = _predict_logits(encoder, x_val)
    prevalence = np.clip(y_train.numpy().mean(axis=0), 1e-6, 1 - 1e-6)
    constant = np.broadcast_to(np.log(prevalence / (1 - prevalence)), y_val.shape)
    encoder.pretrain_info = {
        **settings,
        "val_bce": _bce(val_logits, y_val),
        "val_bce_constant": _bce(np.ascontiguousarray(constant), y_val),
        "val_macro_auc": _macro_auc(val_logits, y_val),
        "val_bce_by_epoch": history,
        "positive_rate": float(labels.mean()),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return encoder.freeze()


def _predict_logits(encoder: LocationEncoder, coords: np.ndarray) -> np.ndarray:
    """Species logits of ``coords`` in eval mode (the training mode is restored)."""
    was_training = encoder.training
    encoder.eval()
    with torch.inference_mode():
        out = encoder.presence_logits(torch.from_numpy(coords).float())
    encoder.train(was_training)
    return out.numpy()
