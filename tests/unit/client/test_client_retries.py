"""Retries: which failures, how many times, how long between, and one idempotency key per call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from client_fakes import Harness, Twin, fail, reply

from cyberian.client import Client
from cyberian.client._retries import backoff_delay
from cyberian.exceptions import (
    ApiError,
    AuthError,
    CyberianError,
    NetworkError,
    RateLimitError,
    ServiceBusyError,
)

BUSY = {"error": "service_busy", "message": "queue full"}


class _Retries(Twin):
    def test_transport_errors_are_retried_then_succeed(self, h: Harness) -> None:
        h.server.add(
            "GET",
            "/account",
            fail(httpx.ConnectError),
            fail(httpx.ReadTimeout),
            reply(json={"tier": "trial"}),
        )
        assert h.call("get_account") == {"tier": "trial"}
        assert len(h.sent) == 3
        assert len(h.clock.sleeps) == 2

    def test_transport_errors_exhaust_max_retries(self, h: Harness) -> None:
        client = h.new_client(max_retries=3)
        h.server.add("GET", "/account", fail(httpx.RemoteProtocolError))
        with pytest.raises(NetworkError, match="RemoteProtocolError"):
            h.call("get_account", client=client)
        assert len(h.sent) == 4

    def test_unsupported_protocol_is_not_retried(self, h: Harness) -> None:
        h.server.add("GET", "/account", fail(httpx.UnsupportedProtocol))
        with pytest.raises(NetworkError):
            h.call("get_account")
        assert len(h.sent) == 1

    @pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
    def test_retryable_statuses_back_off_within_bounds(self, h: Harness, status: int) -> None:
        client = h.new_client(max_retries=4)
        h.server.add("GET", "/account", reply(status, {"error": "x"}))
        expected = {429: RateLimitError, 503: ServiceBusyError}.get(status, ApiError)
        with pytest.raises(expected) as info:
            h.call("get_account", client=client)
        assert info.value.status_code == status
        assert len(h.sent) == 5
        sleeps = h.clock.sleeps
        assert len(sleeps) == 4
        for attempt, slept in enumerate(sleeps):
            nominal = min(8.0, 0.5 * 2**attempt)
            assert 0.75 * nominal <= slept <= 1.25 * nominal

    @pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 413, 422, 500])
    def test_other_errors_are_not_retried(self, h: Harness, status: int) -> None:
        h.server.add("POST", "/jobs", reply(status, {"error": "nope"}))
        with pytest.raises(CyberianError) as info:
            h.call("submit_job", model="m", inputs=["a"])
        assert info.value.status_code == status
        assert len(h.sent) == 1
        assert h.clock.sleeps == []

    def test_auth_error_not_retried(self, h: Harness) -> None:
        h.server.add("GET", "/account", reply(401, {"error": "unauthorized"}), reply(json={}))
        with pytest.raises(AuthError):
            h.call("get_account")
        assert len(h.sent) == 1

    def test_max_retries_zero_means_one_attempt(self, h: Harness) -> None:
        client = h.new_client(max_retries=0)
        h.server.add("GET", "/account", reply(503, BUSY), reply(json={}))
        with pytest.raises(ServiceBusyError):
            h.call("get_account", client=client)
        assert len(h.sent) == 1

    def test_short_retry_after_is_honoured(self, h: Harness) -> None:
        h.server.add(
            "GET",
            "/account",
            reply(429, {"error": "rate_limited"}, headers={"Retry-After": "3"}),
            reply(503, {"error": "service_busy", "retry_after_sec": 2.5}),
            reply(json={"ok": 1}),
        )
        assert h.call("get_account") == {"ok": 1}
        assert h.clock.sleeps == [3.0, 2.5]

    def test_long_retry_after_raises_at_once(self, h: Harness) -> None:
        h.server.add(
            "GET",
            "/account",
            reply(429, {"error": "rate_limited"}, headers={"Retry-After": "120"}),
            reply(json={}),
        )
        with pytest.raises(RateLimitError) as info:
            h.call("get_account")
        assert info.value.retry_after_sec == 120.0
        assert len(h.sent) == 1
        assert h.clock.sleeps == []

    def test_max_retry_wait_is_configurable(self, h: Harness) -> None:
        client = h.new_client(max_retry_wait=200)
        h.server.add(
            "GET",
            "/account",
            reply(503, BUSY, headers={"Retry-After": "120"}),
            reply(json={"ok": 1}),
        )
        assert h.call("get_account", client=client) == {"ok": 1}
        assert h.clock.sleeps == [120.0]

    def test_idempotency_key_is_reused_across_retries_of_one_call(self, h: Harness) -> None:
        h.server.add(
            "POST",
            "/jobs",
            fail(httpx.ReadTimeout),
            reply(502),
            reply(201, {"id": "j1", "status": "EXECUTING"}),
        )
        assert h.call("submit_job", model="m", inputs=["a"])["id"] == "j1"
        keys = {r.headers["idempotency-key"] for r in h.sent}
        assert len(h.sent) == 3
        assert len(keys) == 1
        bodies = {r.content for r in h.sent}
        assert len(bodies) == 1

    def test_idempotency_keys_differ_between_calls(self, h: Harness) -> None:
        h.server.add("POST", "/jobs", reply(201, {"id": "j"}))
        h.server.add("POST", "/verify", reply(json={"receipt_id": "v"}))
        h.call("submit_job", model="m", inputs=["a"])
        h.call("submit_job", model="m", inputs=["a"])
        h.call("verify_outputs", model="m", inputs=["a"], claimed_output_commitment="0" * 64)
        h.call("verify_outputs", model="m", inputs=["a"], claimed_output_commitment="0" * 64)
        keys = [r.headers["idempotency-key"] for r in h.sent]
        assert len(set(keys)) == 4

    def test_verify_retries_keep_their_key(self, h: Harness) -> None:
        h.server.add("POST", "/verify", reply(503, BUSY), reply(json={"receipt_id": "v"}))
        h.call("verify_outputs", model="m", inputs=["a"], claimed_output_commitment="0" * 64)
        assert len(h.sent) == 2
        assert h.sent[0].headers["idempotency-key"] == h.sent[1].headers["idempotency-key"]

    def test_other_requests_carry_no_idempotency_key(self, h: Harness) -> None:
        h.server.add("GET", "/account", reply(json={}))
        h.server.add("POST", "/auth/keys/revoke", reply(json={}))
        h.call("get_account")
        h.call("revoke_key", key_id="k")
        assert all("idempotency-key" not in r.headers for r in h.sent)

    @pytest.mark.parametrize(
        "first", [fail(httpx.ReadTimeout), fail(httpx.ReadError), reply(502), reply(504)]
    )
    def test_rotate_key_is_not_replayed_when_it_may_have_run(self, h: Harness, first: Any) -> None:
        h.server.add("POST", "/auth/keys/rotate", first, reply(json={"api_key": "cyb_x_y"}))
        with pytest.raises(ApiError):
            h.call("rotate_key")
        assert len(h.sent) == 1

    @pytest.mark.parametrize(
        "first", [fail(httpx.ConnectError), fail(httpx.ConnectTimeout), reply(503, BUSY)]
    )
    def test_rotate_key_is_retried_when_it_cannot_have_run(self, h: Harness, first: Any) -> None:
        h.server.add("POST", "/auth/keys/rotate", first, reply(json={"api_key": "cyb_x_y"}))
        assert h.call("rotate_key") == "cyb_x_y"
        assert len(h.sent) == 2


class TestRetriesSync(_Retries):
    mode = "sync"


class TestRetriesAsync(_Retries):
    mode = "async"


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_delay_bounds(attempt: int) -> None:
    nominal = min(8.0, 0.5 * 2**attempt)
    assert backoff_delay(attempt, 0.0) == pytest.approx(0.75 * nominal)
    assert backoff_delay(attempt, 0.5) == pytest.approx(nominal)
    assert backoff_delay(attempt, 0.999999) == pytest.approx(1.25 * nominal, rel=1e-5)


def test_backoff_delay_is_capped_for_huge_attempts() -> None:
    assert backoff_delay(10_000, 0.5) == 8.0


def test_jitter_spreads_retries() -> None:
    client = Client("cyb_t_" + "x" * 40)
    try:
        delays = {client._retry_delay(1, status=503) for _ in range(20)}
    finally:
        client.close()
    assert len(delays) > 1
    assert all(delay is not None and 0.75 <= delay <= 1.25 for delay in delays)
