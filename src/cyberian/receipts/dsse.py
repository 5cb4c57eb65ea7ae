"""Receipts as standard DSSE envelopes: export (:func:`to_dsse`) and import (:func:`from_dsse`).

The envelope's payload is the receipt body's canonical JSON and its one
signature is the receipt's own (both sign the same DSSE PAE), so a receipt
round-trips unchanged.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ..exceptions import ReceiptVerificationError
from ..signing import ALG, b64decode_strict
from ._format import (
    PAYLOAD_TYPE,
    body_of,
    canonical_body,
    hash_canonical,
    parse_json_strict,
    parse_receipt,
)

__all__ = ["from_dsse", "to_dsse"]


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
    """The receipt inside a DSSE envelope (not yet verified: call ``verify_receipt``).

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
    return {**body, "receipt_hash": hash_canonical(payload), "signature": signature}
