"""`geoforensics gallery` subcommand."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `gallery` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser("gallery", help="(not yet available)")
    parser.set_defaults(handler=None)
