"""Representative frames of a video: the first frame, scene changes, and an interval fallback.

One ffmpeg run decodes the first real video stream (``-map 0:V:0``: cover art is skipped) and
passes only candidate frames on::

    select='isnan(prev_selected_t) + gt(scene,T) + gte(t-prev_selected_t,E)'

the first frame, every frame whose scene score (ffmpeg's mean absolute difference to the
previous frame, 0..1) exceeds ``scene_threshold``, and a frame whenever ``every_s`` seconds
passed since the last candidate. A ``metadata=mode=print`` filter logs each candidate's
timestamp and scene score on stderr (read by a thread) before a ``scale`` filter shrinks it
(long side <= ``max_side``, square pixels) and it is written to stdout as a PPM picture.

Memory stays bounded: candidates are kept one per time bin (at most ``4 * max_frames``
pictures; bins widen when there are more), preferring the first frame, then the strongest scene
change, then the earliest interval frame. The final pick takes the best candidate in each of
``max_frames`` equal parts of the clip and fills any empty parts' slots by the same preference.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from geoforensics.core.errors import InputError, MediaDecodeError
from geoforensics.core.media.ffmpeg import checked_path, ffmpeg_exe
from geoforensics.core.media.probe import probe_streams

_RANK = {"first": 0, "scene": 1, "interval": 2}
_FRAME_LINE = re.compile(r"frame:(\d+)\s+pts:(\S+)\s+pts_time:(\S+)")
_SCORE_LINE = re.compile(r"lavfi\.scene_score=(\S+)")
_PREFIX = re.compile(r"^(?:\[[^\]\n]*\] )+")
# Seconds to wait for ffmpeg's log line about a frame it has already written.
_LOG_WAIT_S = 60.0


@dataclass(frozen=True)
class Keyframe:
    """One picked frame: its time from the start of the clip, the RGB picture, why it was picked."""

    time_s: float
    image: np.ndarray  # (H, W, 3) uint8 RGB
    reason: str  # "first", "scene" or "interval"
    scene_score: float = 0.0


def extract_keyframes(
    path: str | os.PathLike[str],
    every_s: float = 5.0,
    max_frames: int = 12,
    scene_threshold: float | None = 0.3,
    max_side: int = 640,
) -> list[Keyframe]:
    """Up to ``max_frames`` frames spread over the video, in time order (see the module doc).

    ``scene_threshold=None`` turns scene detection off (first frame + one every ``every_s``).
    Raises :class:`MediaDecodeError` for unusable files and for input without a video stream,
    :class:`InputError` for bad arguments.
    """
    checked = checked_path(path)
    if not (math.isfinite(every_s) and every_s > 0):
        raise InputError(f"every_s must be a positive number of seconds, got {every_s!r}")
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise InputError(f"max_frames must be an integer >= 1, got {max_frames!r}")
    if scene_threshold is not None and not (0.0 < scene_threshold < 1.0):
        raise InputError(f"scene_threshold must be in (0, 1) or None, got {scene_threshold!r}")
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 8:
        raise InputError(f"max_side must be an integer >= 8, got {max_side!r}")

    parsed = probe_streams(checked)
    if parsed.video is None:
        raise MediaDecodeError(f"{checked}: has no video stream (keyframes need pictures)")
    duration = parsed.duration_s
    pool = _BinnedPool(max_frames, duration, every_s)
    for keyframe in _iter_candidates(checked, every_s, scene_threshold, max_side):
        pool.offer(keyframe)
    picked = _spread(pool.candidates(), max_frames, duration)
    if not picked:
        raise MediaDecodeError(f"{checked}: no video frame could be decoded")
    return picked


# --------------------------------------------------------------------------------------------
# selection


def _priority(frame: Keyframe) -> tuple[int, float, float]:
    """Sort key, best first: the first frame, scene changes (strongest first), intervals
    (earliest first)."""
    score = -frame.scene_score if frame.reason == "scene" else 0.0
    return (_RANK[frame.reason], score, frame.time_s)


def _better(a: Keyframe, b: Keyframe) -> bool:
    """True when ``a`` is preferred to ``b`` (see :func:`_priority`)."""
    return _priority(a) < _priority(b)


class _BinnedPool:
    """Keep the best candidate per time bin; double the bin width when bins exceed the cap."""

    def __init__(self, max_frames: int, duration_s: float | None, every_s: float) -> None:
        self.cap = 4 * max_frames
        if duration_s is not None and duration_s > 0:
            self.width = duration_s / self.cap
        else:
            self.width = every_s
        self.bins: dict[int, Keyframe] = {}

    def offer(self, frame: Keyframe) -> None:
        self._put(self.bins, frame)
        while len(self.bins) > self.cap:
            self.width *= 2.0
            rebinned: dict[int, Keyframe] = {}
            for kept in self.bins.values():
                self._put(rebinned, kept)
            self.bins = rebinned

    def _put(self, bins: dict[int, Keyframe], frame: Keyframe) -> None:
        key = int(frame.time_s // self.width)
        current = bins.get(key)
        if current is None or _better(frame, current):
            bins[key] = frame

    def candidates(self) -> list[Keyframe]:
        return sorted(self.bins.values(), key=lambda frame: frame.time_s)


def _spread(
    candidates: list[Keyframe], max_frames: int, duration_s: float | None
) -> list[Keyframe]:
    """At most ``max_frames`` candidates: the best of each equal part of the clip, then fill."""
    if len(candidates) <= max_frames:
        return candidates
    last = candidates[-1].time_s
    span = duration_s if duration_s is not None and duration_s > last else last + 1e-6
    width = span / max_frames
    best: dict[int, Keyframe] = {}
    for frame in candidates:
        key = min(max_frames - 1, int(frame.time_s // width))
        if key not in best or _better(frame, best[key]):
            best[key] = frame
    chosen = {id(frame) for frame in best.values()}
    rest = [frame for frame in candidates if id(frame) not in chosen]
    rest.sort(key=_priority)
    picked = list(best.values()) + rest[: max_frames - len(best)]
    return sorted(picked, key=lambda frame: frame.time_s)


# --------------------------------------------------------------------------------------------
# ffmpeg


class _CandidateLog:
    """Reads ffmpeg's stderr on a thread: the metadata filter's per-frame records, plus a log."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._records: list[list[float | None]] = []  # [pts_time, scene_score]
        self._lines: list[str] = []
        self._done = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        for raw in iter(self._stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            with self._cond:
                if "[Parsed_metadata_" in line:
                    if found := _FRAME_LINE.search(line):
                        time = found.group(3)
                        self._records.append([_float_or_none(time), None])
                    elif (found := _SCORE_LINE.search(line)) and self._records:
                        self._records[-1][1] = _float_or_none(found.group(1))
                elif len(self._lines) < 400:
                    self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def record(self, index: int) -> tuple[float | None, float]:
        """(pts_time, scene score) of the ``index``-th candidate, waiting for its log lines."""
        with self._cond:

            def ready() -> bool:
                if self._done or len(self._records) > index + 1:
                    return True
                if len(self._records) == index + 1:
                    return self._records[index][1] is not None
                return False

            if not self._cond.wait_for(ready, timeout=_LOG_WAIT_S):
                raise MediaDecodeError("ffmpeg did not report the timestamp of a decoded frame")
            if index >= len(self._records):
                return None, 0.0
            time, score = self._records[index]
            return time, score or 0.0

    def errors(self) -> list[str]:
        """Error-level lines (call after the process ended)."""
        self._thread.join(timeout=10)
        found = []
        for line in self._lines:
            if "[error]" in line or "[fatal]" in line:
                found.append(_PREFIX.sub("", line).strip())
        return found


def _float_or_none(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _scale_filter(max_side: int) -> str:
    """Square pixels, long side at most ``max_side``, never upscaled."""
    factor = f"min(1,{max_side}/max(iw*sar,ih))"
    width = f"max(1,round(iw*sar*{factor}))"
    height = f"max(1,round(ih*{factor}))"
    return f"scale=w='{width}':h='{height}',setsar=1"


def _select_filter(every_s: float, scene_threshold: float | None) -> str:
    terms = ["isnan(prev_selected_t)"]
    # Always name `scene`: it makes select score every frame, and the metadata filter prints
    # only frames that carry metadata (gt(scene,1) is never true: scores lie in [0, 1]).
    threshold = 1.0 if scene_threshold is None else scene_threshold
    terms.append(f"gt(scene,{threshold:.6f})")
    # 1 ms slack: frame times are rounded to the stream's time base
    terms.append(f"gte(t-prev_selected_t,{max(every_s - 1e-3, 1e-6):.6f})")
    return "select='" + "+".join(terms) + "'"


def _read_ppm(stdout: IO[bytes]) -> np.ndarray | None:
    """One ``P6`` picture from the pipe, or ``None`` at the end of the stream."""
    magic = stdout.readline()
    if not magic:
        return None
    size = stdout.readline().split()
    maxval = stdout.readline().strip()
    if magic.strip() != b"P6" or len(size) != 2 or maxval != b"255":
        raise MediaDecodeError("unexpected picture header from ffmpeg")
    width, height = int(size[0]), int(size[1])
    image = np.empty((height, width, 3), dtype=np.uint8)
    view = image.data.cast("B")
    filled = 0
    while filled < view.nbytes:
        got = stdout.readinto(view[filled:])  # type: ignore[attr-defined]
        if not got:
            raise MediaDecodeError("ffmpeg stopped in the middle of a picture")
        filled += got
    return image


def _iter_candidates(
    path: Path, every_s: float, scene_threshold: float | None, max_side: int
) -> Iterator[Keyframe]:
    """Run ffmpeg and yield every candidate frame; the child is killed on any early exit."""
    vf = ",".join(
        [_select_filter(every_s, scene_threshold), "metadata=mode=print", _scale_filter(max_side)]
    )
    command = [ffmpeg_exe(path), "-nostdin", "-hide_banner", "-nostats", "-v", "level+info"]
    command += ["-i", str(path), "-map", "0:V:0", "-an", "-sn", "-dn", "-vf", vf]
    command += ["-fps_mode", "passthrough", "-f", "image2pipe", "-c:v", "ppm"]
    command += ["-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    log = _CandidateLog(proc.stderr)
    try:
        index = 0
        previous = -math.inf
        while True:
            try:
                image = _read_ppm(proc.stdout)
            except MediaDecodeError as exc:
                raise MediaDecodeError(f"{path}: {exc}") from None
            if image is None:
                break
            try:
                pts_time, score = log.record(index)
            except MediaDecodeError as exc:
                raise MediaDecodeError(f"{path}: {exc}") from None
            if pts_time is None:  # no timestamp: one interval after the previous candidate
                time_s = 0.0 if index == 0 else previous + every_s
            else:
                # ffmpeg already shifts input timestamps so that the file starts at 0
                time_s = max(0.0, pts_time)
            if index == 0:
                reason = "first"
            elif scene_threshold is not None and score > scene_threshold:
                reason = "scene"
            else:
                reason = "interval"
            previous = time_s
            yield Keyframe(time_s=time_s, image=image, reason=reason, scene_score=score)
            index += 1
        code = proc.wait(timeout=60)
        if code != 0:
            errors = log.errors()
            detail = errors[0] if errors else f"exit status {code}"
            raise MediaDecodeError(f"{path}: video decoding failed (ffmpeg: {detail})")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        log.errors()
        proc.stderr.close()
