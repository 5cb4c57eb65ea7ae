"""The tamper cases of ``test_receipts_tamper.py`` as data: how each tampered receipt is made.

``test_receipts_tamper.py`` asserts, case by case, which checks must fail;
:func:`tamper_cases` lists every one of those receipts (structural edits
both as tampered and re-signed by the issuer's key) with the keys it is
checked against, for the audit-page differential
(``tests/integration/test_audit_page.py``), which compares the browser's
verdict with :func:`cyberian.receipts.check_receipt` on each.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from receipt_helpers import make_receipt, proof_root_of, resign, set_proof_root

from cyberian.receipts import compute_receipt_hash
from cyberian.sampling import draw_indices
from cyberian.signing import PublicKey, SigningKey, keys_document

Receipt = dict[str, Any]
Edit = Callable[[Receipt], None]


def other_hex(value: str) -> str:
    """``value`` with its first hex digit changed."""
    return ("1" if value[0] != "1" else "2") + value[1:]


# -- byte flips -------------------------------------------------------------------

BODY_EDITS: dict[str, Edit] = {
    "receipt_id": lambda r: r.update(receipt_id=r["receipt_id"] + "x"),
    "job_id": lambda r: r.update(job_id="job-2"),
    "spec_hash": lambda r: r.update(spec_hash=other_hex(r["spec_hash"])),
    "model_sha256": lambda r: r.update(model_sha256=other_hex(r["model_sha256"])),
    "tokenizer_sha256": lambda r: r.update(tokenizer_sha256=other_hex(r["tokenizer_sha256"])),
    "dimensions": lambda r: r.update(dimensions=r["dimensions"] + 1),
    "input_count": lambda r: r.update(input_count=r["input_count"] - 1),
    "chunk_output_commitment": lambda r: r["chunks"][3].update(
        output_commitment=other_hex(r["chunks"][3]["output_commitment"])
    ),
    "sampling_nonce": lambda r: r["sampling"].update(nonce=other_hex(r["sampling"]["nonce"])),
    "environment": lambda r: r["environment"]["executor"].update(cpu="other"),
    "issued_at": lambda r: r.update(issued_at="2025-03-01T12:30:06Z"),
}
"""One changed body field each (hash and signature no longer match)."""


def byte_flips(receipt: Receipt) -> Iterator[tuple[int, bytes]]:
    """Every other byte of the compact serialisation, XOR 0x01: (position, flipped text)."""
    text = json.dumps(receipt, separators=(",", ":")).encode()
    for position in range(0, len(text), 2):
        data = bytearray(text)
        data[position] ^= 0x01
        yield position, bytes(data)


def edit_then_recompute_hash(r: Receipt) -> None:
    """Change ``input_count`` and recompute ``receipt_hash`` (the signature stays old)."""
    r["input_count"] -= 1
    r["receipt_hash"] = compute_receipt_hash(r)


def flip_receipt_hash(r: Receipt) -> None:
    """One hex digit of ``receipt_hash`` changed."""
    r["receipt_hash"] = other_hex(r["receipt_hash"])


def flip_signature_byte(r: Receipt) -> None:
    """One bit of the signature's 11th byte flipped."""
    sig = bytearray(base64.b64decode(r["signature"]["sig"]))
    sig[10] ^= 0x80
    r["signature"]["sig"] = base64.b64encode(bytes(sig)).decode()


# -- missing, truncated, extra signatures ------------------------------------------


def drop_signature(r: Receipt) -> None:
    """No ``signature`` at all."""
    del r["signature"]


def truncate_signature(r: Receipt) -> None:
    """A 63-byte signature."""
    sig = base64.b64decode(r["signature"]["sig"])
    r["signature"]["sig"] = base64.b64encode(sig[:-1]).decode()


def truncate_signature_text(r: Receipt) -> None:
    """The base64 text of the signature cut by four characters."""
    r["signature"]["sig"] = r["signature"]["sig"][:-4]


def extend_signature(r: Receipt) -> None:
    """A zero byte appended to the signature."""
    sig = base64.b64decode(r["signature"]["sig"])
    r["signature"]["sig"] = base64.b64encode(sig + b"\x00").decode()


def signature_list(r: Receipt, key: SigningKey) -> None:
    """``signature`` made a list of two signature objects."""
    second = resign(r, key)["signature"]
    r["signature"] = [r["signature"], second]


def extra_signatures_field(r: Receipt, attacker: SigningKey) -> None:
    """An extra top-level ``signatures`` list naming the attacker's key."""
    r["signatures"] = [{"keyid": attacker.keyid, "sig": r["signature"]["sig"]}]


# -- keys -------------------------------------------------------------------------


def forge(r: Receipt, attacker: SigningKey) -> Receipt:
    """The receipt issued and validly signed by ``attacker``."""
    r["issuer"]["keyid"] = attacker.keyid
    return resign(r, attacker)


def ship_key_inside(forged: Receipt, attacker: SigningKey) -> None:
    """The attacker's public key shipped in the signature object and at the top level."""
    forged["signature"]["public_key"] = attacker.public_key.to_base64()
    forged["public_key"] = attacker.public_key.to_base64()


def ship_key_in_signature(r: Receipt, key: SigningKey) -> None:
    """The genuine public key shipped inside the signature object."""
    r["signature"]["public_key"] = key.public_key.to_base64()


def keyid_naming(r: Receipt, other: SigningKey) -> None:
    """``signature.keyid`` names another (trusted) key; ``issuer.keyid`` still the signer."""
    r["signature"]["keyid"] = other.keyid


def keyid_and_issuer_naming(r: Receipt, key: SigningKey, other: SigningKey) -> Receipt:
    """Signed by ``key``, but ``issuer.keyid`` and ``signature.keyid`` both name ``other``."""
    r["issuer"]["keyid"] = other.keyid
    signed = resign({**r, "issuer": {"keyid": key.keyid}}, key)
    signed["issuer"] = {"keyid": other.keyid}
    signed["signature"]["keyid"] = other.keyid
    return signed


# -- JSON text -----------------------------------------------------------------------

NON_JSON_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e400")


def non_canonical_float_text(original: Receipt) -> str:
    """``chunk_count`` written ``8.0``."""
    return json.dumps(original).replace('"chunk_count": 8', '"chunk_count": 8.0')


def exponent_integer_text(original: Receipt) -> str:
    """``dimensions`` written ``8e0``."""
    return json.dumps(original).replace('"dimensions": 8', '"dimensions": 8e0')


def unsafe_integer_text(original: Receipt) -> str:
    """``dimensions`` = 2**53."""
    return json.dumps(original).replace('"dimensions": 8', f'"dimensions": {2**53}')


def unsafe_integer_in_a_mapping(r: Receipt) -> None:
    """2**60 inside the executor's manifest."""
    r["environment"]["executor"]["big"] = 2**60


def non_json_number_text(original: Receipt, literal: str) -> str:
    """The manifest's ``load`` written as ``literal`` (NaN, Infinity, ...)."""
    return json.dumps(original).replace('"load": 0.5', f'"load": {literal}')


def lone_surrogate_text(r: Receipt) -> str:
    """The manifest's ``cpu`` a lone surrogate escape."""
    return json.dumps(r).replace('"cpu": "test-cpu"', '"cpu": "\\ud800"')


def duplicate_key_text(original: Receipt) -> str:
    """``chunk_count`` given twice."""
    return json.dumps(original).replace('"chunk_count": 8', '"chunk_count": 8, "chunk_count": 9')


def nested_duplicate_key_text(original: Receipt) -> str:
    """``sampling.k`` given twice."""
    return json.dumps(original).replace('"k": 2', '"k": 2, "k": 3')


def unknown_version(r: Receipt) -> None:
    """Format version 2."""
    r["version"] = "2"


# -- structural edits (checked both as tampered and re-signed) -------------------------

COUNT_CHANGES: dict[str, Callable[[int], int]] = {
    "plus-one": lambda n: n + 1,
    "minus-one": lambda n: n - 1,
    "doubled": lambda n: n * 2,
    "halved": lambda n: n // 2,
}
WRONG_LENGTHS = (62, 63, 65, 66, 0)
NOT_HEX: tuple[Any, ...] = ("g" + "0" * 63, "A" * 64, " " + "0" * 63, 7)


def chunk_count_to(change: str) -> Edit:
    """``chunk_count`` changed alone."""

    def edit(r: Receipt) -> None:
        r["chunk_count"] = COUNT_CHANGES[change](r["chunk_count"])

    return edit


def chunk_count_with_list_to(change: str) -> Edit:
    """``chunk_count``, the chunk list and ``input_count`` changed to agree with each other."""

    def edit(r: Receipt) -> None:
        n = COUNT_CHANGES[change](r["chunk_count"])
        chunks = [dict(c) for c in r["chunks"]]
        while len(chunks) < n:  # grow with copies of real entries, renumbered
            chunks.append({**chunks[len(chunks) % 8], "index": len(chunks)})
        r["chunks"] = chunks[:n]
        r["chunk_count"] = n
        r["input_count"] = n * r["chunk_size"]

    return edit


def swap_chunks(r: Receipt) -> None:
    """Chunk entries 1 and 2 swapped."""
    r["chunks"][1], r["chunks"][2] = r["chunks"][2], r["chunks"][1]


def swap_commitments(r: Receipt) -> None:
    """The commitments of chunks 1 and 2 swapped, their indices kept."""
    a, b = r["chunks"][1], r["chunks"][2]
    for field in ("input_commitment", "output_commitment"):
        a[field], b[field] = b[field], a[field]


def remove_last_chunk(r: Receipt) -> None:
    """The last chunk entry removed."""
    r["chunks"].pop()


def remove_middle_chunk(r: Receipt) -> None:
    """Chunk entry 4 removed."""
    r["chunks"].pop(4)


def duplicate_tail(r: Receipt) -> None:
    """The last chunk entry appended again, index and all."""
    r["chunks"].append(dict(r["chunks"][-1]))


def duplicate_tail_renumbered(r: Receipt) -> None:
    """The last chunk entry appended again with the next index."""
    r["chunks"].append({**r["chunks"][-1], "index": len(r["chunks"])})


def commitment_of_length(length: int) -> Edit:
    """Chunk 2's input commitment ``length`` hex digits long."""

    def edit(r: Receipt) -> None:
        r["chunks"][2]["input_commitment"] = ("ab" * 40)[:length]

    return edit


def commitment_not_hex(bad: Any) -> Edit:
    """Chunk 5's output commitment replaced by ``bad``."""

    def edit(r: Receipt) -> None:
        r["chunks"][5]["output_commitment"] = bad

    return edit


def input_root_is_output_root(r: Receipt) -> None:
    """``input_root`` (and its alias) replaced by ``output_root``."""
    r["input_root"] = r["inputs_root"] = r["output_root"]


def alias_disagrees(r: Receipt) -> None:
    """``outputs_root`` no longer equal to ``output_root``."""
    r.update(outputs_root="0" * 64)


def indices_not_from_the_seed(r: Receipt) -> None:
    """The issuer replays chunks of its choosing (records and proof root made to agree)."""
    honest = r["sampling"]["indices"]
    chosen = [i for i in range(r["chunk_count"]) if i not in honest][: len(honest)]
    r["sampling"]["indices"] = chosen
    r["replays"] = [
        {"index": i, "output_commitment": r["chunks"][i]["output_commitment"], "match": True}
        for i in chosen
    ]
    set_proof_root(r)


def seed_not_from_the_roots(r: Receipt) -> None:
    """A zero seed, its indices and replays consistent with it."""
    seed = bytes(32)
    r["sampling"]["seed"] = seed.hex()
    r["sampling"]["indices"] = draw_indices(seed, r["sampling"]["k"], r["chunk_count"])
    r["replays"] = [
        {"index": i, "output_commitment": r["chunks"][i]["output_commitment"], "match": True}
        for i in r["sampling"]["indices"]
    ]
    set_proof_root(r)


def sample_too_small(r: Receipt) -> None:
    """``k`` = 1, one index and one replay."""
    r["sampling"]["k"] = 1
    r["sampling"]["indices"] = r["sampling"]["indices"][:1]
    r["replays"] = r["replays"][:1]
    set_proof_root(r)


def replay_says_mismatch(r: Receipt) -> None:
    """Replay record 0 says ``match: false`` with another output."""
    r["replays"][0]["match"] = False
    r["replays"][0]["output_commitment"] = other_hex(r["replays"][0]["output_commitment"])
    set_proof_root(r)


def replay_claims_match_for_another_output(r: Receipt) -> None:
    """Replay record 1 claims a match for an output that is not the chunk's."""
    r["replays"][1]["output_commitment"] = other_hex(r["replays"][1]["output_commitment"])
    set_proof_root(r)


def replay_dropped(r: Receipt) -> None:
    """The last replay record removed."""
    r["replays"].pop()
    set_proof_root(r)


def proof_root_not_over_the_replays(r: Receipt) -> None:
    """``proof_root`` (and alias) over the first replay record only."""
    r["proof_root"] = r["verification_attestation"] = proof_root_of(r["replays"][:1])


def relabel(kind: str) -> Edit:
    """``kind`` changed."""

    def edit(r: Receipt) -> None:
        r["kind"] = kind

    return edit


# -- the cases as data --------------------------------------------------------------------

NOT_RECEIPT_CASES: dict[str, str] = {
    "input_proof_checked_against_output_root": "tests Merkle inclusion proofs, not a receipt",
    "non_canonical_dsse_payload": "tests from_dsse (the CLI's unwrapping), not check_receipt",
}
"""Tests of ``test_receipts_tamper.py`` with no receipt for a verifier to check, and why."""


@dataclass(frozen=True)
class TamperKeys:
    """The keys of the tamper tests: the issuer's, a second trusted one, an attacker's."""

    key: SigningKey
    other: SigningKey
    attacker: SigningKey


@dataclass(frozen=True)
class TamperCase:
    """One receipt to check (a mapping, or JSON text) and the public keys trusted for it."""

    name: str
    receipt: Receipt | str | bytes
    trusted: tuple[PublicKey, ...]

    @property
    def family(self) -> str:
        """The tamper test this case comes from (its name without ``test_``)."""
        return self.name.split("[")[0].split(" ")[0]

    def receipt_bytes(self) -> bytes:
        """The receipt as a verifier reads it from a file."""
        if isinstance(self.receipt, bytes):
            return self.receipt
        if isinstance(self.receipt, str):
            return self.receipt.encode()
        return json.dumps(self.receipt).encode()

    def keys_bytes(self) -> bytes:
        """The trusted keys as a ``GET /keys`` document."""
        return json.dumps(keys_document(self.trusted)).encode()


def _structural() -> dict[str, Edit]:
    edits: dict[str, Edit] = {}
    for change in COUNT_CHANGES:
        edits[f"chunk_count_field[{change}]"] = chunk_count_to(change)
        edits[f"chunk_count_with_list_and_inputs_to_match[{change}]"] = (
            chunk_count_with_list_to(change))
    edits |= {
        "chunk_swapped": swap_chunks,
        "chunk_commitments_swapped_keeping_indices": swap_commitments,
        "chunk_removed": remove_last_chunk,
        "chunk_removed_from_the_middle": remove_middle_chunk,
        "chunk_duplicated_at_the_tail": duplicate_tail,
        "chunk_duplicated_at_the_tail_renumbered": duplicate_tail_renumbered,
    }
    edits |= {f"commitment_of_wrong_length[{n}]": commitment_of_length(n) for n in WRONG_LENGTHS}
    edits |= {f"commitment_not_hex[{bad!r}]": commitment_not_hex(bad) for bad in NOT_HEX}
    edits |= {
        "input_root_replaced_by_output_root": input_root_is_output_root,
        "alias_disagreeing_with_its_root": alias_disagrees,
        "sampled_indices_not_from_the_seed": indices_not_from_the_seed,
        "seed_that_does_not_follow_from_the_roots": seed_not_from_the_roots,
        "sample_smaller_than_the_rate_demands": sample_too_small,
        "replay_record_says_mismatch": replay_says_mismatch,
        "replay_record_claims_match_for_a_different_output": (
            replay_claims_match_for_another_output),
        "replay_record_dropped": replay_dropped,
        "proof_root_not_over_the_replay_records": proof_root_not_over_the_replays,
        "job_receipt_relabelled_as_local": relabel("local"),
    }
    return edits


def _edited(receipt: Receipt, edit: Edit) -> Receipt:
    copied = copy.deepcopy(receipt)
    edit(copied)
    return copied


def _simple(original: Receipt, keys: TamperKeys) -> Iterator[tuple[str, Receipt | str, tuple[
        PublicKey, ...]]]:
    key, other, attacker = keys.key, keys.other, keys.attacker
    issuer = (key.public_key,)
    both = (key.public_key, other.public_key)
    for field, edit in BODY_EDITS.items():
        yield f"byte_flip_in_body[{field}]", _edited(original, edit), issuer
    yield "recomputed_receipt_hash_does_not_help_a_tamperer", _edited(
        original, edit_then_recompute_hash), issuer
    yield "byte_flip_in_receipt_hash", _edited(original, flip_receipt_hash), issuer
    yield "byte_flip_in_signature", _edited(original, flip_signature_byte), issuer
    yield "missing_signature", _edited(original, drop_signature), issuer
    yield "truncated_signature", _edited(original, truncate_signature), issuer
    yield "truncated_signature_text", _edited(original, truncate_signature_text), issuer
    yield "extra_bytes_after_the_signature", _edited(original, extend_signature), issuer
    yield "extra_signature_in_a_list", _edited(original, lambda r: signature_list(r, key)), both
    yield "extra_signatures_field", _edited(
        original, lambda r: extra_signatures_field(r, attacker)), issuer
    forged = forge(copy.deepcopy(original), attacker)
    yield "untrusted_key", forged, issuer
    yield "untrusted_key[attacker trusted: valid]", forged, (attacker.public_key,)
    yield "key_shipped_inside_the_receipt", _edited(
        forged, lambda r: ship_key_inside(r, attacker)), issuer
    yield "key_shipped_inside_the_signature_object", _edited(
        original, lambda r: ship_key_in_signature(r, key)), issuer
    yield "keyid_naming_another_trusted_key", _edited(
        original, lambda r: keyid_naming(r, other)), both
    yield "keyid_and_issuer_naming_another_trusted_key", keyid_and_issuer_naming(
        copy.deepcopy(original), key, other), both
    yield "non_canonical_float_where_an_integer_is_required", non_canonical_float_text(
        original), issuer
    yield "non_canonical_exponent_integer", exponent_integer_text(original), issuer
    yield "unsafe_integer", unsafe_integer_text(original), issuer
    yield "unsafe_integer_in_a_mapping", _edited(original, unsafe_integer_in_a_mapping), issuer
    for literal in NON_JSON_NUMBERS:
        yield f"non_json_numbers[{literal}]", non_json_number_text(original, literal), issuer
    yield "lone_surrogate_string", lone_surrogate_text(original), issuer
    yield "duplicate_key_json", duplicate_key_text(original), issuer
    yield "duplicate_key_json_in_a_nested_object", nested_duplicate_key_text(original), issuer
    yield "unknown_version", resign(_edited(original, unknown_version), key), issuer


def tamper_cases(keys: TamperKeys) -> list[TamperCase]:
    """Every tampered receipt of ``test_receipts_tamper.py`` (but the byte-flip family).

    Starts from the tests' receipt (``make_receipt(key, chunk_count=8)``);
    each structural edit appears twice, as tampered and ``" re-signed"`` with
    the issuer's key. Also the valid starting points: ``original`` and
    ``original[local]``.
    """
    original = make_receipt(keys.key, chunk_count=8)
    local = make_receipt(keys.key, kind="local")
    issuer = (keys.key.public_key,)
    cases = [TamperCase("original", original, issuer),
             TamperCase("original[local]", local, issuer)]
    cases += [TamperCase(name, receipt, trusted)
              for name, receipt, trusted in _simple(original, keys)]
    structural = [(name, original, edit) for name, edit in _structural().items()]
    structural.append(("local_receipt_relabelled_as_a_job", local, relabel("job")))
    for name, start, edit in structural:
        edited = _edited(start, edit)
        cases.append(TamperCase(name, edited, issuer))
        cases.append(TamperCase(f"{name} re-signed", resign(edited, keys.key), issuer))
    return cases


def byte_flip_cases(key: SigningKey) -> list[TamperCase]:
    """``byte_flip_anywhere_in_the_serialised_receipt``: each flipped text of a 2-chunk receipt."""
    small = make_receipt(key, chunk_count=2)
    return [TamperCase(f"byte_flip_anywhere_in_the_serialised_receipt[{position}]", data,
                       (key.public_key,))
            for position, data in byte_flips(small)]


def case_names(cases: list[TamperCase]) -> Mapping[str, TamperCase]:
    """The cases by name (names are unique)."""
    named = {case.name: case for case in cases}
    assert len(named) == len(cases), "tamper case names must be unique"
    return named
