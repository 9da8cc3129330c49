"""Per-clip claims for a folder check (``check FOLDER --claims FILE.csv``).

An archive desk knows, clip by clip, where each is said to be from and when. The claims file
is a CSV with a header and one row per clip:

- ``file``: the clip's path under the folder (``nested/clip.mp4``) or its bare name when that
  is unique in the folder;
- ``claimed`` (a place name or ``LAT,LON``) or ``latitude`` and ``longitude``: the claimed place;
- ``date`` (optional, ``YYYY-MM-DD``; empty = unknown): the recording date for the species
  ranges;
- ``text`` (optional): a text hint.

Empty cells leave the command line's ``--claimed`` / ``--date`` / ``--text`` in force. The
file is read whole before any clip is checked: a malformed file or value is a one-line error
naming the file and row, and nothing is checked.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from geoforensics.core.errors import InputError
from geoforensics.core.forensics.check_options import CheckOptions


@dataclass(frozen=True)
class ClipClaim:
    """What the claims file says about one clip (None: not given)."""

    claimed: str | None = None
    date: dt.date | None = None
    text: str | None = None

    def apply(self, options: CheckOptions) -> CheckOptions:
        """``options`` with this clip's claim, date and text where given."""
        return dataclasses.replace(
            options,
            claimed=options.claimed if self.claimed is None else self.claimed,
            date=options.date if self.date is None else self.date,
            text=options.text if self.text is None else self.text,
        )


def _cell(row: dict[str, str | None], name: str) -> str | None:
    value = (row.get(name) or "").strip()
    return value or None


def _claim_of(row: dict[str, str | None], where: str) -> ClipClaim:
    claimed = _cell(row, "claimed")
    lat, lon = _cell(row, "latitude"), _cell(row, "longitude")
    if claimed is None and (lat is not None or lon is not None):
        try:
            lat_f, lon_f = float(lat or "nan"), float(lon or "nan")
        except ValueError:
            raise InputError(
                f"{where}: latitude/longitude {lat!r}, {lon!r} are not numbers"
            ) from None
        if not (math.isfinite(lat_f) and math.isfinite(lon_f)):
            raise InputError(f"{where}: give both latitude and longitude (or neither)")
        if not (-90 <= lat_f <= 90 and -180 <= lon_f <= 180):
            raise InputError(f"{where}: latitude {lat_f} / longitude {lon_f} out of range")
        claimed = f"{lat_f},{lon_f}"
    date = None
    text = _cell(row, "date")
    if text is not None:
        try:
            date = dt.date.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"{where}: date {text!r} is not YYYY-MM-DD (leave it empty when unknown)"
            ) from None
    return ClipClaim(claimed=claimed, date=date, text=_cell(row, "text"))


def read_claims(path: str | Path, clips: Sequence[Path], folder: Path) -> dict[Path, ClipClaim]:
    """The claims of ``clips`` (under ``folder``) from the CSV at ``path``; rows naming no
    clip of the folder are ignored. One-line :class:`InputError` for a bad file."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{source}: no such claims file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read the claims file ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    if "file" not in header:
        raise InputError(f"{source}: a claims CSV needs a 'file' column (found: {header})")
    reader.fieldnames = header
    by_relative = {c.relative_to(folder).as_posix(): c for c in clips}
    by_name: dict[str, list[Path]] = {}
    for path in clips:
        by_name.setdefault(path.name, []).append(path)
    claims: dict[Path, ClipClaim] = {}
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise InputError(f"{source}: not a readable CSV ({exc})") from None
    for number, row in enumerate(rows, start=2):
        where = f"{source} row {number}"
        name = (row.get("file") or "").strip().replace("\\", "/")
        if not name:
            raise InputError(f"{where}: empty 'file'")
        clip: Path | None = by_relative.get(name)
        if clip is None:
            named = by_name.get(Path(name).name, [])
            if len(named) > 1 and "/" not in name:
                raise InputError(
                    f"{where}: {name!r} matches {len(named)} clips in {folder}; give its path"
                )
            clip = named[0] if len(named) == 1 and "/" not in name else None
        if clip is None:
            continue
        if clip in claims:
            raise InputError(f"{where}: a second row for {name!r}")
        claims[clip] = _claim_of(row, where)
    return claims


__all__ = ["ClipClaim", "read_claims"]
