"""Request metrics of the app: route templates (never raw paths), methods, statuses, latency.

The app is used without its lifespan (no services, no workers): enough for
the routes that need none, for refusals made before routing, and for a
route whose services are missing (an unexpected error, counted as 500).
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from cyberian.server.config import load_settings
from cyberian.server.http.app import create_app
from cyberian.server.metrics import ServerMetrics


def client(tmp_path: Path) -> tuple[TestClient, ServerMetrics]:
    app = create_app(load_settings(environ={}, data_dir=tmp_path, max_body_bytes=1024))
    return TestClient(app, raise_server_exceptions=False), app.state.metrics


def requests(metrics: ServerMetrics, route: str, method: str, status: int) -> float | None:
    return metrics.registry.get_sample_value(
        "cyberian_http_requests_total", {"route": route, "method": method, "status": str(status)})


def test_requests_are_counted_by_route_template(tmp_path: Path) -> None:
    http, metrics = client(tmp_path)
    assert http.get("/no/such/route").status_code == 404
    assert http.get("/jobs/job_1/nothing/here").status_code == 404
    assert http.delete("/health").status_code == 405
    assert http.get("/openapi.json").status_code == 200
    for job_id in ("job_a", "job_b", "job_c"):  # no services: an unexpected error, 500
        assert http.get(f"/jobs/{job_id}").status_code == 500
    refused = http.post("/jobs", content=b"[" + b"1," * 1000 + b"1]",
                        headers={"Content-Type": "application/json"})
    assert refused.status_code == 413  # refused by the body limit, before routing
    assert http.request("BREW", "/health").status_code == 405
    assert requests(metrics, "unmatched", "GET", 404) == 2
    assert requests(metrics, "/health", "DELETE", 405) == 1
    assert requests(metrics, "/openapi.json", "GET", 200) == 1
    assert requests(metrics, "/jobs/{job_id}", "GET", 500) == 3
    assert requests(metrics, "/jobs", "POST", 413) == 1
    assert requests(metrics, "/health", "other", 405) == 1
    assert metrics.registry.get_sample_value("cyberian_http_request_duration_seconds_count",
                                             {"route": "/jobs/{job_id}", "method": "GET"}) == 3
    exposition = metrics.render(None)[0].decode()
    assert "job_a" not in exposition
    assert "/no/such/route" not in exposition


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    first, first_metrics = client(tmp_path / "one")
    _, second_metrics = client(tmp_path / "two")
    assert first_metrics.registry is not second_metrics.registry
    first.get("/openapi.json")
    assert requests(first_metrics, "/openapi.json", "GET", 200) == 1
    assert requests(second_metrics, "/openapi.json", "GET", 200) is None
