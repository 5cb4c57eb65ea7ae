"""One job's way from EXECUTING to a terminal state.

1. **Execute**: the chunk runner (:mod:`cyberian.server.runners`: this
   replica's executor processes, or remote workers) executes every chunk and
   records its commitments and rows in the database, with the worker that
   produced them, advancing ``chunks_done``.
2. **Commit, then sample**: once every chunk is committed, the input and
   output roots are fixed; only then is the sample drawn from them and the
   job's secret nonce (stored at creation, so a resumed job draws the same
   sample). The job moves to PROVING.
3. **Replay**: a replayer -- never the worker that executed the chunk --
   re-runs the sampled chunks and compares its rows, byte for byte, with the
   stored output and the executor's commitments. All equal: the receipt is
   built, signed and stored, and the job is SETTLED, in one transaction. Any
   difference: REFUNDED, no receipt.

An execution error ends the job FAILED with the message. A job whose inputs
or model files are gone when it is resumed is REFUNDED as abandoned. Both
return the job's chunks to the quota. Every transition is made only by the
replica that drives the job (``jobs.driver``): one that lost its claim to
another replica stops without touching the job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..commitments import ChunkCommitment
from ..receipts import ReplayRecord, build_receipt_body, commitment_roots, sign_receipt
from ..sampling import resolve_sampling
from ..spec import Spec, parse_spec
from .events import JobEvents
from .metrics import ServerMetrics
from .model_resolver import ModelResolver
from .runners import ChunkRunner, ReplayReport
from .signer import Signer
from .store import Store
from .store import jobs as jobstore
from .store.jobs import JobRecord, NotDriverError
from .timeutil import utcnow
from .workers.pool import WorkerCrashError
from .workers.tasks import TaskFailed

__all__ = ["Pipeline"]

_log = logging.getLogger("cyberian.server")


class _Abandoned(Exception):  # noqa: N818 - a state, not an error
    """A resumed job cannot run any more (inputs or model files are gone)."""


class Pipeline:
    """Runs jobs through execution, sampling, replay and settlement."""

    def __init__(self, *, store: Store, resolver: ModelResolver, runner: ChunkRunner,
                 signer: Signer, events: JobEvents, replica: str, data_dir: Path,
                 metrics: ServerMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self._resolver = resolver
        self._runner = runner
        self._signer = signer
        self._events = events
        self._replica = replica
        self._data_dir = data_dir

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
        except NotDriverError:
            _log.info("job %s: another replica drives it now; leaving it", job_id)
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
        return message.replace(str(self._data_dir.resolve()), "<data-dir>")

    def _load(self, job: JobRecord) -> tuple[Spec, list[str]]:
        spec = self._resolver.stored(parse_spec(job.spec_yaml))
        if spec.spec_hash != job.spec_hash:
            raise _Abandoned("the stored spec no longer hashes to the job's spec_hash")
        for what, path in (("model", spec.model_path), ("tokenizer", spec.tokenizer_path)):
            if not path.is_file():
                raise _Abandoned(f"the {what} file {path.name} is no longer in the model store")
        texts = jobstore.get_inputs(self._store, job.id)
        if texts is None or len(texts) != job.input_count:
            raise _Abandoned("the job's stored inputs are not the ones it was created with")
        return spec, texts

    def _check_driver(self, job_id: str) -> None:
        if not jobstore.is_driver(self._store, job_id, self._replica):
            raise NotDriverError("this replica no longer drives the job")

    async def _execute(self, job: JobRecord, spec: Spec, texts: Sequence[str]) -> None:
        manifest = await self._runner.execute(job, spec, texts)
        self._check_driver(job.id)
        chunks = jobstore.chunk_commitments(self._store, job.id)
        if [chunk.index for chunk in chunks] != list(range(job.chunk_count)):
            raise RuntimeError(f"job {job.id}: the executor did not commit every chunk")
        input_root, output_root = commitment_roots(chunks)
        plan = resolve_sampling(spec.verification, job.chunk_count)
        sampled = plan.draw(input_root, output_root, job.nonce)  # only now: the roots are fixed
        with self._store.transaction() as conn:
            jobstore.mark_proving(conn, job.id, roots=(input_root.hex(), output_root.hex()),
                                  sampled=sampled, executor_env=manifest, now=utcnow(),
                                  driver=self._replica)
            self._runner.plan_replay(conn, job, spec, sampled)
        self._metrics.job_entered("PROVING")
        self._events.changed(job.id)

    async def _prove(self, job_id: str, spec: Spec, texts: Sequence[str]) -> None:
        job = jobstore.get_job(self._store, job_id)
        assert job is not None
        assert job.status == "PROVING"
        assert job.sampled is not None
        report = await self._runner.replay(job, spec, texts)
        self._check_driver(job.id)
        failed = [outcome for outcome in report.outcomes if not outcome.match]
        if failed:
            more = f" (and {len(failed) - 1} more chunks)" if len(failed) > 1 else ""
            self._end(job.id, "REFUNDED", "the independent replay disagreed with the executor: "
                                          f"{failed[0].detail}{more}")
            return
        self._settle(job, spec, jobstore.chunk_commitments(self._store, job.id), report)

    def _settle(self, job: JobRecord, spec: Spec, chunks: Sequence[ChunkCommitment],
                report: ReplayReport) -> None:
        assert job.input_root is not None  # both fixed by mark_proving, before the sample
        assert job.output_root is not None
        key = self._signer.current()
        replayer: dict[str, Any] = report.manifest
        body = build_receipt_body(
            spec=spec, kind="job", job_id=job.id, chunks=chunks, input_count=job.input_count,
            issuer_keyid=key.keyid, executor_environment=job.executor_env or {},
            replayer_environment=replayer,
            plan=resolve_sampling(spec.verification, job.chunk_count), nonce=job.nonce,
            replays=[ReplayRecord(o.index, o.output_commitment, o.match)
                     for o in report.outcomes],
            roots=(bytes.fromhex(job.input_root), bytes.fromhex(job.output_root)))
        receipt = sign_receipt(body, key)
        with self._store.transaction() as conn:
            jobstore.settle(conn, job.id, receipt, account_id=job.account_id, now=utcnow(),
                            driver=self._replica)
        self._metrics.job_entered("SETTLED")
        self._events.changed(job.id)
        _log.info("job %s settled: receipt %s", job.id, receipt["receipt_id"])

    def _end(self, job_id: str, status: Literal["FAILED", "REFUNDED"], error: str) -> None:
        with self._store.transaction() as conn:
            ended = jobstore.finish(conn, job_id, status, error, utcnow(), driver=self._replica)
        if not ended:
            return
        self._metrics.job_entered(status)
        self._events.changed(job_id)
        _log.info("job %s %s: %s", job_id, status, error)
