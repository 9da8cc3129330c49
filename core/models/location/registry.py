"""Registry of location encoders by name (timm style).

Each encoder module registers a factory with :func:`register_location_encoder`; the package
``__init__`` imports every encoder module, so all entries exist whenever this registry is
used (importing it imports the package first). :func:`create_location_encoder` in
:mod:`.factory` looks names up here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from geoforensics.core.errors import InputError
from geoforensics.core.models.location.base import LocationEncoder

#: ``factory(checkpoint, **kwargs) -> encoder``; ``checkpoint`` is None only for encoders that
#: ship their own weights.
LocationEncoderFactory = Callable[..., LocationEncoder]


@dataclass(frozen=True)
class LocationEncoderEntry:
    """A registered encoder: its factory, the class that rebuilds it from a saved config
    (``saved_files``: whether :func:`~.files.save_location_encoder` files can hold it) and
    whether it needs a checkpoint (GeoCLIP's weights ship with its wheel)."""

    name: str
    factory: LocationEncoderFactory
    encoder_class: type[LocationEncoder]
    saved_files: bool = True
    needs_checkpoint: bool = True


_REGISTRY: dict[str, LocationEncoderEntry] = {}


def register_location_encoder(
    name: str,
    encoder_class: type[LocationEncoder],
    saved_files: bool = True,
    needs_checkpoint: bool = True,
) -> Callable[[LocationEncoderFactory], LocationEncoderFactory]:
    """Decorator registering ``factory(checkpoint, **kwargs)`` under ``name``.

    Registering a name twice is an error (it would silently change saved models' meaning).
    """

    def decorator(factory: LocationEncoderFactory) -> LocationEncoderFactory:
        if name in _REGISTRY:
            raise InputError(f"location encoder {name!r} is already registered")
        _REGISTRY[name] = LocationEncoderEntry(
            name, factory, encoder_class, saved_files, needs_checkpoint
        )
        return factory

    return decorator


def location_encoder_names() -> tuple[str, ...]:
    """Names of the registered encoders, in registration order."""
    return tuple(_REGISTRY)


def location_encoder_entry(name: str) -> LocationEncoderEntry:
    """The entry registered under ``name`` (one-line :class:`InputError` naming the others)."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise InputError(
            f"location encoder {name!r}: choose one of {', '.join(location_encoder_names())}"
        )
    return entry


def saved_encoder_class(name: str) -> type[LocationEncoder] | None:
    """The class rebuilding a saved encoder called ``name``; None when none can be saved."""
    entry = _REGISTRY.get(name)
    return entry.encoder_class if entry is not None and entry.saved_files else None
