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

This package is the public surface; its modules own one job each:
:mod:`~cyberian.receipts.build` (body and signature),
:mod:`~cyberian.receipts.dsse` (DSSE envelope export and import),
:mod:`~cyberian.receipts.inclusion` (per-chunk Merkle inclusion proofs),
:mod:`~cyberian.receipts.verify` (offline verification),
:mod:`~cyberian.receipts.rows` (whether output rows are the ones committed to) and
:mod:`~cyberian.receipts.audit` (the browser audit page, not re-exported). The private
``_format`` (v1 constants, strict JSON, canonical body, roots), ``_fields``
(field validators, ``format`` checks) and ``_checks`` (the other checks)
are internals.
"""

from __future__ import annotations

from ._format import (
    BODY_FIELDS,
    EMPTY_ROOT,
    KINDS,
    PAYLOAD_TYPE,
    RECEIPT_VERSION,
    canonical_body,
    compute_receipt_hash,
    parse_receipt,
)
from .build import ReplayRecord, build_receipt_body, commitment_roots, sign_receipt
from .dsse import from_dsse, to_dsse
from .inclusion import chunk_inclusion_proof, verify_chunk_inclusion
from .rows import check_embeddings
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
    "check_embeddings",
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
