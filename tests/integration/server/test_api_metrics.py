"""``GET /metrics`` on live servers: exact counts after real traffic, access rules, restarts.

The counting server runs two executors and the TEST-ONLY fault injection
``corrupt-chunk:300``: jobs of fewer than 1,201 texts settle, a ``tiny-all``
job (every chunk replayed) of more is REFUNDED with exactly one mismatch.
Every request the tests send goes through an httpx hook that notes its
route template and status; the difference of two scrapes must equal what
was sent, series by series. The second server requires a metrics token and
has one slowed executor, which a test kills mid-job.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_harness import Account, LiveServer, running_server, texts, wait_settled

from cyberian.prover import Prover
from cyberian.spec import Spec

TOKEN = "metrics-test-token-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
Sent = Counter[tuple[str, str, str]]

_TEMPLATES = ((re.compile(r"^/jobs/[^/]+/(wait|results|output)$"), r"/jobs/{job_id}/\1"),
              (re.compile(r"^/jobs/[^/]+$"), "/jobs/{job_id}"),
              (re.compile(r"^/receipts/[^/]+$"), "/receipts/{receipt_id}"))
_KNOWN = {"/health", "/keys", "/metrics", "/jobs", "/verify", "/account"}


def template(path: str) -> str:
    """The route template a test request's path matches (as the server labels it)."""
    for pattern, replacement in _TEMPLATES:
        if pattern.match(path):
            return pattern.sub(replacement, path)
    return path if path in _KNOWN else "unmatched"


def scrape(client: httpx.Client, **options: Any) -> Samples:
    """Every sample of ``/metrics``, by name and labels."""
    response = client.get("/metrics", **options)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_by_series(samples: Samples) -> dict[tuple[str, str, str], float]:
    return {(labels["method"], labels["route"], labels["status"]): number
            for (name, label_items), number in samples.items()
            if name == "cyberian_http_requests_total"
            for labels in [dict(label_items)]}


def hooked(server: LiveServer, sent: Sent, account: Account | None = None) -> httpx.Client:
    """A client that notes each answered request as (method, route template, status)."""
    def note(response: httpx.Response) -> None:
        request = response.request
        sent[(request.method, template(request.url.path), str(response.status_code))] += 1

    return server.client(account, event_hooks={"response": [note]})


def commitment(spec: Spec, inputs: list[str]) -> str:
    rows = Prover(spec).prove(inputs).embeddings
    assert rows is not None
    return hashlib.sha256(np.asarray(rows).astype("<f4").tobytes()).hexdigest()


@pytest.fixture(scope="module")
def counting(tmp_path_factory: pytest.TempPathFactory,
             catalog_dir: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("metrics"), catalog_dir,
                        args=("--workers", "2"),
                        env={"CYBERIAN_FAULT_INJECTION": "corrupt-chunk:300"}) as live:
        yield live


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("gated"), catalog_dir,
                        args=("--workers", "1"),
                        env={"CYBERIAN_METRICS_TOKEN": TOKEN,
                             "CYBERIAN_FAULT_INJECTION": "slow-chunk:0.2"}) as live:
        yield live


def test_counts_equal_the_traffic_sent(counting: LiveServer, tiny: Spec,
                                       tiny_all: Spec) -> None:
    sent: Sent = Counter()
    account = counting.account("enterprise")
    client = hooked(counting, sent, account)
    anonymous = hooked(counting, sent)
    before = scrape(anonymous)  # loopback bind: open, no key needed

    bodies = [("tiny", 1030), ("tiny", 5), ("tiny-all", 1208)]  # 258 + 2 + 302 chunks
    created = [client.post("/jobs", json={"model": model, "inputs": texts(count, model)})
               for model, count in bodies]
    assert [response.status_code for response in created] == [201, 201, 201]
    finals = [wait_settled(client, response.json()["id"]) for response in created]
    assert [job["status"] for job in finals] == ["SETTLED", "SETTLED", "REFUNDED"]
    jobs = [client.get(f"/jobs/{job['id']}").json() for job in finals]
    client.get(f"/receipts/{finals[0]['receipt_id']}").raise_for_status()

    good = texts(6, "vaas")
    verified = client.post("/verify", json={"model": "tiny", "inputs": good,
                                            "claimed_output_commitment": commitment(tiny, good)})
    assert verified.status_code == 200, verified.text
    wrong = texts(8, "wrong")  # tiny-all: blocks of 3, 3, 2
    mismatch = client.post("/verify", json={"model": "tiny-all", "inputs": wrong,
                                            "claimed_output_commitments": ["0" * 64] * 3})
    assert mismatch.status_code == 422
    assert commitment(tiny_all, wrong) != "0" * 64

    assert client.get("/jobs/job_does_not_exist").status_code == 404
    assert client.get("/jobs/job_does_not_exist/wait", params={"max_wait": -1}).status_code == 400
    assert anonymous.get("/no/such/route").status_code == 404
    assert anonymous.get("/jobs/some_id/no/such/thing").status_code == 404
    assert anonymous.post("/jobs", json={"model": "tiny", "inputs": ["a"]}).status_code == 401
    assert client.post("/jobs", content=b"{not json",
                       headers={"Content-Type": "application/json"}).status_code == 400
    assert anonymous.delete("/health").status_code == 405

    expected = sent.copy()  # the final scrape counts itself only after answering
    after = scrape(anonymous)

    old, new = requests_by_series(before), requests_by_series(after)
    changed = {series: new[series] - old.get(series, 0.0) for series in new
               if new[series] != old.get(series, 0.0)}
    assert changed == {series: float(count) for series, count in expected.items()}
    for method, route in {(method, route) for method, route, _ in expected}:
        count = sum(n for (m, r, _), n in expected.items() if (m, r) == (method, route))
        histogram = "cyberian_http_request_duration_seconds_count"
        assert value(after, histogram, route=route, method=method) - value(
            before, histogram, route=route, method=method) == count, route
    assert not any("job_does_not_exist" in dict(labels).get("route", "") for _, labels in after)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("cyberian_jobs_total", state="EXECUTING") == 3
    assert delta("cyberian_jobs_total", state="PROVING") == 3
    assert delta("cyberian_jobs_total", state="SETTLED") == 2
    assert delta("cyberian_jobs_total", state="REFUNDED") == 1
    assert delta("cyberian_jobs_total", state="FAILED") == 0
    assert delta("cyberian_chunks_executed_total", kind="job") == 258 + 2 + 302
    assert delta("cyberian_texts_embedded_total", kind="job") == 1030 + 5 + 1208
    assert delta("cyberian_chunks_executed_total", kind="vaas") == 1 + 3
    assert delta("cyberian_texts_embedded_total", kind="vaas") == 6 + 8
    replayed = sum(len(job["sampled_chunks"]) for job in jobs)
    assert len(jobs[2]["sampled_chunks"]) == 302
    assert delta("cyberian_chunks_replayed_total") == replayed
    assert delta("cyberian_replay_mismatches_total") == 1
    assert value(after, "cyberian_jobs_open", state="EXECUTING") == 0
    assert value(after, "cyberian_jobs_open", state="PROVING") == 0
    assert value(after, "cyberian_queue_depth") == 0
    assert value(after, "cyberian_queue_capacity") == 64
    assert value(after, "cyberian_worker_restarts_total", role="executor") == 0
    assert value(after, "cyberian_worker_restarts_total", role="replayer") == 0


def test_open_jobs_and_queue_depth_are_read_at_scrape_time(gated: LiveServer) -> None:
    account = gated.account("enterprise")
    client = gated.client(account)
    job = client.post("/jobs", json={"model": "tiny", "inputs": texts(24, "open")}).json()
    during = scrape(client, headers={"Authorization": f"Bearer {TOKEN}"})
    assert value(during, "cyberian_jobs_open", state="EXECUTING") + value(
        during, "cyberian_jobs_open", state="PROVING") == 1
    assert value(during, "cyberian_queue_depth") == 1
    assert wait_settled(client, job["id"])["status"] == "SETTLED"
    settled = scrape(client, headers={"Authorization": f"Bearer {TOKEN}"})
    assert value(settled, "cyberian_jobs_open", state="EXECUTING") == 0
    assert value(settled, "cyberian_queue_depth") == 0


def test_a_token_gates_metrics_and_an_api_key_does_not_open_them(gated: LiveServer) -> None:
    account = gated.account("enterprise")
    for headers in ({}, {"Authorization": f"Bearer {account.key}"},
                    {"Authorization": f"Bearer {TOKEN}-wrong"}, {"Authorization": TOKEN}):
        refused = gated.client().get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.json()["error"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert TOKEN not in refused.text
    samples = scrape(gated.client(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert value(samples, "cyberian_http_requests_total", route="/metrics", method="GET",
                 status="401") >= 4
    assert TOKEN not in gated.log()


def _executor_pid(log: str) -> int:
    pids = re.findall(r"worker pool ready: executors \[(\d+)\], replayer \d+", log)
    return int(pids[-1])


def test_a_worker_restart_is_counted(gated: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    client = gated.client(gated.account("enterprise"))
    before = scrape(client, headers=auth)
    job = client.post("/jobs", json={"model": "tiny", "inputs": texts(40, "crash")}).json()
    time.sleep(0.5)  # 10 chunks at 0.2 s each: the executor is busy with them
    os.kill(_executor_pid(gated.log()), signal.SIGKILL)
    final = wait_settled(client, job["id"])
    assert final["status"] == "FAILED"
    assert "process died" in final["error"]
    after = scrape(client, headers=auth)
    assert value(after, "cyberian_worker_restarts_total", role="executor") - value(
        before, "cyberian_worker_restarts_total", role="executor") == 1
    assert value(after, "cyberian_worker_restarts_total", role="replayer") == 0
    assert value(after, "cyberian_jobs_total", state="FAILED") - value(
        before, "cyberian_jobs_total", state="FAILED") == 1
    again = client.post("/jobs", json={"model": "tiny", "inputs": texts(4, "after")}).json()
    assert wait_settled(client, again["id"])["status"] == "SETTLED"  # the rebuilt pool works
