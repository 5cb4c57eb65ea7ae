"""The worker pool: executor processes and one independent replayer process.

Inference never runs in the server process. Executors (``--workers N``
processes) run job chunks, VaaS blocks and upload checks; the replayer is a
separate single process with its own ONNX Runtime session that re-runs the
chunks a job's sample picked. Processes are started with ``spawn`` when the
server starts (never on a request's path), preload the catalog's specs and
keep their sessions. A worker that dies (crash, OOM kill) breaks only the
tasks it held: the pool is rebuilt (and ``on_restart`` told which role's)
and those tasks fail with :class:`WorkerCrashError`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal, TypeVar

from ...spec import Spec
from . import tasks as worker_tasks

__all__ = ["WorkerCrashError", "WorkerPool"]

_log = logging.getLogger("cyberian.server")
_T = TypeVar("_T")
Role = Literal["executor", "replayer"]


class WorkerCrashError(RuntimeError):
    """A worker process died while running a task."""


class WorkerPool:
    """``executors`` executor processes plus one replayer process, all spawned at start."""

    def __init__(self, *, executors: int, threads: int, preload: Sequence[Spec],
                 on_restart: Callable[[Role], None] | None = None) -> None:
        self.executors = executors
        self._on_restart = on_restart
        self._threads = threads
        self._preload = tuple(preload)
        self._pools: dict[Role, ProcessPoolExecutor] = {}
        self._closing = False

    def _new_pool(self, role: Role) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.executors if role == "executor" else 1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_tasks.init_worker,
            initargs=(role, self._preload, self._threads, os.getpid()),
        )

    async def start(self) -> None:
        """Spawn every process and wait until each has loaded the catalog."""
        self._pools = {"executor": self._new_pool("executor"),
                       "replayer": self._new_pool("replayer")}
        warmups = [self.on_executor(worker_tasks.warm) for _ in range(self.executors)]
        pids = await asyncio.gather(*warmups, self.on_replayer(worker_tasks.warm))
        _log.info("worker pool ready: executors %s, replayer %s",
                  sorted(set(pids[:-1])), pids[-1])

    async def on_executor(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` in an executor process."""
        return await self._run("executor", fn, args)

    async def on_replayer(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` in the replayer process."""
        return await self._run("replayer", fn, args)

    async def _run(self, role: Role, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        pool = self._pools[role]
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, functools.partial(fn, *args))
        except BrokenProcessPool:
            if self._pools.get(role) is pool and not self._closing:
                _log.error("a %s process died; restarting the %s pool", role, role)
                pool.shutdown(wait=False, cancel_futures=True)
                self._pools[role] = self._new_pool(role)
                if self._on_restart is not None:
                    self._on_restart(role)
            raise WorkerCrashError(f"a {role} process died while running the task") from None

    async def close(self) -> None:
        """Stop every process (queued tasks are cancelled; running ones finish first)."""
        self._closing = True
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)
