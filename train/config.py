"""Training configuration: one YAML file -> frozen dataclasses, checked key by key.

A run is described by a YAML file with the sections below (every key optional except
``method`` and ``data.root``; defaults are the paper's settings)::

    method: agclip            # agclip | regression_mse | regression_haversine | classification
    data:   {root, train_split, val_split, test_split, range_model, checklist_threshold,
             cache_dir, cache_workers, feature_windows}
    model:  {encoder, pretrained, hidden, h3_res, location_encoder, location_encoder_checkpoint}
    loss:   {species_weight, symmetric, haversine_eps}
    optim:  {batch_size, momentum, nesterov, weight_decay, lr_start, lr_peak, lr_end,
             warmup_epochs, max_epochs}
    train:  {seed, patience, monitor, monitor_mode, devices, num_nodes, accelerator, strategy,
             num_workers,
             max_minutes, windows_per_recording, eval_batch_size, precision,
             check_val_every_n_epoch, deterministic}
    eval:   {gallery, test}
    out:    runs/agclip       # the run folder

Unknown keys and values of the wrong type raise a one-line :class:`InputError` naming the file
and the key (``config.yaml: unknown key 'optim.lrr'``). Relative paths (``data.root``,
``data.cache_dir``, ``model.pretrained``, ``model.location_encoder_checkpoint``, ``out`` and
``file:`` galleries) are resolved against the YAML file's folder, so a config keeps working
from any working directory.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoforensics.core.errors import InputError
from geoforensics.core.models.encoders import get_encoder_config, list_encoders
from geoforensics.train.methods import get_method, method_names

RANGE_MODELS: tuple[str, ...] = ("synthetic", "none")
#: Other accepted ``data.range_model`` values: specs of
#: :func:`geoforensics.core.species.ranges.load_range_model`.
RANGE_MODEL_PREFIXES: tuple[str, ...] = ("birdnet", "sinr:", "world:")
STRATEGIES: tuple[str, ...] = ("auto", "ddp")
MONITOR_MODES: tuple[str, ...] = ("min", "max")


@dataclass(frozen=True)
class DataConfig:
    """Where the iNatSounds-format dataset is and how its targets are made.

    ``range_model``: ``"synthetic"`` reads the synthetic world's own range model
    (``ROOT/world/range_model.npz``) to make species checklists at each recording's true
    location (presence >= ``checklist_threshold``); ``"none"`` trains without checklists;
    ``"birdnet"``, ``"sinr:CHECKPOINT[,NAMES.txt]"`` or ``"world:DIR"`` make the checklists with
    BirdNET's range model, a SINR checkpoint or another synthetic world's true ranges
    (species matched to the dataset's categories by scientific name).
    ``cache_dir`` (default ``$GEOFORENSICS_CACHE/spectrograms``) holds the spectrogram cache;
    ``cache_workers`` processes build it. With a frozen waveform-features encoder
    (``model.encoder: birdnet``) the window-feature cache is built instead (default
    ``$GEOFORENSICS_CACHE/window_features``); ``feature_windows`` > 0 keeps at most that many
    evenly spaced windows of each training recording in it (0 = all; validation and test always
    use all windows).
    """

    root: Path
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    range_model: str = "synthetic"
    checklist_threshold: float = 0.1
    cache_dir: Path | None = None
    cache_workers: int = 1
    feature_windows: int = 0


@dataclass(frozen=True)
class ModelSection:
    """The audio model: a registered encoder (``pretrained``: optional weights file to start
    from; ``birdnet`` is a frozen encoder whose features are computed once and cached, so only
    the head trains), the MLP head's hidden width, the H3 resolution of the classifier, and the
    frozen location encoder whose embeddings AG-CLIP learns to match (``geoclip``, ``sinr``,
    ``satclip``; Table 2) with an optional checkpoint for it (without one, ``sinr`` and
    ``satclip`` are pretrained on the data's range model)."""

    encoder: str = "mobilenet_v3_large"
    pretrained: Path | None = None
    hidden: int = 128
    h3_res: int = 1
    location_encoder: str = "geoclip"
    location_encoder_checkpoint: Path | None = None


@dataclass(frozen=True)
class LossConfig:
    """Loss settings: AG-CLIP's checklist BCE weight (0.01) and whether its contrastive loss
    is symmetric (the paper's, like GeoCLIP's, is audio -> location only); the floor of the
    haversine term for the haversine regression loss."""

    species_weight: float = 0.01
    symmetric: bool = False
    haversine_eps: float = 1e-10


@dataclass(frozen=True)
class OptimConfig:
    """SGD with Nesterov momentum and the paper's schedule (see :mod:`..schedule`):
    ``lr_start`` -> ``lr_peak`` linearly over ``warmup_epochs``, then cosine down to ``lr_end``
    at the last of ``max_epochs``. ``batch_size`` is per process."""

    batch_size: int = 128
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-5
    lr_start: float = 1e-3
    lr_peak: float = 1e-2
    lr_end: float = 1e-3
    warmup_epochs: float = 5.0
    max_epochs: int = 50


@dataclass(frozen=True)
class TrainSection:
    """Trainer settings: seed, early stopping on ``monitor`` (validation median error, lower is
    better) with ``patience`` validation rounds, hardware (``devices`` per machine,
    ``num_nodes`` machines, ``accelerator``, ``strategy`` auto | ddp), data loading, an
    optional wall-clock limit and the number of random windows drawn per training recording
    and epoch (the paper: 1)."""

    seed: int = 0
    patience: int = 10
    monitor: str = "val/median_km"
    monitor_mode: str = "min"
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    strategy: str = "auto"
    num_workers: int = 0
    max_minutes: float | None = None
    windows_per_recording: int = 1
    eval_batch_size: int = 256
    precision: str = "32-true"
    check_val_every_n_epoch: int = 1
    deterministic: bool = False


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation: the retrieval gallery of AG-CLIP (a list of specs whose locations are
    concatenated: ``train`` = the train split's locations, or any
    :func:`~geoforensics.core.geo.gallery.resolve_gallery` spec such as ``land-1deg`` or
    ``file:PATH``), and whether to score the best model on the test split at the end."""

    gallery: tuple[str, ...] = ("train", "land-1deg")
    test: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run (see the module docstring); ``source`` is the YAML file."""

    method: str
    data: DataConfig
    out: Path
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalConfig = field(default_factory=EvalConfig)
    source: Path | None = None

    @property
    def model_kind(self) -> str:
        """The :class:`~geoforensics.core.models.ModelConfig` kind of this run's method."""
        return get_method(self.method).model_kind

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serialisable dictionary (paths as strings, tuples as lists)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelSection,
    "loss": LossConfig,
    "optim": OptimConfig,
    "train": TrainSection,
    "eval": EvalConfig,
}


def _coerce(value: Any, annotation: Any, where: str, source: str) -> Any:
    """Check ``value`` against a field's type; convert ints to floats, numeric strings
    (YAML reads ``1e-3`` as a string) to numbers, strings to Paths and lists to tuples."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where, source)
            except InputError as error:
                errors.append(error)
        raise errors[0]
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise InputError(f"{source}: '{where}' must be a list, got {value!r}")
        (item_type, _ellipsis) = typing.get_args(annotation)
        return tuple(_coerce(v, item_type, f"{where}[{i}]", source) for i, v in enumerate(value))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"{source}: '{where}' must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InputError(f"{source}: '{where}' must be an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise InputError(f"{source}: '{where}' must be a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise InputError(f"{source}: '{where}' must be a string, got {value!r}")
    if annotation is Path:
        if isinstance(value, str | Path) and str(value):
            return Path(value)
        raise InputError(f"{source}: '{where}' must be a path, got {value!r}")
    raise InputError(f"{source}: '{where}': unsupported type {annotation!r}")  # pragma: no cover


def _build_section(cls: type, data: Any, name: str, source: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: section '{name}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise InputError(f"{source}: unknown key '{name}.{key}'")
    values = {
        key: _coerce(value, hints[key], f"{name}.{key}", source) for key, value in data.items()
    }
    missing = [
        key
        for key, f in fields.items()
        if key not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise InputError(f"{source}: missing key '{name}.{missing[0]}'")
    return cls(**values)


def _resolve(path: Path | None, base: Path) -> Path | None:
    if path is None:
        return None
    expanded = path.expanduser()
    return expanded if expanded.is_absolute() else (base / expanded).resolve()


def _resolve_path(path: Path, base: Path) -> Path:
    expanded = path.expanduser()
    return expanded if expanded.is_absolute() else (base / expanded).resolve()


def _resolve_gallery_spec(spec: str, base: Path) -> str:
    if spec.startswith("file:"):
        resolved = _resolve(Path(spec[len("file:") :]), base)
        return f"file:{resolved}"
    return spec


def config_from_dict(
    data: Mapping[str, Any], source: str = "<config>", base: Path | None = None
) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a parsed YAML mapping.

    ``base`` is the folder relative paths are resolved against (the YAML file's folder).
    """
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a mapping of sections at the top level")
    known = {"method", "out", *_SECTIONS}
    for key in data:
        if key not in known:
            raise InputError(f"{source}: unknown key '{key}'")
    methods = method_names()
    if "method" not in data:
        raise InputError(f"{source}: missing key 'method' ({' | '.join(methods)})")
    method = data["method"]
    if method not in methods:
        raise InputError(f"{source}: method {method!r} must be one of {', '.join(methods)}")
    if "data" not in data:
        raise InputError(f"{source}: missing section 'data' (with at least 'root')")
    sections = {
        name: _build_section(cls, data.get(name), name, source) for name, cls in _SECTIONS.items()
    }
    out = _coerce(data.get("out", f"runs/{method}"), Path, "out", source)
    base = Path.cwd() if base is None else base
    data_cfg: DataConfig = sections["data"]
    data_cfg = dataclasses.replace(
        data_cfg,
        root=_resolve_path(data_cfg.root, base),
        cache_dir=_resolve(data_cfg.cache_dir, base),
    )
    model_cfg: ModelSection = sections["model"]
    model_cfg = dataclasses.replace(
        model_cfg,
        pretrained=_resolve(model_cfg.pretrained, base),
        location_encoder_checkpoint=_resolve(model_cfg.location_encoder_checkpoint, base),
    )
    eval_cfg: EvalConfig = sections["eval"]
    eval_cfg = dataclasses.replace(
        eval_cfg, gallery=tuple(_resolve_gallery_spec(s, base) for s in eval_cfg.gallery)
    )
    config = TrainConfig(
        method=method,
        data=data_cfg,
        out=_resolve_path(out, base),
        model=model_cfg,
        loss=sections["loss"],
        optim=sections["optim"],
        train=sections["train"],
        eval=eval_cfg,
        source=Path(source) if source != "<config>" else None,
    )
    validate(config, source)
    return config


def validate(config: TrainConfig, source: str = "<config>") -> None:
    """Check value ranges and names; raises a one-line InputError naming the key."""

    def fail(key: str, problem: str) -> None:
        raise InputError(f"{source}: '{key}' {problem}")

    spec = config.data.range_model
    if spec not in RANGE_MODELS and not spec.startswith(RANGE_MODEL_PREFIXES):
        fail(
            "data.range_model",
            f"must be one of {', '.join(RANGE_MODELS)} or a range-model spec "
            "(birdnet, sinr:PATH[,NAMES.txt], world:DIR)",
        )
    if not 0.0 < config.data.checklist_threshold <= 1.0:
        fail("data.checklist_threshold", "must be in (0, 1]")
    if config.data.cache_workers < 1:
        fail("data.cache_workers", "must be at least 1")
    if config.data.feature_windows < 0:
        fail("data.feature_windows", "must be >= 0 (0 = all windows)")

    if config.model.encoder not in list_encoders():
        fail("model.encoder", f"must be one of {', '.join(list_encoders())}")
    if (
        config.model.pretrained is not None
        and get_encoder_config(config.model.encoder).frozen_features
    ):
        fail(
            "model.pretrained",
            f"is not used: {config.model.encoder} is a frozen encoder without trainable weights",
        )
    if config.model.hidden < 0:
        fail("model.hidden", "must be >= 0")
    if config.model.h3_res not in (0, 1, 2):
        fail("model.h3_res", "must be 0, 1 or 2")
    optim = config.optim
    if optim.batch_size < 1:
        fail("optim.batch_size", "must be at least 1")
    if optim.max_epochs < 1:
        fail("optim.max_epochs", "must be at least 1")
    if optim.warmup_epochs < 0:
        fail("optim.warmup_epochs", "must be >= 0")
    for key in ("lr_start", "lr_peak", "lr_end"):
        if not getattr(optim, key) > 0:
            fail(f"optim.{key}", "must be positive")
    if not 0 <= optim.momentum < 1:
        fail("optim.momentum", "must be in [0, 1)")
    if optim.weight_decay < 0:
        fail("optim.weight_decay", "must be >= 0")
    train = config.train
    if train.patience < 1:
        fail("train.patience", "must be at least 1")
    if train.monitor_mode not in MONITOR_MODES:
        fail("train.monitor_mode", "must be min or max")
    if train.devices < 1:
        fail("train.devices", "must be at least 1")
    if train.num_nodes < 1:
        fail("train.num_nodes", "must be at least 1")
    if train.num_nodes > 1 and train.strategy != "ddp":
        fail("train.num_nodes", "several machines need strategy: ddp")
    if train.strategy not in STRATEGIES:
        fail("train.strategy", f"must be one of {', '.join(STRATEGIES)}")
    if train.num_workers < 0:
        fail("train.num_workers", "must be >= 0")
    if train.max_minutes is not None and not train.max_minutes > 0:
        fail("train.max_minutes", "must be positive")
    if train.windows_per_recording < 1:
        fail("train.windows_per_recording", "must be at least 1")
    if train.eval_batch_size < 1:
        fail("train.eval_batch_size", "must be at least 1")
    if train.check_val_every_n_epoch < 1:
        fail("train.check_val_every_n_epoch", "must be at least 1")
    if not config.eval.gallery and config.method == "agclip":
        fail("eval.gallery", "must list at least one gallery for agclip")
    if config.loss.species_weight < 0:
        fail("loss.species_weight", "must be >= 0")
    if config.loss.haversine_eps < 0:
        fail("loss.haversine_eps", "must be >= 0")


def load_config(path: str | Path) -> TrainConfig:
    """Read a training config YAML file (relative paths resolve against its folder)."""
    import yaml

    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"{file}: no such config file")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"{file}: not valid YAML{where}") from None
    return config_from_dict(data, source=str(file), base=file.resolve().parent)


def with_overrides(
    config: TrainConfig,
    out: str | Path | None = None,
    data_root: str | Path | None = None,
    max_epochs: int | None = None,
    devices: int | None = None,
    strategy: str | None = None,
    accelerator: str | None = None,
    num_nodes: int | None = None,
) -> TrainConfig:
    """A copy with command-line overrides applied (relative ``out`` and ``data_root`` are taken
    from the current working directory, as a user typing them expects), validated again."""
    optim, train = config.optim, config.train
    if max_epochs is not None:
        optim = dataclasses.replace(optim, max_epochs=max_epochs)
    if devices is not None:
        train = dataclasses.replace(train, devices=devices)
    if strategy is not None:
        train = dataclasses.replace(train, strategy=strategy)
    if num_nodes is not None:
        train = dataclasses.replace(train, num_nodes=num_nodes)
    if accelerator is not None:
        train = dataclasses.replace(train, accelerator=accelerator)
    data = config.data
    if data_root is not None:
        data = dataclasses.replace(data, root=Path(data_root).expanduser().resolve())
    new_out = config.out if out is None else Path(out).expanduser().resolve()
    updated = dataclasses.replace(config, data=data, optim=optim, train=train, out=new_out)
    validate(updated, "command line")
    return updated
