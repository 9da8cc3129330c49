"""Measurement subprocesses: peak memory and start-up time belong to one process, so sections
c, d, i and j run their measurement in a fresh Python process,
``python -m geoforensics.eval.perf child TASK JSON``, which prints one JSON line.

A section registers its task with :func:`register_child`; :func:`run_child` starts it and
:func:`child_main` (this package's ``__main__``) runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

ChildTask = Callable[[dict[str, Any]], dict[str, Any]]

_CHILD_TASKS: dict[str, ChildTask] = {}


def register_child(name: str) -> Callable[[ChildTask], ChildTask]:
    """Decorator: ``task(params) -> result`` runs as ``child NAME JSON`` in a subprocess."""

    def add(task: ChildTask) -> ChildTask:
        if name in _CHILD_TASKS:
            raise ValueError(f"perf child task {name!r} already registered")
        _CHILD_TASKS[name] = task
        return task

    return add


def run_child(
    task: str, params: dict[str, Any], timeout: float = 900.0, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``task`` of :func:`child_main` in a fresh Python process (``env`` added to the
    environment); its JSON result."""
    command = [sys.executable, "-m", "geoforensics.eval.perf", "child", task, json.dumps(params)]
    environment = None if env is None else {**os.environ, **env}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=environment
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"perf child {task!r} failed: {' | '.join(tail)}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def child_main(argv: Sequence[str]) -> int:
    """Entry of the measurement subprocesses: ``child TASK JSON`` -> one JSON line."""
    if len(argv) != 3 or argv[0] != "child" or argv[1] not in _CHILD_TASKS:
        tasks = ",".join(sorted(_CHILD_TASKS))
        print(f"usage: python -m geoforensics.eval.perf child {{{tasks}}} JSON")
        return 2
    result = _CHILD_TASKS[argv[1]](json.loads(argv[2]))
    print(json.dumps(result))
    return 0
