"""Idempotency-Key on POST /jobs and POST /verify: same key + body, same result, one charge."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from server_harness import LiveServer, texts, wait_settled

from cyberian.prover import Prover
from cyberian.spec import Spec


def test_same_key_and_body_is_the_same_job(server: LiveServer) -> None:
    account = server.account()
    client = server.client(account)
    body = {"model": "tiny", "inputs": texts(8)}
    headers = {"Idempotency-Key": "job-key-1"}
    first = client.post("/jobs", json=body, headers=headers)
    assert first.status_code == 201
    job_id = first.json()["id"]
    wait_settled(client, job_id)
    reordered = {"inputs": body["inputs"], "model": "tiny"}  # key order does not matter
    second = client.post("/jobs", json=reordered, headers=headers)
    assert second.status_code == 201
    assert second.json()["id"] == job_id
    assert second.json()["status"] == "SETTLED"
    assert client.get("/account").json()["chunks_consumed_period"] == 2
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == 1


def test_same_key_other_body_is_409(server: LiveServer) -> None:
    account = server.account()
    client = server.client(account)
    headers = {"Idempotency-Key": "job-key-2"}
    assert client.post("/jobs", json={"model": "tiny", "inputs": ["a"]},
                       headers=headers).status_code == 201
    clash = client.post("/jobs", json={"model": "tiny", "inputs": ["b"]}, headers=headers)
    assert clash.status_code == 409
    assert clash.json()["error"] == "idempotency_key_reused"
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == 1


def test_keys_are_per_account_and_refusals_store_nothing(server: LiveServer) -> None:
    alice, bob = server.account(), server.account()
    headers = {"Idempotency-Key": "shared-key"}
    refused = server.client(alice).post("/jobs", json={"model": "nope", "inputs": ["a"]},
                                        headers=headers)
    assert refused.status_code == 400
    retried = server.client(alice).post("/jobs", json={"model": "tiny", "inputs": ["a"]},
                                        headers=headers)
    assert retried.status_code == 201
    other = server.client(bob).post("/jobs", json={"model": "tiny", "inputs": ["a"]},
                                    headers=headers)
    assert other.status_code == 201
    assert other.json()["id"] != retried.json()["id"]
    bad = server.client(bob).post("/jobs", json={"model": "tiny", "inputs": ["a"]},
                                  headers={"Idempotency-Key": "x" * 256})
    assert bad.status_code == 400


def test_verify_is_idempotent_even_when_concurrent(server: LiveServer, tiny: Spec) -> None:
    account = server.account()
    client = server.client(account)
    inputs = texts(5, "idem vaas")
    embeddings = Prover(tiny).prove(inputs).embeddings
    assert embeddings is not None
    body = {"model": "tiny", "inputs": inputs,
            "claimed_output_commitment": hashlib.sha256(embeddings.tobytes()).hexdigest()}
    headers = {"Idempotency-Key": "vaas-key"}
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: client.post("/verify", json=body, headers=headers),
                                  range(4)))
    assert [response.status_code for response in responses] == [200] * 4
    assert len({response.json()["receipt_id"] for response in responses}) == 1
    later = client.post("/verify", json=body, headers=headers)
    assert later.json() == responses[0].json()
    assert client.get("/account").json()["chunks_consumed_period"] == 2
    assert server.scalar("SELECT COUNT(*) FROM receipts WHERE account_id = ?", (account.id,)) == 1
    clash = client.post("/verify", json={**body, "inputs": inputs[:4]}, headers=headers)
    assert clash.status_code == 409
