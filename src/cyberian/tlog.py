"""The transparency log of receipts: C2SP checkpoints, signed notes, proofs and bundles.

Every receipt a server signs is one entry of an RFC 9162 Merkle log (the
entry is the RFC 8785 canonical JSON of the whole signed receipt). The log's
state is a C2SP ``tlog-checkpoint`` (origin, decimal size, base64 root)
published as a C2SP ``signed-note`` signed by the log's own Ed25519 key,
whose C2SP verifier key (``name+hash+base64``) the server publishes at
``GET /keys``. Inclusion proofs tie a receipt to a checkpoint; consistency
proofs show a later checkpoint extends an earlier one (a rewritten or forked
log cannot produce one). A *bundle* is what a client saves beside a receipt:
a signed checkpoint, the receipt's inclusion proof and the log key.

Verification raises :class:`~cyberian.exceptions.TlogError` and returns
``None`` (or the checked values), like :mod:`cyberian.merkle`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import rfc8785

from . import merkle
from .exceptions import MerkleProofError, TlogError
from .merkle import EMPTY_ROOT
from .signing import PublicKey, SigningKey, b64decode_strict

__all__ = [
    "BUNDLE_FORMAT",
    "EMPTY_ROOT",
    "Checkpoint",
    "InclusionProof",
    "LogKey",
    "TlogError",
    "consistency_from_json",
    "consistency_to_json",
    "entry_bytes",
    "entry_leaf_hash",
    "make_bundle",
    "open_checkpoint",
    "parse_verifier_key",
    "sign_checkpoint",
    "verifier_key",
    "verify_bundle",
    "verify_consistency",
]

BUNDLE_FORMAT: Final = "cyberian-log-bundle/v1"

_ALG_ED25519: Final = b"\x01"
_HASH_BYTES: Final = 32
_KEY_HASH_BYTES: Final = 4
_SIGNATURE_BYTES: Final = 64
_MAX_SIGNATURES: Final = 100
_MAX_SIZE: Final = 2**64 - 1
_SIG_PREFIX: Final = "\u2014 "  # em dash and a space begin every signature line
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_HEX_HASH: Final = re.compile(r"[0-9a-fA-F]{64}")
_HEX_KEY_HASH: Final = re.compile(r"[0-9a-f]{8}")


def _check_name(name: object, what: str = "key name") -> str:
    """``name`` if it is a valid signed-note key name (non-empty, no spaces, no ``+``)."""
    if not isinstance(name, str) or not name or "+" in name or any(
            char.isspace() or char < " " for char in name):
        raise TlogError(f"{what} must be non-empty without spaces or '+', got {name!r}"[:200])
    return name


@dataclass(frozen=True)
class Checkpoint:
    """A log state: its origin (the log's name), its size and its RFC 9162 root."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or any(
                char < " " for char in self.origin):
            raise TlogError(f"checkpoint origin must be one non-empty line, got {self.origin!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not (
                0 <= self.size <= _MAX_SIZE):
            raise TlogError(f"checkpoint size must be an integer 0..2^64-1, got {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != _HASH_BYTES:
            raise TlogError("checkpoint root must be a 32-byte hash")

    def body(self) -> bytes:
        """The C2SP ``tlog-checkpoint`` text (origin, size, base64 root; no extension lines)."""
        root = base64.b64encode(self.root).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n".encode()


def _key_hash(name: str, raw_public: bytes) -> bytes:
    """The C2SP signed-note key id of an Ed25519 key: 4 bytes of SHA-256."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ALG_ED25519 + raw_public).digest()[
        :_KEY_HASH_BYTES]


@dataclass(frozen=True)
class LogKey:
    """A log's verifier key: the signer's name, its 4-byte key id and the public key."""

    name: str
    key_hash: bytes
    public: PublicKey

    @classmethod
    def of(cls, name: str, public: PublicKey) -> LogKey:
        """The verifier key of ``public`` under ``name`` (its key id computed)."""
        return cls(_check_name(name), _key_hash(name, public.raw), public)

    def vkey(self) -> str:
        """The C2SP verifier-key string of this key."""
        return verifier_key(self.name, self.public)


def verifier_key(name: str, public: PublicKey) -> str:
    """The C2SP verifier key ``<name>+<key id hex>+<base64(0x01 || public key)>``."""
    _check_name(name)
    encoded = base64.b64encode(_ALG_ED25519 + public.raw).decode("ascii")
    return f"{name}+{_key_hash(name, public.raw).hex()}+{encoded}"


def parse_verifier_key(text: str) -> LogKey:
    """The :class:`LogKey` a C2SP verifier-key string names (its key id is checked)."""
    if not isinstance(text, str):
        raise TlogError(f"a verifier key must be a string, got {type(text).__name__}")
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise TlogError("a verifier key has the form <name>+<8 hex>+<base64 key>")
    name, hash_hex, key64 = parts
    _check_name(name)
    if not _HEX_KEY_HASH.fullmatch(hash_hex):
        raise TlogError(f"verifier key {name}: the key id must be 8 lowercase hex digits")
    try:
        key = b64decode_strict(key64)
    except ValueError:
        raise TlogError(f"verifier key {name}: the key is not valid base64") from None
    if len(key) != 1 + 32 or key[:1] != _ALG_ED25519:
        raise TlogError(f"verifier key {name}: not an Ed25519 key (0x01 and 32 bytes)")
    public = PublicKey.from_raw(key[1:])
    if not hmac.compare_digest(_key_hash(name, public.raw), bytes.fromhex(hash_hex)):
        raise TlogError(f"verifier key {name}: the key id {hash_hex} does not match the key")
    return LogKey(name, bytes.fromhex(hash_hex), public)


def sign_checkpoint(checkpoint: Checkpoint, key: SigningKey, name: str) -> str:
    """The C2SP signed note of ``checkpoint``, signed by ``key`` under ``name``."""
    _check_name(name)
    body = checkpoint.body()
    signature = _key_hash(name, key.public_key.raw) + key.sign(body)
    encoded = base64.b64encode(signature).decode("ascii")
    return f"{body.decode('utf-8')}\n{_SIG_PREFIX}{name} {encoded}\n"


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """A signed note's text and its signatures ``(name, key id, signature)``."""
    if not isinstance(note, str):
        raise TlogError(f"a signed note must be text, got {type(note).__name__}")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise TlogError("malformed note: not valid UTF-8") from None
    if any(char < " " and char != "\n" for char in note):
        raise TlogError("malformed note: it holds a control character other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise TlogError("malformed note: no blank line before the signatures")
    text, block = note[:split + 1], note[split + 2:]
    if not block.endswith("\n"):
        raise TlogError("malformed note: the signature lines must end with a newline")
    signatures: list[tuple[str, bytes, bytes]] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(_SIG_PREFIX):
            raise TlogError("malformed note: a signature line must begin with an em dash")
        name, _, encoded = line[len(_SIG_PREFIX):].partition(" ")
        _check_name(name, "signature key name")
        try:
            raw = b64decode_strict(encoded)
        except ValueError:
            raise TlogError(f"malformed note: the signature of {name} is not base64") from None
        if len(raw) <= _KEY_HASH_BYTES:
            raise TlogError(f"malformed note: the signature of {name} is too short")
        signatures.append((name, raw[:_KEY_HASH_BYTES], raw[_KEY_HASH_BYTES:]))
    if len(signatures) > _MAX_SIGNATURES:
        raise TlogError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    return text, signatures


def _parse_body(text: str) -> Checkpoint:
    """The checkpoint in a note's text (extension lines are allowed and ignored)."""
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise TlogError("malformed checkpoint: it needs an origin, a size and a root line")
    origin, size, root64, *extensions = lines
    if not origin:
        raise TlogError("malformed checkpoint: the origin line is empty")
    if not _DECIMAL.fullmatch(size) or int(size) > _MAX_SIZE:
        raise TlogError(f"malformed checkpoint: size {size[:30]!r} is not a decimal integer "
                        "without leading zeros below 2^64")
    try:
        root = b64decode_strict(root64)
    except ValueError:
        raise TlogError("malformed checkpoint: the root is not valid base64") from None
    if len(root) != _HASH_BYTES:
        raise TlogError(f"malformed checkpoint: the root has {len(root)} bytes, not 32")
    if any(not line for line in extensions):
        raise TlogError("malformed checkpoint: an extension line is empty")
    return Checkpoint(origin, int(size), root)


def open_checkpoint(note: str, keys: Iterable[LogKey], *, origin: str | None = None) -> Checkpoint:
    """The checkpoint of a signed note, once a signature by one of ``keys`` verifies.

    Signatures of unknown keys are ignored; a signature of a known key that
    does not verify, a malformed note or checkpoint, and an origin other than
    ``origin`` (when given) are refused.
    """
    text, signatures = _split_note(note)
    known = {(key.name, key.key_hash): key for key in keys}
    if not known:
        raise TlogError("no log key to check the checkpoint against")
    message = text.encode("utf-8")
    verified = False
    for name, key_hash, signature in signatures:
        key = known.get((name, key_hash))
        if key is None:
            continue
        if len(signature) != _SIGNATURE_BYTES or not key.public.verify(signature, message):
            raise TlogError(f"the checkpoint signature of {name}+{key_hash.hex()} is invalid")
        verified = True
    if not verified:
        names = ", ".join(sorted({f"{name}+{key_hash.hex()}" for name, key_hash in known}))
        raise TlogError(f"the checkpoint carries no signature by a trusted log key ({names})")
    checkpoint = _parse_body(text)
    if origin is not None and checkpoint.origin != origin:
        raise TlogError(f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}")
    return checkpoint


def entry_bytes(receipt: Mapping[str, Any]) -> bytes:
    """The log entry of a signed receipt: RFC 8785 canonical JSON of the whole receipt."""
    try:
        data: bytes = rfc8785.dumps(dict(receipt))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise TlogError(f"the receipt is not representable as RFC 8785 JSON: {exc}") from None
    return data


def entry_leaf_hash(entry: bytes) -> bytes:
    """The RFC 9162 leaf hash of a log entry."""
    return merkle.leaf_hash(entry)


def _int_field(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SIZE:
        raise TlogError(f"{name} must be a non-negative integer, got {value!r}"[:200])
    return value


def _hash_field(value: object, name: str) -> bytes:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise TlogError(f"{name} must be a 32-byte hash in hex")
    return bytes.fromhex(value)


def _hash_list(value: object, name: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise TlogError(f"{name} must be a list of hex hashes")
    return tuple(_hash_field(item, f"{name}[{i}]") for i, item in enumerate(value))


def _mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TlogError(f"{what} must be a JSON object")
    return data


@dataclass(frozen=True)
class InclusionProof:
    """That the entry with ``leaf_hash`` is leaf ``index`` of the log at ``size``."""

    index: int
    size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]

    def verify(self, checkpoint: Checkpoint) -> None:
        """Check the proof against a checkpoint of the same size (TlogError otherwise)."""
        if checkpoint.size != self.size:
            raise TlogError(f"the inclusion proof is for size {self.size}, "
                            f"the checkpoint has size {checkpoint.size}")
        try:
            merkle.verify_inclusion(self.leaf_hash, self.index, self.size, self.proof,
                                    checkpoint.root)
        except MerkleProofError as exc:
            raise TlogError(f"entry {self.index} is not in the log of size {self.size} "
                            f"with root {checkpoint.root.hex()}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """``{"index", "size", "leaf_hash": hex, "proof": [hex, ...]}``."""
        return {"index": self.index, "size": self.size, "leaf_hash": self.leaf_hash.hex(),
                "proof": [node.hex() for node in self.proof]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InclusionProof:
        """The proof in its :meth:`to_json` form (TlogError if it is malformed)."""
        data = _mapping(data, "an inclusion proof")
        return cls(_int_field(data, "index"), _int_field(data, "size"),
                   _hash_field(data.get("leaf_hash"), "leaf_hash"),
                   _hash_list(data.get("proof"), "proof"))


def consistency_to_json(old_size: int, new_size: int, proof: Sequence[bytes]) -> dict[str, Any]:
    """``{"from", "to", "proof": [hex, ...]}``: the ``GET /log/proof/consistency`` answer."""
    return {"from": old_size, "to": new_size, "proof": [node.hex() for node in proof]}


def consistency_from_json(data: Mapping[str, Any]) -> tuple[int, int, tuple[bytes, ...]]:
    """``(from, to, proof)`` from the :func:`consistency_to_json` form."""
    data = _mapping(data, "a consistency proof")
    return (_int_field(data, "from"), _int_field(data, "to"),
            _hash_list(data.get("proof"), "proof"))


def verify_consistency(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that ``new`` extends ``old`` (same origin, ``old`` a prefix); TlogError if not.

    From size 0 the proof is empty (the empty log is a prefix of every log).
    """
    if old.origin != new.origin:
        raise TlogError(f"the checkpoints are of different logs: {old.origin!r}, {new.origin!r}")
    where = (f"size {old.size} root {old.root.hex()} -> size {new.size} "
             f"root {new.root.hex()}")
    if old.size > new.size:
        raise TlogError(f"the log shrank: {where}")
    if old.size == 0:
        if old.root != EMPTY_ROOT or len(proof):
            raise TlogError(f"inconsistent log: {where} (a size-0 log has the empty root "
                            "and an empty proof)")
        return
    try:
        merkle.verify_consistency(old.size, new.size, proof, old.root, new.root)
    except MerkleProofError as exc:
        raise TlogError(f"inconsistent log (rewritten or forked): {where}: {exc}") from None


def make_bundle(checkpoint_note: str, inclusion: InclusionProof, log_key: str) -> dict[str, Any]:
    """The log evidence saved beside a receipt: signed checkpoint, inclusion proof, log key."""
    return {"format": BUNDLE_FORMAT, "checkpoint": checkpoint_note,
            "inclusion": inclusion.to_json(), "log_key": log_key}


def verify_bundle(receipt: Mapping[str, Any], bundle: Mapping[str, Any],
                  keys: Iterable[LogKey] | None = None) -> tuple[Checkpoint, InclusionProof]:
    """Check that ``receipt`` is in the log, by a bundle; returns its checkpoint and proof.

    The checkpoint must be signed by one of ``keys`` or, without them, by the
    bundle's own ``log_key`` (which only shows the bundle is self-consistent:
    pin the key to trust it). The receipt's entry must be the proof's leaf and
    the proof must verify against the checkpoint's root.
    """
    bundle = _mapping(bundle, "a log bundle")
    if bundle.get("format") != BUNDLE_FORMAT:
        raise TlogError(f"a log bundle has format {BUNDLE_FORMAT!r}, "
                        f"got {bundle.get('format')!r}"[:200])
    note = bundle.get("checkpoint")
    if not isinstance(note, str):
        raise TlogError("the bundle's checkpoint must be the signed note text")
    inclusion = InclusionProof.from_json(bundle.get("inclusion"))  # type: ignore[arg-type]
    if keys is None:
        keys = [parse_verifier_key(bundle.get("log_key"))]  # type: ignore[arg-type]
    checkpoint = open_checkpoint(note, keys)
    leaf = entry_leaf_hash(entry_bytes(receipt))
    if not hmac.compare_digest(leaf, inclusion.leaf_hash):
        raise TlogError(f"the receipt's log entry hashes to {leaf.hex()}, "
                        f"but the proof is for leaf {inclusion.leaf_hash.hex()}")
    inclusion.verify(checkpoint)
    return checkpoint, inclusion
