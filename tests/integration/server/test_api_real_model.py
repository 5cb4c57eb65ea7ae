"""The shipped catalog (all-MiniLM-L6-v2) served for real: the server's bytes are the prover's."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_harness import running_server, wait_settled

from cyberian._paths import shipped_dir
from cyberian.prover import Prover
from cyberian.receipts import verify_receipt
from cyberian.signing import parse_keys_document
from cyberian.spec import Spec

TEXTS = [f"Sentence {i}: verified inference keeps every embedding reproducible." for i in range(40)]


@pytest.mark.real_model
def test_shipped_model_job_and_vaas(real_spec: Spec, tmp_path: Path) -> None:
    expected = Prover(real_spec).prove(TEXTS)
    with running_server(tmp_path, shipped_dir("specs"), args=("--workers", "1")) as live:
        client = live.client(live.account())
        models = client.get("/models").json()["models"]
        assert [model["id"] for model in models] == ["all-minilm-l6-v2"]
        assert models[0]["spec_hash"] == real_spec.spec_hash
        assert models[0]["dimensions"] == 384
        job = client.post("/jobs", json={"model": "all-minilm-l6-v2", "inputs": TEXTS}).json()
        final = wait_settled(client, job["id"], timeout=300)
        assert final["status"] == "SETTLED"
        assert final["chunk_count"] == 2
        output = client.get(f"/jobs/{job['id']}/output")
        assert output.headers["x-cyberian-shape"] == "40,384"
        assert expected.embeddings is not None
        assert output.content == expected.embeddings.tobytes()
        keys = parse_keys_document(client.get("/keys").json())
        receipt = client.get(f"/receipts/{final['receipt_id']}").json()
        verify_receipt(receipt, keys, spec=real_spec)
        assert receipt["output_root"] == final["output_root"]
        vaas = client.post("/verify", json={"model": "all-minilm-l6-v2", "inputs": TEXTS,
                                            "claimed_output_commitment":
                                                expected.output_commitment})
        assert vaas.status_code == 200, vaas.text
        verify_receipt(vaas.json(), keys)
