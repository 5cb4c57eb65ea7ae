"""Turning a presented Bearer key into the calling account.

The key is looked up by its public ``key_id``, then its SHA-256 is compared
with the stored one in constant time (an unknown ``key_id`` still costs one
comparison). Messages never quote the presented key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from .apikeys import hash_api_key, key_id_of
from .errors import UnauthorizedError
from .store import Store
from .store.accounts import Account, find_key, get_account

__all__ = ["Principal", "authenticate"]

_DUMMY_HASH: Final = hashlib.sha256(b"cyberian/no-such-key").hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account and the id of the key used."""

    account: Account
    key_id: str


def authenticate(store: Store, presented: str | None) -> Principal:
    """The account a presented key belongs to; :class:`UnauthorizedError` otherwise."""
    if not presented:
        raise UnauthorizedError("missing API key: send Authorization: Bearer cyb_<label>_<secret>")
    key_id = key_id_of(presented)
    found = find_key(store, key_id) if key_id is not None else None
    stored_hash = found.key_sha256 if found is not None else _DUMMY_HASH
    matches = hmac.compare_digest(hash_api_key(presented), stored_hash)
    if found is None or not matches:
        raise UnauthorizedError("invalid API key")
    if found.revoked_at is not None:
        raise UnauthorizedError("this API key has been revoked")
    account = get_account(store, found.account_id)
    if account is None:  # pragma: no cover - foreign keys forbid it
        raise UnauthorizedError("invalid API key")
    return Principal(account, found.key_id)
