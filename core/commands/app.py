"""`geoforensics app`: the Streamlit app (Check, Locate, Retrieve, Benchmark pages).

geoforensics app [--port N] [--address HOST] [--headless] [--model DIR] [--gallery SPEC]
                 [--world DIR] [--bench DIR]

Runs ``streamlit run`` on ``geoforensics/forensics_app/app.py`` with usage statistics off
(``--browser.gatherUsageStats false``: the app makes no network request of its own; maps
are drawn without basemap tiles), the upload limit of the app
(:data:`~geoforensics.forensics_app.common.MAX_UPLOAD_MB`) and, with ``--headless``, no
browser opened. ``--model``/``--gallery``/``--world``/``--bench`` set the pages' defaults
through ``GEOFORENSICS_APP_*`` environment variables.

The server listens on 127.0.0.1 only (Streamlit's own default is every interface): the app
has no login and analysts upload clips that may be confidential. ``--address 0.0.0.0`` (or
any address that is not loopback) opens it to the network, and the command says so in one
line on stderr, with how to protect it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from geoforensics.core.errors import InputError

DEFAULT_PORT = 8501
#: Where the server listens unless ``--address`` says otherwise: this machine only.
DEFAULT_ADDRESS = "127.0.0.1"


def is_loopback(address: str) -> bool:
    """True when ``address`` (an IP or ``localhost``) is reachable from this machine only."""
    import ipaddress

    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to a public interface
        return False


def network_warning(address: str, port: int) -> str | None:
    """The one line printed when the app is opened to the network (None on loopback)."""
    if is_loopback(address):
        return None
    return (
        f"geoforensics app: warning: listening on {address}:{port}, reachable from the network "
        "with no login: anyone who can connect can run checks and see uploaded clips; put it "
        "behind an authenticating reverse proxy with TLS or reach it through an SSH tunnel "
        f"(default --address {DEFAULT_ADDRESS})"
    )


def app_script() -> Path:
    """The app's entry script (``streamlit run`` target)."""
    from importlib import resources

    return Path(str(resources.files("geoforensics.forensics_app").joinpath("app.py")))


def streamlit_command(
    port: int = DEFAULT_PORT, headless: bool = False, address: str = DEFAULT_ADDRESS
) -> list[str]:
    """The ``python -m streamlit run`` argument list :func:`run_app` starts."""
    from geoforensics.forensics_app.settings import MAX_UPLOAD_MB

    if not 1 <= port <= 65535:
        raise InputError(f"--port {port}: must be between 1 and 65535")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_script()),
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--server.fileWatcherType",
        "none",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--server.address",
        address,
    ]
    return command


def _environment(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    for option, name in (
        ("model", "MODEL"),
        ("gallery", "GALLERY"),
        ("world", "WORLD"),
        ("bench", "BENCH"),
    ):
        value = getattr(args, option, None)
        if value:
            if option != "gallery":
                value = str(Path(value).expanduser().resolve())
            env[f"GEOFORENSICS_APP_{name}"] = value
    return env


def run_streamlit(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` (the Streamlit server) in the foreground and return its exit status.

    SIGTERM and SIGHUP sent to this process are passed on to the server, so stopping
    ``geoforensics app`` (a service manager, a test fixture, a closed terminal) never leaves
    an orphaned server holding the port; Ctrl+C reaches both through the terminal.
    """
    process = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: Any) -> None:
        process.send_signal(signum)

    forwarded = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in forwarded}
    try:
        return process.wait()
    except KeyboardInterrupt:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if process.poll() is None:
            process.kill()
            process.wait()


def run_app(args: argparse.Namespace) -> int:
    """Handler of ``geoforensics app``: runs Streamlit in the foreground until stopped."""
    if args.model is not None:
        from geoforensics.core.models.resolve import resolve_audio_model

        args.model = str(resolve_audio_model(args.model))  # a released .pt: imported once
    if args.model is not None and not Path(args.model).is_dir():
        raise InputError(f"--model {args.model}: no such model folder")
    address = args.address.strip() if args.address else DEFAULT_ADDRESS
    if not address:
        raise InputError("--address: empty (give an IP address or host name)")
    command = streamlit_command(args.port, args.headless, address)
    host = "localhost" if is_loopback(address) else address
    print(f"geoforensics app: http://{host}:{args.port} (Ctrl+C stops it)", flush=True)
    warning = network_warning(address, args.port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    return run_streamlit(command, _environment(args))


def register(subparsers: Any) -> None:
    """Add the `app` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "app",
        help="open the Streamlit app (check clips, locate, retrieve, benchmark results)",
        description=(
            "Run the geoforensics Streamlit app: Check (a clip's audio vs frames, tags and "
            "claimed place, with maps and reports), Locate, Retrieve and Benchmark pages. "
            "Everything runs offline; no usage statistics are sent."
        ),
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"port to serve on (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--address",
        metavar="HOST",
        help=(
            f"address to listen on (default {DEFAULT_ADDRESS}: this machine only; 0.0.0.0 "
            "opens the app, which has no login, to the network)"
        ),
    )
    parser.add_argument(
        "--headless", action="store_true", help="do not open a browser (servers, tests)"
    )
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="AG-CLIP model folder (or released checkpoint FILE.pt) the pages use (default: "
        "the demo model)",
    )
    parser.add_argument(
        "--gallery", metavar="SPEC", help="gallery of candidate locations (default land-1deg)"
    )
    parser.add_argument(
        "--world", metavar="DIR", help="iNatSounds-format folder of the species soundscape map"
    )
    parser.add_argument(
        "--bench", metavar="DIR", help="bench output folder the Benchmark page opens"
    )
    parser.set_defaults(handler=run_app)
