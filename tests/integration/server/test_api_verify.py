"""VaaS: POST /verify with one commitment or one per block, mismatches, refusals, quota."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
import yaml
from server_harness import LiveServer, texts

from cyberian.prover import Prover
from cyberian.receipts import verify_receipt
from cyberian.signing import parse_keys_document
from cyberian.spec import Spec


def commitment(rows: np.ndarray[Any, Any]) -> str:
    return hashlib.sha256(rows.astype("<f4").tobytes()).hexdigest()


def rows_of(spec: Spec, inputs: list[str]) -> np.ndarray[Any, Any]:
    embeddings = Prover(spec).prove(inputs).embeddings
    assert embeddings is not None
    return embeddings


def test_one_commitment_for_the_whole_output(server: LiveServer, tiny: Spec) -> None:
    inputs = texts(6, "vaas")
    account = server.account()
    client = server.client(account)
    claim = commitment(rows_of(tiny, inputs))
    response = client.post("/verify", json={"model": "tiny", "inputs": inputs,
                                            "claimed_output_commitment": claim.upper()})
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["kind"] == "vaas"
    assert receipt["chunk_size"] == 6
    assert receipt["chunk_count"] == 1
    assert receipt["chunks"][0]["output_commitment"] == claim
    assert receipt["sampling"]["rate"] == 1.0
    assert receipt["sampling"]["indices"] == [0]
    assert receipt["environment"]["executor"] == {"party": "caller"}
    assert receipt["environment"]["replayer"]["engine"]["name"] == "onnxruntime"
    verify_receipt(receipt, parse_keys_document(client.get("/keys").json()))
    assert client.get(f"/receipts/{receipt['receipt_id']}").json() == receipt
    assert client.get(f"/receipts/{receipt['receipt_id']}/verify").json()["valid"] is True
    # ceil(6 / chunk_size 4) = 2 chunks consumed
    assert client.get("/account").json()["chunks_consumed_period"] == 2
    # a VaaS request is not a job
    assert client.get(f"/jobs/{receipt['job_id']}").status_code == 404


def test_one_commitment_per_block(server: LiveServer, tiny_all: Spec) -> None:
    inputs = texts(8, "blocks")  # vaas_block 3: blocks of 3, 3, 2
    rows = rows_of(tiny_all, inputs)
    claims = [commitment(rows[i:i + 3]) for i in range(0, 8, 3)]
    client = server.client(server.account())
    response = client.post("/verify", json={"spec_yaml": _no_files(tiny_all),
                                            "input_texts": inputs,
                                            "claimed_output_commitments": claims})
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["chunk_size"] == 3
    assert [chunk["output_commitment"] for chunk in receipt["chunks"]] == claims
    assert receipt["sampling"]["indices"] == [0, 1, 2]
    assert [record["match"] for record in receipt["replays"]] == [True] * 3
    verify_receipt(receipt, parse_keys_document(client.get("/keys").json()), spec=tiny_all)


def _no_files(spec: Spec) -> str:
    return yaml.safe_dump(spec.hashed_document())


def test_first_differing_block_is_422(server: LiveServer, tiny_all: Spec) -> None:
    inputs = texts(7, "mismatch")
    rows = rows_of(tiny_all, inputs)
    claims = [commitment(rows[i:i + 3]) for i in range(0, 7, 3)]
    good = claims[1]
    claims[1] = "0" * 64
    claims[2] = "1" * 64
    account = server.account()
    client = server.client(account)
    response = client.post("/verify", json={"model": "tiny-all", "inputs": inputs,
                                            "claimed_output_commitments": claims})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "verification_failed"
    assert body["block"] == 1
    assert body["expected"] == good
    assert body["claimed"] == "0" * 64
    assert "block 1" in body["reason"]
    assert good in body["reason"]
    assert client.get("/account").json()["chunks_consumed_period"] == 0
    assert server.scalar("SELECT COUNT(*) FROM receipts WHERE account_id = ?", (account.id,)) == 0


def test_wrong_number_of_commitments_says_how_many(server: LiveServer) -> None:
    client = server.client(server.account())
    response = client.post("/verify", json={"model": "tiny-all", "inputs": texts(7),
                                            "claimed_output_commitments": ["0" * 64] * 2})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "commitment_count_mismatch"
    assert body["expected"] == 3
    assert body["got"] == 2
    assert "expected 3" in body["message"]


@pytest.mark.parametrize(("claims", "field"), [
    ({}, None),
    ({"claimed_output_commitment": "0" * 64, "claimed_output_commitments": ["0" * 64]}, None),
    ({"claimed_output_commitment": "xyz"}, "claimed_output_commitment"),
    ({"claimed_output_commitments": ["0" * 64, "0" * 63]}, "claimed_output_commitments[1]"),
])
def test_malformed_claims_are_400(server: LiveServer, claims: dict[str, Any],
                                  field: str | None) -> None:
    account = server.account()
    client = server.client(account)
    body = {"model": "tiny-all", "inputs": texts(4), **claims}
    response = client.post("/verify", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json().get("field") == field
    assert client.get("/account").json()["chunks_consumed_period"] == 0
