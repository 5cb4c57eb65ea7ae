"""wait_for_completion (long poll, polling fallback, progress, timeout) and submit_and_wait."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest
from client_fakes import Harness, Twin, fail, reply

from cyberian.client import AsyncClient, JobResult
from cyberian.exceptions import (
    ApiError,
    CyberianError,
    JobFailedError,
    NetworkError,
    VerificationFailedError,
)

WAIT = "/jobs/j1/wait"


def job(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "j1", "status": status, **extra}


def settled() -> dict[str, Any]:
    return job("SETTLED", receipt_id="r1")


class _Wait(Twin):
    def test_long_polls_until_terminal_and_reports_progress(self, h: Harness) -> None:
        h.server.add(
            "GET",
            WAIT,
            reply(json=job("EXECUTING")),
            reply(json=job("PROVING")),
            reply(json=settled()),
        )
        seen: list[dict[str, Any]] = []
        final = h.call("wait_for_completion", "j1", on_progress=seen.append)
        assert final == settled()
        assert [s["status"] for s in seen] == ["EXECUTING", "PROVING", "SETTLED"]
        assert h.server.paths() == [f"GET {WAIT}"] * 3
        assert h.clock.sleeps == []  # check_every_sec=0: re-issued at once

    def test_max_wait_is_the_remaining_time_between_1_and_30(self, h: Harness) -> None:
        def advance(request: httpx.Request) -> None:
            h.clock.now += 4.6  # the server held each long poll 4.6 s

        h.server.on_request = advance
        h.server.add("GET", WAIT, reply(json=job("EXECUTING")))
        with pytest.raises(CyberianError, match="did not reach a terminal state"):
            h.call("wait_for_completion", "j1", timeout_sec=12.0)
        assert [r.url.params["max_wait"] for r in h.sent] == ["12", "7", "2"]

        h.server.requests.clear()
        h.server.on_request = None
        h.server.routes[("GET", WAIT)] = [reply(json=settled())]
        h.call("wait_for_completion", "j1", timeout_sec=600)
        h.call("wait_for_completion", "j1", timeout_sec=0.2)
        assert [r.url.params["max_wait"] for r in h.sent] == ["30", "1"]

    def test_long_poll_outlasts_a_short_client_timeout(self, h: Harness) -> None:
        http = h.new_http(timeout=5.0)
        client = h.new_client(http_client=http)
        h.server.add("GET", WAIT, reply(json=settled()))
        h.server.add("GET", "/jobs/j1", reply(json=settled()))
        h.call("wait_for_completion", "j1", client=client)
        h.call("get_job", "j1", client=client)
        wait_timeout, plain_timeout = (r.extensions["timeout"] for r in h.sent)
        assert wait_timeout["read"] >= 30 + 5
        assert wait_timeout["connect"] == 5.0
        assert plain_timeout["read"] == 5.0

    def test_check_every_sec_pauses_between_long_polls(self, h: Harness) -> None:
        h.server.add(
            "GET",
            WAIT,
            reply(json=job("EXECUTING")),
            reply(json=job("PROVING")),
            reply(json=settled()),
        )
        h.call("wait_for_completion", "j1", check_every_sec=1.5)
        assert h.clock.sleeps == [1.5, 1.5]

    def test_failed_raises_job_failed_error(self, h: Harness) -> None:
        body = job("FAILED", error="tokenizer exploded")
        h.server.add("GET", WAIT, reply(json=job("EXECUTING")), reply(json=body))
        seen: list[dict[str, Any]] = []
        with pytest.raises(JobFailedError) as info:
            h.call("wait_for_completion", "j1", on_progress=seen.append)
        assert info.value.job_id == "j1"
        assert info.value.body == body
        assert "tokenizer exploded" in str(info.value)
        assert seen[-1] == body

    def test_refunded_is_returned(self, h: Harness) -> None:
        h.server.add("GET", WAIT, reply(json=job("REFUNDED", error="replay mismatch")))
        assert h.call("wait_for_completion", "j1")["status"] == "REFUNDED"

    @pytest.mark.parametrize(
        "missing",
        [
            reply(404, {"detail": "Not Found"}),
            reply(405, {"detail": "Method Not Allowed"}),
            reply(404, content=b"no such route"),
        ],
    )
    def test_falls_back_to_polling_without_the_wait_route(self, h: Harness, missing: Any) -> None:
        h.server.add("GET", WAIT, missing)
        h.server.add(
            "GET",
            "/jobs/j1",
            reply(json=job("EXECUTING")),
            reply(json=job("PROVING")),
            reply(json=settled()),
        )
        seen: list[dict[str, Any]] = []
        final = h.call("wait_for_completion", "j1", poll_interval_sec=0.7, on_progress=seen.append)
        assert final == settled()
        assert h.server.paths() == [f"GET {WAIT}"] + ["GET /jobs/j1"] * 3
        assert h.clock.sleeps == [0.7, 0.7]
        assert len(seen) == 3

    def test_unknown_job_raises_instead_of_falling_back(self, h: Harness) -> None:
        h.server.add("GET", WAIT, reply(404, {"error": "not_found", "message": "no such job"}))
        with pytest.raises(ApiError) as info:
            h.call("wait_for_completion", "j1")
        assert info.value.status_code == 404
        assert h.server.paths() == [f"GET {WAIT}"]

    def test_unknown_job_while_polling_raises(self, h: Harness) -> None:
        h.server.add("GET", "/jobs/j1", reply(404, {"error": "not_found", "message": "gone"}))
        with pytest.raises(ApiError, match="gone"):
            h.call("wait_for_completion", "j1")
        assert h.server.paths() == [f"GET {WAIT}", "GET /jobs/j1"]

    def test_polling_timeout(self, h: Harness) -> None:
        h.server.add("GET", "/jobs/j1", reply(json=job("PROVING")))
        with pytest.raises(CyberianError) as info:
            h.call("wait_for_completion", "j1", poll_interval_sec=2.0, timeout_sec=5.0)
        assert type(info.value) is CyberianError
        assert "last status: PROVING" in str(info.value)
        assert info.value.body == job("PROVING")
        assert h.clock.sleeps == [2.0, 2.0, 1.0]
        assert h.server.paths().count("GET /jobs/j1") == 4

    def test_network_errors_while_waiting_are_retried(self, h: Harness) -> None:
        client = h.new_client(max_retries=0)
        h.server.add(
            "GET",
            WAIT,
            fail(httpx.ConnectError),
            fail(httpx.ReadError),
            fail(httpx.ConnectError),
            reply(json=settled()),
        )
        assert h.call("wait_for_completion", "j1", client=client) == settled()
        assert len(h.sent) == 4
        assert len(h.clock.sleeps) == 3
        # growing back-off between the failures
        assert h.clock.sleeps[0] < h.clock.sleeps[2]

    def test_network_errors_until_the_deadline_raise(self, h: Harness) -> None:
        client = h.new_client(max_retries=0)
        h.server.add("GET", WAIT, fail(httpx.ConnectError))
        with pytest.raises(NetworkError):
            h.call("wait_for_completion", "j1", timeout_sec=20.0, client=client)
        assert sum(h.clock.sleeps) == pytest.approx(20.0)
        assert len(h.sent) > 3


class _SubmitAndWait(Twin):
    def _serve(self, h: Harness, *, verification: dict[str, Any] | None = None) -> np.ndarray:
        rows = np.arange(6, dtype="<f4").reshape(3, 2)
        h.server.add("POST", "/jobs", reply(201, job("EXECUTING")))
        h.server.add("GET", WAIT, reply(json=job("PROVING")), reply(json=settled()))
        h.server.add("GET", "/receipts/r1", reply(json={"receipt_id": "r1", "receipt_hash": "h"}))
        h.server.add(
            "GET",
            "/receipts/r1/verify",
            reply(
                json=verification or {"valid": True, "checks": {"signature": True}, "errors": []}
            ),
        )
        h.server.add(
            "GET",
            "/jobs/j1/output",
            reply(content=rows.tobytes(), headers={"x-cyberian-shape": "3,2"}),
        )
        return rows

    def test_returns_job_receipt_embeddings_and_verification(self, h: Harness) -> None:
        rows = self._serve(h)
        seen: list[str] = []
        result = h.call(
            "submit_and_wait",
            model="m",
            inputs=["a", "b", "c"],
            on_progress=lambda j: seen.append(j["status"]),
        )
        assert isinstance(result, JobResult)
        assert result.job == settled()
        assert result.receipt == {"receipt_id": "r1", "receipt_hash": "h"}
        assert result.verification == {"valid": True, "checks": {"signature": True}, "errors": []}
        np.testing.assert_array_equal(result.embeddings, rows)
        assert seen == ["PROVING", "SETTLED"]
        assert h.server.paths() == [
            "POST /jobs",
            f"GET {WAIT}",
            f"GET {WAIT}",
            "GET /receipts/r1",
            "GET /receipts/r1/verify",
            "GET /jobs/j1/output",
        ]

    def test_spec_dialect_body(self, h: Harness) -> None:
        self._serve(h)
        h.call("submit_and_wait", spec_yaml="name: x\n", input_texts=["a"])
        assert h.sent[0].content == b'{"spec_yaml":"name: x\\n","input_texts":["a"]}'

    def test_without_verification(self, h: Harness) -> None:
        self._serve(h)
        result = h.call("submit_and_wait", model="m", inputs=["a"], verify_receipt=False)
        assert result.verification is None
        assert "GET /receipts/r1/verify" not in h.server.paths()

    def test_invalid_receipt_raises(self, h: Harness) -> None:
        bad = {"valid": False, "checks": {"signature": False}, "errors": ["bad signature"]}
        self._serve(h, verification=bad)
        with pytest.raises(VerificationFailedError) as info:
            h.call("submit_and_wait", model="m", inputs=["a"])
        assert info.value.receipt_id == "r1"
        assert info.value.checks == {"signature": False}
        assert info.value.errors == ["bad signature"]
        assert info.value.body == bad
        assert "GET /jobs/j1/output" not in h.server.paths()

    def test_refunded_job_raises(self, h: Harness) -> None:
        h.server.add("POST", "/jobs", reply(201, job("EXECUTING")))
        h.server.add("GET", WAIT, reply(json=job("REFUNDED", error="replay of chunk 3 differs")))
        with pytest.raises(VerificationFailedError) as info:
            h.call("submit_and_wait", model="m", inputs=["a"])
        assert info.value.errors == ["replay of chunk 3 differs"]
        assert info.value.receipt_id == "(no receipt issued)"

    def test_failed_job_raises_job_failed(self, h: Harness) -> None:
        h.server.add("POST", "/jobs", reply(201, job("EXECUTING")))
        h.server.add("GET", WAIT, reply(json=job("FAILED", error="boom")))
        with pytest.raises(JobFailedError):
            h.call("submit_and_wait", model="m", inputs=["a"])

    def test_dialect_is_checked_before_anything_is_sent(self, h: Harness) -> None:
        with pytest.raises(ValueError, match="dialect"):
            h.call("submit_and_wait")
        assert h.sent == []


class TestWaitSync(_Wait):
    mode = "sync"


class TestWaitAsync(_Wait):
    mode = "async"

    def test_async_progress_callbacks_are_awaited(self, h: Harness) -> None:
        h.server.add("GET", WAIT, reply(json=job("PROVING")), reply(json=settled()))
        seen: list[str] = []

        async def report(state: dict[str, Any]) -> None:
            await asyncio.sleep(0)
            seen.append(state["status"])

        client: AsyncClient = h.client
        asyncio.run(client.wait_for_completion("j1", on_progress=report))
        assert seen == ["PROVING", "SETTLED"]


class TestSubmitAndWaitSync(_SubmitAndWait):
    mode = "sync"


class TestSubmitAndWaitAsync(_SubmitAndWait):
    mode = "async"
