"""The Ray worker: one actor per worker slot, holding its own pinned prover.

This module imports no Ray at import time: the driver wraps
:class:`ChunkWorker` with ``ray.remote`` (:mod:`cyberian.distributed.ray_prover`),
and it is the code each worker process imports and runs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._version import __version__
from ..cpuclass import cpu_class, isa_level
from ..environment import cpu_info
from ..exceptions import CyberianError
from ..runtime import Rows
from ..spec import Spec, installed_engine_version

__all__ = ["ChunkWorker", "PieceRows", "WorkerReport", "WorkerStartError"]


@dataclass(frozen=True)
class WorkerReport:
    """Where a worker runs and what decides its bytes, read before it loads anything."""

    host: str
    pid: int
    node: str
    cpu_class: str
    isa_level: str
    cpu_model: str
    engine_version: str
    cyberian_version: str

    @property
    def where(self) -> str:
        """``host (pid N)``: how errors and progress name this worker."""
        return f"{self.host} (pid {self.pid})"


def _ray_node() -> str:
    """The Ray node this process runs on ("" outside a Ray worker)."""
    try:
        import ray  # noqa: PLC0415 - present in every Ray worker, optional elsewhere
    except ImportError:
        return ""
    return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else ""


@dataclass(frozen=True)
class PieceRows:
    """A piece's output: its rows in input order, and per chunk the texts cut at max_length."""

    rows: Rows
    truncated: tuple[int, ...]


class WorkerStartError(CyberianError):
    """A worker cannot open its prover (a model file missing on its node, a pin, the engine)."""


class ChunkWorker:
    """Proves pieces of whole chunks with one pinned prover, opened by :meth:`start`."""

    def __init__(self, spec: Spec, threads: int, allow_engine_drift: bool) -> None:
        """Remember the run's settings; nothing is loaded until :meth:`start`."""
        self._spec = spec
        self._threads = threads
        self._allow_engine_drift = allow_engine_drift
        self._prover: Any = None

    def report(self) -> WorkerReport:
        """This worker's host, process, CPU class and versions (cheap: opens no model)."""
        return WorkerReport(host=socket.gethostname(), pid=os.getpid(), node=_ray_node(),
                            cpu_class=cpu_class(),
                            isa_level=isa_level(), cpu_model=str(cpu_info()["model"]),
                            engine_version=installed_engine_version(),
                            cyberian_version=__version__)

    def start(self) -> dict[str, Any]:
        """Open the pinned prover (building missing model files from the recipe) -> manifest.

        Every pin is checked here, on this worker's own files, exactly as a
        local run checks them.
        """
        from ..models.build import ensure_model_files  # noqa: PLC0415
        from ..prover import Prover  # noqa: PLC0415

        try:
            ensure_model_files(self._spec)
            self._prover = Prover(self._spec, allow_engine_drift=self._allow_engine_drift,
                                  threads=self._threads)
        except CyberianError as exc:
            raise WorkerStartError(f"a Ray worker on {self.report().where} cannot start: "
                                   f"{exc}") from None
        return dict(self._prover.manifest)

    def prove(self, first_index: int, texts: Sequence[str]) -> PieceRows:
        """The rows of whole chunks ``first_index, first_index + 1, ...`` made of ``texts``."""
        if self._prover is None:
            raise RuntimeError("ChunkWorker.prove before start")
        results = list(self._prover.iter_chunks(texts, first_index=first_index))
        rows = (np.concatenate([result.rows for result in results]) if results
                else np.empty((0, self._spec.dimensions), dtype=np.float32))
        return PieceRows(rows, tuple(result.truncated for result in results))
