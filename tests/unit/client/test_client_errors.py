"""HTTP errors become the exceptions of the API.md table, carrying status, body and message."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import pytest
from client_fakes import Harness, Twin, fail, reply

from cyberian.exceptions import (
    ApiError,
    AuthError,
    CyberianError,
    NetworkError,
    QuotaError,
    RateLimitError,
    ServiceBusyError,
    TrialExpiredError,
    VerificationFailedError,
)

TABLE = [
    (400, "invalid_spec", ApiError),
    (400, "commitment_count_mismatch", ApiError),
    (401, "unauthorized", AuthError),
    (403, "forbidden", AuthError),
    (402, "trial_expired", TrialExpiredError),
    (402, "quota_exceeded", QuotaError),
    (402, "tier_required", QuotaError),
    (404, "not_found", ApiError),
    (409, "job_not_settled", ApiError),
    (413, "request_too_large", QuotaError),
    (422, "invalid_request", ApiError),
    (429, "rate_limited", RateLimitError),
    (500, "internal", ApiError),
    (503, "service_busy", ServiceBusyError),
]


class _Errors(Twin):
    @pytest.fixture
    def client(self, h: Harness) -> Any:
        return h.new_client(max_retries=0)

    @pytest.mark.parametrize(("status", "code", "expected"), TABLE)
    def test_status_maps_to_exception(
        self, h: Harness, client: Any, status: int, code: str, expected: type[CyberianError]
    ) -> None:
        body = {"error": code, "message": f"human text for {code}", "extra": 1}
        h.server.add("GET", "/jobs/j1", reply(status, body))
        with pytest.raises(expected) as info:
            h.call("get_job", "j1", client=client)
        error = info.value
        assert type(error) is expected
        assert error.status_code == status
        assert error.body == body
        assert error.message == f"human text for {code}"
        assert str(error) == f"human text for {code}"

    def test_network_error_is_an_api_error(self, h: Harness, client: Any) -> None:
        h.server.add("GET", "/jobs/j1", fail(httpx.ReadTimeout))
        with pytest.raises(ApiError) as info:
            h.call("get_job", "j1", client=client)
        assert isinstance(info.value, NetworkError)
        assert info.value.status_code is None
        assert "GET /jobs/j1" in str(info.value)

    def test_message_falls_back_to_the_error_code(self, h: Harness, client: Any) -> None:
        h.server.add("GET", "/jobs/j1", reply(404, {"error": "not_found"}))
        with pytest.raises(ApiError, match=r"^not_found$"):
            h.call("get_job", "j1", client=client)

    def test_non_json_error_body(self, h: Harness, client: Any) -> None:
        h.server.add("GET", "/jobs/j1", reply(500, content=b"<h1>oops</h1>"))
        with pytest.raises(ApiError) as info:
            h.call("get_job", "j1", client=client)
        assert info.value.body == {"raw": "<h1>oops</h1>"}
        assert info.value.message == "HTTP 500 Internal Server Error"

    def test_json_error_body_that_is_not_an_object(self, h: Harness, client: Any) -> None:
        h.server.add("GET", "/jobs/j1", reply(400, ["x"]))
        with pytest.raises(ApiError) as info:
            h.call("get_job", "j1", client=client)
        assert info.value.body == {"raw": '["x"]'}

    def test_402_with_trial_anywhere_in_the_code(self, h: Harness, client: Any) -> None:
        h.server.add("GET", "/account", reply(402, {"error": "TRIAL_over"}))
        with pytest.raises(TrialExpiredError):
            h.call("get_account", client=client)

    @pytest.mark.parametrize(
        ("status", "cls", "default"), [(429, RateLimitError, 60.0), (503, ServiceBusyError, 30.0)]
    )
    def test_retry_after_from_header_body_date_or_default(
        self, h: Harness, client: Any, status: int, cls: type[RateLimitError], default: float
    ) -> None:
        future = email.utils.formatdate(time.time() + 120, usegmt=True)
        h.server.add(
            "GET",
            "/account",
            reply(status, {"error": "x", "retry_after_sec": 99}, headers={"Retry-After": "7"}),
            reply(status, {"error": "x", "retry_after_sec": 12.5}),
            reply(status, {"error": "x"}, headers={"Retry-After": future}),
            reply(status, {"error": "x"}),
            reply(status, {"error": "x"}, headers={"Retry-After": "soon"}),
        )
        seen = []
        for _ in range(5):
            with pytest.raises(cls) as info:
                h.call("get_account", client=client)
            seen.append(info.value.retry_after_sec)
        assert seen[0] == 7.0
        assert seen[1] == 12.5
        assert 110 <= seen[2] <= 121
        assert seen[3:] == [default, default]

    def test_verify_422_without_reason_uses_the_message(self, h: Harness, client: Any) -> None:
        h.server.add(
            "POST", "/verify", reply(422, {"error": "verification_failed", "message": "m"})
        )
        with pytest.raises(VerificationFailedError) as info:
            h.call(
                "verify_outputs",
                model="m",
                inputs=["a"],
                claimed_output_commitment="00" * 32,
                client=client,
            )
        assert info.value.errors == ["m"]


class TestErrorsSync(_Errors):
    mode = "sync"


class TestErrorsAsync(_Errors):
    mode = "async"
