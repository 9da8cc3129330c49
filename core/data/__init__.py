"""Dataset readers: iNatSounds 2024 and XCDC (recording level), and window-level datasets.

The readers need only numpy; :class:`WindowDataset` (torch, audio front-end) is imported
lazily so that ``geoforensics data info`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from geoforensics.core.data.inatsounds import (
    SPLITS,
    Category,
    INatSounds,
    Recording,
    summarize_inatsounds,
)
from geoforensics.core.data.records import parse_date
from geoforensics.core.data.xcdc import XCDC, XCDCRecording

if TYPE_CHECKING:
    from geoforensics.core.data.windows import WindowDataset

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
        from geoforensics.core.data.windows import WindowDataset

        return WindowDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
