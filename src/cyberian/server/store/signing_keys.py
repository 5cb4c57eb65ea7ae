"""The published receipt-signing keys in the store (``signing_keys``): id, public key, age.

The private keys are files (see :mod:`cyberian.server.signer`); the newest
row is the key that signs (keys created in the same microsecond are told
apart by key id, so every replica agrees on which).
"""

from __future__ import annotations

from datetime import datetime

from ..timeutil import iso
from .database import Store

__all__ = ["add_signing_key", "newest_keyid", "public_keys"]


def add_signing_key(store: Store, keyid: str, public_key: str, now: datetime) -> None:
    """Publish a key (its public half, base64) as created at ``now``."""
    store.execute("INSERT INTO signing_keys (keyid, public_key, created_at) VALUES (?, ?, ?)",
                  (keyid, public_key, iso(now)))


def newest_keyid(store: Store) -> str | None:
    """The id of the newest key, or ``None`` when there is none."""
    row = store.query_one(
        "SELECT keyid FROM signing_keys ORDER BY created_at DESC, keyid DESC LIMIT 1")
    return str(row[0]) if row is not None else None


def public_keys(store: Store) -> list[str]:
    """Every published public key (base64), newest first."""
    rows = store.query("SELECT public_key FROM signing_keys ORDER BY created_at DESC, keyid DESC")
    return [str(row[0]) for row in rows]
