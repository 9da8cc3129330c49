"""Batch page: the results of a ``geoforensics check FOLDER --out DIR`` run.

Reads what the folder check wrote into DIR (:mod:`geoforensics.core.forensics.folder`): the
summary table (``summary.parquet``, else ``summary.csv``), filtered by verdict and sortable by
any column; a world map of every clip's audio places and claims (an arc joins each clip's
claimed place to the place its audio points to); and one clip at a time: its verdict, reasons,
maps and its self-contained ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from geoforensics.core.errors import InputError
from geoforensics.forensics_app import common
from geoforensics.forensics_app.maps import MapPoint, build_deck

#: The audio place drawn per clip, first available: fused, AG-CLIP, species.
AUDIO_ORDER: tuple[str, ...] = ("audio_fused", "audio", "audio_species")
#: Columns shown in the table, in order (the rest are in the download).
SHOWN: tuple[str, ...] = (
    "file",
    "status",
    "verdict",
    "claimed_place",
    "audio_species_place",
    "audio_species_km_to_claim",
    "audio_species_region90_km2",
    "audio_place",
    "audio_km_to_claim",
    "gps_km_to_claim",
    "n_species",
    "species_heard",
    "duration_s",
    "error",
)


def read_batch(folder: Path) -> pd.DataFrame:
    """The summary table of a batch folder (InputError naming what is missing)."""

    parquet, csv = folder / "summary.parquet", folder / "summary.csv"
    try:
        if parquet.is_file():
            return pd.read_parquet(parquet)
        if csv.is_file():
            return pd.read_csv(csv)
    except Exception as exc:  # a damaged table: say which file
        raise InputError(f"{parquet if parquet.is_file() else csv}: unreadable ({exc})") from None
    raise InputError(
        f"{folder}: no summary.parquet or summary.csv: is it a `geoforensics check FOLDER "
        "--out` folder?"
    )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN: missing


def batch_points(table: pd.DataFrame) -> tuple[list[MapPoint], list[tuple[MapPoint, MapPoint]]]:
    """Markers (each clip's audio place and claimed place) and arcs claim → audio place."""
    points: list[MapPoint] = []
    arcs: list[tuple[MapPoint, MapPoint]] = []
    for row in table.to_dict("records"):
        audio = None
        for name in AUDIO_ORDER:
            lat, lon = _number(row.get(f"{name}_lat")), _number(row.get(f"{name}_lon"))
            if lat is not None and lon is not None:
                place = row.get(f"{name}_place") or ""
                label = f"{row['file']} ({row.get('verdict') or row.get('status')}): {place}"
                audio = MapPoint(name, lat, lon, label)
                break
        claim = None
        lat, lon = _number(row.get("claimed_lat")), _number(row.get("claimed_lon"))
        if lat is not None and lon is not None:
            claim = MapPoint(
                "claimed", lat, lon, f"{row['file']}: claimed {row.get('claimed_place')}"
            )
        points += [p for p in (audio, claim) if p is not None]
        if audio is not None and claim is not None:
            arcs.append((claim, audio))
    return points, arcs


def _show_clip(folder: Path, row: dict[str, Any]) -> None:
    """One clip's verdict, reasons, maps and report."""
    if row.get("status") == "failed" or not row.get("report_dir"):
        st.error(f"{row['file']}: failed: {row.get('error')}")
        return
    report_dir = folder / str(row["report_dir"])
    document = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    verdict = document.get("verdict") or {}
    st.markdown(f"**{row['file']}**: verdict **{str(verdict.get('label', '?')).upper()}**")
    for reason in verdict.get("reasons") or []:
        if not str(reason).startswith("not counted"):
            st.markdown(f"- {reason}")
    pictures = sorted(report_dir.glob("map_*.png")) + sorted(report_dir.glob("timeline.png"))
    for picture in pictures:
        st.image(str(picture), caption=picture.name)
    html = report_dir / "report.html"
    if html.is_file():
        st.download_button(
            "report.html",
            html.read_bytes(),
            file_name=f"{Path(str(row['file'])).name}.report.html",
            mime="text/html",
            key="batch_report_html",
        )
        st.caption(f"Open in a browser: {html}")


def render() -> None:
    """The page."""
    st.title("Batch")
    st.caption(
        "The summary table, map and reports that `geoforensics check FOLDER --out DIR` wrote."
    )
    folder_text = st.text_input(
        "Batch folder", value=common.default_batch_dir(), key="batch_folder"
    )
    folder = Path(folder_text.strip()).expanduser()
    try:
        table = read_batch(folder)
    except Exception as exc:
        common.show_error(exc)
        st.info("Make one with e.g. `geoforensics check CLIPS/ --claims claims.csv --out DIR`.")
        return
    verdicts = sorted({str(v) for v in table["verdict"].dropna()})
    failed = int((table["status"] == "failed").sum())
    st.markdown(
        f"**{len(table)} clips**: "
        + ", ".join(f"{int((table['verdict'] == v).sum())} {v}" for v in verdicts)
        + (f", {failed} failed" if failed else "")
    )
    chosen = st.multiselect(
        "Verdicts shown", [*verdicts, "failed"], default=[*verdicts, "failed"], key="batch_verdicts"
    )
    keep = table["verdict"].isin(chosen) | ((table["status"] == "failed") & ("failed" in chosen))
    shown = table[keep]
    st.dataframe(shown[[c for c in SHOWN if c in shown.columns]], hide_index=True, width="stretch")
    st.download_button(
        "summary.csv",
        shown.to_csv(index=False).encode("utf-8"),
        file_name="summary.csv",
        mime="text/csv",
        key="batch_csv",
    )
    points, arcs = batch_points(shown)
    st.subheader("Where the audio points, and the claims")
    st.caption(
        "One marker per clip for its audio place (fused, else AG-CLIP, else species) and one "
        "for its claimed place, joined by an arc."
    )
    st.pydeck_chart(build_deck(points=points, arcs=arcs), height=480)
    st.subheader("One clip")
    names = [str(f) for f in shown["file"]]
    if not names:
        st.info("No clip with the chosen verdicts.")
        return
    name = st.selectbox("Clip", names, key="batch_clip")
    row = shown[shown["file"] == name].iloc[0].to_dict()
    try:
        _show_clip(folder, row)
    except Exception as exc:
        common.show_error(exc)


if __name__ == "__main__":
    render()
