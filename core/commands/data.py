"""`geoforensics data`: make and inspect datasets (``synth``, ``info``)."""

from __future__ import annotations

import argparse
from typing import Any

from geoforensics.core.commands import help_handler
from geoforensics.core.commands.data_info import register_info
from geoforensics.core.commands.data_synth import register_synth


def register(subparsers: Any) -> None:
    """Add ``data`` with its ``synth`` and ``info`` subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "data", help="make the synthetic world, inspect iNatSounds/XCDC-format datasets"
    )
    data_subparsers = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    register_synth(data_subparsers)
    register_info(data_subparsers)
    parser.set_defaults(handler=help_handler(parser))
