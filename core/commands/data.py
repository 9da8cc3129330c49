"""`geoforensics data` subcommand."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `data` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser("data", help="(not yet available)")
    parser.set_defaults(handler=None)
