"""cyberian.tlog: C2SP checkpoints and signed notes, verifier keys, proofs and bundles."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cyberian import merkle
from cyberian.exceptions import CyberianError
from cyberian.signing import SigningKey
from cyberian.tlog import (
    BUNDLE_FORMAT,
    EMPTY_ROOT,
    Checkpoint,
    InclusionProof,
    LogKey,
    TlogError,
    consistency_from_json,
    consistency_to_json,
    entry_bytes,
    entry_leaf_hash,
    make_bundle,
    open_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
    verify_bundle,
    verify_consistency,
)

ORIGIN = "example.com/cyberian-test"
KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
ROOT = hashlib.sha256(b"cyberian tlog test vector").digest()

# Hand-made: the body is the C2SP tlog-checkpoint text, the signature line an em dash, the
# key name and base64(key id f0038073 || Ed25519 signature of the body) (Ed25519 is
# deterministic, so these bytes are fixed).
VECTOR_NOTE = (
    "example.com/cyberian-test\n"
    "1234\n"
    "YEWuLW+VCY/E1k+TpgBa2HmoWW42EL6Zku0BGdGlBbs=\n"
    "\n"
    "\u2014 example.com/cyberian-test "
    "8AOAcwIPojSCRwRtPvMvY/zZLOPX9ceITvgwti/IzdyH/+6L+2X1v1YrBOCI8BofkWc+slZk0Zv4gclf9fWTWs5Qtg0=\n"
)
VECTOR_VKEY = "example.com/cyberian-test+f0038073+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"

# The golang.org/x/mod/sumdb/note reference example (an independent implementation).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_SIG = ("x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6Ry"
          "yBwJnAM=")


def _log_key() -> LogKey:
    return LogKey.of(ORIGIN, KEY.public_key)


def test_the_checkpoint_note_is_byte_for_byte_the_c2sp_vector() -> None:
    checkpoint = Checkpoint(ORIGIN, 1234, ROOT)
    assert checkpoint.body() == b"example.com/cyberian-test\n1234\n" + \
        base64.b64encode(ROOT) + b"\n"
    note = sign_checkpoint(checkpoint, KEY, ORIGIN)
    assert note == VECTOR_NOTE
    # the key id and signature, recomputed by hand from the C2SP definitions
    raw = KEY.public_key.raw
    key_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
    assert key_id.hex() == "f0038073"
    signature = base64.b64decode(note.rsplit(" ", 1)[1])
    assert signature[:4] == key_id
    assert KEY.public_key.verify(signature[4:], checkpoint.body())
    assert verifier_key(ORIGIN, KEY.public_key) == VECTOR_VKEY
    assert open_checkpoint(note, [_log_key()], origin=ORIGIN) == checkpoint


def test_the_go_reference_key_and_signature_are_reproduced() -> None:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert seed[0] == 1
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(seed[1:]))
    assert verifier_key("PeterNeumann", key.public_key) == GO_VKEY
    parsed = parse_verifier_key(GO_VKEY)
    assert parsed.key_hash.hex() == "c74f20a3"
    assert parsed.public == key.public_key
    assert base64.b64encode(parsed.key_hash + key.sign(GO_TEXT.encode())).decode() == GO_SIG
    # the signature line parses and verifies; the text is just not a checkpoint
    go_note = f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIG}\n"
    with pytest.raises(TlogError, match="malformed checkpoint"):
        open_checkpoint(go_note, [parsed])


def test_vkey_round_trip_and_refusals() -> None:
    key = parse_verifier_key(VECTOR_VKEY)
    assert key == _log_key()
    assert key.vkey() == VECTOR_VKEY
    name, key_id, encoded = VECTOR_VKEY.split("+", 2)
    for bad in (f"{name}+00000000+{encoded}",           # wrong key id
                f"{name}+{key_id.upper()}+{encoded}",   # key id not lowercase hex
                f"{name}+{key_id}",                      # no key
                f"other+{key_id}+{encoded}",             # key id of another name
                f"{name}+{key_id}+{encoded[:-4]}",       # short key
                f"{name}+{key_id}+" + base64.b64encode(b"\x02" + KEY.public_key.raw).decode(),
                f"+{key_id}+{encoded}"):
        with pytest.raises(TlogError):
            parse_verifier_key(bad)
    with pytest.raises(TlogError):
        verifier_key("has space", KEY.public_key)


def _resign(body: str) -> str:
    """A note with ``body`` as its text, validly signed by KEY (to test body checks)."""
    raw = LogKey.of(ORIGIN, KEY.public_key).key_hash + KEY.sign(body.encode())
    return f"{body}\n\u2014 {ORIGIN} {base64.b64encode(raw).decode()}\n"


_ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(("note", "message"), [
    (VECTOR_NOTE.replace("1234", "1235"), "invalid"),                      # body altered
    (VECTOR_NOTE.replace("\n\n", "\n"), "blank line"),                     # no separator
    (VECTOR_NOTE[:-1], "newline"),                                         # no final newline
    (VECTOR_NOTE.replace("\u2014", "-"), "em dash"),                       # ASCII dash
    (VECTOR_NOTE.replace("8AOA", "8AO*"), "base64"),                       # bad base64
    (VECTOR_NOTE.replace("\n", "\r\n"), "control"),                        # CR
    (VECTOR_NOTE.replace("example.com/cyberian-test 8A", "other 8A"), "no signature"),
    (VECTOR_NOTE.replace("8AOAcwIP", "8AOAcwIQ"), "invalid"),              # signature altered
    ("\u2014 x\n", "blank line"),
    (_resign(f"{ORIGIN}\n01234\n{_ROOT64}\n"), "leading zeros"),
    (_resign(f"{ORIGIN}\n-1\n{_ROOT64}\n"), "decimal"),
    (_resign(f"{ORIGIN}\n1e3\n{_ROOT64}\n"), "decimal"),
    (_resign(f"{ORIGIN}\n\uff11\n{_ROOT64}\n"), "decimal"),                # non-ASCII digit
    (_resign(f"{ORIGIN}\n{2**64}\n{_ROOT64}\n"), r"2\^64"),
    (_resign(f"{ORIGIN}\n5\n{_ROOT64[:-2]}\n"), "base64"),
    (_resign(f"{ORIGIN}\n5\n{base64.b64encode(ROOT[:31]).decode()}\n"), "31 bytes"),
    (_resign(f"{ORIGIN}\n5\n"), "origin, a size and a root"),
    (_resign(f"\n5\n{_ROOT64}\n"), "origin line is empty"),
])
def test_open_checkpoint_refuses(note: str, message: str) -> None:
    with pytest.raises(TlogError, match=message):
        open_checkpoint(note, [_log_key()])


def test_open_checkpoint_origin_unknown_signers_and_extensions() -> None:
    with pytest.raises(TlogError, match="origin"):
        open_checkpoint(VECTOR_NOTE, [_log_key()], origin="example.com/other")
    with pytest.raises(TlogError, match="no log key"):
        open_checkpoint(VECTOR_NOTE, [])
    other = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(32)))
    cosigned = VECTOR_NOTE + sign_checkpoint(Checkpoint(ORIGIN, 1234, ROOT), other,
                                             "witness").split("\n\n")[1]
    assert open_checkpoint(cosigned, [_log_key()]).size == 1234      # unknown signer ignored
    assert open_checkpoint(cosigned, [LogKey.of("witness", other.public_key)]).size == 1234
    extended = _resign(f"{ORIGIN}\n7\n{_ROOT64}\nextension line\n")
    assert open_checkpoint(extended, [_log_key()]) == Checkpoint(ORIGIN, 7, ROOT)
    assert issubclass(TlogError, CyberianError)


def test_checkpoint_refuses_bad_fields() -> None:
    for origin, size, root in (("", 1, ROOT), ("a\nb", 1, ROOT), (ORIGIN, -1, ROOT),
                               (ORIGIN, True, ROOT), (ORIGIN, 1, ROOT[:31])):
        with pytest.raises(TlogError):
            Checkpoint(origin, size, root)  # type: ignore[arg-type]


def _receipts(count: int) -> list[dict[str, Any]]:
    return [{"receipt_id": f"rcpt_{i}", "kind": "vaas", "sampling": {"rate": 1.0},
             "receipt_hash": hashlib.sha256(str(i).encode()).hexdigest(),
             "signature": {"alg": "ed25519", "sig": "x"}} for i in range(count)]


def test_entry_is_canonical_json_of_the_whole_receipt() -> None:
    receipt = {"b": 1, "a": [1.0, "\u00e9"], "signature": {"sig": "s"}}
    assert entry_bytes(receipt) == '{"a":[1,"\u00e9"],"b":1,"signature":{"sig":"s"}}'.encode()
    assert entry_leaf_hash(b"x") == merkle.leaf_hash(b"x")
    with pytest.raises(TlogError):
        entry_bytes({"a": float("nan")})


def _log(size: int) -> tuple[list[bytes], Checkpoint]:
    entries = [entry_bytes(receipt) for receipt in _receipts(size)]
    return entries, Checkpoint(ORIGIN, size, merkle.root(entries))


def test_inclusion_proofs_verify_and_round_trip() -> None:
    entries, checkpoint = _log(13)
    for index in range(13):
        proof = InclusionProof(index, 13, entry_leaf_hash(entries[index]),
                               tuple(merkle.inclusion_proof(entries, index)))
        again = InclusionProof.from_json(proof.to_json())
        assert again == proof
        again.verify(checkpoint)
    with pytest.raises(TlogError, match="size"):
        proof.verify(Checkpoint(ORIGIN, 14, checkpoint.root))
    with pytest.raises(TlogError, match="not in the log"):
        InclusionProof(0, 13, entry_leaf_hash(b"other"), proof.proof).verify(checkpoint)
    good = proof.to_json()
    for bad in ({**good, "index": -1}, {**good, "index": True}, {**good, "size": "13"},
                {**good, "leaf_hash": "00"}, {**good, "proof": "ab"}, {**good, "proof": [1]},
                {k: v for k, v in good.items() if k != "proof"}, []):
        with pytest.raises(TlogError):
            InclusionProof.from_json(bad)  # type: ignore[arg-type]


def test_consistency_between_every_pair_of_sizes() -> None:
    entries, _ = _log(20)
    checkpoints = [Checkpoint(ORIGIN, n, merkle.root(entries[:n])) for n in range(21)]
    assert checkpoints[0].root == EMPTY_ROOT
    for old in checkpoints:
        for new in checkpoints[old.size:]:
            proof = [] if old.size == 0 else merkle.consistency_proof(entries[:new.size],
                                                                      old.size)
            data = consistency_to_json(old.size, new.size, proof)
            assert consistency_from_json(data) == (old.size, new.size, tuple(proof))
            verify_consistency(old, new, proof)
    forked = Checkpoint(ORIGIN, 10, merkle.root([*entries[:4], b"rewritten", *entries[5:10]]))
    proof = merkle.consistency_proof(entries[:15], 10)
    with pytest.raises(TlogError, match=r"size 10 root .* -> size 15 root"):
        verify_consistency(forked, checkpoints[15], proof)
    with pytest.raises(TlogError, match="shrank"):
        verify_consistency(checkpoints[5], checkpoints[4], [])
    with pytest.raises(TlogError, match="different logs"):
        verify_consistency(Checkpoint("other", 1, checkpoints[1].root), checkpoints[2], [])
    with pytest.raises(TlogError):
        verify_consistency(checkpoints[3], Checkpoint(ORIGIN, 3, forked.root), [])


def test_bundle_round_trip_and_refusals() -> None:
    receipts = _receipts(6)
    entries = [entry_bytes(receipt) for receipt in receipts]
    checkpoint = Checkpoint(ORIGIN, 6, merkle.root(entries))
    note = sign_checkpoint(checkpoint, KEY, ORIGIN)
    proof = InclusionProof(2, 6, entry_leaf_hash(entries[2]),
                           tuple(merkle.inclusion_proof(entries, 2)))
    bundle = make_bundle(note, proof, VECTOR_VKEY)
    assert bundle == {"format": BUNDLE_FORMAT, "checkpoint": note,
                      "inclusion": proof.to_json(), "log_key": VECTOR_VKEY}
    assert verify_bundle(receipts[2], bundle) == (checkpoint, proof)
    assert verify_bundle(receipts[2], bundle, [_log_key()]) == (checkpoint, proof)
    with pytest.raises(TlogError, match="hashes to"):
        verify_bundle(receipts[3], bundle)
    with pytest.raises(TlogError, match="hashes to"):
        verify_bundle({**receipts[2], "kind": "job"}, bundle)
    stranger = LogKey.of(ORIGIN, SigningKey(Ed25519PrivateKey.from_private_bytes(
        bytes(32))).public_key)
    with pytest.raises(TlogError, match="no signature"):
        verify_bundle(receipts[2], bundle, [stranger])
    for bad in ({**bundle, "format": "v0"}, {**bundle, "checkpoint": 1},
                {**bundle, "log_key": "nope"}, {**bundle, "inclusion": {}}):
        with pytest.raises(TlogError):
            verify_bundle(receipts[2], bad)
