"""Jobs in flight, on a server whose executor and replayer are slowed down (test-only hook).

Long polls that return on a status change, output before settlement,
deleting a model a running job uses, the bounded queue, and finally
``kill -9`` mid-job followed by a restart that resumes every open job.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_harness import Account, LiveServer, running_server, texts, wait_settled

from cyberian.models.tiny import build_tiny_model
from cyberian.receipts import verify_receipt
from cyberian.signing import parse_keys_document

DELAY = 0.1  # seconds per chunk, in the executor and in the replayer


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("slow"), catalog_dir,
                        args=("--workers", "1", "--queue-size", "3"),
                        env={"CYBERIAN_FAULT_INJECTION": f"slow-chunk:{DELAY}"}) as live:
        yield live


@pytest.fixture
def account(slow: LiveServer) -> Account:
    return slow.account("enterprise")


def _status(client: object, job_id: str) -> dict[str, object]:
    return client.get(f"/jobs/{job_id}").json()  # type: ignore[attr-defined, no-any-return]


def test_wait_returns_when_the_status_changes(slow: LiveServer, account: Account) -> None:
    client = slow.client(account)
    job = client.post("/jobs", json={"model": "tiny", "inputs": texts(40)}).json()  # 10 chunks
    started = time.monotonic()
    short = client.get(f"/jobs/{job['id']}/wait", params={"max_wait": 0.3}).json()
    assert short["status"] == "EXECUTING"
    assert 0.25 <= time.monotonic() - started < 3
    changed = client.get(f"/jobs/{job['id']}/wait", params={"max_wait": 25}).json()
    assert changed["status"] == "PROVING"
    assert time.monotonic() - started < 10
    assert wait_settled(client, job["id"])["status"] == "SETTLED"


def test_output_is_409_until_settled(slow: LiveServer, account: Account) -> None:
    client = slow.client(account)
    job = client.post("/jobs", json={"model": "tiny", "inputs": texts(20)}).json()
    early = client.get(f"/jobs/{job['id']}/output")
    assert early.status_code == 409
    assert early.json()["error"] == "job_not_settled"
    results = client.get(f"/jobs/{job['id']}/results").json()["chunks"]
    assert {chunk["status"] for chunk in results} == {"PENDING"}
    wait_settled(client, job["id"])
    assert client.get(f"/jobs/{job['id']}/output").status_code == 200


def test_a_model_in_use_cannot_be_deleted(slow: LiveServer, account: Account,
                                          tmp_path: Path) -> None:
    client = slow.client(account)
    model = build_tiny_model(tmp_path, seed=4).model_path.read_bytes()
    model_id = client.post("/models/upload", content=model, params={
        "name": "busy", "output_dimensions": 32, "tokenizer": "tiny"}).json()["model_id"]
    job = client.post("/jobs", json={"model": model_id, "inputs": texts(20)}).json()
    refused = client.delete(f"/models/{model_id}")
    assert refused.status_code == 409
    assert refused.json()["error"] == "model_in_use"
    assert refused.json()["job_id"] == job["id"]
    assert wait_settled(client, job["id"])["status"] == "SETTLED"
    assert client.delete(f"/models/{model_id}").status_code == 204


def test_a_full_queue_is_503_with_retry_after(slow: LiveServer, account: Account) -> None:
    client = slow.client(account)
    bodies = [{"model": "tiny", "inputs": texts(16, f"q{i}")} for i in range(3)]
    jobs = [client.post("/jobs", json=body, headers={"Idempotency-Key": f"queue-{i}"}).json()
            for i, body in enumerate(bodies)]
    for path, body in (("/jobs", {"model": "tiny", "inputs": ["one"]}),
                       ("/verify", {"model": "tiny", "inputs": ["one"],
                                    "claimed_output_commitment": "0" * 64})):
        busy = client.post(path, json=body)
        assert busy.status_code == 503, path
        assert busy.json()["error"] == "service_busy"
        assert int(busy.headers["Retry-After"]) == busy.json()["retry_after_sec"] >= 1
    # a replay of accepted work is never refused
    replay = client.post("/jobs", json=bodies[0], headers={"Idempotency-Key": "queue-0"})
    assert replay.status_code == 201
    assert replay.json()["id"] == jobs[0]["id"]
    for job in jobs:
        assert wait_settled(client, job["id"])["status"] == "SETTLED"
    assert client.post("/jobs", json={"model": "tiny", "inputs": ["one"]}).status_code == 201


def _worker_pids(log: str) -> list[int]:
    match = re.findall(r"worker pool ready: executors \[([\d, ]+)\], replayer (\d+)", log)[-1]
    return [int(pid) for pid in match[0].split(",")] + [int(match[1])]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def test_kill_9_mid_job_then_restart_resumes_everything(slow: LiveServer,
                                                        account: Account) -> None:
    client = slow.client(account)
    proving = client.post("/jobs", json={"model": "tiny", "inputs": texts(80, "p")}).json()
    deadline = time.monotonic() + 30
    while (state := _status(client, proving["id"]))["status"] != "PROVING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sample_before_crash = state["sampled_chunks"]
    assert len(sample_before_crash) == 10  # type: ignore[arg-type]
    executing = client.post("/jobs", json={"model": "tiny", "inputs": texts(80, "e")}).json()
    time.sleep(0.3)
    assert _status(client, executing["id"])["status"] == "EXECUTING"
    assert _status(client, proving["id"])["status"] == "PROVING"
    workers = _worker_pids(slow.log())
    slow.kill()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "worker processes outlived the killed server"
        time.sleep(0.1)
    assert slow.scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('EXECUTING', 'PROVING') "
                       "AND account_id = ?", (account.id,)) == 2
    orphan = slow.data_dir / "jobs" / "job_orphan_from_a_crash"
    orphan.mkdir(parents=True)  # a job folder of a 0.10 server, whose job never committed
    slow.start()
    client = slow.client(account)
    keys = parse_keys_document(client.get("/keys").json())
    receipts = {}
    for job in (proving, executing):
        final = wait_settled(client, job["id"])
        assert final["status"] == "SETTLED", final
        receipts[job["id"]] = client.get(f"/receipts/{final['receipt_id']}").json()
        verify_receipt(receipts[job["id"]], keys)
    # the stored nonce keeps the sample: the receipt shows the one drawn before the crash
    assert receipts[proving["id"]]["sampling"]["indices"] == sample_before_crash
    assert "resumed 2 open jobs" in slow.log()
    assert not orphan.exists()
    assert slow.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'SETTLED' "
                       "AND receipt_id IS NULL") == 0
    assert slow.scalar("SELECT COUNT(*) FROM jobs j LEFT JOIN receipts r ON r.id = j.receipt_id "
                       "WHERE j.status = 'SETTLED' AND r.id IS NULL") == 0
    settled = slow.scalar("SELECT SUM(chunk_count) FROM jobs WHERE account_id = ? "
                          "AND status = 'SETTLED'", (account.id,))
    usage = client.get("/account").json()
    assert usage["chunks_consumed_period"] == settled == 2 * math.ceil(80 / 4)
