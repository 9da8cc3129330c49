"""`geoforensics audio` subcommand."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `audio` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser("audio", help="(not yet available)")
    parser.set_defaults(handler=None)
