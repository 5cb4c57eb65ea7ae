"""Ed25519 keys: key ids, safe storage, loading, the /keys document, DSSE PAE."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from cyberian import signing
from cyberian.signing import (
    PublicKey,
    generate_signing_key,
    keys_document,
    load_signing_key,
    load_trusted_keys,
    pae,
    parse_keys_document,
    save_public_key,
    save_signing_key,
)


def _private_material(key: signing.SigningKey) -> list[str]:
    raw = key._private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem = key._private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    body = "".join(pem.splitlines()[1:-1])
    return [raw.hex(), base64.b64encode(raw).decode(), body[:20], str(list(raw[:8]))]


def test_keyid_is_sha256_of_the_raw_public_key() -> None:
    key = generate_signing_key()
    raw = key.public_key.raw
    assert len(raw) == 32
    assert key.keyid == hashlib.sha256(raw).hexdigest() == key.public_key.keyid


def test_repr_never_shows_private_key_material() -> None:
    key = generate_signing_key()
    for text in (repr(key), str(key), f"{key}", repr([key]), repr(key.public_key)):
        assert key.keyid in text
        for secret in _private_material(key):
            assert secret not in text


def test_signing_key_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(generate_signing_key())


def test_sign_and_verify() -> None:
    key = generate_signing_key()
    signature = key.sign(b"message")
    assert len(signature) == 64
    assert key.public_key.verify(signature, b"message")
    assert not key.public_key.verify(signature, b"messagE")
    assert not generate_signing_key().public_key.verify(signature, b"message")


def test_private_key_file_is_created_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        calls.append((flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(signing.os, "open", spy)
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        save_signing_key(generate_signing_key(), tmp_path / "key")
    finally:
        os.umask(old_umask)
    flags, mode = calls[0]
    assert flags & os.O_CREAT
    assert flags & os.O_EXCL
    assert mode == 0o600
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600


def test_saved_keys_load_back(tmp_path: Path) -> None:
    key = generate_signing_key()
    save_signing_key(key, tmp_path / "key")
    save_public_key(key.public_key, tmp_path / "key.pub")
    loaded = load_signing_key(tmp_path / "key")
    assert loaded.keyid == key.keyid
    assert key.public_key.verify(loaded.sign(b"x"), b"x")
    assert load_trusted_keys(tmp_path / "key.pub") == {key.keyid: key.public_key}
    assert (tmp_path / "key").read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "key"
    target.write_text("precious")
    with pytest.raises(FileExistsError):
        save_signing_key(generate_signing_key(), target)
    with pytest.raises(FileExistsError):
        save_public_key(generate_signing_key().public_key, target)
    assert target.read_text() == "precious"


def test_load_signing_key_refuses_other_files(tmp_path: Path) -> None:
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(ValueError, match="not an unencrypted PEM"):
        load_signing_key(tmp_path / "junk")


def test_trusted_keys_from_base64_and_keys_documents(tmp_path: Path) -> None:
    a, b = generate_signing_key(), generate_signing_key()
    (tmp_path / "raw").write_text(a.public_key.to_base64() + "\n")
    (tmp_path / "doc.json").write_text(json.dumps(keys_document([a.public_key, b.public_key])))
    assert load_trusted_keys(tmp_path / "raw") == {a.keyid: a.public_key}
    assert load_trusted_keys(tmp_path / "doc.json") == {
        a.keyid: a.public_key,
        b.keyid: b.public_key,
    }


def test_trusted_keys_refuse_a_private_key_or_junk(tmp_path: Path) -> None:
    key = generate_signing_key()
    save_signing_key(key, tmp_path / "key")
    with pytest.raises(ValueError, match="private key"):
        load_trusted_keys(tmp_path / "key")
    (tmp_path / "junk").write_text("hello")
    with pytest.raises(ValueError, match="not a PEM, base64"):
        load_trusted_keys(tmp_path / "junk")


def test_keys_document_shape_and_round_trip() -> None:
    key = generate_signing_key()
    document = keys_document([key.public_key])
    assert document == {
        "keys": [{"keyid": key.keyid, "alg": "ed25519", "public_key": key.public_key.to_base64()}]
    }
    assert base64.b64decode(document["keys"][0]["public_key"]) == key.public_key.raw
    assert parse_keys_document(document) == {key.keyid: key.public_key}
    assert parse_keys_document(json.dumps(document)) == {key.keyid: key.public_key}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keyid": "0" * 64}, "does not match"),
        ({"alg": "rsa"}, "alg"),
        ({"public_key": "!!!"}, "base64"),
        ({"public_key": base64.b64encode(b"x" * 31).decode()}, "32 bytes"),
    ],
)
def test_keys_document_entries_are_checked(change: dict[str, str], message: str) -> None:
    entry = keys_document([generate_signing_key().public_key])["keys"][0]
    with pytest.raises(ValueError, match=message):
        parse_keys_document({"keys": [{**entry, **change}]})


@pytest.mark.parametrize("document", [{}, {"keys": []}, {"keys": "x"}, [], "not json", "[1]"])
def test_keys_document_shape_is_checked(document: Any) -> None:
    with pytest.raises(ValueError, match=r"keys|JSON"):
        parse_keys_document(document)


def test_pae_matches_the_dsse_specification() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", b"") == b"DSSEv1 1 t 0 "


def test_public_key_equality_and_hash() -> None:
    key = generate_signing_key()
    copy = PublicKey.from_raw(key.public_key.raw)
    assert copy == key.public_key
    assert len({copy, key.public_key}) == 1
    assert copy != generate_signing_key().public_key
