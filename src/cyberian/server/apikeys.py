"""API key format: minting, parsing and hashing (pure functions, no storage).

A key is ``cyb_<label>_<random>``: a lowercase label (``trial``, ``live``) and
43 url-safe random characters (256 bits). Its ``key_id`` is the first 12
characters of the random part: public, shown by ``/account``, accepted by
revocation. The random part never begins with ``-``, so a key id is never
read as an option on a command line. Only the SHA-256 of a key is ever stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = ["KEY_ID_LENGTH", "KEY_PREFIX", "MintedKey", "hash_api_key", "key_id_of",
           "mint_api_key"]

KEY_PREFIX: Final = "cyb_"
KEY_ID_LENGTH: Final = 12
_RANDOM_BYTES: Final = 32
_KEY = re.compile(r"^cyb_([a-z0-9]{1,16})_([A-Za-z0-9_-]{40,128})$")
_LABEL = re.compile(r"^[a-z0-9]{1,16}$")


@dataclass(frozen=True)
class MintedKey:
    """A freshly minted key: its public id and the secret key (shown once)."""

    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"MintedKey(key_id={self.key_id!r}, secret=<redacted>)"


def mint_api_key(label: str) -> MintedKey:
    """A new random key ``cyb_<label>_<43 url-safe chars>``; its key id never starts with -."""
    if not _LABEL.match(label):
        raise ValueError("a key label is 1-16 lowercase letters or digits")
    random_part = secrets.token_urlsafe(_RANDOM_BYTES)
    while random_part.startswith("-"):  # `cyberian keys revoke -x...` would read an option
        random_part = secrets.token_urlsafe(_RANDOM_BYTES)
    return MintedKey(random_part[:KEY_ID_LENGTH], f"{KEY_PREFIX}{label}_{random_part}")


def key_id_of(key: str) -> str | None:
    """The ``key_id`` of a well-formed key, or ``None`` for anything else."""
    match = _KEY.match(key)
    return match.group(2)[:KEY_ID_LENGTH] if match else None


def hash_api_key(key: str) -> str:
    """The SHA-256 (hex) under which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
