"""Accounts and their API keys in the store: the rows and the SQL that reads and writes them.

The rules (which tier, when a trial ends, how keys are minted, what a tier
change restarts) are :mod:`cyberian.server.accounts`'; only hashes of keys
are ever stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import Tier
from ..timeutil import from_iso, iso
from .database import Connection, Row, Store

__all__ = [
    "Account",
    "KeyRecord",
    "find_key",
    "get_account",
    "has_accounts",
    "insert_account",
    "insert_key",
    "list_accounts",
    "list_keys",
    "mark_key_revoked",
    "set_tier",
    "set_trial_end",
]


def _moment(text: str | None) -> datetime | None:
    """A stored optional timestamp."""
    return from_iso(text) if text else None


@dataclass(frozen=True)
class Account:
    """An account: tier, creation time, trial end and the anchor its quota periods count from."""

    id: str
    tier: Tier
    label: str | None
    created_at: datetime
    trial_ends_at: datetime | None
    period_anchor: datetime

    @classmethod
    def from_row(cls, row: Row) -> Account:
        """The account stored in ``row``."""
        return cls(
            id=row["id"],
            tier=row["tier"],
            label=row["label"],
            created_at=from_iso(row["created_at"]),
            trial_ends_at=_moment(row["trial_ends_at"]),
            period_anchor=from_iso(row["period_anchor"]),
        )


@dataclass(frozen=True)
class KeyRecord:
    """A stored API key: public id, owner, hash, timestamps (never the key itself)."""

    key_id: str
    account_id: str
    key_sha256: str
    created_at: datetime
    revoked_at: datetime | None

    def __repr__(self) -> str:
        return f"KeyRecord(key_id={self.key_id!r}, account_id={self.account_id!r})"

    @classmethod
    def from_row(cls, row: Row) -> KeyRecord:
        """The key stored in ``row``."""
        return cls(row["key_id"], row["account_id"], row["key_sha256"],
                   from_iso(row["created_at"]), _moment(row["revoked_at"]))

    def public(self) -> dict[str, Any]:
        """The ``/account`` form ``{key_id, created_at, revoked_at}``."""
        return {
            "key_id": self.key_id,
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at) if self.revoked_at else None,
        }


def insert_account(conn: Connection, account_id: str, tier: Tier, *,
                   label: str | None, now: datetime, trial_ends_at: datetime | None) -> None:
    """Insert an account row whose quota periods count from ``now``."""
    conn.execute(
        "INSERT INTO accounts (id, tier, label, created_at, trial_ends_at, period_anchor) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (account_id, tier, label, iso(now), iso(trial_ends_at) if trial_ends_at else None,
         iso(now)))


def insert_key(conn: Connection, *, key_id: str, account_id: str, key_sha256: str,
               label: str, now: datetime) -> bool:
    """Insert a key row; ``False`` (nothing inserted) when the ``key_id`` is taken."""
    inserted = conn.execute(
        "INSERT INTO api_keys (key_id, account_id, key_sha256, label, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
        (key_id, account_id, key_sha256, label, iso(now))).rowcount
    return inserted == 1


def get_account(store: Store, account_id: str) -> Account | None:
    """The account with this id, or ``None``."""
    row = store.query_one("SELECT * FROM accounts WHERE id = ?", (account_id,))
    return Account.from_row(row) if row is not None else None


def has_accounts(store: Store) -> bool:
    """Whether the store holds at least one account."""
    return store.query_one("SELECT 1 FROM accounts LIMIT 1") is not None


def list_accounts(store: Store) -> list[Account]:
    """Every account, oldest first."""
    return [Account.from_row(row)
            for row in store.query("SELECT * FROM accounts ORDER BY created_at, id")]


def set_tier(conn: Connection, account_id: str, tier: Tier, *,
             period_anchor: datetime) -> None:
    """Store an account's tier and the anchor its quota periods now count from."""
    conn.execute("UPDATE accounts SET tier = ?, period_anchor = ? WHERE id = ?",
                 (tier, iso(period_anchor), account_id))


def set_trial_end(conn: Connection, account_id: str, trial_ends_at: datetime) -> None:
    """Store when an account's trial ends."""
    conn.execute("UPDATE accounts SET trial_ends_at = ? WHERE id = ?",
                 (iso(trial_ends_at), account_id))


def find_key(store: Store, key_id: str) -> KeyRecord | None:
    """The stored key with this public id, or ``None``."""
    row = store.query_one("SELECT * FROM api_keys WHERE key_id = ?", (key_id,))
    return KeyRecord.from_row(row) if row is not None else None


def list_keys(store: Store, account_id: str) -> list[KeyRecord]:
    """An account's keys, oldest first (revoked ones included)."""
    rows = store.query("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, key_id",
                       (account_id,))
    return [KeyRecord.from_row(row) for row in rows]


def mark_key_revoked(store: Store, key_id: str, now: datetime) -> None:
    """Record the key's revocation at ``now`` unless it is already revoked."""
    store.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                  (iso(now), key_id))
