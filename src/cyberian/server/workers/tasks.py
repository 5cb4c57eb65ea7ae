"""What runs inside the worker processes: cached provers and the inference tasks.

Each worker process keeps a small LRU cache of :class:`~cyberian.prover.Prover`
objects (one ONNX Runtime session each) keyed by spec hash and files, and
preloads the catalog's specs when it starts. A watchdog thread ends the
process when its parent (the server) is gone, so a killed server leaves no
workers behind. Every task raises only :class:`TaskFailed`, which always
pickles; results are small frozen dataclasses.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import wraps
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import numpy as np

from ...commitments import BlockCommitter, ChunkCommitment, chunk_bounds, input_commitment
from ...exceptions import CyberianError
from ...prover import ChunkResult, Prover
from ...spec import Spec, parse_spec
from ..uploadspec import GraphOutput, UploadParams, choose_output, upload_spec_text
from .faults import Faults, faults_from_env

__all__ = [
    "BlocksResult",
    "PieceResult",
    "ReplayItem",
    "ReplayOutcome",
    "ReplayResult",
    "TaskFailed",
    "commit_blocks",
    "execute_piece",
    "init_worker",
    "replay_chunks",
    "row_bytes",
    "validate_upload",
    "warm",
]

_log = logging.getLogger("cyberian.worker")

_CACHE_SIZE: Final = 4
_WATCHDOG_SEC: Final = 0.5
_PROBE_TEXTS: Final = (
    "cyberian upload probe",
    "a probe as long as the tokenizer allows " * 2000,  # exercises every position
)

_P = ParamSpec("_P")
_T = TypeVar("_T")


class TaskFailed(Exception):  # noqa: N818 - the name says what happened
    """A task failed; ``field`` names the spec field at fault, ``internal`` marks a bug."""

    def __init__(self, message: str, field: str | None = None, internal: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.internal = internal

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskFailed, (self.message, self.field, self.internal))


@dataclass
class _State:
    role: str = "worker"
    session: str = ""
    threads: int = 1
    faults: Faults | None = None


_STATE = _State()
_PROVERS: OrderedDict[tuple[str, str, str], Prover] = OrderedDict()


def _task(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    @wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn``, with every failure turned into a picklable :class:`TaskFailed`."""
        try:
            return fn(*args, **kwargs)
        except TaskFailed:
            raise
        except CyberianError as exc:
            raise TaskFailed(exc.message, field=getattr(exc, "path", None)) from None
        except Exception as exc:
            _log.exception("worker task %s failed", fn.__name__)
            raise TaskFailed(f"{type(exc).__name__}: {exc}", internal=True) from None

    return run


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(_WATCHDOG_SEC)


def init_worker(role: str, preload: Sequence[Spec], threads: int, parent_pid: int | None,
                session: str | None = None) -> None:
    """Process initializer: watchdog (when a parent is given), role, session id (random
    unless given), faults (executor only), catalog provers."""
    if parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                         name="parent-watchdog").start()
    _STATE.role = role
    _STATE.session = session or secrets.token_hex(8)
    _STATE.threads = threads
    _STATE.faults = faults_from_env()
    for spec in preload:
        try:
            _prover(spec)
        except Exception:  # a broken catalog entry fails its own requests, not the worker
            _log.exception("cannot preload %s", spec.name)


def _prover(spec: Spec) -> Prover:
    key = (spec.spec_hash, str(spec.model_path), str(spec.tokenizer_path))
    prover = _PROVERS.get(key)
    if prover is None:
        prover = Prover(spec, threads=_STATE.threads)
        _PROVERS[key] = prover
        while len(_PROVERS) > _CACHE_SIZE:
            _PROVERS.popitem(last=False)
    _PROVERS.move_to_end(key)
    return prover


def _manifest(prover: Prover) -> dict[str, Any]:
    return {**prover.manifest, "worker": {"role": _STATE.role, "session": _STATE.session}}


def _slow(chunks: int) -> None:
    if _STATE.faults is not None and _STATE.faults.chunk_delay:
        time.sleep(_STATE.faults.chunk_delay * chunks)


def warm() -> int:
    """Nothing: returns the pid once the process (and its initializer) is up."""
    return os.getpid()


@dataclass(frozen=True)
class PieceResult:
    """The chunks an executor piece ran: commitments, rows (float32 LE bytes, one entry per
    chunk) and the executor's manifest."""

    chunks: tuple[ChunkCommitment, ...]
    outputs: tuple[bytes, ...]
    manifest: dict[str, Any]

    @property
    def worker(self) -> str:
        """The worker that executed the piece (its session id)."""
        return str(self.manifest["worker"]["session"])


@_task
def execute_piece(spec: Spec, texts: list[str], first_index: int) -> PieceResult:
    """Run whole chunks starting at chunk ``first_index`` and commit to their rows."""
    prover = _prover(spec)
    chunks = list(prover.iter_chunks(texts, first_index=first_index))
    faults = _STATE.faults if _STATE.role == "executor" else None
    if faults is not None:
        chunks = [_corrupted(chunk) if chunk.index in faults.corrupt_chunks else chunk
                  for chunk in chunks]
    _slow(len(chunks))
    return PieceResult(tuple(chunk.commitment for chunk in chunks),
                       tuple(row_bytes(chunk.rows) for chunk in chunks), _manifest(prover))


def row_bytes(rows: np.ndarray[Any, Any]) -> bytes:
    """Rows as stored and served: float32, little-endian, C order."""
    return np.ascontiguousarray(rows, dtype="<f4").tobytes()


def _corrupted(chunk: ChunkResult) -> ChunkResult:
    """TEST-ONLY (see faults.py): the chunk with one bit flipped, committed as a liar would."""
    rows = chunk.rows.copy()
    rows.view(np.uint32)[0, 0] ^= 1
    return replace(chunk, rows=rows,
                   commitment=ChunkCommitment.of(chunk.index, chunk.texts, rows))


@dataclass(frozen=True)
class ReplayItem:
    """A sampled chunk to replay: its index, texts, the executor's commitment and the rows
    the executor stored."""

    index: int
    texts: tuple[str, ...]
    executor_commitment: str
    stored: bytes


@dataclass(frozen=True)
class ReplayOutcome:
    """The replay of one chunk: its output commitment and whether it matched."""

    index: int
    output_commitment: str
    match: bool
    detail: str = ""


@dataclass(frozen=True)
class ReplayResult:
    """Every replayed chunk, and the replayer's manifest."""

    outcomes: tuple[ReplayOutcome, ...]
    manifest: dict[str, Any]

    @property
    def worker(self) -> str:
        """The worker that replayed the chunks (its session id)."""
        return str(self.manifest["worker"]["session"])


@_task
def replay_chunks(spec: Spec, items: Sequence[ReplayItem]) -> ReplayResult:
    """Re-run sampled chunks and compare, byte for byte, with what the executor stored."""
    prover = _prover(spec)
    replays = prover.prove_chunks((item.index, item.texts) for item in items)
    outcomes = []
    for item, chunk in zip(items, replays, strict=True):
        commitment = chunk.commitment.output_commitment
        detail = ""
        if commitment != item.executor_commitment:
            detail = (f"chunk {item.index}: the executor committed "
                      f"{item.executor_commitment}, the replay gives {commitment}")
        elif item.stored != row_bytes(chunk.rows):
            detail = f"chunk {item.index}: the stored output differs from the replay"
        outcomes.append(ReplayOutcome(item.index, commitment, not detail, detail))
    _slow(len(items))
    return ReplayResult(tuple(outcomes), _manifest(prover))


@dataclass(frozen=True)
class BlocksResult:
    """Per request, the ``(input_commitment, output_commitment)`` of each block."""

    groups: tuple[tuple[tuple[str, str], ...], ...]
    manifest: dict[str, Any]


@_task
def commit_blocks(spec: Spec, groups: Sequence[tuple[Sequence[str], int]]) -> BlocksResult:
    """Run the texts of several requests together and commit each request's blocks.

    Rows do not depend on their batch, so the requests share inference
    batches (the prover's chunks of all their texts in a row); each
    request's blocks are committed from its own rows.
    """
    prover = _prover(spec)
    committers = [BlockCommitter(block) for _, block in groups]
    ends = np.cumsum([len(texts) for texts, _ in groups]).tolist()
    group = 0
    for chunk in prover.iter_chunks(text for texts, _ in groups for text in texts):
        position, stop = chunk.start, chunk.start + len(chunk.texts)
        while position < stop:
            while ends[group] <= position:
                group += 1
            end = min(ends[group], stop)
            committers[group].update(chunk.rows[position - chunk.start:end - chunk.start])
            position = end
    results = []
    for (texts, block), committer in zip(groups, committers, strict=True):
        inputs = [input_commitment(texts[a:b]) for a, b in chunk_bounds(len(texts), block)]
        results.append(tuple(zip(inputs, committer.commitments(), strict=True)))
    _slow(sum(len(result) for result in results))
    return BlocksResult(tuple(results), _manifest(prover))


@_task
def validate_upload(params: UploadParams, model_path: str, tokenizer_path: str) -> str:
    """Check an uploaded model with ONNX Runtime and return its spec text.

    It must load, take BERT-style inputs, have an output of the right rank
    and produce finite rows of the promised width for the chosen tokenizer.
    """
    import onnxruntime as ort  # noqa: PLC0415 - heavy import, only here

    try:
        session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    except Exception as exc:
        message = str(exc).replace(model_path, "<upload>").splitlines()[0][:300]
        raise TaskFailed(f"ONNX Runtime cannot load the uploaded file: {message}") from None
    outputs = [GraphOutput(o.name, tuple(o.shape) if o.shape is not None else None)
               for o in session.get_outputs()]
    del session
    try:
        output = choose_output(outputs, params.pooling)
    except ValueError as exc:
        raise TaskFailed(str(exc)) from None
    text = upload_spec_text(params, output)
    spec = parse_spec(text).with_files(Path(model_path), Path(tokenizer_path))
    prover = Prover(spec, threads=_STATE.threads)
    rows = prover.runtime.embed(list(_PROBE_TEXTS))
    if not np.isfinite(rows).all():
        raise TaskFailed("the model produced non-finite values for a probe text")
    return text
