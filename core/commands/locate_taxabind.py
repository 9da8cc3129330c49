"""``geoforensics locate AUDIO --method taxabind``: TaxaBind off the shelf (the paper's Table 1
"Retrieve" baseline) on one recording.

The whole recording is embedded by TaxaBind's CLAP audio tower (48 kHz mono, 10 s inputs,
repeat padding, CLAP fusion) and compared (cosine) with the gallery embedded by TaxaBind's
location encoder; places are ranked by cosine, the best first, at least ``--radius-km`` apart.
The released towers carry no learned temperature, so the probabilities shown (and the
``--map``) are ``softmax(cosine / 0.07)``, CLIP's usual initial temperature: a display scale,
not calibrated. Weights: ``--model FOLDER`` (``ecosound/`` + ``ecogeo/``),
``$GEOFORENSICS_TAXABIND`` or the Hugging Face cache (``geoforensics weights download
taxabind``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import InputError

#: Display temperature of the probabilities (CLIP's initial 1 / 0.07).
DISPLAY_TEMPERATURE = 1.0 / 0.07


def run_taxabind_locate(args: argparse.Namespace) -> int:
    """Handler of ``locate AUDIO --method taxabind [--model FOLDER]``."""
    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.geo.gazetteer import place_rows
    from geoforensics.core.geo.ranking import distinct_top_k, region_probability, softmax
    from geoforensics.core.geo.worldmap import write_score_map
    from geoforensics.core.models.taxabind import load_taxabind

    if args.species is not None:
        raise InputError("locate: --method taxabind locates an AUDIO file; drop --species")
    if args.audio is None:
        raise InputError("locate: --method taxabind needs an AUDIO file")
    if args.fusion_weight is not None:
        raise InputError("locate: --fusion-weight is used by --method fused only")
    if args.date is not None:
        raise InputError("locate: --method taxabind does not use --date")
    path = Path(args.audio)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    model = load_taxabind(args.model)
    gallery = resolve_gallery(args.gallery)
    index = model.retrieval_index(gallery.coords)
    embedding = model.embed_file(path)
    cosine = index.scores(embedding[None])[0].astype(np.float64)
    probs = softmax(cosine * DISPLAY_TEMPERATURE)
    coords = gallery.coords
    top = distinct_top_k(cosine, coords, min(args.top_k, len(gallery)), args.radius_km)
    # ranked by cosine; the rows also give each place's display mass within --radius-km
    region = region_probability(probs, coords, args.radius_km)
    rows = place_rows(coords, top, region, probs, float(args.radius_km), {"cosine": cosine})
    map_path = None
    if args.map is not None:
        title = f"TaxaBind (off the shelf): {path.name}"
        map_path = str(write_score_map(coords, probs, coords[top], args.map, title[:90]))
    payload: dict[str, Any] = {
        "method": "taxabind",
        "source": str(path),
        "weights": {
            "audio": str(model.files.audio),
            "location": str(model.files.location),
            "found_in": model.files.source,
        },
        "fusion": model.audio.fusion,
        "display_temperature": DISPLAY_TEMPERATURE,
        "gallery": {"name": gallery.name, "size": len(gallery)},
        "radius_km": float(args.radius_km),
        "places": rows,
        "map": map_path,
    }
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    print(
        f"TaxaBind on {path}: CLAP audio tower ({model.files.audio}) -> TaxaBind location "
        f"space ({model.files.location}); ranked by cosine"
    )
    print(f"gallery {gallery.name} ({len(gallery)} locations)")
    print(
        f"{'rank':>4}  {'latitude':>9}  {'longitude':>10}  {'cosine':>7}  {'P(display)':>10}  place"
    )
    for row in rows:
        print(
            f"{row['rank']:>4}  {row['latitude']:>9.3f}  {row['longitude']:>10.3f}  "
            f"{row['cosine']:>7.3f}  {row['point_probability']:>10.2e}  {row['label']}"
        )
    if map_path:
        print(f"map -> {map_path}")
    return 0
