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
    # the re-execution was work done: it is charged (7 texts = 2 chunks of 4), no receipt
    assert body["charged_chunks"] == 2
    assert client.get("/account").json()["chunks_consumed_period"] == 2
    assert server.scalar("SELECT COUNT(*) FROM receipts WHERE account_id = ?", (account.id,)) == 0
    assert server.scalar("SELECT status FROM jobs WHERE account_id = ?", (account.id,)) == "FAILED"


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


def _manifest_of_class(spec: Spec, cpu_class: str) -> dict[str, Any]:
    manifest = dict(Prover(spec).manifest)
    manifest["cpu"] = {**manifest["cpu"], "class": cpu_class}
    return manifest


def test_a_claim_from_a_class_the_verifier_cannot_reproduce_is_409(server: LiveServer,
                                                                  tiny: Spec) -> None:
    from cyberian.environment import cpu_class

    inputs = texts(5, "class")
    other = "aarch64" if cpu_class() != "aarch64" else "x86_64-fma"
    account = server.account()
    client = server.client(account)
    response = client.post("/verify", json={
        "model": "tiny", "inputs": inputs,
        "claimed_output_commitment": commitment(rows_of(tiny, inputs)),
        "environment": _manifest_of_class(tiny, other)})
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "cpu_class_mismatch"
    assert (body["claimant_class"], body["verifier_class"]) == (other, cpu_class())
    assert other in body["message"]
    assert cpu_class() in body["message"]
    assert "send the claim to a verifier of class" in body["message"]
    assert client.get("/account").json()["chunks_consumed_period"] == 0
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == 0


def test_a_claim_from_this_class_or_its_legacy_name_is_checked_as_usual(server: LiveServer,
                                                                       tiny: Spec) -> None:
    from cyberian.environment import cpu_class, environment_manifest

    inputs = texts(5, "same class")
    claim = commitment(rows_of(tiny, inputs))
    client = server.client(server.account("enterprise"))
    legacy = {"x86_64-fma": "x86_64-avx2-fma", "x86_64-nofma": "x86_64-sse"}.get(cpu_class(),
                                                                                cpu_class())
    for manifest in (environment_manifest(engine_version="1.32.0"),
                     _manifest_of_class(tiny, legacy)):
        response = client.post("/verify", json={"model": "tiny", "inputs": inputs,
                                                "claimed_output_commitment": claim,
                                                "environment": manifest})
        assert response.status_code == 200, response.text
    wrong = client.post("/verify", json={"model": "tiny", "inputs": inputs,
                                         "claimed_output_commitment": "0" * 64,
                                         "environment": environment_manifest(
                                             engine_version="1.32.0")})
    assert wrong.status_code == 422


@pytest.mark.parametrize("environment", [{}, {"cpu": "x86"}, {"cpu": {"class": 7}},
                                         {"cpu": {"class": "x" * 65}}])
def test_a_malformed_environment_is_400_naming_the_field(server: LiveServer, tiny: Spec,
                                                         environment: dict[str, Any]) -> None:
    client = server.client(server.account())
    response = client.post("/verify", json={"model": "tiny", "inputs": ["a"],
                                            "claimed_output_commitment": "0" * 64,
                                            "environment": environment})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "environment.cpu.class"
    assert client.get("/account").json()["chunks_consumed_period"] == 0


def test_our_client_raises_cpu_class_mismatch(server: LiveServer, tiny: Spec) -> None:
    from cyberian.client import Client
    from cyberian.exceptions import ApiError, CpuClassMismatchError

    account = server.account()
    with Client(account.key, base_url=server.url) as client, \
            pytest.raises(CpuClassMismatchError) as refused:
        client.verify_outputs(model="tiny", inputs=["a", "b"],
                              claimed_output_commitment="0" * 64,
                              environment=_manifest_of_class(tiny, "riscv64"))
    assert isinstance(refused.value, ApiError)
    assert refused.value.status_code == 409
    assert refused.value.claimant_class == "riscv64"
