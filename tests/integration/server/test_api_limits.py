"""Hostile and clumsy input (issue 11): limits before work, honest billing, clean logs.

Every refusal here is a 4xx naming its limit and setting, leaves no job row
and spends nothing; the hostile bodies are refused within a bound while a
concurrent ``/health`` prober on loopback keeps getting answers.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
import yaml
from onnx import numpy_helper
from server_harness import LiveServer, texts, wait_settled

from cyberian.models.tiny import build_tiny_model
from cyberian.spec import Spec

REFUSE_WITHIN = 2.0
"""Seconds a hostile request may take to be refused (and /health to answer meanwhile)."""


class HealthProber:
    """Asks ``/health`` every 20 ms in a thread and records the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ok = client.get("/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append(time.monotonic() - started)
                self.failures += not ok
                self._stop.wait(0.02)

    def __enter__(self) -> HealthProber:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(15)

    @property
    def worst(self) -> float:
        """The slowest /health answer seen."""
        return max(self.latencies)


def _post_raw(server: LiveServer, key: str, route: str, body: bytes,
              timeout: float = 10) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(server.url + route, content=body, timeout=timeout,
                          headers={"Authorization": f"Bearer {key}",
                                   "Content-Type": "application/json"})
    return response, time.monotonic() - started


def _nothing_stored(server: LiveServer, account_id: str) -> None:
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account_id,)) == 0


@pytest.mark.parametrize("items", [3_000_000])
def test_millions_of_wrong_typed_items_are_refused_fast_while_health_answers(
        server: LiveServer, items: int) -> None:
    account = server.account("enterprise")
    body = b'{"model": "tiny", "inputs": [' + b"1," * (items - 1) + b"1]}"
    with HealthProber(server.url) as prober:
        time.sleep(0.1)
        response, elapsed = _post_raw(server, account.key, "/jobs", body)
        time.sleep(0.1)
    print(f"\n{items} items ({len(body) / 2**20:.1f} MiB): refused in {elapsed:.3f} s, "
          f"/health worst {prober.worst * 1000:.0f} ms over {len(prober.latencies)} probes")
    assert response.status_code == 413, response.text
    refusal = response.json()
    assert refusal["error"] == "request_too_large"
    assert refusal["setting"] == "max_json_values"
    assert refusal["limit"] == 250_000
    assert "250000" in refusal["message"]
    assert elapsed < REFUSE_WITHIN
    assert prober.failures == 0
    assert prober.worst < REFUSE_WITHIN
    _nothing_stored(server, account.id)


def test_wrong_typed_items_under_the_value_limit_cost_one_error(server: LiveServer) -> None:
    account = server.account("enterprise")
    body = json.dumps({"model": "tiny", "inputs": [1] * 200_000}).encode()
    response, elapsed = _post_raw(server, account.key, "/jobs", body)
    assert response.status_code == 400, response.text
    refusal = response.json()
    assert refusal["error"] == "invalid_request"
    assert refusal["field"] == "inputs.0"
    assert refusal["error_count"] == 1
    assert len(response.content) < 2000
    assert elapsed < REFUSE_WITHIN
    _nothing_stored(server, account.id)


def _deep(levels: int) -> bytes:
    return (b'{"model": "tiny", "inputs": ["a"], "claimed_output_commitment": "' + b"0" * 64
            + b'", "environment": {"x": ' + b"[" * levels + b"]" * levels + b"}}")


@pytest.mark.parametrize("route", ["/jobs", "/verify"])
def test_deep_nesting_is_400_naming_the_depth_limit(server: LiveServer, route: str) -> None:
    account = server.account()
    response, _ = _post_raw(server, account.key, route, _deep(5000))
    assert response.status_code == 400, response.text
    refusal = response.json()
    assert (refusal["error"], refusal["setting"], refusal["limit"]) == (
        "invalid_request", "max_json_depth", 32)
    _nothing_stored(server, account.id)


@pytest.mark.parametrize(("body", "setting", "field"), [
    ({"model": "tiny", "inputs": ["a"] * 100_001}, "max_texts_per_request", "inputs"),
    ({"model": "tiny", "inputs": ["ok", "x" * 100_001]}, "max_text_chars", "inputs.1"),
    ({"spec_yaml": "# " + "y" * 70_000, "input_texts": ["a"]}, "max_spec_bytes", "spec_yaml"),
])
def test_each_server_limit_is_413_naming_it(server: LiveServer, body: dict[str, Any],
                                            setting: str, field: str) -> None:
    account = server.account("enterprise")
    response = server.client(account).post("/jobs", json=body)
    assert response.status_code == 413, response.text
    refusal = response.json()
    assert (refusal["error"], refusal["setting"], refusal["field"]) == (
        "request_too_large", setting, field)
    assert f"setting {setting}" in refusal["message"]
    _nothing_stored(server, account.id)


@pytest.mark.parametrize("route", ["/jobs", "/verify"])
def test_a_lone_surrogate_is_400_naming_the_field(server: LiveServer, route: str) -> None:
    account = server.account()
    body = (b'{"model": "tiny", "inputs": ["fine", "\\ud800"], '
            b'"claimed_output_commitment": "' + b"0" * 64 + b'"}')
    response = httpx.post(server.url + route, content=body, timeout=30,
                          headers={"Authorization": f"Bearer {account.key}",
                                   "Content-Type": "application/json",
                                   "Idempotency-Key": "surrogate-1"})
    assert response.status_code == 400, response.text
    refusal = response.json()
    assert (refusal["error"], refusal["field"]) == ("invalid_request", "inputs.1")
    assert "Unicode" in refusal["message"]
    _nothing_stored(server, account.id)


def test_a_valid_surrogate_pair_is_a_text_like_any_other(server: LiveServer) -> None:
    account = server.account()
    body = b'{"model": "tiny", "inputs": ["emoji \\ud83d\\ude00"]}'
    response, _ = _post_raw(server, account.key, "/jobs", body, timeout=30)
    assert response.status_code == 201, response.text


def test_the_caller_cannot_choose_the_billing_unit(server: LiveServer, tiny: Spec) -> None:
    document = tiny.hashed_document()
    document["chunking"]["chunk_size"] = 100_000
    account = server.account()
    client = server.client(account)
    response = client.post("/jobs", json={"spec_yaml": yaml.safe_dump(document),
                                          "input_texts": texts(40, "billing")})
    assert response.status_code == 201, response.text
    job = wait_settled(client, response.json()["id"])
    assert job["status"] == "SETTLED"
    # charged in the catalog's chunks of 4, not in the caller's one chunk of 100000
    assert client.get("/account").json()["chunks_consumed_period"] == 10
    assert (job["chunk_count"], job["billed_chunks"]) == (1, 10)


def test_secrets_in_query_strings_never_reach_the_log(server: LiveServer) -> None:
    account = server.account()
    other_secret = "s3cr3t-t0ken-value-1234"
    httpx.get(server.url + "/account", params={"api_key": account.key}, timeout=10)
    httpx.get(server.url + "/health", params={"token": other_secret}, timeout=10)
    httpx.get(server.url + f"/models?key={account.key}", timeout=10,
              headers={"Authorization": f"Bearer {account.key}"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "token=[redacted]" not in server.log():
        time.sleep(0.1)
    log = server.log()
    secret_part = account.key.split("_", 2)[2]
    assert secret_part not in log
    assert other_secret not in log
    assert "api_key=cyb_trial_[redacted]" in log
    assert "token=[redacted]" in log


def _nan_model(folder: Path) -> bytes:
    """The tiny model with NaN word embeddings: every output is NaN."""
    model = onnx.load(build_tiny_model(folder, seed=2).model_path)
    largest = max(model.graph.initializer, key=lambda tensor: int(np.prod(tensor.dims)))
    poisoned = np.full(tuple(largest.dims), np.nan, dtype=np.float32)
    largest.CopyFrom(numpy_helper.from_array(poisoned, largest.name))
    return model.SerializeToString()


UPLOAD = {"name": "nan-tiny", "output_dimensions": 32, "tokenizer": "tiny"}


def test_a_model_with_non_finite_outputs_is_refused_at_upload(server: LiveServer,
                                                              tmp_path: Path) -> None:
    client = server.client(server.account("enterprise"))
    response = client.post("/models/upload", content=_nan_model(tmp_path), params=UPLOAD,
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 400, response.text
    assert "non-finite" in response.json()["message"]


def test_a_job_on_a_model_with_non_finite_outputs_fails(server: LiveServer,
                                                        tmp_path: Path) -> None:
    """An upload accepted before the check existed: its job FAILS, never settles zeros."""
    account = server.account("enterprise")
    client = server.client(account)
    good = build_tiny_model(tmp_path / "good", seed=3).model_path.read_bytes()
    uploaded = client.post("/models/upload", content=good, params=UPLOAD,
                           headers={"Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 201, uploaded.text
    poisoned = _nan_model(tmp_path)
    digest = hashlib.sha256(poisoned).hexdigest()
    (server.data_dir / "models" / digest).write_bytes(poisoned)
    store = server.store()
    try:
        store.execute("UPDATE models SET sha256 = ?, spec_yaml = replace(spec_yaml, ?, ?) "
                      "WHERE id = ?", (digest, hashlib.sha256(good).hexdigest(), digest,
                                       uploaded.json()["model_id"]))
    finally:
        store.close()
    response = client.post("/jobs", json={"model": uploaded.json()["model_id"],
                                          "inputs": texts(5, "nan")})
    assert response.status_code == 201, response.text
    job = wait_settled(client, response.json()["id"])
    assert job["status"] == "FAILED"
    assert "non-finite" in job["error"]
    assert job["receipt_id"] is None


def test_yaml_alias_and_depth_limits_are_server_settings(tiny: Spec, catalog_dir: Path,
                                                         tmp_path: Path) -> None:
    from server_harness import running_server

    document = tiny.hashed_document()
    one_alias = yaml.safe_dump(document).replace("name: tiny", "name: &n tiny") + "x-ref: *n\n"
    with running_server(tmp_path, catalog_dir, env={"CYBERIAN_MAX_SPEC_ALIASES": "0",
                                                    "CYBERIAN_MAX_SPEC_DEPTH": "4"}) as strict:
        account = strict.account()
        client = strict.client(account)
        aliased = client.post("/jobs", json={"spec_yaml": one_alias, "input_texts": ["a"]})
        assert aliased.status_code == 400, aliased.text
        assert aliased.json()["error"] == "invalid_spec"
        assert "max_aliases" in aliased.json()["message"]
        deep = yaml.safe_dump(document) + "x-deep: [[[[[1]]]]]\n"
        nested = client.post("/jobs", json={"spec_yaml": deep, "input_texts": ["a"]})
        assert nested.status_code == 400, nested.text
        assert "max_depth" in nested.json()["message"]
        assert strict.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == 0


def test_a_spec_whose_dimensions_the_model_cannot_give_is_refused_up_front(
        server: LiveServer, tiny: Spec) -> None:
    document = tiny.hashed_document()
    document["output"]["dimensions"] = 1
    account = server.account()
    client = server.client(account)
    response = client.post("/jobs", json={"spec_yaml": yaml.safe_dump(document),
                                          "input_texts": ["a"]})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "output.dimensions"
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == 0
