"""Receipts (format v1): build, sign, DSSE export/import and offline verification.

A receipt is one JSON object: the *body* (every field but ``receipt_hash``
and ``signature``), ``receipt_hash`` = SHA-256 hex of the body's RFC 8785
canonical JSON, and ``signature`` = ``{"alg": "ed25519", "keyid", "sig"}``,
an Ed25519 signature (base64) over the DSSE PAE of :data:`PAYLOAD_TYPE` and
the same canonical bytes (design contract: RECEIPTS.md).

Body fields::

    version            "1"
    receipt_id         issuer-chosen id ("rcpt_" + 32 hex by default)
    job_id             job id, VaaS request id, or a local run's id
    kind               "job" | "vaas" | "local"
    spec_hash, model_sha256, tokenizer_sha256     64 hex each
    chunk_size         inputs per committed chunk (VaaS: per block)
    chunk_count        == len(chunks) == ceil(input_count / chunk_size)
    input_count, dimensions
    input_root, output_root, proof_root           64 hex each (RFC 9162 roots)
    chunks             [{index, input_commitment, output_commitment}], index == position
    sampling           {procedure, rate, k, nonce, seed, indices, auto, escape}
                       (see cyberian.sampling; local: rate 0, k 0, nonce/seed/auto
                       null, no indices, escape probabilities 1)
    replays            [{index, output_commitment (replayed), match}], one per
                       sampled index, ascending; empty for local
    environment        {executor: manifest, replayer: manifest | null (local only)}
    issued_at          RFC 3339 UTC, "Z" suffix
    issuer             {keyid}
    inputs_root        alias of input_root
    outputs_root       alias of output_root
    verification_attestation   alias of proof_root: the root over the
                       independent replayer's records, i.e. what was verified
    executor_attestation_ids   [output_root]: the executor's one attestation,
                       its committed output root

Floats appear only in ``sampling.rate``, ``sampling.auto`` (except
``deterrent``) and ``sampling.escape`` (except ``faked_chunks``), and
anywhere inside the opaque environment manifests; every other number is an
integer below 2^53. A key inside a receipt is never trusted: only the keys
passed to the verifier count.
"""

from __future__ import annotations

import base64
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .. import merkle
from ..commitments import ChunkCommitment, commitment_bytes, leaf_data
from ..exceptions import MerkleProofError, ReceiptVerificationError
from ..sampling import NONCE_BYTES, PROCEDURE, SamplingPlan, escape_estimates, sample_seed
from ..signing import ALG, SigningKey, b64decode_strict, pae
from ..spec import Spec
from ._format import (
    BODY_FIELDS,
    EMPTY_ROOT,
    KINDS,
    PAYLOAD_TYPE,
    RECEIPT_VERSION,
    TREE_TAGS,
    body_of,
    canonical_body,
    compute_receipt_hash,
    parse_json_strict,
    replay_root,
    tree_root,
)
from .verify import (
    CHECKS,
    REPORT_CHECKS,
    CheckResult,
    TrustedKeys,
    VerifiedReceipt,
    check_receipt,
    verification_report,
    verify_receipt,
)

__all__ = [
    "BODY_FIELDS",
    "CHECKS",
    "EMPTY_ROOT",
    "KINDS",
    "PAYLOAD_TYPE",
    "RECEIPT_VERSION",
    "REPORT_CHECKS",
    "CheckResult",
    "ReplayRecord",
    "TrustedKeys",
    "VerifiedReceipt",
    "build_receipt_body",
    "canonical_body",
    "check_receipt",
    "chunk_inclusion_proof",
    "commitment_roots",
    "compute_receipt_hash",
    "from_dsse",
    "parse_receipt",
    "sign_receipt",
    "to_dsse",
    "verification_report",
    "verify_chunk_inclusion",
    "verify_receipt",
]

Tree = Literal["input", "output"]


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


def parse_receipt(data: str | bytes) -> dict[str, Any]:
    """A receipt from JSON text; ValueError on duplicate keys, NaN, unsafe numbers, non-objects."""
    value = parse_json_strict(data)
    if not isinstance(value, dict):
        raise ValueError("a receipt must be a JSON object")
    return value


def commitment_roots(chunks: Sequence[ChunkCommitment]) -> tuple[bytes, bytes]:
    """The raw ``(input_root, output_root)`` over these chunks (what the sample seed needs)."""
    entries = [chunk.as_dict() for chunk in chunks]
    return bytes.fromhex(tree_root(entries, "input")), bytes.fromhex(tree_root(entries, "output"))


def _timestamp(issued_at: datetime | None) -> str:
    moment = datetime.now(UTC) if issued_at is None else issued_at
    if moment.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_chunks(chunks: Sequence[ChunkCommitment], input_count: int, chunk_size: int) -> None:
    for position, chunk in enumerate(chunks):
        if chunk.index != position:
            raise ValueError(f"chunk at position {position} has index {chunk.index}")
        commitment_bytes(chunk.input_commitment)
        commitment_bytes(chunk.output_commitment)
    if input_count < 1 or chunk_size < 1 or len(chunks) != math.ceil(input_count / chunk_size):
        raise ValueError(
            f"{len(chunks)} chunks do not cover {input_count} inputs in chunks of {chunk_size}"
        )


def _sampling_section(
    kind: str,
    chunks: Sequence[ChunkCommitment],
    plan: SamplingPlan | None,
    nonce: bytes | None,
    replays: Sequence[ReplayRecord],
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
    input_root, output_root = commitment_roots(chunks)
    seed = sample_seed(input_root, output_root, nonce)
    indices = plan.draw(input_root, output_root, nonce)
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
) -> dict[str, Any]:
    """The unsigned body of a receipt for a finished run (ValueError if inconsistent).

    ``chunk_size`` defaults to the spec's (a VaaS receipt passes its block
    size). A ``job`` / ``vaas`` receipt needs the sampling ``plan``, the
    ``nonce`` and one matching ``replays`` record per sampled chunk, plus the
    replayer's manifest; a ``local`` receipt has none of these.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not job_id:
        raise ValueError("job_id must not be empty")
    if kind != "local" and replayer_environment is None:
        raise ValueError(f"a {kind} receipt needs the replayer's environment manifest")
    size = spec.chunk_size if chunk_size is None else chunk_size
    _check_chunks(chunks, input_count, size)
    sampling = _sampling_section(kind, chunks, plan, nonce, replays)
    entries = [chunk.as_dict() for chunk in chunks]
    records = [record.as_dict() for record in replays]
    input_root, output_root = tree_root(entries, "input"), tree_root(entries, "output")
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
        "issued_at": _timestamp(issued_at),
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
        "receipt_hash": compute_receipt_hash(unsigned),
        "signature": {
            "alg": ALG,
            "keyid": key.keyid,
            "sig": base64.b64encode(signature).decode("ascii"),
        },
    }


def to_dsse(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """The receipt as a standard DSSE envelope ``{payloadType, payload, signatures}``."""
    signature = receipt.get("signature")
    if not isinstance(signature, Mapping) or not {"keyid", "sig"} <= signature.keys():
        raise ValueError("the receipt has no signature to export")
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(canonical_body(receipt)).decode("ascii"),
        "signatures": [{"keyid": signature["keyid"], "sig": signature["sig"]}],
    }


def from_dsse(envelope: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    """The receipt inside a DSSE envelope (not yet verified: call :func:`verify_receipt`).

    Raises :class:`ReceiptVerificationError` (``format`` / ``signature``) when
    the envelope is malformed, its payload is not canonical JSON, or it does
    not carry exactly one signature.
    """
    try:
        value = parse_json_strict(envelope) if isinstance(envelope, str | bytes) else envelope
        if not isinstance(value, Mapping) or set(value) != {"payloadType", "payload", "signatures"}:
            raise ValueError("a DSSE envelope has exactly payloadType, payload, signatures")
        if value["payloadType"] != PAYLOAD_TYPE:
            raise ValueError(f"payloadType must be {PAYLOAD_TYPE}")
        payload = b64decode_strict(value["payload"])
        body = parse_receipt(payload)
        if canonical_body(body) != payload or set(body) != set(body_of(body)):
            raise ValueError("the payload is not the canonical JSON of a receipt body")
    except ValueError as exc:
        raise ReceiptVerificationError({"format": str(exc)}) from None
    signatures = value["signatures"]
    if (
        not isinstance(signatures, list)
        or len(signatures) != 1
        or not isinstance(signatures[0], Mapping)
        or set(signatures[0]) != {"keyid", "sig"}
    ):
        raise ReceiptVerificationError(
            {"signature": "a receipt envelope carries exactly one {keyid, sig} signature"}
        )
    signature = {"alg": ALG, "keyid": signatures[0]["keyid"], "sig": signatures[0]["sig"]}
    return {**body, "receipt_hash": compute_receipt_hash(body), "signature": signature}


def chunk_inclusion_proof(receipt: Mapping[str, Any], index: int, tree: Tree) -> list[str]:
    """The hex inclusion proof of chunk ``index`` in the receipt's ``input`` or ``output`` tree."""
    leaves = [
        leaf_data(TREE_TAGS[tree], chunk["index"], chunk[f"{tree}_commitment"])
        for chunk in receipt["chunks"]
    ]
    return [node.hex() for node in merkle.inclusion_proof(leaves, index)]


def verify_chunk_inclusion(
    commitment: str,
    index: int,
    chunk_count: int,
    proof: Sequence[str],
    root: str,
    *,
    tree: Tree,
) -> None:
    """Check that ``commitment`` is chunk ``index`` of the ``tree`` with hex ``root``.

    Returns ``None``; raises :class:`MerkleProofError` on any failure. A
    proof from one tree never verifies against another: leaves are tagged.
    """
    try:
        leaf = leaf_data(TREE_TAGS[tree], index, commitment)
        nodes = [bytes.fromhex(node) for node in proof]
        expected = bytes.fromhex(root)
    except (KeyError, ValueError, TypeError) as exc:
        raise MerkleProofError(f"malformed chunk proof: {exc}") from None
    merkle.verify_inclusion(merkle.leaf_hash(leaf), index, chunk_count, nodes, expected)
