"""Builders shared by the receipt tests: a spec, chunk commitments, signed receipts, re-signing.

The helpers that recompute roots do it from merkle + commitments directly,
not through the receipts module, so tests stay independent of the code under test.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from cyberian import merkle
from cyberian.commitments import TAG_REPLAY, ChunkCommitment, leaf_data, replay_commitment
from cyberian.exceptions import ReceiptVerificationError
from cyberian.receipts import (
    ReplayRecord,
    build_receipt_body,
    commitment_roots,
    sign_receipt,
    verify_receipt,
)
from cyberian.sampling import resolve_sampling
from cyberian.signing import PublicKey, SigningKey
from cyberian.spec import Spec, parse_spec

ISSUED_AT = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)
NONCE = bytes(range(32))


def make_spec(*, chunk_size: int = 4, verification: str = "{sample_rate: 0.25}") -> Spec:
    """A small valid spec (hash pins only, never opened)."""
    return parse_spec(
        f"""
version: "1.0"
name: test-model
model: {{sha256: "{"a" * 64}"}}
tokenizer: {{sha256: "{"b" * 64}"}}
output: {{dimensions: 8}}
runtime: {{version: "1.32.0"}}
chunking: {{chunk_size: {chunk_size}}}
verification: {verification}
"""
    )


def make_chunks(count: int, salt: str = "") -> list[ChunkCommitment]:
    """``count`` chunk commitments with distinct, deterministic contents."""
    return [
        ChunkCommitment(
            i,
            hashlib.sha256(f"in{salt}{i}".encode()).hexdigest(),
            hashlib.sha256(f"out{salt}{i}".encode()).hexdigest(),
        )
        for i in range(count)
    ]


def make_body(
    key: SigningKey,
    *,
    kind: str = "job",
    chunk_count: int = 8,
    input_count: int | None = None,
    spec: Spec | None = None,
    nonce: bytes = NONCE,
) -> dict[str, Any]:
    """An unsigned, consistent receipt body: executor run, sample drawn, replays all matching."""
    spec = spec or make_spec()
    chunks = make_chunks(chunk_count)
    inputs = input_count if input_count is not None else chunk_count * spec.chunk_size - 1
    common: dict[str, Any] = {
        "spec": spec,
        "kind": kind,
        "job_id": f"{kind}-1",
        "chunks": chunks,
        "input_count": inputs,
        "issuer_keyid": key.keyid,
        "executor_environment": {"cpu": "test-cpu", "onnxruntime": "1.32.0", "load": 0.5},
        "issued_at": ISSUED_AT,
        "receipt_id": f"rcpt_{kind}",
    }
    if kind == "local":
        return build_receipt_body(**common)
    plan = resolve_sampling(spec.verification, len(chunks))
    input_root, output_root = commitment_roots(chunks)
    indices = plan.draw(input_root, output_root, nonce)
    replays = [ReplayRecord(i, chunks[i].output_commitment, True) for i in indices]
    return build_receipt_body(
        **common,
        replayer_environment={"cpu": "other-cpu", "process": "replayer"},
        plan=plan,
        nonce=nonce,
        replays=replays,
    )


def make_receipt(key: SigningKey, **options: Any) -> dict[str, Any]:
    """A signed, valid receipt (see :func:`make_body` for the options)."""
    return sign_receipt(make_body(key, **options), key)


def resign(receipt: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """Recompute receipt_hash and signature with ``key``: what a malicious key holder can do."""
    return sign_receipt(copy.deepcopy(dict(receipt)), key)


def proof_root_of(replays: list[dict[str, Any]]) -> str:
    """proof_root over replay records, computed from merkle + commitments directly."""
    leaves = [
        leaf_data(
            TAG_REPLAY,
            r["index"],
            replay_commitment(r["index"], r["output_commitment"], r["match"]),
        )
        for r in replays
    ]
    return merkle.root(leaves).hex()


def set_proof_root(body: dict[str, Any]) -> None:
    """Make proof_root and its alias consistent with the (edited) replay records."""
    body["proof_root"] = body["verification_attestation"] = proof_root_of(body["replays"])


def rejected(
    receipt: Mapping[str, Any] | str | bytes, keys: PublicKey | list[PublicKey]
) -> dict[str, str]:
    """The failed checks (name -> reason) of a receipt that must not verify."""
    with pytest.raises(ReceiptVerificationError) as info:
        verify_receipt(receipt, keys)
    assert info.value.failed, "a rejection must name at least one check"
    return info.value.failed
