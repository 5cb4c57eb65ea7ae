"""Two replicas and remote workers on one PostgreSQL: jobs, usage, rate limits, idempotency,
and kill -9 of a worker mid-chunk and of a replica mid-request."""

from __future__ import annotations

import hashlib
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_harness import Deployment, deployment
from server_harness import texts, wait_settled

from cyberian.models.tiny import build_tiny_model
from cyberian.prover import Prover
from cyberian.receipts import verify_receipt
from cyberian.signing import parse_keys_document
from cyberian.spec import Spec, load_spec
from postgres_cluster import TemporaryCluster

CONFIG = """\
lease_seconds: 3
tiers:
  free:
    requests_per_minute: 8
"""


@pytest.fixture
def pair(tmp_path: Path, postgres_cluster: TemporaryCluster,
         catalog_dir: Path) -> Any:
    """Two replicas (remote job workers) on one fresh database, no workers yet."""
    with deployment(tmp_path, postgres_cluster.create_database(), catalog_dir,
                    CONFIG) as made:
        made.replica()
        made.replica()
        yield made


def _account(made: Deployment, tier: str = "enterprise") -> Any:
    return made.replicas[0].account(tier)


def test_jobs_from_both_replicas_settle_on_remote_workers(pair: Deployment) -> None:
    executors = [pair.worker("executor"), pair.worker("executor")]
    pair.worker("replayer")
    pair.wait_for_workers(3)
    for replica in pair.replicas:
        ready = replica.client().get("/ready").json()
        assert ready["database"] == "postgresql"
        assert ready["job_workers"] == "remote"
        assert ready["remote_workers"] == {"executor": 2, "replayer": 1}
    assert len({replica.client().get("/ready").json()["replica"]
                for replica in pair.replicas}) == 2
    account = _account(pair)
    clients = [replica.client(account) for replica in pair.replicas]
    jobs = []
    for n in range(8):  # alternate replicas; each job is read back on the other one
        submitted = clients[n % 2].post("/jobs", json={"model": "tiny-all",
                                                       "inputs": texts(10 + n, f"j{n}")})
        assert submitted.status_code == 201, submitted.text
        jobs.append(submitted.json())
    keys = parse_keys_document(clients[0].get("/keys").json())
    assert clients[1].get("/keys").json() == clients[0].get("/keys").json()
    for n, job in enumerate(jobs):
        final = wait_settled(clients[(n + 1) % 2], job["id"])
        assert final["status"] == "SETTLED", final
        receipt = clients[n % 2].get(f"/receipts/{final['receipt_id']}").json()
        verify_receipt(receipt, keys)
        output = clients[(n + 1) % 2].get(f"/jobs/{job['id']}/output")
        assert len(output.content) == (10 + n) * 32 * 4
    rows = pair.query("SELECT executed_by, replayed_by FROM chunks")
    executor_ids = {row[0] for row in rows}
    replayer_ids = {row[1] for row in rows}
    assert executor_ids <= {row[0] for row in pair.query(
        "SELECT id FROM workers WHERE role = 'executor'")}
    assert len(executor_ids) == 2, "both executors took work"  # 8 jobs, 16 items
    assert len(replayer_ids) == 1
    assert not executor_ids & replayer_ids
    assert all(executed != replayed for executed, replayed in rows)
    # usage is exact, seen the same from either replica
    charged = sum(math.ceil((10 + n) / 4) for n in range(8))
    for client in clients:
        assert client.get("/account").json()["chunks_consumed_period"] == charged
    # every receipt is in the one log, densely, in one order
    assert pair.query("SELECT COUNT(*), MIN(idx), MAX(idx) FROM log_entries") == [(8, 0, 7)]
    for executor in executors:
        assert "Traceback" not in executor.log()


def test_rate_limits_and_idempotency_hold_across_replicas(pair: Deployment) -> None:
    account = _account(pair, "free")
    clients = [replica.client(account) for replica in pair.replicas]
    answers = [clients[n % 2].get("/account").status_code for n in range(8)]
    assert answers == [200] * 8
    refused = clients[1].get("/account")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert clients[0].get("/account").status_code == 429
    # the same Idempotency-Key sent to both replicas at once creates one job
    account = _account(pair)
    clients = [replica.client(account) for replica in pair.replicas]
    body = {"model": "tiny", "inputs": texts(6, "idem")}

    def submit(client: httpx.Client) -> dict[str, Any]:
        answer = client.post("/jobs", json=body, headers={"Idempotency-Key": "same-key"})
        assert answer.status_code in (200, 201), answer.text
        job: dict[str, Any] = answer.json()
        return job

    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(submit, [*clients, *clients]))
    assert len({job["id"] for job in made}) == 1
    assert pair.query("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == [(1,)]


def test_kill_9_of_a_worker_mid_chunk_loses_nothing(pair: Deployment) -> None:
    slow = {"CYBERIAN_FAULT_INJECTION": "slow-chunk:1.0"}
    victim = pair.worker("executor", env=slow)
    pair.worker("replayer")
    pair.wait_for_workers(2)
    account = _account(pair)
    client = pair.replicas[0].client(account)
    job = client.post("/jobs", json={"model": "tiny", "inputs": texts(40, "k")}).json()
    deadline = time.monotonic() + 30
    while not pair.query("SELECT id FROM work_items WHERE state = 'leased' AND role = "
                         "'executor'"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim.kill()  # mid-chunk: it sleeps a second per chunk of its item
    assert pair.query("SELECT COUNT(*) FROM chunks WHERE job_id = ?", (job["id"],)) == [(0,)]
    heir = pair.worker("executor")
    final = wait_settled(pair.replicas[1].client(account), job["id"], timeout=90)
    assert final["status"] == "SETTLED", final
    items = pair.query("SELECT attempts, lease_owner FROM work_items WHERE job_id = ? AND "
                       "role = 'executor'", (job["id"],))
    assert [attempts for attempts, _ in items] == [2]
    heir_id = pair.query("SELECT id FROM workers ORDER BY started_at DESC LIMIT 1")[0][0]
    assert {owner for _, owner in items} == {heir_id}
    assert pair.query("SELECT DISTINCT executed_by FROM chunks WHERE job_id = ?",
                      (job["id"],)) == [(heir_id,)]
    assert client.get("/account").json()["chunks_consumed_period"] == 10
    assert heir.process.poll() is None


def _claim(spec: Spec, inputs: list[str]) -> str:
    rows = Prover(spec).prove(inputs).embeddings
    assert rows is not None
    return hashlib.sha256(rows.astype("<f4").tobytes()).hexdigest()


def test_kill_9_of_a_replica_mid_request_loses_nothing_and_charges_once(
        tmp_path: Path, postgres_cluster: TemporaryCluster, catalog_dir: Path) -> None:
    slow = {"CYBERIAN_FAULT_INJECTION": "slow-chunk:0.3"}  # its /verify and the job's chunks
    with deployment(tmp_path, postgres_cluster.create_database(), catalog_dir,
                    CONFIG) as made:
        doomed = made.replica(env=slow)
        survivor = made.replica()
        made.worker("executor", env=slow)
        made.worker("replayer")
        made.wait_for_workers(2)
        account = _account(made)
        job = doomed.client(account).post("/jobs", json={"model": "tiny-all",
                                                         "inputs": texts(24, "r")}).json()
        inputs = texts(30, "verify mid-request")
        body = {"model": "tiny", "inputs": inputs,
                "claimed_output_commitment": _claim(load_spec(catalog_dir / "tiny.yaml"),
                                                    inputs)}
        headers = {"Idempotency-Key": "verify-once"}

        def verify_on_doomed() -> str:
            try:
                doomed.client(account).post("/verify", json=body, headers=headers)
            except httpx.HTTPError as exc:
                return type(exc).__name__
            return "answered"

        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(verify_on_doomed)
            deadline = time.monotonic() + 30
            while not made.query("SELECT id FROM quota_holds"):  # the /verify is running
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert made.query("SELECT status, driver IS NOT NULL FROM jobs WHERE id = ?",
                              (job["id"],)) == [("EXECUTING", True)]
            doomed.kill()
            assert in_flight.result(timeout=30) != "answered"
        assert made.query("SELECT COUNT(*) FROM jobs WHERE kind = 'vaas'") == [(0,)]
        client = survivor.client(account)
        retried = client.post("/verify", json=body, headers=headers)  # the client retries
        assert retried.status_code == 200, retried.text
        keys = parse_keys_document(client.get("/keys").json())
        verify_receipt(retried.json(), keys)
        final = wait_settled(client, job["id"], timeout=90)
        assert final["status"] == "SETTLED", final
        assert "resuming job " + job["id"] in survivor.log()
        verify_receipt(client.get(f"/receipts/{final['receipt_id']}").json(), keys)
        assert made.query("SELECT COUNT(*) FROM jobs WHERE kind = 'vaas'") == [(1,)]
        assert made.query("SELECT COUNT(*) FROM chunks WHERE job_id = ?",
                          (job["id"],)) == [(6,)]
        assert made.query("SELECT COUNT(*) FROM receipts") == [(2,)]
        assert made.query("SELECT COUNT(*), MAX(idx) FROM log_entries") == [(2, 1)]
        account_view = client.get("/account").json()
        assert account_view["chunks_consumed_period"] == 6 + 8  # the job + 30 texts in 4s
        deadline = time.monotonic() + 10  # the dead replica's hold expires with its lease
        while client.get("/account").json()["chunks_reserved"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_an_upload_to_one_replica_runs_on_the_other_through_a_shared_model_store(
        tmp_path: Path, postgres_cluster: TemporaryCluster, catalog_dir: Path) -> None:
    shared = ("--models-dir", str(tmp_path / "models"))
    onnx = build_tiny_model(tmp_path / "upload", seed=1).model_path.read_bytes()
    with deployment(tmp_path / "d", postgres_cluster.create_database(), catalog_dir,
                    CONFIG) as made:
        first, second = made.replica(args=shared), made.replica(args=shared)
        made.worker("executor", args=shared)
        made.worker("replayer")  # its own store: it must not see the upload
        made.wait_for_workers(2)
        account = _account(made)
        uploaded = first.client(account).post(
            "/models/upload", content=onnx, headers={"Content-Type": "application/octet-stream"},
            params={"name": "shared-tiny", "output_dimensions": 32, "tokenizer": "tiny"})
        assert uploaded.status_code == 201, uploaded.text
        sha = hashlib.sha256(onnx).hexdigest()
        assert (tmp_path / "models" / sha).read_bytes() == onnx
        assert not (first.data_dir / "models").exists()
        client = second.client(account)
        job = client.post("/jobs", json={"model": uploaded.json()["model_id"],
                                         "inputs": texts(8, "upload")}).json()
        final = wait_settled(client, job["id"], timeout=60)
        # the executor reached the upload through the shared store; the replayer, with a
        # store of its own, does not hold it and says so: the job fails, naming the file
        assert final["status"] == "FAILED", final
        assert sha in final["error"]
        assert "share the models folder" in final["error"]
        assert made.query("SELECT COUNT(*) FROM chunks WHERE job_id = ? AND executed_by "
                          "IS NOT NULL", (job["id"],)) == [(2,)]
        assert client.get("/account").json()["chunks_consumed_period"] == 0
        made.workers[1].stop()  # the replayer without the upload leaves
        made.worker("replayer", args=shared)
        made.wait_for_workers(3)
        again = client.post("/jobs", json={"model": uploaded.json()["model_id"],
                                           "inputs": texts(8, "upload again")}).json()
        final = wait_settled(first.client(account), again["id"], timeout=60)
        assert final["status"] == "SETTLED", final
        newest = made.query("SELECT id FROM workers ORDER BY started_at DESC LIMIT 1")[0][0]
        assert made.query("SELECT DISTINCT replayed_by FROM chunks WHERE job_id = ? AND "
                          "replayed_by IS NOT NULL", (again["id"],)) == [(newest,)]
