"""Who may read /metrics: the ``metrics`` setting, the bind address and the bearer token."""

from __future__ import annotations

from typing import Any

import pytest

from cyberian.server.config import load_settings
from cyberian.server.errors import ApiProblem
from cyberian.server.metrics_access import MetricsGate, is_loopback

TOKEN = "scrape-token-0123456789abcdef"


def gate(**settings: Any) -> MetricsGate:
    return MetricsGate.from_settings(load_settings(environ={}, **settings))


def refusal(gate: MetricsGate, authorization: str | None = None) -> ApiProblem:
    with pytest.raises(ApiProblem) as refused:
        gate.check(authorization)
    return refused.value


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("example.org", False), ("", False),
])
def test_loopback_bind_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auto_is_open_on_a_loopback_bind() -> None:
    gate(host="127.0.0.1").check(None)
    gate(host="::1").check("Bearer anything")


def test_auto_refuses_a_non_loopback_bind_without_a_token() -> None:
    problem = refusal(gate(host="0.0.0.0"))
    assert (problem.status, problem.code) == (403, "forbidden")
    assert "metrics_token" in problem.message


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_a_token_gates_auto_on_any_bind(host: str) -> None:
    gated = gate(host=host, metrics_token=TOKEN)
    gated.check(f"Bearer {TOKEN}")
    gated.check(f"bearer   {TOKEN} ")
    for wrong in (None, "", "Bearer", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer cyb_live_x",
                  TOKEN):
        problem = refusal(gated, wrong)
        assert (problem.status, problem.code) == (401, "unauthorized"), wrong
        assert problem.headers == {"WWW-Authenticate": "Bearer"}
        assert TOKEN not in problem.message
        assert TOKEN not in repr(problem)


def test_open_token_and_off_modes() -> None:
    gate(host="0.0.0.0", metrics="open").check(None)
    token = gate(host="127.0.0.1", metrics="token", metrics_token=TOKEN)
    assert refusal(token).status == 401
    token.check(f"Bearer {TOKEN}")
    off = refusal(gate(host="127.0.0.1", metrics="off"), f"Bearer {TOKEN}")
    assert (off.status, off.code) == (404, "not_found")


def test_the_gate_never_shows_its_token() -> None:
    gated = gate(host="0.0.0.0", metrics_token=TOKEN)
    assert TOKEN not in repr(gated)
    assert TOKEN not in str(gated)
