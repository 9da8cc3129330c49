"""CLI subcommand modules; each exposes ``register(subparsers)``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date

from geoforensics.core.errors import InputError


def parse_date_option(text: str | None) -> date | None:
    """``--date YYYY-MM-DD`` as a date (None when the option is absent); one-line error else."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--date {text!r}: use YYYY-MM-DD, e.g. 2024-06-01") from None


def help_handler(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Handler for a command group called without an action: print its help, exit status 2."""

    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show_help
