"""Verification as a Service: ``POST /verify`` re-executes the caller's batch and compares.

The caller ran inference itself and claims either one output commitment for
the whole output (one block of every input) or one per block of the spec's
``verification.vaas_block`` inputs (default 1000), in order. The server runs
every block in its executors (coalesced with other requests) and compares.
All equal: a signed ``vaas`` receipt -- its chunks are the blocks (so its
``chunk_size`` is the block size), every block was replayed (rate 1.0) by the
server, the executor is the caller (``{"party": "caller"}``) and the replayer
is the server. The first differing block: ``verification_failed``.

Quota: the request's billed chunks (the server's chunks of the model, see
:func:`~cyberian.server.model_resolver.billed_chunks`), reserved while the
request runs. They are consumed once the server has re-executed the batch:
on success with the receipt and the request row, in one transaction; on a
claim that does not match (``verification_failed``) with a FAILED request row
-- a re-execution is work done, or anyone could make the server compute
without limit. A request refused before any work stores and spends nothing.

CPU classes: a claim may carry the claimant's environment manifest. When its
CPU class is one this verifier's class does not reproduce
(:mod:`cyberian.cpuclass`), the claim is refused with 409 ``cpu_class_mismatch``
naming both classes -- before any quota or compute is spent -- instead of a
misleading ``verification_failed``. Claims without a manifest (the released
clients) are compared byte for byte as always. A spec that gives the same
bits on every class (the int8 spec: :func:`cyberian.models.recipes.cpu_independent`)
accepts a claim from any class.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, Protocol

from ..commitments import ChunkCommitment, chunk_count, is_commitment
from ..cpuclass import cpu_class, describe_class, normalise_class, reproduces
from ..models.recipes import cpu_independent
from ..receipts import ReplayRecord, build_receipt_body, sign_receipt
from ..sampling import new_nonce, resolve_sampling
from . import idempotency
from .auth import Principal
from .batching import VerifyBatcher
from .capacity import Capacity
from .errors import (
    CommitmentCountMismatchError,
    CpuClassMismatchError,
    VerificationFailedError,
    bad_request,
)
from .limits import RequestLimits
from .metrics import ServerMetrics
from .model_resolver import ModelResolver, Resolved, WorkBody
from .quotas import QuotaBook
from .signer import Signer
from .store import Store, StoreIntegrityError
from .store import jobs as jobstore
from .store import quota_holds as holds
from .timeutil import utcnow
from .workers.tasks import TaskFailed

__all__ = ["CALLER_ENVIRONMENT", "ROUTE", "VerifyBody", "VerifyService"]

ROUTE: Final = "POST /verify"
CALLER_ENVIRONMENT: Final = {"party": "caller"}


class VerifyBody(WorkBody, Protocol):
    """What a verify request carries: a job body plus one kind of claimed commitment."""

    claimed_output_commitment: str | None
    claimed_output_commitments: list[str] | None
    environment: dict[str, Any] | None


def _claims(body: VerifyBody, resolved: Resolved) -> tuple[list[str], int]:
    """The claimed commitments and the block size they cover; refused if malformed."""
    single, several = body.claimed_output_commitment, body.claimed_output_commitments
    if (single is None) == (several is None):
        raise bad_request("give exactly one of claimed_output_commitment (the whole output) "
                          "or claimed_output_commitments (one per block)")
    count = len(resolved.texts)
    if single is not None:
        claims, block, field = [single], count, "claimed_output_commitment"
    else:
        assert several is not None
        block = int(resolved.spec.verification["vaas_block"])
        expected = chunk_count(count, block)
        if len(several) != expected:
            raise CommitmentCountMismatchError(
                f"expected {expected} commitments (one per block of {block} inputs for "
                f"{count} inputs), got {len(several)}", expected=expected, got=len(several),
                block_size=block)
        claims, field = list(several), "claimed_output_commitments"
    normalised = [claim.lower() for claim in claims]
    for position, claim in enumerate(normalised):
        if not is_commitment(claim):
            where = field if single is not None else f"{field}[{position}]"
            raise bad_request(f"{where} must be a SHA-256 of 64 hex digits", field=where)
    return normalised, block


def _check_cpu_class(environment: dict[str, Any] | None, verifier_class: str, *,
                     any_class: bool) -> None:
    """Refuse a claim whose manifest names a CPU class this verifier does not reproduce.

    ``any_class``: the spec gives the same bits on every class (the int8 spec),
    so any well-formed class is accepted.
    """
    if environment is None:
        return  # released clients send none: compare bytes as before
    cpu = environment.get("cpu")
    claimed = cpu.get("class") if isinstance(cpu, dict) else None
    if not isinstance(claimed, str) or not 0 < len(claimed) <= 64:
        raise bad_request("environment.cpu.class must be the claimant's CPU class, a string "
                          "such as 'x86_64-fma'", field="environment.cpu.class")
    if any_class or reproduces(verifier_class, claimed):
        return
    claimant_class = normalise_class(claimed)
    raise CpuClassMismatchError(
        f"the claim was made on CPU class {claimant_class} and this verifier runs on "
        f"{verifier_class}, which does not reproduce it bit for bit "
        f"({describe_class(claimant_class)}; {describe_class(verifier_class)}): send the "
        f"claim to a verifier of class {claimant_class}, or prove again on a "
        f"{verifier_class} machine",
        claimant_class=claimant_class, verifier_class=verifier_class)


class VerifyService:
    """Runs VaaS requests: validation, quota, coalesced re-execution, receipts."""

    def __init__(self, *, store: Store, resolver: ModelResolver, quotas: QuotaBook,
                 batcher: VerifyBatcher, signer: Signer, capacity: Capacity,
                 limits: RequestLimits, metrics: ServerMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self._limits = limits
        self._resolver = resolver
        self._quotas = quotas
        self._batcher = batcher
        self._signer = signer
        self._capacity = capacity
        self._flights: idempotency.SingleFlight[dict[str, Any]] = idempotency.SingleFlight()

    async def verify(self, principal: Principal, body: VerifyBody,
                     key: str | None) -> dict[str, Any]:
        """The receipt for a verified request (or the one an identical earlier request got)."""
        account_id = principal.account.id
        self._limits.check(body)
        keyed = idempotency.keyed_request(account_id, ROUTE, key,
                                          body.model_dump(exclude_none=True))
        if keyed is None:
            return await self._verify(principal, body, None)
        earlier = keyed.earlier(self._store)
        if earlier is not None:
            receipt = jobstore.get_receipt(self._store, earlier.resource_id, account_id)
            assert receipt is not None
            return receipt
        return await self._flights.run(keyed.flight_key, keyed.request_sha256,
                                       lambda: self._verify(principal, body, keyed),
                                       keyed.key)

    async def _verify(self, principal: Principal, body: VerifyBody,
                      keyed: idempotency.KeyedRequest | None) -> dict[str, Any]:
        account = principal.account
        self._capacity.check()
        resolved = self._resolver.resolve(body, account.id)
        claims, block = _claims(body, resolved)
        _check_cpu_class(body.environment, cpu_class(),
                         any_class=cpu_independent(resolved.spec.model_sha256))
        billed = resolved.billed_chunks
        self._quotas.admit(account, input_count=len(resolved.texts),
                           chunk_count=resolved.chunk_count, billed_chunks=billed, now=utcnow())
        with self._capacity.vaas_slot(), self._quotas.hold(account, billed, utcnow()) as hold:
            try:
                computed = await self._batcher.commit(resolved.spec, resolved.texts, block)
            except TaskFailed as exc:
                if exc.internal:
                    raise
                raise bad_request(f"the model could not be run on these inputs: {exc.message}",
                                  field=exc.field or "model") from None
            self._metrics.executed("vaas", chunks=len(computed.blocks),
                                   texts=len(resolved.texts))
            for index, ((_, expected), claimed) in enumerate(
                    zip(computed.blocks, claims, strict=True)):
                if expected != claimed:
                    reason = f"block {index}: expected {expected}, claimed {claimed}"
                    self._charge_failure(account.id, resolved, reason, hold)
                    raise VerificationFailedError(
                        f"block {index} does not match: the server computed {expected}, "
                        f"you claimed {claimed}; the re-execution is charged "
                        f"({billed} chunks)",
                        reason=reason, block=index, expected=expected, claimed=claimed,
                        charged_chunks=billed)
            return self._issue(principal, resolved, computed.blocks, block, computed.manifest,
                               keyed, hold)

    def _charge_failure(self, account_id: str, resolved: Resolved, reason: str,
                        hold: str) -> None:
        """Store a FAILED request row: the re-execution of a claim that did not match."""
        with self._store.transaction() as conn:
            holds.drop_hold(conn, hold)
            jobstore.insert_job(
                conn, job_id=f"vaas_{uuid.uuid4().hex}", account_id=account_id, kind="vaas",
                status="FAILED", model_id=resolved.model_id, spec_hash=resolved.spec.spec_hash,
                spec_yaml=resolved.spec.to_yaml(portable=True), input_count=len(resolved.texts),
                chunk_count=resolved.chunk_count, billed_chunks=resolved.billed_chunks,
                nonce=new_nonce(), now=utcnow(), error=f"verification_failed: {reason}")

    def _issue(self, principal: Principal, resolved: Resolved,
               blocks: tuple[tuple[str, str], ...], block: int, manifest: dict[str, Any],
               keyed: idempotency.KeyedRequest | None, hold: str) -> dict[str, Any]:
        account_id = principal.account.id
        request_id = f"vaas_{uuid.uuid4().hex}"
        signing_key = self._signer.current()
        entries = [ChunkCommitment(index, inputs, outputs)
                   for index, (inputs, outputs) in enumerate(blocks)]
        nonce = new_nonce()
        body = build_receipt_body(
            spec=resolved.spec, kind="vaas", job_id=request_id, chunks=entries,
            input_count=len(resolved.texts), issuer_keyid=signing_key.keyid,
            executor_environment=CALLER_ENVIRONMENT, replayer_environment=manifest,
            plan=resolve_sampling({"sample_rate": 1.0}, len(entries)), nonce=nonce,
            replays=[ReplayRecord(entry.index, entry.output_commitment, True)
                     for entry in entries],
            chunk_size=block)
        receipt = sign_receipt(body, signing_key)
        now = utcnow()
        try:
            self._store_issued(receipt, account_id, resolved, request_id, nonce, keyed, hold,
                               now)
        except StoreIntegrityError:
            # a concurrent request with the same Idempotency-Key (on another replica) won:
            # nothing of this one was stored, and the caller gets that request's receipt
            earlier = keyed.earlier(self._store) if keyed is not None else None
            if earlier is None:
                raise
            stored = jobstore.get_receipt(self._store, earlier.resource_id, account_id)
            assert stored is not None
            return stored
        return receipt

    def _store_issued(self, receipt: dict[str, Any], account_id: str, resolved: Resolved,
                      request_id: str, nonce: bytes, keyed: idempotency.KeyedRequest | None,
                      hold: str, now: datetime) -> None:
        """Store the receipt, its log entry, the request row and the key record, and drop
        the hold, in one transaction."""
        with self._store.transaction() as conn:
            holds.drop_hold(conn, hold)
            jobstore.store_receipt(conn, receipt, account_id=account_id, now=now)
            jobstore.insert_job(
                conn, job_id=request_id, account_id=account_id, kind="vaas", status="SETTLED",
                model_id=resolved.model_id, spec_hash=resolved.spec.spec_hash,
                spec_yaml=resolved.spec.to_yaml(portable=True), input_count=len(resolved.texts),
                chunk_count=resolved.chunk_count, billed_chunks=resolved.billed_chunks,
                nonce=nonce, now=now, receipt_id=receipt["receipt_id"],
                chunks_done=resolved.chunk_count,
                roots=(receipt["input_root"], receipt["output_root"]))
            if keyed is not None:
                keyed.remember(conn, status_code=200, resource_id=receipt["receipt_id"],
                               now=now)
