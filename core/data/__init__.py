"""Dataset readers: iNatSounds 2024 and XCDC (recording level), and window-level datasets.

The readers need only numpy; :class:`WindowDataset` (torch, audio front-end) is imported
lazily so that ``geoforensics data info`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .inatsounds import SPLITS, Category, INatSounds, Recording, summarize_inatsounds
from .records import parse_date
from .xcdc import XCDC, XCDCRecording

if TYPE_CHECKING:
    from .windows import WindowDataset

__all__ = [
    "SPLITS",
    "XCDC",
    "Category",
    "INatSounds",
    "Recording",
    "WindowDataset",
    "XCDCRecording",
    "parse_date",
    "summarize_inatsounds",
]


def __getattr__(name: str) -> Any:
    if name == "WindowDataset":
        from .windows import WindowDataset

        return WindowDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
