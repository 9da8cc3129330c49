"""Memory of a process from Linux ``/proc``: resident and peak resident size, private
(anonymous) memory sampled in a thread, and a process's descendants (a folder check's
workers). Peak figures belong to one process, so the sections that report them measure in a
fresh subprocess (:mod:`.children`)."""

from __future__ import annotations

import os
import resource
import threading
from pathlib import Path

MB = 1024.0 * 1024.0


def rss_mb() -> float:
    """Resident set size of this process now (MB)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError):
        return float("nan")


def status_mb(field: str, pid: int | str = "self") -> float | None:
    """A memory line of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``, ``RssAnon``...) in MB;
    None when there is no such line or process (not Linux, or the process ended)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process's own memory so far (MB).

    Reads ``VmHWM`` from /proc/self/status: ``ru_maxrss`` is no use in a child process,
    because Linux carries the parent's high-water mark over ``fork`` + ``exec`` (a child of a
    1.6 GB parent reports >= 1.6 GB whatever it does). Falls back to ``ru_maxrss`` elsewhere.
    """
    peak = status_mb("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 if peak is None else peak


def anon_mb() -> float:
    """Private (anonymous) resident memory of this process now (MB; NaN off Linux)."""
    anon = status_mb("RssAnon")
    return float("nan") if anon is None else anon


class AnonPeak:
    """Samples this process's private (anonymous) resident memory every 20 ms in a thread;
    ``peak_mb`` is the largest value seen (shared library pages are not counted)."""

    def __init__(self) -> None:
        self.peak_mb = anon_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, anon_mb())

    def stop(self) -> float:
        """Stop sampling; the peak seen (MB)."""
        self._stop.set()
        self._thread.join()
        return max(self.peak_mb, anon_mb())


def descendants(pid: int) -> list[int]:
    """Process ids of every descendant of ``pid`` (Linux /proc)."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            queue += children
    return found
