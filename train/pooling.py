"""Training the learned pooling (paper Table A2): a transformer over a frozen AG-CLIP model's
window vectors, trained with AG-CLIP's own contrastive loss.

The AG-CLIP model stays frozen; it only provides each recording's per-window vectors (the
encoder ``features`` by default, see :func:`collect_window_outputs`). A
:class:`~geoforensics.core.models.pooling.TransformerPooling` maps a run of up to 32 consecutive
windows to the model's head output (checklist logits first, embedding last); its embedding part
is pulled towards the frozen GeoCLIP embedding of the recording's true location with
:func:`~geoforensics.train.tasks.agclip.contrastive_loss` at GeoCLIP's temperature
exp(logit_scale). Each epoch draws one seeded random crop of at most ``seq_len`` windows per
training recording (:func:`~geoforensics.core.models.pooling.random_crop`), batches are padded
(:func:`~geoforensics.core.models.pooling.pad_sequences`). After each epoch the validation
recordings are pooled over all their windows (chunked exactly as
:meth:`TransformerPooling.pool_recording` does) and retrieved top-1 from the gallery; the epoch
with the lowest median error wins and its weights are returned.

:func:`save_transformer_pooling` writes ``NAME.safetensors`` (weights) and ``NAME.json``
(constructor settings and training info); :func:`load_transformer_pooling` reads them back
(safetensors only, never a pickle).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Iterable, Sequence, Sized
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geoforensics.core.errors import GeoforensicsError, InputError
from geoforensics.core.fileio import atomic_path, atomic_write
from geoforensics.core.geo.distance import validate_coords
from geoforensics.core.geo.metrics import geolocation_errors
from geoforensics.core.geoclip.embeddings import geoclip_gallery_index
from geoforensics.core.geoclip.location_encoder import geoclip_temperature
from geoforensics.core.geoclip.retrieval import RetrievalIndex
from geoforensics.core.models.encoders import error_summary
from geoforensics.core.models.geolocator import AudioGeolocator
from geoforensics.core.models.inference import iter_window_outputs
from geoforensics.core.models.provenance import dataset_training_data, model_training_data
from geoforensics.core.models.transformer_pooling import (
    TransformerPooling,
    chunk_windows,
    pad_sequences,
    random_crop,
)

#: Format tag of the JSON side file of a saved pooler.
POOLING_FORMAT = "geoforensics-transformer-pooling"
POOLING_FORMAT_VERSION = 1
#: Default training settings (the bench's presets override ``epochs``).
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 3e-4
DEFAULT_WEIGHT_DECAY = 0.01


# --------------------------------------------------------------------------- window vectors


def collect_outputs(
    model: AudioGeolocator,
    recordings: Iterable[Any],
    keys: Sequence[str] = ("features",),
    batch_size: int = 64,
    progress: bool = False,
    total: int | None = None,
) -> dict[str, list[np.ndarray]]:
    """Per-recording (W, ·) float32 window arrays of several of ``model``'s outputs in one pass
    over the audio (``features`` = encoder features, or output names such as ``embedding``).

    Windows of consecutive recordings share model batches
    (:func:`~geoforensics.core.models.inference.iter_window_outputs`).
    """
    from tqdm.auto import tqdm

    if not keys:
        raise InputError("collect window outputs: no output names given")
    if total is None and isinstance(recordings, Sized):
        total = len(recordings)
    collected: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    stream = iter_window_outputs(model, recordings, batch_size, keys=tuple(keys))
    for outputs in tqdm(stream, total=total, disable=not progress, desc="windows", unit="rec"):
        assert outputs is not None  # on_error="raise"
        for key in keys:
            collected[key].append(np.ascontiguousarray(outputs[key], dtype=np.float32))
    return collected


def collect_window_outputs(
    model: AudioGeolocator,
    recordings: Iterable[Any],
    key: str = "features",
    batch_size: int = 64,
    progress: bool = False,
) -> list[np.ndarray]:
    """Per-recording (W, D) float32 window vectors ``key`` of a frozen model, in order."""
    return collect_outputs(model, recordings, (key,), batch_size, progress)[key]


# ---------------------------------------------------------------------------- pooling many


def pool_recordings(
    pooler: TransformerPooling,
    windows: Sequence[np.ndarray],
    batch_size: int = 256,
) -> np.ndarray:
    """(N, out_dim) float32: :meth:`TransformerPooling.pool_recording` of each recording's
    (W, in_dim) windows, with the chunks of many recordings batched together (eval mode; the
    pooler's train/eval mode is restored)."""
    if not windows:
        return np.zeros((0, pooler.out_dim), dtype=np.float32)
    device = next(pooler.parameters()).device
    chunks: list[torch.Tensor] = []
    masks: list[torch.Tensor] = []
    owner: list[int] = []
    for row, matrix in enumerate(windows):
        if matrix.ndim != 2 or matrix.shape[1] != pooler.in_dim:
            raise InputError(
                f"recording {row}: window vectors of shape {matrix.shape}, the pooler takes "
                f"(W, {pooler.in_dim})"
            )
        c, m = chunk_windows(torch.from_numpy(np.asarray(matrix, dtype=np.float32)), pooler.seq_len)
        chunks.extend(c)
        masks.extend(m)
        owner.extend([row] * len(c))
    was_training = pooler.training
    pooler.eval()
    outputs = []
    try:
        with torch.inference_mode():
            for start in range(0, len(chunks), batch_size):
                batch = torch.stack(chunks[start : start + batch_size]).to(device)
                mask = torch.stack(masks[start : start + batch_size]).to(device)
                outputs.append(pooler(batch, mask).float().cpu())
    finally:
        pooler.train(was_training)
    values = torch.cat(outputs).double()
    weights = (~torch.stack(masks)).sum(1).double()
    index = torch.as_tensor(owner)
    total = torch.zeros(len(windows), values.shape[1], dtype=torch.float64)
    total.index_add_(0, index, values * weights[:, None])
    count = torch.zeros(len(windows), dtype=torch.float64).index_add_(0, index, weights)
    return (total / count[:, None]).float().numpy()


def retrieval_errors_km(
    embeddings: np.ndarray, coords: np.ndarray, index: RetrievalIndex
) -> np.ndarray:
    """(N,) great-circle errors (km) of top-1 retrieval of ``embeddings`` (N, D) from ``index``
    against the true ``coords`` (N, 2); a zero or non-finite embedding is a miss (inf)."""

    return geolocation_errors(retrieve_top1(embeddings, index), np.asarray(coords).reshape(-1, 2))


def retrieval_median_km(embeddings: np.ndarray, coords: np.ndarray, index: RetrievalIndex) -> float:
    """Median of :func:`retrieval_errors_km` (NaN for no recordings)."""
    if len(embeddings) == 0:
        return math.nan
    return float(np.median(retrieval_errors_km(embeddings, coords, index)))


def retrieve_top1(embeddings: np.ndarray, index: RetrievalIndex) -> np.ndarray:
    """(N, 2) top-1 gallery coordinates of each embedding row; NaN rows for embeddings that are
    zero or not finite (scored as misses)."""
    array = np.asarray(embeddings, dtype=np.float32)
    out = np.full((len(array), 2), np.nan)
    good = np.isfinite(array).all(axis=1) & np.any(array != 0, axis=1)
    if good.any():
        out[good] = index.search(array[good], k=1).coords[:, 0]
    return out


# -------------------------------------------------------------------------------- training


def _check_agclip(model: AudioGeolocator) -> None:
    if model.kind != "agclip":
        raise InputError(
            f"transformer pooling is trained for AG-CLIP models; this is a {model.kind!r} model"
        )


def _located(coords: np.ndarray) -> np.ndarray:
    """Boolean mask of rows with a usable location."""

    return np.asarray(validate_coords(np.asarray(coords, dtype=np.float64).reshape(-1, 2)))


def _as_index(gallery: RetrievalIndex | np.ndarray) -> RetrievalIndex:
    if isinstance(gallery, RetrievalIndex):
        return gallery

    coords = np.asarray(gallery, dtype=np.float64)
    return geoclip_gallery_index(coords)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _length_batches(
    lengths: torch.Tensor, batch_size: int, generator: torch.Generator, pool: int = 8
) -> list[torch.Tensor]:
    """One epoch's batches of row indices: shuffled, then sorted by length within groups of
    ``pool`` batches (so a batch pads its crops to similar lengths, several times less padding
    than random batches), the batches in random order."""
    order = torch.randperm(len(lengths), generator=generator)
    batches: list[torch.Tensor] = []
    group = pool * batch_size
    for start in range(0, len(order), group):
        rows = order[start : start + group]
        rows = rows[torch.argsort(lengths[rows], stable=True)]
        batches.extend(torch.split(rows, batch_size))
    return [batches[int(i)] for i in torch.randperm(len(batches), generator=generator)]


def fit_transformer_pooling(
    model: AudioGeolocator,
    train_windows: Sequence[np.ndarray],
    train_coords: np.ndarray,
    val_windows: Sequence[np.ndarray],
    val_coords: np.ndarray,
    gallery: RetrievalIndex | np.ndarray,
    *,
    input_key: str = "features",
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    seed: int = 0,
    temperature: float | None = None,
    symmetric: bool = False,
    pooler_settings: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> tuple[TransformerPooling, dict[str, Any]]:
    """Train a :class:`TransformerPooling` on precomputed window vectors (the module docstring
    says how); returns the best epoch's pooler (eval mode, on CPU) and a JSON-able info dict.

    ``train_windows[i]`` are recording i's (W_i, D) window vectors of ``model`` (the frozen
    AG-CLIP model, whose head layout the pooler reproduces), ``train_coords`` (N, 2) their true
    locations (rows without a valid location are skipped); likewise for validation.
    ``gallery`` is a :class:`RetrievalIndex` or (G, 2) coordinates (GeoCLIP-embedded, cached).
    ``pooler_settings`` overrides :class:`TransformerPooling`'s architecture (``layers``,
    ``heads``, ``width`` ...). ``device`` defaults to the model's. Deterministic for a given
    ``seed`` on CPU (the global torch RNG is left as it was).
    """
    from tqdm.auto import tqdm

    from geoforensics.train.tasks.agclip import contrastive_loss, location_embeddings

    _check_agclip(model)
    if epochs < 1 or batch_size < 2 or not lr > 0:
        raise InputError(
            f"transformer pooling: need epochs >= 1, batch_size >= 2 and lr > 0 (got {epochs}, "
            f"{batch_size}, {lr})"
        )
    train_coords = np.asarray(train_coords, dtype=np.float64).reshape(-1, 2)
    val_coords = np.asarray(val_coords, dtype=np.float64).reshape(-1, 2)
    if len(train_windows) != len(train_coords) or len(val_windows) != len(val_coords):
        raise InputError(
            f"transformer pooling: {len(train_windows)} train / {len(val_windows)} val window "
            f"sets for {len(train_coords)} / {len(val_coords)} locations"
        )
    keep = _located(train_coords) & np.array([len(w) > 0 for w in train_windows], dtype=bool)
    skipped = int((~keep).sum())
    train_x = [
        np.asarray(train_windows[i], dtype=np.float32) for i in np.flatnonzero(keep).tolist()
    ]
    train_coords = train_coords[keep]
    if len(train_x) < 2:
        raise InputError(
            f"transformer pooling: {len(train_x)} training recordings with a location and "
            "windows; need at least 2"
        )
    val_keep = _located(val_coords) & np.array([len(w) > 0 for w in val_windows], dtype=bool)
    val_x = [
        np.asarray(val_windows[i], dtype=np.float32) for i in np.flatnonzero(val_keep).tolist()
    ]
    val_coords = val_coords[val_keep]
    in_dim = int(train_x[0].shape[1])
    bad = [i for i, w in enumerate(train_x + val_x) if w.ndim != 2 or w.shape[1] != in_dim]
    if bad:
        raise InputError(f"transformer pooling: window vectors of mixed widths (not all {in_dim})")
    index = _as_index(gallery)
    if temperature is None:
        temperature = geoclip_temperature()
    targets = torch.from_numpy(location_embeddings(train_coords))
    if targets.shape[1] != model.config.embed_dim:
        raise InputError(
            f"GeoCLIP embeddings are {targets.shape[1]}-d, the model's embedding "
            f"{model.config.embed_dim}-d"
        )
    where = torch.device(device) if device is not None else next(model.parameters()).device
    targets = targets.to(where)
    latlon = torch.from_numpy(train_coords).to(where)
    train_tensors = [torch.from_numpy(w) for w in train_x]
    lengths = torch.tensor([len(w) for w in train_x])
    settings = {"input_key": input_key, **(pooler_settings or {})}
    started = time.perf_counter()

    def embedding_of(raw: torch.Tensor) -> torch.Tensor:
        return model.split_outputs(raw)["embedding"]

    def validate(pooler: TransformerPooling) -> tuple[float, float]:
        """(median, mean) validation error in km; the mean breaks ties of the median."""
        if not val_x:
            return math.nan, math.nan
        pooled = torch.from_numpy(pool_recordings(pooler, val_x))
        errors = retrieval_errors_km(embedding_of(pooled).numpy(), val_coords, index)
        return float(np.median(errors)), float(np.mean(np.minimum(errors, 1e9)))

    history: list[dict[str, Any]] = []
    rng_devices = [where.index or 0] if where.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        pooler = TransformerPooling(in_dim, model.config.output_dim, **settings).to(where)
        generator = torch.Generator().manual_seed(seed)
        before, _ = validate(pooler)
        optimizer = torch.optim.AdamW(pooler.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = math.ceil(len(train_x) / batch_size)
        total_steps = epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: _lr_factor(
                step, total_steps, max(1, min(steps_per_epoch, total_steps // 10))
            ),
        )
        best_state, best_epoch, best = None, 0, (math.inf, math.inf)
        bar = tqdm(range(1, epochs + 1), desc="pooling", unit="epoch", disable=not progress)
        for epoch in bar:
            pooler.train()
            losses = []
            for rows in _length_batches(lengths, batch_size, generator):
                if len(rows) < 2:  # one recording has no negatives: nothing to learn
                    continue
                crops = [
                    random_crop(train_tensors[int(i)], pooler.seq_len, generator) for i in rows
                ]
                batch, mask = pad_sequences(crops)
                picked = rows.to(where)
                loss = contrastive_loss(
                    embedding_of(pooler(batch.to(where), mask.to(where))),
                    targets[picked],
                    latlon[picked],
                    float(temperature),
                    symmetric=symmetric,
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(pooler.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
            val_km, val_mean = validate(pooler)
            mean_loss = float(np.mean(losses)) if losses else math.nan
            history.append(
                {
                    "epoch": epoch,
                    "loss": mean_loss,
                    "val_median_km": val_km,
                    "val_mean_km": val_mean,
                }
            )
            bar.set_postfix(loss=f"{mean_loss:.3f}", val_km=f"{val_km:.0f}")
            # without validation recordings the last epoch is kept
            if not val_x or (val_km, val_mean) < best:
                best_state = copy.deepcopy(pooler.state_dict())
                best_epoch, best = epoch, (val_km, val_mean)
        bar.close()
    assert best_state is not None
    pooler.load_state_dict(best_state)
    pooler = pooler.cpu().eval()
    info: dict[str, Any] = {
        "input_key": input_key,
        "in_dim": in_dim,
        "out_dim": model.config.output_dim,
        "n_species": model.config.n_species,
        "embed_dim": model.config.embed_dim,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "val_median_km": None if math.isnan(best[0]) else best[0],
        "val_median_km_before": None if math.isnan(before) else before,
        "history": history,
        "train_recordings": len(train_x),
        "skipped_train_recordings": skipped,
        "val_recordings": len(val_x),
        "gallery_size": len(index),
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "temperature": float(temperature),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return pooler, info


def _coords_of(recordings: Sequence[Any]) -> np.ndarray:
    """(N, 2) lat/lon of recordings; NaN for those without (paths, missing locations)."""
    rows = [
        (float(getattr(r, "latitude", math.nan)), float(getattr(r, "longitude", math.nan)))
        for r in recordings
    ]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def train_transformer_pooling(
    model: AudioGeolocator,
    train_recordings: Sequence[Any],
    val_recordings: Sequence[Any],
    gallery_coords: RetrievalIndex | np.ndarray,
    *,
    input_key: str = "features",
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    seed: int = 0,
    window_batch_size: int = 64,
    pooler_settings: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> tuple[TransformerPooling, dict[str, Any]]:
    """Train a transformer pooler for a frozen AG-CLIP ``model`` on recordings (``Recording``
    objects with ``path``, ``latitude``, ``longitude``); see :func:`fit_transformer_pooling`.

    Training recordings without a location are skipped (never decoded). The info dict adds
    ``val_median_km_mean``: the validation median of the model's own mean pooling, the
    baseline the pooler should beat.
    """
    _check_agclip(model)
    train_coords = _coords_of(train_recordings)
    located = np.flatnonzero(_located(train_coords))
    train_list = [train_recordings[int(i)] for i in located]
    if len(train_list) < 2:
        raise InputError(
            f"transformer pooling: {len(train_list)} training recordings with a location; "
            "need at least 2"
        )
    index = _as_index(gallery_coords)
    train_windows = collect_window_outputs(
        model, train_list, input_key, window_batch_size, progress
    )
    val_coords = _coords_of(val_recordings)
    val_located = np.flatnonzero(_located(val_coords))
    val_list = [val_recordings[int(i)] for i in val_located]
    keys = tuple(dict.fromkeys((input_key, "embedding")))
    val_outputs = collect_outputs(model, val_list, keys, window_batch_size, progress)
    pooler, info = fit_transformer_pooling(
        model,
        train_windows,
        train_coords[located],
        val_outputs[input_key],
        val_coords[val_located],
        index,
        input_key=input_key,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        pooler_settings=pooler_settings,
        device=device,
        progress=progress,
    )
    info["skipped_train_recordings"] += len(train_recordings) - len(train_list)
    mean = [w.mean(axis=0) for w in val_outputs["embedding"]]
    val_mean = (
        retrieval_median_km(np.stack(mean), val_coords[val_located], index) if mean else math.nan
    )
    info["val_median_km_mean"] = None if math.isnan(val_mean) else val_mean
    return pooler, info


# ---------------------------------------------------------------------------- save / load


def pooling_files(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(weights ``.safetensors``, config ``.json``) of a saved pooler named by either file."""
    target = Path(path)
    if target.suffix not in (".safetensors", ".json"):
        raise InputError(f"{target}: a transformer pooler is saved as NAME.safetensors")
    return target.with_suffix(".safetensors"), target.with_suffix(".json")


def _pooler_config(pooler: TransformerPooling) -> dict[str, Any]:
    """The constructor arguments that rebuild ``pooler``."""
    layer = pooler.encoder.layers[0]
    return {
        "in_dim": pooler.in_dim,
        "out_dim": pooler.out_dim,
        "seq_len": pooler.seq_len,
        "layers": len(pooler.encoder.layers),
        "heads": layer.self_attn.num_heads,
        "width": pooler.project.out_features,
        "ff_dim": layer.linear1.out_features,
        "dropout": float(layer.dropout.p),
        "readout": pooler.readout,
        "input_key": pooler.input_key,
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _with_training_data(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` plus the training-data records its ``data`` / ``model_dir`` entries imply."""

    if isinstance(info.get("data"), str | Path) and "training_data" not in info:
        info["training_data"] = dataset_training_data(info["data"]).as_dict()
    if isinstance(info.get("model_dir"), str | Path) and "model_training_data" not in info:
        try:
            info["model_training_data"] = model_training_data(info["model_dir"]).as_dict()
        except GeoforensicsError:  # the base model's config is gone: record nothing
            pass
    return info


def save_transformer_pooling(
    pooler: TransformerPooling,
    path: str | os.PathLike[str],
    info: dict[str, Any] | None = None,
) -> Path:
    """Write the pooler's weights (``NAME.safetensors``) and its settings plus ``info``
    (``NAME.json``), both atomically; returns the weights path.

    When ``info`` names the training data folder (``"data"``, as ``geoforensics pooling
    train`` does) and holds no ``"training_data"`` yet, the record of what the pooler was
    trained on is added (:func:`~geoforensics.core.models.provenance.dataset_training_data`:
    data set name, SYNTHETIC or not), and with ``"model_dir"`` the base model's own record as
    ``"model_training_data"``.
    """
    from safetensors.torch import save_file

    weights_path, config_path = pooling_files(path)
    info = _with_training_data(dict(info or {}))
    document = {
        "format": POOLING_FORMAT,
        "version": POOLING_FORMAT_VERSION,
        "config": _pooler_config(pooler),
        "info": info,
    }
    try:
        text = json.dumps(document, indent=1, sort_keys=True, default=_json_default)
    except TypeError as error:
        raise InputError(
            f"{config_path}: pooling info is not JSON-serialisable ({error})"
        ) from None
    tensors = {k: v.detach().cpu().contiguous() for k, v in pooler.state_dict().items()}
    with atomic_path(weights_path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": POOLING_FORMAT})
    with atomic_write(config_path) as fh:
        fh.write(text + "\n")
    return weights_path


def _read_document(config_path: Path) -> dict[str, Any]:
    if not config_path.is_file():
        raise InputError(f"{config_path}: transformer pooling config not found")
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{config_path}: unreadable ({error})") from None
    except json.JSONDecodeError as error:
        raise InputError(
            f"{config_path}: invalid JSON ({error.msg}, line {error.lineno})"
        ) from None
    if not isinstance(document, dict) or document.get("format") != POOLING_FORMAT:
        raise InputError(f"{config_path}: not a transformer pooling config ({POOLING_FORMAT!r})")
    if not isinstance(document.get("config"), dict):
        raise InputError(f"{config_path}: 'config' must be an object")
    return document


def load_pooling_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The training info saved beside a pooler (``{}`` when none was saved)."""
    _, config_path = pooling_files(path)
    info = _read_document(config_path).get("info") or {}
    return dict(info) if isinstance(info, dict) else {}


def load_transformer_pooling(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> TransformerPooling:
    """Rebuild a pooler saved by :func:`save_transformer_pooling` (safetensors only), in eval
    mode. A missing, foreign or mismatching file is an InputError naming it."""
    from safetensors.torch import load_file

    weights_path, config_path = pooling_files(path)
    if not weights_path.is_file():
        raise InputError(f"{weights_path}: transformer pooling weights not found")
    document = _read_document(config_path)
    try:
        pooler = TransformerPooling(**document["config"])
    except TypeError as error:
        raise InputError(f"{config_path}: bad pooling config ({error})") from None
    try:
        state = load_file(str(weights_path))
    except Exception as error:
        raise InputError(
            f"{weights_path}: not a readable safetensors file ({error_summary(error)})"
        ) from None
    try:
        pooler.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise InputError(
            f"{weights_path}: weights do not match {config_path.name} ({first})"
        ) from None
    return pooler.to(map_location).eval()
