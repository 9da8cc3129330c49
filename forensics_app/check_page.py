"""Check page: does a clip's audio belong with its pictures, tags and claimed place?

Runs :func:`geoforensics.core.forensics.run_check` (what ``geoforensics check`` runs) on an
uploaded clip or the shipped demo clip, feeding ``st.progress`` from its progress callback,
then shows the verdict, the modalities on an offline map (heat hexagons of the chosen
modality's distribution, top-k markers, arcs between the modalities' places, Natural Earth
outlines), the discrepancy table, the timeline, the species evidence, and report.json /
report.html downloads (written by :func:`~geoforensics.core.forensics.write_report`).
``?demo=1`` runs the demo check as soon as the page opens.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from geoforensics.core.forensics import CheckOptions, run_check, write_report
from geoforensics.core.forensics.discrepancy import MODALITY_LABELS, RADII_KM
from geoforensics.core.forensics.regions_check import SHOWN_LEVEL, region_at, region_line
from geoforensics.forensics_app import common
from geoforensics.forensics_app.maps import MARKDOWN_COLORS, MapPoint, build_deck, heat_cells

DEMO_CLAIM = "Nairobi"
SOURCES = ("Demo clip", "Upload a clip")
_VERDICT_STYLE = {"consistent": st.success, "mismatch": st.error, "inconclusive": st.warning}


@dataclass
class CheckRun:
    """A finished check kept in the session: the report and the downloadable files."""

    report: Any
    clip_name: str
    files: dict[str, bytes]


def _options(claimed: str, when: date | None, text: str, settings: dict[str, Any]) -> Any:

    return CheckOptions(
        model_dir=settings["model_dir"],
        gallery=settings["gallery"],
        claimed=claimed.strip() or None,
        date=when,
        text=text.strip() or None,
        top_k=settings["top_k"],
        species=settings["species"],
    )


def run(clip: Path, clip_name: str, options: Any) -> CheckRun:
    """Run the check with a progress bar and write the report into a temporary folder, read
    back for the download buttons (the folder is removed afterwards)."""

    bar = st.progress(0.0, text="Starting the check ...")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(1.0, max(0.0, float(fraction))), text=message)

    model_dir = None if options.model_dir is None else str(options.model_dir)
    models = common.check_models(model_dir, options.gallery, options.clip_weights, options.species)
    report = run_check(clip, options, models=models, progress=progress)
    out = Path(tempfile.mkdtemp(prefix="geoforensics-report-"))
    try:
        written = write_report(report, out)
        files = {
            Path(path).name: Path(path).read_bytes()
            for path in written.values()
            if Path(path).suffix in (".json", ".html")
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)
    bar.progress(1.0, text="Done")
    return CheckRun(report, clip_name, files)


# ------------------------------------------------------------------------------ display


def modality_table(report: Any) -> pd.DataFrame:
    """One row per modality: where it points (top-1), how sure, or why it is unavailable."""
    rows = []
    for name, m in report.modalities.items():
        best = m.top[0] if m.top else {}
        note = ""
        if m.available and m.evidence_note:
            note = ("NOT EVIDENCE: " if not m.evidence else "") + m.evidence_note
        rows.append(
            {
                "modality": m.label,
                "key": name,
                "available": bool(m.available),
                "counted": bool(m.available and m.evidence),
                "note": note,
                "top-1 place": best.get("label", "") if m.available else "",
                "latitude": None if m.point is None else round(float(m.point[0]), 3),
                "longitude": None if m.point is None else round(float(m.point[1]), 3),
                "P(within 500 km)": best.get("region_probability") if m.available else None,
                "source / reason": (m.source or "") if m.available else (m.reason or ""),
            }
        )
    return pd.DataFrame(rows)


def discrepancy_table(report: Any) -> pd.DataFrame:
    """One row per compared pair: distance, the audio's mass within 200/750/2,500 km, status."""

    rows = []
    for d in report.discrepancies:
        row: dict[str, Any] = {
            "pair": f"{MODALITY_LABELS.get(d.first, d.first)} vs "
            f"{MODALITY_LABELS.get(d.second, d.second)}",
            "distance km": round(d.distance_km, 1),
        }
        for radius in RADII_KM:
            key = f"mass ≤{radius:,.0f} km"
            row[key] = None if d.mass_within is None else round(d.mass_within[radius], 4)
        row["status"] = d.status
        row["reason"] = d.reason
        rows.append(row)
    return pd.DataFrame(rows)


def timeline_frame(report: Any) -> pd.DataFrame:
    """The timeline as rows: kind, time, top-1 place, distances to the references."""
    rows = []
    for s in report.timeline:
        row: dict[str, Any] = {
            "kind": s.kind,
            "time s": round((s.start_s + s.end_s) / 2.0, 2),
            "start s": round(s.start_s, 2),
            "end s": round(s.end_s, 2),
            "available": s.available,
            "top-1 place": s.label or (s.reason or ""),
            "species": ", ".join(getattr(s, "species", []) or []),
            "latitude": None if s.point is None else round(float(s.point[0]), 3),
            "longitude": None if s.point is None else round(float(s.point[1]), 3),
        }
        for ref, km in s.distance_km.items():
            row[f"km to {ref}"] = round(km, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def timeline_chart_data(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(chart data indexed by time, y-axis title): distance to the claimed place or GPS tag
    per segment when there is one, else the segments' top-1 latitude and longitude."""
    if frame.empty:
        return frame, ""
    usable = frame[frame["available"]]
    distance_cols = [c for c in ("km to claimed", "km to metadata_gps") if c in usable]
    if distance_cols:
        column = distance_cols[0]
        reference = column.removeprefix("km to ")
        wide = usable.pivot_table(index="time s", columns="kind", values=column, aggfunc="mean")
        wide.columns = [f"{kind} to {reference} (km)" for kind in wide.columns]
        return wide, f"distance to {reference} (km)"
    wide = usable.pivot_table(
        index="time s", columns="kind", values=["latitude", "longitude"], aggfunc="mean"
    )
    wide.columns = [f"{kind} {axis}" for axis, kind in wide.columns]
    return wide, "top-1 latitude / longitude (°)"


#: Column titles of the places the species' range probabilities are read at.
_PLACE_COLUMNS = {
    "claimed": "claimed place",
    "metadata_gps": "GPS tag",
    "audio_species": "species top-1",
    "audio": "AG-CLIP top-1",
}


def species_frame(species: dict[str, Any] | None) -> pd.DataFrame:
    """One row per species BirdNET heard: confidence, when in the clip, and its range
    probability (that week) at the claimed place, the GPS tag and the audio's top-1 place,
    with "expected" / "unexpected here"."""
    if not species or not species.get("heard"):
        return pd.DataFrame()
    places = species.get("places") or {}
    rows = []
    for heard in species["heard"]:
        name = heard.get("scientific", "")
        row: dict[str, Any] = {
            "species": name,
            "common name": heard.get("common", ""),
            "max confidence": heard.get("max_conf"),
            "mean confidence": heard.get("mean_conf"),
            "windows": heard.get("n_windows"),
            "heard at (s)": heard.get("spans", ""),
        }
        for key, place in places.items():
            title = f"range at {_PLACE_COLUMNS.get(key, key)}"
            entry = next((e for e in place.get("species", []) if e.get("scientific") == name), None)
            if entry is not None and entry.get("range_probability") is not None:
                row[title] = f"{entry['range_probability']:.3f} ({entry.get('note', '')})"
        rows.append(row)
    return pd.DataFrame(rows)


def species_caption(species: dict[str, Any]) -> str:
    """Which model heard the species, above which confidence, and where the ranges are read."""
    places = species.get("places") or {}
    where = "; ".join(
        f"{_PLACE_COLUMNS.get(key, key)}: {place.get('label', '')}" for key, place in places.items()
    )
    week = species.get("week")
    when = "year-round ranges" if week in (None, -1) else f"ranges of week {week}"
    return (
        f"{species.get('model', 'BirdNET')}, confidence ≥ {species.get('threshold', '?')}, "
        f"{species.get('n_windows', '?')} windows; {when}. Places: {where}."
    )


def map_layers(report: Any, heat_of: str) -> Any:
    """The deck: heat hexagons of ``heat_of``'s distribution, every modality's top-k
    markers and arcs between the compared modalities' top-1 places."""

    heat: list[dict[str, Any]] = []
    chosen = report.modalities.get(heat_of)
    if chosen is not None and chosen.available and chosen.probs is not None:
        heat = heat_cells(report.gallery_coords, chosen.probs, common.HEX_RES)
    points = []
    tops: dict[str, MapPoint] = {}
    for name, m in report.modalities.items():
        if not m.available or m.point is None:
            continue
        rows = m.top or [{"latitude": m.point[0], "longitude": m.point[1], "label": "", "rank": 1}]
        for rank, row in enumerate(rows, start=1):
            point = MapPoint(
                name,
                float(row["latitude"]),
                float(row["longitude"]),
                str(row.get("label", "")),
                rank,
                row.get("region_probability"),
            )
            points.append(point)
            if rank == 1:
                tops[name] = MapPoint(name, float(m.point[0]), float(m.point[1]), point.label)
    arcs = [
        (tops[d.first], tops[d.second])
        for d in report.discrepancies
        if d.first in tops and d.second in tops
    ]
    return build_deck(heat, points, arcs, region=region_geojson(chosen))


def region_geojson(modality: Any) -> dict[str, Any] | None:
    """The 90 % confidence region of ``modality`` as a GeoJSON FeatureCollection (None
    without one)."""

    region = None if modality is None else region_at(modality, SHOWN_LEVEL)
    if region is None:
        return None
    feature = region.feature(modality=modality.name)
    return {"type": "FeatureCollection", "features": [feature]}


def show(result: CheckRun) -> None:
    """Everything about one finished check."""

    report = result.report
    verdict = report.verdict
    style = _VERDICT_STYLE.get(verdict.label, st.info)
    style(f"Verdict: **{verdict.label.upper()}** — {result.clip_name}")
    with st.expander("Why (each compared pair)", expanded=True):
        for line in verdict.reasons:
            st.markdown(f"- {line}")
        st.caption(
            "Rules: "
            + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in verdict.thresholds.items())
        )
    for note in getattr(report, "notes", []) or []:
        st.info(note)

    st.subheader("Where each modality points")
    st.dataframe(modality_table(report), hide_index=True, width="stretch")
    for m in report.modalities.values():
        if m.available and not m.evidence and m.evidence_note:
            st.warning(f"{m.label}: {m.evidence_note} (shown, not counted in the verdict)")

    with_probs = [
        name for name, m in report.modalities.items() if m.available and m.probs is not None
    ]
    legend = " · ".join(
        f":{MARKDOWN_COLORS.get(name, 'gray')}[●] {m.label}"
        for name, m in report.modalities.items()
        if m.available and m.point is not None
    )
    if with_probs:
        heat_of = st.radio(
            "Heatmap of",
            with_probs,
            horizontal=True,
            key="check_heat_of",
            format_func=lambda n: report.modalities[n].label,
        )
    else:
        heat_of = ""
    st.pydeck_chart(map_layers(report, heat_of), height=480, key="check_map")
    if heat_of:
        shown = report.modalities[heat_of]
        line = region_line(shown)
        if line is not None:
            st.caption(f"Blue outline: {shown.label}, {line}.")
    st.caption(
        f"{legend}. Hexagons: the probability of the chosen modality summed over H3 "
        f"resolution-{common.HEX_RES} cells of the {report.gallery_name} gallery; arcs join "
        "the compared modalities' top-1 places. Outlines: Natural Earth (public domain)."
    )

    st.subheader("Discrepancies")
    table = discrepancy_table(report)
    if table.empty:
        st.info("No two modalities could be compared (need at least two with a place).")
    else:
        st.dataframe(table, hide_index=True, width="stretch")

    st.subheader("Timeline")
    frame = timeline_frame(report)
    if frame.empty:
        st.info("No timeline: the clip gave no audio segment or keyframe.")
    else:
        chart, y_title = timeline_chart_data(frame)
        if not chart.empty:
            st.line_chart(chart, x_label="time in the clip (s)", y_label=y_title)
        st.dataframe(frame, hide_index=True, width="stretch")

    st.subheader("Species evidence")
    species = species_frame(report.species)
    if species.empty:
        st.info(report.species_note or "No species evidence for this clip.")
    else:
        st.dataframe(species, hide_index=True, width="stretch")
        st.caption(species_caption(report.species))
        for key, judged in (report.species.get("judgements") or {}).items():
            st.markdown(f"- at the {_PLACE_COLUMNS.get(key, key)}: {judged.get('summary', '')}")
        if report.species_note:
            st.caption(report.species_note)

    st.subheader("Report")
    columns = st.columns(2)
    mimes = {"report.json": "application/json", "report.html": "text/html"}
    for column, name in zip(columns, ("report.json", "report.html"), strict=True):
        if name in result.files:
            column.download_button(
                f"Download {name}",
                result.files[name],
                file_name=name,
                mime=mimes[name],
                key=f"download_{name}",
            )
    with st.expander("Inputs, models and parameters"):
        st.json(
            {
                "inputs": report.inputs,
                "models": report.models,
                "parameters": report.parameters,
                "versions": report.versions,
            }
        )


# -------------------------------------------------------------------------------- page


def render() -> None:
    """The page."""
    st.title("Check a clip")
    st.caption(
        "Where does the audio point, where do the frames and the text point, what does the "
        "container say, and does it fit the claimed place? Runs `geoforensics check` here."
    )
    demo_requested = str(st.query_params.get("demo", "")) in ("1", "true", "yes")
    source = st.radio("Clip", SOURCES, horizontal=True, key="check_source")
    upload = None
    if source == SOURCES[1]:
        upload = st.file_uploader(
            f"Video or audio clip (up to {common.MAX_UPLOAD_MB} MB; removed after the check)",
            type=list(common.MEDIA_TYPES),
            key="check_upload",
        )
    else:
        st.caption(
            f"Demo: `{common.demo_clip_path().name}`, SYNTHETIC audio from the generator's "
            "tiny world with drawn frames; its title tag claims Nairobi."
        )
    left, middle, right = st.columns(3)
    claimed = left.text_input(
        "Claimed place (PLACE or LAT,LON)",
        value=DEMO_CLAIM if source == SOURCES[0] else "",
        key=f"check_claimed_{SOURCES.index(source)}",
    )
    when = middle.date_input("Recording date (optional)", value=None, key="check_date")
    text = right.text_input("Text hint (optional: caption, title ...)", key="check_text")
    with st.expander("Settings"):
        a, b, c, d = st.columns(4)
        model_dir = a.text_input(
            "AG-CLIP model folder or .pt (empty: none, the species BirdNET hears locate the "
            "audio; the demo clip uses the shipped SYNTHETIC demo model)",
            value=os.environ.get("GEOFORENSICS_APP_MODEL", ""),
            key="check_model",
        )
        gallery = b.text_input("Gallery", value=common.default_gallery(), key="check_gallery")
        top_k = int(c.number_input("Top-k places", 1, 20, 5, key="check_top_k"))
        species = d.checkbox("Species evidence (BirdNET)", value=True, key="check_species")
    chosen_model = Path(model_dir.strip()) if model_dir.strip() else None
    if chosen_model is None and source == SOURCES[0]:
        chosen_model = common.default_model_dir()  # as `geoforensics demo`: passed explicitly
    settings = {
        "model_dir": chosen_model,
        "gallery": gallery.strip() or common.DEFAULT_GALLERY,
        "top_k": top_k,
        "species": species,
    }
    clicked = st.button("Run check", type="primary", key="check_run")
    auto = demo_requested and source == SOURCES[0] and "check_result" not in st.session_state
    if clicked or auto:
        try:
            options = _options(claimed, when, text, settings)
            if source == SOURCES[0]:
                st.session_state["check_result"] = run(
                    common.demo_clip_path(), common.demo_clip_path().name, options
                )
            elif upload is None:
                st.warning("Choose a clip to upload first.")
            else:
                with common.private_copies([upload], expect="media") as (path,):
                    st.session_state["check_result"] = run(path, upload.name, options)
        except Exception as exc:
            common.show_error(exc)
    result = st.session_state.get("check_result")
    if result is not None:
        show(result)


if __name__ == "__main__":
    render()
