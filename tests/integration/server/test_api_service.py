"""Service routes and the error contract: /health, /keys, OpenAPI, unknown routes, bad bodies."""

from __future__ import annotations

import pytest
from server_harness import LiveServer

from cyberian import __version__
from cyberian.signing import parse_keys_document


def test_health_needs_no_key(server: LiveServer) -> None:
    body = server.client().get("/health").json()
    assert body["ok"] is True
    assert body["service"] == "coordinator"
    assert body["version"] == __version__
    assert body["models"] == 2


def test_ready_names_the_replica_and_its_backend(server: LiveServer,
                                                server_backend: str) -> None:
    answer = server.client().get("/ready")
    assert answer.status_code == 200
    body = answer.json()
    assert body["ready"] is True
    assert body["database"] == server_backend
    assert body["job_workers"] == "local"
    assert body["remote_workers"] == {"executor": 0, "replayer": 0}
    assert body["replica"] == (server.data_dir / "replica.id").read_text().strip()


def test_keys_publishes_the_signing_key(server: LiveServer) -> None:
    document = server.client().get("/keys").json()
    keys = parse_keys_document(document)
    assert len(keys) >= 1
    assert document["keys"][0]["alg"] == "ed25519"
    key_file = next((server.data_dir / "keys").glob("*.pem"))
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (server.data_dir / "keys").stat().st_mode & 0o777 == 0o700


def test_openapi_lists_every_route(server: LiveServer) -> None:
    paths = server.client().get("/openapi.json").json()["paths"]
    for path in ("/health", "/ready", "/keys", "/auth/register", "/auth/keys/rotate",
                 "/auth/keys/revoke", "/account", "/models", "/models/upload", "/models/uploads",
                 "/models/{model_id}", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/wait",
                 "/jobs/{job_id}/results", "/jobs/{job_id}/output", "/receipts/{receipt_id}",
                 "/receipts/{receipt_id}/verify", "/verify"):
        assert path in paths, path


def test_unknown_route_is_a_json_404(server: LiveServer) -> None:
    response = server.client().get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_wrong_method_is_a_json_405(server: LiveServer) -> None:
    response = server.client().delete("/health")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "body"),
    (b'{"model": "tiny", "inputs": "one string"}', "inputs"),
    (b'{"model": "tiny", "inputs": [1, 2]}', "inputs.0"),
    (b'{"model": 7, "inputs": ["a"]}', "model"),
    (b"[1, 2]", "body"),
])
def test_malformed_bodies_are_400_not_422(server: LiveServer, body: bytes, field: str) -> None:
    client = server.client(server.account())
    response = client.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["field"] == field


def test_access_log_never_shows_a_key(server: LiveServer) -> None:
    account = server.account()
    server.client(account).get("/account")
    server.client("cyb_live_" + "x" * 43).get("/account")
    log = server.log()
    assert "GET /account" in log
    assert account.key not in log
    assert "x" * 43 not in log
