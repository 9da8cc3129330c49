"""Great-circle distances and coordinate checks on a spherical Earth (R = 6,371 km).

Coordinates are ``(..., 2)`` arrays of ``(latitude, longitude)`` in degrees everywhere in
geoforensics. The numpy and torch versions compute the same formula, so a metric computed in
numpy and a loss computed in torch agree. torch is imported lazily: importing this module stays
cheap for the CLI.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from geoforensics.core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Mean Earth radius used by the benchmark's metrics, in km.
EARTH_RADIUS_KM = 6371.0
#: The largest possible great-circle distance (antipodes), in km.
MAX_DISTANCE_KM = math.pi * EARTH_RADIUS_KM


def _as_coords(coords: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(coords, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] != 2:
        raise InputError(f"{name}: expected (..., 2) lat/lon coordinates, got shape {array.shape}")
    return array


def haversine_np(a: ArrayLike, b: ArrayLike, radius_km: float = EARTH_RADIUS_KM) -> np.ndarray:
    """Great-circle distance in km between ``a`` and ``b`` (``(..., 2)`` lat/lon degrees).

    Leading dimensions broadcast as in numpy, e.g. ``(N, 2)`` with ``(N, 2)`` or ``(1, 2)``.
    NaN inputs give NaN distances; use :func:`validate_coords` to find them.
    """
    pa = np.radians(_as_coords(a, "a"))
    pb = np.radians(_as_coords(b, "b"))
    dlat = pb[..., 0] - pa[..., 0]
    dlon = pb[..., 1] - pa[..., 1]
    h = np.sin(dlat / 2) ** 2 + np.cos(pa[..., 0]) * np.cos(pb[..., 0]) * np.sin(dlon / 2) ** 2
    return 2.0 * radius_km * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def haversine_pairwise_np(
    a: ArrayLike, b: ArrayLike, radius_km: float = EARTH_RADIUS_KM
) -> np.ndarray:
    """All distances between ``a`` (N, 2) and ``b`` (M, 2) as an (N, M) array in km."""
    pa = _as_coords(a, "a").reshape(-1, 2)
    pb = _as_coords(b, "b").reshape(-1, 2)
    return haversine_np(pa[:, None, :], pb[None, :, :], radius_km)


def haversine_torch(
    a: torch.Tensor, b: torch.Tensor, radius_km: float = EARTH_RADIUS_KM, eps: float = 0.0
) -> torch.Tensor:
    """Great-circle distance in km between tensors ``a`` and ``b`` (``(..., 2)`` lat/lon degrees).

    Broadcasts like :func:`haversine_np` and keeps the input dtype and device. The gradient of
    the square root is infinite at zero distance; pass a small ``eps`` (e.g. ``1e-12``) when the
    result is used as a training loss, which floors the haversine term at ``eps``.
    """
    import torch

    pa = torch.deg2rad(a)
    pb = torch.deg2rad(b)
    dlat = pb[..., 0] - pa[..., 0]
    dlon = pb[..., 1] - pa[..., 1]
    h = (
        torch.sin(dlat / 2) ** 2
        + torch.cos(pa[..., 0]) * torch.cos(pb[..., 0]) * torch.sin(dlon / 2) ** 2
    )
    h = torch.clamp(h, min=eps, max=1.0)
    return 2.0 * radius_km * torch.asin(torch.sqrt(h))


def haversine_pairwise_torch(
    a: torch.Tensor, b: torch.Tensor, radius_km: float = EARTH_RADIUS_KM
) -> torch.Tensor:
    """All distances between tensors ``a`` (N, 2) and ``b`` (M, 2) as (N, M) km."""
    return haversine_torch(a.reshape(-1, 2)[:, None, :], b.reshape(-1, 2)[None, :, :], radius_km)


def validate_coords(coords: ArrayLike) -> np.ndarray:
    """Boolean mask over ``coords`` (..., 2): finite, lat in [-90, 90] and lon in [-180, 180]."""
    array = _as_coords(coords, "coords")
    lat, lon = array[..., 0], array[..., 1]
    with np.errstate(invalid="ignore"):
        return np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0)


def check_coords(coords: ArrayLike, source: str) -> np.ndarray:
    """``coords`` as float64 (N, 2); raises InputError naming ``source`` and the bad row."""
    array = _as_coords(coords, source)
    if array.ndim != 2:
        raise InputError(f"{source}: expected an (N, 2) array of lat/lon, got shape {array.shape}")
    valid = validate_coords(array)
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        lat, lon = array[row]
        raise InputError(
            f"{source}: row {row} has invalid coordinates lat={lat}, lon={lon} "
            "(need finite lat in [-90, 90] and lon in [-180, 180])"
        )
    return array


def wrap_longitude(lon: ArrayLike) -> np.ndarray:
    """Longitudes wrapped into [-180, 180) degrees (181 -> -179, 180 -> -180)."""
    values = np.asarray(lon, dtype=np.float64)
    wrapped = np.mod(values + 180.0, 360.0) - 180.0
    # A value a hair below a multiple of -180 rounds onto +180 (np.mod(-3e-14, 360) == 360.0).
    return np.where(wrapped >= 180.0, wrapped - 360.0, wrapped)


def unit_vectors(points: ArrayLike) -> np.ndarray:
    """(N, 3) points on the unit sphere of (N, 2) latitude/longitude degrees: k-d trees over
    them find great-circle neighbours (the chord grows with the great-circle distance)."""
    array = np.asarray(points, dtype=np.float64)
    lat, lon = np.radians(array[:, 0]), np.radians(array[:, 1])
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


def chord_of_km(distance_km: float) -> float:
    """Straight-line distance through the unit sphere of a great-circle distance in km."""
    return float(2.0 * math.sin(min(distance_km / EARTH_RADIUS_KM, math.pi) / 2.0))


def km_of_chord(chord: ArrayLike) -> np.ndarray:
    """Great-circle distance in km of unit-sphere chords (the inverse of :func:`chord_of_km`)."""
    return np.asarray(2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.asarray(chord) / 2.0, 0.0, 1.0)))
