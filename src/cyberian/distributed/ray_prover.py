"""The Ray prover: the same proof as :class:`~cyberian.prover.Prover`, computed by a cluster.

The driver (this process) reads the texts lazily, cuts them into *pieces* of
whole chunks and hands each piece to a worker actor
(:class:`~cyberian.distributed.ray_worker.ChunkWorker`) that holds its own
pinned session. Rows come back per piece; the driver commits every chunk
itself and folds the chunks in input order with the code a local run uses
(:func:`~cyberian.prover.fold_chunks`), so every per-chunk commitment, the
output commitment, the Merkle roots and the receipt are the local run's, bit
for bit. A chunk's rows do not depend on which worker, batch or window ran it
(the padding- and batch-invariance the determinism tests prove).

* **Memory flat in the number of texts.** At most three pieces per worker
  are handed out or waiting to be folded at any time; the texts are pulled
  from the iterable only as pieces are handed out.
* **One CPU class.** Before any model is loaded every worker reports its CPU
  class (:mod:`cyberian.cpuclass`), ONNX Runtime version and cyberian
  version; workers that disagree would make bytes that no single verifier
  reproduces, so the run is refused with :class:`ClusterMismatchError`
  naming each worker. A replacement worker is held to the same (one that
  differs is not used).
* **Failures.** A worker that dies (its process killed, its node lost) has
  its pieces handed to the other workers at once, and a replacement starts
  beside the run and joins when it is up, up to ``max_failures`` times in the
  run. An error *in* the proof (a pin mismatch,
  a non-finite output) is not retried: it is raised as the local run raises it.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

from ..commitments import ChunkCommitment, chunk_count
from ..exceptions import CyberianError
from ..prover import ChunkResult, Proof, fold_chunks
from ..spec import Spec
from .ray_worker import ChunkWorker, PieceRows, WorkerReport, WorkerStartError

__all__ = [
    "ClusterMismatchError",
    "RayProver",
    "RayUnavailableError",
    "WorkerFailedError",
    "check_one_class",
    "import_ray",
]

_PIECE_TEXTS = 512
"""Texts per piece by default (rounded to whole chunks): a second or two of one worker."""

_GUIDED_SHARE = 3
"""A piece is at most 1/(3 x workers) of the chunks still to hand out (when the count is known)."""

_QUEUED_PER_WORKER = 3
"""Pieces handed out or awaiting the fold per worker: one running, one queued, one done."""

_CONNECT_SECONDS = 5.0
"""How long the driver waits for a Ray address to accept a connection."""

_POLL_SECONDS = 1.0
"""How often the driver looks at replacements starting while it waits for pieces."""


class RayUnavailableError(CyberianError):
    """Ray is not installed, or the cluster cannot be reached or cannot host a worker."""


class ClusterMismatchError(CyberianError):
    """The workers would not all make the same bytes (CPU class or versions differ)."""


class WorkerFailedError(CyberianError):
    """More workers died than the run allows; the proof is incomplete."""


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`RayUnavailableError` saying how to install it."""
    try:
        import ray  # noqa: PLC0415 - an optional extra, imported only for --ray
    except ImportError:
        raise RayUnavailableError("Ray is not installed: pip install 'cyberian[ray]'") from None
    return ray


@dataclass
class _Worker:
    """A worker actor as the driver tracks it."""

    number: int
    actor: Any
    report: WorkerReport
    busy: int = 0


@dataclass
class _Joining:
    """A replacement worker starting up: its report and start calls, and since when."""

    number: int
    actor: Any
    report: Any
    start: Any
    since: float


@dataclass
class _Piece:
    """A run of whole chunks, from chunk ``first_index``."""

    first_index: int
    texts: list[str]
    worker: _Worker | None = None
    ref: Any = None
    rows: PieceRows | None = field(default=None, repr=False)


def _identity(report: WorkerReport) -> tuple[str, str, str]:
    return report.cpu_class, report.engine_version, report.cyberian_version


def _describe(reports: Sequence[WorkerReport]) -> str:
    groups: dict[tuple[str, str, str], list[str]] = {}
    for report in reports:
        groups.setdefault(_identity(report), []).append(report.where)
    return "; ".join(
        f"class {cls}, onnxruntime {engine}, cyberian {version} on {', '.join(where)}"
        for (cls, engine, version), where in groups.items())


def check_one_class(reports: Sequence[WorkerReport]) -> None:
    """Refuse workers that differ in CPU class, ONNX Runtime or cyberian version.

    Any of the three can change the bytes, and a proof's bytes must all come
    from one class for a verifier of that class to reproduce them.
    """
    if len({_identity(report) for report in reports}) > 1:
        raise ClusterMismatchError(
            "the Ray workers would not make the same bytes: " + _describe(reports)
            + ". Run on workers of one CPU class (docs/DETERMINISM.md) with the same "
            "onnxruntime and cyberian")


class RayProver:
    """Proves embedding runs under one spec on a Ray cluster's workers.

    A drop-in for :class:`~cyberian.prover.Prover` (``iter_chunks``,
    ``prove``, ``manifest``): same chunks, same commitments. Use it as a
    context manager, or call :meth:`close`, to stop the workers (and the
    local Ray instance, when this prover started one).
    """

    def __init__(self, spec: Spec, *, address: str | None = None, workers: int | None = None,
                 threads: int | None = None, allow_engine_drift: bool = False,
                 piece_chunks: int | None = None, max_failures: int | None = None,
                 worker_options: Callable[[int], Mapping[str, Any]] | None = None,
                 start_timeout: float = 300.0,
                 progress: Callable[[str], None] | None = None) -> None:
        """Connect to Ray and start the workers, checked to be of one CPU class.

        ``address`` is Ray's (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``);
        ``None`` joins the Ray session this process already has, else the
        cluster ``RAY_ADDRESS`` names, else starts a local one. Each worker
        runs ``threads`` intra-op threads (default: the spec's) and asks Ray
        for as many CPUs; ``workers`` defaults to as many as the cluster's
        CPUs hold. A piece is ``piece_chunks`` whole chunks (default: about
        512 texts); at most ``max_failures`` workers may die in a run (default:
        twice the workers). ``worker_options(n)`` adds Ray actor options for worker
        ``n`` (resources, runtime environment, scheduling). ``progress`` is
        told of the workers and of every failure, one line each. A worker
        not started within ``start_timeout`` seconds (no CPUs free for it,
        say) fails the start; a replacement starts while the others work,
        and one that does not start in time is dropped.
        """
        self._ray = import_ray()
        self.spec = spec
        self._progress = progress
        self._started_ray = self._connect(address)
        try:
            cpus = int(self._ray.cluster_resources().get("CPU", 0))
            self.threads = int(spec.runtime["intra_op_threads"]) if threads is None else threads
            if cpus < self.threads:
                raise RayUnavailableError(
                    f"the Ray cluster has {cpus} CPUs; a worker of {_threads(self.threads)} "
                    f"needs {self.threads} (give fewer threads)")
            self.worker_count = workers if workers is not None else max(1, cpus // self.threads)
            if self.worker_count * self.threads > cpus:
                raise RayUnavailableError(
                    f"{self.worker_count} workers of {_threads(self.threads)} need "
                    f"{self.worker_count * self.threads} CPUs; the Ray cluster has {cpus}")
            self._start_timeout = start_timeout
            self._piece_chunks = piece_chunks or chunk_count(_PIECE_TEXTS, spec.chunk_size)
            self._max_failures = (max_failures if max_failures is not None
                                  else 2 * self.worker_count)
            self._allow_engine_drift = allow_engine_drift
            self._worker_options = worker_options or (lambda number: {})
            self._actor_class = self._ray.remote(ChunkWorker)
            self._numbers = itertools.count()
            self.failures = 0
            self._joining: list[_Joining] = []
            self._workers: list[_Worker] = []
            self._workers, manifests = self._start_workers(self.worker_count)
        except BaseException:
            self.close()
            raise
        self.manifest: dict[str, Any] = {**manifests[0], "cluster": self._cluster_note()}
        """The first worker's environment manifest, plus what the cluster was."""

    # -- lifecycle ---------------------------------------------------------
    def _connect(self, address: str | None) -> bool:
        """Join or start Ray; True when this prover started it (and so stops it)."""
        if self._ray.is_initialized():
            return False
        _check_reachable(address or os.environ.get("RAY_ADDRESS"))
        try:
            self._ray.init(address=address, include_dashboard=False, log_to_driver=False,
                           logging_level=logging.ERROR)
        except Exception as exc:  # Ray raises many types here; each is one line to the user
            raise RayUnavailableError(f"cannot connect to the Ray cluster at "
                                      f"{address or 'RAY_ADDRESS or a new local one'}: "
                                      f"{_first_line(exc)}") from None
        return True

    def close(self) -> None:
        """Stop the workers, and Ray itself if this prover started it."""
        for actor in [*(w.actor for w in getattr(self, "_workers", [])),
                      *(j.actor for j in getattr(self, "_joining", []))]:
            self._ray.kill(actor)
        self._workers, self._joining = [], []
        if getattr(self, "_started_ray", False):
            self._ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> RayProver:
        """The prover itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the workers (see :meth:`close`)."""
        self.close()

    def _start_workers(self, count: int) -> tuple[list[_Worker], list[dict[str, Any]]]:
        """``count`` new workers, checked against each other and the pool, then started.

        Returns them with their environment manifests.
        """
        actors = [(number, self._new_actor(number))
                  for number in itertools.islice(self._numbers, count)]
        try:
            reports = self._get([actor.report.remote() for _, actor in actors], what="report")
            check_one_class([*(worker.report for worker in self._workers), *reports])
            manifests = self._get([actor.start.remote() for _, actor in actors], what="start")
        except BaseException:
            for _, actor in actors:
                self._ray.kill(actor)
            raise
        started = [_Worker(number, actor, report)
                   for (number, actor), report in zip(actors, reports, strict=True)]
        for worker in started:
            self._say(f"ray worker {worker.number} on {worker.report.where}: "
                      f"{_threads(self.threads)}, class {worker.report.cpu_class}")
        return started, manifests

    @property
    def workers(self) -> tuple[WorkerReport, ...]:
        """The workers alive now: where each runs and what decides its bytes."""
        return tuple(worker.report for worker in self._workers)

    def _new_actor(self, number: int) -> Any:
        options = {"num_cpus": self.threads, "max_restarts": 0,
                   **self._worker_options(number)}
        return self._actor_class.options(**options).remote(
            self.spec, self.threads, self._allow_engine_drift)

    def _get(self, refs: list[Any], *, what: str) -> list[Any]:
        """``ray.get`` of worker set-up calls, with a worker's own error raised as itself."""
        try:
            return list(self._ray.get(refs, timeout=self._start_timeout))
        except self._ray.exceptions.GetTimeoutError:
            raise RayUnavailableError(f"Ray workers did not {what} within "
                                      f"{self._start_timeout:g} s (are CPUs free for them?)"
                                      ) from None
        except self._ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        except self._ray.exceptions.RayActorError as exc:
            raise RayUnavailableError(f"a Ray worker died during {what}: "
                                      f"{_first_line(exc)}") from None

    def _cluster_note(self) -> dict[str, Any]:
        return {"engine": "ray", "version": str(self._ray.__version__),
                "workers": len(self._workers),
                "hosts": len({worker.report.host for worker in self._workers}),
                "nodes": len({worker.report.node for worker in self._workers}),
                "threads_per_worker": self.threads}

    # -- proving -----------------------------------------------------------
    def iter_chunks(self, texts: Iterable[str], *, first_index: int = 0) -> Iterator[ChunkResult]:
        """Chunk results in input order, computed by the workers a piece at a time.

        ``texts`` are whole chunks of a larger input whose first is chunk
        ``first_index``; indices and starts count from there. Pieces hold
        ``piece_chunks`` chunks; when ``texts`` has a length, a piece is at
        most a third of each worker's share of what remains, so that the
        last pieces are small and the workers finish together.
        """
        size = self.spec.chunk_size
        # with a known length, pieces shrink towards the end so the workers finish together
        remaining = chunk_count(len(texts), size) if isinstance(texts, Sized) else None
        source = iter(texts)
        next_index = first_index

        def next_piece() -> _Piece | None:
            nonlocal next_index, remaining
            chunks = self._piece_chunks
            if remaining is not None:
                share = chunk_count(remaining, _GUIDED_SHARE * max(1, len(self._workers)))
                chunks = max(1, min(chunks, share))
            piece_texts = list(itertools.islice(source, size * chunks))
            if not piece_texts:
                return None
            piece = _Piece(next_index, piece_texts)
            taken = chunk_count(len(piece_texts), size)
            next_index += taken
            if remaining is not None:
                remaining -= taken
            return piece

        self._await_joining()
        queue: deque[_Piece] = deque()  # handed out or done, in input order
        exhausted = False
        while True:
            while not exhausted and len(queue) < _QUEUED_PER_WORKER * self.worker_count:
                piece = next_piece()
                if piece is None:
                    exhausted = True
                    break
                queue.append(piece)
                self._hand_out(piece)
            if not queue:
                return
            while queue and queue[0].rows is not None:
                yield from _chunk_results(queue.popleft(), size)
            if queue and queue[0].rows is None:
                self._advance([piece for piece in queue if piece.rows is None])

    def _hand_out(self, piece: _Piece) -> None:
        """Send ``piece`` to the least busy worker (it waits, unsent, while there is none)."""
        if not self._workers:
            piece.worker = piece.ref = None
            return
        worker = min(self._workers, key=lambda w: (w.busy, w.number))
        worker.busy += 1
        piece.worker = worker
        piece.ref = worker.actor.prove.remote(piece.first_index, piece.texts)

    def _advance(self, pending: list[_Piece]) -> None:
        """Wait for a piece to finish or a replacement to join; re-send a dead worker's pieces."""
        for piece in pending:
            if piece.ref is None:
                self._hand_out(piece)
        running = [piece for piece in pending if piece.ref is not None]
        if not running and not self._joining:
            raise WorkerFailedError("every Ray worker died; the proof is incomplete")
        refs = [piece.ref for piece in running] + [join.start for join in self._joining]
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=_POLL_SECONDS)
        self._admit_joining(ready)
        for piece in running:
            if piece.ref not in ready:
                continue
            worker = piece.worker
            assert worker is not None
            worker.busy -= 1
            try:
                piece.rows = self._ray.get(piece.ref)
            except self._ray.exceptions.RayTaskError as exc:
                raise _cause(exc) from None
            except (self._ray.exceptions.RayActorError, self._ray.exceptions.ObjectLostError):
                self._lost(worker)
                self._hand_out(piece)

    def _lost(self, worker: _Worker) -> None:
        """A worker died: drop it, and have a replacement start while the run allows one."""
        if worker not in self._workers:
            return  # already counted (its other pieces fail the same way)
        self._workers.remove(worker)
        self.failures += 1
        if self.failures > self._max_failures:
            raise WorkerFailedError(f"{self.failures} Ray worker failures in this run (at most "
                                    f"{self._max_failures} allowed); the last: worker "
                                    f"{worker.number} on {worker.report.where} died")
        self._say(f"ray worker {worker.number} on {worker.report.where} died; its pieces "
                  "run again on the others and a replacement starts")
        number = next(self._numbers)
        actor = self._new_actor(number)
        self._joining.append(_Joining(number, actor, actor.report.remote(),
                                      actor.start.remote(), time.monotonic()))

    def _admit_joining(self, ready: Sequence[Any]) -> None:
        """Add the replacements that have started (checked like the first workers).

        A replacement that fails to start, is of another class, or is not
        up within ``start_timeout`` is dropped with a progress line: the run
        goes on with the workers it has.
        """
        for join in list(self._joining):
            late = time.monotonic() - join.since > self._start_timeout
            if join.start not in ready and not late:
                continue
            self._joining.remove(join)
            try:
                if late:
                    raise RayUnavailableError(f"not started within {self._start_timeout:g} s")
                report, _ = self._get([join.report, join.start], what="start")
                check_one_class([*(worker.report for worker in self._workers), report])
            except (RayUnavailableError, ClusterMismatchError, WorkerStartError) as exc:
                self._ray.kill(join.actor)
                self._say(f"ray worker {join.number} (a replacement) is not used: {exc}")
                continue
            self._workers.append(_Worker(join.number, join.actor, report))
            self._say(f"ray worker {join.number} on {report.where} joined: "
                      f"{_threads(self.threads)}, class {report.cpu_class}")

    def _await_joining(self) -> None:
        """Before a run: let replacements still starting join (or be dropped)."""
        while self._joining:
            refs = [join.start for join in self._joining]
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=_POLL_SECONDS)
            self._admit_joining(ready)

    def _say(self, line: str) -> None:
        if self._progress is not None:
            self._progress(line)

    def prove(self, texts: Iterable[str], *, keep_embeddings: bool = True,
              block_size: int | None = None,
              on_chunk: Callable[[ChunkResult], None] | None = None) -> Proof:
        """Run every text on the cluster and commit, exactly as :meth:`Prover.prove` does."""
        return fold_chunks(self.iter_chunks(texts), self.spec, self.manifest,
                           keep_embeddings=keep_embeddings, block_size=block_size,
                           on_chunk=on_chunk)


def _chunk_results(piece: _Piece, size: int) -> Iterator[ChunkResult]:
    """The chunk results of a finished piece, each committed here on the driver."""
    assert piece.rows is not None
    rows, truncated = piece.rows.rows, piece.rows.truncated
    for offset, cut in enumerate(truncated):
        index = piece.first_index + offset
        texts = piece.texts[offset * size:(offset + 1) * size]
        chunk_rows = rows[offset * size:offset * size + len(texts)]
        yield ChunkResult(index, index * size, texts, chunk_rows,
                          ChunkCommitment.of(index, texts, chunk_rows), truncated=cut)


def _cause(error: Any) -> BaseException:
    """The exception a worker raised, as itself (Ray wraps it in a RayTaskError)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    return RayUnavailableError(f"a Ray worker failed: {_first_line(error)}")


def _check_reachable(address: str | None) -> None:
    """Refuse a Ray address whose host does not answer, at once (Ray itself retries for minutes).

    ``None``, ``auto`` and ``local`` are left to Ray, which answers them quickly.
    """
    if address is None or address in {"", "auto", "local"}:
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(f"{address!r} is not a Ray address (HOST:PORT, "
                                  "ray://HOST:PORT or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_SECONDS).close()
    except OSError as exc:
        reason = (f"no answer within {_CONNECT_SECONDS:g} s" if isinstance(exc, TimeoutError)
                  else exc.strerror or type(exc).__name__)
        raise RayUnavailableError(f"cannot reach the Ray cluster at {address}: {reason}"
                                  ) from None


def _threads(count: int) -> str:
    return "1 thread" if count == 1 else f"{count} threads"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
