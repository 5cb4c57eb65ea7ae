"""The real ``openai`` package against ``/v1/embeddings`` and ``/v1/models``.

Every vector the OpenAI SDK receives must be certified: byte-identical to the
SETTLED job's ``/jobs/{id}/output``, with a receipt that verifies offline,
and what we cannot honour must raise the SDK's own typed errors while
spending nothing and leaving no row.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import openai
import pytest
from server_harness import Account, LiveServer, texts

from cyberian.receipts import verify_receipt
from cyberian.signing import parse_keys_document
from cyberian.spec import Spec
from cyberian.tokenization import PinnedTokenizer

Connect = Callable[[Account | str], openai.OpenAI]


@pytest.fixture
def sdk(server: LiveServer) -> Iterator[Connect]:
    """OpenAI clients pointed at the server as a user constructs them (closed afterwards)."""
    made: list[openai.OpenAI] = []

    def connect(account: Account | str) -> openai.OpenAI:
        key = account.key if isinstance(account, Account) else account
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0,
                               timeout=60)
        made.append(client)
        return client

    yield connect
    for client in made:
        client.close()


def rows(response: Any) -> np.ndarray:
    """The response's vectors as float32 rows, in index order."""
    data = sorted(response.data, key=lambda item: item.index)
    return np.asarray([item.embedding for item in data], dtype=np.float32)


def tokens(spec: Spec, inputs: list[str]) -> int:
    """The tokens the pinned tokenizer gives ``inputs`` (special tokens included)."""
    tokenizer = PinnedTokenizer.from_file(spec.tokenizer_path, max_length=spec.max_length)
    return sum(len(ids) for ids in tokenizer.encode(inputs))


def spent(server: LiveServer, account: Account) -> tuple[int, int]:
    """The account's jobs and billed chunks, as the database holds them."""
    jobs = server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,))
    chunks = server.scalar("SELECT COALESCE(SUM(billed_chunks), 0) FROM jobs "
                           "WHERE account_id = ?", (account.id,))
    return int(jobs), int(chunks)


def test_float_vectors_are_the_settled_jobs_bytes_with_a_receipt(
        server: LiveServer, tiny: Spec, sdk: Connect) -> None:
    account = server.account()
    inputs = texts(6, "openai float")
    raw = sdk(account).embeddings.with_raw_response.create(
        model="tiny", input=inputs, encoding_format="float")
    response = raw.parse()
    job_id = raw.headers["x-cyberian-job-id"]
    receipt_id = raw.headers["x-cyberian-receipt-id"]
    assert response.object == "list"
    assert response.model == "tiny"
    assert [item.index for item in response.data] == list(range(6))
    assert all(item.object == "embedding" for item in response.data)
    assert response.usage.prompt_tokens == tokens(tiny, inputs)
    assert response.usage.total_tokens == response.usage.prompt_tokens
    extra = response.model_extra or {}
    assert extra["cyberian"]["job_id"] == job_id
    assert extra["cyberian"]["receipt_id"] == receipt_id
    assert extra["cyberian"]["spec_hash"] == tiny.spec_hash

    client = server.client(account)
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "SETTLED"
    assert job["receipt_id"] == receipt_id
    output = client.get(f"/jobs/{job_id}/output").content
    assert rows(response).astype("<f4").tobytes() == output

    receipt = client.get(f"/receipts/{receipt_id}").json()
    keys = parse_keys_document(client.get("/keys").json())
    verified = verify_receipt(receipt, keys)
    assert verified.receipt["job_id"] == job_id
    assert receipt["input_count"] == 6


def test_base64_the_sdk_default_decodes_to_the_same_bytes(server: LiveServer,
                                                         sdk: Connect) -> None:
    account = server.account()
    inputs = texts(3, "openai base64")
    client = sdk(account)
    floats = client.embeddings.create(model="tiny", input=inputs, encoding_format="float")
    decoded = client.embeddings.create(model="tiny", input=inputs)  # the SDK asks for base64
    assert rows(decoded).tobytes() == rows(floats).tobytes()

    raw = server.client(account).post("/v1/embeddings", json={
        "model": "tiny", "input": inputs[0], "encoding_format": "base64", "user": "someone"})
    assert raw.status_code == 200, raw.text
    payload = raw.json()
    assert len(payload["data"]) == 1
    vector = np.frombuffer(base64.b64decode(payload["data"][0]["embedding"]), dtype="<f4")
    assert vector.tobytes() == rows(floats)[0].astype("<f4").tobytes()


def test_a_single_string_input_gives_one_vector(server: LiveServer, tiny: Spec,
                                                sdk: Connect) -> None:
    response = sdk(server.account()).embeddings.create(
        model="tiny", input="just one text", encoding_format="float")
    assert len(response.data) == 1
    assert len(response.data[0].embedding) == tiny.dimensions
    assert response.usage.prompt_tokens == tokens(tiny, ["just one text"])


@pytest.mark.parametrize(("kwargs", "error", "code", "param", "words"), [
    ({"input": [[101, 2023, 102]]}, openai.BadRequestError, "token_ids_not_supported",
     "input", "check_embedding_ctx_length=False"),
    ({"input": [101, 2023, 102]}, openai.BadRequestError, "token_ids_not_supported",
     "input", "token-id arrays"),
    ({"input": []}, openai.BadRequestError, "invalid_request", "input", "at least one"),
    ({"input": ""}, openai.BadRequestError, "invalid_request", "input", "must not be empty"),
    ({"input": ["fine", ""]}, openai.BadRequestError, "invalid_request", "input", "input[1]"),
    ({"input": ["a"], "dimensions": 8}, openai.BadRequestError, "invalid_request",
     "dimensions", "not trained for truncation"),
    ({"input": ["a"], "model": "no-such-model"}, openai.NotFoundError, "model_not_found",
     "model", "GET /v1/models"),
    ({"input": ["a"], "encoding_format": "int8"}, openai.BadRequestError, "invalid_request",
     "encoding_format", "encoding_format"),
])
def test_what_we_cannot_honour_is_an_openai_error_that_spends_nothing(
        server: LiveServer, kwargs: dict[str, Any], error: type[openai.APIStatusError],
        code: str, param: str, words: str, sdk: Connect) -> None:
    account = server.account()
    arguments = {"model": "tiny", "encoding_format": "float", **kwargs}
    with pytest.raises(error) as caught:
        sdk(account).embeddings.create(**arguments)
    body = caught.value.body
    assert isinstance(body, dict)
    assert caught.value.code == code
    assert body["code"] == code
    assert body["param"] == param
    assert body["type"] in ("invalid_request_error", "not_found_error")
    assert words in body["message"]
    assert spent(server, account) == (0, 0)
    assert server.client(account).get("/account").json()["chunks_consumed_period"] == 0


def test_a_bad_key_is_the_sdks_authentication_error(server: LiveServer, sdk: Connect) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk("cyb_live_not-a-real-key").embeddings.create(model="tiny", input=["x"])
    assert caught.value.code == "unauthorized"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "authentication_error"


@pytest.mark.parametrize(("tier", "count", "status", "code"), [
    ("free", 120, 402, "quota_exceeded"),  # 30 chunks of 4; the free tier has 25 a day
    ("trial", 1001, 413, "request_too_large"),  # the trial takes 1000 texts a request
])
def test_limits_and_quotas_are_openai_errors_that_spend_nothing(
        server: LiveServer, tier: str, count: int, status: int, code: str, sdk: Connect) -> None:
    account = server.account(tier)
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(account).embeddings.create(model="tiny", input=texts(count))
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert spent(server, account) == (0, 0)


def test_models_lists_the_catalog_for_the_sdk(server: LiveServer, sdk: Connect) -> None:
    listed = sdk(server.account()).models.list()
    ids = [model.id for model in listed.data]
    assert {"tiny", "tiny-all"} <= set(ids)
    assert all(model.object == "model" for model in listed.data)
    with pytest.raises(openai.AuthenticationError):
        list(sdk("cyb_live_wrong").models.list())


def test_an_unknown_v1_route_answers_in_openais_shape(server: LiveServer) -> None:
    response = server.client(server.account()).post("/v1/chat/completions", json={})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["type"] == "not_found_error"
    assert set(error) >= {"message", "type", "param", "code"}
