"""Small parsers shared by the dataset readers: dates, coordinates, missing-file checks.

Dates are returned as *naive* datetimes holding the wall-clock time as written in the file. A
UTC offset, when present, is dropped rather than applied: iNaturalist dates carry the
observer's local offset, and the local hour and day are what season and dawn-chorus features
need. Datasets mix strings with and without offsets, and naive values keep them comparable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

#: ``YYYY-MM-DD`` or ``YYYY/MM/DD``, then optionally ``T`` or spaces and ``HH:MM[:SS[.fff]]``,
#: then optionally ``Z`` or an offset ``±HH[:MM]`` (dropped, see the module docstring).
_DATE_RE = re.compile(
    r"""^\s*(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})
        (?:(?:[T\s]+)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?)?
        \s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$""",
    re.VERBOSE | re.IGNORECASE,
)


def parse_date_parts(value: object) -> tuple[datetime | None, bool]:
    """Parse a date string leniently; returns ``(datetime or None, whether a time was given)``.

    Accepts ISO-like dates with ``T`` or a space before the time, with or without seconds,
    fractions and a UTC offset, and date-only strings (midnight, time flag False). Anything else
    (``None``, empty, ``"?"``, impossible dates such as day 0) gives ``(None, False)``.
    """
    if not isinstance(value, str):
        return None, False
    text = value.strip()
    if len(text) >= 10 and text[4] == "-":
        try:  # fast path (C code) for the ISO strings real datasets use
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=None), len(text) > 10
    match = _DATE_RE.match(text)
    if match is None:
        return None, False
    has_time = match.group("H") is not None
    fraction = match.group("f") or "0"
    try:
        parsed = datetime(
            int(match.group("y")),
            int(match.group("m")),
            int(match.group("d")),
            int(match.group("H") or 0),
            int(match.group("M") or 0),
            int(match.group("S") or 0),
            int(fraction[:6].ljust(6, "0")),
        )
    except ValueError:
        return None, False
    return parsed, has_time


def parse_date(value: object) -> datetime | None:
    """Parse a date string leniently (see :func:`parse_date_parts`); unparseable gives None."""
    return parse_date_parts(value)[0]


def as_float(value: object) -> float:
    """A number from JSON/CSV as float; ``None``, blanks, booleans and junk become NaN."""
    if value is None or isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return math.nan
    return math.nan


def is_valid_location(latitude: float, longitude: float) -> bool:
    """True when both are finite, latitude in [-90, 90] and longitude in [-180, 180]."""
    return (
        math.isfinite(latitude)
        and math.isfinite(longitude)
        and -90.0 <= latitude <= 90.0
        and -180.0 <= longitude <= 180.0
    )


def missing_files(paths: Iterable[Path]) -> list[Path]:
    """The paths that do not exist, in input order.

    Lists each parent folder once instead of calling ``stat`` per file, which keeps a check of
    the 137k iNatSounds training files fast on network file systems too.
    """
    listings: dict[Path, set[str] | None] = {}
    missing = []
    for path in paths:
        parent = path.parent
        if parent not in listings:
            try:
                listings[parent] = set(os.listdir(parent))
            except OSError:
                listings[parent] = None
        names = listings[parent]
        if names is None or path.name not in names:
            missing.append(path)
    return missing


def date_range(dates: Iterable[datetime | None]) -> tuple[datetime | None, datetime | None]:
    """Earliest and latest of the known dates, ``(None, None)`` when there are none."""
    known = [date for date in dates if date is not None]
    if not known:
        return None, None
    return min(known), max(known)


def isoformat_or_none(date: datetime | None) -> str | None:
    """``date.isoformat()`` or None, for JSON summaries."""
    return None if date is None else date.isoformat()
