"""`geoforensics weights`: which model weights are here, and fetching CLIP ViT-L/14.

geoforensics weights status [--clip FOLDER] [--json]
geoforensics weights download clip [--to FOLDER]

Everything but CLIP ships in wheels (GeoCLIP in ``geoclip``, BirdNET in the optional
``birdnet`` extra). CLIP ViT-L/14 is needed only for image and text geolocation; ``download``
is the one command of the product that uses the network.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import help_handler


def _status(args: argparse.Namespace) -> int:
    from ..vision.weights import all_weights_status

    rows = all_weights_status(args.clip)
    if args.json:
        print(json.dumps({"weights": [row.as_dict() for row in rows]}, indent=2))
        return 0
    name_w = max(len("weights"), *(len(row.name) for row in rows))
    print(f"{'weights':<{name_w}}  {'status':<7}  location / how to get")
    for row in rows:
        state = "found" if row.found else "MISSING"
        print(f"{row.name:<{name_w}}  {state:<7}  {row.location or '-'}")
        print(f"{'':<{name_w}}  {'':<7}  {row.detail}")
    missing = [row.name for row in rows if not row.found]
    if missing:
        print(
            f"{len(missing)} missing ({', '.join(missing)}): the rest of geoforensics works "
            "without them"
        )
    else:
        print("all weights found")
    return 0


def _download(args: argparse.Namespace) -> int:
    from ..vision.weights import CLIP_ENV, CLIP_HUB_ID, download_clip

    where = args.to if args.to is not None else "the Hugging Face cache"
    print(f"downloading {CLIP_HUB_ID} (configs, tokenizer, safetensors; about 1.7 GB) to {where}")
    folder = download_clip(args.to)
    print(f"CLIP ViT-L/14 -> {folder}")
    if args.to is not None:
        print(f"use it with --clip {folder} or export {CLIP_ENV}={folder}")
    else:
        print("found automatically from now on (geoforensics weights status)")
    return 0


def register(subparsers: Any) -> None:
    """Add the `weights` subcommand with its `status` and `download` actions."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "weights",
        help="which model weights are available; download CLIP ViT-L/14",
        description=(
            "List the model weights geoforensics uses (CLIP ViT-L/14, GeoCLIP, BirdNET), where "
            "they are and how to get the missing ones; download CLIP for image and text "
            "geolocation."
        ),
    )
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION")
    parser.set_defaults(handler=help_handler(parser))

    status = actions.add_parser(
        "status", help="found/missing, location and how to get each set of weights"
    )
    status.add_argument(
        "--clip", metavar="FOLDER",
        help="check this CLIP folder instead of $GEOFORENSICS_CLIP and the Hugging Face cache",
    )  # fmt: skip
    status.add_argument("--json", action="store_true", help="print machine-readable JSON")
    status.set_defaults(handler=_status)

    download = actions.add_parser(
        "download",
        help="download CLIP ViT-L/14 from the Hugging Face hub (needs internet)",
        description=(
            "Download openai/clip-vit-large-patch14 (config, tokenizer, preprocessor and "
            "safetensors weights; never pickled .bin files) into the Hugging Face cache, or "
            "into --to FOLDER."
        ),
    )
    download.add_argument("what", choices=("clip",), help="what to download: clip")
    download.add_argument(
        "--to", metavar="FOLDER",
        help="save into this folder (use it later with --clip or $GEOFORENSICS_CLIP) instead "
        "of the Hugging Face cache",
    )  # fmt: skip
    download.set_defaults(handler=_download)
