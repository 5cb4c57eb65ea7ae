"""Issuing a receipt: the unsigned v1 body for a finished run, and its signature.

The body's fields are described in :mod:`cyberian.receipts`; the signature is
Ed25519 over the DSSE PAE of the canonical body (:func:`sign_receipt`).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..commitments import ChunkCommitment, chunk_count, commitment_bytes
from ..sampling import NONCE_BYTES, PROCEDURE, SamplingPlan, escape_estimates, sample_seed
from ..signing import ALG, SigningKey, pae
from ..spec import Spec
from ._format import (
    KINDS,
    PAYLOAD_TYPE,
    RECEIPT_VERSION,
    body_of,
    canonical_body,
    hash_canonical,
    replay_root,
    tree_root,
)

__all__ = [
    "ReplayRecord",
    "build_receipt_body",
    "commitment_roots",
    "sign_receipt",
]


@dataclass(frozen=True)
class ReplayRecord:
    """One independently replayed chunk: its index, replayed output commitment, and match."""

    index: int
    output_commitment: str
    match: bool

    def as_dict(self) -> dict[str, Any]:
        """The receipt form ``{index, output_commitment, match}``."""
        return {
            "index": self.index,
            "output_commitment": self.output_commitment,
            "match": self.match,
        }


Roots = tuple[bytes, bytes]
"""Raw ``(input_root, output_root)``, as :func:`commitment_roots` returns them."""


def _entry_roots(entries: Sequence[Mapping[str, Any]]) -> Roots:
    return bytes.fromhex(tree_root(entries, "input")), bytes.fromhex(tree_root(entries, "output"))


def commitment_roots(chunks: Sequence[ChunkCommitment]) -> Roots:
    """The raw ``(input_root, output_root)`` over these chunks (what the sample seed needs)."""
    return _entry_roots([chunk.as_dict() for chunk in chunks])


def _format_timestamp(issued_at: datetime | None) -> str:
    moment = datetime.now(UTC) if issued_at is None else issued_at
    if moment.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _require_covering_chunks(
    chunks: Sequence[ChunkCommitment], input_count: int, chunk_size: int
) -> None:
    for position, chunk in enumerate(chunks):
        if chunk.index != position:
            raise ValueError(f"chunk at position {position} has index {chunk.index}")
        commitment_bytes(chunk.input_commitment)
        commitment_bytes(chunk.output_commitment)
    if input_count < 1 or chunk_size < 1 or len(chunks) != chunk_count(input_count, chunk_size):
        raise ValueError(
            f"{len(chunks)} chunks do not cover {input_count} inputs in chunks of {chunk_size}"
        )


def _checked_roots(roots: Roots) -> Roots:
    if len(roots) != 2 or any(len(root) != 32 for root in roots):
        raise ValueError("roots must be the two 32-byte roots from commitment_roots(chunks)")
    return roots


def _sampling_section(
    kind: str,
    chunks: Sequence[ChunkCommitment],
    plan: SamplingPlan | None,
    nonce: bytes | None,
    replays: Sequence[ReplayRecord],
    roots: Roots,
) -> dict[str, Any]:
    n = len(chunks)
    if kind == "local":
        if plan is not None or nonce is not None or replays:
            raise ValueError("a local receipt has no sampling plan, nonce or replays")
        escape = [estimate.as_dict() for estimate in escape_estimates(0.0, 0, n)]
        return {
            "procedure": PROCEDURE,
            "rate": 0.0,
            "k": 0,
            "nonce": None,
            "seed": None,
            "indices": [],
            "auto": None,
            "escape": escape,
        }
    if plan is None or nonce is None:
        raise ValueError(f"a {kind} receipt needs a sampling plan and the nonce")
    if plan.chunk_count != n or len(nonce) != NONCE_BYTES:
        raise ValueError(f"plan must be for {n} chunks and the nonce {NONCE_BYTES} bytes")
    seed = sample_seed(*roots, nonce)
    indices = plan.draw(*roots, nonce)
    if [record.index for record in replays] != indices:
        raise ValueError(f"replays must cover exactly the sampled chunks {indices}, ascending")
    for record in replays:
        if not record.match or record.output_commitment != chunks[record.index].output_commitment:
            raise ValueError(f"chunk {record.index} did not replay to the same output; no receipt")
    return {
        "procedure": PROCEDURE,
        "rate": plan.rate,
        "k": plan.k,
        "nonce": nonce.hex(),
        "seed": seed.hex(),
        "indices": indices,
        "auto": plan.auto.as_dict() if plan.auto is not None else None,
        "escape": [estimate.as_dict() for estimate in plan.escape()],
    }


def build_receipt_body(
    *,
    spec: Spec,
    kind: str,
    job_id: str,
    chunks: Sequence[ChunkCommitment],
    input_count: int,
    issuer_keyid: str,
    executor_environment: Mapping[str, Any],
    replayer_environment: Mapping[str, Any] | None = None,
    plan: SamplingPlan | None = None,
    nonce: bytes | None = None,
    replays: Sequence[ReplayRecord] = (),
    chunk_size: int | None = None,
    receipt_id: str | None = None,
    issued_at: datetime | None = None,
    roots: Roots | None = None,
) -> dict[str, Any]:
    """The unsigned body of a receipt for a finished run (ValueError if inconsistent).

    ``chunk_size`` defaults to the spec's (a VaaS receipt passes its block
    size). A ``job`` / ``vaas`` receipt needs the sampling ``plan``, the
    ``nonce`` and one matching ``replays`` record per sampled chunk, plus the
    replayer's manifest; a ``local`` receipt has none of these. ``roots`` is
    the caller's ``commitment_roots(chunks)`` when it already has them (they
    are then not rebuilt; other roots give a receipt that fails verification).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not job_id:
        raise ValueError("job_id must not be empty")
    if kind != "local" and replayer_environment is None:
        raise ValueError(f"a {kind} receipt needs the replayer's environment manifest")
    size = spec.chunk_size if chunk_size is None else chunk_size
    _require_covering_chunks(chunks, input_count, size)
    entries = [chunk.as_dict() for chunk in chunks]
    raw_roots = _entry_roots(entries) if roots is None else _checked_roots(roots)
    sampling = _sampling_section(kind, chunks, plan, nonce, replays, raw_roots)
    input_root, output_root = raw_roots[0].hex(), raw_roots[1].hex()
    records = [record.as_dict() for record in replays]
    proof_root = replay_root(records)
    return {
        "version": RECEIPT_VERSION,
        "receipt_id": receipt_id or f"rcpt_{secrets.token_hex(16)}",
        "job_id": job_id,
        "kind": kind,
        "spec_hash": spec.spec_hash,
        "model_sha256": spec.model_sha256,
        "tokenizer_sha256": spec.tokenizer_sha256,
        "chunk_size": size,
        "chunk_count": len(chunks),
        "input_count": input_count,
        "dimensions": spec.dimensions,
        "input_root": input_root,
        "output_root": output_root,
        "proof_root": proof_root,
        "chunks": entries,
        "sampling": sampling,
        "replays": records,
        "environment": {
            "executor": dict(executor_environment),
            "replayer": dict(replayer_environment) if replayer_environment is not None else None,
        },
        "issued_at": _format_timestamp(issued_at),
        "issuer": {"keyid": issuer_keyid},
        "inputs_root": input_root,
        "outputs_root": output_root,
        "verification_attestation": proof_root,
        "executor_attestation_ids": [output_root],
    }


def sign_receipt(body: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """The signed receipt: ``body`` plus ``receipt_hash`` and ``signature`` (replacing any old)."""
    unsigned = body_of(body)
    issuer = unsigned.get("issuer")
    if not isinstance(issuer, Mapping) or issuer.get("keyid") != key.keyid:
        raise ValueError("issuer.keyid must name the signing key")
    canonical = canonical_body(unsigned)
    signature = key.sign(pae(PAYLOAD_TYPE, canonical))
    return {
        **unsigned,
        "receipt_hash": hash_canonical(canonical),
        "signature": {
            "alg": ALG,
            "keyid": key.keyid,
            "sig": base64.b64encode(signature).decode("ascii"),
        },
    }
