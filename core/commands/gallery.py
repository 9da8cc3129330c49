"""`geoforensics gallery`: build, embed and inspect galleries of candidate locations.

geoforensics gallery build SPEC --out FILE.npy [--embed]
geoforensics gallery info FILE_OR_SPEC
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from geoforensics.core.commands import help_handler

_SPEC_HELP = (
    "grid-1deg, grid-0.5deg, land-1deg, land-0.5deg, geoclip-100k or file:PATH (CSV with "
    "lat,lon columns or an (N, 2) .npy); any grid/land step dividing 180° works, e.g. land-2deg"
)


def _build(args: argparse.Namespace) -> int:
    from geoforensics.core.geo.gallery import build_gallery

    started = time.perf_counter()
    gallery = build_gallery(args.spec)
    out = gallery.save(args.out)
    print(
        f"{gallery.name}: {len(gallery)} locations -> {out} ({time.perf_counter() - started:.1f} s)"
    )
    if args.embed:
        from geoforensics.core.geoclip.embeddings import (
            cached_gallery_embeddings,
            embeddings_cache_path,
        )

        started = time.perf_counter()
        embeddings = cached_gallery_embeddings(
            gallery, batch_size=args.batch_size, progress=not args.no_progress
        )
        elapsed = time.perf_counter() - started
        print(
            f"embeddings {embeddings.shape[0]}x{embeddings.shape[1]} -> "
            f"{embeddings_cache_path(gallery)} ({elapsed:.1f} s)"
        )
    return 0


def _info(args: argparse.Namespace) -> int:
    from geoforensics.core.geo.gallery import resolve_gallery

    gallery = resolve_gallery(args.file_or_spec)
    lat_min, lat_max, lon_min, lon_max = gallery.extent()
    print(f"name:      {gallery.name}")
    print(f"count:     {len(gallery)}")
    print(f"latitude:  {lat_min:.4f} .. {lat_max:.4f}")
    print(f"longitude: {lon_min:.4f} .. {lon_max:.4f}")
    for key, value in gallery.metadata.items():
        print(f"{key + ':':<10} {value}")
    return 0


def register(subparsers: Any) -> None:
    """Add the `gallery` subcommand with its `build` and `info` actions."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "gallery",
        help="build, embed and inspect galleries of candidate locations",
        description="Build, embed and inspect galleries of candidate locations.",
    )
    actions = parser.add_subparsers(dest="gallery_action", metavar="ACTION")
    parser.set_defaults(handler=help_handler(parser))

    build = actions.add_parser(
        "build", help="build a gallery and save it as .npy (optionally embed it with GeoCLIP)"
    )
    build.add_argument("spec", metavar="SPEC", help=_SPEC_HELP)
    build.add_argument("--out", required=True, metavar="FILE.npy", help="output .npy file")
    build.add_argument(
        "--embed",
        action="store_true",
        help="also compute (or reuse) the cached GeoCLIP embeddings and print the cache path",
    )
    build.add_argument("--batch-size", type=int, default=4096, help="locations per forward pass")
    build.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    build.set_defaults(handler=_build)

    info = actions.add_parser("info", help="count and lat/lon extent of a gallery file or spec")
    info.add_argument(
        "file_or_spec", metavar="FILE_OR_SPEC", help=f"a .npy/.csv file or {_SPEC_HELP}"
    )
    info.set_defaults(handler=_info)
