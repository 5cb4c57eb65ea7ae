"""Two Ray nodes on this machine (Ray's own ``cluster_utils``): one is lost in the middle of a run.

Each node is a real raylet with its own CPUs and object store; removing one
without grace kills its raylet and every worker on it, as a lost machine does.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from cyberian.bench.corpus import sentences
from cyberian.distributed.ray_prover import RayProver
from cyberian.prover import ChunkResult, Prover
from cyberian.spec import Spec


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[Any, Any]]:
    """A head node and a second node of one CPU each, and the driver connected to them."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    second = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    try:
        yield cluster, second
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_lost_node_has_its_chunks_run_on_the_node_left(two_nodes: tuple[Any, Any],
                                                         tiny_spec: Spec) -> None:
    cluster, second = two_nodes
    texts = sentences(2000)
    local = Prover(tiny_spec).prove(texts)
    said: list[str] = []
    with RayProver(tiny_spec, workers=2, threads=1, piece_chunks=2, start_timeout=30,
                   progress=said.append) as prover:
        assert len({report.node for report in prover.workers}) == 2  # one worker per node
        assert prover.manifest["cluster"]["nodes"] == 2
        (lost,) = [r for r in prover.workers if r.node == second.node_id]

        def lose_the_node(chunk: ChunkResult) -> None:
            if chunk.index == 3:  # the machine goes: its raylet, and the worker with it
                cluster.remove_node(second, allow_graceful=False)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(lost.pid, signal.SIGKILL)

        remote = prover.prove(texts, on_chunk=lose_the_node)
        assert prover.failures == 1
        assert [report.node for report in prover.workers] == [cluster.head_node.node_id]
    assert remote.chunks == local.chunks
    assert remote.output_commitment == local.output_commitment
    assert remote.embeddings is not None
    assert local.embeddings is not None
    assert remote.embeddings.tobytes() == local.embeddings.tobytes()
    assert any(f"on {lost.where} died" in line for line in said), said
