"""Benchmark page: the outputs of a ``geoforensics bench --out DIR`` run.

Shows what the bench wrote into DIR (see :mod:`geoforensics.eval.bench`): the summary of
every row from ``results.json`` (mean ± std over seeds), the paper's tables
(``tables.md``), the error CDF (``cdf.png``), the error map (``error_map.png``) and any
other map the folder holds, and the per-row prediction CSVs for download.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from geoforensics.core.errors import InputError
from geoforensics.forensics_app import common

#: Metrics shown in the summary table (results.json keys), in order.
METRICS: tuple[str, ...] = (
    "median_km",
    "mean_km",
    "acc@1km",
    "acc@25km",
    "acc@200km",
    "acc@750km",
    "acc@2500km",
)
#: Known figures and their captions.
FIGURES: dict[str, str] = {
    "cdf.png": "Error CDF of the Table 1 rows (paper Fig. 3, left)",
    "error_map.png": "Median error per H3 cell of the main method (paper Fig. 3, right)",
}


def read_results(folder: Path) -> dict[str, Any]:
    """``results.json`` of a bench folder (InputError when absent or unreadable)."""

    path = folder / "results.json"
    if not path.is_file():
        raise InputError(f"{path}: not found: is {folder} a `geoforensics bench --out` folder?")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None
    return data


def _cell(summary: dict[str, Any], key: str) -> str:
    stat = summary.get(key)
    if not isinstance(stat, dict) or stat.get("mean") is None:
        return ""
    mean, std, n = float(stat["mean"]), stat.get("std"), int(stat.get("n") or 1)
    scale, unit = (1.0, "") if key.endswith("_km") else (100.0, "%")
    text = f"{mean * scale:,.1f}{unit}"
    if n > 1 and std is not None:
        text += f" ± {float(std) * scale:,.1f}"
    return text


def summary_frame(results: dict[str, Any]) -> pd.DataFrame:
    """One row per benchmark row: table, split, seeds and the metrics (mean ± std)."""
    rows = []
    for name, entry in (results.get("rows") or {}).items():
        summary = entry.get("summary") or {}
        row: dict[str, Any] = {
            "row": name,
            "method": entry.get("label", name),
            "table": entry.get("table", ""),
            "split": entry.get("split", ""),
            "seeds": len(entry.get("seeds") or {}),
        }
        for key in METRICS:
            row[key] = _cell(summary, key)
        if entry.get("failed"):
            row["failed"] = "; ".join(f"seed {s}: {m}" for s, m in entry["failed"].items())
        rows.append(row)
    return pd.DataFrame(rows)


def render() -> None:
    """The page."""
    st.title("Benchmark")
    st.caption("The tables, error CDF and maps that `geoforensics bench --out DIR` wrote.")
    folder_text = st.text_input(
        "Bench output folder", value=common.default_bench_dir(), key="bench_folder"
    )
    folder = Path(folder_text.strip()).expanduser()
    try:
        results = read_results(folder)
    except Exception as exc:
        common.show_error(exc)
        st.info("Make one with e.g. `geoforensics bench --data WORLD --preset tiny --out DIR`.")
        return
    dataset = results.get("dataset") or {}
    preset = results.get("preset") or {}
    synthetic = " (SYNTHETIC world)" if dataset.get("synthetic") else ""
    st.markdown(
        f"**Data:** {dataset.get('name', '?')}{synthetic} at `{dataset.get('root', '?')}` · "
        f"**preset:** {preset.get('name', '?')} · **seeds:** {results.get('seeds', [])}"
    )
    st.subheader("Summary")
    st.caption(results.get("metrics_note", ""))
    st.dataframe(summary_frame(results), hide_index=True, width="stretch")

    tables = folder / "tables.md"
    if tables.is_file():
        with st.expander("Paper tables (tables.md)", expanded=True):
            st.markdown(tables.read_text(encoding="utf-8"))
    pictures = [folder / name for name in FIGURES if (folder / name).is_file()]
    pictures += sorted(p for p in folder.glob("*.png") if p.name not in FIGURES)
    if pictures:
        st.subheader("Figures")
        for picture in pictures:
            st.image(str(picture), caption=FIGURES.get(picture.name, picture.name))
    else:
        st.info("No figures in this folder (the CDF and error map need Table 1 rows).")
    csvs = sorted((folder / "predictions").glob("*.csv"))
    if csvs:
        with st.expander(f"Predictions ({len(csvs)} CSV files, the public scorer's format)"):
            for csv in csvs:
                st.download_button(
                    csv.name,
                    csv.read_bytes(),
                    file_name=csv.name,
                    mime="text/csv",
                    key=f"bench_csv_{csv.name}",
                )


if __name__ == "__main__":
    render()
