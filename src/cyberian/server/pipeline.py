"""One job's way from EXECUTING to a terminal state.

1. **Execute**: the texts go to the executor processes in pieces of whole
   chunks (as many pieces in flight as there are executors); each piece
   writes its rows into ``output.f32`` and returns its chunk commitments,
   which are recorded with the progress (``chunks_done``).
2. **Commit, then sample**: once every chunk is committed, the input and
   output roots are fixed; only then is the sample drawn from them and the
   job's secret nonce (stored at creation, so a resumed job draws the same
   sample). The job moves to PROVING.
3. **Replay**: the replayer process re-runs the sampled chunks and compares
   its rows, byte for byte, with the stored output and the executor's
   commitments. All equal: the receipt is built, signed and stored, and the
   job is SETTLED, in one transaction. Any difference: REFUNDED, no receipt.

An execution error ends the job FAILED with the message. A job whose inputs
or model files are gone when it is resumed is REFUNDED as abandoned. Both
return the job's chunks to the quota.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from ..commitments import ChunkCommitment
from ..receipts import ReplayRecord, build_receipt_body, commitment_roots, sign_receipt
from ..sampling import resolve_sampling
from ..spec import Spec, parse_spec
from .events import JobEvents
from .metrics import ServerMetrics
from .model_resolver import ModelResolver
from .signer import Signer
from .store import Store
from .store import jobs as jobstore
from .store.jobs import JobRecord
from .timeutil import utcnow
from .workers.pool import WorkerCrashError, WorkerPool
from .workers.tasks import ReplayItem, ReplayOutcome, TaskFailed, execute_piece, replay_chunks

__all__ = ["INPUTS_FILE", "OUTPUT_FILE", "Pipeline"]

_log = logging.getLogger("cyberian.server")

INPUTS_FILE: Final = "inputs.json"
OUTPUT_FILE: Final = "output.f32"
_PIECE_TEXTS: Final = 512


class _Abandoned(Exception):  # noqa: N818 - a state, not an error
    """A resumed job cannot run any more (inputs or model files are gone)."""


class Pipeline:
    """Runs jobs through execution, sampling, replay and settlement."""

    def __init__(self, *, store: Store, resolver: ModelResolver, pool: WorkerPool,
                 signer: Signer, events: JobEvents, jobs_dir: Path,
                 metrics: ServerMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self._resolver = resolver
        self._pool = pool
        self._signer = signer
        self._events = events
        self._jobs_dir = jobs_dir

    def job_dir(self, job_id: str) -> Path:
        """The folder of a job's inputs and outputs."""
        return self._jobs_dir / job_id

    async def run(self, job_id: str) -> None:
        """Take the job from its stored state to SETTLED, REFUNDED or FAILED."""
        job = jobstore.get_job(self._store, job_id)
        if job is None or job.status in jobstore.TERMINAL_STATES:
            return
        try:
            spec, texts = self._load(job)
            if job.status == "EXECUTING":
                await self._execute(job, spec, texts)
            await self._prove(job_id, spec, texts)
        except asyncio.CancelledError:
            raise  # shutting down: the job stays open and resumes at the next start
        except _Abandoned as exc:
            self._end(job_id, "REFUNDED", f"abandoned: {exc}")
        except TaskFailed as exc:
            message = "internal error in the executor" if exc.internal else exc.message
            self._end(job_id, "FAILED", self._public(message))
        except WorkerCrashError as exc:
            self._end(job_id, "FAILED", str(exc))
        except Exception:
            _log.exception("job %s failed", job_id)
            self._end(job_id, "FAILED", "internal error while running the job")

    def _public(self, message: str) -> str:
        """A message without the server's own paths."""
        return message.replace(str(self._jobs_dir.parent.resolve()), "<data-dir>")

    def _load(self, job: JobRecord) -> tuple[Spec, list[str]]:
        spec = self._resolver.stored(parse_spec(job.spec_yaml))
        if spec.spec_hash != job.spec_hash:
            raise _Abandoned("the stored spec no longer hashes to the job's spec_hash")
        for what, path in (("model", spec.model_path), ("tokenizer", spec.tokenizer_path)):
            if not path.is_file():
                raise _Abandoned(f"the {what} file {path.name} is no longer in the model store")
        try:
            texts = json.loads((self.job_dir(job.id) / INPUTS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _Abandoned(f"the job's stored inputs cannot be read ({exc})") from None
        if not isinstance(texts, list) or len(texts) != job.input_count:
            raise _Abandoned("the job's stored inputs are not the ones it was created with")
        return spec, texts

    async def _execute(self, job: JobRecord, spec: Spec, texts: Sequence[str]) -> None:
        output = self.job_dir(job.id) / OUTPUT_FILE
        with self._store.transaction() as conn:
            jobstore.restart_execution(conn, job.id, utcnow())
        with output.open("wb") as handle:
            handle.truncate(len(texts) * spec.dimensions * 4)
        size = spec.chunk_size
        piece = max(1, _PIECE_TEXTS // size) * size
        slots = asyncio.Semaphore(self._pool.executors)
        manifests: list[dict[str, object]] = []

        async def run_piece(start: int) -> None:
            """Execute the piece starting at text ``start`` and record its commitments."""
            async with slots:
                result = await self._pool.on_executor(
                    execute_piece, spec, list(texts[start:start + piece]), start // size,
                    str(output))
            with self._store.transaction() as conn:
                jobstore.add_chunks(conn, job.id, result.chunks, utcnow())
            self._metrics.executed("job", chunks=len(result.chunks),
                                   texts=min(piece, len(texts) - start))
            manifests.append(result.manifest)

        try:
            async with asyncio.TaskGroup() as group:
                for start in range(0, len(texts), piece):
                    group.create_task(run_piece(start))
        except ExceptionGroup as failure:  # the first failing piece decides the job's fate
            raise failure.exceptions[0] from None
        chunks = jobstore.chunk_commitments(self._store, job.id)
        if [chunk.index for chunk in chunks] != list(range(job.chunk_count)):
            raise RuntimeError(f"job {job.id}: the executor did not commit every chunk")
        input_root, output_root = commitment_roots(chunks)
        plan = resolve_sampling(spec.verification, job.chunk_count)
        sampled = plan.draw(input_root, output_root, job.nonce)  # only now: the roots are fixed
        with self._store.transaction() as conn:
            jobstore.mark_proving(conn, job.id, roots=(input_root.hex(), output_root.hex()),
                                  sampled=sampled, executor_env=manifests[0], now=utcnow())
        self._metrics.job_entered("PROVING")
        self._events.changed(job.id)

    async def _prove(self, job_id: str, spec: Spec, texts: Sequence[str]) -> None:
        job = jobstore.get_job(self._store, job_id)
        assert job is not None
        assert job.status == "PROVING"
        assert job.sampled is not None
        chunks = jobstore.chunk_commitments(self._store, job.id)
        size = spec.chunk_size
        items = [ReplayItem(i, tuple(texts[i * size:(i + 1) * size]), chunks[i].output_commitment)
                 for i in job.sampled]
        per_call = max(1, _PIECE_TEXTS // size)
        outcomes: list[ReplayOutcome] = []
        manifest: dict[str, object] = {}
        for start in range(0, len(items), per_call):
            result = await self._pool.on_replayer(
                replay_chunks, spec, items[start:start + per_call],
                str(self.job_dir(job.id) / OUTPUT_FILE))
            outcomes.extend(result.outcomes)
            manifest = result.manifest
            self._metrics.replayed(chunks=len(result.outcomes), mismatches=sum(
                not outcome.match for outcome in result.outcomes))
        with self._store.transaction() as conn:
            jobstore.record_replays(conn, job.id, [(o.index, o.output_commitment, o.match)
                                                   for o in outcomes])
        failed = [outcome for outcome in outcomes if not outcome.match]
        if failed:
            more = f" (and {len(failed) - 1} more chunks)" if len(failed) > 1 else ""
            self._end(job.id, "REFUNDED", "the independent replay disagreed with the executor: "
                                          f"{failed[0].detail}{more}")
            return
        self._settle(job, spec, chunks, outcomes, manifest)

    def _settle(self, job: JobRecord, spec: Spec, chunks: Sequence[ChunkCommitment],
                outcomes: Sequence[ReplayOutcome], replayer: dict[str, object]) -> None:
        assert job.input_root is not None  # both fixed by mark_proving, before the sample
        assert job.output_root is not None
        key = self._signer.current()
        body = build_receipt_body(
            spec=spec, kind="job", job_id=job.id, chunks=chunks, input_count=job.input_count,
            issuer_keyid=key.keyid, executor_environment=job.executor_env or {},
            replayer_environment=replayer,
            plan=resolve_sampling(spec.verification, job.chunk_count), nonce=job.nonce,
            replays=[ReplayRecord(o.index, o.output_commitment, o.match) for o in outcomes],
            roots=(bytes.fromhex(job.input_root), bytes.fromhex(job.output_root)))
        receipt = sign_receipt(body, key)
        with self._store.transaction() as conn:
            jobstore.settle(conn, job.id, receipt, account_id=job.account_id, now=utcnow())
        self._metrics.job_entered("SETTLED")
        self._events.changed(job.id)
        _log.info("job %s settled: receipt %s", job.id, receipt["receipt_id"])

    def _end(self, job_id: str, status: Literal["FAILED", "REFUNDED"], error: str) -> None:
        with self._store.transaction() as conn:
            jobstore.finish(conn, job_id, status, error, utcnow())
        self._metrics.job_entered(status)
        (self.job_dir(job_id) / OUTPUT_FILE).unlink(missing_ok=True)
        self._events.changed(job_id)
        _log.info("job %s %s: %s", job_id, status, error)
