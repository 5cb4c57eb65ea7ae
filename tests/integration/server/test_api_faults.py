"""A server with the TEST-ONLY fault injection and an operator config file.

The executor corrupts chunk 1 of every job; with ``tiny-all`` (every chunk
replayed) the independent replayer must catch it: REFUNDED, no receipt,
chunks back in the quota. The config file shrinks the trial tier's quota,
lowers the body limit and turns registration off.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_harness import LiveServer, running_server, texts, wait_settled

CONFIG = """\
tiers:
  trial:
    chunks_per_period: 6
    chunks_per_day: 50
max_body_bytes: 4096
registration_enabled: false
"""


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("faulty")
    config = tmp / "server.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with running_server(tmp, catalog_dir, args=("--workers", "1", "--config", str(config)),
                        env={"CYBERIAN_FAULT_INJECTION": "corrupt-chunk:1"}) as live:
        yield live


def test_startup_warns_loudly(faulty: LiveServer) -> None:
    assert "TEST-ONLY FAULT INJECTION IS ON" in faulty.log()
    assert "corrupt chunk 1" in faulty.log()


def test_replay_mismatch_refunds_the_job(faulty: LiveServer) -> None:
    account = faulty.account()
    client = faulty.client(account)
    job = client.post("/jobs", json={"model": "tiny-all", "inputs": texts(12)}).json()
    final = wait_settled(client, job["id"])
    assert final["status"] == "REFUNDED"
    assert final["receipt_id"] is None
    assert "chunk 1" in final["error"]
    assert "replay" in final["error"]
    chunks = client.get(f"/jobs/{job['id']}/results").json()["chunks"]
    assert [chunk["status"] for chunk in chunks] == ["VERIFIED", "MISMATCH", "VERIFIED"]
    assert [chunk["replay_match"] for chunk in chunks] == [True, False, True]
    assert client.get(f"/jobs/{job['id']}/output").status_code == 409
    assert faulty.scalar("SELECT COUNT(*) FROM receipts WHERE account_id = ?", (account.id,)) == 0
    usage = client.get("/account").json()
    assert usage["chunks_consumed_period"] == usage["chunks_consumed_today"] == 0


def test_refunded_chunks_return_to_the_quota(faulty: LiveServer) -> None:
    client = faulty.client(faulty.account())  # trial period quota: 6 chunks (config file)
    for _ in range(2):  # 2 x 6 chunks only fit because the first is refunded
        job = client.post("/jobs", json={"model": "tiny-all", "inputs": texts(24)})
        assert job.status_code == 201, job.text
        assert wait_settled(client, job.json()["id"])["status"] == "REFUNDED"
    clean = client.post("/jobs", json={"model": "tiny-all", "inputs": texts(4)}).json()
    assert wait_settled(client, clean["id"])["status"] == "SETTLED"  # chunk 0 is not corrupted
    refused = client.post("/jobs", json={"model": "tiny-all", "inputs": texts(24)})
    assert refused.status_code == 402
    assert refused.json()["window"] == "period"
    assert client.get("/account").json()["chunks_consumed_period"] == 1


def test_config_file_overrides_one_tier_field_by_field(faulty: LiveServer) -> None:
    limits = faulty.client(faulty.account()).get("/account").json()["limits"]
    assert limits == {"period_days": 14, "chunks_per_period": 6, "chunks_per_day": 50,
                      "requests_per_minute": 60, "max_chunks_per_request": 100,
                      "max_input_texts": 1000, "model_upload": False}


def test_registration_can_be_turned_off(faulty: LiveServer) -> None:
    response = faulty.client().post("/auth/register")
    assert response.status_code == 403
    assert response.json()["error"] == "registration_disabled"


def test_bodies_over_the_limit_are_413(faulty: LiveServer) -> None:
    client = faulty.client(faulty.account())
    body = b'{"model": "tiny", "inputs": ["' + b"x" * 5000 + b'"]}'
    declared = client.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"] == "request_too_large"
    streamed = client.post("/jobs", content=iter([body[:3000], body[3000:]]),
                           headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "request_too_large"
