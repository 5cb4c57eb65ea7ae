"""Every public method: route, headers, body, and what it returns."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from client_fakes import Harness, Twin, reply

from cyberian.client import JobResult
from cyberian.exceptions import ApiError, VerificationFailedError

SPEC_TEXT = "ces_version: '1.0'\nname: tiny-model\n"
COMMITMENT = "ab" * 32


def _json(request: object) -> object:
    return json.loads(request.content)  # type: ignore[attr-defined]


class _Methods(Twin):
    # -- service, account, keys --------------------------------------------------

    def test_health(self, h: Harness) -> None:
        h.server.add("GET", "/health", reply(json={"ok": True, "service": "coordinator"}))
        assert h.call("health") == {"ok": True, "service": "coordinator"}
        assert h.server.paths() == ["GET /health"]

    def test_get_keys(self, h: Harness) -> None:
        doc = {"keys": [{"keyid": "k", "alg": "ed25519", "public_key": "AAAA"}]}
        h.server.add("GET", "/keys", reply(json=doc))
        assert h.call("get_keys") == doc

    def test_get_account(self, h: Harness) -> None:
        h.server.add("GET", "/account", reply(json={"account_id": "a1", "tier": "trial"}))
        assert h.call("get_account") == {"account_id": "a1", "tier": "trial"}
        assert h.last.method == "GET"

    def test_rotate_key_returns_the_new_key(self, h: Harness) -> None:
        new = "cyb_live_" + "n" * 43
        h.server.add("POST", "/auth/keys/rotate", reply(json={"api_key": new, "key_id": "n" * 12}))
        assert h.call("rotate_key") == new
        assert h.last.content == b""

    def test_rotate_key_without_key_in_answer(self, h: Harness) -> None:
        h.server.add("POST", "/auth/keys/rotate", reply(json={"key_id": "x"}))
        with pytest.raises(ApiError, match="api_key"):
            h.call("rotate_key")

    def test_revoke_key(self, h: Harness) -> None:
        h.server.add("POST", "/auth/keys/revoke", reply(json={"revoked": "abcdefabcdef"}))
        assert h.call("revoke_key", key_id="abcdefabcdef") is None
        assert _json(h.last) == {"key_id": "abcdefabcdef"}
        assert h.last.headers["content-type"] == "application/json"

    def test_revoke_key_is_keyword_only(self, h: Harness) -> None:
        with pytest.raises(TypeError):
            h.call("revoke_key", "abcdefabcdef")

    # -- models ------------------------------------------------------------------

    def test_list_models(self, h: Harness) -> None:
        models = [{"id": "m", "name": "m", "dimensions": 384, "spec_hash": "f" * 64}]
        h.server.add("GET", "/models", reply(json={"models": models}))
        assert h.call("list_models") == models

    def test_list_models_tolerates_odd_answers(self, h: Harness) -> None:
        h.server.add("GET", "/models", reply(json={"models": "nope"}), reply(json={}))
        assert h.call("list_models") == []
        assert h.call("list_models") == []

    def test_upload_model_bytes_with_every_option(self, h: Harness) -> None:
        answer = {"model_id": "mdl_1", "hash": "0" * 64, "size_bytes": 4, "ready_for_use": True}
        h.server.add("POST", "/models/upload", reply(201, answer))
        result = h.call(
            "upload_model",
            b"ONNX",
            "my-model",
            384,
            "bert-base-uncased",
            max_sequence_length=256,
            pooling_strategy="mean",
            normalize=False,
            description="a test",
        )
        assert result == answer
        request = h.last
        assert request.content == b"ONNX"
        assert request.headers["content-type"] == "application/octet-stream"
        assert dict(request.url.params) == {
            "name": "my-model",
            "output_dimensions": "384",
            "tokenizer": "bert-base-uncased",
            "max_sequence_length": "256",
            "pooling_strategy": "mean",
            "normalize": "false",
            "description": "a test",
        }
        assert request.headers["authorization"].startswith("Bearer cyb_")
        assert request.extensions["timeout"]["read"] == 600.0

    def test_upload_model_from_a_path_with_required_params_only(
        self, h: Harness, tmp_path: Path
    ) -> None:
        model = tmp_path / "model.onnx"
        model.write_bytes(b"\x08\x07onnx-bytes")
        h.server.add("POST", "/models/upload", reply(json={"model_id": "mdl_2"}))
        assert h.call("upload_model", str(model), "m2", 768, "tok", timeout=5.0) == {
            "model_id": "mdl_2"
        }
        assert h.last.content == b"\x08\x07onnx-bytes"
        assert dict(h.last.url.params) == {
            "name": "m2",
            "output_dimensions": "768",
            "tokenizer": "tok",
        }
        assert h.last.extensions["timeout"]["read"] == 5.0

    def test_upload_model_normalize_true(self, h: Harness, tmp_path: Path) -> None:
        model = tmp_path / "model.onnx"
        model.write_bytes(b"x")
        h.server.add("POST", "/models/upload", reply(json={}))
        h.call("upload_model", model, "m3", 8, "tok", normalize=True)
        assert h.last.url.params["normalize"] == "true"

    def test_list_uploaded_models(self, h: Harness) -> None:
        h.server.add("GET", "/models/uploads", reply(json={"models": [{"model_id": "mdl_1"}]}))
        assert h.call("list_uploaded_models") == [{"model_id": "mdl_1"}]

    def test_delete_model(self, h: Harness) -> None:
        h.server.add("DELETE", "/models/mdl_1", reply(204))
        assert h.call("delete_model", "mdl_1") is None
        assert h.server.paths() == ["DELETE /models/mdl_1"]

    def test_delete_model_in_use(self, h: Harness) -> None:
        h.server.add(
            "DELETE", "/models/mdl_1", reply(409, {"error": "model_in_use", "message": "in use"})
        )
        with pytest.raises(ApiError) as info:
            h.call("delete_model", "mdl_1")
        assert info.value.status_code == 409
        assert info.value.message == "in use"

    # -- jobs: both dialects, bodies exactly as given ----------------------------

    def test_submit_job_model_dialect(self, h: Harness) -> None:
        h.server.add("POST", "/jobs", reply(201, {"id": "j1", "status": "EXECUTING"}))
        assert h.call("submit_job", model="tiny-model", inputs=["a", "b"]) == {
            "id": "j1",
            "status": "EXECUTING",
        }
        assert _json(h.last) == {"model": "tiny-model", "inputs": ["a", "b"]}
        key = h.last.headers["idempotency-key"]
        assert str(uuid.UUID(key, version=4)) == key

    def test_submit_job_spec_dialect_from_text(self, h: Harness) -> None:
        h.server.add("POST", "/jobs", reply(201, {"id": "j1"}))
        h.call("submit_job", spec_yaml=SPEC_TEXT, input_texts=("x",))
        assert _json(h.last) == {"spec_yaml": SPEC_TEXT, "input_texts": ["x"]}

    def test_submit_job_spec_from_path_object(self, h: Harness, tmp_path: Path) -> None:
        spec = tmp_path / "tiny.yaml"
        spec.write_text(SPEC_TEXT, encoding="utf-8")
        h.server.add("POST", "/jobs", reply(201, {"id": "j1"}))
        h.call("submit_job", spec_yaml=spec, input_texts=["x"])
        assert _json(h.last) == {"spec_yaml": SPEC_TEXT, "input_texts": ["x"]}

    def test_submit_job_spec_from_file_name(self, h: Harness, tmp_path: Path) -> None:
        spec = tmp_path / "tiny.ces"
        spec.write_text(SPEC_TEXT, encoding="utf-8")
        h.server.add("POST", "/jobs", reply(201, {"id": "j1"}))
        h.call("submit_job", spec_yaml=str(spec), input_texts=["x"])
        assert _json(h.last)["spec_yaml"] == SPEC_TEXT  # type: ignore[index]

    def test_submit_job_missing_spec_file_name(self, h: Harness, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            h.call("submit_job", spec_yaml=str(tmp_path / "typo.yaml"), input_texts=["x"])
        assert h.sent == []

    @pytest.mark.parametrize(
        "kwargs",
        [
            {},
            {"model": "m", "inputs": ["a"], "spec_yaml": SPEC_TEXT, "input_texts": ["a"]},
            {"model": "m", "input_texts": ["a"]},
            {"spec_yaml": SPEC_TEXT, "inputs": ["a"]},
            {"model": "m"},
            {"inputs": ["a"]},
            {"spec_yaml": SPEC_TEXT},
        ],
    )
    def test_submit_job_needs_exactly_one_dialect(
        self, h: Harness, kwargs: dict[str, object]
    ) -> None:
        with pytest.raises(ValueError, match=r"(model=|spec_yaml=).*(inputs=|input_texts=)"):
            h.call("submit_job", **kwargs)
        assert h.sent == []

    def test_a_single_string_is_not_a_list_of_inputs(self, h: Harness) -> None:
        with pytest.raises(TypeError, match="list of strings"):
            h.call("submit_job", model="m", inputs="hello")
        assert h.sent == []

    def test_get_job(self, h: Harness) -> None:
        h.server.add("GET", "/jobs/j1", reply(json={"id": "j1", "status": "PROVING"}))
        assert h.call("get_job", "j1") == {"id": "j1", "status": "PROVING"}

    def test_get_job_results(self, h: Harness) -> None:
        chunks = {"chunks": [{"index": 0, "status": "DONE", "sampled": True}]}
        h.server.add("GET", "/jobs/j1/results", reply(json=chunks))
        assert h.call("get_job_results", "j1") == chunks

    def test_non_json_success_is_an_api_error(self, h: Harness) -> None:
        h.server.add("GET", "/jobs/j1", reply(content=b"<html>"))
        with pytest.raises(ApiError, match="not JSON"):
            h.call("get_job", "j1")

    def test_json_that_is_not_an_object_is_an_api_error(self, h: Harness) -> None:
        h.server.add("GET", "/jobs/j1", reply(json=[1, 2]))
        with pytest.raises(ApiError, match="JSON object"):
            h.call("get_job", "j1")

    # -- output decoding ---------------------------------------------------------

    def test_get_job_output_decodes_a_writable_copy(self, h: Harness) -> None:
        rows = np.array([[0.5, -1.25, 3.0], [1e-7, 2.0, -0.0]], dtype="<f4")
        h.server.add(
            "GET",
            "/jobs/j1/output",
            reply(
                content=rows.tobytes(),
                headers={"x-cyberian-shape": "2,3", "x-cyberian-dtype": "float32"},
            ),
        )
        out = h.call("get_job_output", "j1")
        assert out.dtype == np.float32
        assert out.shape == (2, 3)
        assert out.tobytes() == rows.tobytes()
        assert out.flags.writeable
        out[0, 0] = 42.0  # must not raise
        assert out[0, 0] == 42.0

    def test_get_job_output_with_spaces_in_shape_and_zero_rows(self, h: Harness) -> None:
        h.server.add(
            "GET", "/jobs/j1/output", reply(content=b"", headers={"x-cyberian-shape": "0, 384"})
        )
        assert h.call("get_job_output", "j1").shape == (0, 384)

    @pytest.mark.parametrize(
        ("headers", "content", "match"),
        [
            ({}, b"\0" * 8, "x-cyberian-shape"),
            ({"x-cyberian-shape": "2"}, b"\0" * 8, "x-cyberian-shape"),
            ({"x-cyberian-shape": "a,b"}, b"\0" * 8, "x-cyberian-shape"),
            ({"x-cyberian-shape": "2,2"}, b"\0" * 12, "not the 2x2"),
            ({"x-cyberian-shape": "-1,2"}, b"", "not the -1x2"),
            ({"x-cyberian-shape": "1,1", "x-cyberian-dtype": "float16"}, b"\0" * 2, "dtype"),
        ],
    )
    def test_get_job_output_rejects_inconsistent_answers(
        self, h: Harness, headers: dict[str, str], content: bytes, match: str
    ) -> None:
        h.server.add("GET", "/jobs/j1/output", reply(content=content, headers=headers))
        with pytest.raises(ApiError, match=match):
            h.call("get_job_output", "j1")

    # -- receipts and VaaS -------------------------------------------------------

    def test_get_receipt(self, h: Harness) -> None:
        h.server.add("GET", "/receipts/r1", reply(json={"receipt_id": "r1", "receipt_hash": "h"}))
        assert h.call("get_receipt", "r1") == {"receipt_id": "r1", "receipt_hash": "h"}

    def test_verify_receipt_is_the_server_side_check(self, h: Harness) -> None:
        answer = {"valid": False, "checks": {"signature": False}, "errors": ["bad sig"]}
        h.server.add("GET", "/receipts/r1/verify", reply(json=answer))
        assert h.call("verify_receipt", "r1") == answer  # returned, not raised
        assert h.server.paths() == ["GET /receipts/r1/verify"]

    def test_verify_outputs_single_commitment(self, h: Harness) -> None:
        h.server.add("POST", "/verify", reply(json={"receipt_id": "v1", "kind": "vaas"}))
        receipt = h.call(
            "verify_outputs", model="m", inputs=["a"], claimed_output_commitment=COMMITMENT
        )
        assert receipt == {"receipt_id": "v1", "kind": "vaas"}
        assert _json(h.last) == {
            "model": "m",
            "inputs": ["a"],
            "claimed_output_commitment": COMMITMENT,
        }
        uuid.UUID(h.last.headers["idempotency-key"])

    def test_verify_outputs_per_block_commitments_in_spec_dialect(self, h: Harness) -> None:
        h.server.add("POST", "/verify", reply(json={"receipt_id": "v2"}))
        h.call(
            "verify_outputs",
            spec_yaml=SPEC_TEXT,
            input_texts=["a", "b"],
            claimed_output_commitments=(COMMITMENT, "cd" * 32),
        )
        assert _json(h.last) == {
            "spec_yaml": SPEC_TEXT,
            "input_texts": ["a", "b"],
            "claimed_output_commitments": [COMMITMENT, "cd" * 32],
        }

    @pytest.mark.parametrize(
        "claims",
        [
            {},
            {"claimed_output_commitment": COMMITMENT, "claimed_output_commitments": [COMMITMENT]},
        ],
    )
    def test_verify_outputs_needs_exactly_one_claim(
        self, h: Harness, claims: dict[str, object]
    ) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            h.call("verify_outputs", model="m", inputs=["a"], **claims)
        assert h.sent == []

    def test_verify_outputs_needs_exactly_one_dialect(self, h: Harness) -> None:
        with pytest.raises(ValueError, match="dialect"):
            h.call(
                "verify_outputs",
                model="m",
                inputs=["a"],
                spec_yaml=SPEC_TEXT,
                input_texts=["a"],
                claimed_output_commitment=COMMITMENT,
            )

    def test_verify_outputs_mismatch_raises_with_diagnostics(self, h: Harness) -> None:
        body = {
            "error": "verification_failed",
            "message": "output mismatch",
            "reason": "block 0: expected aa.., claimed ab..",
        }
        h.server.add("POST", "/verify", reply(422, body))
        with pytest.raises(VerificationFailedError) as info:
            h.call("verify_outputs", model="m", inputs=["a"], claimed_output_commitment=COMMITMENT)
        error = info.value
        assert error.receipt_id == "(no receipt issued)"
        assert error.checks == {"output_match": False}
        assert error.errors == [body["reason"]]
        assert error.status_code == 422
        assert error.body == body
        assert len(h.sent) == 1

    def test_422_elsewhere_is_a_plain_api_error(self, h: Harness) -> None:
        h.server.add("POST", "/jobs", reply(422, {"error": "invalid_request", "message": "no"}))
        with pytest.raises(ApiError) as info:
            h.call("submit_job", model="m", inputs=["a"])
        assert not isinstance(info.value, VerificationFailedError)
        assert info.value.status_code == 422

    def test_job_result_fields_and_positional_order(self) -> None:
        emb = np.zeros((1, 2), dtype=np.float32)
        result = JobResult({"id": "j"}, {"receipt_id": "r"}, emb, {"valid": True})
        assert (result.job, result.receipt, result.verification) == (
            {"id": "j"},
            {"receipt_id": "r"},
            {"valid": True},
        )
        assert result.embeddings is emb
        assert JobResult({}, {}, emb).verification is None


class TestMethodsSync(_Methods):
    mode = "sync"


class TestMethodsAsync(_Methods):
    mode = "async"
