"""VaaS coalescing: requests queued while the executors are busy share one inference task."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from cyberian.commitments import input_commitment
from cyberian.server.batching import VerifyBatcher
from cyberian.server.workers.tasks import BlocksResult
from cyberian.spec import Spec


class FakePool:
    """Records each task's requests; answers after a short pause."""

    def __init__(self, executors: int) -> None:
        self.executors = executors
        self.calls: list[list[int]] = []

    async def on_executor(self, fn: Callable[..., Any], spec: Spec,
                          groups: Sequence[tuple[Sequence[str], int]]) -> BlocksResult:
        self.calls.append([len(texts) for texts, _ in groups])
        await asyncio.sleep(0.02)
        blocks = tuple(tuple((input_commitment(texts[i:i + block]), f"out-{texts[i]}")
                             for i in range(0, len(texts), block)) for texts, block in groups)
        return BlocksResult(blocks, {"worker": "fake"})


def test_queued_requests_are_merged_up_to_the_batch_size(tiny_spec: Spec) -> None:
    pool = FakePool(executors=1)

    async def scenario() -> list[Any]:
        batcher = VerifyBatcher(pool, max_texts=10)  # type: ignore[arg-type]
        requests = [batcher.commit(tiny_spec, [f"r{r}-t{t}" for t in range(4)], 2)
                    for r in range(5)]
        results = await asyncio.gather(*requests)
        await batcher.close()
        return results

    results = asyncio.run(scenario())
    # the first request goes alone (idle pool), then at most 10 texts per task
    assert pool.calls == [[4], [4, 4], [4, 4]]
    for r, result in enumerate(results):
        assert [out for _, out in result.blocks] == [f"out-r{r}-t0", f"out-r{r}-t2"]
        assert result.blocks[0][0] == input_commitment([f"r{r}-t0", f"r{r}-t1"])
        assert result.manifest == {"worker": "fake"}


def test_a_failed_task_fails_its_requests_only(tiny_spec: Spec) -> None:
    class Failing(FakePool):
        async def on_executor(self, fn: Callable[..., Any], spec: Spec,
                              groups: Sequence[tuple[Sequence[str], int]]) -> BlocksResult:
            if len(self.calls) == 0:
                self.calls.append([])
                raise RuntimeError("worker died")
            return await super().on_executor(fn, spec, groups)

    pool = Failing(executors=1)

    async def scenario() -> list[Any]:
        batcher = VerifyBatcher(pool, max_texts=100)  # type: ignore[arg-type]
        return await asyncio.gather(batcher.commit(tiny_spec, ["a"], 1),
                                    batcher.commit(tiny_spec, ["b"], 1),
                                    return_exceptions=True)

    first, second = asyncio.run(scenario())
    assert isinstance(first, RuntimeError)
    assert second.blocks[0][1] == "out-b"
