"""Our own sync and async clients, end to end against the live server."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from server_harness import LiveServer, texts

from cyberian.client import AsyncClient, Client
from cyberian.exceptions import (
    ApiError,
    AuthError,
    QuotaError,
    RateLimitError,
    VerificationFailedError,
)
from cyberian.models.tiny import build_tiny_model
from cyberian.prover import Prover
from cyberian.spec import Spec


def test_sync_client_end_to_end(server: LiveServer, tiny: Spec, catalog_dir: Path,
                                tmp_path: Path) -> None:
    account = server.account("enterprise")
    inputs = texts(9, "own sync")
    expected = Prover(tiny).prove(inputs)
    seen: list[str] = []
    with Client(account.key, base_url=server.url) as client:
        assert client.health()["ok"] is True
        result = client.submit_and_wait(model="tiny", inputs=inputs,
                                        on_progress=lambda job: seen.append(job["status"]))
        assert result.job["status"] == "SETTLED"
        assert seen[-1] == "SETTLED"
        assert result.verification is not None
        assert result.verification["valid"] is True
        assert result.embeddings.tobytes() == expected.embeddings.tobytes()  # type: ignore[union-attr]
        verified = client.verify_receipt_offline(result.receipt)
        assert verified.kind == "job"
        spec_result = client.submit_and_wait(spec_yaml=catalog_dir / "tiny.yaml",
                                             input_texts=inputs)
        assert spec_result.embeddings.tobytes() == result.embeddings.tobytes()
        results = client.get_job_results(result.job["id"])
        assert len(results["chunks"]) == 3
        receipt = client.verify_outputs(model="tiny", inputs=inputs,
                                        claimed_output_commitment=expected.output_commitment)
        assert receipt["kind"] == "vaas"
        with pytest.raises(VerificationFailedError) as failed:
            client.verify_outputs(model="tiny", inputs=inputs,
                                  claimed_output_commitments=["0" * 64])
        assert "block 0" in str(failed.value.errors[0])
        with pytest.raises(ApiError) as unknown:
            client.submit_job(model="nope", inputs=inputs)
        assert unknown.value.status_code == 400
        model = build_tiny_model(tmp_path, seed=6).model_path
        uploaded = client.upload_model(model, "own-client", 32, "tiny")
        assert [m["id"] for m in client.list_uploaded_models()] == [uploaded["model_id"]]
        client.delete_model(uploaded["model_id"])
        assert client.list_uploaded_models() == []
        new_key = client.rotate_key()
        with Client(new_key, base_url=server.url) as second:
            assert second.get_account()["account_id"] == account.id
            client.revoke_key(key_id=new_key.split("_", 2)[2][:12])
            with pytest.raises(AuthError):
                second.get_account()


def test_async_client_end_to_end(server: LiveServer, tiny: Spec) -> None:
    account = server.account()
    inputs = texts(6, "own async")
    expected = Prover(tiny).prove(inputs)

    async def scenario() -> None:
        async with AsyncClient(account.key, base_url=server.url) as client:
            results = await asyncio.gather(*(
                client.submit_and_wait(model="tiny", inputs=inputs) for _ in range(3)))
            for result in results:
                assert result.embeddings.tobytes() == expected.embeddings.tobytes()  # type: ignore[union-attr]
                await client.verify_receipt_offline(result.receipt)
            receipt = await client.verify_outputs(
                model="tiny", inputs=inputs,
                claimed_output_commitment=hashlib.sha256(
                    expected.embeddings.tobytes()).hexdigest())  # type: ignore[union-attr]
            assert receipt["kind"] == "vaas"
            with pytest.raises(QuotaError):
                await client.submit_job(model="tiny", inputs=["x"] * 1001)
            account_state = await client.get_account()
            assert account_state["chunks_consumed_period"] == 3 * 2 + 2

    asyncio.run(scenario())


def test_client_maps_rate_limits(server: LiveServer) -> None:
    account = server.account("free")  # 10 requests per minute
    with Client(account.key, base_url=server.url, max_retries=0) as client:
        for _ in range(10):
            client.get_account()
        with pytest.raises(RateLimitError) as limited:
            client.get_account()
        assert 1 <= limited.value.retry_after_sec <= 60
