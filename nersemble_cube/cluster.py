"""Where conversion and export tasks run: threads of this process, a local dask.distributed cluster
of worker processes, or an existing dask.distributed scheduler.

A :class:`Task` writes its own chunk-aligned region of the store and nothing else, so tasks need
no locks and can run anywhere that reaches the store (a local folder for a local cluster, an object
store for machines of a real cluster).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from dask.callbacks import Callback

from .errors import StoreError

Progress = Callable[[int], None]
"""Called with the number of items (frames, files, meshes, dask tasks) just done; drives progress bars."""

SCHEDULERS = ("threads", "processes")
"""Named schedulers; anything else is a dask.distributed scheduler address such as ``tcp://host:8786``."""


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the system has one (``taskset``, SLURM, a
    container's cpuset), else the machine's count. The default worker count and each video decoder's
    threads are sized by it, so a job given 4 of a machine's 64 cores does not start 64 of each."""
    if hasattr(os, "process_cpu_count"):  # Python >= 3.13
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def check_scheduler(scheduler: str) -> str:
    """``scheduler`` if it names one of :data:`SCHEDULERS` or is a scheduler address (``tcp://host:8786``);
    raises ``ValueError`` saying what is accepted otherwise."""
    if scheduler not in SCHEDULERS and "://" not in scheduler:
        raise ValueError(f"--scheduler is {', '.join(SCHEDULERS)} or an address like tcp://host:8786")
    return scheduler


class Cancelled(Exception):
    """Raised inside a running task whose run was stopped (an error elsewhere, Ctrl-C)."""


@dataclass(frozen=True)
class Task:
    """``fn(*args, progress)`` for ``items`` units of progress (frames, files). ``fn`` must be a
    module-level function and ``args`` picklable, so the task can run on another machine."""

    key: str
    items: int
    fn: Callable[..., Any]
    args: tuple

    def __call__(self, progress: Progress | None = None) -> Any:
        return self.fn(*self.args, progress or _no_progress)


def _no_progress(n: int) -> None:
    pass


class DaskProgress(Callback):
    """While active, calls ``progress(1)`` as each task of a local dask computation finishes (only tasks
    whose key starts with ``prefix``, if given): progress bars for ``dask.compute`` in threads."""

    def __init__(self, progress: Progress | None, prefix: str = ""):
        super().__init__()
        self.progress, self.prefix = progress, prefix

    def _posttask(self, key, result, dsk, state, worker_id):  # noqa: ANN001 - dask's callback signature
        if self.progress and (not self.prefix or (isinstance(key, str) and key.startswith(self.prefix))):
            self.progress(1)


class Runner:
    """Runs tasks and yields ``(task, result, error)`` as they finish, stopping early on the first
    error: tasks not yet started are cancelled before the error is yielded, and closing the generator
    then (in threads) returns once the running ones finished. ``threads_per_task``: threads a task may start
    (a video decoder's) without oversubscribing the cores its machine's workers share (default: the cores
    this process may use, :func:`usable_cores`, over ``workers``)."""

    def __init__(self, workers: int, client: Any | None = None, threads_per_task: int | None = None):
        self.workers, self.client = workers, client
        self.threads_per_task = threads_per_task or max(1, usable_cores() // workers)

    @property
    def distributed(self) -> bool:
        return self.client is not None

    def run(self, tasks: Sequence[Task], progress: Progress) -> Iterator[tuple[Task, Any, BaseException | None]]:
        """In threads, ``progress`` is called as each task advances; on a cluster, as each task finishes."""
        if not tasks:
            return
        if self.client is None:
            yield from self._run_threads(tasks, progress)
        else:
            yield from self._run_distributed(tasks, progress)

    def _run_threads(self, tasks: Sequence[Task], progress: Progress):
        stop = threading.Event()

        def guarded(n: int) -> None:  # a running task stops at its next progress report once the run stops
            if stop.is_set():
                raise Cancelled("the run was stopped")
            progress(n)

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            pending = {pool.submit(task, guarded): task for task in tasks}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        task = pending.pop(future)
                        error = future.exception()
                        if error:  # before the caller hears of it: closing this generator then waits only
                            for other in pending:  # for the tasks already running
                                other.cancel()
                        yield task, None if error else future.result(), error
            finally:  # an error, Ctrl-C or the caller closing this generator: start nothing more, stop the rest
                stop.set()
                for future in pending:
                    future.cancel()

    def _run_distributed(self, tasks: Sequence[Task], progress: Progress):
        from distributed import as_completed

        futures = {self.client.submit(task, key=f"nersemble-cube-{task.key}", pure=False): task for task in tasks}
        stream = as_completed(list(futures))
        for future in stream:
            task = futures[future]
            error = future.exception() if future.status == "error" else None
            if error is None:
                progress(task.items)
            else:
                self.client.cancel([f for f in futures if not f.done()])
            yield task, None if error else future.result(), error


@contextlib.contextmanager
def computing(scheduler: str | None = None, workers: int | None = None, progress: Progress | None = None,
              prefix: str = "") -> Iterator[Callable[..., tuple]]:
    """A ``compute(*collections)`` that runs dask collections on ``scheduler`` (as for :func:`runner`), calling
    ``progress(1)`` as each task finishes: every task (pass graphs optimised with ``dask.optimize``: a cluster
    runs them as given, so their task count is what the bar counts), or where ``prefix`` is given, each
    collection whose key starts with it (one per output file). A local cluster lives as long as the context."""
    import dask

    if scheduler in (None, "threads"):
        with dask.config.set(scheduler="threads", num_workers=workers), DaskProgress(progress, prefix):
            yield dask.compute
        return
    with runner(scheduler, workers) as run:  # which says how to install dask.distributed if it is missing
        from distributed import as_completed
        from distributed.diagnostics.progressbar import ProgressBar

        class TaskProgress(ProgressBar):
            """dask.distributed's progress-bar feed on the tasks some futures depend on, as ``progress`` calls."""
            done = 0

            def _draw_bar(self, remaining: int, all: int, **kwargs: Any) -> None:  # noqa: A002 - its names
                if progress and all - remaining > self.done:
                    progress(all - remaining - self.done)
                self.done = max(self.done, all - remaining)

        client = run.client

        def compute(*collections: Any) -> tuple:
            if prefix:
                futures = client.compute(list(collections))
                for _ in as_completed(futures):
                    if progress:
                        progress(1)
            else:  # run as given (callers pass optimised graphs), so the graph's task count is the bar's total
                futures = client.compute(list(collections), optimize_graph=False)
                client.sync(TaskProgress(futures).listen)
            return tuple(client.gather(futures))

        yield compute


@contextlib.contextmanager
def runner(scheduler: str | None = None, workers: int | None = None) -> Iterator[Runner]:
    """A :class:`Runner` for ``scheduler``: ``"threads"`` (default) runs ``workers`` threads here;
    ``"processes"`` starts a local dask.distributed cluster of ``workers`` processes (one thread
    each) for the duration; an address (``tcp://host:8786``) connects to a running scheduler, whose
    workers must reach the source folder and the store at the same paths or URLs."""
    workers = workers or usable_cores()
    if scheduler in (None, "threads"):
        yield Runner(workers)
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise StoreError(f"--scheduler {scheduler} needs dask.distributed: pip install 'nersemble-cube[distributed]'") \
            from None
    if scheduler == "processes":
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield Runner(workers, client)
        return
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as e:  # ValueError: an address it cannot use (another process's inproc)
        raise StoreError(f"cannot reach the dask scheduler at {scheduler} ({e})") from None
    with client:
        yield Runner(sum(client.nthreads().values()) or workers, client, _threads_per_task(client))


def _threads_per_task(client: Any) -> int | None:
    """On a running cluster: each machine's cores shared among the worker threads on it, the fewest over its
    machines (every worker's ffmpeg at its default of one thread per core oversubscribed a 16-core machine
    of 16 workers 16 times). None, ffmpeg's default, when the cluster has no workers yet."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(usable_cores)  # {worker address: the cores it may use}
    threads_on: dict[str, int] = {}
    for info in workers.values():
        threads_on[info["host"]] = threads_on.get(info["host"], 0) + info["nthreads"]
    shares = [(cores[address] or 1) // threads_on[info["host"]] for address, info in workers.items() if address in cores]
    return max(1, min(shares)) if shares else None
