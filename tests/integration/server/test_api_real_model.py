"""The shipped catalog (all-MiniLM-L6-v2) served for real: the server's bytes are the prover's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openai
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
        assert [model["id"] for model in models] == ["all-minilm-l6-v2", "all-minilm-l6-v2-int8"]
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
        # the OpenAI SDK gets the prover's exact bytes, with a receipt
        account = live.account()
        with openai.OpenAI(base_url=live.url + "/v1", api_key=account.key,
                           max_retries=0) as sdk:
            raw = sdk.embeddings.with_raw_response.create(model="all-minilm-l6-v2",
                                                          input=TEXTS[:5])
        vectors = np.asarray([item.embedding for item in raw.parse().data], dtype="<f4")
        assert vectors.tobytes() == expected.embeddings[:5].tobytes()
        receipt_id = raw.headers["x-cyberian-receipt-id"]
        verify_receipt(live.client(account).get(f"/receipts/{receipt_id}").json(), keys,
                       spec=real_spec)


def _claim(model: str, commitment: str, cpu_class: str) -> dict[str, object]:
    return {"model": model, "inputs": TEXTS[:8], "claimed_output_commitment": commitment,
            "environment": {"cpu": {"class": cpu_class, "isa_level": "aarch64"}}}


@pytest.mark.real_model
def test_int8_spec_job_and_claims_from_any_cpu_class(real_spec: Spec, real_int8_spec: Spec,
                                                     tmp_path: Path) -> None:
    expected = Prover(real_int8_spec).prove(TEXTS)
    fp32 = Prover(real_spec).prove(TEXTS[:8])
    int8_claim = Prover(real_int8_spec).prove(TEXTS[:8]).output_commitment
    with running_server(tmp_path, shipped_dir("specs"), args=("--workers", "1")) as live:
        client = live.client(live.account())
        keys = parse_keys_document(client.get("/keys").json())
        job = client.post("/jobs", json={"model": "all-minilm-l6-v2-int8",
                                         "inputs": TEXTS}).json()
        final = wait_settled(client, job["id"], timeout=300)
        assert final["status"] == "SETTLED"
        assert expected.embeddings is not None
        assert client.get(f"/jobs/{job['id']}/output").content == expected.embeddings.tobytes()
        verify_receipt(client.get(f"/receipts/{final['receipt_id']}").json(), keys,
                       spec=real_int8_spec)
        # an ARM64 claimant: the int8 spec is re-executed and verified here, on x86-64 ...
        accepted = client.post("/verify", json=_claim("all-minilm-l6-v2-int8", int8_claim,
                                                      "aarch64"))
        assert accepted.status_code == 200, accepted.text
        verify_receipt(accepted.json(), keys)
        usage = client.get("/account").json()
        # ... while the FP32 spec refuses the same claimant before any work or quota
        refused = client.post("/verify", json=_claim("all-minilm-l6-v2",
                                                     fp32.output_commitment, "aarch64"))
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "cpu_class_mismatch"
        assert client.get("/account").json() == usage
