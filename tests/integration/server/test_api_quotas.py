"""Quotas and limits: refusals spend nothing, day quota, request size, trial expiry, concurrency."""

from __future__ import annotations

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from server_harness import LiveServer, cli, texts, wait_settled


def _nothing_stored(server: LiveServer, account_id: str) -> None:
    for table in ("jobs", "receipts", "idempotency_keys", "models", "quota_holds"):
        count = server.scalar(f"SELECT COUNT(*) FROM {table} WHERE account_id = ?",
                              (account_id,))
        assert count == 0, table


def test_refused_requests_spend_nothing_and_leave_nothing(server: LiveServer) -> None:
    # A 422 is not a refusal: the server re-executed the batch and charges it
    # (test_api_verify.py::test_first_differing_block_is_422).
    account = server.account()
    client = server.client(account)
    inputs_before = server.scalar("SELECT COUNT(*) FROM job_inputs")
    refusals: list[tuple[str, dict[str, Any], int, str]] = [
        ("/jobs", {"model": "tiny", "inputs": texts(1001)}, 413, "request_too_large"),
        ("/jobs", {"model": "tiny", "inputs": texts(404)}, 413, "request_too_large"),
        ("/jobs", {"model": "nope", "inputs": ["a"]}, 400, "invalid_request"),
        ("/jobs", {"spec_yaml": "version: '1.0'", "input_texts": ["a"]}, 400, "invalid_spec"),
        ("/verify", {"model": "tiny-all", "inputs": texts(4),
                     "claimed_output_commitments": ["0" * 64]}, 400, "commitment_count_mismatch"),
        ("/verify", {"model": "tiny", "inputs": texts(1001), "claimed_output_commitment": "0" * 64},
         413, "request_too_large"),
    ]
    for path, body, status, code in refusals:
        response = client.post(path, json=body, headers={"Idempotency-Key": f"k-{path}-{status}"})
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["error"] == code
    usage = client.get("/account").json()
    assert usage["chunks_consumed_period"] == usage["chunks_consumed_today"] == 0
    _nothing_stored(server, account.id)
    assert server.scalar("SELECT COUNT(*) FROM job_inputs") == inputs_before


def test_day_quota_refuses_the_chunk_too_many(server: LiveServer) -> None:
    account = server.account()  # trial: 100 chunks per day, 100 per request
    client = server.client(account)
    job = client.post("/jobs", json={"model": "tiny", "inputs": texts(400)})
    assert job.status_code == 201
    assert job.json()["chunk_count"] == 100
    refused = client.post("/jobs", json={"model": "tiny", "inputs": ["one more"]})
    assert refused.status_code == 402
    body = refused.json()
    assert body["error"] == "quota_exceeded"
    assert body["window"] == "day"
    assert (body["limit"], body["used"], body["requested"]) == (100, 100, 1)
    vaas = client.post("/verify", json={"model": "tiny", "inputs": ["x"],
                                        "claimed_output_commitment": "0" * 64})
    assert vaas.status_code == 402
    assert wait_settled(client, job.json()["id"])["status"] == "SETTLED"
    usage = client.get("/account").json()
    assert (usage["chunks_consumed_period"], usage["chunks_consumed_today"]) == (100, 100)
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == 1


def test_expired_trial_falls_to_free_and_says_trial_expired(server: LiveServer) -> None:
    account = server.account()
    client = server.client(account)
    early = client.post("/jobs", json={"model": "tiny", "inputs": texts(4)}).json()
    wait_settled(client, early["id"])
    cli(server, "accounts", "update", account.id, "--trial-ends-at", "now")
    state = client.get("/account").json()
    assert state["tier"] == "trial"
    assert state["effective_tier"] == "free"
    assert state["subscription_status"] == "trial_expired"
    assert state["limits"]["max_chunks_per_request"] == 50
    assert state["chunks_consumed_period"] == 0  # the free period starts when the trial ends
    assert state["chunks_consumed_today"] == 1
    too_big = client.post("/jobs", json={"model": "tiny", "inputs": texts(204)})  # 51 chunks
    assert too_big.status_code == 402
    assert too_big.json()["error"] == "trial_expired"
    assert "free tier" in too_big.json()["message"]
    small = client.post("/jobs", json={"model": "tiny", "inputs": texts(2)})
    assert small.status_code == 201
    assert wait_settled(client, small.json()["id"])["status"] == "SETTLED"
    upload = client.post("/models/upload", content=b"onnx",
                         params={"name": "m", "output_dimensions": 32, "tokenizer": "tiny"})
    assert upload.status_code == 402
    assert upload.json()["error"] == "trial_expired"


def test_twenty_concurrent_clients_all_settle_with_exact_usage(server: LiveServer) -> None:
    account = server.account("enterprise")
    sizes = [1 + (i * 7) % 23 for i in range(20)]

    def one_client(size: int) -> dict[str, Any]:
        client = server.client(account)
        inputs = texts(size, f"client {size}")
        job = client.post("/jobs", json={"model": "tiny", "inputs": inputs}).json()
        final = wait_settled(client, job["id"], timeout=120)
        output = client.get(f"/jobs/{job['id']}/output").content
        receipt = client.get(f"/receipts/{final['receipt_id']}").json()
        check = client.get(f"/receipts/{final['receipt_id']}/verify").json()
        return {"final": final, "output": output, "receipt": receipt, "valid": check["valid"]}

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one_client, sizes))
    for size, result in zip(sizes, results, strict=True):
        assert result["final"]["status"] == "SETTLED"
        assert result["valid"] is True
        assert len(result["output"]) == size * 32 * 4
        assert result["receipt"]["input_count"] == size
    chunks = sum(math.ceil(size / 4) for size in sizes)
    usage = server.client(account).get("/account").json()
    assert usage["chunks_consumed_period"] == usage["chunks_consumed_today"] == chunks
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ? AND status = 'SETTLED'",
                         (account.id,)) == 20
    assert server.scalar("SELECT SUM(chunk_count) FROM jobs WHERE account_id = ?",
                         (account.id,)) == chunks
    assert server.scalar(
        "SELECT COUNT(*) FROM jobs j JOIN receipts r ON r.id = j.receipt_id "
        "WHERE j.account_id = ?", (account.id,)) == 20
    digests = {hashlib.sha256(result["output"]).hexdigest() for result in results}
    assert len(digests) == 20
