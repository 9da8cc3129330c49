"""The real app in a real browser: ``geoforensics app`` served on a free local port, headless
Debian chromium driven over the DevTools protocol (``websockets``, a Streamlit dependency)
runs the demo check (``?demo=1``), and the screenshot's map must not be blank.

Slow (a cold start embeds the land gallery and loads every model): run with
``pytest -m slow tests/forensics_app/test_app_browser.py``. Needs ``/usr/bin/chromium``
(``apt-get install -y chromium``); skipped with that reason when it is absent. Screenshots go
to the test's tmp dir and are copied to ``/tmp/app-shots/``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/app-shots")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
    "--mute-audio",
)
WINDOW = (1400, 3800)
#: The deck.gl map's canvas (st.dataframe and charts draw on canvases too).
DECK_CANVAS = '[data-testid="stDeckGlJsonChart"] canvas'


def free_port() -> int:
    """A TCP port nobody listens on (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout_s: float, process: subprocess.Popen[Any] | None = None) -> str:
    """The body of ``url`` once it answers 200 (polling every half second)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError as exc:
            last = exc
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout_s:.0f} s ({last})")


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page target's websocket."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    def call(self, method: str, timeout_s: float = 60.0, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are dropped)."""
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


@contextlib.contextmanager
def devtools(ws_url: str) -> Iterator[DevTools]:
    """A :class:`DevTools` session on a page target's websocket, closed afterwards."""
    from websockets.sync.client import connect

    with connect(ws_url, max_size=256 * 1024 * 1024, open_timeout=30) as ws:
        yield DevTools(ws)


def start_chromium(profile: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Headless chromium with a fresh profile and DevTools on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_http(f"http://127.0.0.1:{port}/json/version", 60, process)
    return process, port


def map_region_stats(png: bytes, box: dict[str, float], scale: float) -> dict[str, float]:
    """Pixel statistics of the screenshot inside the deck canvas ``box`` (CSS pixels)."""
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    x0, y0 = int(box["x"] * scale), int(box["y"] * scale)
    x1, y1 = int((box["x"] + box["width"]) * scale), int((box["y"] + box["height"]) * scale)
    region = image[y0:y1, x0:x1]
    colours = len(np.unique(region.reshape(-1, 3).astype(np.uint8), axis=0))
    return {
        "std": float(region.std()),
        "colours": float(colours),
        "height": float(region.shape[0]),
        "width": float(region.shape[1]),
    }


@pytest.fixture(scope="module")
def bench_out(train_micro_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small bench run (naive baseline and species oracle) for the Benchmark page."""
    from geoforensics.eval.bench import run_bench

    out = tmp_path_factory.mktemp("browser-bench")
    rows = ("naive", "species-oracle-full")
    run_bench(train_micro_world, preset="tiny", rows=rows, out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def app_server(
    tmp_path_factory: pytest.TempPathFactory, train_micro_world: Path, bench_out: Path
) -> Iterator[str]:
    """``geoforensics app --headless`` on a free loopback port (the soundscape map reads the
    session's small world, the Benchmark page a small bench run); yields its URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    exe = Path(sys.executable).with_name("geoforensics")
    command = [str(exe)] if exe.is_file() else [sys.executable, "-m", "geoforensics.core.cli"]
    options = ["--world", str(train_micro_world), "--bench", str(bench_out)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *command,
                "app",
                "--headless",
                "--port",
                str(port),
                "--address",
                "127.0.0.1",
                *options,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        try:
            url = f"http://127.0.0.1:{port}"
            assert wait_for_http(f"{url}/_stcore/health", 120, process).strip() == "ok"
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # pragma: no cover
                process.kill()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    """One headless chromium page (fresh profile) driven over DevTools."""
    browser, port = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        targets = json.loads(wait_for_http(f"http://127.0.0.1:{port}/json/list", 30))
        target = next(t for t in targets if t.get("type") == "page")
        with devtools(target["webSocketDebuggerUrl"]) as tools:
            tools.call("Page.enable")
            yield tools
    finally:
        browser.terminate()
        browser.wait(timeout=30)


def page_text(tools: DevTools) -> str:
    return str(tools.evaluate("document.body ? document.body.innerText : ''") or "")


def wait_until(tools: DevTools, needles: tuple[str, ...], timeout_s: float = 600) -> str:
    """The page's text once it holds every needle and the deck map is on the page."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = page_text(tools)
        ready = tools.evaluate(f"document.querySelector({DECK_CANVAS!r}) !== null")
        if all(n in text for n in needles) and ready:
            return text
        if "Traceback" in text:
            break
        time.sleep(2)
    raise AssertionError(f"waited for {needles}; the page says: {text[-3000:]}")


def click(tools: DevTools, label: str) -> None:
    """Click the button whose text is ``label``."""
    found = tools.evaluate(
        "(() => { const b = Array.from(document.querySelectorAll('button'))"
        f".find(b => b.innerText.trim() === {label!r}); if (b) b.click(); return !!b; }})()"
    )
    assert found, f"no button {label!r}"


def screenshot(tools: DevTools, name: str, tmp_path: Path) -> dict[str, float]:
    """Save a screenshot (tmp dir and /tmp/app-shots/) once deck.gl has drawn; the map
    region's pixel statistics."""
    time.sleep(8)  # let deck.gl draw the hexagons and outlines
    box = tools.evaluate(
        f"(() => {{ const r = document.querySelector({DECK_CANVAS!r}).getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
    )
    scale = float(tools.evaluate("window.devicePixelRatio") or 1.0)
    shot = tools.call("Page.captureScreenshot", format="png", timeout_s=120)
    png = base64.b64decode(shot["data"])
    path = tmp_path / name
    path.write_bytes(png)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / name)
    return map_region_stats(png, box, scale)


def assert_map_drawn(stats: dict[str, float]) -> None:
    """A blank or one-colour canvas has no spread; the map has ocean, land, borders and
    hexagons."""
    assert stats["width"] > 300 and stats["height"] > 300, stats
    assert stats["std"] > 15.0 and stats["colours"] > 50, stats


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"
)


@pytest.mark.slow
@pytest.mark.timeout(900)
@needs_chromium
def test_demo_check_in_headless_chromium(app_server: str, page: DevTools, tmp_path: Path) -> None:
    page.call("Page.navigate", url=f"{app_server}/?demo=1")
    text = wait_until(page, ("Verdict:", "Download report.html"))
    assert "Verdict: MISMATCH" in text
    stats = screenshot(page, "check-demo.png", tmp_path)
    text = page_text(page)
    for needle in (
        "Where each modality points",
        "Discrepancies",
        "Timeline",
        "Species evidence",
        "Download report.json",
        "Download report.html",
    ):
        assert needle in text, needle
    assert_map_drawn(stats)


@pytest.mark.slow
@pytest.mark.timeout(600)
@needs_chromium
def test_locate_retrieve_and_benchmark_pages_in_chromium(
    app_server: str, page: DevTools, tmp_path: Path
) -> None:
    page.call("Page.navigate", url=f"{app_server}/locate")
    wait_until_text(page, "Locate the audio")
    click(page, "Locate the audio")
    wait_until(page, ("AG-CLIP: demo_soundscape.ogg", "ranked by the probability within"), 240)
    assert_map_drawn(screenshot(page, "locate-audio.png", tmp_path))

    page.call("Page.navigate", url=f"{app_server}/retrieve")
    wait_until_text(page, "Draw the soundscape map")
    click(page, "Draw the soundscape map")
    text = wait_until(page, ("mean embedding of",), 240)
    assert "highest affinity" in text
    assert_map_drawn(screenshot(page, "retrieve-soundscape.png", tmp_path))

    page.call("Page.navigate", url=f"{app_server}/benchmark")
    text = wait_until_text(page, "Paper tables")
    assert "Naive (random train location)" in text and "SYNTHETIC" in text
    time.sleep(3)
    shot = page.call("Page.captureScreenshot", format="png", timeout_s=120)
    (tmp_path / "benchmark.png").write_bytes(base64.b64decode(shot["data"]))
    shutil.copy(tmp_path / "benchmark.png", SHOTS / "benchmark.png")
    images = page.evaluate(
        "Array.from(document.querySelectorAll('img')).filter(i => i.naturalWidth > 300).length"
    )
    assert images >= 2  # the CDF and the error map


def wait_until_text(tools: DevTools, needle: str, timeout_s: float = 300) -> str:
    """The page's text once it holds ``needle``."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = page_text(tools)
        if needle in text:
            return text
        time.sleep(1)
    raise AssertionError(f"waited for {needle!r}; the page says: {text[-3000:]}")
