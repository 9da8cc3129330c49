"""The ffmpeg binary and what every caller of it shares.

Every media reader here (audio decoding, container probing, keyframes, the test-video writer)
runs the ffmpeg binary shipped by ``imageio-ffmpeg``, never a system ffmpeg. This module finds
the binary, checks an input path before ffmpeg sees it, drains ffmpeg's stderr without
blocking, and turns that log into one short phrase naming the problem.
"""

from __future__ import annotations

import os
import re
import threading
from collections import deque
from pathlib import Path
from typing import IO

from geoforensics.core.errors import MediaDecodeError


def checked_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`Path` when it is a non-empty regular file; a one-line
    :class:`MediaDecodeError` naming it otherwise."""
    checked = Path(path)
    if not checked.exists():
        raise MediaDecodeError(f"{checked}: file not found")
    if not checked.is_file():
        raise MediaDecodeError(f"{checked}: not a regular file")
    if checked.stat().st_size == 0:
        raise MediaDecodeError(f"{checked}: file is empty (0 bytes)")
    return checked


def ffmpeg_exe(path: Path) -> str:
    """The ffmpeg binary shipped by ``imageio-ffmpeg``; ``path`` (the file that needs it)
    names the error when it is missing."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise MediaDecodeError(
            f"{path}: this format needs ffmpeg, and the imageio-ffmpeg binary is not available"
        ) from exc


class StderrLog:
    """Drains a child's stderr on a thread (so the pipe never fills) and keeps a bounded log."""

    _HEAD = 400
    _TAIL = 40

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._head: list[str] = []
        self._tail: deque[str] = deque(maxlen=self._TAIL)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        for raw in iter(self._stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if len(self._head) < self._HEAD:
                self._head.append(line)
            else:
                self._tail.append(line)

    def lines(self) -> list[str]:
        """Every kept line; call after the process has exited."""
        self._thread.join(timeout=10)
        return self._head + list(self._tail)


#: The ``[component @ 0x...]`` prefixes of an ffmpeg log line.
FFMPEG_LOG_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")
_ERROR_WORDS = ("error", "invalid", "not found", "corrupt", "partial", "matches no streams")


def ffmpeg_problem(lines: list[str], code: int | None, nothing_decoded: bool) -> str:
    """Turn ffmpeg's stderr into one short phrase naming the problem."""
    cleaned = [FFMPEG_LOG_PREFIX.sub("", line).strip() for line in lines]
    cleaned = [line for line in cleaned if line]
    text = "\n".join(cleaned).lower()
    errors = [line for line in cleaned if any(word in line.lower() for word in _ERROR_WORDS)]
    detail = errors[0] if errors else (cleaned[-1] if cleaned else f"exit status {code}")
    if "matches no streams" in text or "does not contain any stream" in text:
        return "no audio track (the file has no audio stream to decode)"
    if "moov atom not found" in text:
        return "truncated or incomplete MP4/MOV file (moov atom not found)"
    if nothing_decoded and code == 0:
        return "contains no audio samples (zero-length audio)"
    if nothing_decoded and "invalid data found" in text:
        return f"not a decodable audio or video file (ffmpeg: {detail})"
    if any(word in text for word in ("partial file", "end of file", "corrupt", "truncat")):
        return f"truncated or corrupt media data (ffmpeg: {detail})"
    if nothing_decoded:
        return f"could not be decoded (ffmpeg: {detail})"
    return f"decoding failed part-way: corrupt or truncated data (ffmpeg: {detail})"
