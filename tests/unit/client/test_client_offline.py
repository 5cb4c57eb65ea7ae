"""verify_receipt_offline: keys from /keys (or given), then cyberian.receipts checks the receipt."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from client_fakes import Harness, Twin, reply

from cyberian.commitments import ChunkCommitment, input_commitment, output_commitment
from cyberian.exceptions import ApiError, ReceiptVerificationError
from cyberian.receipts import VerifiedReceipt, build_receipt_body, sign_receipt
from cyberian.signing import SigningKey, generate_signing_key, keys_document
from cyberian.spec import parse_spec

SPEC = f"""
version: "1.0"
name: tiny
model: {{sha256: "{"a" * 64}"}}
tokenizer: {{sha256: "{"b" * 64}"}}
output: {{dimensions: 2}}
runtime: {{version: "1.32.0"}}
"""


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def receipt(key: SigningKey) -> dict[str, Any]:
    rows = np.array([[0.25, -1.0], [2.0, 0.5]], dtype=np.float32)
    chunks = [ChunkCommitment(0, input_commitment(["a", "b"]), output_commitment(rows))]
    body = build_receipt_body(
        spec=parse_spec(SPEC),
        kind="local",
        job_id="run-1",
        chunks=chunks,
        input_count=2,
        issuer_keyid=key.keyid,
        executor_environment={"os": "test"},
    )
    return sign_receipt(body, key)


class _Offline(Twin):
    def test_fetches_the_servers_keys_when_none_given(
        self, h: Harness, key: SigningKey, receipt: dict[str, Any]
    ) -> None:
        h.server.add("GET", "/keys", reply(json=keys_document([key.public_key])))
        verified = h.call("verify_receipt_offline", receipt)
        assert isinstance(verified, VerifiedReceipt)
        assert verified.keyid == key.keyid
        assert verified.receipt == receipt
        assert h.server.paths() == ["GET /keys"]
        assert "authorization" not in h.last.headers

    def test_given_keys_mean_no_request(
        self, h: Harness, key: SigningKey, receipt: dict[str, Any]
    ) -> None:
        verified = h.call("verify_receipt_offline", json.dumps(receipt), keys=[key.public_key])
        assert verified.keyid == key.keyid
        assert h.sent == []

    def test_tampered_receipt_fails(
        self, h: Harness, key: SigningKey, receipt: dict[str, Any]
    ) -> None:
        forged = {**receipt, "input_count": 3}
        with pytest.raises(ReceiptVerificationError) as info:
            h.call("verify_receipt_offline", forged, keys={key.keyid: key.public_key})
        assert "receipt_hash" in info.value.failed

    def test_receipt_by_a_key_the_server_does_not_list_fails(
        self, h: Harness, receipt: dict[str, Any]
    ) -> None:
        other = generate_signing_key()
        h.server.add("GET", "/keys", reply(json=keys_document([other.public_key])))
        with pytest.raises(ReceiptVerificationError) as info:
            h.call("verify_receipt_offline", receipt)
        assert "signature" in info.value.failed

    def test_unusable_keys_document_is_an_api_error(
        self, h: Harness, receipt: dict[str, Any]
    ) -> None:
        h.server.add("GET", "/keys", reply(json={"keys": []}))
        with pytest.raises(ApiError, match="/keys document is unusable") as info:
            h.call("verify_receipt_offline", receipt)
        assert info.value.body == {"keys": []}


class TestOfflineSync(_Offline):
    mode = "sync"


class TestOfflineAsync(_Offline):
    mode = "async"
