"""Ed25519 receipt-signing keys, key ids, the ``GET /keys`` document and DSSE PAE.

* ``keyid`` = SHA-256 (hex) of the raw 32-byte public key.
* Private keys are stored as unencrypted PKCS#8 PEM in a file created with
  ``O_CREAT | O_EXCL`` and mode 0600 (never readable by others, not even
  briefly; an existing file is never overwritten). Public keys are stored as
  SubjectPublicKeyInfo PEM.
* ``GET /keys`` serves ``{"keys": [{"keyid", "alg": "ed25519", "public_key":
  base64(raw 32 bytes)}]}``; :func:`parse_keys_document` checks every keyid
  against its key.
* :func:`pae` is the DSSE v1 pre-authentication encoding that signatures
  cover.

A :class:`SigningKey`'s ``repr`` shows only its keyid, never key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._json import loads_json
from ._text import brief

__all__ = [
    "ALG",
    "PublicKey",
    "SigningKey",
    "b64decode_strict",
    "generate_signing_key",
    "keyid_of",
    "keys_document",
    "load_signing_key",
    "load_trusted_keys",
    "pae",
    "parse_keys_document",
    "save_public_key",
    "save_signing_key",
]

ALG: Final = "ed25519"
_RAW_KEY_BYTES: Final = 32


def keyid_of(raw_public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key: its SHA-256 in hex."""
    if len(raw_public_key) != _RAW_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key has 32 bytes, got {len(raw_public_key)}")
    return hashlib.sha256(raw_public_key).hexdigest()


def b64decode_strict(text: str) -> bytes:
    """Standard base64 (with padding) to bytes; ValueError on any other character."""
    if not isinstance(text, str):
        raise ValueError(f"expected a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not valid base64") from None


class PublicKey:
    """An Ed25519 public key that signatures are checked against."""

    __slots__ = ("_key", "keyid", "raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self.raw: bytes = key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.keyid: str = keyid_of(self.raw)

    @classmethod
    def from_raw(cls, raw: bytes) -> PublicKey:
        """The key with these 32 raw bytes."""
        if len(raw) != _RAW_KEY_BYTES:
            raise ValueError(f"an Ed25519 public key has 32 bytes, got {len(raw)}")
        return cls(Ed25519PublicKey.from_public_bytes(raw))

    @classmethod
    def from_base64(cls, text: str) -> PublicKey:
        """The key whose raw 32 bytes are ``text`` in standard base64."""
        return cls.from_raw(b64decode_strict(text))

    def to_base64(self) -> str:
        """The raw 32 bytes in standard base64 (the ``/keys`` form)."""
        return base64.b64encode(self.raw).decode("ascii")

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``data``."""
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"PublicKey(keyid={self.keyid!r})"


class SigningKey:
    """An Ed25519 private key for signing receipts; its repr never shows key material."""

    __slots__ = ("_private", "public_key")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_key = PublicKey(private.public_key())

    @property
    def keyid(self) -> str:
        """The key id of the public half."""
        return self.public_key.keyid

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"SigningKey(keyid={self.keyid!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a SigningKey cannot be pickled; save it with save_signing_key()")


def generate_signing_key() -> SigningKey:
    """A new random Ed25519 signing key."""
    return SigningKey(Ed25519PrivateKey.generate())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` exclusively with ``mode`` and write ``data``; never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def save_signing_key(key: SigningKey, path: str | os.PathLike[str]) -> None:
    """Write the private key as PKCS#8 PEM to a new file readable by its owner only (0600)."""
    pem = key._private.private_bytes(  # the one place key material leaves
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(Path(path), pem, 0o600)


def save_public_key(key: PublicKey, path: str | os.PathLike[str]) -> None:
    """Write the public key as PEM to a new file (0644)."""
    _write_new(Path(path), key.to_pem(), 0o644)


def load_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """Read a private key saved by :func:`save_signing_key` (PKCS#8 PEM, Ed25519)."""
    data = Path(path).read_bytes()
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} holds a {type(private).__name__}, not an Ed25519 key")
    return SigningKey(private)


def load_trusted_keys(path: str | os.PathLike[str]) -> dict[str, PublicKey]:
    """Public keys from a file: PEM, one base64 raw key, or a ``/keys`` JSON document."""
    data = Path(path).read_bytes()
    text = data.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        return parse_keys_document(text)
    if text.startswith("-----BEGIN"):
        if "PRIVATE KEY" in text.split("\n", 1)[0]:
            raise ValueError(f"{path} holds a private key; give the public key (.pub) instead")
        try:
            public = serialization.load_pem_public_key(data)
        except (ValueError, TypeError):
            raise ValueError(f"{path} is not a valid PEM public key") from None
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError(f"{path} holds a {type(public).__name__}, not an Ed25519 key")
        key = PublicKey(public)
    else:
        try:
            key = PublicKey.from_base64(text)
        except ValueError as exc:
            raise ValueError(f"{path}: not a PEM, base64 or /keys public key ({exc})") from None
    return {key.keyid: key}


def keys_document(keys: Iterable[PublicKey]) -> dict[str, Any]:
    """The ``GET /keys`` document for these public keys."""
    return {
        "keys": [{"keyid": key.keyid, "alg": ALG, "public_key": key.to_base64()} for key in keys]
    }


def parse_keys_document(document: Mapping[str, Any] | str | bytes) -> dict[str, PublicKey]:
    """Trusted keys by keyid from a ``GET /keys`` document; ValueError if any entry is wrong."""
    if isinstance(document, str | bytes):
        try:
            document = loads_json(document)
        except ValueError as exc:
            raise ValueError(f"the keys document is not JSON: {exc}") from None
    entries = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError('the keys document must be an object {"keys": [...]}')
    trusted: dict[str, PublicKey] = {}
    for position, entry in enumerate(entries):
        where = f"keys[{position}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be an object")
        if entry.get("alg") != ALG:
            raise ValueError(f"{where}.alg must be {ALG!r}, got {brief(entry.get('alg'))}")
        try:
            key = PublicKey.from_base64(entry.get("public_key"))  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"{where}.public_key: {exc}") from None
        if entry.get("keyid") != key.keyid:
            raise ValueError(f"{where}.keyid does not match its public key (want {key.keyid})")
        trusted[key.keyid] = key
    if not trusted:
        raise ValueError("the keys document lists no keys")
    return trusted


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)
