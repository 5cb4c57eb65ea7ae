"""Two accounts see nothing of each other: every foreign id is a 404, never a 403."""

from __future__ import annotations

from pathlib import Path

from server_harness import LiveServer, texts, wait_settled

from cyberian.models.tiny import build_tiny_model


def test_foreign_jobs_receipts_keys_and_models_are_404(server: LiveServer,
                                                       tmp_path: Path) -> None:
    alice, bob = server.account("enterprise"), server.account("enterprise")
    a, b = server.client(alice), server.client(bob)
    job = a.post("/jobs", json={"model": "tiny", "inputs": texts(3)}).json()
    final = wait_settled(a, job["id"])
    receipt_id = final["receipt_id"]
    for path in (f"/jobs/{job['id']}", f"/jobs/{job['id']}/wait", f"/jobs/{job['id']}/results",
                 f"/jobs/{job['id']}/output", f"/receipts/{receipt_id}",
                 f"/receipts/{receipt_id}/verify"):
        assert a.get(path).status_code == 200, path
        refused = b.get(path)
        assert refused.status_code == 404, path
        assert refused.json()["error"] == "not_found"
    assert b.post("/auth/keys/revoke", json={"key_id": alice.key_id}).status_code == 404
    assert a.get("/account").status_code == 200  # alice's key survived bob's attempt
    model = build_tiny_model(tmp_path, seed=3).model_path.read_bytes()
    upload = a.post("/models/upload", content=model,
                    params={"name": "private", "output_dimensions": 32, "tokenizer": "tiny"})
    model_id = upload.json()["model_id"]
    assert model_id not in [m["id"] for m in b.get("/models").json()["models"]]
    assert b.get("/models/uploads").json() == {"models": []}
    assert b.delete(f"/models/{model_id}").status_code == 404
    used = b.post("/jobs", json={"model": model_id, "inputs": ["a"]})
    assert used.status_code == 400
    assert used.json()["field"] == "model"
    assert a.get("/models/uploads").json()["models"][0]["id"] == model_id
