"""Error types that the CLI turns into one-line messages and a non-zero exit."""

from __future__ import annotations


class GeoforensicsError(Exception):
    """Base class: an expected failure with a message fit to show a user as it is."""


class InputError(GeoforensicsError):
    """A user-supplied file, value or option is unusable (names the input and the problem)."""


class MediaDecodeError(InputError):
    """A media file could not be decoded (empty, truncated, corrupt, no audio stream)."""


class DatasetNotFoundError(GeoforensicsError):
    """A dataset root, annotation file or audio file is missing; the message says which."""


class WeightsNotFoundError(GeoforensicsError):
    """Model weights are not available offline; the message says how to get them."""
