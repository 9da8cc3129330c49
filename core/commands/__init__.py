"""CLI subcommand modules; each exposes ``register(subparsers)``."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def help_handler(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Handler for a command group called without an action: print its help, exit status 2."""

    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show_help
