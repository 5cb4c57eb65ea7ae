"""Every rejection case of RECEIPTS.md, one named test each: tamper, then expect the named check.

Where the change is structural, the receipt is ALSO re-signed with the trusted
key (a malicious issuer), to show the structural checks catch it on their own.
How each tampered receipt is made lives in ``tamper_cases.py`` (shared with
the audit-page differential); what must fail is asserted here.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
import tamper_cases as tc
from receipt_helpers import make_receipt, rejected, resign

from cyberian.exceptions import MerkleProofError, ReceiptVerificationError
from cyberian.receipts import (
    chunk_inclusion_proof,
    from_dsse,
    to_dsse,
    verify_chunk_inclusion,
    verify_receipt,
)
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


def test_every_tamper_test_is_a_shared_case(
    key: SigningKey, other_key: SigningKey, attacker: SigningKey
) -> None:
    """Each test here has its receipts in ``tamper_cases`` (or a reason it has none)."""
    tests = {name.removeprefix("test_") for name in dir(sys.modules[__name__])
             if name.startswith("test_")} - {"every_tamper_test_is_a_shared_case"}
    cases = [*tc.tamper_cases(tc.TamperKeys(key, other_key, attacker)),
             *tc.byte_flip_cases(key)[:1]]
    families = {case.family for case in tc.case_names(cases).values()}
    assert tests - families == set(tc.NOT_RECEIPT_CASES)
    assert families - tests == {"original"}


# -- byte flips -------------------------------------------------------------------


@pytest.mark.parametrize("field", list(tc.BODY_EDITS))
def test_byte_flip_in_body(receipt: Receipt, key: SigningKey, field: str) -> None:
    tc.BODY_EDITS[field](receipt)
    failed = rejected(receipt, [key.public_key])
    assert {"receipt_hash", "signature"} <= set(failed)


def test_byte_flip_anywhere_in_the_serialised_receipt(key: SigningKey) -> None:
    small = make_receipt(key, chunk_count=2)  # every other byte of a small receipt
    flips = list(tc.byte_flips(small))
    assert len(flips) == (len(json.dumps(small, separators=(",", ":"))) + 1) // 2
    for position, data in flips:
        results = verify_outcome(data, key)
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
    tc.edit_then_recompute_hash(receipt)
    failed = rejected(receipt, [key.public_key])
    assert "receipt_hash" not in failed
    assert "signature" in failed


def test_byte_flip_in_receipt_hash(receipt: Receipt, key: SigningKey) -> None:
    tc.flip_receipt_hash(receipt)
    assert set(rejected(receipt, [key.public_key])) == {"receipt_hash"}


def test_byte_flip_in_signature(receipt: Receipt, key: SigningKey) -> None:
    tc.flip_signature_byte(receipt)
    assert set(rejected(receipt, [key.public_key])) == {"signature"}


# -- missing, truncated, extra signatures ------------------------------------------


def test_missing_signature(receipt: Receipt, key: SigningKey) -> None:
    tc.drop_signature(receipt)
    assert set(rejected(receipt, [key.public_key])) == {"signature", "trusted_key"}


def test_truncated_signature(receipt: Receipt, key: SigningKey) -> None:
    tc.truncate_signature(receipt)
    assert "64 bytes" in rejected(receipt, [key.public_key])["signature"]


def test_truncated_signature_text(receipt: Receipt, key: SigningKey) -> None:
    tc.truncate_signature_text(receipt)
    assert "signature" in rejected(receipt, [key.public_key])


def test_extra_bytes_after_the_signature(receipt: Receipt, key: SigningKey) -> None:
    tc.extend_signature(receipt)
    assert "signature" in rejected(receipt, [key.public_key])


def test_extra_signature_in_a_list(
    receipt: Receipt, key: SigningKey, other_key: SigningKey
) -> None:
    tc.signature_list(receipt, key)
    assert isinstance(receipt["signature"], list)
    assert "signature" in rejected(receipt, [key.public_key, other_key.public_key])


def test_extra_signatures_field(receipt: Receipt, key: SigningKey, attacker: SigningKey) -> None:
    tc.extra_signatures_field(receipt, attacker)
    failed = rejected(receipt, [key.public_key])
    assert {"format", "receipt_hash", "signature"} <= set(failed)


# -- keys -------------------------------------------------------------------------


def test_untrusted_key(receipt: Receipt, key: SigningKey, attacker: SigningKey) -> None:
    forged = tc.forge(receipt, attacker)  # a perfectly valid signature, by the wrong key
    failed = rejected(forged, [key.public_key])
    assert {"trusted_key", "signature"} <= set(failed)
    assert verify_receipt(forged, [attacker.public_key]).keyid == attacker.keyid


def test_key_shipped_inside_the_receipt(
    receipt: Receipt, key: SigningKey, attacker: SigningKey
) -> None:
    forged = tc.forge(receipt, attacker)
    tc.ship_key_inside(forged, attacker)
    failed = rejected(forged, [key.public_key])
    assert {"trusted_key", "signature", "format"} <= set(failed)


def test_key_shipped_inside_the_signature_object(receipt: Receipt, key: SigningKey) -> None:
    # even the genuine key, when shipped inside, makes the signature object invalid
    tc.ship_key_in_signature(receipt, key)
    assert "signature" in rejected(receipt, [key.public_key])


def test_keyid_naming_another_trusted_key(
    receipt: Receipt, key: SigningKey, other_key: SigningKey
) -> None:
    trusted = [key.public_key, other_key.public_key]
    tc.keyid_naming(receipt, other_key)
    failed = rejected(receipt, trusted)
    assert "signature" in failed
    assert "trusted_key" in failed  # issuer.keyid still names the real signer


def test_keyid_and_issuer_naming_another_trusted_key(
    receipt: Receipt, key: SigningKey, other_key: SigningKey
) -> None:
    trusted = [key.public_key, other_key.public_key]
    signed = tc.keyid_and_issuer_naming(receipt, key, other_key)
    failed = rejected(signed, trusted)
    assert "signature" in failed
    assert "trusted_key" not in failed


# -- JSON text -----------------------------------------------------------------------


def test_non_canonical_float_where_an_integer_is_required(
    original: Receipt, key: SigningKey
) -> None:
    text = tc.non_canonical_float_text(original)
    assert text != json.dumps(original)
    failed = rejected(text, [key.public_key])
    # 8.0 canonicalises to 8, so hash and signature still match: the type check catches it
    assert "receipt_hash" not in failed
    assert "signature" not in failed
    assert {"format", "counts"} <= set(failed)


def test_non_canonical_exponent_integer(original: Receipt, key: SigningKey) -> None:
    text = tc.exponent_integer_text(original)
    assert text != json.dumps(original)
    assert "format" in rejected(text, [key.public_key])


def test_unsafe_integer(original: Receipt, key: SigningKey) -> None:
    text = tc.unsafe_integer_text(original)
    assert "outside the JSON-safe range" in rejected(text, [key.public_key])["format"]


def test_unsafe_integer_in_a_mapping(receipt: Receipt, key: SigningKey) -> None:
    tc.unsafe_integer_in_a_mapping(receipt)
    failed = rejected(receipt, [key.public_key])
    assert {"format", "receipt_hash", "signature"} <= set(failed)


@pytest.mark.parametrize("literal", tc.NON_JSON_NUMBERS)
def test_non_json_numbers(original: Receipt, key: SigningKey, literal: str) -> None:
    text = tc.non_json_number_text(original, literal)
    assert text != json.dumps(original)
    assert "format" in rejected(text, [key.public_key])


def test_lone_surrogate_string(receipt: Receipt, key: SigningKey) -> None:
    text = tc.lone_surrogate_text(receipt)
    assert text != json.dumps(receipt)
    assert "format" in rejected(text, [key.public_key])


def test_duplicate_key_json(original: Receipt, key: SigningKey) -> None:
    doubled = tc.duplicate_key_text(original)
    assert "duplicate key 'chunk_count'" in rejected(doubled, [key.public_key])["format"]


def test_duplicate_key_json_in_a_nested_object(original: Receipt, key: SigningKey) -> None:
    text = tc.nested_duplicate_key_text(original)
    assert text != json.dumps(original)
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
    tc.unknown_version(receipt)
    assert set(rejected(resign(receipt, key), [key.public_key])) == {"version"}


# -- chunk counts ------------------------------------------------------------------------


@pytest.mark.parametrize("change", list(tc.COUNT_CHANGES))
def test_chunk_count_field(receipt: Receipt, key: SigningKey, change: str) -> None:
    _structural(receipt, key, tc.chunk_count_to(change), "counts", "sampling")


@pytest.mark.parametrize("change", list(tc.COUNT_CHANGES))
def test_chunk_count_with_list_and_inputs_to_match(
    receipt: Receipt, key: SigningKey, change: str
) -> None:
    # counts now agree with themselves; the roots (and the sample drawn from them) do not
    _structural(receipt, key, tc.chunk_count_with_list_to(change), "input_root", "output_root")


# -- chunk entries -----------------------------------------------------------------------


def test_chunk_swapped(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.swap_chunks, "chunks", "input_root", "output_root")


def test_chunk_commitments_swapped_keeping_indices(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.swap_commitments, "input_root", "output_root")


def test_chunk_removed(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.remove_last_chunk, "counts", "input_root", "output_root")


def test_chunk_removed_from_the_middle(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.remove_middle_chunk, "chunks", "counts", "input_root")


def test_chunk_duplicated_at_the_tail(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.duplicate_tail, "chunks", "counts", "input_root", "output_root")


def test_chunk_duplicated_at_the_tail_renumbered(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.duplicate_tail_renumbered, "counts", "input_root", "output_root")


@pytest.mark.parametrize("length", tc.WRONG_LENGTHS)
def test_commitment_of_wrong_length(receipt: Receipt, key: SigningKey, length: int) -> None:
    _structural(receipt, key, tc.commitment_of_length(length), "chunks", "input_root")
    assert "wrong length" in rejected(receipt, [key.public_key])["chunks"]


@pytest.mark.parametrize("bad", tc.NOT_HEX)
def test_commitment_not_hex(receipt: Receipt, key: SigningKey, bad: Any) -> None:
    _structural(receipt, key, tc.commitment_not_hex(bad), "chunks", "output_root")


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
    _structural(receipt, key, tc.input_root_is_output_root, "input_root", "sampling")


def test_alias_disagreeing_with_its_root(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.alias_disagrees, "output_root")


# -- sampling and replays -------------------------------------------------------------------


def test_sampled_indices_not_from_the_seed(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.indices_not_from_the_seed, "sampling")
    assert set(rejected(resign(receipt, key), [key.public_key])) == {"sampling"}


def test_seed_that_does_not_follow_from_the_roots(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.seed_not_from_the_roots, "sampling")


def test_sample_smaller_than_the_rate_demands(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.sample_too_small, "sampling")


def test_replay_record_says_mismatch(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.replay_says_mismatch, "replays")
    assert set(rejected(resign(receipt, key), [key.public_key])) == {"replays"}


def test_replay_record_claims_match_for_a_different_output(
    receipt: Receipt, key: SigningKey
) -> None:
    _structural(receipt, key, tc.replay_claims_match_for_another_output, "replays")


def test_replay_record_dropped(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.replay_dropped, "replays")


def test_proof_root_not_over_the_replay_records(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.proof_root_not_over_the_replays, "proof_root")


def test_local_receipt_relabelled_as_a_job(key: SigningKey) -> None:
    local = make_receipt(key, kind="local")
    _structural(local, key, tc.relabel("job"), "format", "sampling", "replays")


def test_job_receipt_relabelled_as_local(receipt: Receipt, key: SigningKey) -> None:
    _structural(receipt, key, tc.relabel("local"), "sampling", "replays")
