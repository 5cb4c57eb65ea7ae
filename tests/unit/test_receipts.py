"""Receipts: building, hashing, signing, DSSE, verification results and the /verify shape."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from typing import Any

import pytest
import rfc8785
from receipt_helpers import (
    ISSUED_AT,
    NONCE,
    make_body,
    make_chunks,
    make_receipt,
    make_spec,
    rejected,
)

from cyberian import merkle
from cyberian.commitments import TAG_INPUT, TAG_OUTPUT, leaf_data
from cyberian.exceptions import MerkleProofError, ReceiptVerificationError
from cyberian.receipts import (
    BODY_FIELDS,
    CHECKS,
    EMPTY_ROOT,
    PAYLOAD_TYPE,
    ReplayRecord,
    build_receipt_body,
    check_receipt,
    chunk_inclusion_proof,
    commitment_roots,
    from_dsse,
    sign_receipt,
    to_dsse,
    verification_report,
    verify_chunk_inclusion,
    verify_receipt,
)
from cyberian.sampling import draw_indices, resolve_sampling, sample_seed
from cyberian.signing import SigningKey, generate_signing_key, pae


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def receipt(key: SigningKey) -> dict[str, Any]:
    return make_receipt(key)


def _canonical_body(receipt: dict[str, Any]) -> bytes:
    body = {k: v for k, v in receipt.items() if k not in ("receipt_hash", "signature")}
    data: bytes = rfc8785.dumps(body)
    return data


def test_a_job_receipt_verifies(key: SigningKey, receipt: dict[str, Any]) -> None:
    verified = verify_receipt(receipt, [key.public_key])
    assert verified.keyid == key.keyid
    assert verified.kind == "job"
    assert verified.replayed is True
    assert [c.name for c in verified.checks] == list(CHECKS)
    assert all(c.ok for c in verified.checks)
    assert verified.body == {k: v for k, v in receipt.items() if k in BODY_FIELDS}


def test_body_has_exactly_the_documented_fields(receipt: dict[str, Any]) -> None:
    assert set(receipt) == {*BODY_FIELDS, "receipt_hash", "signature"}
    assert receipt["version"] == "1"
    assert receipt["kind"] == "job"
    assert receipt["issued_at"] == "2025-03-01T12:30:05Z"
    assert receipt["chunk_count"] == len(receipt["chunks"]) == 8
    assert receipt["chunks"][0] == make_chunks(1)[0].as_dict()


def test_aliases_repeat_the_primary_values(receipt: dict[str, Any]) -> None:
    assert receipt["inputs_root"] == receipt["input_root"]
    assert receipt["outputs_root"] == receipt["output_root"]
    assert receipt["verification_attestation"] == receipt["proof_root"]
    assert receipt["executor_attestation_ids"] == [receipt["output_root"]]


def test_roots_are_tagged_rfc9162_roots(receipt: dict[str, Any]) -> None:
    chunks = receipt["chunks"]
    inputs = [leaf_data(TAG_INPUT, c["index"], c["input_commitment"]) for c in chunks]
    outputs = [leaf_data(TAG_OUTPUT, c["index"], c["output_commitment"]) for c in chunks]
    assert receipt["input_root"] == merkle.root(inputs).hex()
    assert receipt["output_root"] == merkle.root(outputs).hex()
    assert receipt["input_root"] != receipt["output_root"]


def test_hash_and_signature_are_independently_checkable(
    key: SigningKey, receipt: dict[str, Any]
) -> None:
    canonical = _canonical_body(receipt)
    assert receipt["receipt_hash"] == hashlib.sha256(canonical).hexdigest()
    signature = receipt["signature"]
    assert set(signature) == {"alg", "keyid", "sig"}
    assert signature["alg"] == "ed25519"
    assert signature["keyid"] == key.keyid == receipt["issuer"]["keyid"]
    message = b"DSSEv1 %d %s %d %s" % (
        len(PAYLOAD_TYPE),
        PAYLOAD_TYPE.encode(),
        len(canonical),
        canonical,
    )
    assert message == pae(PAYLOAD_TYPE, canonical)
    assert key.public_key.verify(base64.b64decode(signature["sig"]), message)


def test_sampling_section_follows_from_the_committed_roots(receipt: dict[str, Any]) -> None:
    sampling = receipt["sampling"]
    seed = sample_seed(
        bytes.fromhex(receipt["input_root"]), bytes.fromhex(receipt["output_root"]), NONCE
    )
    assert sampling["nonce"] == NONCE.hex()
    assert sampling["seed"] == seed.hex()
    assert (sampling["rate"], sampling["k"]) == (0.25, 2)
    assert sampling["indices"] == draw_indices(seed, 2, 8)
    assert [r["index"] for r in receipt["replays"]] == sampling["indices"]
    assert all(r["match"] for r in receipt["replays"])
    assert sampling["auto"] is None
    assert [e["fraction"] for e in sampling["escape"]] == [0.01, 0.1]


def test_no_floats_outside_the_float_fields(receipt: dict[str, Any]) -> None:
    floats: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, float):
            floats.append(path)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for v in value:
                walk(v, f"{path}[]")

    body = {k: v for k, v in receipt.items() if k != "environment"}
    walk(body, "")
    allowed = re.compile(r"^\.sampling\.(rate|escape\[\]\.(fraction|probability|approximation))$")
    assert floats
    assert all(allowed.match(path) for path in floats), floats


def test_local_receipt_is_accepted_but_not_replayed(key: SigningKey) -> None:
    local = make_receipt(key, kind="local")
    assert local["proof_root"] == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()
    assert local["replays"] == []
    assert local["environment"]["replayer"] is None
    sampling = local["sampling"]
    assert (sampling["rate"], sampling["k"], sampling["indices"]) == (0.0, 0, [])
    assert sampling["nonce"] is None
    assert sampling["seed"] is None
    assert [e["probability"] for e in sampling["escape"]] == [1.0, 1.0]
    verified = verify_receipt(local, key.public_key)
    assert verified.replayed is False
    replays = {c.name: c for c in verified.checks}["replays"]
    assert replays.ok
    assert "not replayed" in replays.detail


def test_vaas_receipt_with_its_own_block_size(key: SigningKey) -> None:
    chunks = make_chunks(3)
    spec = make_spec()
    plan = resolve_sampling(spec.verification, 3)
    roots = commitment_roots(chunks)
    indices = plan.draw(*roots, NONCE)
    body = build_receipt_body(
        spec=spec,
        kind="vaas",
        job_id="vaas-req-1",
        chunks=chunks,
        input_count=2500,
        chunk_size=1000,
        issuer_keyid=key.keyid,
        executor_environment={"claimed_by": "caller"},
        replayer_environment={"cpu": "x"},
        plan=plan,
        nonce=NONCE,
        replays=[ReplayRecord(i, chunks[i].output_commitment, True) for i in indices],
    )
    verified = verify_receipt(sign_receipt(body, key), [key.public_key], spec=spec)
    assert verified.kind == "vaas"
    assert verified.body["chunk_size"] == 1000


def test_auto_rate_receipt_records_its_inputs(key: SigningKey) -> None:
    spec = make_spec(
        verification="{sample_rate: auto, reward: 10, penalty: 90, cost: 5, collusion: 0.2}"
    )
    auto = make_receipt(key, spec=spec, chunk_count=40)
    assert auto["sampling"]["rate"] == 0.0688
    assert auto["sampling"]["k"] == 3
    assert auto["sampling"]["auto"]["bound"] == 0.0625
    verified = verify_receipt(json.dumps(auto), [key.public_key], spec=spec)
    assert {c.name for c in verified.checks} == {*CHECKS, "spec"}


def test_verifying_against_another_spec_names_the_spec_check(
    key: SigningKey, receipt: dict[str, Any]
) -> None:
    failed = rejected_with_spec(receipt, key, make_spec(chunk_size=5))
    assert set(failed) == {"spec"}
    assert "spec_hash" in failed["spec"]


def rejected_with_spec(receipt: dict[str, Any], key: SigningKey, spec: Any) -> dict[str, str]:
    with pytest.raises(ReceiptVerificationError) as info:
        verify_receipt(receipt, [key.public_key], spec=spec)
    return info.value.failed


def test_json_text_and_bytes_are_accepted(key: SigningKey, receipt: dict[str, Any]) -> None:
    assert verify_receipt(json.dumps(receipt, indent=2), [key.public_key]).keyid == key.keyid
    assert verify_receipt(json.dumps(receipt).encode(), [key.public_key]).kind == "job"


def test_trusted_keys_may_be_a_mapping_with_any_labels(
    key: SigningKey, receipt: dict[str, Any]
) -> None:
    assert verify_receipt(receipt, {"whatever": key.public_key}).keyid == key.keyid
    assert rejected(receipt, []).keys() >= {"trusted_key", "signature"}


def test_dsse_round_trip(key: SigningKey, receipt: dict[str, Any]) -> None:
    envelope = to_dsse(receipt)
    assert set(envelope) == {"payloadType", "payload", "signatures"}
    assert envelope["payloadType"] == "application/vnd.cyberian.receipt.v1+json"
    assert base64.b64decode(envelope["payload"]) == _canonical_body(receipt)
    assert envelope["signatures"] == [{"keyid": key.keyid, "sig": receipt["signature"]["sig"]}]
    imported = from_dsse(json.dumps(envelope))
    assert imported == receipt
    assert verify_receipt(imported, [key.public_key]).keyid == key.keyid


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda e: e.update(payloadType="application/json"), "format"),
        (lambda e: e.update(payload="not base64!"), "format"),
        (lambda e: e["signatures"].append(dict(e["signatures"][0])), "signature"),
        (lambda e: e.update(signatures=[]), "signature"),
        (lambda e: e.update(extra=1), "format"),
    ],
    ids=["payload-type", "payload-encoding", "two-signatures", "no-signature", "extra-field"],
)
def test_malformed_dsse_envelopes_are_refused(
    receipt: dict[str, Any], change: Any, check: str
) -> None:
    envelope = copy.deepcopy(to_dsse(receipt))
    change(envelope)
    with pytest.raises(ReceiptVerificationError) as info:
        from_dsse(envelope)
    assert set(info.value.failed) == {check}


def test_check_receipt_reports_every_check_without_raising(
    key: SigningKey, receipt: dict[str, Any]
) -> None:
    results = check_receipt({**receipt, "input_count": 1}, [key.public_key])
    assert list(results) == list(CHECKS)
    assert not results["receipt_hash"].ok
    assert not results["counts"].ok
    assert results["input_root"].ok


def test_unreadable_receipt_fails_every_check(key: SigningKey) -> None:
    results = check_receipt("{not json", [key.public_key])
    assert not any(r.ok for r in results.values())
    assert "not valid JSON" in results["format"].detail


def test_verification_report_shape(key: SigningKey, receipt: dict[str, Any]) -> None:
    good = verification_report(receipt, [key.public_key])
    assert good == {
        "valid": True,
        "checks": dict.fromkeys(
            ("receipt_hash", "input_root", "output_root", "proof_root", "signature"), True
        ),
        "errors": [],
    }
    forged = copy.deepcopy(receipt)
    forged["chunks"][0]["input_commitment"] = "0" * 64
    bad = verification_report(forged, [key.public_key])
    assert bad["valid"] is False
    assert bad["checks"]["input_root"] is False
    assert bad["checks"]["signature"] is False
    assert bad["checks"]["output_root"] is True
    assert any(e.startswith("input_root: ") for e in bad["errors"])


def test_report_signature_includes_the_trusted_key_check(receipt: dict[str, Any]) -> None:
    report = verification_report(receipt, [generate_signing_key().public_key])
    assert report["checks"]["signature"] is False
    assert any(e.startswith("trusted_key: ") for e in report["errors"])


@pytest.mark.parametrize("tree", ["input", "output"])
def test_chunk_inclusion_proofs(receipt: dict[str, Any], tree: Any) -> None:
    n = receipt["chunk_count"]
    for chunk in receipt["chunks"]:
        proof = chunk_inclusion_proof(receipt, chunk["index"], tree)
        verify_chunk_inclusion(
            chunk[f"{tree}_commitment"],
            chunk["index"],
            n,
            proof,
            receipt[f"{tree}_root"],
            tree=tree,
        )
    with pytest.raises(MerkleProofError):
        verify_chunk_inclusion("zz", 0, n, [], receipt[f"{tree}_root"], tree=tree)


def test_signed_receipts_never_contain_secrets(key: SigningKey, receipt: dict[str, Any]) -> None:
    text = json.dumps(receipt)
    assert "PRIVATE" not in text
    assert NONCE.hex() in text  # the nonce is revealed on purpose, after the commitment


# -- builder refusals -------------------------------------------------------------


def _job_args(key: SigningKey, **changes: Any) -> dict[str, Any]:
    chunks = make_chunks(8)
    spec = make_spec()
    plan = resolve_sampling(spec.verification, 8)
    indices = plan.draw(*commitment_roots(chunks), NONCE)
    args: dict[str, Any] = {
        "spec": spec,
        "kind": "job",
        "job_id": "job-1",
        "chunks": chunks,
        "input_count": 31,
        "issuer_keyid": key.keyid,
        "executor_environment": {},
        "replayer_environment": {},
        "plan": plan,
        "nonce": NONCE,
        "replays": [ReplayRecord(i, chunks[i].output_commitment, True) for i in indices],
        "issued_at": ISSUED_AT,
    }
    args.update(changes)
    return args


def test_builder_accepts_the_reference_arguments(key: SigningKey) -> None:
    body = build_receipt_body(**_job_args(key))
    assert body["sampling"]["k"] == 2
    assert body["receipt_id"].startswith("rcpt_")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "batch"}, "kind"),
        ({"job_id": ""}, "job_id"),
        ({"replayer_environment": None}, "replayer"),
        ({"input_count": 40}, "do not cover"),
        ({"chunks": make_chunks(8)[1:]}, "index"),
        ({"replays": []}, "sampled chunks"),
        ({"nonce": b"short"}, "nonce"),
        ({"plan": None}, "sampling plan"),
    ],
)
def test_builder_refuses_inconsistent_runs(
    key: SigningKey, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_receipt_body(**_job_args(key, **changes))


def test_builder_refuses_a_mismatching_replay(key: SigningKey) -> None:
    args = _job_args(key)
    first = args["replays"][0]
    args["replays"][0] = ReplayRecord(first.index, first.output_commitment, False)
    with pytest.raises(ValueError, match="did not replay"):
        build_receipt_body(**args)


def test_local_builder_refuses_sampling(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="local receipt"):
        build_receipt_body(**_job_args(key, kind="local"))


def test_sign_receipt_refuses_a_foreign_issuer(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="issuer"):
        sign_receipt(make_body(key), generate_signing_key())


def test_builder_takes_precomputed_roots_as_its_own(key: SigningKey) -> None:
    args = _job_args(key, receipt_id="rcpt_same")
    roots = commitment_roots(args["chunks"])
    assert build_receipt_body(**args, roots=roots) == build_receipt_body(**args)
    with pytest.raises(ValueError, match="32-byte roots"):
        build_receipt_body(**args, roots=(roots[0].hex(), roots[1].hex()))
