"""``geoforensics check FOLDER --ray [ADDRESS]``: the folder's clips as Ray tasks.

Each clip is one task running the function it is given (``check FOLDER`` gives
:func:`~.folder.run_clip_task`, the function the local worker processes run), so the report
folders, ``summary.json`` and the tables are the same. A Ray worker process keeps its models
between tasks (the per-process cache of :func:`~.check_models.shared_check_models`), as a local
worker does.

On a cluster every node must see the clip folder and the output folder at the same paths (a
shared file system) and have geoforensics installed; ``ADDRESS`` is what ``ray start --head``
prints (``HOST:6379``) or ``ray://HOST:10001`` for Ray Client. Without an address a local Ray
instance is started with ``workers`` CPUs (or the instance this process already initialised is
used) and shut down at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from geoforensics.core.errors import InputError

Task = TypeVar("Task")
Result = TypeVar("Result")

RAY_MISSING = (
    "--ray needs Ray: pip install 'geoforensics[cluster]' (or pip install ray) on this machine "
    "and on every node of the cluster"
)


def run_on_ray(
    run_task: Callable[[Task], Result],
    tasks: Sequence[Task],
    address: str | None,
    workers: int,
    collect: Callable[[Result], None],
) -> None:
    """Run ``run_task`` (a module-level function, so that Ray ships it by reference) on every
    task as Ray tasks (one CPU each) and hand each result to ``collect`` as it finishes."""
    try:
        import ray
    except ImportError as exc:
        raise InputError(RAY_MISSING) from exc

    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(
                address=address,
                num_cpus=max(1, workers) if address is None else None,
                include_dashboard=False,
                log_to_driver=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InputError(
                f"--ray {address or '(local)'}: cannot start or reach to the Ray cluster ({exc})"
            ) from exc
    # Ray sets OMP_NUM_THREADS to a task's CPUs (1) in its workers: one thread per task.
    remote = ray.remote(num_cpus=1, max_retries=1)(run_task)
    pending: list[object] = []
    try:
        pending = [remote.remote(task) for task in tasks]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                collect(ray.get(ref))
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


__all__ = ["RAY_MISSING", "run_on_ray"]
