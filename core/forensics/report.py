"""Writing a check report: ``report.json``, a self-contained ``report.html`` and PNG maps.

:func:`write_report` writes into one folder, every file atomically (a crash never leaves a
half-written file under its final name), ``report.json`` last: it is the marker that the
report is complete (``check FOLDER`` skips a clip whose ``report.json`` has the same
fingerprint). ``report.html`` needs nothing else: the maps, the timeline chart and keyframe
thumbnails are embedded as base64 PNG, the CSS is inline, there are no scripts and no links
to the network (any URL in a message is shown without its scheme).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.fileio import atomic_write
from geoforensics.core.forensics.discrepancy import MODALITY_LABELS, RADII_KM
from geoforensics.core.forensics.maps import STYLE, write_modality_map, write_timeline_chart
from geoforensics.core.forensics.results import CheckReport

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
TIMELINE_PNG = "timeline.png"
#: Distribution modalities that get a map of their own.
MAPPED: tuple[str, ...] = ("audio_species", "audio_fused", "audio", "frames", "text")

_URL = re.compile(r"\b(?:https?|ftp)://", re.IGNORECASE)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """NaN/inf floats become None so that report.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def report_json_text(report: CheckReport, document: dict[str, Any] | None = None) -> str:
    """``report.json``'s text (strict JSON, indented); ``document`` is ``report.as_dict()``
    when the caller has it already."""
    document = report.as_dict() if document is None else document
    plain = json.loads(json.dumps(document, default=_json_default))
    return json.dumps(_clean(plain), indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------- HTML


def _text(value: Any) -> str:
    """Escaped text with URL schemes removed (the page links nowhere)."""
    return html.escape(_URL.sub("", "" if value is None else str(value)))


def _png_data(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _image_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100.0 * value:.1f}%"


def _km(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} km"


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#f6f6f4}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#ccc;padding-bottom:4px}h3{font-size:14px;margin:16px 0 6px}
table{border-collapse:collapse;width:100%;font-size:13px;background:#fff;margin:6px 0}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:6px 14px;border-radius:4px;font-weight:bold;color:#fff;
font-size:18px;text-transform:uppercase;letter-spacing:.05em}
.v-mismatch{background:#c0392b}.v-consistent{background:#27ae60}.v-inconclusive{background:#7f8c8d}
.s-mismatch{color:#c0392b;font-weight:bold}.s-consistent{color:#1e8449;font-weight:bold}
.s-inconclusive{color:#555}
p.muted{font-size:13px}
.note{background:#fff8dc;border:1px solid #e6d690;padding:6px 10px;margin:8px 0;font-size:13px}
.muted{color:#777}.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;
word-break:break-all}
img.map{width:100%;max-width:1000px;border:1px solid #ccc;background:#fff}
.frames{display:flex;flex-wrap:wrap;gap:8px}.frames figure{margin:0;background:#fff;border:1px
solid #ddd;padding:4px;font-size:11px;width:210px}.frames img{max-width:200px;display:block}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
ul.reasons{margin:6px 0 0 0;padding-left:18px;font-size:13px}
footer{font-size:12px;color:#777;margin-top:32px}
"""


def _modality_rows(report: CheckReport) -> str:
    rows = []
    for name, m in report.modalities.items():
        colour = STYLE.get(name, ("#000", "o"))[0]
        swatch = f'<span class="swatch" style="background:{colour}"></span>'
        if m.available and m.top:
            best = m.top[0]
            where = (
                f"{_text(best['label'])}<br><span class='muted'>"
                f"{best['latitude']:.3f}, {best['longitude']:.3f}</span>"
            )
            score = _pct(best["region_probability"]) if m.kind == "distribution" else "point"
            state = "yes"
        else:
            where, score, state = "–", "–", "no"
        source = _text(m.source) if m.available else f"<span class='muted'>{_text(m.reason)}</span>"
        if m.available and m.evidence_note:
            flag = "NOT EVIDENCE: " if not m.evidence else "note: "
            source += f"<br><b class='s-mismatch'>{_text(flag + m.evidence_note)}</b>"
        rows.append(
            f"<tr><td>{swatch}{_text(m.label)}</td><td>{state}</td><td>{where}</td>"
            f"<td class='num'>{score}</td><td>{source}</td></tr>"
        )
    return (
        "<table><tr><th>modality</th><th>available</th><th>top place</th>"
        "<th>P(within 500 km)</th><th>source / why not</th></tr>" + "".join(rows) + "</table>"
    )


def _top_tables(report: CheckReport) -> str:
    parts = []
    for m in report.modalities.values():
        if not m.available or m.kind != "distribution":
            continue
        rows = "".join(
            f"<tr><td class='num'>{r['rank']}</td><td class='num'>{r['latitude']:.3f}</td>"
            f"<td class='num'>{r['longitude']:.3f}</td>"
            f"<td class='num'>{_pct(r['region_probability'])}</td>"
            f"<td class='num'>{r['point_probability']:.2e}</td><td>{_text(r['label'])}</td></tr>"
            for r in m.top
        )
        parts.append(
            f"<h3>{_text(m.label)}: top {len(m.top)} places</h3><table><tr><th>#</th>"
            "<th>latitude</th><th>longitude</th><th>P(within 500 km)</th><th>P(point)</th>"
            f"<th>nearest named place</th></tr>{rows}</table>"
        )
        parts.append(_region_table(m))
    return "".join(parts)


def _region_table(m: Any) -> str:
    """The modality's confidence regions (the 90 % one is outlined on its map)."""
    regions = m.details.get("regions") or []
    if not regions:
        return ""
    from geoforensics.core.forensics.regions_check import format_area

    rows = "".join(
        f"<tr><td class='num'>{100 * r['level']:g} %</td>"
        f"<td class='num'>{_text(format_area(r['area_km2']))}</td>"
        f"<td class='num'>{r['n_parts']}</td><td class='num'>{r['mass']:.3f}</td>"
        f"<td>{'calibrated' if r['calibrated'] else 'UNCALIBRATED'}: {_text(r['source'])}</td>"
        "</tr>"
        for r in regions
    )
    note = m.details.get("regions_note")
    extra = f"<p class='muted'>{_text(note)}</p>" if note else ""
    return (
        f"<h3>{_text(m.label)}: confidence regions</h3><table><tr><th>level</th><th>area</th>"
        f"<th>parts</th><th>mass</th><th>calibration</th></tr>{rows}</table>{extra}"
    )


def _discrepancy_table(report: CheckReport) -> str:
    if not report.discrepancies:
        return "<p class='muted'>Fewer than two modalities gave a place: nothing to compare.</p>"
    head = "".join(f"<th>mass ≤ {r:,.0f} km</th>" for r in RADII_KM)
    rows = []
    for d in report.discrepancies:
        masses = ""
        for radius in RADII_KM:
            if d.mass_within is None or d.baseline_within is None:
                masses += "<td class='num'>–</td>"
            else:
                masses += (
                    f"<td class='num'>{_pct(d.mass_within.get(radius))}<br><span "
                    f"class='muted'>uniform {_pct(d.baseline_within.get(radius))}"
                    "</span></td>"
                )
        measured = "–" if d.mass_of is None else _text(MODALITY_LABELS.get(d.mass_of, d.mass_of))
        rows.append(
            f"<tr><td>{_text(MODALITY_LABELS.get(d.first, d.first))} ↔ "
            f"{_text(MODALITY_LABELS.get(d.second, d.second))}</td>"
            f"<td class='num'>{_km(d.distance_km)}</td><td>{measured}</td>{masses}"
            f"<td class='s-{d.status}'>{_text(d.status)}</td><td>{_text(d.reason)}</td></tr>"
        )
    return (
        "<table><tr><th>pair</th><th>distance (top-1)</th><th>mass of</th>"
        + head
        + "<th>status</th><th>why</th></tr>"
        + "".join(rows)
        + "</table>"
        "<p class='muted'>“mass ≤ R km”: share of the measured modality's probability within "
        "R km of the other modality's top place; “uniform”: what a distribution spread evenly "
        "over the gallery would put there.</p>"
    )


def _timeline_table(report: CheckReport) -> str:
    if not report.timeline:
        return "<p class='muted'>No timeline (no audio windows and no keyframes).</p>"
    references = [
        n
        for n in ("audio_species", "audio", "frames", "text", "metadata_gps", "claimed")
        if any(n in s.distance_km for s in report.timeline)
    ]
    head = "".join(f"<th>km to {_text(MODALITY_LABELS.get(n, n))}</th>" for n in references)
    rows = []
    for s in report.timeline:
        span = f"{s.start_s:.1f}–{s.end_s:.1f} s" if s.kind != "frame" else f"{s.start_s:.1f} s"
        what = {
            "audio": f"audio AG-CLIP ({s.n_windows} windows)",
            "species": f"audio species ({s.n_windows} windows): "
            + (", ".join(s.species) or "none"),
        }.get(s.kind, "keyframe")
        if s.available and s.point is not None:
            where = (
                f"{_text(s.label)}<br><span class='muted'>{s.point[0]:.2f}, {s.point[1]:.2f}</span>"
            )
            score = _pct(s.probability)
        else:
            where, score = f"<span class='muted'>{_text(s.reason)}</span>", "–"
        cells = "".join(f"<td class='num'>{_km(s.distance_km.get(n))}</td>" for n in references)
        rows.append(
            f"<tr><td>{span}</td><td>{what}</td><td>{where}</td>"
            f"<td class='num'>{score}</td>{cells}</tr>"
        )
    return (
        "<table><tr><th>time</th><th>what</th><th>top place</th><th>P(within 500 km)</th>"
        + head
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def _frames_strip(report: CheckReport) -> str:
    frames = [s for s in report.timeline if s.kind == "frame" and s.image is not None]
    if not frames:
        return ""
    figures = []
    for s in frames:
        assert s.image is not None
        caption = f"{s.start_s:.1f} s"
        if s.available and s.label:
            caption += f" → {s.label}"
        figures.append(
            f'<figure><img src="{_png_data(_image_png(s.image))}" '
            f'alt="keyframe at {s.start_s:.1f} s"><figcaption>{_text(caption)}'
            "</figcaption></figure>"
        )
    return "<h3>Keyframes</h3><div class='frames'>" + "".join(figures) + "</div>"


def _species_section(report: CheckReport) -> str:
    species = report.species
    if species is None:
        return f"<p class='muted'>Not run: {_text(report.species_note)}</p>"
    week = species.get("week")
    parts = [
        f"<p>{_text(species.get('model'))}; detection threshold "
        f"{species.get('threshold')}; {species.get('n_windows')} windows of 3 s; week "
        f"{_text(week if week != -1 else 'year-round (no date)')}.</p>"
    ]
    heard = species.get("heard") or []
    if not heard:
        parts.append("<p class='muted'>BirdNET heard no species above the threshold.</p>")
        return "".join(parts)
    judged = species.get("judgements") or {}
    if judged:
        parts.append(
            "<ul class='reasons'>"
            + "".join(
                f"<li>at the {_text(MODALITY_LABELS.get(n, n))}: {_text(j.get('summary'))}</li>"
                for n, j in judged.items()
            )
            + "</ul>"
        )
    places = species.get("places") or {}
    head = "".join(f"<th>range p at {_text(MODALITY_LABELS.get(n, n))}</th>" for n in places)
    rows = []
    for i, h in enumerate(heard):
        cells = ""
        for name in places:
            found = places[name]["species"][i] if i < len(places[name]["species"]) else {}
            p = found.get("range_probability")
            note = found.get("note") or ""
            cells += (
                f"<td class='num'>{'–' if p is None else f'{p:.3f}'}<br>"
                f"<span class='muted'>{_text(note)}</span></td>"
            )
        rows.append(
            f"<tr><td><i>{_text(h['scientific'])}</i><br>{_text(h['common'])}</td>"
            f"<td class='num'>{h['max_conf']:.3f}</td><td>{_text(h['spans'])}</td>"
            f"{cells}</tr>"
        )
    parts.append(
        "<table><tr><th>species</th><th>max confidence</th><th>heard at (s)</th>"
        + head
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )
    return "".join(parts)


def _kv_table(values: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{_text(k)}</th><td class='mono'>"
        f"{_text(json.dumps(v, default=_json_default) if isinstance(v, dict | list) else v)}"
        "</td></tr>"
        for k, v in values.items()
    )
    return f"<table>{rows}</table>"


def report_html(report: CheckReport, images: dict[str, bytes]) -> str:
    """The self-contained HTML page of ``report``; ``images`` maps a map name (``audio``,
    ``frames``, ``text``, ``timeline``) to its PNG bytes."""
    verdict = report.verdict
    reasons = "".join(f"<li>{_text(r)}</li>" for r in verdict.reasons)
    notes = "".join(f"<div class='note'>{_text(n)}</div>" for n in report.notes)
    media = report.media or {}
    clip_sha = (report.inputs.get("clip") or {}).get("sha256", "")
    maps = []
    for name in (*MAPPED, "overview"):
        if name in images:
            title = "All modalities" if name == "overview" else MODALITY_LABELS.get(name, name)
            maps.append(
                f'<h3>{_text(title)}</h3><img src="{_png_data(images[name])}" '
                f'class="map" alt="map: {_text(name)}">'
            )
    timeline_img = ""
    if "timeline" in images:
        timeline_img = (
            f'<img src="{_png_data(images["timeline"])}" class="map" alt="timeline chart">'
        )
    thresholds = ", ".join(f"{k} = {v:g}" for k, v in verdict.thresholds.items())
    gps = media.get("gps")
    facts = {
        "file": report.clip.name,
        "SHA-256": clip_sha,
        "size": f"{media.get('size_bytes', 0):,} bytes",
        "container": media.get("container"),
        "duration": None if media.get("duration_s") is None else f"{media['duration_s']:.2f} s",
        "video": f"{media.get('video_codec')} {media.get('width')}x{media.get('height')} "
        f"@ {media.get('fps')} fps"
        if media.get("has_video")
        else "none",
        "audio": f"{media.get('audio_codec')} {media.get('audio_sample_rate')} Hz, "
        f"{media.get('audio_channels')} ch"
        if media.get("has_audio")
        else "none",
        "creation time": media.get("creation_time"),
        "GPS tag": "none" if gps is None else f"{gps[0]:.5f}, {gps[1]:.5f}",
        "tags": media.get("tags") or {},
        "date used": f"{report.date} ({report.date_source}), week {report.week}"
        if report.date
        else "none (year-round ranges)",
    }
    body = f"""
<h1>geoforensics check: {_text(report.clip.name)}</h1>
<p class="muted">Created {_text(report.created)} · gallery {_text(report.gallery_name)}
({len(report.gallery_coords):,} locations) · {report.elapsed_s:.1f} s</p>
{notes}
<p><span class="verdict v-{_text(verdict.label)}">{_text(verdict.label)}</span></p>
<ul class="reasons">{reasons}</ul>
<p class="muted">Rules: {_text(thresholds)}. A distribution agrees with a place when at least
consistent_min_mass of it lies within consistent_radius_km, or consistent_wide_min_mass within
mismatch_radius_km; it contradicts a place when at most
mismatch_max_mass lies within mismatch_radius_km while at least concentrated_min_mass lies
within that radius of its own top place; two points agree within point_consistent_km and
contradict beyond point_mismatch_km. The audio species modality contradicts a place only
when at least species_min_absent heard species have range probability below
species_absent_below there, they hold more than species_absent_majority of the heard
species' confidence, and the place stays at most species_max_robust_ratio as likely as the
best place after dropping the most damaging species (one stray BirdNET detection never
decides). Pairs with a modality that is not evidence (an AG-CLIP model trained on a
SYNTHETIC world applied to a real clip, the fused audio) are shown but not counted. Any
counted contradiction gives “mismatch”; all counted pairs agreeing (an audio modality among
them) gives “consistent”; anything else “inconclusive”.</p>
<h2>Modalities</h2>
{_modality_rows(report)}
{_top_tables(report)}
<h2>Maps</h2>
{"".join(maps) or "<p class='muted'>No modality gave a place.</p>"}
<h2>Discrepancies</h2>
{_discrepancy_table(report)}
<h2>Timeline</h2>
{timeline_img}
{_timeline_table(report)}
{_frames_strip(report)}
<h2>Species evidence</h2>
{_species_section(report)}
<h2>Input</h2>
{_kv_table(facts)}
<h2>Models</h2>
{_kv_table(report.models)}
<h2>Parameters</h2>
{_kv_table(report.parameters)}
<h2>Versions</h2>
{_kv_table(report.versions)}
<footer>Fingerprint {_text(report.fingerprint)} (SHA-256 of the clip, the options, the models
and the report format). Produced by geoforensics offline; the maps are drawn from the report's
own data (no basemap tiles).</footer>
"""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>geoforensics check: {_text(report.clip.name)}</title>"
        f"<style>{_CSS}</style></head><body><main>{body}</main></body></html>\n"
    )


# ------------------------------------------------------------------------------- writing


def _write_exports(report: CheckReport, out: Path, document: dict[str, Any]) -> dict[str, Path]:
    """``regions.geojson`` (the 90 % region of every located modality) and, when BirdNET ran,
    the species detections as ``species.csv`` and a Raven selection table."""
    from geoforensics.core.forensics.batch_tables import (
        SPECIES_COLUMNS,
        SPECIES_CSV,
        SPECIES_RAVEN,
        species_table,
        write_csv,
        write_raven,
    )
    from geoforensics.core.forensics.gis_export import (
        REGIONS_GEOJSON,
        clip_region_features,
        write_geojson,
    )
    from geoforensics.core.forensics.regions_check import SHOWN_LEVEL

    written = {
        "regions": write_geojson(out / REGIONS_GEOJSON, clip_region_features(report, SHOWN_LEVEL))
    }
    if report.species is not None:
        rows, durations = species_table([(report.clip.name, document)])
        written["species_csv"] = write_csv(out / SPECIES_CSV, rows, SPECIES_COLUMNS)
        written["species_raven"] = write_raven(out / SPECIES_RAVEN, rows, durations)
    return written


def write_report(report: CheckReport, out_dir: str | Path) -> dict[str, Path]:
    """Write the maps (``map_audio.png``, ``map_frames.png``, ``map_text.png`` for the
    available distributions, else ``map_overview.png``; ``timeline.png``), ``report.html`` and
    ``regions.geojson``, ``species.csv`` and ``species.selections.txt`` (when BirdNET ran) and
    ``report.json`` (last) into ``out_dir``; returns ``{"json", "html", "map_<name>",
    "timeline", "regions", "species_csv", "species_raven"}`` paths. Every file is written
    atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    images: dict[str, bytes] = {}
    maps: dict[str, str] = {}
    for name in MAPPED:
        modality = report.modalities.get(name)
        if modality is None or not modality.available or modality.probs is None:
            continue
        path = write_modality_map(report, name, out / f"map_{name}.png")
        written[f"map_{name}"], maps[name] = path, path.name
        images[name] = path.read_bytes()
    if not images:
        points = [n for n, m in report.modalities.items() if m.available and m.point is not None]
        if points:
            path = write_modality_map(report, points[0], out / "map_overview.png")
            written["map_overview"], maps["overview"] = path, path.name
            images["overview"] = path.read_bytes()
    chart = write_timeline_chart(report, out / TIMELINE_PNG)
    if chart is not None:
        written["timeline"], maps["timeline"] = chart, chart.name
        images["timeline"] = chart.read_bytes()
    report.maps = maps
    plain = report.as_dict()
    written.update(_write_exports(report, out, plain))
    page = out / REPORT_HTML
    with atomic_write(page) as fh:
        fh.write(report_html(report, images))
    written["html"] = page
    document = out / REPORT_JSON
    with atomic_write(document) as fh:
        fh.write(report_json_text(report, plain))
    written["json"] = document
    return written


__all__ = ["REPORT_HTML", "REPORT_JSON", "report_html", "report_json_text", "write_report"]
