"""Jobs in both dialects: settle, results, output, receipts, FAILED, and every refusal."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from server_harness import LiveServer, texts, wait_settled

from cyberian.prover import Prover
from cyberian.receipts import verify_receipt
from cyberian.signing import parse_keys_document
from cyberian.spec import Spec


def spec_text(spec_path: Path, **replace: str) -> str:
    """The CES text of a catalog spec as a client sends it (no file paths)."""
    text = spec_path.read_text(encoding="utf-8")
    text = re.sub(r"^  file: .*\n", "", text, flags=re.MULTILINE)
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


def submit(server: LiveServer, client: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/jobs", json=body)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    assert job["status"] == "EXECUTING"
    assert response.headers["Location"] == f"/jobs/{job['id']}"
    return job


def test_model_dialect_settles_with_the_provers_bytes(server: LiveServer, tiny: Spec) -> None:
    inputs = texts(10)
    client = server.client(server.account())
    job = submit(server, client, {"model": "tiny", "inputs": inputs})
    assert job["chunk_count"] == 3
    assert "nonce" not in str(job)
    final = wait_settled(client, job["id"])
    assert final["status"] == "SETTLED"
    assert final["chunks_done"] == 3
    assert final["error"] is None
    output = client.get(f"/jobs/{job['id']}/output")
    assert output.headers["x-cyberian-shape"] == "10,32"
    assert output.headers["x-cyberian-dtype"] == "float32"
    assert output.headers["content-type"] == "application/octet-stream"
    expected = Prover(tiny).prove(inputs).embeddings
    assert expected is not None
    assert output.content == expected.astype("<f4").tobytes()
    receipt = client.get(f"/receipts/{final['receipt_id']}").json()
    assert receipt["job_id"] == job["id"]
    assert receipt["kind"] == "job"
    assert receipt["spec_hash"] == tiny.spec_hash
    assert receipt["output_root"] == final["output_root"]
    keys = parse_keys_document(client.get("/keys").json())
    verified = verify_receipt(receipt, keys, spec=tiny)
    assert verified.replayed
    report = client.get(f"/receipts/{final['receipt_id']}/verify").json()
    assert report == {"valid": True, "checks": dict.fromkeys(report["checks"], True),
                      "errors": []}
    assert set(report["checks"]) == {"receipt_hash", "input_root", "output_root", "proof_root",
                                     "signature"}
    assert hashlib.sha256(output.content).hexdigest() == Prover(tiny).prove(
        inputs).output_commitment


def test_results_show_every_chunk_and_the_sample(server: LiveServer) -> None:
    client = server.client(server.account())
    job = submit(server, client, {"model": "tiny", "inputs": texts(9)})
    final = wait_settled(client, job["id"])
    results = client.get(f"/jobs/{job['id']}/results").json()
    chunks = results["chunks"]
    assert [chunk["index"] for chunk in chunks] == [0, 1, 2]
    sampled = [chunk["index"] for chunk in chunks if chunk["sampled"]]
    receipt = client.get(f"/receipts/{final['receipt_id']}").json()
    assert sampled == receipt["sampling"]["indices"] == final["sampled_chunks"]
    assert len(sampled) == 2  # ceil(0.5 * 3)
    for chunk, committed in zip(chunks, receipt["chunks"], strict=True):
        assert chunk["input_commitment"] == committed["input_commitment"]
        assert chunk["output_commitment"] == committed["output_commitment"]
        assert chunk["status"] == ("VERIFIED" if chunk["sampled"] else "COMMITTED")
        assert chunk["replay_match"] == (True if chunk["sampled"] else None)
        # who executed and who replayed each chunk: the receipt's worker sessions
        assert chunk["executed_by"] == receipt["environment"]["executor"]["worker"]["session"]
        assert chunk["replayed_by"] == (
            receipt["environment"]["replayer"]["worker"]["session"] if chunk["sampled"] else None)
        assert chunk["executed_by"] != receipt["environment"]["replayer"]["worker"]["session"]


def test_spec_dialect_settles_and_ignores_file_paths(server: LiveServer, tiny: Spec,
                                                     catalog_dir: Path) -> None:
    text = spec_text(catalog_dir / "tiny.yaml").replace(
        "  sha256:", "  file: /etc/shadow\n  sha256:", 1)
    client = server.client(server.account())
    inputs = texts(5, "spec dialect")
    job = submit(server, client, {"spec_yaml": text, "input_texts": inputs})
    assert job["model"] is None
    assert job["spec_hash"] == tiny.spec_hash
    final = wait_settled(client, job["id"])
    assert final["status"] == "SETTLED"
    expected = Prover(tiny).prove(inputs).embeddings
    assert expected is not None
    assert client.get(f"/jobs/{job['id']}/output").content == expected.tobytes()


def test_execution_error_fails_the_job_and_refunds(server: LiveServer,
                                                   catalog_dir: Path) -> None:
    # (wrong dimensions used to be the example; they are refused before a job exists now)
    text = spec_text(catalog_dir / "tiny.yaml",
                     **{"output: last_hidden_state": "output: pooler_output"})
    account = server.account()
    client = server.client(account)
    job = submit(server, client, {"spec_yaml": text, "input_texts": texts(6)})
    final = wait_settled(client, job["id"])
    assert final["status"] == "FAILED"
    assert "pooler_output" in final["error"]  # the runtime names the missing output
    assert final["receipt_id"] is None
    refused = client.get(f"/jobs/{job['id']}/output")
    assert refused.status_code == 409
    assert refused.json()["error"] == "job_not_settled"
    assert client.get("/account").json()["chunks_consumed_period"] == 0
    assert server.scalar("SELECT COUNT(*) FROM chunks WHERE job_id = ? AND output IS NOT NULL",
                         (job["id"],)) == 0  # a failed job's rows are not kept


def _spec_errors(catalog_dir: Path) -> list[tuple[str, str]]:
    tiny = catalog_dir / "tiny.yaml"
    sha = re.search(r'model:\n  sha256: "([0-9a-f]{64})"',
                    spec_text(tiny)).group(1)  # type: ignore[union-attr]
    return [
        (spec_text(tiny, **{sha: "a" * 64}), "model.sha256"),
        (spec_text(tiny, **{'version: "1.32.0"': 'version: "1.31.0"'}), "runtime.version"),
        (spec_text(tiny, **{"pooling: mean": "pooling: mean\nsurprise: 1"}), "surprise"),
        (spec_text(tiny, **{"chunk_size: 4": "chunk_size: two"}), "chunking.chunk_size"),
        ("version: [unclosed", None),  # type: ignore[list-item]
    ]


def test_bad_specs_are_400_invalid_spec_naming_the_field(server: LiveServer,
                                                         catalog_dir: Path) -> None:
    account = server.account()
    client = server.client(account)
    before = server.scalar("SELECT COUNT(*) FROM job_inputs")
    for text, field in _spec_errors(catalog_dir):
        response = client.post("/jobs", json={"spec_yaml": text, "input_texts": ["a"]})
        assert response.status_code == 400, text
        body = response.json()
        assert body["error"] == "invalid_spec"
        assert body["field"] == field
        if field:
            assert field in body["message"]
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == 0
    assert server.scalar("SELECT COUNT(*) FROM job_inputs") == before


@pytest.mark.parametrize(("body", "field"), [
    ({"model": "tiny", "inputs": ["a"], "spec_yaml": "x", "input_texts": ["a"]}, None),
    ({}, None),
    ({"model": "tiny"}, "inputs"),
    ({"input_texts": ["a"]}, "spec_yaml"),
    ({"model": "tiny", "inputs": []}, "inputs"),
    ({"model": "no-such-model", "inputs": ["a"]}, "model"),
])
def test_bad_requests_are_400(server: LiveServer, body: dict[str, Any],
                              field: str | None) -> None:
    account = server.account()
    response = server.client(account).post("/jobs", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json().get("field") == field
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == 0


def test_wait_returns_at_once_for_a_finished_job(server: LiveServer) -> None:
    client = server.client(server.account())
    job = submit(server, client, {"model": "tiny", "inputs": ["one"]})
    final = wait_settled(client, job["id"])
    response = client.get(f"/jobs/{job['id']}/wait", params={"max_wait": 30}, timeout=5)
    assert response.json() == final
    assert client.get(f"/jobs/{job['id']}").json() == final
    for bad in ("-1", "soon", "nan"):
        refused = client.get(f"/jobs/{job['id']}/wait", params={"max_wait": bad})
        assert refused.status_code == 400
        assert refused.json()["field"] == "query.max_wait"


def test_unknown_ids_are_404(server: LiveServer) -> None:
    client = server.client(server.account())
    for path in ("/jobs/job_nope", "/jobs/job_nope/wait", "/jobs/job_nope/results",
                 "/jobs/job_nope/output", "/receipts/rcpt_nope", "/receipts/rcpt_nope/verify"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


def test_embeddings_do_not_depend_on_the_batch(server: LiveServer) -> None:
    client = server.client(server.account())
    inputs = texts(7, "batch")
    alone = submit(server, client, {"model": "tiny", "inputs": inputs[3:4]})
    together = submit(server, client, {"model": "tiny", "inputs": inputs})
    wait_settled(client, alone["id"])
    wait_settled(client, together["id"])
    one = np.frombuffer(client.get(f"/jobs/{alone['id']}/output").content, dtype="<f4")
    many = np.frombuffer(client.get(f"/jobs/{together['id']}/output").content,
                         dtype="<f4").reshape(7, 32)
    assert one.tobytes() == many[3].tobytes()
