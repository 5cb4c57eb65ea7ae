"""Coalescing concurrent VaaS requests into shared inference batches.

Rows do not depend on the batch they are computed in, so requests for the
same spec that arrive while the executors are busy are merged into one task
(up to ``max_texts`` texts) and their rows split again afterwards. At most one
task per executor is in flight; a request arriving at an idle server is
dispatched at once, so batching adds no latency, only throughput.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..spec import Spec
from .workers.pool import WorkerPool
from .workers.tasks import commit_blocks

__all__ = ["BlockCommitments", "VerifyBatcher"]


@dataclass(frozen=True)
class BlockCommitments:
    """One request's ``(input_commitment, output_commitment)`` per block, and the manifest."""

    blocks: tuple[tuple[str, str], ...]
    manifest: dict[str, Any]


@dataclass
class _Request:
    spec: Spec
    texts: Sequence[str]
    block: int
    future: asyncio.Future[BlockCommitments] = field(repr=False)


def _spec_key(spec: Spec) -> tuple[str, str]:
    return spec.spec_hash, str(spec.model_path)


class VerifyBatcher:
    """Queues block-commitment requests per spec and dispatches them in merged batches."""

    def __init__(self, pool: WorkerPool, *, max_texts: int) -> None:
        self._pool = pool
        self._max_texts = max_texts
        self._queues: dict[tuple[str, str], deque[_Request]] = {}
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def commit(self, spec: Spec, texts: Sequence[str], block: int) -> BlockCommitments:
        """The block commitments of ``texts`` under ``spec`` (computed in an executor)."""
        future: asyncio.Future[BlockCommitments] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(_spec_key(spec), deque()).append(
            _Request(spec, texts, block, future))
        self._pump()
        return await future

    def _take(self) -> list[_Request]:
        key = next(iter(self._queues))
        queue = self._queues.pop(key)
        batch: list[_Request] = []
        size = 0
        while queue and (not batch or size + len(queue[0].texts) <= self._max_texts):
            request = queue.popleft()
            if request.future.cancelled():
                continue
            batch.append(request)
            size += len(request.texts)
        if queue:  # the rest waits behind the other specs' requests
            self._queues[key] = queue
        return batch

    def _pump(self) -> None:
        while self._running < self._pool.executors and self._queues:
            batch = self._take()
            if not batch:
                continue
            self._running += 1
            task = asyncio.create_task(self._dispatch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, batch: list[_Request]) -> None:
        try:
            result = await self._pool.on_executor(
                commit_blocks, batch[0].spec, [(list(r.texts), r.block) for r in batch])
        except Exception as exc:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
        else:
            for request, blocks in zip(batch, result.groups, strict=True):
                if not request.future.done():
                    request.future.set_result(BlockCommitments(blocks, result.manifest))
        finally:
            self._running -= 1
            self._pump()

    async def close(self) -> None:
        """Cancel queued requests and wait for dispatched batches."""
        for queue in self._queues.values():
            for request in queue:
                request.future.cancel()
        self._queues.clear()
        await asyncio.gather(*self._tasks, return_exceptions=True)
