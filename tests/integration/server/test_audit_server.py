"""``GET /audit``: the receipt audit page served by the live server, and opened in Chromium.

A real job's receipt rides in the fragment and the page, served over http,
fetches the issuer's keys from the same server's ``/keys``: VALID, every
check ok in Python's order. The same receipt tampered is INVALID. The answer
carries the strict Content-Security-Policy and is not in the OpenAPI document.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from browser import load_audit_page
from server_harness import LiveServer, texts, wait_settled

from cyberian.receipts import CHECKS, check_receipt
from cyberian.receipts.audit import audit_page_html, fragment
from cyberian.server.http.routes.audit import CONTENT_SECURITY_POLICY
from cyberian.signing import parse_keys_document

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


@pytest.fixture(scope="module")
def job_receipt(server: LiveServer) -> bytes:
    """The bytes of a settled job's receipt, as ``GET /receipts/{id}`` serves them."""
    client = server.client(server.account())
    created = client.post("/jobs", json={"model": "tiny", "inputs": texts(10, "audit")})
    assert created.status_code == 201, created.text
    final = wait_settled(client, created.json()["id"])
    assert final["status"] == "SETTLED", final
    answer = client.get(f"/receipts/{final['receipt_id']}")
    assert answer.status_code == 200, answer.text
    return answer.content


def test_audit_page_is_served_without_a_key_under_a_strict_policy(server: LiveServer) -> None:
    answer = server.client().get("/audit")  # no Authorization header
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-security-policy"] == CSP == CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.content == audit_page_html().encode("utf-8")  # byte for byte the package's
    metrics = server.client().get("/metrics").text  # open on a loopback bind
    assert 'route="/audit"' in metrics


def test_audit_page_is_not_an_api_operation(server: LiveServer) -> None:
    schema: dict[str, Any] = server.client().get("/openapi.json").json()
    assert "/audit" not in schema["paths"]
    assert "/keys" in schema["paths"]


def test_served_page_verifies_a_real_job_receipt_with_the_servers_keys(
        server: LiveServer, job_receipt: bytes) -> None:
    keys = server.client().get("/keys").content
    python = check_receipt(job_receipt, parse_keys_document(keys))
    assert all(result.ok for result in python.values()), python
    view = load_audit_page(f"{server.url}/audit#{fragment(job_receipt)}")  # keys: from /keys
    assert view.state == "done", view.summary()
    assert view.order == list(CHECKS), view.summary()
    assert all(raw == "true" for raw in view.raw_ok.values()), view.summary()
    assert (view.verdict or "").startswith("VALID"), view.summary()


def test_served_page_finds_a_tampered_job_receipt_invalid(
        server: LiveServer, job_receipt: bytes) -> None:
    receipt = json.loads(job_receipt)
    receipt["replays"][0]["match"] = not receipt["replays"][0]["match"]
    tampered = json.dumps(receipt).encode()
    keys = server.client().get("/keys").content
    results = check_receipt(tampered, parse_keys_document(keys))
    expected = {name for name, result in results.items() if not result.ok}
    view = load_audit_page(f"{server.url}/audit#{fragment(tampered)}")
    assert view.state == "done", view.summary()
    assert view.failed == expected, (view.summary(), view.details)
    assert (view.verdict or "").startswith("INVALID"), view.summary()
