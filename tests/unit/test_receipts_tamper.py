"""Every rejection case of RECEIPTS.md, one named test each: tamper, then expect the named check.

Where the change is structural, the receipt is ALSO re-signed with the trusted
key (a malicious issuer), to show the structural checks catch it on their own.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from receipt_helpers import make_receipt, proof_root_of, rejected, resign, set_proof_root

from cyberian.exceptions import MerkleProofError, ReceiptVerificationError
from cyberian.receipts import (
    chunk_inclusion_proof,
    compute_receipt_hash,
    from_dsse,
    to_dsse,
    verify_chunk_inclusion,
    verify_receipt,
)
from cyberian.sampling import draw_indices
from cyberian.signing import SigningKey, generate_signing_key

Receipt = dict[str, Any]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    """A second key the verifier also trusts."""
    return generate_signing_key()


@pytest.fixture(scope="module")
def attacker() -> SigningKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def original(key: SigningKey) -> Receipt:
    receipt = make_receipt(key, chunk_count=8)
    verify_receipt(receipt, [key.public_key])  # the starting point is valid
    return receipt


@pytest.fixture
def receipt(original: Receipt) -> Receipt:
    return copy.deepcopy(original)


def _structural(
    receipt: Receipt, key: SigningKey, change: Callable[[Receipt], None], *checks: str
) -> None:
    """Apply ``change``; expect ``checks`` to fail, both unsigned-over and re-signed."""
    change(receipt)
    tampered = rejected(receipt, [key.public_key])
    assert {"receipt_hash", "signature"} <= set(tampered)
    assert set(checks) <= set(tampered), tampered
    re_signed = rejected(resign(receipt, key), [key.public_key])
    assert "signature" not in re_signed
    assert "receipt_hash" not in re_signed
    assert set(checks) <= set(re_signed), re_signed


def _other_hex(value: str) -> str:
    return ("1" if value[0] != "1" else "2") + value[1:]


# -- byte flips -------------------------------------------------------------------

BODY_EDITS: dict[str, Callable[[Receipt], None]] = {
    "receipt_id": lambda r: r.update(receipt_id=r["receipt_id"] + "x"),
    "job_id": lambda r: r.update(job_id="job-2"),
    "spec_hash": lambda r: r.update(spec_hash=_other_hex(r["spec_hash"])),
    "model_sha256": lambda r: r.update(model_sha256=_other_hex(r["model_sha256"])),
    "tokenizer_sha256": lambda r: r.update(tokenizer_sha256=_other_hex(r["tokenizer_sha256"])),
    "dimensions": lambda r: r.update(dimensions=r["dimensions"] + 1),
    "input_count": lambda r: r.update(input_count=r["input_count"] - 1),
    "chunk_output_commitment": lambda r: r["chunks"][3].update(
        output_commitment=_other_hex(r["chunks"][3]["output_commitment"])
    ),
    "sampling_nonce": lambda r: r["sampling"].update(nonce=_other_hex(r["sampling"]["nonce"])),
    "environment": lambda r: r["environment"]["executor"].update(cpu="other"),
    "issued_at": lambda r: r.update(issued_at="2025-03-01T12:30:06Z"),
}


@pytest.mark.parametrize("field", list(BODY_EDITS))
def test_byte_flip_in_body(receipt: Receipt, key: SigningKey, field: str) -> None:
    BODY_EDITS[field](receipt)
    failed = rejected(receipt, [key.public_key])
    assert {"receipt_hash", "signature"} <= set(failed)


def test_byte_flip_anywhere_in_the_serialised_receipt(key: SigningKey) -> None:
    small = make_receipt(key, chunk_count=2)  # every other byte of a small receipt
    text = json.dumps(small, separators=(",", ":")).encode()
    for position in range(0, len(text), 2):
        data = bytearray(text)
        data[position] ^= 0x01
        results = verify_outcome(bytes(data), key)
        assert results is not None, f"flip at byte {position} was accepted"


def verify_outcome(data: bytes, key: SigningKey) -> dict[str, str] | None:
    try:
        verify_receipt(data, [key.public_key])
    except Exception as exc:  # any rejection counts here
        return getattr(exc, "failed", {"error": str(exc)})
    return None


def test_recomputed_receipt_hash_does_not_help_a_tamperer(
    receipt: Receipt, key: SigningKey
) -> None:
    receipt["input_count"] -= 1
    receipt["receipt_hash"] = compute_receipt_hash(receipt)
    failed = rejected(receipt, [key.public_key])
    assert "receipt_hash" not in failed
    assert "signature" in failed


def test_byte_flip_in_receipt_hash(receipt: Receipt, key: SigningKey) -> None:
    receipt["receipt_hash"] = _other_hex(receipt["receipt_hash"])
    assert set(rejected(receipt, [key.public_key])) == {"receipt_hash"}


def test_byte_flip_in_signature(receipt: Receipt, key: SigningKey) -> None:
    sig = bytearray(base64.b64decode(receipt["signature"]["sig"]))
    sig[10] ^= 0x80
    receipt["signature"]["sig"] = base64.b64encode(bytes(sig)).decode()
    assert set(rejected(receipt, [key.public_key])) == {"signature"}


# -- missing, truncated, extra signatures ------------------------------------------


def test_missing_signature(receipt: Receipt, key: SigningKey) -> None:
    del receipt["signature"]
    assert set(rejected(receipt, [key.public_key])) == {"signature", "trusted_key"}


def test_truncated_signature(receipt: Receipt, key: SigningKey) -> None:
    sig = base64.b64decode(receipt["signature"]["sig"])
    receipt["signature"]["sig"] = base64.b64encode(sig[:-1]).decode()
    assert "64 bytes" in rejected(receipt, [key.public_key])["signature"]


def test_truncated_signature_text(receipt: Receipt, key: SigningKey) -> None:
    receipt["signature"]["sig"] = receipt["signature"]["sig"][:-4]
    assert "signature" in rejected(receipt, [key.public_key])


def test_extra_bytes_after_the_signature(receipt: Receipt, key: SigningKey) -> None:
    sig = base64.b64decode(receipt["signature"]["sig"])
    receipt["signature"]["sig"] = base64.b64encode(sig + b"\x00").decode()
    assert "signature" in rejected(receipt, [key.public_key])


def test_extra_signature_in_a_list(
    receipt: Receipt, key: SigningKey, other_key: SigningKey
) -> None:
    second = resign(receipt, key)["signature"]
    receipt["signature"] = [receipt["signature"], second]
    assert "signature" in rejected(receipt, [key.public_key, other_key.public_key])


def test_extra_signatures_field(receipt: Receipt, key: SigningKey, attacker: SigningKey) -> None:
    receipt["signatures"] = [{"keyid": attacker.keyid, "sig": receipt["signature"]["sig"]}]
    failed = rejected(receipt, [key.public_key])
    assert {"format", "receipt_hash", "signature"} <= set(failed)


# -- keys -------------------------------------------------------------------------


def test_untrusted_key(receipt: Receipt, key: SigningKey, attacker: SigningKey) -> None:
    receipt["issuer"]["keyid"] = attacker.keyid
    forged = resign(receipt, attacker)  # a perfectly valid signature, by the wrong key
    failed = rejected(forged, [key.public_key])
    assert {"trusted_key", "signature"} <= set(failed)
    assert verify_receipt(forged, [attacker.public_key]).keyid == attacker.keyid


def test_key_shipped_inside_the_receipt(
    receipt: Receipt, key: SigningKey, attacker: SigningKey
) -> None:
    receipt["issuer"]["keyid"] = attacker.keyid
    forged = resign(receipt, attacker)
    forged["signature"]["public_key"] = attacker.public_key.to_base64()
    forged["public_key"] = attacker.public_key.to_base64()
    failed = rejected(forged, [key.public_key])
    assert {"trusted_key", "signature", "format"} <= set(failed)


def test_key_shipped_inside_the_signature_object(receipt: Receipt, key: SigningKey) -> None:
    # even the genuine key, when shipped inside, makes the signature object invalid
    receipt["signature"]["public_key"] = key.public_key.to_base64()
    assert "signature" in rejected(receipt, [key.public_key])


def test_keyid_naming_another_trusted_key(
    receipt: Receipt, key: SigningKey, other_key: SigningKey
) -> None:
    trusted = [key.public_key, other_key.public_key]
    receipt["signature"]["keyid"] = other_key.keyid
    failed = rejected(receipt, trusted)
    assert "signature" in failed
    assert "trusted_key" in failed  # issuer.keyid still names the real signer


def test_keyid_and_issuer_naming_another_trusted_key(
    receipt: Receipt, key: SigningKey, other_key: SigningKey
) -> None:
    trusted = [key.public_key, other_key.public_key]
    receipt["issuer"]["keyid"] = other_key.keyid
    signed = resign({**receipt, "issuer": {"keyid": key.keyid}}, key)
    signed["issuer"] = {"keyid": other_key.keyid}
    signed["signature"]["keyid"] = other_key.keyid
    failed = rejected(signed, trusted)
    assert "signature" in failed
    assert "trusted_key" not in failed


# -- JSON text -----------------------------------------------------------------------


def test_non_canonical_float_where_an_integer_is_required(
    original: Receipt, key: SigningKey
) -> None:
    text = json.dumps(original).replace('"chunk_count": 8', '"chunk_count": 8.0')
    assert text != json.dumps(original)
    failed = rejected(text, [key.public_key])
    # 8.0 canonicalises to 8, so hash and signature still match: the type check catches it
    assert "receipt_hash" not in failed
    assert "signature" not in failed
    assert {"format", "counts"} <= set(failed)


def test_non_canonical_exponent_integer(original: Receipt, key: SigningKey) -> None:
    text = json.dumps(original).replace('"dimensions": 8', '"dimensions": 8e0')
    assert "format" in rejected(text, [key.public_key])


def test_unsafe_integer(original: Receipt, key: SigningKey) -> None:
    text = json.dumps(original).replace('"dimensions": 8', f'"dimensions": {2**53}')
    assert "outside the JSON-safe range" in rejected(text, [key.public_key])["format"]


def test_unsafe_integer_in_a_mapping(receipt: Receipt, key: SigningKey) -> None:
    receipt["environment"]["executor"]["big"] = 2**60
    failed = rejected(receipt, [key.public_key])
    assert {"format", "receipt_hash", "signature"} <= set(failed)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_json_numbers(original: Receipt, key: SigningKey, literal: str) -> None:
    text = json.dumps(original).replace('"load": 0.5', f'"load": {literal}')
    assert text != json.dumps(original)
    assert "format" in rejected(text, [key.public_key])


def test_lone_surrogate_string(receipt: Receipt, key: SigningKey) -> None:
    text = json.dumps(receipt).replace('"cpu": "test-cpu"', '"cpu": "\\ud800"')
    assert "format" in rejected(text, [key.public_key])


def test_duplicate_key_json(original: Receipt, key: SigningKey) -> None:
    text = json.dumps(original)
    doubled = text.replace('"chunk_count": 8', '"chunk_count": 8, "chunk_count": 9')
    assert "duplicate key 'chunk_count'" in rejected(doubled, [key.public_key])["format"]


def test_duplicate_key_json_in_a_nested_object(original: Receipt, key: SigningKey) -> None:
    text = json.dumps(original).replace('"k": 2', '"k": 2, "k": 3')
    assert "duplicate key" in rejected(text, [key.public_key])["format"]


def test_non_canonical_dsse_payload(original: Receipt) -> None:
    envelope = to_dsse(original)
    body = json.loads(base64.b64decode(envelope["payload"]))
    envelope["payload"] = base64.b64encode(json.dumps(body, indent=1).encode()).decode()
    with pytest.raises(ReceiptVerificationError) as info:
        from_dsse(envelope)
    assert set(info.value.failed) == {"format"}
    assert "not the canonical JSON" in info.value.failed["format"]


def test_unknown_version(receipt: Receipt, key: SigningKey) -> None:
    receipt["version"] = "2"
    assert set(rejected(resign(receipt, key), [key.public_key])) == {"version"}


# -- chunk counts ------------------------------------------------------------------------

COUNT_CHANGES = {
    "plus-one": lambda n: n + 1,
    "minus-one": lambda n: n - 1,
    "doubled": lambda n: n * 2,
    "halved": lambda n: n // 2,
}


@pytest.mark.parametrize("change", list(COUNT_CHANGES))
def test_chunk_count_field(receipt: Receipt, key: SigningKey, change: str) -> None:
    new = COUNT_CHANGES[change](receipt["chunk_count"])
    _structural(receipt, key, lambda r: r.update(chunk_count=new), "counts", "sampling")


@pytest.mark.parametrize("change", list(COUNT_CHANGES))
def test_chunk_count_with_list_and_inputs_to_match(
    receipt: Receipt, key: SigningKey, change: str
) -> None:
    def edit(r: Receipt) -> None:
        n = COUNT_CHANGES[change](r["chunk_count"])
        chunks = [dict(c) for c in r["chunks"]]
        while len(chunks) < n:  # grow with copies of real entries, renumbered
            chunks.append({**chunks[len(chunks) % 8], "index": len(chunks)})
        r["chunks"] = chunks[:n]
        r["chunk_count"] = n
        r["input_count"] = n * r["chunk_size"]

    # counts now agree with themselves; the roots (and the sample drawn from them) do not
    _structural(receipt, key, edit, "input_root", "output_root")


# -- chunk entries -----------------------------------------------------------------------


def test_chunk_swapped(receipt: Receipt, key: SigningKey) -> None:
    def swap(r: Receipt) -> None:
        r["chunks"][1], r["chunks"][2] = r["chunks"][2], r["chunks"][1]

    _structural(receipt, key, swap, "chunks", "input_root", "output_root")


def test_chunk_commitments_swapped_keeping_indices(receipt: Receipt, key: SigningKey) -> None:
    def swap(r: Receipt) -> None:
        a, b = r["chunks"][1], r["chunks"][2]
        for field in ("input_commitment", "output_commitment"):
            a[field], b[field] = b[field], a[field]

    _structural(receipt, key, swap, "input_root", "output_root")


def test_chunk_removed(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, lambda r: r["chunks"].pop(), "counts", "input_root", "output_root")


def test_chunk_removed_from_the_middle(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, lambda r: r["chunks"].pop(4), "chunks", "counts", "input_root")


def test_chunk_duplicated_at_the_tail(receipt: Receipt, key: SigningKey) -> None:
    def duplicate(r: Receipt) -> None:
        r["chunks"].append(dict(r["chunks"][-1]))

    _structural(receipt, key, duplicate, "chunks", "counts", "input_root", "output_root")


def test_chunk_duplicated_at_the_tail_renumbered(receipt: Receipt, key: SigningKey) -> None:
    def duplicate(r: Receipt) -> None:
        r["chunks"].append({**r["chunks"][-1], "index": len(r["chunks"])})

    _structural(receipt, key, duplicate, "counts", "input_root", "output_root")


@pytest.mark.parametrize("length", [62, 63, 65, 66, 0])
def test_commitment_of_wrong_length(receipt: Receipt, key: SigningKey, length: int) -> None:
    def edit(r: Receipt) -> None:
        r["chunks"][2]["input_commitment"] = ("ab" * 40)[:length]

    _structural(receipt, key, edit, "chunks", "input_root")
    assert "wrong length" in rejected(receipt, [key.public_key])["chunks"]


@pytest.mark.parametrize("bad", ["g" + "0" * 63, "A" * 64, " " + "0" * 63, 7])
def test_commitment_not_hex(receipt: Receipt, key: SigningKey, bad: Any) -> None:
    def edit(r: Receipt) -> None:
        r["chunks"][5]["output_commitment"] = bad

    _structural(receipt, key, edit, "chunks", "output_root")


def test_input_proof_checked_against_output_root(original: Receipt) -> None:
    n = original["chunk_count"]
    chunk = original["chunks"][3]
    proof = chunk_inclusion_proof(original, 3, "input")
    verify_chunk_inclusion(
        chunk["input_commitment"], 3, n, proof, original["input_root"], tree="input"
    )
    for tree in ("input", "output"):
        with pytest.raises(MerkleProofError):
            verify_chunk_inclusion(
                chunk["input_commitment"], 3, n, proof, original["output_root"], tree=tree
            )


def test_input_root_replaced_by_output_root(receipt: Receipt, key: SigningKey) -> None:
    def edit(r: Receipt) -> None:
        r["input_root"] = r["inputs_root"] = r["output_root"]

    _structural(receipt, key, edit, "input_root", "sampling")


def test_alias_disagreeing_with_its_root(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, lambda r: r.update(outputs_root="0" * 64), "output_root")


# -- sampling and replays -------------------------------------------------------------------


def test_sampled_indices_not_from_the_seed(receipt: Receipt, key: SigningKey) -> None:
    def edit(r: Receipt) -> None:
        honest = r["sampling"]["indices"]
        chosen = [i for i in range(r["chunk_count"]) if i not in honest][: len(honest)]
        r["sampling"]["indices"] = chosen  # the issuer replays chunks of its choosing
        r["replays"] = [
            {"index": i, "output_commitment": r["chunks"][i]["output_commitment"], "match": True}
            for i in chosen
        ]
        set_proof_root(r)

    _structural(receipt, key, edit, "sampling")
    assert set(rejected(resign(receipt, key), [key.public_key])) == {"sampling"}


def test_seed_that_does_not_follow_from_the_roots(receipt: Receipt, key: SigningKey) -> None:
    def edit(r: Receipt) -> None:
        seed = bytes(32)
        r["sampling"]["seed"] = seed.hex()
        r["sampling"]["indices"] = draw_indices(seed, r["sampling"]["k"], r["chunk_count"])
        r["replays"] = [
            {"index": i, "output_commitment": r["chunks"][i]["output_commitment"], "match": True}
            for i in r["sampling"]["indices"]
        ]
        set_proof_root(r)

    _structural(receipt, key, edit, "sampling")


def test_sample_smaller_than_the_rate_demands(receipt: Receipt, key: SigningKey) -> None:
    def edit(r: Receipt) -> None:
        r["sampling"]["k"] = 1
        r["sampling"]["indices"] = r["sampling"]["indices"][:1]
        r["replays"] = r["replays"][:1]
        set_proof_root(r)

    _structural(receipt, key, edit, "sampling")


def test_replay_record_says_mismatch(receipt: Receipt, key: SigningKey) -> None:
    def edit(r: Receipt) -> None:
        r["replays"][0]["match"] = False
        r["replays"][0]["output_commitment"] = _other_hex(r["replays"][0]["output_commitment"])
        set_proof_root(r)

    _structural(receipt, key, edit, "replays")
    assert set(rejected(resign(receipt, key), [key.public_key])) == {"replays"}


def test_replay_record_claims_match_for_a_different_output(
    receipt: Receipt, key: SigningKey
) -> None:
    def edit(r: Receipt) -> None:
        r["replays"][1]["output_commitment"] = _other_hex(r["replays"][1]["output_commitment"])
        set_proof_root(r)

    _structural(receipt, key, edit, "replays")


def test_replay_record_dropped(receipt: Receipt, key: SigningKey) -> None:
    def edit(r: Receipt) -> None:
        r["replays"].pop()
        set_proof_root(r)

    _structural(receipt, key, edit, "replays")


def test_proof_root_not_over_the_replay_records(receipt: Receipt, key: SigningKey) -> None:
    def edit(r: Receipt) -> None:
        r["proof_root"] = r["verification_attestation"] = proof_root_of(r["replays"][:1])

    _structural(receipt, key, edit, "proof_root")


def test_local_receipt_relabelled_as_a_job(key: SigningKey) -> None:
    local = make_receipt(key, kind="local")
    _structural(local, key, lambda r: r.update(kind="job"), "format", "sampling", "replays")


def test_job_receipt_relabelled_as_local(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, lambda r: r.update(kind="local"), "sampling", "replays")
