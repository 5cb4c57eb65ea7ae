"""Models: the catalog, uploads (enterprise), using an upload, deleting it, refusals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from server_harness import LiveServer, texts, wait_settled

from cyberian.models.tiny import build_tiny_model
from cyberian.prover import Prover
from cyberian.spec import Spec


@pytest.fixture(scope="module")
def onnx_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A BERT-style ONNX model that is not in the catalog (the tiny model, other weights)."""
    return build_tiny_model(tmp_path_factory.mktemp("upload"), seed=1).model_path.read_bytes()


PARAMS = {"name": "acme-tiny", "output_dimensions": 32, "tokenizer": "tiny",
          "description": "a test upload"}


def test_catalog_lists_each_spec_name(server: LiveServer, tiny: Spec) -> None:
    models = server.client(server.account()).get("/models").json()["models"]
    assert [model["id"] for model in models] == ["tiny", "tiny-all"]
    first = models[0]
    assert first["name"] == "tiny"
    assert first["dimensions"] == 32
    assert first["spec_hash"] == tiny.spec_hash
    assert first["chunk_size"] == 4
    stored = server.data_dir / "models" / tiny.model_sha256
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == tiny.model_sha256


def test_upload_use_list_and_delete(server: LiveServer, onnx_bytes: bytes, tiny: Spec,
                                    tmp_path: Path) -> None:
    account = server.account("enterprise")
    client = server.client(account)
    response = client.post("/models/upload", content=onnx_bytes, params=PARAMS,
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    uploaded = response.json()
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    assert uploaded["hash"] == sha
    assert uploaded["size_bytes"] == len(onnx_bytes)
    assert uploaded["ready_for_use"] is True
    assert uploaded["model_id"].startswith("byom-acme-tiny-")
    assert (server.data_dir / "models" / sha).read_bytes() == onnx_bytes
    # idempotent: same bytes, same name
    again = client.post("/models/upload", content=onnx_bytes, params=PARAMS)
    assert again.status_code == 200
    assert again.json()["model_id"] == uploaded["model_id"]
    # listed
    listed = client.get("/models/uploads").json()["models"]
    assert [model["id"] for model in listed] == [uploaded["model_id"]]
    assert listed[0]["description"] == "a test upload"
    assert uploaded["model_id"] in [m["id"] for m in client.get("/models").json()["models"]]
    # usable like a catalog model, with the same bytes as the in-process prover
    inputs = texts(5, "byom")
    job = client.post("/jobs", json={"model": uploaded["model_id"], "inputs": inputs}).json()
    final = wait_settled(client, job["id"])
    assert final["status"] == "SETTLED"
    assert final["model"] == uploaded["model_id"]
    (tmp_path / "m.onnx").write_bytes(onnx_bytes)
    spec = tiny.replace(model={"sha256": sha}, name="acme-tiny").with_files(
        tmp_path / "m.onnx", tiny.tokenizer_path)
    expected = Prover(spec).prove(inputs).embeddings
    assert expected is not None
    assert client.get(f"/jobs/{job['id']}/output").content == expected.tobytes()
    receipt = client.get(f"/receipts/{final['receipt_id']}").json()
    assert receipt["model_sha256"] == sha
    # same name, other bytes: refused until deleted
    clash = client.post("/models/upload", content=onnx_bytes + b"\0", params=PARAMS)
    assert clash.status_code == 409
    # delete: 204, then gone
    deleted = client.delete(f"/models/{uploaded['model_id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.get("/models/uploads").json() == {"models": []}
    assert client.delete(f"/models/{uploaded['model_id']}").status_code == 404
    refused = client.post("/jobs", json={"model": uploaded["model_id"], "inputs": ["a"]})
    assert refused.status_code == 400
    # the name is free again
    assert client.post("/models/upload", content=onnx_bytes, params=PARAMS).status_code == 201


def test_same_name_with_other_bytes_is_409(server: LiveServer, onnx_bytes: bytes,
                                           tmp_path: Path) -> None:
    other = build_tiny_model(tmp_path, seed=2).model_path.read_bytes()
    client = server.client(server.account("enterprise"))
    assert client.post("/models/upload", content=onnx_bytes, params=PARAMS).status_code == 201
    clash = client.post("/models/upload", content=other, params=PARAMS)
    assert clash.status_code == 409
    assert clash.json()["error"] == "model_name_taken"


def test_upload_needs_the_enterprise_tier(server: LiveServer, onnx_bytes: bytes) -> None:
    for tier in ("trial", "free"):
        response = server.client(server.account(tier)).post(
            "/models/upload", content=onnx_bytes, params=PARAMS)
        assert response.status_code == 402
        assert response.json()["error"] == "tier_required"


@pytest.mark.parametrize(("content", "params", "field"), [
    (b"definitely not onnx", PARAMS, "body"),
    (b"", PARAMS, None),
    (None, {**PARAMS, "tokenizer": "BAAI/bge-small-en-v1.5"}, "tokenizer"),
    (None, {**PARAMS, "name": "Not_Kebab"}, "query.name"),
    (None, {**PARAMS, "output_dimensions": 0}, "query.output_dimensions"),
    (None, {**PARAMS, "pooling_strategy": "max"}, "query.pooling_strategy"),
    (None, {**PARAMS, "output_dimensions": 31}, "body"),
    (None, {**PARAMS, "pooling_strategy": "none"}, "body"),
])
def test_bad_uploads_are_400_and_leave_nothing(server: LiveServer, onnx_bytes: bytes,
                                               content: bytes | None,
                                               params: dict[str, object],
                                               field: str | None) -> None:
    account = server.account("enterprise")
    models_before = set((server.data_dir / "models").iterdir())
    response = server.client(account).post(
        "/models/upload", content=onnx_bytes if content is None else content, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json().get("field") == field
    assert set((server.data_dir / "models").iterdir()) == models_before
    assert list((server.data_dir / "tmp").iterdir()) == []
    assert server.scalar("SELECT COUNT(*) FROM models WHERE account_id = ?", (account.id,)) == 0
