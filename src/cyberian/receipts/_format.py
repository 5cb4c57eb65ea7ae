"""Receipt format v1, shared by issuing and verification.

Constants, strict JSON parsing, the canonical body and its hash, and the
three roots rebuilt from receipt entries. Public names are re-exported by
:mod:`cyberian.receipts`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import rfc8785

from .. import merkle
from .._json import loads_json
from ..commitments import TAG_INPUT, TAG_OUTPUT, TAG_REPLAY, leaf_data, replay_commitment

RECEIPT_VERSION: Final = "1"
PAYLOAD_TYPE: Final = "application/vnd.cyberian.receipt.v1+json"
KINDS: Final = ("job", "vaas", "local")
EMPTY_ROOT: Final = hashlib.sha256(b"").hexdigest()
UNSIGNED_FIELDS: Final = ("receipt_hash", "signature")
MAX_SAFE_INTEGER: Final = 2**53 - 1

BODY_FIELDS: Final = (
    "version",
    "receipt_id",
    "job_id",
    "kind",
    "spec_hash",
    "model_sha256",
    "tokenizer_sha256",
    "chunk_size",
    "chunk_count",
    "input_count",
    "dimensions",
    "input_root",
    "output_root",
    "proof_root",
    "chunks",
    "sampling",
    "replays",
    "environment",
    "issued_at",
    "issuer",
    # aliases read by newer clients
    "inputs_root",
    "outputs_root",
    "verification_attestation",
    "executor_attestation_ids",
)
"""Every body field of format v1, in the order :func:`build_receipt_body` emits them."""

Tree = Literal["input", "output"]
"""The two chunk trees a receipt commits to."""

TREE_TAGS: Final[dict[Tree, bytes]] = {"input": TAG_INPUT, "output": TAG_OUTPUT}


def body_of(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """The signed body: every field except ``receipt_hash`` and ``signature``."""
    return {key: value for key, value in receipt.items() if key not in UNSIGNED_FIELDS}


def canonical_body(receipt: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of the body; ValueError if it is not representable."""
    try:
        data: bytes = rfc8785.dumps(body_of(receipt))
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"not representable as RFC 8785 JSON: {exc}") from None
    return data


def hash_canonical(canonical: bytes) -> str:
    """SHA-256 (hex) of an already canonical body: what ``receipt_hash`` must say."""
    return hashlib.sha256(canonical).hexdigest()


def compute_receipt_hash(receipt: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical body: what ``receipt_hash`` must say."""
    return hash_canonical(canonical_body(receipt))


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(f"integer {text[:24]} is outside the JSON-safe range (|n| < 2^53)")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:24]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_strict(data: str | bytes) -> Any:
    """JSON text (UTF-8) to Python, refusing duplicate keys, NaN/Infinity, unsafe numbers and
    nesting deeper than :data:`~cyberian._json.MAX_JSON_DEPTH`."""
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8: {exc}") from None
    try:
        return loads_json(
            data,
            object_pairs_hook=_unique_object,
            parse_int=_safe_int,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"not valid JSON: {exc}") from None


def parse_receipt(data: str | bytes) -> dict[str, Any]:
    """A receipt from JSON text; ValueError on duplicate keys, NaN, unsafe numbers, non-objects."""
    value = parse_json_strict(data)
    if not isinstance(value, dict):
        raise ValueError("a receipt must be a JSON object")
    return value


def merkle_root_hex(leaves: Iterable[bytes]) -> str:
    """Hex RFC 9162 root over leaf data."""
    return merkle.root(list(leaves)).hex()


def tree_root(chunks: Iterable[Mapping[str, Any]], tree: Tree) -> str:
    """Root (hex) of the ``input`` or ``output`` tree over receipt chunk entries."""
    field = f"{tree}_commitment"
    tag = TREE_TAGS[tree]
    return merkle_root_hex(leaf_data(tag, chunk["index"], chunk[field]) for chunk in chunks)


def replay_root(replays: Iterable[Mapping[str, Any]]) -> str:
    """``proof_root`` (hex) over receipt replay records, in their order."""
    return merkle_root_hex(
        leaf_data(
            TAG_REPLAY,
            record["index"],
            replay_commitment(record["index"], record["output_commitment"], record["match"]),
        )
        for record in replays
    )
