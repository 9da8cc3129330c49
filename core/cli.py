"""The ``geoforensics`` command: one entry point, one subcommand per job.

Each subcommand lives in a module with a ``register(subparsers)`` function; the modules import
their heavy dependencies (torch, faiss, ...) inside the handlers so that ``--help`` stays fast.
Expected failures (:class:`GeoforensicsError`) print one line to stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from geoforensics.core.errors import GeoforensicsError

#: Modules that add subcommands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "geoforensics.core.commands.demo",
    "geoforensics.core.commands.data",
    "geoforensics.core.commands.gallery",
    "geoforensics.core.commands.audio",
    "geoforensics.core.commands.train",
    "geoforensics.core.commands.pooling",
    "geoforensics.core.commands.locate",
    "geoforensics.core.commands.calibrate",
    "geoforensics.core.commands.check",
    "geoforensics.core.commands.species",
    "geoforensics.core.commands.bench",
    "geoforensics.core.commands.app",
    "geoforensics.core.commands.weights",
    "geoforensics.core.commands.perf",
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("geoforensics")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="geoforensics",
        description=(
            "Where is this sound from, and does it belong with the picture? "
            "Audio and multimodal geolocation and location forensics."
        ),
    )
    parser.add_argument("--version", action="version", version=f"geoforensics {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except GeoforensicsError as exc:
        print(f"geoforensics: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("geoforensics: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
